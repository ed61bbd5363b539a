"""Write an evaluation: summary.json, items.jsonl, a Markdown summary and report.html.

The HTML report is one self-contained file: charts are inline SVG drawn here, so it opens
offline and needs no script or CDN.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from suggester.evaluation.gate import GateFailure, Threshold
from suggester.evaluation.runner import RETRIEVAL_METRICS, EvalReport

REPORTS_DIR = Path("eval/reports")
PALETTE = ("#9aa0a6", "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1")
_LABELS = {"hit@1": "hit@1", "hit@5": "hit@5", "recall@5": "recall@5", "mrr": "MRR",
           "ndcg@5": "nDCG@5"}


def default_out_dir() -> Path:
    return REPORTS_DIR / dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def gate_section(thresholds: Sequence[Threshold] | None,
                 failures: Sequence[GateFailure] | None,
                 figures: dict[str, float | None]) -> dict[str, Any] | None:
    if thresholds is None:
        return None
    failed = {f.threshold.metric for f in failures or ()}
    return {"passed": not failed, "thresholds": [
        {"metric": t.metric, "required": t.required, "actual": figures.get(t.metric),
         "ok": t.metric not in failed} for t in thresholds]}


def write_report(report: EvalReport, out_dir: Path, *,
                 thresholds: Sequence[Threshold] | None = None,
                 failures: Sequence[GateFailure] | None = None) -> dict[str, Path]:
    """Write the four files into `out_dir`; return their paths by kind."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = report.summary()
    summary["gate"] = gate_section(thresholds, failures, report.figures())
    paths = {"summary": out_dir / "summary.json", "items": out_dir / "items.jsonl",
             "markdown": out_dir / "summary.md", "html": out_dir / "report.html"}
    paths["summary"].write_text(json.dumps(summary, ensure_ascii=False, indent=2, default=str)
                                + "\n", encoding="utf-8")
    with paths["items"].open("w", encoding="utf-8") as out:
        for record in report.items:
            out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    paths["markdown"].write_text(markdown_summary(report, summary["gate"]), encoding="utf-8")
    paths["html"].write_text(html_report(report, summary["gate"]), encoding="utf-8")
    return paths


# -- Markdown -----------------------------------------------------------------------------------

def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_f(c) for c in row) + " |" for row in rows]
    return lines


def markdown_summary(report: EvalReport, gate: dict[str, Any] | None = None) -> str:
    """The summary printed by `suggester eval`."""
    m = report.meta
    out = [f"# Evaluation: {report.name}", "",
           f"{m['items']} items ({m['answerable']} answerable, {m['negatives']} not covered by "
           f"the KB) · k = {m['k']} · {m['runtime_s']:.1f} s · {m['created_at']}", "",
           "## Retrieval (answerable items)", ""]
    out += _table(["system", *(_LABELS[x] for x in RETRIEVAL_METRICS)],
                  [[s, *(r["overall"][x] for x in RETRIEVAL_METRICS)]
                   for s, r in report.retrieval.items()])
    if "hybrid" in report.retrieval:
        out += ["", "### Hybrid by category", ""]
        out += _table(["category", "n", *(_LABELS[x] for x in RETRIEVAL_METRICS)],
                      [[c, v["n"], *(v[x] for x in RETRIEVAL_METRICS)]
                       for c, v in report.retrieval["hybrid"]["by_category"].items()])
    if report.no_answer:
        n = report.no_answer
        out += ["", "## No answer (hybrid `grounded`)", "",
                f"precision {_f(n['precision'])} · recall {_f(n['recall'])} · "
                f"{n['tp']} of {n['tp'] + n['fn']} uncovered inquiries refused; "
                f"answerable but refused: {', '.join(n['refused_answerable']) or 'none'}; "
                f"uncovered but answered: {', '.join(n['answered_negatives']) or 'none'}"]
    if report.kb_questions:
        k = report.kb_questions
        out += ["", f"KB anticipated questions that find their own article first: "
                    f"{_f(k['own_article_first'])} of {k['checked']} "
                    f"(`suggester routes` lists the others)"]
    out += ["", "## Suggestion checks", ""]
    out += _suggestion_lines(report.suggestions)
    if report.ragas:
        out += ["", "## ragas (hybrid)", ""]
        out += _table(["metric", "value", "n"], [
            [name, r.get("value", r.get("skipped")), r.get("n")]
            for name, r in report.ragas.items()])
    if report.llm:
        out += ["", "## LLM drafting (validator)", ""]
        out += _table(["figure", "value"], llm_rows(report.llm))
    if gate is not None:
        verdict = "PASSED" if gate["passed"] else "FAILED"
        out += ["", f"## Gate: {verdict}", ""]
        out += _table(["threshold", "actual", "required", "ok"],
                      [[t["metric"], t["actual"], t["required"], "yes" if t["ok"] else "NO"]
                       for t in gate["thresholds"]])
    timings = ", ".join(f"{k.removesuffix('_s')} {v:.1f} s" for k, v in m["timings_s"].items())
    out += ["", f"Time: {timings}."]
    return "\n".join(out) + "\n"


