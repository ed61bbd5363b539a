"""Read an article file into an `Article`: front matter plus a section tree with line numbers.

The vocabulary of the article format (types, audiences, the inquiry taxonomy, section names,
placeholders) lives here too, because `lint`, `chunks` and the composer must all agree on it.
Parsing is lenient about values (that is lint's job) but strict about structure: a file that
cannot be read as front matter + Markdown raises `ArticleError` with `path:line`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

from suggester.errors import ArticleError

ARTICLE_TYPES = ("policy", "faq", "exception")
# Where two articles of different types handle one thing (a risk flag), the first type leads.
TYPE_RANK = {article_type: rank for rank, article_type in enumerate(ARTICLE_TYPES)}
AUDIENCES = ("buyer", "seller", "all")
STATUSES = ("draft", "published", "archived")
CHANNELS = ("chat", "board", "phone")
TAXONOMY = (
    "배송", "반품·환불", "교환", "상품상태", "결제", "주문취소", "정산·수수료",
    "P2P분쟁", "사기·안전", "계정·개인정보", "쿠폰·포인트", "이용방법", "장애·긴급", "기능제안",
)
# The risk flags the analyzer raises (suggester/reply/analyze.py); an article names the ones
# its policy handles in `handles_flags` (kb/README.md).
RISK_FLAGS = ("off_platform", "fraud", "counterfeit", "personal_data", "legal_threat", "outage",
              "repeated_contact")


def cue_pattern(cue: str) -> re.Pattern[str]:
    """A front-matter cue as a regular expression: chat Korean drops spaces, so a space in the
    cue matches any run of spaces, or none (`이의 제기` matches 이의제기)."""
    return re.compile(re.sub(r"\s+", r"\\s*", cue.strip()), re.IGNORECASE)


def any_of(*patterns: str) -> re.Pattern[str]:
    """One case-insensitive pattern that matches where any of `patterns` does."""
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


PLACEHOLDERS = (
    "고객명", "주문번호", "상품명", "운송장번호", "택배사", "환불금액", "정산금액", "날짜",
)

SUMMARY, POLICY, GUIDE, SCRIPT, FOLLOW_UPS, EXCEPTIONS = (
    "요약", "정책", "안내", "응대 예시", "예상 문의", "예외",
)
ESCALATION, INTERNAL_MEMO = "에스컬레이션", "내부 메모"
INTERNAL_SECTIONS = (ESCALATION, INTERNAL_MEMO)
KNOWN_SECTIONS = (SUMMARY, POLICY, GUIDE, SCRIPT, FOLLOW_UPS, EXCEPTIONS, *INTERNAL_SECTIONS)
QUESTION_PREFIX = re.compile(r"^Q\s*[.:)]\s*")
# "고객이 소송을 언급해도 응대 기준은 바뀌지 않아요" speaks to agents about the customer: a reply
# says 고객님. Such text belongs in ## 내부 메모 (lint warns; the composer never sends it).
# Guidance for agents, not words for the customer: it speaks of 고객이/고객의, or tells the agent
# what to say ("…안내해 드린다고 말씀드려 주세요" read aloud in a phone script).
ABOUT_THE_CUSTOMER = re.compile(r"고객(?:이|의|에게|은|을|가)(?:\s|$)|"
                                r"(?:라고|다고|하고)\s*(?:말씀드려|전달해|안내해)\s*주(?:세요|십시오)")
ARTICLE_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")  # a slug; also the file name

# markdown-it-py reads ~50 KB of dense markup a second here, and its inline parser is quadratic
# in a block's length ("[[[[…"): these bounds keep parsing any accepted file to a second or two.
# The largest shipped article is ~6 KB, its longest block ~2,000 characters.
MAX_FILE_BYTES = 64 * 1024
MAX_BLOCK_CHARS = 5_000
MAX_YAML_DEPTH = 20  # `tags: [a, b]` is depth 2
_FENCE = "---"
_markdown = MarkdownIt("commonmark")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class _FrontMatterLoader(yaml.SafeLoader):
    """Safe YAML that keeps dates as text, so a bad date is a lint finding, not a crash.

    Aliases are refused: ten nested `*a` expand a few lines into a billion values (the "billion
    laughs"), and front matter never needs them. So is nesting past a few levels, which PyYAML
    would follow until Python's recursion limit, seconds later.
    """

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        problem = ("aliases (*name) are not allowed: write the value out"
                   if self.check_event(yaml.AliasEvent) else
                   f"values are nested more than {MAX_YAML_DEPTH} levels deep"
                   if self._depth >= MAX_YAML_DEPTH else "")
        if problem:
            raise yaml.composer.ComposerError(None, None, problem, self.peek_event().start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_FrontMatterLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_scalar
)


@dataclass(kw_only=True)
class Section:
    """One heading and the text directly under it (children hold the sub-headings)."""

    title: str
    level: int
    path: tuple[str, ...]
    text: str
    markdown: str
    line: int
    end_line: int
    children: list[Section] = field(default_factory=list)

    @property
    def top(self) -> str:
        """The name of the level-2 section this one belongs to."""
        return self.path[0]

    @property
    def internal(self) -> bool:
        return self.top in INTERNAL_SECTIONS

    @property
    def is_question(self) -> bool:
        return self.top == FOLLOW_UPS and len(self.path) == 2

    @property
    def question(self) -> str:
        return QUESTION_PREFIX.sub("", self.title).strip()

    def walk(self) -> Iterator[Section]:
        yield self
        for child in self.children:
            yield from child.walk()

    def full_text(self) -> str:
        """Plain text of this section and all its sub-sections."""
        parts = [self.text] + [child.full_text() for child in self.children]
        return "\n".join(part for part in parts if part)


@dataclass(kw_only=True)
class Article:
    path: Path
    meta: dict[str, Any]
    meta_lines: dict[str, int]
    sections: list[Section]
    body_line: int
    source: str

    @property
    def id(self) -> str:
        return str(self.meta.get("id") or self.path.stem)

    @property
    def title(self) -> str:
        return str(self.meta.get("title") or self.id)

    @property
    def type(self) -> str:
        return str(self.meta.get("type", ""))

    @property
    def audience(self) -> str:
        return str(self.meta.get("audience", "all"))

    @property
    def category(self) -> str:
        return str(self.meta.get("category", ""))

    @property
    def status(self) -> str:
        return str(self.meta.get("status", "draft"))

    @property
    def version(self) -> int:
        value = self.meta.get("version", 1)
        return value if isinstance(value, int) else 1

    @property
    def effective_from(self) -> dt.date | None:
        return as_date(self.meta.get("effective_from"))

    @property
    def supersedes(self) -> str:
        """The id of the article this one replaces from its `effective_from` ("" for none)."""
        value = self.meta.get("supersedes")
        return str(value) if value not in (None, "") else ""

    @property
    def review_by(self) -> dt.date | None:
        return as_date(self.meta.get("review_by"))

    @property
    def tags(self) -> list[str]:
        return _str_list(self.meta.get("tags"))

    @property
    def channels(self) -> list[str]:
        return _str_list(self.meta.get("channels"))

    @property
    def related(self) -> list[str]:
        return _str_list(self.meta.get("related"))

    @property
    def handles_flags(self) -> list[str]:
        return _str_list(self.meta.get("handles_flags"))

    @property
    def escalation_when(self) -> dict[str, list[str]]:
        """Flag -> the conditions on which this article's escalation rule takes the flag over
        (front matter `escalation_when`, kb/README.md): another raised flag, or a cue."""
        return self._flag_map("escalation_when")

    @property
    def flag_cues(self) -> dict[str, list[str]]:
        """Flag -> cues that raise it, beyond the analyzer's own (front matter `flag_cues`)."""
        return self._flag_map("flag_cues")

    @property
    def not_offered(self) -> dict[str, list[str]]:
        """Service -> cues of a service we do not offer that sits next to this article's topic
        (front matter `not_offered`): a message asking for it is held, not answered."""
        return self._flag_map("not_offered")

    def _flag_map(self, name: str) -> dict[str, list[str]]:
        value = self.meta.get(name)
        if not isinstance(value, dict):
            return {}
        return {str(flag): _str_list(items) for flag, items in value.items()}

    def is_servable(self, today: dt.date) -> bool:
        """Published and already in effect: the only articles a draft may use."""
        effective = self.effective_from
        return self.status == "published" and effective is not None and effective <= today

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.title == name), None)

    def walk(self) -> Iterator[Section]:
        for section in self.sections:
            yield from section.walk()

    def questions(self) -> list[Section]:
        follow_ups = self.section(FOLLOW_UPS)
        return [c for c in follow_ups.children if c.is_question] if follow_ups else []

    def line_of(self, key: str) -> int:
        """The line of a front matter field, or of the opening fence when it is absent."""
        return self.meta_lines.get(key, 1)


