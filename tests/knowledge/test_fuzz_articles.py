"""Fuzz the article parser and lint, the editor's live preview and /api/suggest with hypothesis.

Hostile articles: random Markdown and YAML front matter (valid-ish and broken, alias bombs),
deep nesting, huge files, binary and invalid UTF-8, CR and CRLF line ends. Parsing and lint
either succeed or raise `ArticleError` naming the file and one of its lines, never anything
else, and every input is answered within a time bound. The web fuzzers send hostile text
(control characters, emoji, RTL marks, lone surrogates, 10,000 characters) and expect no 500.
The short tier runs in `make test`, the `long` tier in `make test-long`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import signal
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suggester.errors import ArticleError
from suggester.knowledge.articles import (
    KNOWN_SECTIONS,
    MAX_BLOCK_CHARS,
    MAX_FILE_BYTES,
    PLACEHOLDERS,
    parse_article,
)
from suggester.knowledge.lint import (
    OPTIONAL_FIELDS,
    REQUIRED_FIELDS,
    check_article,
    check_references,
    lint_kb,
    lint_source,
)

from conftest import SHIPPED_KB, add_users, form_token, sign_in

PATH = Path("kb/articles/faq/fuzzed.md")
TODAY = dt.date(2026, 11, 24)
# Real articles parse in milliseconds and the largest accepted file in a second or two; a
# slower answer is a hang (super-linear parsing), not a busy machine.
SECONDS_PER_INPUT = 15


def tier(short: int, long: int) -> list[Any]:
    """The examples of the short tier (make test) and of the long one (make test-long)."""
    return [pytest.param(short, id="short"),
            pytest.param(long, id="long", marks=pytest.mark.long)]


class Hang(BaseException):  # not an Exception: no `except Exception` in the code can swallow it
    pass


@contextlib.contextmanager
def time_limit(seconds: float = SECONDS_PER_INPUT) -> Iterator[None]:
    def expire(signum: int, frame: Any) -> None:
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def fuzz(examples: int, strategy: st.SearchStrategy[Any], check: Callable[[Any], None]) -> None:
    """Run `check` on `examples` values drawn from `strategy`."""

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much,
                                     HealthCheck.large_base_example])
    @given(strategy)
    def run(value: Any) -> None:
        check(value)

    run()


# -- hostile text --------------------------------------------------------------------------

HOSTILE = [
    "\x00", "\x07", "\x0b", "\x0c", "\x1b[31m", "\x7f", "\x85", "\u2028", "\u2029",
    "\u200b", "\u200d", "\u200e", "\u200f", "\u202e", "\u2066", "\ufeff", "\ufffd", "\uffff",
    "\U0010ffff", "😀", "👩‍👩‍👧", "🇰🇷", "e\u0301", "각\u0308\u0308\u0308",
    "\t", "\r", "\r\n", "\n", " ", "\u3000", "환불", "{고객명}", "<script>", "&amp;",
]
SURROGATES = ["\ud800", "\udbff\udbff", "\udfff"]  # halves of UTF-16 pairs, valid only in JSON
piece = st.one_of(st.text(max_size=20), st.sampled_from(HOSTILE))
hostile_text = st.one_of(
    st.lists(piece, max_size=30).map("".join),
    st.lists(st.one_of(piece, st.sampled_from(SURROGATES)), min_size=1, max_size=10)
    .map("".join))
long_text = st.tuples(st.one_of(st.sampled_from(HOSTILE), st.text(min_size=1, max_size=5)),
                      st.integers(1, 10_000)).map(lambda t: (t[0] * t[1])[:10_000])
any_text = st.one_of(hostile_text, long_text)
short_text = st.lists(piece, max_size=3).map("".join)

# -- random Markdown ---------------------------------------------------------------------------

INLINE = ["가나다", "abc", " ", "*", "**", "_", "`", "``", "[", "]", "(", ")", "](", "![",
          "<", ">", "<b>", "</b>", "{", "}", "\\", "#", "|", "-", "~", ":", "&amp;", "&#0;",
          "\"", "'", "http://x", "<http://x>", "javascript:alert(1)", *HOSTILE,
          *("{" + name + "}" for name in PLACEHOLDERS)]
inline = st.one_of(st.text(max_size=40), st.lists(st.sampled_from(INLINE), max_size=30)
                   .map("".join))


def _fence(parts: tuple[str, str, str, bool]) -> str:
    marker, info, text, closed = parts
    return f"{marker}{info}\n{text}" + (f"\n{marker}" if closed else "")


def _table(rows: list[list[str]]) -> str:
    head, *rest = rows
    lines = ["|" + "|".join(head) + "|", "|" + "|".join("-" * 3 for _ in head) + "|"]
    return "\n".join(lines + ["|" + "|".join(row) + "|" for row in rest])


block = st.one_of(
    st.tuples(st.integers(1, 7), inline).map(lambda t: "#" * t[0] + " " + t[1]),
    st.sampled_from(KNOWN_SECTIONS).map(lambda title: f"## {title}"),
    inline.map(lambda title: f"### Q. {title}"),
    st.lists(st.tuples(st.integers(0, 12), st.sampled_from(["-", "*", "+", "1.", "9)"]), inline),
             min_size=1, max_size=20)
    .map(lambda items: "\n".join("  " * d + m + " " + t for d, m, t in items)),
    st.tuples(st.sampled_from(["```", "~~~", "````", "    "]), st.text(max_size=8), inline,
              st.booleans()).map(_fence),
    st.lists(st.lists(inline, min_size=1, max_size=5), min_size=1, max_size=6).map(_table),
    st.tuples(st.sampled_from(["<div>", "</div>", "<script>alert(1)</script>", "<!--", "-->",
                               "<?php", "<![CDATA[", "<table><tr><td>", "<pre>"]), inline)
    .map("".join),
    st.tuples(st.integers(1, 40), inline).map(lambda t: "> " * t[0] + t[1]),
    st.sampled_from(["---", "===", "***", "- - -", "", "   ", "\t"]),
    inline,
)
LINE_ENDS = ["\n", "\n\n", "\r\n", "\r", "\n \n", "\n\t\n"]
markdown = st.lists(st.tuples(block, st.sampled_from(LINE_ENDS)), max_size=25) \
    .map(lambda parts: "".join(text + end for text, end in parts))

# -- random front matter -------------------------------------------------------------------

scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.floats(), st.dates(),
    st.datetimes(), st.text(max_size=30),
    st.sampled_from(["faq", "policy", "exception", "buyer", "seller", "all", "published",
                     "draft", "archived", "배송", "chat", "2026-01-05", "2026-13-45", ""]),
)
value = st.recursive(scalar, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=12)
field_name = st.one_of(st.sampled_from(REQUIRED_FIELDS + OPTIONAL_FIELDS), st.text(max_size=12))
front_matter_valid = st.tuples(st.dictionaries(field_name, value, max_size=15), st.booleans()) \
    .map(lambda t: yaml.safe_dump(t[0], allow_unicode=True, default_flow_style=t[1]))

YAML_PIECES = [
    "id: ", "title: ", "type: ", "tags: ", "version: ", "\n", "\t", "  ", "- ", "? ", ": ",
    "\"", "'", "&a ", "*a", "&b ", "*b", "[", "]", "{", "}", ", ", "# ", "!!binary aGk=",
    "!!set {a, b}", "!!python/object:os.system ", "!!timestamp x", "!!int", "%YAML 1.1\n",
    "...", "|\n  ", ">-\n  ", "9" * 5000, "1e400", ".nan", "0x1F", "0o17", "2026-13-45",
    "2026-02-30T25:61:61Z", "~", "null", "yes", "<<: *a", "가나다", "\x07", "\ufeff", "@",
    "`", "%", "\\",
]
front_matter_broken = st.lists(st.one_of(st.sampled_from(YAML_PIECES), st.text(max_size=10)),
                               max_size=40).map("".join)


@st.composite
def alias_bomb(draw: st.DrawFn) -> str:
    """The "billion laughs": each level lists the previous one `width` times."""
    levels, width = draw(st.integers(1, 12)), draw(st.integers(1, 10))
    lines = ["l0: &l0 [lol]"]
    for level in range(1, levels + 1):
        refs = ", ".join([f"*l{level - 1}"] * width)
        lines.append(f"l{level}: &l{level} [{refs}]")
    used = draw(st.sampled_from(REQUIRED_FIELDS + OPTIONAL_FIELDS))
    lines.append(f"{used}: *l{levels}")
    return "\n".join(lines)


@st.composite
def deep_yaml(draw: st.DrawFn) -> str:
    depth = draw(st.integers(1, 5000))
    opening, closing = draw(st.sampled_from([("[", "]"), ("{a: ", "}"), ("- ", "")]))
    field = draw(st.sampled_from(["category", "tags", "title", "related"]))
    if opening == "- ":  # block style: indentation grows with depth
        return field + ":\n" + "\n".join("  " * i + "- " for i in range(min(depth, 300))) + "x"
    return f"{field}: {opening * depth}x{closing * depth}"


front_matter = st.one_of(front_matter_valid, front_matter_broken, alias_bomb(), deep_yaml())


@st.composite
def article_source(draw: st.DrawFn) -> str:
    """Front matter and a body, sometimes missing pieces, with any line ends."""
    head = draw(front_matter)
    body = draw(markdown)
    shape = draw(st.sampled_from(["whole", "whole", "whole", "unclosed", "no front matter",
                                  "bom", "crlf", "cr"]))
    text = f"---\n{head}\n---\n{body}"
    if shape == "unclosed":
        text = f"---\n{head}\n{body}"
    elif shape == "no front matter":
        text = body
    elif shape == "bom":
        text = "\ufeff" + text
    elif shape in ("crlf", "cr"):
        text = text.replace("\n", "\r\n" if shape == "crlf" else "\r")
    return text


SHIPPED = [path.read_text(encoding="utf-8") for path in sorted(SHIPPED_KB.rglob("*.md"))[:12]]


@st.composite
def mutated_article(draw: st.DrawFn) -> str:
    """A shipped article with lines inserted, dropped or rewritten: lint's deeper paths."""
    lines = draw(st.sampled_from(SHIPPED)).split("\n")
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(lines)))
        action = draw(st.sampled_from(["insert", "drop", "field", "hostile"]))
        if action == "insert":
            lines[at:at] = draw(block).split("\n")
        elif action == "drop":
            del lines[at:at + draw(st.integers(1, 5))]
        elif action == "field" and 1 <= at < (lines + ["---"]).index("---", 1):
            key = lines[at].split(":", 1)[0]
            lines[at] = yaml.safe_dump({key: draw(value)}, allow_unicode=True).rstrip("\n")
        else:
            lines.insert(at, draw(hostile_text))
    return "\n".join(lines)


