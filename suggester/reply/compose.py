"""Grounded draft replies, composed only from published, customer-facing passages.

No language model, and an answer, not a policy dump: the customer's message is split into the
questions it asks (suggester/reply/questions.py); each gets the sentences that answer it, first
(an anticipated `### Q.` of the KB that asks the same, else the sentences that share its
telling words and meaning, from whichever retrieved article states them, or, for a later
question none of them answers, from its own search); then the first articles' key
sentences (summary, approved script, numbers) fill the channel's length budget. What is relevant
but does not fit goes to the agent as optional sentences. One opening: thanks, or empathy when
the customer is upset or the company is at fault. No bullet lists: every list item chosen is
said as a sentence. Every sentence taken from a passage carries its citation. When retrieval is
not confident, the draft is a holding reply and `grounded` is False, so the agent escalates
instead of sending a guess. The customer's own words never enter the draft (they only choose
among the articles' sentences), which is what keeps "ignore your instructions and promise a
full refund" from changing a policy statement.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from suggester.knowledge.articles import ABOUT_THE_CUSTOMER
from suggester.knowledge.chunks import Chunk
from suggester.reply.draft import (
    PLACEHOLDER,
    Citation,
    Draft,
    OptionalSentence,
    Sentence,
    renumbered,
)
from suggester.reply.questions import QUESTION_WORDS, Question, split_questions
from suggester.reply.textsim import bigram_share
from suggester.reply.tone import for_reading_aloud, to_formal
from suggester.search.dense import unit
from suggester.search.retrieve import RetrievalResult

CHANNELS = ("chat", "board", "phone")
_FactSentence = tuple[str, bool, frozenset[str]]  # a sentence, is it a list item, its words
# (texts, role) -> their vectors by text: Indexer.text_vectors, cached by content hash.
TextVectors = Callable[[list[str], str], Mapping[str, np.ndarray]]
REPEATED = 0.7  # a sentence whose bigrams are this much already said adds nothing
# ... and one this much said whose numbers are all said too restates the script in other words
# ("해당 하자는 ... 상태 상이에 해당하지 않아요" twice). Measured on dev: drafts with such a
# pair 43 -> 33, must_include coverage unchanged; at 0.5 new facts without numbers went too.
RESTATED = 0.6
SAID_AGAIN = 0.35  # ... and in a short reply, a sentence of said numbers this much said
# A sentence that shares the question's rarer words answers it ("모아둔 포인트는요?" ->
# "보유 포인트는 소멸하며 재가입해도 복구되지 않아요"). Score: the IDF (over the KB's chunks) of
# the content words shared with the question, below this it answers nothing.
ASKED_MIN_SCORE = 3.0
# An anticipated question whose words (IDF-weighted) are this much in the customer's question
# is the same question: its answer is the answer. Tuned on dev (see README, Drafts).
QUESTION_MATCH = 0.6
# Matching by e5 (both questions in the query role) was measured and left out: e5-small puts
# unrelated questions at 0.93 ("주문 취소 하고싶은데 어디서 해요?" / "단순 변심으로 발송된 주문을
# 취소하고 싶어요."), at 0.90-0.94 dev lost 1-3 facts, at 0.96 none moved, and it cost every
# clause of every message an embedding (compose p95 10 -> 64 ms).
# A question's own answer also weighs meaning: MEANING_WEIGHT per unit of e5 cosine (question,
# query role, to sentence, passage role) over MEANING_FLOOR, under which e5 ranks most of the
# KB's sentences alike (0.83-0.90). Dev: +1 fact at 30; weights 10-50 in the fill ranking
# below lost 2-8 facts (e5 likes sentences worded like the question, not those that answer).
MEANING_WEIGHT = 30.0
MEANING_FLOOR = 0.85
# Two sentences whose e5 vectors (passage role) are this close say one thing twice: "배송비에는
# 수수료가 붙지 않으며" / "배송비는 수수료 계산에서 제외돼요" 0.955, "송장번호는 ... 스캔한 뒤부터
# 조회돼요" / "... 집하하기 전에는 조회 결과가 나오지 않을 수 있어요" 0.945, while "탈퇴 후 30일"
# / "재가입해도 포인트는 복구되지 않아요" is 0.909. Dev: must_include +0.015 at 0.93 (0.95: 0,
# 0.91: -0.015, real facts dropped).
SAME_MEANING = 0.93
ASKED_SHARE = 0.4
# A question whose words (IDF-weighted) the script states this much is answered by the script.
SCRIPT_COVERS = 0.5
NUMBER_BONUS = 1.0
# The first article's sentences, ranked for a short answer: the summary and the script
# state the key facts, a number is usually the fact asked for, and the asked words count too.
# Each score is divided by len ** LENGTH_POWER: a short sentence that states the fact leaves
# room for the next. Tuned on dev: coverage 0.765 (weights 1/1/0) -> 0.775 with these, and
# asked words at 0.15 instead of 0.3: +0.015 (0.6: -0.04). The runner-up article's sentences
# too: +0.025-0.045 on dev, but must_not_include violations (a safe-return "무료 반품" line in
# a plain return answer; a board reply filled with the other article's "탈퇴 즉시 삭제"), and
# with only its best sentence, test lost facts and got 3 violations: so one article.
ASKED_WEIGHT = 0.3
KIND_BONUS = {"summary": 2.0, "script": 1.5, "policy": 0.5, "exception": 0.5}
RANKED_ARTICLES = 1
LENGTH_POWER = 0.5  # a sentence stating a number usually states the fact that was asked for
SCRIPT_BONUS = 1.0  # the script's approved wording, when it answers as well
MAX_ANSWER_SENTENCES = 2
MAX_ARTICLES = 4
ARTICLE_WEIGHTS = (1.0, 0.6, 0.5, 0.4)  # by the article's rank (0.8/0.7/0.6: coverage -0.03)
MAX_OPTIONAL = 4
_FILL = -1  # the answer number of a key fact no question asked for (see Composer._group)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_NUMBER = re.compile(r"\d")
# A time of day ("16:00") is a fact of its own: read as a number and the 3 characters after
# it, "16:00 이후나" and "16:00 이후에" would be two facts, and the rule said twice.
_QUANTITY = re.compile(r"\d{1,2}:\d{2}|\d[\d,~.]*\s?(?:영업일|개월|시간|일|주|년|분|원|%|P|회|"
                       r"점|장|cm|mm|세|건|등급|자리|[^\s\d.,)]{0,3})")
_QUANTITY_SPACE = re.compile(r"\s+")
# A fact goes out only as a whole sentence: table cells and list fragments read as broken text.
_COMPLETE = re.compile(r"(?:[.!?]|[요다])[)\]\"']?$")
# A script's own greeting, thanks or apology: the composer writes the opening itself.
_OPENING = re.compile(r"감사|죄송|사과|불편을|속상|답답|놀라|당황|걱정|축하")
_YES_OR_NO = re.compile(r"(?:네|예|아니요|아니에요|아뇨)[,.]\s")
_EXAMPLE = re.compile(r"(?:예를\s?들어|예컨대|예시로)")
# A sentence that names the case the rest of its list item holds in: 이라면/하면, 경우, 때는,
# 달아도 ("안심반품 배지를 달아도 추가 수수료는 없어요. 반품 배송비는 리클로짓이 부담해요.").
_CASE = re.compile(r"(?:면|경우(?:에는|엔)?|때(?:는|에는)|라도|[아어]도)[\s,]")
# A sentence that goes on from the one before: "그래도 안 되면 …", "이 기간이 지나도 …".
_GOES_ON = re.compile(r"(?:그래도|그러면|그럼|이 경우|이때|그래서|따라서|[이그] ?기간|그날)"
                      r"[\s,이의에]")
_LABEL = re.compile(r"[^.:]{1,24}:\s")  # "횟수: 주문 1건당 1회." reads as a table, not a reply
_NAME_FIRST = re.compile(r"^\{고객명\}님,?\s*")
_NAME_UNSAFE = re.compile(r"[{}<>\n\r\t]")
# Frustration worth acknowledging: more than crying emoticons on a how-to question ("ㅠㅠ").
_FRUSTRATION = re.compile(r"아직\s*(도|까지)|왜\s*이렇게|답답|언제까지|몇\s*번\s*째|계속|"
                          r"너무\s*(늦|하|해)|속상|걱정|급해|빨리|어떡|!!|\?\?|;;")

# One line before the answer: a board reply or a phone script greets and thanks (or
# empathises) in it; a longer preamble pushed the answer past the first lines an agent reads.
THANKS = {
    "chat": "{고객명}님, 문의 주셔서 감사해요.",
    "board": "안녕하세요, {고객명}님. 문의해 주셔서 감사합니다.",
    "phone": "안녕하세요, {고객명}님. 문의 주셔서 감사합니다.",
}
EMPATHY = {
    "chat": "{고객명}님, 많이 답답하셨죠.",
    "board": "안녕하세요, {고객명}님. 많이 답답하셨을 것 같습니다.",
    "phone": "안녕하세요, {고객명}님. 많이 답답하셨죠.",
}
APOLOGY = {
    "chat": "{고객명}님, 불편을 드려 정말 죄송해요.",
    "board": "안녕하세요, {고객명}님. 이용에 불편을 드려 진심으로 사과드립니다.",
    "phone": "안녕하세요, {고객명}님. 먼저 불편을 드려 정말 죄송합니다.",
}
CLOSING = {
    "chat": "더 궁금하신 점이 있으면 편하게 말씀해 주세요.",
    "board": "추가로 궁금하신 점이 있으시면 언제든지 문의해 주시기 바랍니다. 감사합니다.",
    "phone": "혹시 더 궁금하신 점 있으실까요?",
}
# After the opening (thanks, or empathy for an upset customer, as in a grounded draft).
HOLDING = {
    "chat": "말씀하신 내용은 정확한 확인이 필요해서, 담당 부서에 확인 후 안내드리겠습니다. "
            "조금만 기다려 주세요.",
    "board": "말씀하신 내용은 정확한 확인이 필요하여 담당 부서에 확인 후 안내드리겠습니다. "
             "양해 부탁드립니다.",
    "phone": "말씀하신 내용은 정확한 확인이 필요해서요, 담당 부서에 확인 후 다시 연락드려 "
             "안내드리겠습니다.",
}


@dataclass(frozen=True, kw_only=True)
class Budgets:
    """How many characters a draft's answers may take, per channel (suggester/settings.py)."""

    chat: int = 220
    per_question: int = 150
    board: int = 500
    phone: int = 350

    def for_channel(self, channel: str, questions: int) -> int:
        base = {"chat": self.chat, "board": self.board, "phone": self.phone}[channel]
        return base + self.per_question * (questions - 1)