def as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _str_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(item) for item in value]
    if isinstance(value, str) and value:
        return [value]
    return []


def read_article(path: Path | str) -> Article:
    """Read and parse one article file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ArticleError(path, 1, f"cannot read file: {exc.strerror or exc}") from exc
    return parse_article(data, path)


def parse_article(data: bytes | str, path: Path | str) -> Article:
    """Parse article source (bytes or text) that came from `path`."""
    path = Path(path)
    text = _decode(data, path)
    lines = text.split("\n")
    if lines[0].rstrip() != _FENCE:
        raise ArticleError(path, 1, "missing front matter: the file must start with a '---' line "
                                    "followed by YAML fields and another '---' line")
    closing = next((i for i in range(1, len(lines)) if lines[i].rstrip() == _FENCE), None)
    if closing is None:
        raise ArticleError(path, 1, "front matter is not closed: add a '---' line after the "
                                    "YAML fields")
    front_matter = "\n".join(lines[1:closing])
    if len(front_matter) > MAX_BLOCK_CHARS:  # PyYAML reads ~10,000 values a second
        raise ArticleError(path, 2, f"front matter is {len(front_matter):,} characters long (the "
                                    f"limit is {MAX_BLOCK_CHARS:,}): keep to the fields in "
                                    "kb/README.md")
    meta = _load_front_matter(front_matter, path)
    meta_lines = {
        match.group(1): number + 2
        for number, line in enumerate(lines[1:closing])
        if (match := re.match(r"^([A-Za-z_][\w-]*)\s*:", line))
    }
    body_line = closing + 2  # 1-based number of the first body line
    check_markdown_size(lines[closing + 1:], path, body_line)
    sections = _section_tree(lines[closing + 1:], body_line)
    return Article(path=path, meta=meta, meta_lines=meta_lines, sections=sections,
                   body_line=body_line, source=text)


def _decode(data: bytes | str, path: Path) -> str:
    if isinstance(data, bytes):
        if len(data) > MAX_FILE_BYTES:
            raise ArticleError(path, 1, f"file is too large ({len(data):,} bytes; the limit is "
                                        f"{MAX_FILE_BYTES:,}): split it into several articles")
        if b"\x00" in data:
            line = data[: data.index(b"\x00")].count(b"\n") + 1
            raise ArticleError(path, line, "binary data (NUL byte): articles must be UTF-8 text")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise ArticleError(path, line, "not valid UTF-8 text: save the file as UTF-8") from exc
    else:
        text = data
        if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
            raise ArticleError(path, 1, f"file is too large (limit {MAX_FILE_BYTES:,} bytes): "
                                        "split it into several articles")
        if match := _LONE_SURROGATE.search(text):  # e.g. "\ud800" sent in JSON: not UTF-8-able
            raise ArticleError(path, text.count("\n", 0, match.start()) + 1,
                               "not valid Unicode text (a lone surrogate): save it as UTF-8")
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise ArticleError(path, 1, "file is empty: an article needs front matter and sections")
    return text


def check_markdown_size(lines: list[str], path: Path, first_line: int = 1) -> None:
    """Refuse Markdown the parser cannot read quickly: raise `ArticleError` with `path:line`."""
    size = sum(len(line) + 1 for line in lines)
    if size > MAX_FILE_BYTES:
        raise ArticleError(path, first_line, f"text is too large ({size:,} characters; the "
                                             f"limit is {MAX_FILE_BYTES:,}): split it into "
                                             "several articles")
    start, block = 0, 0
    for number, line in enumerate(lines):
        if not line.strip(" \t"):  # blank for Markdown (only spaces and tabs end a block)
            block = 0
            continue
        start = number if not block else start
        block += len(line) + 1
        if block > MAX_BLOCK_CHARS:
            raise ArticleError(path, first_line + start,
                               f"a paragraph, list or table of over {MAX_BLOCK_CHARS:,} "
                               "characters without a blank line: split it with blank lines")


def _load_front_matter(source: str, path: Path) -> dict[str, Any]:
    try:
        meta = yaml.load(source, Loader=_FrontMatterLoader)  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 2 if mark else 2
        problem = exc.problem or exc.context or "invalid YAML"
        raise ArticleError(path, line, f"malformed YAML in front matter: {problem}") from exc
    except yaml.YAMLError as exc:
        raise ArticleError(path, 2, f"malformed YAML in front matter: {exc}") from exc
    except RecursionError as exc:
        raise ArticleError(path, 2, "front matter is nested too deeply") from exc
    except (ValueError, TypeError, IndexError, OverflowError) as exc:  # e.g. `!!int ""`
        raise ArticleError(path, 2, f"front matter has a value YAML cannot read: "
                                    f"{exc or type(exc).__name__}") from exc
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise ArticleError(path, 2, "front matter must be YAML fields (key: value), "
                                    f"not a {type(meta).__name__}")
    return {str(key): value for key, value in meta.items()}


def _section_tree(body: list[str], first_line: int) -> list[Section]:
    """Build the heading tree of the body; line numbers are 1-based file lines."""
    try:
        tokens = _markdown.parse("\n".join(body))
    except RecursionError:
        return []
    headings = [
        (index, token) for index, token in enumerate(tokens)
        if token.type == "heading_open" and token.map and int(token.tag[1]) >= 2
    ]
    roots: list[Section] = []
    stack: list[Section] = []
    for number, (index, token) in enumerate(headings):
        assert token.map is not None
        level = int(token.tag[1])
        start = token.map[1]
        next_heading = headings[number + 1] if number + 1 < len(headings) else None
        end = next_heading[1].map[0] if next_heading and next_heading[1].map else len(body)
        stop_token = next_heading[0] if next_heading else len(tokens)
        while stack and stack[-1].level >= level:
            stack.pop()
        title = tokens[index + 1].content.strip()
        section = Section(
            title=title,
            level=level,
            path=(*[s.title for s in stack], title),
            text=_plain_text(tokens[index + 3: stop_token]),
            markdown="\n".join(body[start:end]).strip(),
            line=first_line + token.map[0],
            end_line=first_line + max(end - 1, token.map[0]),
        )
        (stack[-1].children if stack else roots).append(section)
        stack.append(section)
    return roots


def _plain_text(tokens: list[Token]) -> str:
    """Text of block tokens without Markdown syntax; list items keep a leading '- '."""
    lines: list[str] = []
    depth = 0
    for token in tokens:
        if token.type in ("bullet_list_open", "ordered_list_open"):
            depth += 1
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            depth -= 1
        elif token.type == "inline":
            content = "".join(_inline_text(child) for child in token.children or []).strip()
            if content:
                lines.append(("- " if depth else "") + content)
        elif token.type in ("fence", "code_block") and token.content.strip():
            lines.append(token.content.strip())
    return "\n".join(lines)


def _inline_text(token: Token) -> str:
    # Raw inline HTML is dropped: passages must carry words, never markup.
    if token.type in ("softbreak", "hardbreak"):
        return " "
    return token.content if token.type in ("text", "code_inline") else ""


def find_article_path(kb_dir: Path, article_id: str) -> Path | None:
    """The file of an article id, in whichever type folder it is."""
    for article_type in ARTICLE_TYPES:
        path = kb_dir / article_type / f"{article_id}.md"
        try:
            if path.is_file():
                return path
        except OSError:  # e.g. a name over the file system's 255 bytes: no such article
            continue
    return None


def discover(kb_dir: Path | str) -> list[Path]:
    """Every article file under the KB folder, in a stable order."""
    return sorted(Path(kb_dir).rglob("*.md"))
