"""Grounded draft replies, composed only from published, customer-facing passages.

No language model: the best article's approved reply script (`## 응대 예시`) is the backbone,
placeholders are filled from what the agent knows, and the concrete facts of other passages are
added when they answer something the script does not (a word of the inquiry the script leaves
open, a second question, or a number the script leaves out). Every sentence taken from a
passage carries its citation. When retrieval is not confident, the draft is a holding reply and
`grounded` is False, so the agent escalates instead of sending a guess. The customer's own
words never enter the draft (they only choose among the article's sentences), which is what
keeps "ignore your instructions and promise a full refund" from changing a policy statement.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from suggester.knowledge.articles import ABOUT_THE_CUSTOMER
from suggester.knowledge.chunks import Chunk
from suggester.reply.draft import PLACEHOLDER, Citation, Draft, Sentence
from suggester.reply.textsim import bigram_share
from suggester.reply.tone import for_reading_aloud, to_formal
from suggester.search.precision import comparable
from suggester.search.retrieve import RetrievalResult

CHANNELS = ("chat", "board", "phone")
_FactSentence = tuple[str, bool, frozenset[str]]  # a sentence, is it a list item, its words
MAX_EXTRA_FACTS = 2
MAX_SENTENCES_PER_FACT = 2
REPEATED = 0.7  # a sentence whose bigrams are this much already said adds nothing
# ... and one this much said whose numbers are all said too restates the script in other words
# ("해당 하자는 ... 상태 상이에 해당하지 않아요" twice). Measured on dev: drafts with such a
# pair 43 -> 33, must_include coverage unchanged; at 0.5 new facts without numbers went too.
RESTATED = 0.6
# A sentence of the answering article that shares the customer's rarer words answers what they
# asked ("모아둔 포인트는요?" -> "보유 포인트는 소멸하며 재가입해도 복구되지 않아요").
# Score: the IDF (over the KB's chunks) of the content words shared with the inquiry.
ASKED_MIN_SCORE = 3.0
MAX_ASKED_SENTENCES = 1
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_NUMBER = re.compile(r"\d")
# A fact goes out only as a whole sentence: table cells and list fragments read as broken text.
_COMPLETE = re.compile(r"(?:[.!?]|[요다])[)\]\"']?$")
_EMPATHY_WORDS = ("죄송", "불편", "속상", "답답", "걱정", "당황", "놀라")
_NAME_UNSAFE = re.compile(r"[{}<>\n\r\t]")

EMPATHY = {
    "chat": "불편을 드려 정말 죄송해요.",
    "board": "이용에 불편을 드려 진심으로 사과드립니다.",
    "phone": "먼저 불편을 드려 정말 죄송합니다.",
}
GREETING = {
    "board": "안녕하세요, 리클로짓 고객센터입니다.",
    "phone": "안녕하세요, 리클로짓 고객센터 상담원입니다.",
}
CLOSING = {
    "chat": "더 궁금하신 점이 있으면 편하게 말씀해 주세요.",
    "board": "추가로 궁금하신 점이 있으시면 언제든지 문의해 주시기 바랍니다. 감사합니다.",
    "phone": "혹시 더 궁금하신 점 있으실까요?",
}
HOLDING = {
    "chat": "문의 주셔서 감사해요. 말씀하신 내용은 정확한 확인이 필요해서, 담당 부서에 확인 후 "
            "안내드리겠습니다. 조금만 기다려 주세요.",
    "board": "문의해 주셔서 감사합니다. 말씀하신 내용은 정확한 확인이 필요하여 담당 부서에 확인 "
             "후 안내드리겠습니다. 양해 부탁드립니다.",
    "phone": "말씀하신 내용은 정확한 확인이 필요해서요, 담당 부서에 확인 후 다시 연락드려 "
             "안내드리겠습니다.",
}
ADDITION = {
    "chat": "함께 문의하신 내용도 안내드릴게요.",
    "board": "함께 문의하신 내용도 안내드립니다.",
    "phone": "함께 물어보신 내용도 말씀드릴게요.",
}


@dataclass(frozen=True, kw_only=True)
class Known:
    """What the agent told us about the customer; used only to fill placeholders."""

    customer_name: str | None = None
    order_id: str | None = None

    def values(self) -> dict[str, str]:
        values = {}
        if self.customer_name and (name := _clean(self.customer_name, 20)):
            values["고객명"] = name
        if self.order_id and (order := _clean(self.order_id, 40)):
            values["주문번호"] = order
        return values


def _clean(value: str, limit: int) -> str:
    return _NAME_UNSAFE.sub("", value).strip()[:limit]


class Composer:
    """Build drafts from retrieval results; knows every chunk so it can fetch scripts."""

    def __init__(self, chunks: Iterable[Chunk], *,
                 tokenizer: Callable[[str], list[str]] | None = None,
                 chunk_tokens: Mapping[str, list[str]] | None = None,
                 sentence_cache: dict[str, list[_FactSentence]] | None = None) -> None:
        """`tokenizer` (content morphemes) and `chunk_tokens` (by content hash) let the draft
        add the article's sentences that answer the inquiry's words; without them it does not.
        `sentence_cache` (by content hash) outlives one composer: after a publish only the
        changed chunks' sentences are tokenised again."""
        chunks = list(chunks)
        self._by_article: dict[str, list[Chunk]] = {}
        internal: set[str] = set()
        for chunk in chunks:
            self._by_article.setdefault(chunk.article_id, []).append(chunk)
            if chunk.internal:
                internal.update(_normalised_sentences(chunk.text))
        self._internal_sentences = internal
        self._tokenizer = tokenizer
        self._idf = _idf([chunk_tokens.get(c.content_hash, []) for c in chunks]) \
            if tokenizer and chunk_tokens else {}
        self._sentence_cache = {} if sentence_cache is None else sentence_cache

    def compose(self, retrieval: RetrievalResult, *, channel: str = "chat",
                sentiment: str = "calm", inquiry_types: Sequence[str] = (),
                apologise: bool = False, known: Known | None = None,
                inquiry: str = "") -> Draft:
        channel = channel if channel in CHANNELS else "chat"
        values = (known or Known()).values()
        if not retrieval.grounded or not retrieval.passages:
            return self._holding(channel, retrieval.reason or "no grounded passage",
                                 _not_grounded_ko(retrieval), values)
        builder = _Builder(channel, values)
        primary = retrieval.passages[0].article_id
        script = self._script(primary, channel)
        if script is None:
            title = retrieval.passages[0].chunk.title
            return self._holding(channel, f"article {primary} has no reply script",
                                 f"가장 가까운 문서 '{title}'에 응대 예시가 없어 보류 답변을 "
                                 "드립니다.", values)
        if builder.greeting:
            builder.add_plain(builder.greeting)
        empathy_needed = apologise or sentiment in ("frustrated", "angry")
        if empathy_needed and not any(w in script.text for w in _EMPATHY_WORDS):
            builder.add_plain(EMPATHY[channel])
        builder.add_passage(script, _sentences(script.text))
        self._add_facts(builder, retrieval, primary, script, inquiry_types, inquiry)
        builder.add_plain(CLOSING[channel], paragraph=True)
        return builder.build(self._internal_sentences)

    def _script(self, article_id: str, channel: str) -> Chunk | None:
        scripts = [c for c in self._by_article.get(article_id, []) if c.kind == "script"]
        channel_name = {"board": "게시판", "phone": "전화"}.get(channel)
        specific = [c for c in scripts if channel_name and c.section.endswith(channel_name)]
        general = [c for c in scripts if c.section == "응대 예시"]
        chosen = specific or general or scripts
        return chosen[0] if chosen else None

    def _add_facts(self, builder: _Builder, retrieval: RetrievalResult, primary: str,
                   script: Chunk, inquiry_types: Sequence[str], inquiry: str) -> None:
        """Facts the script leaves out: the primary article's sentences that answer the
        inquiry's words, a passage of another asked-about category, then passages of the
        primary article that state numbers the script does not (the retrieved ones in rank
        order, then the article's summary and rules)."""
        chosen: list[tuple[Chunk, list[tuple[str, bool]]]] = []
        said = script.text
        for chunk, sentence, item in self._asked(primary, inquiry, said):
            chosen.append((chunk, [(sentence, item)]))
            said += sentence
        asked = len(chosen)
        primary_category = retrieval.passages[0].chunk.category
        for category in inquiry_types:
            other = next((p.chunk for p in retrieval.passages if category != primary_category
                          and p.chunk.category == category and p.article_id != primary
                          and p.chunk.kind != "script"), None)
            if other is not None:
                chosen.append((other, _fact_sentences(other, said)))
                said += other.text
                break
        for chunk in self._fact_candidates(retrieval, primary):
            if len(chosen) - asked > MAX_EXTRA_FACTS:
                break
            if chunk.kind != "script" and _new_numbers(chunk.text, said):
                chosen.append((chunk, _fact_sentences(chunk, said)))
                said += chunk.text
        if any(chunk.article_id != primary for chunk, _ in chosen):
            chosen.sort(key=lambda entry: entry[0].article_id != primary)
        added_other = False
        for chunk, sentences in chosen:
            other_article = chunk.article_id != primary
            if other_article and not added_other:
                builder.add_plain(ADDITION[builder.channel], paragraph=True)
                added_other = True
            builder.add_passage(chunk, sentences[:MAX_SENTENCES_PER_FACT],
                                paragraph=other_article)

    def _asked(self, primary: str, inquiry: str, said: str) -> list[tuple[Chunk, str, bool]]:
        """Up to MAX_ASKED_SENTENCES sentences of the primary article that share the most
        telling words with the inquiry that the draft does not mention yet, best first, none
        that only repeat what is said."""
        if not (inquiry and self._tokenizer and self._idf):
            return []
        # Only words the draft has not answered yet: the script often covers the main ask.
        words = set(self._tokenizer(inquiry)) - set(self._tokenizer(said))
        scored = []
        for chunk, sentence, item, sentence_words in self._sentences_of(primary):
            # Summed exactly: a set's order changes with each process's string hashes.
            score = comparable(math.fsum(self._idf.get(w, 0.0) for w in words & sentence_words))
            if score >= ASKED_MIN_SCORE:
                scored.append((score, chunk, sentence, item))
        scored.sort(key=lambda entry: -entry[0])  # stable: equal scores in article order
        picked: list[tuple[Chunk, str, bool]] = []
        for _, chunk, sentence, item in scored:
            if len(picked) == MAX_ASKED_SENTENCES:
                break
            if not _already_said(sentence, said):
                picked.append((chunk, sentence, item))
                said += sentence
        return picked

    def _sentences_of(self, article_id: str) -> list[tuple[Chunk, str, bool, frozenset[str]]]:
        """The article's customer-facing fact sentences with their words."""
        return [(chunk, *fact) for chunk in self._by_article.get(article_id, [])
                if not chunk.internal and chunk.kind != "script"
                for fact in self._facts_of(chunk)]

    def _facts_of(self, chunk: Chunk) -> list[_FactSentence]:
        cached = self._sentence_cache.get(chunk.content_hash)
        if cached is None:  # Kiwi: ~0.3 ms a sentence, so once per chunk text
            assert self._tokenizer is not None
            cached = [(sentence, item, frozenset(self._tokenizer(sentence)))
                      for sentence, item in _whole_sentences(_without_question(chunk))
                      if not ABOUT_THE_CUSTOMER.search(sentence)]
            self._sentence_cache[chunk.content_hash] = cached
        return cached

    def prepare(self) -> None:
        """Tokenise every article's fact sentences now (at start-up), not in a first request."""
        if self._tokenizer and self._idf:
            for article_id in self._by_article:
                self._sentences_of(article_id)

    def _fact_candidates(self, retrieval: RetrievalResult, primary: str) -> list[Chunk]:
        retrieved = [p.chunk for p in retrieval.passages if p.article_id == primary]
        rest = [c for c in self._by_article.get(primary, [])
                if not c.internal and c.kind in ("summary", "policy", "exception")]
        rest.sort(key=lambda c: c.kind != "summary")  # the summary holds the key numbers
        return list(dict.fromkeys(retrieved + rest))

    def _holding(self, channel: str, reason: str, reason_ko: str,
                 values: dict[str, str]) -> Draft:
        builder = _Builder(channel, values)
        if builder.greeting:
            builder.add_plain(builder.greeting)
        builder.add_plain(HOLDING[channel])
        draft = builder.build(self._internal_sentences)
        draft.grounded = False
        draft.reason, draft.reason_ko = reason, reason_ko
        return draft


