"""Find lines of different articles that state one fact differently, or one rule twice.

A fact is a number with its unit (7일, 3영업일, 48시간, 9,900원, 5%, 5,000P, 2cm) and the
content words near it (반품 신청, 정산, 수수료). Two customer-facing lines of different
published articles contradict when they give the same kind of quantity about the same thing
with different values. "The same thing" is the other article's line whose words near the number
are closest: an article that also says the same value in a closer line agrees, so a fact is
compared with its best match only. Words found near numbers in many articles (경우, 상품) say
little and weigh little (inverse document frequency).

A near-duplicate is a line whose content words are nearly all in a line of another article: the
same rule written twice, which an editor changing one should see.

The caller passes the tokenizer (Kiwi's content morphemes in practice): this stage must not
import the search stage that owns it.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from suggester.knowledge.articles import INTERNAL_SECTIONS, Article

Tokenizer = Callable[[str], list[str]]

CONTRADICTION, DUPLICATE = "contradiction", "duplicate"
# Unit spellings → the kind of quantity they measure. 영업일 and 일 are different kinds.
UNITS = {"영업일": "영업일", "일": "일", "시간": "시간", "원": "원", "%": "%", "퍼센트": "%",
         "P": "P", "포인트": "P", "cm": "cm"}
_NUMBER = r"\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?"
_FACT = re.compile(
    rf"(?<![\d.,])(?P<low>{_NUMBER})(?:\s*[~∼-]\s*(?P<high>{_NUMBER}))?\s?"
    r"(?P<unit>영업일|일|시간|원|%|퍼센트|P|포인트|cm)(?![a-zA-Z])"
)
# "12월 15일", "매월 10일" name a day, not a length of time.
_CALENDAR_DAY = re.compile(r"(?:월|매달|매월)\s*$")
# Worked examples ("예: 상품가 8,000원 + 배송비 1,900원") illustrate a rule with made-up values.
_EXAMPLE = re.compile(r"예를 들어|예시|(?:^|\s|\()예\s?[:)]|→|[+=×x]\s?\d")
_CLAUSE_BREAK = re.compile(r",(?!\d{3})|[;:()\[\]/|]|\.\s")
_MARKUP = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+|\*\*|`|^\s*>\s?")
LEFT_CONTEXT_CHARS = 16   # what the number is about: "반품 신청은 수령 후 7일"
RIGHT_CONTEXT_CHARS = 12  # the predicate after a number: "7일 이내에 신청" but not the next clause
GENERIC_SHARE = 0.3       # words near numbers in more than this share of articles say little
GENERIC_WEIGHT = 0.3
MIN_LINE_SIMILARITY = 0.3
MIN_SIMILARITY = 0.2
MIN_SHARED_WORDS = 1
DUPLICATE_SHARE = 0.75     # Jaccard of two lines' content words: the same rule, reworded
MIN_DUPLICATE_WORDS = 6   # shorter lines ("배송비는 3,000원이에요") are facts, not passages


@dataclass(frozen=True, kw_only=True)
class Line:
    """One customer-facing line of a published article, with its content words."""

    path: Path
    article_id: str
    number: int
    text: str
    words: frozenset[str]


@dataclass(frozen=True, kw_only=True)
class Fact:
    line: Line
    value: str   # as written, without thousands separators: "3", "3~5", "9900"
    unit: str    # the kind of quantity: a value of UNITS
    words: frozenset[str]  # content words near the number

    @property
    def label(self) -> str:
        return f"{self.value}{self.unit}"


@dataclass(frozen=True, kw_only=True, order=True)
class Conflict:
    """Two lines of different articles: a contradiction or the same rule written twice."""

    path: Path
    line: int
    other_path: Path
    other_line: int
    kind: str
    text: str
    other_text: str
    detail: str  # "7일 ↔ 14일" or "겹치는 내용 92%"
    shared: tuple[str, ...] = ()

    def key(self) -> tuple[str, int, str, int]:
        """Both ends by file name and line, in a stable order (what the judged fixture keeps)."""
        ends = sorted([(self.path.name, self.line), (self.other_path.name, self.other_line)])
        return (ends[0][0], ends[0][1], ends[1][0], ends[1][1])

    def format(self, root: Path | None = None, severity: str = "warning") -> str:
        """`path:line ↔ path:line: severity: kind: detail`, paths relative to `root`."""
        return (f"{_relative(self.path, root)}:{self.line} ↔ "
                f"{_relative(self.other_path, root)}:{self.other_line}: {severity}: "
                f"{self.kind}: {self.detail}")


def _relative(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return str(path.relative_to(root))
        except ValueError:
            pass
    return str(path)


class ConsistencyChecker:
    """Compare articles' facts and passages; reads each article source once (cached by hash)."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer
        # One entry per article path, the last source read there: an editor typing in the
        # preview makes a new source per keystroke, and old ones are never asked for again.
        self._cache: dict[str, tuple[str, list[Line], list[Fact]]] = {}

    def check_kb(self, articles: Iterable[Article]) -> list[Conflict]:
        """Every conflict between published articles, each pair reported once."""
        published = [a for a in articles if a.status == "published"]
        seen: set[tuple[str, int, str, int]] = set()
        conflicts = []
        for conflict in self._conflicts(published, published):
            if conflict.key() not in seen:
                seen.add(conflict.key())
                conflicts.append(conflict)
        return sorted(conflicts)

    def check_article(self, article: Article, others: Iterable[Article]) -> list[Conflict]:
        """Conflicts between `article` (as it would be published) and the other published ones."""
        rest = [a for a in others if a.status == "published" and a.id != article.id
                and a.path != article.path]
        return sorted(self._conflicts([article], [article, *rest]))

    def _conflicts(self, subjects: list[Article], pool: list[Article]) -> Iterator[Conflict]:
        read = {a.path: self._read(a) for a in pool}
        weights = _idf([facts for _, facts in read.values()])
        by_unit: dict[str, list[Fact]] = defaultdict(list)
        for _, facts in read.values():
            for fact in facts:
                by_unit[fact.unit].append(fact)
        for subject in subjects:
            lines, facts = read[subject.path]
            for fact in facts:
                yield from _contradictions(fact, by_unit[fact.unit], weights)
            others = [line for path, (ls, _) in read.items() if path != subject.path for line in ls]
            yield from _duplicates(lines, others)

    def facts(self, article: Article) -> list[Fact]:
        """The facts of an article's customer-facing lines."""
        return self._read(article)[1]

    def _read(self, article: Article) -> tuple[list[Line], list[Fact]]:
        digest = hashlib.sha256(article.source.encode()).hexdigest()
        cached = self._cache.get(str(article.path))
        if cached is not None and cached[0] == digest:
            return cached[1], cached[2]
        lines = [Line(path=article.path, article_id=article.id, number=number, text=text,
                      words=frozenset(self._words(text)))
                 for number, text in customer_lines(article)]
        facts = [fact for line in lines for fact in self._facts(line)]
        self._cache[str(article.path)] = (digest, lines, facts)
        return lines, facts

    def _words(self, text: str) -> list[str]:
        return [w for w in self._tokenizer(text) if not any(c.isdigit() for c in w)]

    def _facts(self, line: Line) -> Iterator[Fact]:
        for clause in _clauses(line.text):
            matches = list(_FACT.finditer(clause))
            for index, match in enumerate(matches):
                if _CALENDAR_DAY.search(clause[:match.start()]) or _EXAMPLE.search(line.text):
                    continue
                left = max(matches[index - 1].end() if index else 0,
                           match.start() - LEFT_CONTEXT_CHARS)
                right_limit = matches[index + 1].start() if index + 1 < len(matches) \
                    else len(clause)
                right = min(right_limit, match.end() + RIGHT_CONTEXT_CHARS)
                near = clause[left:match.start()] + " " + clause[match.end():right]
                value = match["low"].replace(",", "")
                if match["high"]:
                    value += "~" + match["high"].replace(",", "")
                # The line's morphemes that appear in the window: one tokenizer call per line.
                yield Fact(line=line, value=value, unit=UNITS[match["unit"]],
                           words=frozenset(w for w in line.words if w in near))


