"""Check a language model's draft against the passages it was given, before an agent sees it.

Pure functions, no model and no network: the LLM drafter calls `check_draft` and falls back
to the composer's draft when it finds a problem. A draft is refused when

* a citation `[n]` points to no passage (`invalid_citation`);
* a sentence states a number, amount, period, percentage or fee that is not in a passage the
  sentence cites (`unsupported_number`), or states one with no citation at all
  (`uncited_number`);
* it shares a long run of characters with an internal memo (`internal_text`), or with the
  prompt's own instructions, which a small model tends to echo (`prompt_echo`);
* it cites nothing (`no_citation`), is empty (`empty`) or is not Korean (`not_korean`).

Numbers are compared as (value, unit) facts, so 1만 원 = 10,000원, 5프로 = 5%, 3~5영업일
states 3영업일 and 5영업일, and 3일 is not 13일 nor 3영업일.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

INTERNAL_NGRAM = 12  # normalised characters shared with a memo that count as a leak
MIN_HANGUL_SHARE = 0.5

# Longest first: 영업일 before 일, 개월 before 개, 시간 before 시.
_UNITS = ("영업일", "개월", "주일", "시간", "퍼센트", "프로", "단계", "등급", "일", "시", "분",
          "초", "주", "달", "년", "월", "원", "%", "％", "회", "번", "건", "개", "점", "세",
          "차", "배", "cm", "mm", "kg", "g")
_UNIT_ALIASES = {"퍼센트": "%", "프로": "%", "％": "%", "달": "개월", "주일": "주"}
_NUM = r"\d[\d,]*(?:\.\d+)?"
_FACT = re.compile(
    rf"(?<![\d.,])({_NUM})(?:\s*(?:~|〜|–|-|에서)\s*({_NUM}))?\s*(만|천)?\s*"
    rf"({'|'.join(re.escape(u) for u in _UNITS)})?", re.IGNORECASE)
# Native Korean counts that state a period as surely as digits do.
_WORD_FACTS = {"하루": ("1", "일"), "이틀": ("2", "일"), "사흘": ("3", "일"),
               "나흘": ("4", "일"), "일주일": ("1", "주"), "한달": ("1", "개월"),
               "한 달": ("1", "개월")}
_WORD_FACT = re.compile("|".join(re.escape(w) for w in sorted(_WORD_FACTS, key=len,
                                                                   reverse=True)))
_MULTIPLIER = {"만": 10_000, "천": 1_000}

_CITATION = re.compile(r"\[\s*(\d+(?:\s*,\s*\d+)*)\s*\]")
_CITATIONS_AFTER_END = re.compile(r"([.!?。])((?:\s*\[\s*\d+(?:\s*,\s*\d+)*\s*\])+)")
_SENTENCE_END = re.compile(r"(?<=[.!?。])\s+")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_NOT_TEXT = re.compile(r"[\W_]+", re.UNICODE)

REASONS_KO = {
    "empty": "빈 응답",
    "not_korean": "한국어가 아닌 응답",
    "no_citation": "인용 없음",
    "invalid_citation": "없는 자료 번호 인용",
    "uncited_number": "출처 없이 숫자를 말함",
    "unsupported_number": "자료에 없는 숫자·기간·금액",
    "internal_text": "내부 메모 문구 포함",
    "prompt_echo": "지시문을 답변에 옮김",
    "dropped_required": "꼭 남길 문장(적용 기준일)을 뺌",
    "timeout": "응답 시간 초과",
    "error": "LLM 호출 오류",
}


@dataclass(frozen=True, kw_only=True)
class Fact:
    """A number a text states, with its unit ('' when it has none)."""

    value: str
    unit: str

    def __str__(self) -> str:
        return f"{self.value}{self.unit}"


@dataclass(frozen=True, kw_only=True)
class CheckedSentence:
    text: str                    # without citation marks
    citations: tuple[int, ...]   # passage numbers, 1-based, as the model wrote them
    item: bool = False           # a list item ("- ...")
    paragraph: int = 0           # which paragraph of the draft it belongs to


@dataclass(frozen=True, kw_only=True)
class Problem:
    code: str
    detail: str


@dataclass(frozen=True, kw_only=True)
class DraftCheck:
    sentences: list[CheckedSentence]
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def reason(self) -> str:
        """The first problem's code ('' when the draft passed)."""
        return self.problems[0].code if self.problems else ""

    @property
    def detail(self) -> str:
        return "; ".join(f"{p.code}: {p.detail}" for p in self.problems)


def normalise(text: str) -> str:
    """NFKC, lower case, no whitespace or punctuation: the form memo text is compared in."""
    return _NOT_TEXT.sub("", unicodedata.normalize("NFKC", text).lower())


def numeric_facts(text: str) -> list[Fact]:
    """Every number `text` states, as facts; ranges state both ends with the unit."""
    facts: list[Fact] = []
    for match in _FACT.finditer(text):
        first, second, multiplier, unit = match.groups()
        unit = _UNIT_ALIASES.get(unit or "", (unit or "").lower())
        for number in (first, second):
            if number is not None:
                facts.append(Fact(value=_value(number, multiplier), unit=unit))
    for match in _WORD_FACT.finditer(text):
        value, unit = _WORD_FACTS[match.group()]
        facts.append(Fact(value=value, unit=unit))
    return facts