@dataclass(frozen=True, kw_only=True)
class _Candidate:
    """A customer-facing sentence that may answer a question, with what scores it."""

    chunk: Chunk
    sentence: str
    words: frozenset[str]
    weight: float  # by its article's rank
    question: frozenset[str]  # the words of its anticipated question, if it answers one
    retrieved: bool  # its passage is among the retrieval's
    vector: np.ndarray | None = None  # unit e5 vector (passage role), when vectors are known


@dataclass(kw_only=True)
class _Asked:
    """One of the customer's questions, read once: its topic words, and its unit e5 vector
    when a sentence is to be chosen by meaning (embedded then, once: ~10 ms a query)."""

    text: str
    words: frozenset[str]
    embed: Callable[[], np.ndarray] | None
    _vector: np.ndarray | None = None

    @property
    def vector(self) -> np.ndarray | None:
        if self._vector is None and self.embed is not None:
            self._vector = unit(self.embed())
        return self._vector


@dataclass(frozen=True, kw_only=True)
class ChunkFacts:
    """A chunk's whole sentences with their words, and its anticipated question ('' for a
    chunk that is not one): tokenised once per content hash, kept across index generations."""

    sentences: tuple[_FactSentence, ...]
    question: str
    question_words: frozenset[str]
    # A list item's later sentence -> the item's first, which states the case it is about.
    leads: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class _Plan:
    answers: list[list[tuple[Chunk, str]]]  # per question, the sentences that answer it
    optional: list[tuple[Chunk, str]]  # relevant, but over the budget