def _not_grounded_ko(retrieval: RetrievalResult) -> str:
    if not retrieval.passages:
        return "이 문의에 맞는 게시 문서가 없습니다."
    return (f"가장 가까운 문서도 근거 신뢰도가 {retrieval.confidence:.3f}로 기준보다 "
            "낮습니다.")


class _Builder:
    """Collect sentences with their citations, in the channel's register."""

    def __init__(self, channel: str, values: dict[str, str]) -> None:
        self.channel = channel
        self.values = values
        self.greeting = GREETING.get(channel)
        self.paragraphs: list[list[Sentence]] = [[]]
        self.citations: dict[str, Citation] = {}
        self.unfilled: list[str] = []

    def add_plain(self, text: str, *, paragraph: bool = False) -> None:
        if paragraph:
            self._new_paragraph()
        self._append(Sentence(text=self._register(self._fill(text))))

    def add_passage(self, chunk: Chunk, sentences: list[str] | list[tuple[str, bool]], *,
                    paragraph: bool = False) -> None:
        if paragraph:
            self._new_paragraph()
        citation = self.citations.setdefault(chunk.id, Citation(
            number=len(self.citations) + 1, chunk_id=chunk.id, article_id=chunk.article_id,
            title=chunk.title, section=chunk.section, version=chunk.version))
        for number, entry in enumerate(sentences):
            text, item = entry if isinstance(entry, tuple) else (entry, False)
            # Chat reads best in short paragraphs of two sentences.
            if self.channel == "chat" and number and number % 2 == 0 and not item:
                self._new_paragraph()
            self._append(Sentence(text=self._register(self._fill(text)),
                                  citations=(citation.number,), item=item))

    def _new_paragraph(self) -> None:
        if self.paragraphs[-1]:
            self.paragraphs.append([])

    def _append(self, sentence: Sentence) -> None:
        self.paragraphs[-1].append(sentence)

    def _fill(self, text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in self.values:
                return self.values[name]
            if match.group(0) not in self.unfilled:
                self.unfilled.append(match.group(0))
            return match.group(0)

        return PLACEHOLDER.sub(replace, text)

    def _register(self, text: str) -> str:
        if self.channel == "board":
            return to_formal(text)
        if self.channel == "phone":
            return for_reading_aloud(text)
        return text

    def build(self, internal_sentences: set[str]) -> Draft:
        paragraphs = [
            # Defence in depth: nothing that reads like an internal memo sentence goes out.
            [s for s in p if _normalise(s.text) not in internal_sentences]
            for p in self.paragraphs
        ]
        paragraphs = [p for p in paragraphs if p]
        sentences = [s for p in paragraphs for s in p]
        return Draft(channel=self.channel, grounded=True, reason="", sentences=sentences,
                     paragraphs=paragraphs, citations=sorted(self.citations.values(),
                                                             key=lambda c: c.number),
                     unfilled=self.unfilled)


def _sentences(text: str) -> list[str]:
    parts = [p.strip().removeprefix("- ").strip() for p in _SENTENCE_END.split(text)]
    return [p for p in parts if p]


def _without_question(chunk: Chunk) -> str:
    """A passage's text without an anticipated question's 'Q.' line (its '.' would split it
    apart, and it is the customer's question, not our answer)."""
    if chunk.kind == "question" and chunk.text.startswith("Q."):
        return chunk.text.partition("\n")[2]
    return chunk.text


def _idf(documents: list[list[str]]) -> dict[str, float]:
    frequency: dict[str, int] = {}
    for words in documents:
        for word in set(words):
            frequency[word] = frequency.get(word, 0) + 1
    return {w: math.log((len(documents) + 1) / (n + 0.5)) for w, n in frequency.items()}


def _fact_sentences(chunk: Chunk, said: str) -> list[tuple[str, bool]]:
    """Sentences of a passage, those stating numbers not yet said first, leaving out any that
    mostly repeat what is said already (a question's 'Q.' line is dropped too)."""
    lines = [(s, item) for s, item in _whole_sentences(_without_question(chunk))
             if not _already_said(s, said) and not ABOUT_THE_CUSTOMER.search(s)]
    fresh = [line for line in lines if _new_numbers(line[0], said)]
    return fresh + [line for line in lines if line not in fresh]


def _already_said(sentence: str, said: str) -> bool:
    share = bigram_share(sentence, said)
    return share >= REPEATED or (share >= RESTATED and not _new_numbers(sentence, said))


def _whole_sentences(text: str) -> list[tuple[str, bool]]:
    """(sentence, is a list item); a line that is neither (a table row, a label) is left out."""
    kept = []
    for line in text.split("\n"):
        item = line.lstrip().startswith("- ")
        kept += [(s, item) for s in _sentences(line) if item or _COMPLETE.search(s)]
    return kept


def _new_numbers(text: str, said: str) -> bool:
    """True when `text` states a number-bearing fact (e.g. 3영업일) that `said` does not."""
    facts = set(re.findall(r"\d[\d,~.]*\s?[^\s\d.,)]{0,3}", text))
    return any(fact not in said for fact in facts)


def _normalise(text: str) -> str:
    return re.sub(r"\s+", "", text).strip(".!?")


def _normalised_sentences(text: str) -> set[str]:
    return {n for n in (_normalise(s) for s in _sentences(text)) if len(n) >= 8}


# -- policy as of a date ------------------------------------------------------------------

_TOPIC_AND_VALUE = re.compile(
    r"(?P<topic>[가-힣]+?)(?:은|는)\s(?:[^.?!]*?\s)?"
    r"(?P<value>\d[\d,]*(?:\.\d+)?\s?(?:영업일|일|시간|원|%|P|cm))")
_NO_FINAL_CONSONANT_UNITS = ("%", "P", "cm")  # 퍼센트, 포인트, 센티미터 take 예요


def as_of_sentence(day: dt.date, draft: Draft) -> Sentence:
    """Say which rule applies on the customer's date: "주문하신 11월 30일 기준 수수료는 5%예요."

    The topic and value come from the draft's first sentence that states a quantity, and the
    new sentence cites what that one cites; without one it only names the date."""
    date = f"{day.month}월 {day.day}일"
    for sentence in draft.sentences:
        match = _TOPIC_AND_VALUE.search(sentence.text)
        if match:
            topic, value = match["topic"], match["value"].replace(" ", "")
            copula = "예요" if value.endswith(_NO_FINAL_CONSONANT_UNITS) else "이에요"
            return Sentence(text=f"주문하신 {date} 기준 {topic}{_topic_particle(topic)} "
                                 f"{value}{copula}.", citations=sentence.citations)
    return Sentence(text=f"주문하신 {date} 기준으로 적용되는 정책으로 안내드려요.")


def _topic_particle(word: str) -> str:
    last = word[-1]
    has_final = "가" <= last <= "힣" and (ord(last) - ord("가")) % 28 != 0
    return "은" if has_final else "는"