def customer_lines(article: Article) -> Iterator[tuple[int, str]]:
    """(line number, text) of each body line agents may send: not headings, not internal."""
    lines = article.source.split("\n")
    internal = False
    for offset, raw in enumerate(lines[article.body_line - 1:]):
        if raw.startswith("## "):
            internal = raw[3:].strip() in INTERNAL_SECTIONS
            continue
        if internal or raw.lstrip().startswith("#"):
            continue
        text = _MARKUP.sub("", raw).strip()
        if text:
            yield article.body_line + offset, text


def _clauses(text: str) -> Iterator[str]:
    start = 0
    for match in _CLAUSE_BREAK.finditer(text):
        yield text[start:match.start()]
        start = match.end()
    yield text[start:]


def _idf(fact_lists: list[list[Fact]]) -> dict[str, float]:
    """Weight of each word near numbers, one document per article; generic words weigh 0."""
    documents = Counter(word for facts in fact_lists
                        for word in {w for fact in facts for w in fact.words})
    total = max(len(fact_lists), 1)
    return {word: math.log(total / count) if count <= GENERIC_SHARE * total else GENERIC_WEIGHT
            for word, count in documents.items()}


def similarity(a: Fact, b: Fact, weights: dict[str, float]) -> tuple[float, int]:
    """Weighted Jaccard of the words near two numbers, and how many specific words they share."""
    shared = [weights.get(w, 0.0) for w in a.words & b.words]
    union = sum(weights.get(w, 0.0) for w in a.words | b.words)
    specific = sum(1 for weight in shared if weight > 0)
    return (sum(shared) / union if union else 0.0), specific