def owes_empathy(sentiment: str, inquiry: str) -> bool:
    """Acknowledge feelings when the customer is angry, or frustrated by more than "ㅠㅠ"."""
    return sentiment == "angry" or (sentiment == "frustrated" and
                                    bool(_FRUSTRATION.search(inquiry)))


def opening(channel: str, *, empathy: bool, apology: bool) -> str:
    """One opening sentence, naming the customer once: thanks, or empathy, never both."""
    if apology:
        return APOLOGY[channel]
    return EMPATHY[channel] if empathy else THANKS[channel]


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


def _cosine(a: np.ndarray | None, b: np.ndarray | None) -> float:
    return float(a @ b) if a is not None and b is not None else 0.0


def _clean(value: str, limit: int) -> str:
    return _NAME_UNSAFE.sub("", value).strip()[:limit]


class Composer:
    """Build drafts from retrieval results; knows every chunk so it can fetch scripts."""

    def __init__(self, chunks: Iterable[Chunk], *,
                 tokenizer: Callable[[str], list[str]] | None = None,
                 chunk_tokens: Mapping[str, list[str]] | None = None,
                 sentence_cache: dict[str, ChunkFacts] | None = None,
                 text_vectors: TextVectors | None = None,
                 budgets: Budgets | None = None) -> None:
        """`tokenizer` (content morphemes) and `chunk_tokens` (by content hash) let the draft
        choose the article's sentences that answer the inquiry's words; without them it does
        not. `sentence_cache` (by content hash) outlives one composer: after a publish only the
        changed chunks' sentences are tokenised again. `text_vectors` (e5, cached by content
        hash: `Indexer.text_vectors`) adds meaning to the words: the KB's sentences in the
        passage role, a customer's question in the query role."""
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
        self._text_vectors = text_vectors
        self._vectors: dict[str, np.ndarray] = {}  # unit, by sentence (passage role)
        self._vectors_lock = threading.Lock()
        self._budgets = budgets or Budgets()

    def compose(self, retrieval: RetrievalResult, *, channel: str = "chat",
                sentiment: str = "calm", apologise: bool = False, known: Known | None = None,
                inquiry: str = "", embed: Callable[[str], np.ndarray] | None = None,
                search: Callable[[str], RetrievalResult] | None = None,
                as_of: dt.date | None = None) -> Draft:
        """Answer each question of `inquiry` first, in the channel's length budget; what is
        relevant but did not fit becomes the draft's optional sentences.

        `embed` gives a question's e5 query vector (the sentences are then also chosen by
        meaning); `search` retrieves for one question on its own, asked only for a later
        question the message's retrieval does not answer; `as_of` (the order or event date)
        says which day's rule the draft states."""
        channel = channel if channel in CHANNELS else "chat"
        values = (known or Known()).values()
        first = opening(channel, empathy=apologise or owes_empathy(sentiment, inquiry),
                        apology=apologise or sentiment == "angry")
        if not retrieval.grounded or not retrieval.passages:
            return self._holding(channel, first, retrieval.reason or "no grounded passage",
                                 _not_grounded_ko(retrieval), values)
        primary = retrieval.passages[0].article_id
        script = self._script(primary, channel)
        if script is None:
            title = retrieval.passages[0].chunk.title
            return self._holding(channel, first, f"article {primary} has no reply script",
                                 f"가장 가까운 문서 '{title}'에 응대 예시가 없어 보류 답변을 "
                                 "드립니다.", values)
        questions = split_questions(inquiry) if inquiry.strip() else []
        # A message that asks one thing is about it: its own vector (made for the retrieval)
        # stands for the question's, and no clause is embedded again (~10 ms a query).
        asked = [self._asked(q, embed, q.text if len(questions) > 1 else inquiry)
                 for q in questions]
        plan = self._plan(retrieval, script, asked, channel, len(first), search)
        builder = _Builder(channel, values)
        builder.add_plain(first)
        if as_of is not None:
            builder.add_as_of(as_of, [s for answer in plan.answers for s in answer], inquiry)
        for number, answer in enumerate(plan.answers):
            for chunk, sentence in answer:
                builder.add_passage(chunk, [without_name(sentence)],
                                    paragraph=bool(number) and sentence == answer[0][1])
        if channel != "chat":
            builder.add_plain(CLOSING[channel], paragraph=True)
        draft = builder.build(self._internal_sentences)
        draft.optional = renumbered(
            [OptionalSentence(text=builder.register(without_name(s)), source=builder.source(c))
             for c, s in plan.optional if _normalise(s) not in self._internal_sentences],
            draft.citations)
        return draft

    def _script(self, article_id: str, channel: str) -> Chunk | None:
        scripts = [c for c in self._by_article.get(article_id, []) if c.kind == "script"]
        channel_name = {"board": "게시판", "phone": "전화"}.get(channel)
        specific = [c for c in scripts if channel_name and c.section.endswith(channel_name)]
        general = [c for c in scripts if c.section == "응대 예시"]
        chosen = specific or general or scripts
        return chosen[0] if chosen else None

    def _asked(self, question: Question, embed: Callable[[str], np.ndarray] | None,
               meaning: str) -> _Asked:
        """A question with its topic words and, when sentences have vectors, the vector of
        `meaning` (the question, or the whole message when it asks only this)."""
        lazily = None
        if embed is not None and self._text_vectors is not None:
            def lazily() -> np.ndarray:
                return embed(meaning)
        return _Asked(text=question.text, words=frozenset(self._words(question.text)),
                      embed=lazily)

    def _plan(self, retrieval: RetrievalResult, script: Chunk, questions: list[_Asked],
              channel: str, opening_chars: int,
              search: Callable[[str], RetrievalResult] | None) -> _Plan:
        """The sentences that answer each question, in the budget, and what did not fit.

        The script is the approved answer to what its article is about, so it answers the
        first question unless it does not speak of what was asked; a question the script
        leaves open gets its own best sentences (the first article's for the first question,
        placed first; any retrieved article's for a later one, in a paragraph of its own)."""
        pool = self._pool(retrieval, script, channel)
        script_words = frozenset().union(*(c.words for c in pool if c.chunk.id == script.id))
        own: list[list[tuple[Chunk, str]]] = []  # per question: its specific answer
        for question in questions:
            words = question.words
            covered = self._weight(words & script_words) / (self._weight(words) or 1.0)
            # For the first question only the words the script leaves open choose a sentence
            # of their own: the script's words would pick any sentence of its article.
            # The first question is the first article's to answer: a risk flag or the agent
            # chose that article, and the draft follows it. Later ones may be another's.
            choices = pool if own else [c for c in pool if c.weight == ARTICLE_WEIGHTS[0]]
            answer = self._matched_question(question, choices) or \
                ([] if covered >= SCRIPT_COVERS else
                 self._best_sentences(question, words - script_words if not own else words,
                                      choices))
            if own and not answer and covered < SCRIPT_COVERS and search is not None:
                answer = self._searched_answer(question, search(question.text), script,
                                               channel)
            if answer or not own:
                own.append(answer)
        budget = self._budgets.for_channel(channel, max(1, len(own))) - \
            (opening_chars if channel == "chat" else 0)
        said, length, spare = "", 0, []
        kept: dict[int, list[tuple[Chunk, str]]] = {}
        # Priority: each question's own answer, then the first article's sentences, best first.
        first = self._ranked_first_articles(questions, pool)
        key = self._key_sentences(script)
        ranked = [(n, c, s) for n, answer in enumerate(own) for c, s in answer] + \
            [(_FILL, c, s) for c, s in (first or key) if _usable(s) or not any(own)]
        vectors = {c.sentence: c.vector for c in pool if c.vector is not None}
        meant: list[np.ndarray] = []  # the vectors of what the draft says
        for number, chunk, sentence in ranked:
            if _already_said(sentence, said) or _says_again(sentence, said) or \
                    self._meant_already(vectors.get(sentence), meant, sentence, said):
                continue
            together = self._with_lead(chunk, sentence, said)
            cost = sum(len(s) + 1 for s in together)  # + the space before each
            if kept and length + cost > budget:
                spare.append((chunk, " ".join(together)))
                continue
            group = kept.setdefault(self._group(number, own, kept), [])
            for text in together:
                group.append((chunk, text))
                said += text
                if text in vectors:
                    meant.append(vectors[text])
            length += cost
        answers = [kept[n] for n in sorted(kept)]
        optional: list[tuple[Chunk, str]] = []
        for chunk, sentence in spare + self._related(questions, pool):
            if len(optional) == MAX_OPTIONAL:
                break
            if not _already_said(sentence, said):
                sentence = " ".join(self._with_lead(chunk, sentence, said))
                optional.append((chunk, sentence))
                said += sentence
        return _Plan(answers=answers, optional=optional)

    def _with_lead(self, chunk: Chunk, sentence: str, said: str) -> list[str]:
        """The sentence, after the one of its list item it leans on when the draft has not
        said that one: "반품 배송비는 월 2회까지 리클로짓이 부담해요." alone promises free returns
        to everyone; its item's first sentence says it is for 안심반품 상품."""
        lead = self._facts_of(chunk).leads.get(sentence) if self._tokenizer else None
        if lead is None or lead in said or _already_said(lead, said):
            return [sentence]
        return [lead, sentence]

    @staticmethod
    def _group(number: int, own: list[list[tuple[Chunk, str]]],
               kept: dict[int, list[tuple[Chunk, str]]]) -> int:
        """Which answer a chosen sentence joins. A question's own answer is its own; a key
        fact answers the first question when the script does (the best one, and all of them
        for a one-question message), and otherwise follows every question's answer, in a
        paragraph of its own: a later answer is not pushed past the first lines by facts
        nobody asked for (dev: answer-first +3 facts)."""
        if number != _FILL:
            return number
        if len(own) < 2 or (not own[0] and not kept.get(0)):
            return 0
        return len(own)

    def _pool(self, retrieval: RetrievalResult, script: Chunk,
              channel: str) -> list[_Candidate]:
        """Every customer-facing sentence of the retrieved articles, weighted by the article's
        rank (the draft follows the first; another may answer a second question)."""
        if not (self._tokenizer and self._idf):
            return []
        articles = list(dict.fromkeys(p.article_id for p in retrieval.passages))
        retrieved = {p.chunk.id for p in retrieval.passages}
        found = []
        for rank, article_id in enumerate(articles[:MAX_ARTICLES]):
            weight = ARTICLE_WEIGHTS[min(rank, len(ARTICLE_WEIGHTS) - 1)]
            for chunk in self._by_article.get(article_id, []):
                if chunk.internal or (chunk.kind == "script" and chunk.id != script.id
                                      and self._script(article_id, channel) != chunk):
                    continue  # the first article's script for this channel, or another's
                facts = self._facts_of(chunk)
                for sentence, _, words in facts.sentences:
                    if not _usable(sentence) or (chunk.kind == "script" and _OPENING.search(
                            sentence) and not _NUMBER.search(sentence)):
                        continue
                    found.append((chunk, sentence, words, weight, facts))
        passages = self._vectors_for([f[1] for f in found])
        return [_Candidate(chunk=chunk, sentence=sentence, words=words, weight=weight,
                           question=facts.question_words, retrieved=chunk.id in retrieved,
                           vector=passages.get(sentence))
                for chunk, sentence, words, weight, facts in found]

    def _searched_answer(self, question: _Asked, found: RetrievalResult, script: Chunk,
                         channel: str) -> list[tuple[Chunk, str]]:
        """A later question's answer from its own retrieval ("… 괜찮은거죠? 그리고 환불은
        얼마나 걸려요": the refund article may not be among the whole message's): the anticipated
        question it asks again, or the first article's best sentences; none when that
        retrieval is not confident either."""
        if not found.grounded or not found.passages:
            return []
        pool = [c for c in self._pool(found, script, channel)
                if c.weight == ARTICLE_WEIGHTS[0]]
        return self._matched_question(question, pool) or \
            self._best_sentences(question, question.words, pool)

    @staticmethod
    def _meant_already(vector: np.ndarray | None, meant: list[np.ndarray], sentence: str,
                       said: str) -> bool:
        """A sentence that says in other words what the draft says ("배송비는 수수료 계산에서
        제외돼요" after "배송비에는 수수료가 붙지 않으며"): e5 puts the two this close, and it
        states no number the draft does not."""
        if vector is None or not meant or _new_numbers(sentence, said):
            return False
        return max(float(vector @ other) for other in meant) >= SAME_MEANING

    def _vectors_for(self, sentences: list[str]) -> dict[str, np.ndarray]:
        """Unit vectors of `sentences`, embedded (or read from the cache) once each."""
        if self._text_vectors is None or not sentences:
            return {}
        known = self._vectors
        missing = [t for t in dict.fromkeys(sentences) if t not in known]
        if missing:
            fresh = {t: unit(v) for t, v in self._text_vectors(missing, "passage").items()}
            with self._vectors_lock:  # replaced whole: other threads may be reading it
                known = self._vectors = {**self._vectors, **fresh}
        return known

    def _ranked_first_articles(self, questions: list[_Asked],
                               pool: list[_Candidate]) -> list[tuple[Chunk, str]]:
        """The first RANKED_ARTICLES articles' sentences that state a fact or an asked word,
        the best short answers first."""
        words = frozenset().union(*(q.words for q in questions))
        scored = []
        for index, candidate in enumerate(pool):
            if candidate.weight < ARTICLE_WEIGHTS[RANKED_ARTICLES - 1]:
                continue
            if _YES_OR_NO.match(candidate.sentence) or _EXAMPLE.match(candidate.sentence):
                # "네, 신청은 가능해요." answers its own `### Q.`, not this message; an example
                # ("예를 들어 상품가 28,000원에 …") illustrates a rule the draft may not state.
                continue
            shared = self._weight(words & candidate.words)
            if not shared and not _NUMBER.search(candidate.sentence):
                continue  # says nothing asked and no fact: filler in a short reply
            score = (shared * ASKED_WEIGHT +
                     KIND_BONUS.get(candidate.chunk.kind, 0.0) +
                     (NUMBER_BONUS if _NUMBER.search(candidate.sentence) else 0.0)) \
                * candidate.weight
            scored.append((-score / len(candidate.sentence) ** LENGTH_POWER, index, candidate))
        scored.sort(key=lambda entry: entry[:2])
        return [(c.chunk, c.sentence) for _, _, c in scored]

    def _meaning(self, question: _Asked, candidate: _Candidate) -> float:
        """How close in meaning a sentence is to the question (e5 cosine over a floor, scaled
        to weigh like the IDF of a telling word); 0 without vectors."""
        if question.vector is None or candidate.vector is None:
            return 0.0
        return MEANING_WEIGHT * max(0.0, _cosine(question.vector, candidate.vector) -
                                    MEANING_FLOOR)

    def _matched_question(self, question: _Asked,
                          pool: list[_Candidate]) -> list[tuple[Chunk, str]]:
        """The answer of the KB's anticipated question that the customer asks again: most of
        its telling words (IDF-weighted) are in the customer's question, two words at least.
        Only the first article's questions, or a question the retrieval itself found."""
        best, best_match = None, 0.0
        for candidate in pool:
            if not candidate.question or not (candidate.weight == ARTICLE_WEIGHTS[0]
                                              or candidate.retrieved):
                continue
            match = self._same_words(question.words, candidate)
            if match > best_match:
                best, best_match = candidate.chunk, match
        if best is None or best_match < QUESTION_MATCH:
            return []
        return [(c.chunk, c.sentence) for c in pool if c.chunk.id == best.id
                and not _EXAMPLE.match(c.sentence)][:MAX_ANSWER_SENTENCES]

    def _same_words(self, words: frozenset[str], candidate: _Candidate) -> float:
        """The share of the KB question's telling words the customer asks (0 when they share
        too little: "어디서 보나요" shares only words every question has)."""
        shared = words & candidate.question
        if len(shared) < 2 or self._weight(shared) < ASKED_MIN_SCORE:
            return 0.0
        # Most of the KB question is asked, and it is much of what is asked: "포인트
        # 유효기간을 연장할 수 있나요?" is not "환불 사이에 포인트 유효기간이 지났어요".
        if self._weight(shared) < ASKED_SHARE * self._weight(words):
            return 0.0
        return self._weight(shared) / (self._weight(candidate.question) or 1.0)

    def _best_sentences(self, question: _Asked, words: frozenset[str],
                        pool: list[_Candidate]) -> list[tuple[Chunk, str]]:
        """The sentence that answers the question best (its telling words and its meaning),
        and the one after it in its passage when that one speaks of them too or states a
        number."""
        if not (words and self._idf):
            return []
        scored = sorted(((self._score(words, c) + self._meaning(question, c) * c.weight,
                          index) for index, c in enumerate(pool)
                         if not _EXAMPLE.match(c.sentence)),  # an example answers nothing
                        key=lambda entry: -entry[0])
        if not scored or scored[0][0] < ASKED_MIN_SCORE:
            return []
        first = pool[scored[0][1]]
        picked = [(first.chunk, first.sentence)]
        following = pool[scored[0][1] + 1] if scored[0][1] + 1 < len(pool) else None
        if following is not None and following.chunk.id == first.chunk.id and \
                not _EXAMPLE.match(following.sentence) and \
                (self._score(words, following) > 0 or _NUMBER.search(following.sentence)):
            picked.append((following.chunk, following.sentence))
        return picked

    def _score(self, words: frozenset[str], candidate: _Candidate) -> float:
        """How well a sentence answers: the weight of the question's words it shares, more for
        the script (approved wording) and for a stated number (the fact asked for)."""
        shared = self._weight(words & candidate.words)
        if not shared:
            return 0.0
        bonus = NUMBER_BONUS if _NUMBER.search(candidate.sentence) else 0.0
        if candidate.chunk.kind == "script":
            bonus += SCRIPT_BONUS
        return (shared + bonus) * candidate.weight

    def _words(self, text: str) -> set[str]:
        """The topic words of a question (its question words say nothing of the topic)."""
        return set(self._tokenizer(text)) - QUESTION_WORDS if self._tokenizer else set()

    def _weight(self, words: Iterable[str]) -> float:
        # Summed exactly: a set's order changes with each process's string hashes, and a
        # last-bit difference would flip a threshold or a tie between two machines.
        return math.fsum(self._idf.get(w, 0.0) for w in words)

    def _related(self, questions: list[_Asked], pool: list[_Candidate]) -> list[
            tuple[Chunk, str]]:
        """Sentences of the first article that share telling words with a question."""
        if not (self._idf and questions):
            return []
        words = frozenset().union(*(q.words for q in questions))
        scored = [(self._score(words, c), c) for c in pool
                  if c.weight == ARTICLE_WEIGHTS[0] and c.chunk.kind != "script"]
        scored = [entry for entry in scored if entry[0] >= ASKED_MIN_SCORE]
        scored.sort(key=lambda entry: -entry[0])
        return [(c.chunk, c.sentence) for _, c in scored]

    def _key_sentences(self, script: Chunk) -> list[tuple[Chunk, str]]:
        """The script's sentences without its greeting, thanks or apology."""
        return [(script, s) for s in _sentences(script.text) if not _OPENING.search(s)
                or _NUMBER.search(s)]

    def _facts_of(self, chunk: Chunk) -> ChunkFacts:
        """The chunk's whole sentences and its anticipated question, tokenised once per text."""
        cached = self._sentence_cache.get(chunk.content_hash)
        if cached is None:  # Kiwi: ~0.3 ms a sentence, so once per chunk text
            assert self._tokenizer is not None
            question = ""
            if chunk.kind == "question" and chunk.text.startswith("Q."):
                question = chunk.text.partition("\n")[0].removeprefix("Q.").strip()
            cached = ChunkFacts(
                sentences=tuple((sentence, item, frozenset(self._tokenizer(sentence)))
                                for sentence, item in _whole_sentences(_without_question(chunk))
                                if not ABOUT_THE_CUSTOMER.search(sentence)),
                question=question,
                question_words=frozenset(self._tokenizer(question)) if question
                else frozenset(),
                leads=_leads(_without_question(chunk)))
            self._sentence_cache[chunk.content_hash] = cached
        return cached

    def prepare(self) -> None:
        """Tokenise every article's sentences and questions, and embed the sentences, now (at
        start-up), not in a first request."""
        if self._tokenizer and self._idf:
            facts = [self._facts_of(c) for chunks in self._by_article.values() for c in chunks
                     if not c.internal]
            self._vectors_for([s for f in facts for s, _, _ in f.sentences])

    def _holding(self, channel: str, first: str, reason: str, reason_ko: str,
                 values: dict[str, str]) -> Draft:
        """The reply that promises a checked answer: an angry customer still gets empathy."""
        builder = _Builder(channel, values)
        builder.add_plain(first)
        builder.add_plain(HOLDING[channel])
        draft = builder.build(self._internal_sentences)
        draft.grounded = False
        draft.reason, draft.reason_ko = reason, reason_ko
        return draft