def llm_rows(llm: dict[str, Any]) -> list[list[Any]]:
    """The LLM drafting figures as table rows; one 'skipped' row without an LLM."""
    if "skipped" in llm:
        return [["LLM drafts rejected by the validator", llm["skipped"]]]
    reasons = ", ".join(f"{k} {v}" for k, v in llm["reasons"].items()) or "–"
    return [["model", llm["model"]],
            ["grounded drafts sent to the LLM", llm["asked"]],
            ["accepted (shown as the LLM's draft)", llm["accepted"]],
            ["rejected (composer's draft shown instead)", llm["rejected"]],
            ["LLM drafts rejected by the validator (rate)", llm["rejection_rate"]],
            ["rejection reasons", reasons],
            ["LLM latency p50 / p95 (ms)",
             f"{llm['latency_ms']['p50']:.0f} / {llm['latency_ms']['p95']:.0f}"]]


def _suggestion_lines(s: dict[str, Any]) -> list[str]:
    if "skipped" in s:
        return [str(s["skipped"])]
    flags = s["flags"]["overall"]
    rows: list[list[Any]] = [
        ["inquiry type accuracy (top-1, answerable)", s["type_accuracy"], s["type_n"]],
        ["inquiry type macro-F1", s["type_macro_f1"], s["type_n"]],
        ["audience accuracy (inferred)", s["audience_accuracy"], s["audience_n"]],
        ["urgency accuracy", s["urgency_accuracy"], s["n"]],
        ["risk flag precision", flags["precision"], flags["tp"] + flags["fp"]],
        ["risk flag recall", flags["recall"], flags["tp"] + flags["fn"]],
        ["no-answer precision (draft)", s["no_answer"]["precision"], s["n"]],
        ["no-answer recall (draft)", s["no_answer"]["recall"], s["n"]],
        ["must_include coverage", s["must_include_coverage"], s["must_include_total"]],
        ["must_not_include violations", s["must_not_include_violations"],
         ", ".join(s["violating_items"]) or "–"],
        ["internal memo leaks", s["internal_leaks"], ", ".join(s["leaking_items"]) or "–"],
    ]
    shape = s.get("draft_shape") or {}
    if shape:
        rows += [
            [f"median characters, grounded chat drafts (references "
             f"{_f(shape['reference_median_chars'], 0)})", shape["chat_median_chars"],
             shape["chat_drafts"]],
            ["chat draft length / reference length (medians)", shape["chat_chars_ratio"],
             shape["chat_drafts"]],
            ["chat drafts with a bullet list", shape["chat_bullet_drafts"], shape["chat_drafts"]],
            ["answer-first: must_include within the first 200 characters",
             shape["answer_first"], s["must_include_total"]],
            ["must_include coverage, items with 2+ expected types",
             shape["must_include_multi_type"], shape["multi_type_items"]],
        ]
        golden = shape.get("golden_first") or {}
        if "items" in golden:
            rows += [
                ["must_include coverage, drafted from the golden first article (an agent "
                 "choosing it)", golden["must_include_coverage"], golden["items"]],
                ["answer-first, drafted from the golden first article",
                 golden["answer_first"], golden["items"]],
            ]
    corrections = s.get("corrections") or {}
    if "after" in corrections:
        rows.append([f"type accuracy after {corrections['taught']} dev corrections "
                     f"(before {_f(corrections['before'])})", corrections["after"],
                     corrections["n"]])
    elif corrections:
        rows.append(["type accuracy after corrections", corrections.get("skipped"), None])
    lines = _table(["check", "value", "n / items"], rows)
    by_flag = [[f, v["precision"], v["recall"], v["tp"], v["fp"], v["fn"]]
               for f, v in s["flags"]["by_flag"].items() if v["tp"] + v["fp"] + v["fn"]]
    if by_flag:
        lines += ["", *_table(["flag", "precision", "recall", "tp", "fp", "fn"], by_flag)]
    return lines