def _line_similarity(a: Line, b: Line, weights: dict[str, float]) -> float:
    shared = sum(weights.get(w, GENERIC_WEIGHT) for w in a.words & b.words)
    union = sum(weights.get(w, GENERIC_WEIGHT) for w in a.words | b.words)
    return shared / union if union else 0.0


def _contradictions(fact: Fact, same_unit: list[Fact],
                    weights: dict[str, float]) -> Iterator[Conflict]:
    """The best-matching fact of each other article, when none agrees and it gives a different
    value: a fact no other article confirms, contradicted by the closest line of another."""
    matches = _best_matches(fact, same_unit, weights).values()
    # Another article says the same: the fact is the KB's, not a slip of this line.
    if any(_agree(fact.value, other.value) for other in matches):
        return
    for other in matches:
        # A line that also gives the other value talks of both things ("1영업일 … 3~5영업일").
        if _says(other.line, fact, same_unit) or _says(fact.line, other, same_unit):
            continue
        yield Conflict(path=fact.line.path, line=fact.line.number, other_path=other.line.path,
                       other_line=other.line.number, kind=CONTRADICTION, text=fact.line.text,
                       other_text=other.line.text, detail=f"{fact.label} ↔ {other.label}",
                       shared=tuple(sorted(fact.words & other.words)))


def _says(line: Line, fact: Fact, same_unit: list[Fact]) -> bool:
    """Whether `line` states `fact`'s value in the same unit anywhere."""
    return any(other.line is line and _agree(other.value, fact.value) for other in same_unit)


def _best_matches(fact: Fact, candidates: list[Fact],
                  weights: dict[str, float]) -> dict[Path, Fact]:
    """Per other article, its fact about the same thing as `fact`, if any is close enough."""
    best: dict[Path, tuple[float, bool, Fact]] = {}
    for other in candidates:
        if other.line.path == fact.line.path or other.line.article_id == fact.line.article_id:
            continue
        score, specific = similarity(fact, other, weights)
        if specific < MIN_SHARED_WORDS or score < MIN_SIMILARITY \
                or _line_similarity(fact.line, other.line, weights) < MIN_LINE_SIMILARITY:
            continue
        # On an equal score an agreeing line wins: the other article says the same somewhere.
        rank = (score, _agree(fact.value, other.value), other)
        current = best.get(other.line.path)
        if current is None or rank[:2] > current[:2]:
            best[other.line.path] = rank
    return {path: other for path, (_, _, other) in best.items()}


def _agree(a: str, b: str) -> bool:
    """Same value, or one value inside the other's range ("3" and "3~5")."""
    if a == b:
        return True
    low_a, high_a = _bounds(a)
    low_b, high_b = _bounds(b)
    return (low_a <= low_b <= high_b <= high_a) or (low_b <= low_a <= high_a <= high_b)


def _bounds(value: str) -> tuple[float, float]:
    low, _, high = value.partition("~")
    return float(low), float(high or low)


def _duplicates(lines: list[Line], others: list[Line]) -> Iterator[Conflict]:
    candidates = [other for other in others if len(other.words) >= MIN_DUPLICATE_WORDS]
    by_word: dict[str, list[int]] = defaultdict(list)
    for position, other in enumerate(candidates):
        for word in other.words:
            by_word[word].append(position)
    for line in lines:
        if len(line.words) < MIN_DUPLICATE_WORDS:
            continue
        counts = Counter(position for word in line.words for position in by_word.get(word, ()))
        for position, shared in counts.items():
            other = candidates[position]
            share = shared / len(line.words | other.words)
            if share >= DUPLICATE_SHARE and other.article_id != line.article_id:
                yield Conflict(path=line.path, line=line.number, other_path=other.path,
                               other_line=other.number, kind=DUPLICATE, text=line.text,
                               other_text=other.text, detail=f"겹치는 내용 {share:.0%}",
                               shared=tuple(sorted(line.words & other.words)))