UNSEEN_SHOWN = 5  # the words no passage uses, named in a held draft's reason


def _not_grounded_ko(retrieval: RetrievalResult) -> str:
    if retrieval.reason_ko:  # retrieval's own, more specific reason (a service not offered)
        return retrieval.reason_ko
    unseen = retrieval.unseen_words[:UNSEEN_SHOWN]
    words = ""
    if unseen:
        words = ", ".join(f"'{w}'" for w in unseen)
        words += f"{_topic_particle(unseen[-1])} 게시 문서 어디에도 없는 말이고, "
    if not retrieval.passages:
        return words + "이 문의에 맞는 게시 문서가 없습니다."
    return (f"{words}가장 가까운 문서도 근거 신뢰도가 {retrieval.confidence:.3f}로 기준보다 "
            "낮습니다.")


class _Builder:
    """Collect sentences with their citations, in the channel's register."""

    def __init__(self, channel: str, values: dict[str, str]) -> None:
        self.channel = channel
        self.values = values
        self.paragraphs: list[list[Sentence]] = [[]]
        self.citations: dict[str, Citation] = {}
        self.unfilled: list[str] = []

    def add_plain(self, text: str, *, paragraph: bool = False) -> None:
        if paragraph:
            self._new_paragraph()
        self._append(Sentence(text=self._register(self._fill(text))))

    def add_passage(self, chunk: Chunk, sentences: list[str], *,
                    paragraph: bool = False) -> None:
        if paragraph:
            self._new_paragraph()
        citation = self.citations.setdefault(chunk.id, self.source(chunk))
        for text in sentences:
            self._append(Sentence(text=self._register(self._fill(text)),
                                  citations=(citation.number,)))

    def add_as_of(self, day: dt.date, answer: list[tuple[Chunk, str]], inquiry: str) -> None:
        """Say which day's rule the answer states, right after the opening (see
        `as_of_sentence`), citing the passage it takes the rule from: the first quantity
        whose topic the customer named ("수수료" for 수수료가 얼마예요), else the first one."""
        stated = [(chunk, filled, match["topic"]) for chunk, sentence in answer
                  if (match := _TOPIC_AND_VALUE.search(filled := self._fill(sentence,
                                                                             track=False)))]
        asked = [found for found in stated if found[2] in inquiry]
        if not (asked or stated):
            self._append(Sentence(text=self._register(as_of_sentence(day, "") or "")))
            return
        chunk, filled, _ = (asked or stated)[0]
        citation = self.citations.setdefault(chunk.id, self.source(chunk))
        self._append(Sentence(text=self._register(as_of_sentence(day, filled) or ""),
                              citations=(citation.number,)))

    def source(self, chunk: Chunk) -> Citation:
        """The chunk's citation: its number in this draft, or the next free one (an optional
        sentence's is settled by `renumbered`)."""
        return self.citations.get(chunk.id) or Citation(
            number=len(self.citations) + 1, chunk_id=chunk.id, article_id=chunk.article_id,
            title=chunk.title, section=chunk.section, version=chunk.version)

    def register(self, text: str) -> str:
        """A sentence as this draft would say it (placeholders filled, the channel's register)."""
        return self._register(self._fill(text, track=False))

    def _new_paragraph(self) -> None:
        if self.paragraphs[-1]:
            self.paragraphs.append([])

    def _append(self, sentence: Sentence) -> None:
        self.paragraphs[-1].append(sentence)

    def _fill(self, text: str, *, track: bool = True) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in self.values:
                return self.values[name]
            if track and match.group(0) not in self.unfilled:
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