# -- HTML ---------------------------------------------------------------------------------------

def _e(value: Any) -> str:
    return html.escape(_f(value) if not isinstance(value, str) else value)


def bar_chart(title: str, groups: Sequence[str], series: dict[str, Sequence[float | None]],
              *, horizontal: bool = False) -> str:
    """Grouped bars of 0–1 values as an inline SVG; one colour per series."""
    names = list(series)
    offset = 1 if len(names) == 1 else 0  # a lone series in blue, not the baseline's grey
    colour = {n: PALETTE[(i + offset) % len(PALETTE)] for i, n in enumerate(names)}
    legend = "".join(
        f'<rect x="{10 + i * 150}" y="28" width="12" height="12" fill="{colour[n]}"/>'
        f'<text x="{26 + i * 150}" y="38">{html.escape(n)}</text>' for i, n in enumerate(names))
    parts = []
    if horizontal:
        bar, gap, width = 11, 10, 560
        left = 10 + max(120, *(_text_width(g) for g in groups))
        row = bar * len(names) + gap
        height = 60 + row * len(groups) + 20
        for g, group in enumerate(groups):
            y0 = 55 + g * row
            parts.append(f'<text x="{left - 6}" y="{y0 + row / 2}" text-anchor="end">'
                         f'{html.escape(group)}</text>')
            for s, name in enumerate(names):
                value = series[name][g]
                if value is None:
                    continue
                y = y0 + s * bar
                parts.append(f'<rect x="{left}" y="{y}" width="{value * width:.1f}" '
                             f'height="{bar - 1}" fill="{colour[name]}"><title>{html.escape(name)}'
                             f' · {html.escape(group)}: {value:.3f}</title></rect>'
                             f'<text x="{left + value * width + 3:.1f}" y="{y + bar - 2}" '
                             f'class="v">{value:.2f}</text>')
        axis = "".join(f'<line x1="{left + t * width}" y1="50" x2="{left + t * width}" '
                       f'y2="{height - 20}" class="grid"/>' for t in (0, 0.25, 0.5, 0.75, 1))
        total_width = left + width + 50
    else:
        bar, gap, left, top, plot = 22, 26, 40, 60, 200
        group_width = bar * len(names) + gap
        total_width = left + group_width * len(groups) + 20
        height = top + plot + 40
        axis = "".join(
            f'<line x1="{left}" y1="{top + plot * (1 - t)}" x2="{total_width - 10}" '
            f'y2="{top + plot * (1 - t)}" class="grid"/><text x="{left - 4}" '
            f'y="{top + plot * (1 - t) + 4}" text-anchor="end" class="v">{t:g}</text>'
            for t in (0, 0.25, 0.5, 0.75, 1))
        for g, group in enumerate(groups):
            x0 = left + gap / 2 + g * group_width
            parts.append(f'<text x="{x0 + bar * len(names) / 2}" y="{top + plot + 18}" '
                         f'text-anchor="middle">{html.escape(group)}</text>')
            for s, name in enumerate(names):
                value = series[name][g]
                if value is None:
                    continue
                x, h = x0 + s * bar, value * plot
                parts.append(f'<rect x="{x}" y="{top + plot - h:.1f}" width="{bar - 2}" '
                             f'height="{h:.1f}" fill="{colour[name]}"><title>{html.escape(name)}'
                             f' · {html.escape(group)}: {value:.3f}</title></rect>'
                             f'<text x="{x + (bar - 2) / 2}" y="{top + plot - h - 3:.1f}" '
                             f'text-anchor="middle" class="v">{value:.2f}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{total_width}" '
            f'height="{height}" viewBox="0 0 {total_width} {height}">'
            f'<text x="10" y="18" class="t">{html.escape(title)}</text>{legend}{axis}'
            f'{"".join(parts)}</svg>')