def _value(number: str, multiplier: str | None) -> str:
    digits = number.replace(",", "")
    try:
        value = float(digits) * _MULTIPLIER.get(multiplier or "", 1)
    except ValueError:
        return digits
    return str(int(value)) if value == int(value) else f"{value:g}"


def _supported(fact: Fact, facts: Iterable[Fact]) -> bool:
    """The passage states the value with the same unit, or bare (a table cell, say)."""
    return any(f.value == fact.value and f.unit in (fact.unit, "") for f in facts)


def split_sentences(text: str) -> list[CheckedSentence]:
    """The draft's sentences with the passage numbers each cites ([1], [1][2] or [1, 2])."""
    text = _CITATIONS_AFTER_END.sub(r"\2\1", text.strip())  # "...요.[1]" reads as "...요[1]."
    out: list[CheckedSentence] = []
    for number, block in enumerate(p for p in re.split(r"\n\s*\n", text) if p.strip()):
        for line in block.split("\n"):
            item = bool(_BULLET.match(line))
            line = _BULLET.sub("", line).strip()
            for piece in _SENTENCE_END.split(line):
                cited = tuple(int(n) for m in _CITATION.finditer(piece)
                              for n in m.group(1).split(","))
                clean = re.sub(r"\s+([.!?。,])", r"\1", _CITATION.sub("", piece)).strip()
                if clean:
                    out.append(CheckedSentence(text=clean, citations=cited, item=item,
                                               paragraph=number))
    return out


class ForbiddenText:
    """Character n-grams of text a reply must not contain (internal memos, the prompt's own
    instructions), less those that customer-facing text also uses."""

    def __init__(self, internal_texts: Iterable[str], public_texts: Iterable[str] = (),
                 n: int = INTERNAL_NGRAM) -> None:
        self.n = n
        public: set[str] = set()
        for text in public_texts:
            public |= self._grams(text)
        self._grams_to_source: dict[str, str] = {}
        for text in internal_texts:
            for gram in self._grams(text) - public:
                self._grams_to_source.setdefault(gram, text)

    def _grams(self, text: str) -> set[str]:
        compact = normalise(text)
        return {compact[i:i + self.n] for i in range(len(compact) - self.n + 1)}

    def __len__(self) -> int:
        return len(self._grams_to_source)

    def find(self, text: str) -> str | None:
        """The first internal n-gram `text` contains, or None."""
        compact = normalise(text)
        for i in range(len(compact) - self.n + 1):
            gram = compact[i:i + self.n]
            if gram in self._grams_to_source:
                return gram
        return None


def check_draft(text: str, passages: Sequence[str], *, internal: ForbiddenText | None = None,
                known: Sequence[str] = (), prompt: ForbiddenText | None = None) -> DraftCheck:
    """Check `text` (cites `passages` as [1]..[n]); `known` is what the agent typed (a name,
    an order number), whose numbers a draft may repeat; `prompt` holds the instructions the
    model was given, which must not come back as the reply."""
    sentences = split_sentences(text)
    if not sentences:
        return DraftCheck(sentences=[], problems=[Problem(code="empty",
                                                          detail="the model returned no text")])
    problems: list[Problem] = []
    bad = sorted({n for s in sentences for n in s.citations if not 1 <= n <= len(passages)})
    if bad:
        problems.append(Problem(code="invalid_citation",
                                detail=f"cites {', '.join(f'[{n}]' for n in bad)} but there "
                                       f"are {len(passages)} passages"))
    if internal is not None and (gram := internal.find(text)):
        problems.append(Problem(code="internal_text", detail=f"shares {gram!r} with a memo"))
    if prompt is not None and (gram := prompt.find(text)):
        problems.append(Problem(code="prompt_echo",
                                detail=f"repeats the instructions ({gram!r})"))
    passage_facts = [numeric_facts(p) for p in passages]
    known_facts = [f for k in known for f in numeric_facts(k)]
    for sentence in sentences:
        facts = [f for f in numeric_facts(sentence.text) if not _supported(f, known_facts)]
        if not facts:
            continue
        cited = [n for n in sentence.citations if 1 <= n <= len(passages)]
        if not cited:
            problems.append(Problem(code="uncited_number",
                                    detail=f"{', '.join(map(str, facts))} without a citation "
                                           f"in {sentence.text!r}"))
            continue
        pool = [f for n in cited for f in passage_facts[n - 1]]
        missing = [f for f in facts if not _supported(f, pool)]
        if missing:
            problems.append(Problem(
                code="unsupported_number",
                detail=f"{', '.join(map(str, missing))} is not in "
                       f"{''.join(f'[{n}]' for n in cited)}: {sentence.text!r}"))
    if not any(s.citations for s in sentences):
        problems.append(Problem(code="no_citation", detail="no sentence cites a passage"))
    if _hangul_share(text) < MIN_HANGUL_SHARE:
        problems.append(Problem(code="not_korean", detail="most letters are not Hangul"))
    return DraftCheck(sentences=sentences, problems=problems)


def _hangul_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    return sum("\uac00" <= c <= "\ud7a3" or "\u3131" <= c <= "\u318e" for c in letters) \
        / len(letters)