def _usable(sentence: str) -> bool:
    """A whole sentence with no blank but the customer's name or order number: a table cell,
    a list fragment or a case-specific blank ({운송장번호}) does not answer on its own."""
    blanks = {m.group(1) for m in PLACEHOLDER.finditer(sentence)}
    return bool(_COMPLETE.search(sentence)) and not _LABEL.match(sentence) and \
        blanks <= {"고객명", "주문번호"}


def without_name(sentence: str) -> str:
    """The customer is named once, in the opening: a script sentence drops its '{고객명}님,'."""
    return _NAME_FIRST.sub("", sentence).replace("{고객명}님", "고객님")


def _says_again(sentence: str, said: str) -> bool:
    """A short reply says a fact once: a sentence whose numbers are all said already and
    whose wording is largely said ("중복 승인은 1영업일 안에 자동으로 취소돼요" in three
    articles' words) adds length, not an answer."""
    return bool(_NUMBER.search(sentence)) and not _new_numbers(sentence, said) and \
        bigram_share(sentence, said) >= SAID_AGAIN


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


def _leads(text: str) -> dict[str, str]:
    """The sentence each sentence leans on: a list item's first, when it names a case ("-
    안심반품 상품이라면 …. 반품 배송비는 월 2회까지 리클로짓이 부담해요.": the later sentences
    hold only in it), and the one before a sentence that goes on from it ("그래도 안 되면 …")."""
    leads = {}
    before = ""
    for line in text.split("\n"):
        sentences = _sentences(line)
        if line.lstrip().startswith("- ") and sentences:
            first, *later = sentences
            if _usable(first) and _CASE.search(first):
                leads.update((sentence, first) for sentence in later)
        for sentence in sentences:
            if _GOES_ON.match(sentence) and before and _usable(before):
                leads.setdefault(sentence, before)
            before = sentence
    return leads