def _text_width(text: str) -> float:
    """Rough width in pixels at 11px: Hangul is about twice as wide as Latin."""
    return sum(11.0 if ord(c) > 0x1100 else 6.5 for c in text)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = """body{font-family:system-ui,'Noto Sans KR',sans-serif;margin:2rem;max-width:1100px;
color:#222}table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ddd;
padding:.25rem .6rem;text-align:left;font-size:.9rem}th{background:#f5f5f5}svg{display:block;
margin:1rem 0}svg text{font-size:11px;fill:#333}svg text.t{font-size:14px;font-weight:600}
svg text.v{font-size:9px;fill:#555}svg .grid{stroke:#e5e5e5}.fail{color:#b00020;font-weight:600}
.ok{color:#1b7f3b;font-weight:600}code{background:#f3f3f3;padding:0 .2rem}"""


def html_report(report: EvalReport, gate: dict[str, Any] | None = None) -> str:
    """The whole report as one HTML page with inline SVG charts."""
    m, r = report.meta, report.retrieval
    systems = list(r)
    parts = [f"<h1>Evaluation: {html.escape(report.name)}</h1>",
             f"<p>{m['items']} items ({m['answerable']} answerable, {m['negatives']} not "
             f"covered) · k = {m['k']} · {m['runtime_s']:.1f} s · {html.escape(m['created_at'])}"
             "</p>"]
    if gate is not None:
        verdict = ('<span class="ok">PASSED</span>' if gate["passed"]
                   else '<span class="fail">FAILED</span>')
        parts += [f"<h2>Gate: {verdict}</h2>", _html_table(
            ["threshold", "actual", "required", "ok"],
            [[t["metric"], t["actual"], t["required"], "yes" if t["ok"] else "NO"]
             for t in gate["thresholds"]])]
    parts += ["<h2>Retrieval: system comparison</h2>", bar_chart(
        "Answerable items, mean per metric", [_LABELS[x] for x in RETRIEVAL_METRICS],
        {s: [r[s]["overall"][x] for x in RETRIEVAL_METRICS] for s in systems}),
        _html_table(["system", *(_LABELS[x] for x in RETRIEVAL_METRICS)],
                    [[s, *(r[s]["overall"][x] for x in RETRIEVAL_METRICS)] for s in systems])]
    categories = list(r["hybrid"]["by_category"]) if "hybrid" in r else []
    if len(categories) > 1:
        labels = [f"{c} ({r['hybrid']['by_category'][c]['n']})" for c in categories]
        parts += ["<h2>Retrieval by category</h2>", bar_chart(
            "MRR by category and system", labels,
            {s: [r[s]["by_category"][c]["mrr"] for c in categories] for s in systems},
            horizontal=True), bar_chart(
            "Hybrid by category", labels,
            {_LABELS[x]: [r["hybrid"]["by_category"][c][x] for c in categories]
             for x in ("hit@1", "hit@5", "mrr")}, horizontal=True),
            _html_table(["category", "n", *(_LABELS[x] for x in RETRIEVAL_METRICS)],
                        [[c, v["n"], *(v[x] for x in RETRIEVAL_METRICS)]
                         for c, v in r["hybrid"]["by_category"].items()])]
    if report.no_answer:
        n = report.no_answer
        parts += ["<h2>No answer (hybrid <code>grounded</code>)</h2>",
                  _html_table(["precision", "recall", "refused", "answered negatives",
                               "refused answerable"],
                              [[n["precision"], n["recall"], n["tp"],
                                ", ".join(n["answered_negatives"]) or "none",
                                ", ".join(n["refused_answerable"]) or "none"]])]
    if report.kb_questions:
        k = report.kb_questions
        parts.append(f"<p>KB anticipated questions that find their own article first: "
                     f"{_f(k['own_article_first'])} of {k['checked']} "
                     "(<code>suggester routes</code> lists the others)</p>")
    parts += ["<h2>Suggestion checks</h2>", _suggestions_html(report.suggestions)]
    if report.ragas:
        measured = {k: v["value"] for k, v in report.ragas.items() if "value" in v}
        if measured:
            parts.append(bar_chart("ragas on the hybrid system", list(measured),
                                   {"score": list(measured.values())}, horizontal=True))
        parts.append(_html_table(["metric", "value", "n"], [
            [k, v.get("value", v.get("skipped")), v.get("n")] for k, v in report.ragas.items()]))
    if report.llm:
        parts += ["<h2>LLM drafting (validator)</h2>",
                  _html_table(["figure", "value"], llm_rows(report.llm))]
    parts += ["<h2>Items to look at</h2>", _problem_items(report)]
    timings = ", ".join(f"{k.removesuffix('_s')} {v:.1f} s" for k, v in m["timings_s"].items())
    parts.append(f"<p>Time: {html.escape(timings)}. Per-item scores: "
                 "<code>items.jsonl</code>; figures: <code>summary.json</code>.</p>")
    return ("<!doctype html><html lang=\"ko\"><head><meta charset=\"utf-8\">"
            f"<title>Suggester evaluation: {html.escape(report.name)}</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>\n")