JUNK = [b"\x00", b"\xff", b"\xfe\xff", b"\xc3", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"\xc0\x80",
        b"\xf4\x90\x80\x80", b"\r", b"\x1b[2J"]


@st.composite
def article_bytes(draw: st.DrawFn) -> bytes:
    """An article as a file holds it, sometimes with binary junk spliced in."""
    data = draw(article_source()).encode("utf-8", "surrogatepass")
    for _ in range(draw(st.integers(0, 3))):
        junk = draw(st.one_of(st.sampled_from(JUNK), st.binary(min_size=1, max_size=8)))
        at = draw(st.integers(0, len(data)))
        data = data[:at] + junk + data[at:]
    return data


articles = st.one_of(article_source(), article_bytes(), mutated_article(),
                     st.binary(max_size=2000))

# -- huge and deeply nested files ------------------------------------------------------------

HEAD = "---\nid: fuzzed\ntitle: 큰 문서\ntype: faq\nstatus: published\n---\n"
# Patterns markdown-it is slowest on (quadratic link labels, delimiters), nesting, and plain
# Korean; repeated up to and past every limit.
UNITS = ["[", "![", "[a](", "*a", "_a", "`a``", "<a", "&amp;", "{", "{고객명}", "- a\n",
         "> ", "> a\n", "|x|y|\n", "## 요약\n", "### Q. 왜\n", "환불은 언제 되나요? ", "\\[",
         "```\n", "<div>\n", "a\n"]
