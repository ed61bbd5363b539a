"""`suggester lint`: one test per rule, each on a small bad article in a temp KB."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner

from suggester.cli import main
from suggester.knowledge.lint import lint_kb

TODAY = dt.date(2026, 11, 23)


def findings_for(kb, name, severity="error"):
    report = lint_kb(kb, today=TODAY)
    return [f for f in report.findings if f.path.name == name and f.severity == severity]


def test_the_small_kb_is_clean(small_kb):
    report = lint_kb(small_kb, today=TODAY)
    assert report.findings == []
    assert report.ok


@pytest.mark.parametrize("field", ["title", "type", "audience", "category", "channels",
                                   "status", "effective_from", "review_by", "owner", "version"])
def test_missing_required_field_is_an_error(small_kb, write_article, article_source, field):
    write_article("refund-when.md", article_source(**{field: None}))
    messages = [f.message for f in findings_for(small_kb, "refund-when.md")]
    assert f"missing required field '{field}'" in messages


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("type", "guide", "type 'guide' is not one of"),
        ("audience", "everyone", "audience 'everyone' is not one of"),
        ("category", "환불", "category '환불' is not one of"),
        ("status", "live", "status 'live' is not one of"),
        ("channels", "[chat, fax]", "unknown channels: fax"),
        ("channels", "chat", "channels must be a list"),
        ("effective_from", "2026-13-01", "effective_from must be a date"),
        ("version", "0", "version must be a whole number"),
        ("version", "two", "version must be a whole number"),
        ("id", "Refund_When", "must be a slug"),
        ("id", "refund-later", "must equal the file name"),
    ],
)
def test_bad_values_name_the_field_and_its_line(small_kb, write_article, article_source,
                                                field, value, words):
    path = write_article("refund-when.md", article_source(**{field: value}))
    found = findings_for(small_kb, "refund-when.md")
    assert any(words in f.message for f in found), found
    line = next(f.line for f in found if words in f.message)
    assert path.read_text(encoding="utf-8").split("\n")[line - 1].startswith(f"{field}:")


def test_type_must_match_its_folder(small_kb, write_article, article_source):
    (small_kb / "faq" / "refund-when.md").unlink()
    write_article("refund-when.md", article_source(), folder="policy")
    assert any("does not match its folder" in f.message
               for f in findings_for(small_kb, "refund-when.md"))


def test_duplicate_ids_are_errors(small_kb, write_article, article_source):
    write_article("refund-when.md", article_source(), folder="exception")
    found = [f for f in lint_kb(small_kb, today=TODAY).errors if "duplicate id" in f.message]
    assert len(found) == 1


@pytest.mark.parametrize("field", ["related", "supersedes"])
def test_references_must_point_to_existing_ids(small_kb, write_article, article_source, field):
    source = article_source(related="[no-such-article]") if field == "related" else \
        article_source(owner="cx-policy\nsupersedes: old-refund")
    write_article("refund-when.md", source)
    missing = "no-such-article" if field == "related" else "old-refund"
    assert any(f"{field} points to unknown id '{missing}'" in f.message
               for f in findings_for(small_kb, "refund-when.md"))


@pytest.mark.parametrize("section", ["## 요약", "## 응대 예시", "## 예상 문의"])
def test_published_articles_need_the_required_sections(small_kb, write_article, article_source,
                                                       section):
    source = article_source().replace(section + "\n", "## 기타\n")
    write_article("refund-when.md", source)
    assert any(f"missing section '{section}'" in f.message
               for f in findings_for(small_kb, "refund-when.md"))


def test_policy_or_guide_section_is_required(small_kb, write_article, article_source):
    write_article("refund-when.md", article_source().replace("## 안내\n", "## 설명\n"))
    assert any("missing section '## 정책' or '## 안내'" in f.message
               for f in findings_for(small_kb, "refund-when.md"))


def test_drafts_may_be_incomplete_with_warnings(small_kb, write_article, article_source):
    write_article("refund-when.md", article_source(status="draft").replace("## 응대 예시\n",
                                                                           "## 기타\n"))
    assert findings_for(small_kb, "refund-when.md") == []
    assert any("missing section '## 응대 예시'" in f.message
               for f in findings_for(small_kb, "refund-when.md", "warning"))


def test_at_least_two_anticipated_questions(small_kb, write_article, article_source):
    second_question = (
        "### Q. 주말에도 환불되나요?\n영업일 기준이라 주말과 공휴일은 빼고 계산해요.\n"
    )
    source = article_source().replace(second_question, "")
    write_article("refund-when.md", source)
    assert any("at least 2 '### Q.' blocks, found 1" in f.message
               for f in findings_for(small_kb, "refund-when.md"))


@pytest.mark.parametrize(("text", "words"), [
    ("{주문 번호}", "unknown placeholder {주문 번호}"),
    ("{customer}", "unknown placeholder {customer}"),
    ("{고객명", "unbalanced"),
    ("고객명}", "unbalanced"),
])
def test_placeholders_must_be_well_formed(small_kb, write_article, article_source, text, words):
    source = article_source().replace("주문 {주문번호}의", f"주문 {text}의")
    path = write_article("refund-when.md", source)
    found = [f for f in findings_for(small_kb, "refund-when.md") if words in f.message]
    assert found
    assert text in path.read_text(encoding="utf-8").split("\n")[found[0].line - 1]


def test_overdue_review_is_a_warning_not_an_error(small_kb, write_article, article_source):
    write_article("refund-when.md", article_source(review_by="2026-10-01"))
    assert findings_for(small_kb, "refund-when.md") == []
    assert [f.message for f in findings_for(small_kb, "refund-when.md", "warning")] == [
        "review overdue since 2026-10-01"]


def test_unknown_sections_and_fields_are_warnings(small_kb, write_article, article_source):
    source = article_source(owner="cx-policy\ncolour: blue") + "\n## 참고\n기타 내용\n"
    write_article("refund-when.md", source)
    warnings = [f.message for f in findings_for(small_kb, "refund-when.md", "warning")]
    assert any("unknown section '## 참고'" in m for m in warnings)
    assert any("unknown field 'colour'" in m for m in warnings)


def test_a_script_that_tells_the_agent_what_to_say_is_a_warning(small_kb, write_article,
                                                                 article_source):
    card = "신용/체크카드는 카드사 취소까지"
    told = "3영업일 안에 처리된다고 말씀드려 주세요."
    path = write_article("refund-when.md", article_source().replace(card, f"{told} {card}"))
    warnings = findings_for(small_kb, "refund-when.md", "warning")
    assert len(warnings) == 1 and "tells the agent what to say" in warnings[0].message
    assert told in path.read_text(encoding="utf-8").split("\n")[warnings[0].line - 1]


def test_customer_facing_text_about_the_customer_is_a_warning(small_kb, write_article,
                                                               article_source):
    card = "신용/체크카드는 카드사 취소까지"
    source = article_source().replace(card, f"고객이 항의해도 기준은 같아요. {card}")
    source = source.replace("재량 보상은 최대", "고객이 원하면 재량 보상은 최대")  # internal: fine
    path = write_article("refund-when.md", source)
    warnings = findings_for(small_kb, "refund-when.md", "warning")
    assert len(warnings) == 1 and "speaks of the customer" in warnings[0].message
    assert "고객이 항의해도" in path.read_text(encoding="utf-8").split("\n")[warnings[0].line - 1]
    assert findings_for(small_kb, "refund-when.md") == []  # a warning, not an error


@pytest.mark.parametrize(("data", "words"), [
    (b"", "file is empty"),
    (b"## \xec\x9a\x94\xec\x95\xbd\n", "missing front matter"),
    (b"---\ntitle: [\n---\n", "malformed YAML"),
    (b"---\nid: x\n---\n\xc3\x28\n", "not valid UTF-8"),
])
def test_unreadable_files_are_findings_not_crashes(small_kb, write_article, data, words):
    write_article("broken.md", data)
    found = findings_for(small_kb, "broken.md")
    assert [words in f.message for f in found] == [True]


def test_cli_prints_path_line_and_exits_non_zero(small_kb, write_article, article_source):
    write_article("refund-when.md", article_source(audience="everyone"))
    result = CliRunner().invoke(main, ["--kb-dir", str(small_kb), "lint"])
    assert result.exit_code == 1
    assert f"{small_kb}/faq/refund-when.md:5: error: audience 'everyone'" in result.output
    assert "1 errors" in result.output


def test_cli_exits_zero_on_a_clean_kb(small_kb):
    result = CliRunner().invoke(main, ["--kb-dir", str(small_kb), "lint"])
    assert result.exit_code == 0, result.output
    assert "2 articles (2 published), 0 errors" in result.output


def test_cli_reports_a_missing_kb_folder(tmp_path):
    result = CliRunner().invoke(main, ["--kb-dir", str(tmp_path / "nowhere"), "lint"])
    assert result.exit_code == 1
    assert "knowledge base folder does not exist" in result.output


def test_handles_flags_names_only_known_flags(small_kb, write_article, article_source):
    write_article("refund-when.md", article_source(owner="cx-policy\nhandles_flags: [phishing]"))
    assert any("unknown handles_flags: phishing" in f.message
               for f in findings_for(small_kb, "refund-when.md"))


def test_one_flag_takes_its_escalation_rule_from_one_article(small_kb, write_article,
                                                             article_source):
    escalation = "\n## 에스컬레이션\n환불 분쟁은 결제팀에 넘겨요.\n"
    write_article("refund-when.md",
                  article_source(owner="cx-policy\nhandles_flags: [fraud]") + escalation)
    assert not findings_for(small_kb, "refund-when.md")
    late = small_kb / "faq" / "shipping-late.md"
    source = late.read_text(encoding="utf-8")
    late.write_text(source.replace("owner: cx-policy", "owner: cx-policy\nhandles_flags: [fraud]",
                                   1), encoding="utf-8")
    # Two faq articles for one flag: which escalation rule the flag carries is ambiguous.
    for name in ("refund-when.md", "shipping-late.md"):
        assert any("2 faq articles handle fraud" in f.message
                   for f in findings_for(small_kb, name))
    # Without ## 에스컬레이션 an article gives agents no rule for the flag.
    assert any("no ## 에스컬레이션 section" in f.message
               for f in findings_for(small_kb, "shipping-late.md", "warning"))


def _owners_pass_and_fail(small_kb, write_article, article_source, good, bad):
    """An article with front matter `good` lints clean; each of `bad` reports its problem."""
    escalation = "\n## 에스컬레이션\n사기 신고는 안전거래팀에 넘겨요.\n"
    write_article("refund-when.md", article_source(owner=good) + escalation)
    assert not findings_for(small_kb, "refund-when.md")
    for owner, problem in bad:
        write_article("refund-when.md", article_source(owner=owner) + escalation)
        assert any(problem in f.message for f in findings_for(small_kb, "refund-when.md"))


def test_escalation_when_is_checked(small_kb, write_article, article_source):
    good = "cx-policy\nescalation_when:\n  fraud: [off_platform, 환불 받]"
    _owners_pass_and_fail(small_kb, write_article, article_source, good, (
        ("cx-policy\nescalation_when:\n  phishing: [링크]", "unknown escalation_when flag"),
        ("cx-policy\nescalation_when:\n  fraud: ['환불(']", "is not a valid pattern"),
        ("cx-policy\nescalation_when: [fraud]", "must map risk flags to lists")))
    # Without ## 에스컬레이션 there is no rule to hand over.
    write_article("refund-when.md", article_source(owner=good))
    assert any("has no ## 에스컬레이션 section" in f.message
               for f in findings_for(small_kb, "refund-when.md"))


def test_flag_cues_live_with_the_article_that_handles_the_flag(small_kb, write_article,
                                                              article_source):
    good = "cx-policy\nhandles_flags: [fraud]\nflag_cues:\n  fraud: [돌멩이만, '신문지\\S{0,3}만']"
    _owners_pass_and_fail(small_kb, write_article, article_source, good, (
        ("cx-policy\nflag_cues:\n  fraud: [돌멩이만]", "the article does not handle it"),
        ("cx-policy\nhandles_flags: [fraud]\nflag_cues:\n  fraud: ['돌(']",
         "is not a valid pattern"),
        ("cx-policy\nhandles_flags: [personal_data]\nflag_cues:\n  personal_data: [번호]",
         "not by cues")))


def test_not_offered_maps_services_to_valid_cues(small_kb, write_article, article_source):
    good = "cx-policy\nnot_offered:\n  경매 판매: [경매, '입찰\\S{0,3}\\s*받']"
    write_article("refund-when.md", article_source(owner=good))
    assert findings_for(small_kb, "refund-when.md") == []
    assert findings_for(small_kb, "refund-when.md", "warning") == []
    for owner, problem in (
            ("cx-policy\nnot_offered: [경매]", "must map each service"),
            ("cx-policy\nnot_offered:\n  경매 판매: []", "must map each service"),
            ("cx-policy\nnot_offered:\n  경매 판매: ['경매(']", "is not a valid pattern")):
        write_article("refund-when.md", article_source(owner=owner))
        assert any(problem in f.message for f in findings_for(small_kb, "refund-when.md"))


def test_a_not_offered_cue_the_kb_uses_is_warned_about(small_kb, write_article,
                                                       article_source):
    """간편결제 is in the article's own text, 자동 취소 in shipping-late's: the KB may
    answer both."""
    owner = "cx-policy\nnot_offered:\n  간편결제: [간편 결제]\n  취소 대행: [자동 취소]"
    write_article("refund-when.md", article_source(owner=owner))
    warnings = [f.message for f in findings_for(small_kb, "refund-when.md", "warning")]
    assert any("'간편 결제'" in w and "refund-when's customer-facing text" in w
               for w in warnings)
    assert any("'자동 취소'" in w and "shipping-late's" in w for w in warnings)
    assert findings_for(small_kb, "refund-when.md") == []  # a warning, not an error


def _successor(article_source, new_id: str, old_id: str, effective_from: str) -> str:
    return article_source(id=new_id, effective_from=effective_from,
                          owner=f"cx-policy\nsupersedes: {old_id}")


def test_a_successor_must_take_effect_after_the_article_it_supersedes(small_kb, write_article,
                                                                      article_source):
    write_article("refund-when-v2.md",
                  _successor(article_source, "refund-when-v2", "refund-when", "2026-01-05"))
    assert any("must be later than that of the article it supersedes, 'refund-when'" in f.message
               for f in findings_for(small_kb, "refund-when-v2.md"))
    write_article("refund-when-v2.md",
                  _successor(article_source, "refund-when-v2", "refund-when", "2026-12-15"))
    assert findings_for(small_kb, "refund-when-v2.md") == []


def test_an_article_has_one_successor(small_kb, write_article, article_source):
    for new_id in ("refund-when-a", "refund-when-b"):
        write_article(f"{new_id}.md",
                      _successor(article_source, new_id, "refund-when", "2026-12-15"))
    messages = [f.message for f in findings_for(small_kb, "refund-when-b.md")]
    assert "'refund-when' is superseded by 2 articles (refund-when-a, refund-when-b): an " \
           "article has one successor" in messages


def test_supersedes_must_not_make_a_cycle(small_kb, write_article, article_source):
    write_article("refund-when.md", article_source(owner="cx-policy\nsupersedes: refund-when-v2"))
    write_article("refund-when-v2.md",
                  _successor(article_source, "refund-when-v2", "refund-when", "2026-12-15"))
    messages = [f.message for f in findings_for(small_kb, "refund-when.md")]
    assert "supersedes makes a cycle: refund-when → refund-when-v2 → refund-when" in messages
