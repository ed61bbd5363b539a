"""The evaluation suite: metrics, golden validation, checks, ragas proxies, gate, reports."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from dataclasses import replace
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from suggester.cli import main
from suggester.evaluation import checks
from suggester.evaluation.external import load_korquad, load_welfare, write_kb
from suggester.evaluation.gate import (
    THRESHOLDS_PATH,
    Threshold,
    check_gate,
    load_targets,
    load_thresholds,
)
from suggester.evaluation.golden import GoldenItem, load_golden, validate_golden
from suggester.evaluation.metrics import (
    hit_at,
    ndcg_at,
    recall_at,
    reciprocal_rank,
    retrieval_scores,
)
from suggester.evaluation.ragas_metrics import (
    NO_LLM,
    RagasSample,
    numeric_facts,
    numeric_support,
    score_samples,
)
from suggester.evaluation.report import write_report
from suggester.evaluation.runner import RETRIEVAL_METRICS, EvalReport, run_eval
from suggester.knowledge.lint import lint_kb

from conftest import ROOT, SHIPPED_KB, TEST_CACHE

GOLDEN = ROOT / "eval" / "golden"
BENCHMARKS = ROOT.parent / "shared" / "benchmarks"


# -- retrieval metrics --------------------------------------------------------------------------

def test_metrics_on_hand_made_rankings():
    ranked = ["a", "b", "c", "d", "e", "f"]
    assert hit_at(ranked, ["c"], 1) == 0.0 and hit_at(ranked, ["c"], 5) == 1.0
    assert hit_at(ranked, ["f"], 5) == 0.0
    assert recall_at(ranked, ["b", "f"], 5) == 0.5 and recall_at(ranked, [], 5) == 0.0
    assert reciprocal_rank(ranked, ["d", "b"]) == 0.5
    assert reciprocal_rank(ranked, ["z"]) == 0.0
    assert ndcg_at(ranked, ["a"], 5) == 1.0
    # The first relevant id weighs 2, the second 1: finding only the second scores less.
    assert ndcg_at(["x", "a"], ["a", "b"], 5) > ndcg_at(["x", "b"], ["a", "b"], 5) > 0
    assert set(retrieval_scores(ranked, ["a"])) == set(RETRIEVAL_METRICS)


# -- the golden set -----------------------------------------------------------------------------

def _item(**changes) -> GoldenItem:
    base = GoldenItem(id="dev-900", inquiry="환불 언제돼요", audience="buyer", channel="chat",
                      expected_types=["반품·환불"], relevant=["refund-timing"],
                      reference_reply="3영업일 안에 환불돼요.", must_include=["3영업일"],
                      must_not_include=["7영업일"], expected_flags=[], urgency="normal",
                      grounded=True)
    return replace(base, **changes)


def test_validator_catches_duplicate_ids_unknown_articles_and_duplicate_inquiries():
    items = [_item(), _item(inquiry="정산은 언제 들어와요"),
             _item(id="dev-901", inquiry="환불  언제 돼요"),
             _item(id="dev-902", inquiry="쿠폰이 안돼요", relevant=["no-such-article"])]
    problems = validate_golden(items, {"refund-timing"})
    assert any("dev-900: duplicate id" in p for p in problems)
    assert any("dev-901: same inquiry as dev-900" in p for p in problems)
    assert any("unknown article 'no-such-article'" in p for p in problems)
    assert validate_golden([_item()], {"refund-timing"}) == []


def test_the_shipped_golden_set_validates_clean():
    articles = {a.id for a in lint_kb(SHIPPED_KB).articles}
    items = load_golden("all", GOLDEN)
    assert len(items) >= 200
    assert validate_golden(items, articles) == []
    assert sum(not i.grounded for i in items) >= 30
    assert sum(bool(i.expected_flags) for i in items) >= 20


# -- suggestion checks on hand-made objects ----------------------------------------------------

INTERNAL = ("- 판매자 연락 두절 3회 이상이면 안전거래팀에 판매 제한 검토 요청.\n"
            "재량 보상은 최대 5,000원까지.")
PUBLIC = "재량 보상은 최대 5,000원까지."


def test_leak_detector_finds_memo_sentences_despite_spacing_and_punctuation():
    leaks = checks.LeakDetector([INTERNAL], [PUBLIC])
    draft = "고객님, 확인해 볼게요. 판매자 연락두절 3회 이상이면 안전거래팀에 판매제한 검토요청!"
    assert leaks.leaks(draft) == ["판매자 연락 두절 3회 이상이면 안전거래팀에 판매 제한 검토 요청."]
    assert leaks.leaks("재량 보상은 최대 5,000원까지예요.") == []  # also customer-facing text
    assert checks.LeakDetector(["온콜 호출."]).leaks("온콜 호출.") == []  # under 12 characters


def _suggestion(*, types=("반품·환불",), audience="buyer", urgency="normal", flags=(),
                text="환불은 3영업일 안에 돼요.", grounded=True):
    analysis = SimpleNamespace(
        inquiry_types=[SimpleNamespace(category=t, confidence=0.9) for t in types],
        audience=audience, urgency=urgency,
        risk_flags=[SimpleNamespace(name=f) for f in flags])
    citation = SimpleNamespace(article_id="refund-timing", section="정책", chunk_id="c1")
    draft = SimpleNamespace(text=text, grounded=grounded, citations=[citation])
    return SimpleNamespace(analysis=analysis, draft=draft, passages=[], internal_notes=[])


def test_checks_score_one_suggestion_and_sum_up_a_split():
    leaks = checks.LeakDetector([INTERNAL], [PUBLIC])
    items = [
        _item(),
        _item(id="dev-2", inquiry="사기당했어요", expected_types=["사기·안전"],
              expected_flags=["fraud"], urgency="high", audience="unknown",
              must_include=["112", "24시간"], must_not_include=["환불해 드릴게요"]),
        _item(id="dev-3", inquiry="오프라인 매장 있어요?", grounded=False, relevant=[],
              expected_types=[], must_include=[], must_not_include=[]),
    ]
    suggestions = [
        _suggestion(),
        _suggestion(types=("결제",), audience="buyer", urgency="high",
                    flags=("fraud", "personal_data"),
                    text="112에 신고해 주세요. 환불해 드릴게요. 안전거래팀에 검토 요청할게요, "
                         "판매자 연락 두절 3회 이상이면 안전거래팀에 판매 제한 검토 요청."),
        _suggestion(types=(), audience="unknown", grounded=False, text="확인 후 안내드릴게요."),
    ]
    records = [checks.check_item(i, s, leaks) for i, s in zip(items, suggestions, strict=True)]
    assert records[0]["type_correct"] and records[0]["must_include_found"] == ["3영업일"]
    assert records[1]["must_include_missing"] == ["24시간"]
    assert records[1]["must_not_include_found"] == ["환불해 드릴게요"]
    assert records[1]["leaks"]
    summary = checks.summarise(items, records)
    assert summary["type_accuracy"] == 0.5 and summary["type_n"] == 2
    assert summary["audience_accuracy"] == 0.5 and summary["audience_n"] == 2
    assert summary["urgency_accuracy"] == 1.0
    assert summary["flags"]["overall"] == {"precision": 0.5, "recall": 1.0, "tp": 1, "fp": 1,
                                           "fn": 0}
    assert summary["flags"]["by_flag"]["personal_data"]["precision"] == 0.0
    assert summary["must_include_coverage"] == 2 / 3
    assert summary["must_not_include_violations"] == 1 and summary["violating_items"] == ["dev-2"]
    assert summary["internal_leaks"] == 1 and summary["leaking_items"] == ["dev-2"]
    assert summary["no_answer"]["precision"] == 1.0 and summary["no_answer"]["recall"] == 1.0


def test_the_golden_first_article_figures_separate_ranking_from_drafting():
    # dev-900's served draft followed another article and missed its fact; drafted from its
    # golden first article it states it, late. dev-2 was right either way.
    items = [_item(), _item(id="dev-2", inquiry="정산 언제 돼요", must_include=["1영업일"])]
    late = "구매확정 다음 날부터 정산 절차가 시작되고, 영업일 기준으로 계산해요. " * 6 + "3영업일"
    records = [{**checks.check_item(item, _suggestion(text=text), checks.LeakDetector([])),
                "golden_first": checks.included_facts(item, golden)}
               for item, text, golden in [(items[0], "잘 모르겠어요.", late),
                                          (items[1], "1영업일 안에 돼요.", "1영업일 안에 돼요.")]]
    shape = checks.summarise(items, records)["draft_shape"]
    assert shape["answer_first"] == 0.5
    assert shape["golden_first"] == {"must_include_coverage": 1.0, "answer_first": 0.5,
                                     "items": 2}
    # A run that drafted nothing from the golden articles (an LLM drafting) says so.
    plain = [{k: v for k, v in r.items() if k != "golden_first"} for r in records]
    assert "skipped" in checks.summarise(items, plain)["draft_shape"]["golden_first"]


def test_macro_f1_averages_categories_of_the_golden_items():
    assert checks.macro_f1([["a"], ["b"]], [["a"], ["b"]]) == 1.0
    assert checks.macro_f1([["a"], ["a"]], [["a"], ["b"]]) == pytest.approx((2 / 3 + 0) / 2)


# -- ragas and the numeric faithfulness proxy ---------------------------------------------------

def test_numeric_faithfulness_needs_every_number_in_the_cited_passages():
    assert numeric_facts("이용료 9,900원, 도착 후 2영업일 안에, ±2cm까지") == [
        "9,900원", "2영업일", "±2cm"]
    passages = ["반품 배송비는 3,000원이며 승인 후 3영업일 안에 환불됩니다."]
    assert numeric_support("3영업일 안에 환불돼요. 배송비는 3,000원이에요.", passages)[:2] == (2, 2)
    supported, stated, wrong = numeric_support("13영업일 걸려요. 감사합니다.", passages)
    assert (supported, stated, wrong) == (0, 1, ["13영업일 걸려요."])
    assert numeric_support("확인해 볼게요.", passages)[:2] == (0, 0)


def test_ragas_metrics_score_korean_and_skip_llm_metrics_without_an_endpoint():
    reply = "반품이 승인되면 3영업일 안에 환불돼요. 카드사에 따라 더 걸릴 수 있어요."
    passage = ("반품이 승인되면 3영업일 안에 결제 수단으로 환불됩니다. "
               "카드사 사정에 따라 늦어질 수 있습니다.")
    samples = [
        RagasSample(item_id="a", user_input="환불 언제돼요", reference=reply,
                    relevant=["refund-timing"], retrieved_ids=["refund-timing", "x"],
                    retrieved_texts=[passage, "쿠폰은 주문 취소 시 돌려드려요."],
                    response="반품 승인 후 3영업일 안에 환불돼요.", cited_texts=[passage]),
        RagasSample(item_id="b", user_input="매장 어디예요", reference="확인 후 안내드릴게요.",
                    relevant=[], retrieved_ids=["x"], retrieved_texts=["무관한 글"],
                    response="확인 후 안내드릴게요.", cited_texts=[], answerable=False),
    ]
    per_item, summary = score_samples(samples)
    assert per_item["a"]["id_context_precision"] == 0.5
    assert per_item["a"]["id_context_recall"] == 1.0
    assert per_item["a"]["nonllm_context_recall"] > 0  # partial alignment sees Korean overlap
    assert 0.3 < per_item["a"]["chrf"] < 1.0
    assert per_item["a"]["numeric_faithfulness"] == 1.0
    assert "id_context_recall" not in per_item["b"]  # negatives have no relevant articles
    assert summary["faithfulness"] == {"skipped": NO_LLM}
    assert summary["answer_relevancy"] == {"skipped": NO_LLM}
    assert summary["chrf"]["n"] == 1


# -- the gate -----------------------------------------------------------------------------------

def _report(*, hit5=0.97, mrr=0.88, precision=0.85, recall=0.9, types=0.93, coverage=0.95,
            leaks=0, violations=0, suggestions=True) -> EvalReport:
    overall = {m: 0.9 for m in RETRIEVAL_METRICS} | {"hit@5": hit5, "mrr": mrr}
    checks_summary = {"skipped": "no service"}
    if suggestions:
        checks_summary = {
            "type_accuracy": types, "type_macro_f1": 0.8, "audience_accuracy": 0.9,
            "urgency_accuracy": 0.9, "must_include_coverage": coverage,
            "must_not_include_violations": violations, "internal_leaks": leaks,
            "flags": {"overall": {"precision": 1.0, "recall": 1.0}},
            "no_answer": {"precision": precision, "recall": recall}}
    return EvalReport(name="golden/test", split="test", systems=["hybrid"],
                      retrieval={"hybrid": {"n": 1, "overall": overall, "by_category": {}}},
                      no_answer={"precision": precision, "recall": recall, "f1": 0.8},
                      suggestions=checks_summary, ragas={}, items=[])


FIRST_TARGETS = {
    "retrieval.hybrid.hit@5": 0.95, "retrieval.hybrid.mrr": 0.85, "no_answer.recall": 0.80,
    "no_answer.precision": 0.80, "suggestions.type_accuracy": 0.90,
    "suggestions.must_include_coverage": 0.90,
}
ISSUE_TARGETS = FIRST_TARGETS | {  # issue 17: short drafts that answer what was asked
    "suggestions.answer_first": 0.75, "suggestions.must_include_multi_type": 0.80,
    "ragas.chrf": 0.40,
}
STARTING_GATE = [Threshold(metric=m, bound="min", value=v) for m, v in FIRST_TARGETS.items()] + [
    Threshold(metric="suggestions.internal_leaks", bound="max", value=0),
    Threshold(metric="suggestions.must_not_include_violations", bound="max", value=0)]


def test_thresholds_file_keeps_the_agreed_targets_and_a_floor_for_each():
    path = ROOT / THRESHOLDS_PATH
    targets = {t.metric: t.value for t in load_targets(path)}
    assert targets == ISSUE_TARGETS
    floors = {(t.metric, t.bound): t.value for t in load_thresholds(path)}
    assert {metric for metric, _ in floors} >= set(ISSUE_TARGETS)
    # A floor is the measured figure less one golden item's worth (issue 14), so once a
    # target is met its floor may sit above it: the gate guards what was reached.
    assert all(0 <= value <= 1 for (metric, bound), value in floors.items() if bound == "min")
    assert floors[("suggestions.internal_leaks", "max")] == 0  # never negotiable


def test_gate_passes_a_good_report_and_names_each_failing_threshold():
    assert check_gate(_report().figures(), STARTING_GATE) == []
    failures = check_gate(_report(mrr=0.84, precision=0.7, leaks=1).figures(), STARTING_GATE)
    assert {f.threshold.metric for f in failures} == {
        "retrieval.hybrid.mrr", "no_answer.precision", "suggestions.internal_leaks"}
    assert "retrieval.hybrid.mrr = 0.84, required ≥ 0.85" in [str(f) for f in failures]


def test_gate_fails_figures_that_were_not_measured():
    failures = check_gate(_report(suggestions=False).figures(), STARTING_GATE)
    assert {f.threshold.metric for f in failures} == {
        "suggestions.type_accuracy", "suggestions.must_include_coverage",
        "suggestions.internal_leaks", "suggestions.must_not_include_violations"}
    assert all("not measured" in str(f) for f in failures)
    assert check_gate({"x": math.nan}, [Threshold(metric="x", bound="min", value=0)])


# -- a real run on a few dev items --------------------------------------------------------------

def test_a_small_run_writes_json_markdown_and_html(shipped_settings, tmp_path):
    report = run_eval(shipped_settings, "dev", limit=4, golden_dir=GOLDEN, progress=False)
    assert report.systems == ["bm25-whitespace", "bm25-kiwi", "dense", "hybrid"]
    assert [r["id"] for r in report.items] == ["dev-001", "dev-002", "dev-003", "dev-004"]
    # Each item is scored for the four systems and for the ranking the service serves.
    assert all(set(r["retrieval"]) == {*report.systems, "served"} for r in report.items)
    assert set(report.retrieval) == {*report.systems, "served"}
    paths = write_report(report, tmp_path / "out",
                         thresholds=load_thresholds(ROOT / THRESHOLDS_PATH), failures=[])
    summary = json.loads(paths["summary"].read_text(encoding="utf-8"))
    assert summary["figures"]["retrieval.hybrid.hit@5"] == report.retrieval["hybrid"][
        "overall"]["hit@5"]
    assert summary["gate"]["passed"] is True
    assert summary["ragas"]["faithfulness"] == {"skipped": NO_LLM}
    lines = paths["items"].read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4 and json.loads(lines[0])["retrieval"]["hybrid"]["top"]
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "| hybrid |" in markdown and "## Suggestion checks" in markdown
    page = paths["html"].read_text(encoding="utf-8")
    assert page.count("<svg") >= 2 and "<script" not in page and "http" not in page.replace(
        "http://www.w3.org/2000/svg", "")
    for svg in page.split("<svg")[1:]:
        ET.fromstring("<svg" + svg.split("</svg>")[0] + "</svg>")  # well-formed
    if "skipped" not in report.suggestions:
        first = report.items[0]["suggestion"]
        assert {"predicted_types", "draft_text", "leaks"} <= set(first)
        assert report.suggestions["internal_leaks"] == 0
        # Every answerable item is also drafted from its golden first article.
        golden = report.suggestions["draft_shape"]["golden_first"]
        assert golden["items"] == sum(1 for r in report.items if r["answerable"])
        assert "drafted from the golden first article" in markdown
        # The KB's own anticipated questions are routed too, and each one sent elsewhere named.
        kb = report.kb_questions
        assert kb["checked"] > 200 and len(kb["elsewhere"]) < kb["checked"]
        assert kb["own_article_first"] == round(1 - len(kb["elsewhere"]) / kb["checked"], 4)
        assert summary["figures"]["kb_questions.own_article_first"] == kb["own_article_first"]
        assert f"of {kb['checked']} (`suggester routes`" in markdown


def test_eval_command_prints_the_summary_and_gate_exits_1(shipped_settings, tmp_path,
                                                          monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("SUGGESTER_CACHE_DIR", str(TEST_CACHE))
    out = tmp_path / "report"
    result = CliRunner().invoke(main, [
        "--data-dir", str(shipped_settings.data_dir), "--kb-dir", str(SHIPPED_KB), "eval",
        "--set", "dev", "--limit", "2", "--systems", "hybrid", "--out", str(out), "--gate",
        "-q"])
    assert "# Evaluation: golden/dev" in result.output
    assert (out / "report.html").exists() and (out / "summary.json").exists()
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert result.exit_code == (0 if summary["gate"]["passed"] else 1), result.output


def test_eval_command_rejects_unknown_systems(tmp_path):
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "eval", "--systems", "bm42"])
    assert result.exit_code == 2 and "unknown retrieval system" in result.output


# -- external benchmarks ------------------------------------------------------------------------

@pytest.mark.skipif(not BENCHMARKS.is_dir(), reason="../shared/benchmarks is not here")
@pytest.mark.parametrize("name", ["korquad", "welfare"])
def test_external_benchmark_becomes_lint_clean_articles(name, tmp_path):
    if name == "korquad":
        bench = load_korquad(BENCHMARKS / "korquad-v1-dev" / "KorQuAD_v1.0_dev.json", 8)
    else:
        bench = load_welfare(BENCHMARKS / "welfare-qa-ko", 8)
    assert len(bench.queries) == 8 and len(bench.articles) == 5
    ids = {a.id for a in bench.articles}
    assert all(q.relevant and set(q.relevant) <= ids for q in bench.queries)
    paths = write_kb(bench.articles, tmp_path / "kb")
    report = lint_kb(tmp_path / "kb")
    assert report.findings == [] and len(report.published) == len(paths) == 5
    article = report.articles[0]
    assert article.section("안내") is not None and len(article.questions()) == 2
    source = next(a for a in bench.articles if a.id == article.id).text
    assert checks.normalise(article.section("안내").text)[:30] in checks.normalise(source)