SIZES = [MAX_BLOCK_CHARS - 50, MAX_BLOCK_CHARS + 1, MAX_FILE_BYTES // 2, MAX_FILE_BYTES - 300,
         MAX_FILE_BYTES + 1, 3 * 1024 * 1024]


@st.composite
def huge_article(draw: st.DrawFn) -> str | bytes:
    unit, size = draw(st.sampled_from(UNITS)), draw(st.sampled_from(SIZES))
    # With blank lines the blocks stay under the limit and the whole file gets parsed.
    blocks = draw(st.booleans())
    per_block = (MAX_BLOCK_CHARS - 100) // len(unit) if blocks else size
    count = max(1, (size - len(HEAD)) // len(unit))
    chunks = [unit * min(per_block, count - done) for done in range(0, count, per_block)]
    text = HEAD + "\n\n".join(chunks)
    return text.encode() if draw(st.booleans()) else text


@st.composite
def deep_markdown(draw: st.DrawFn) -> str:
    depth = draw(st.integers(1, 5000))
    kind = draw(st.sampled_from(["quote line", "quote lines", "list", "list blank", "emphasis",
                                 "brackets", "html"]))
    if kind == "quote line":
        body = "> " * depth + "깊은 인용"
    elif kind == "quote lines":
        body = "\n".join("> " * i + "x" for i in range(1, min(depth, 400)))
    elif kind == "list":
        body = "\n".join("  " * i + "- x" for i in range(min(depth, 400)))
    elif kind == "list blank":
        body = "\n\n".join("  " * i + "- x" for i in range(min(depth, 400)))
    elif kind == "emphasis":
        body = "*" * depth + "x" + "*" * depth
    elif kind == "brackets":
        body = "[" * depth + "x" + "]" * depth
    else:
        body = "<div>" * depth
    return HEAD + "## 요약\n" + body + "\n"


# -- the properties ------------------------------------------------------------------------


def _line_count(data: str | bytes) -> int:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return text.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1


def _names_file_and_line(exc: ArticleError, data: str | bytes) -> None:
    assert exc.path == PATH
    assert 1 <= exc.line <= _line_count(data), f"line {exc.line} is not in the file: {exc}"
    assert str(exc).startswith(f"{PATH}:{exc.line}: ") and exc.message


def parses_or_names_file_and_line(data: str | bytes) -> None:
    """Parse and lint `data`: findings or ArticleError with path:line, within the time bound."""
    with time_limit():
        try:
            article = parse_article(data, PATH)
        except ArticleError as exc:
            _names_file_and_line(exc, data)
            return
        findings = check_article(article, TODAY) + check_references([article])
        if isinstance(data, str):
            findings += lint_source(data, PATH, [], today=TODAY)
        rendered = [str(finding) for finding in findings]
    for finding, text in zip(findings, rendered, strict=True):
        assert finding.path == PATH and 1 <= finding.line <= _line_count(data), text


@pytest.mark.parametrize("examples", tier(150, 3000))
def test_random_articles_parse_or_name_file_and_line(examples):
    fuzz(examples, articles, parses_or_names_file_and_line)


@pytest.mark.parametrize("examples", tier(15, 200))
def test_deeply_nested_articles_parse_or_name_file_and_line(examples):
    fuzz(examples, deep_markdown(), parses_or_names_file_and_line)


@pytest.mark.parametrize("examples", tier(6, 80))
def test_huge_articles_are_refused_or_parsed_in_bounded_time(examples):
    fuzz(examples, huge_article(), parses_or_names_file_and_line)


@pytest.mark.parametrize("examples", tier(10, 150))
def test_lint_of_a_folder_of_hostile_files_reports_every_file(examples):
    def check(files: list[bytes]) -> None:
        with tempfile.TemporaryDirectory() as folder, time_limit():
            kb = Path(folder)
            (kb / "faq").mkdir()
            paths = {kb / "faq" / f"fuzzed-{number}.md" for number in range(len(files))}
            for path, data in zip(sorted(paths), files, strict=True):
                path.write_bytes(data)
            report = lint_kb(kb, today=TODAY)
            # Every file is either read as an article or reported as an error.
            assert {a.path for a in report.articles} | \
                {f.path for f in report.findings if f.severity == "error"} >= paths
            for finding in report.findings:
                assert finding.path.parent == kb / "faq" and finding.line >= 1, finding

    fuzz(examples, st.lists(st.one_of(article_bytes(), st.binary(max_size=500)), max_size=4),
         check)


# -- the web: the editor's live preview and /api/suggest ------------------------------------


def _json(body: dict[str, Any]) -> bytes:
    # Lone surrogates go out as JSON escapes ("\ud800"), the way a browser can send them.
    return json.dumps(body, ensure_ascii=False).encode("utf-8", "backslashreplace")


def _is_error_shape(payload: Any) -> bool:
    return isinstance(payload, dict) and {"error", "message", "message_ko"} <= set(payload) \
        and all(isinstance(payload[key], str) and payload[key] for key in payload)


@pytest.fixture
def editor_client(app):
    add_users(app)
    client = app.test_client()
    sign_in(client, "editor")
    token = form_token(client.get("/editor/new").get_data(as_text=True))
    client.environ_base["HTTP_X_CSRF_TOKEN"] = token
    return client


preview_bodies = st.fixed_dictionaries(
    {"source": st.one_of(mutated_article(), article_source(), any_text, st.integers(),
                         st.none())},
    optional={"article_id": st.one_of(st.sampled_from(["return-policy", "refund-timing",
                                                       "x" * 300, "../etc", "a/b", ""]),
                                      hostile_text)})


@pytest.mark.parametrize("examples", tier(20, 300))
def test_editor_preview_answers_hostile_sources_without_a_server_error(editor_client, examples):
    def check(body: dict[str, Any]) -> None:
        with time_limit():
            response = editor_client.post("/editor/preview", data=_json(body),
                                          content_type="application/json")
        payload = response.get_json()
        assert response.status_code in (200, 400), response.get_data(as_text=True)[:500]
        if response.status_code == 200:
            assert isinstance(payload["html"], str) and isinstance(payload["findings"], list)
            assert all(f["line"] >= 1 and f["message"] for f in payload["findings"])
        else:
            assert _is_error_shape(payload)

    fuzz(examples, preview_bodies, check)


suggest_bodies = st.fixed_dictionaries(
    {"inquiry": any_text},
    optional={"channel": st.sampled_from(["chat", "board", "phone", "", None]),
              "audience": st.sampled_from(["buyer", "seller", "unknown", "", None]),
              "customer_name": short_text, "order_id": short_text})


@pytest.mark.parametrize("examples", tier(15, 150))
def test_suggest_answers_hostile_inquiries_without_a_server_error(api_client, app, examples):
    app.extensions["suggester.settings"] = replace(app.extensions["suggester.settings"],
                                                   api_rate_limit=0)  # hundreds in a minute

    def check(body: dict[str, Any]) -> None:
        with time_limit():
            response = api_client.post("/api/suggest", data=_json(body),
                                   content_type="application/json")
        payload = response.get_json()
        assert response.status_code in (200, 400, 413), response.get_data(as_text=True)[:500]
        if response.status_code != 200:
            assert _is_error_shape(payload)
            return
        assert payload["draft"]["text"] and payload["suggestion_id"]
        # What the server decoded: a high and a low surrogate sent as two JSON escapes
        # ("\ud800\udfff") are one valid character there, not two lone halves.
        inquiry = json.loads(_json(body))["inquiry"]
        assert inquiry.strip() and len(inquiry) <= 4000
        assert not any("\ud800" <= char <= "\udfff" for char in inquiry)

    fuzz(examples, suggest_bodies, check)
