"""Reading an article: front matter, the section tree, line numbers and clear errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from suggester.errors import ArticleError
from suggester.knowledge.articles import find_article_path, parse_article, read_article

from conftest import DATA

REFUND = DATA / "kb" / "faq" / "refund-when.md"


@pytest.fixture
def refund():
    return read_article(REFUND)


def test_front_matter_fields_are_typed(refund):
    assert refund.id == "refund-when"
    assert refund.category == "반품·환불"
    assert refund.effective_from == dt.date(2026, 1, 5)
    assert refund.version == 2
    assert refund.channels == ["chat", "board"]
    assert refund.related == ["shipping-late"]


def test_section_tree_follows_headings(refund):
    titles = [s.title for s in refund.sections]
    assert titles == ["요약", "안내", "응대 예시", "예상 문의", "내부 메모"]
    guide = refund.section("안내")
    assert [c.path for c in guide.children] == [("안내", "카드 결제"), ("안내", "간편결제")]


def test_line_numbers_point_at_the_source(refund):
    lines = REFUND.read_text(encoding="utf-8").split("\n")
    for section in refund.walk():
        assert lines[section.line - 1].lstrip("#").strip() == section.title
        assert section.end_line >= section.line


def test_plain_text_drops_markdown_but_keeps_list_items(refund):
    summary = refund.section("요약")
    assert summary.text == "환불은 승인 후 결제수단에 따라 즉시~5영업일 안에 완료돼요."
    easy_pay = refund.section("안내").children[1]
    assert easy_pay.text.splitlines()[1:] == ["- 카카오페이", "- 네이버페이"]


def test_anticipated_questions_are_the_q_blocks(refund):
    questions = refund.questions()
    assert [q.question for q in questions] == ["포인트는 언제 돌아오나요?", "주말에도 환불되나요?"]
    assert questions[0].text == "포인트는 환불 승인 즉시 복원돼요."


def test_internal_memo_is_flagged_internal(refund):
    internal = [s.title for s in refund.walk() if s.internal]
    assert internal == ["내부 메모"]
    assert not refund.section("응대 예시").internal


def test_placeholders_stay_in_the_script_text(refund):
    assert "{고객명}" in refund.section("응대 예시").text
    assert "{주문번호}" in refund.section("응대 예시").text


def test_servable_only_when_published_and_in_effect(refund):
    assert refund.is_servable(dt.date(2026, 1, 5))
    assert not refund.is_servable(dt.date(2026, 1, 4))


def test_headings_inside_code_fences_are_not_sections():
    source = "---\nid: x\n---\n## 요약\n```\n## 가짜 제목\n```\n## 안내\n본문\n"
    article = parse_article(source, Path("x.md"))
    assert [s.title for s in article.sections] == ["요약", "안내"]


def test_crlf_and_bom_are_accepted():
    source = "\ufeff---\r\nid: x\r\ntitle: 제목\r\n---\r\n## 요약\r\n한 줄\r\n"
    article = parse_article(source.encode("utf-8"), Path("x.md"))
    assert article.title == "제목"
    assert article.section("요약").line == 5


@pytest.mark.parametrize(
    ("data", "line", "words"),
    [
        (b"", 1, "empty"),
        (b"  \n\n", 1, "empty"),
        (b"## \xec\x9a\x94\xec\x95\xbd\n", 1, "missing front matter"),
        (b"---\nid: x\n## body\n", 1, "not closed"),
        (b"---\nid: x\ntitle: [unclosed\n---\n", 3, "malformed YAML"),
        (b"---\n- a\n- b\n---\n", 2, "must be YAML fields"),
        (b"---\nid: x\n---\n\xff\xfe bad\n", 4, "UTF-8"),
        (b"---\nid: x\n---\nok\x00\n", 4, "binary"),
    ],
)
def test_unreadable_files_raise_article_error_with_line(data, line, words):
    with pytest.raises(ArticleError) as caught:
        parse_article(data, Path("kb/articles/faq/bad.md"))
    assert caught.value.line == line
    assert words in caught.value.message
    assert str(caught.value).startswith(f"kb/articles/faq/bad.md:{line}: ")


def test_huge_file_is_refused_not_parsed():
    data = b"---\nid: x\n---\n" + b"a" * (1024 * 1024 + 1)
    with pytest.raises(ArticleError, match="too large"):
        parse_article(data, Path("big.md"))


def test_missing_file_is_an_article_error(tmp_path):
    with pytest.raises(ArticleError, match="cannot read"):
        read_article(tmp_path / "nope.md")


# -- found by fuzzing (tests/knowledge/test_fuzz_articles.py) --------------------------------------

BILLION_LAUGHS = "\n".join(["---", "id: x", "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]",
                            *(f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]"
                              for p, n in zip("abcdefgh", "bcdefghi", strict=True)),
                            "category: *i", "---", ""])


@pytest.mark.parametrize(
    ("source", "line", "words"),
    [
        (BILLION_LAUGHS, 4, "aliases (*name) are not allowed"),
        ("---\nid: x\nversion: !!int ''\n---\n", 2, "value YAML cannot read"),
        ("---\nid: x\ncategory: " + "[" * 50 + "x" + "]" * 50 + "\n---\n", 3, "nested more than"),
        ("---\nid: x\ntags: [" + "a, " * 2000 + "a]\n---\n", 2, "front matter is 6,"),
        ("---\nid: x\n---\n## 요약\nok\n\n" + "[" * 6000 + "\n", 7, "without a blank line"),
        ("---\nid: x\n---\n## 요약\n\n" + "- 항목\n" * 1100, 6, "without a blank line"),
        ("---\nid: x\n---\n## 요약\n\n" + "가" * 30_000, 1, "too large"),
        ("---\nid: x\n---\n## 요약\n\ud800\n", 5, "lone surrogate"),
    ],
)
def test_hostile_sources_raise_article_error_with_line(source, line, words):
    with pytest.raises(ArticleError) as caught:
        parse_article(source, Path("kb/articles/faq/bad.md"))
    assert caught.value.line == line
    assert words in caught.value.message


def test_article_id_longer_than_a_file_name_has_no_file(tmp_path):
    assert find_article_path(tmp_path, "a" * 300) is None