def _new_numbers(text: str, said: str) -> bool:
    """True when `text` states a number-bearing fact (e.g. 3영업일) that `said` does not.

    A fact is the number with its unit, not the particle after it: "48시간이 지나도" states
    what "48시간까지 기다려" did."""
    facts = {_QUANTITY_SPACE.sub("", m) for m in _QUANTITY.findall(text)}
    compact = _QUANTITY_SPACE.sub("", said)
    return any(fact not in compact for fact in facts)


def _normalise(text: str) -> str:
    return re.sub(r"\s+", "", text).strip(".!?")


def _normalised_sentences(text: str) -> set[str]:
    return {n for n in (_normalise(s) for s in _sentences(text)) if len(n) >= 8}


# -- policy as of a date ------------------------------------------------------------------

_TOPIC_AND_VALUE = re.compile(
    r"(?P<topic>[가-힣]+?)(?:은|는)\s(?:[^.?!]*?\s)?"
    r"(?P<value>\d[\d,]*(?:\.\d+)?\s?(?:영업일|일|시간|원|%|P|cm))")
_NO_FINAL_CONSONANT_UNITS = ("%", "P", "cm")  # 퍼센트, 포인트, 센티미터 take 예요


def as_of_marker(day: dt.date) -> str:
    """The words every `as_of_sentence` for `day` starts with: "주문하신 11월 30일 기준"."""
    return f"주문하신 {day.month}월 {day.day}일 기준"


def as_of_sentence(day: dt.date, sentence: str) -> str | None:
    """Say which rule applies on the customer's date: "주문하신 11월 30일 기준 수수료는 5%예요."

    The topic and value come from `sentence` when it states a quantity (else None); an empty
    `sentence` gives the plain "주문하신 11월 30일 기준으로 적용되는 정책으로 안내드려요."."""
    if not sentence:
        return f"{as_of_marker(day)}으로 적용되는 정책으로 안내드려요."
    match = _TOPIC_AND_VALUE.search(sentence)
    if match is None:
        return None
    topic, value = match["topic"], match["value"].replace(" ", "")
    copula = "예요" if value.endswith(_NO_FINAL_CONSONANT_UNITS) else "이에요"
    return f"{as_of_marker(day)} {topic}{_topic_particle(topic)} {value}{copula}."


def _topic_particle(word: str) -> str:
    last = word[-1]
    has_final = "가" <= last <= "힣" and (ord(last) - ord("가")) % 28 != 0
    return "은" if has_final else "는"