def _suggestions_html(s: dict[str, Any]) -> str:
    if "skipped" in s:
        return f"<p>{html.escape(str(s['skipped']))}</p>"
    flags = s["flags"]["overall"]
    chart = bar_chart("Suggestion checks", ["type", "type F1", "audience", "urgency",
                                            "flag P", "flag R", "must_include"],
                      {"score": [s["type_accuracy"], s["type_macro_f1"],
                                 s["audience_accuracy"], s["urgency_accuracy"],
                                 flags["precision"], flags["recall"],
                                 s["must_include_coverage"]]}, horizontal=True)
    table = "\n".join(_suggestion_lines(s))
    return chart + f"<pre>{html.escape(table)}</pre>"


def _problem_items(report: EvalReport) -> str:
    rows = []
    for item in report.items:
        problems = []
        hybrid = item["retrieval"].get("hybrid", {})
        if item["answerable"] and hybrid.get("hit@5") == 0:
            problems.append("relevant article not in hybrid top 5")
        grounded = item.get("hybrid", {}).get("grounded")
        if grounded is not None and grounded != item["answerable"]:
            problems.append("refused an answerable inquiry" if item["answerable"]
                            else "answered an uncovered inquiry")
        s = item.get("suggestion") or {}
        if s.get("must_include_missing") and item["answerable"]:
            problems.append("missing " + ", ".join(s["must_include_missing"]))
        if s.get("must_not_include_found"):
            problems.append("contains " + ", ".join(s["must_not_include_found"]))
        if s.get("leaks"):
            problems.append("LEAKS internal text: " + " / ".join(s["leaks"])[:200])
        if s and item["answerable"] and not s.get("type_correct"):
            problems.append("type " + ", ".join(s.get("predicted_types") or ["none"]))
        if problems:
            rows.append([item["id"], item.get("inquiry", "")[:80], ", ".join(item["relevant"]),
                         ", ".join(hybrid.get("top", [])[:3]), "; ".join(problems)])
    if not rows:
        return "<p>None.</p>"
    return _html_table(["id", "inquiry", "relevant", "hybrid top 3", "problems"], rows)
