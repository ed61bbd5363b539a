"""Contradictions and near-duplicates across articles (`suggester lint --consistency`).

The two measured targets of issue 20 live here: recall on copies of the shipped KB with one
number changed, and precision on the shipped KB against pairs judged by hand once
(tests/data/consistency_judged.json). A pair the checker starts reporting that nobody judged
fails the test, so a regression shows as a diff to judge.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from suggester.cli import main
from suggester.knowledge.articles import Article, discover, parse_article, read_article
from suggester.knowledge.consistency import (
    CONTRADICTION,
    DUPLICATE,
    UNITS,
    ConsistencyChecker,
    Fact,
)
from suggester.search.lexical import shared_tokenizer

from conftest import DATA, SHIPPED_KB

JUDGED = DATA / "consistency_judged.json"
MIN_PLANTED = 30
RECALL_TARGET, PRECISION_TARGET = 0.9, 0.8


@pytest.fixture(scope="module")
def checker() -> ConsistencyChecker:
    return ConsistencyChecker(shared_tokenizer().topic_words)


@pytest.fixture(scope="module")
def shipped() -> list[Article]:
    return [read_article(path) for path in discover(SHIPPED_KB)]


def _article(source: str, name: str) -> Article:
    return parse_article(source, Path(f"/kb/policy/{name}.md"))


def _source(article_id: str, policy: str) -> str:
    return (f"---\nid: {article_id}\ntitle: {article_id}\ntype: policy\naudience: all\n"
            f"category: 정산·수수료\ntags: [t]\nchannels: [chat]\nstatus: published\n"
            f"effective_from: 2026-01-01\nreview_by: 2027-01-01\nowner: o\nversion: 1\n---\n\n"
            f"## 요약\n요약이에요.\n\n## 정책\n{policy}\n\n## 응대 예시\n안내드려요.\n\n"
            f"## 예상 문의\n### Q. 언제인가요?\n곧이에요.\n\n### Q. 어디인가요?\n앱이에요.\n\n"
            f"## 내부 메모\n판매 수수료는 9%로 협상 중이에요.\n")


def test_a_fee_stated_differently_is_a_contradiction(checker):
    fees = _article(_source("fees", "- 판매 수수료는 상품가의 5%예요."), "fees")
    settlement = _article(_source("settle", "- 정산할 때 판매 수수료 7%를 빼요."), "settle")
    [conflict] = checker.check_article(settlement, [fees, settlement])
    assert conflict.kind == CONTRADICTION
    assert (conflict.path.name, conflict.other_path.name) == ("settle.md", "fees.md")
    line = settlement.source.split("\n").index("- 정산할 때 판매 수수료 7%를 빼요.") + 1
    assert conflict.line == line
    assert conflict.detail == "7% ↔ 5%"


def test_the_same_value_internal_memos_and_calendar_days_are_not_contradictions(checker):
    fees = _article(_source("fees", "- 판매 수수료는 상품가의 5%예요."), "fees")
    same = _article(_source("same", "- 정산할 때 판매 수수료 5%를 빼요.\n- 12월 15일에 판매 "
                                    "수수료 안내가 바뀌어요."), "same")
    assert [c for c in checker.check_article(same, [fees]) if c.kind == CONTRADICTION] == []


def test_a_rule_written_twice_is_a_duplicate(checker):
    one = _article(_source("one", "- 분쟁 조정 중 판매자가 48시간 동안 응답하지 않으면 구매자가 "
                                  "낸 증빙을 기준으로 결정해요."), "one")
    two = _article(_source("two", "- 판매자가 분쟁 조정 중 48시간 동안 응답하지 않으면 구매자님이 "
                                  "낸 증빙을 기준으로 결정해요."), "two")
    kinds = [c.kind for c in checker.check_article(two, [one])]
    assert kinds == [DUPLICATE]


def test_drafts_of_other_articles_are_not_compared(checker):
    fees = _article(_source("fees", "- 판매 수수료는 상품가의 5%예요.").replace(
        "status: published", "status: draft"), "fees")
    settlement = _article(_source("settle", "- 정산할 때 판매 수수료 7%를 빼요."), "settle")
    assert checker.check_article(settlement, [fees]) == []


# -- the measured targets -----------------------------------------------------------------


def _planted_edits(checker: ConsistencyChecker, articles: list[Article]) -> list[tuple[Fact, str]]:
    """One number per article that another article states too, doubled: (fact, new source).

    The candidates are chosen by a rule of their own (same value and unit in another article,
    three words in common near the number), not by the checker's similarity.
    """
    published = [a for a in articles if a.status == "published"]
    facts = {a.path: checker.facts(a) for a in published}
    edits = []
    for article in published:
        for fact in facts[article.path]:
            twins = [other for path, others in facts.items() if path != article.path
                     for other in others if (other.unit, other.value) == (fact.unit, fact.value)
                     and len(fact.words & other.words) >= 3]
            if "~" not in fact.value and twins:
                edits.append((fact, _change_number(article, fact)))
                break
    return edits


def _change_number(article: Article, fact: Fact) -> str:
    lines = article.source.split("\n")
    spellings = "|".join(re.escape(s) for s, unit in UNITS.items() if unit == fact.unit)
    digits = ",?".join(re.escape(c) for c in fact.value)
    number = re.compile(rf"(?<![\d,.]){digits}(?=\s?(?:{spellings}))")
    new_line, count = number.subn(str(int(float(fact.value)) * 2), lines[fact.line.number - 1],
                                  count=1)
    assert count == 1
    lines[fact.line.number - 1] = new_line
    return "\n".join(lines)


def test_planted_contradictions_are_found(checker, shipped):
    edits = _planted_edits(checker, shipped)
    assert len(edits) >= MIN_PLANTED
    found = []
    for fact, source in edits:
        edited = parse_article(source, fact.line.path)
        conflicts = checker.check_article(edited, shipped)
        found.append(any(c.kind == CONTRADICTION and c.line == fact.line.number
                         for c in conflicts))
    recall = sum(found) / len(found)
    assert recall >= RECALL_TARGET, f"planted recall {recall:.2f} on {len(found)} edits"


def test_every_pair_on_the_shipped_kb_was_judged_and_most_are_right(checker, shipped):
    judged = {(item["a"], item["b"]): item for item in json.loads(JUDGED.read_text("utf-8"))}
    reported = []
    for conflict in checker.check_kb(shipped):
        a_name, a_line, b_name, b_line = conflict.key()
        reported.append((f"{a_name}:{a_line}", f"{b_name}:{b_line}"))
    unjudged = [pair for pair in reported if pair not in judged]
    assert unjudged == [], "judge these pairs by hand and add them to " + JUDGED.name
    precision = sum(judged[pair]["correct"] for pair in reported) / len(reported)
    assert precision >= PRECISION_TARGET, f"precision {precision:.2f} on {len(reported)} pairs"


def test_lint_consistency_prints_pairs_and_fails_only_when_strict(small_kb, write_article):
    write_article("fees.md", _source("fees", "- 판매 수수료는 상품가의 5%예요."), "policy")
    write_article("settle.md", _source("settle", "- 판매 수수료는 상품가의 7%예요."), "policy")
    runner = CliRunner()
    lenient = runner.invoke(main, ["--kb-dir", str(small_kb), "lint", "--consistency"])
    assert lenient.exit_code == 0, lenient.output
    assert re.search(r"policy/fees\.md:\d+ ↔ policy/settle\.md:\d+: warning: contradiction: "
                     r"5% ↔ 7%", lenient.output)
    strict = runner.invoke(main, ["--kb-dir", str(small_kb), "lint", "--consistency", "--strict"])
    assert strict.exit_code == 1
    assert "error: contradiction" in strict.output
