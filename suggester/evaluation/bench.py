"""`suggester bench`: speed and memory on this machine, against baselines from the same run.

Figures: retrieval latency on the shipped KB and on a synthetic KB of ~1,000 articles made by
recombining the shipped ones, full and incremental index times, and peak RSS. Quality figures
come from the evaluation runner, so the bench and CI measure the same thing. By default both
embedding engines are measured and compared with ratios; each engine's two stages (the shipped
KB with the golden evaluation, and the synthetic KB) run in child processes of their own.
"""

from __future__ import annotations

import random
import re
import resource
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from suggester.knowledge.articles import discover
from suggester.search.embedding import shared_embedder
from suggester.search.index import Indexer
from suggester.search.retrieve import Retriever
from suggester.settings import Settings, load_settings

BENCH_CACHE = Path(".cache/bench")
_TOP_SECTION = re.compile(r"^## ", re.MULTILINE)


@dataclass(kw_only=True)
class BenchReport:
    lines: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)

    def add(self, key: str, value: float, text: str) -> None:
        self.figures[key] = value
        self.lines.append(text)

    def memory(self, stage: str) -> None:
        """Note the RSS now and the peak so far: where the peak RSS goes, stage by stage."""
        now, peak = rss_mib(), peak_rss_mib()
        self.figures[f"rss.{stage}_mib"] = now
        self.lines.append(f"[memory] after {stage.replace('_', ' ')}: RSS {now:.0f} MiB "
                          f"(peak so far {peak:.0f} MiB)")


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    """This process's resident memory now (Linux; the peak where /proc is missing)."""
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return peak_rss_mib()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else peak_rss_mib()


def time_queries(search: Callable[[str], object], queries: Sequence[str]) -> list[float]:
    """Milliseconds for each query, after one warm-up call."""
    search(queries[0])
    timings = []
    for query in queries:
        start = time.perf_counter()
        search(query)
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def latency_line(label: str, timings: list[float], baseline: list[float] | None = None) -> str:
    p50, p95 = percentile(timings, 0.5), percentile(timings, 0.95)
    text = f"{label:<34} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms"
    if baseline:
        text += f"   ({p95 / percentile(baseline, 0.95):.2f}x the baseline p95)"
    return text


def split_sections(source: str) -> tuple[str, list[str]]:
    """Front matter + preamble, and each `## ` section with its sub-sections, as text."""
    starts = [m.start() for m in _TOP_SECTION.finditer(source)]
    if not starts:
        return source, []
    head = source[: starts[0]]
    bounds = [*starts, len(source)]
    return head, [source[bounds[i]:bounds[i + 1]] for i in range(len(starts))]


def make_synthetic_kb(source_kb: Path, target: Path, count: int, seed: int = 7) -> list[Path]:
    """`count` articles, each one shipped article's front matter and sections interleaved with
    another's, so texts are realistic but (with the new titles) not copies of the shipped ones.
    """
    rng = random.Random(seed)
    sources = [(p, p.read_text(encoding="utf-8")) for p in discover(source_kb)]
    written = []
    for number in range(count):
        path, text = sources[number % len(sources)]
        _, donor = sources[rng.randrange(len(sources))]
        head, sections = split_sections(text)
        _, donor_sections = split_sections(donor)
        by_title = {s.split("\n", 1)[0]: s for s in donor_sections}
        mixed = [by_title.get(s.split("\n", 1)[0], s) if rng.random() < 0.5 else s
                 for s in sections]
        new_id = f"syn-{number:04d}-{path.stem}"
        head = re.sub(r"^id: .*$", f"id: {new_id}", head, count=1, flags=re.MULTILINE)
        head = re.sub(r"^title: (.*)$", rf"title: \1 (사례 {number})", head, count=1,
                      flags=re.MULTILINE)
        head = re.sub(r"^related: .*$", "related: []", head, flags=re.MULTILINE)
        head = re.sub(r"^supersedes: .*\n", "", head, flags=re.MULTILINE)
        out = target / path.parent.name / f"{new_id}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(head + "".join(mixed), encoding="utf-8")
        written.append(out)
    return written


def bench_retrieval(retriever: Retriever, queries: Sequence[str], report: BenchReport,
                    scope: str) -> None:
    timings = {}
    for system in ("bm25-kiwi", "dense", "hybrid"):
        timings[system] = time_queries(lambda q, s=system: retriever.search(q, system=s),
                                       queries)
    vector = retriever.embedder.query_vector
    embed_only = time_queries(vector, queries)
    report.figures[f"{scope}.embed_query.p50_ms"] = percentile(embed_only, 0.5)
    report.figures[f"{scope}.embed_query.p95_ms"] = percentile(embed_only, 0.95)
    report.lines.append(f"[{scope}] retrieval latency over {len(queries)} queries "
                        "(baseline: embedding the query alone)")
    report.lines.append("  " + latency_line("embed query (baseline)", embed_only))
    for system, values in timings.items():
        report.lines.append("  " + latency_line(system, values, embed_only))
        report.figures[f"{scope}.{system}.p50_ms"] = percentile(values, 0.5)
        report.figures[f"{scope}.{system}.p95_ms"] = percentile(values, 0.95)


def bench_quality(settings: Settings, report: BenchReport) -> None:
    """The four retrieval systems side by side on the golden test split (the eval runner's)."""
    from suggester.evaluation.runner import run_eval

    evaluation = run_eval(settings, "test", suggestions=False, corrections=False, ragas=False,
                          progress=False)
    report.lines.append("[golden test split] retrieval quality (answerable items)")
    report.lines.append(f"  {'system':<18} hit@1  hit@5  MRR    nDCG@5")
    baseline = evaluation.retrieval["bm25-whitespace"]["overall"]["mrr"]
    for system in evaluation.systems:
        overall = evaluation.retrieval[system]["overall"]
        report.lines.append(
            f"  {system:<18} {overall['hit@1']:.3f}  {overall['hit@5']:.3f}  "
            f"{overall['mrr']:.3f}  {overall['ndcg@5']:.3f}   "
            f"(MRR {overall['mrr'] / baseline:.2f}x the whitespace baseline)")
        report.figures[f"quality.{system}.mrr"] = overall["mrr"]


def bench_suggest(settings: Settings, queries: Sequence[str], report: BenchReport,
                  scope: str, baseline: list[float] | None = None) -> list[float]:
    """Latency of a whole suggestion (analysis, retrieval, draft, follow-ups), not logged."""
    from suggester.service import Suggester

    suggester = Suggester(settings)
    suggester.warm_up()  # as `suggester serve` and the WSGI app do before the first request
    timings = time_queries(lambda q: suggester.suggest(q, log=False), queries)
    report.lines.append("  " + latency_line("suggest (whole pipeline)", timings, baseline))
    report.figures[f"{scope}.suggest.p50_ms"] = percentile(timings, 0.5)
    report.figures[f"{scope}.suggest.p95_ms"] = percentile(timings, 0.95)
    return timings


IMPACT_INQUIRIES = 300
IMPACT_BUDGET_S = 20.0


def bench_impact(settings: Settings, queries: Sequence[str], report: BenchReport) -> None:
    """Seconds for an impact preview (영향 미리보기) of a fee change over 300 inquiries: the
    golden set, padded with the bench queries as logged inquiries would be."""
    from suggester.evaluation.impact import Inquiry, gather_inquiries, preview_impact
    from suggester.knowledge.articles import find_article_path

    path = find_article_path(settings.kb_dir, "selling-fees")
    if path is None:
        return
    inquiries = gather_inquiries(settings, None)[:IMPACT_INQUIRIES]
    padding = [Inquiry(text=q, audience=None, source="logged") for q in queries]
    while padding and len(inquiries) < IMPACT_INQUIRIES:
        inquiries += padding[:IMPACT_INQUIRIES - len(inquiries)]
    impact = preview_impact(settings, path.read_text(encoding="utf-8").replace("5%", "7%"),
                            inquiries=inquiries)
    report.add("impact.preview_s", impact.seconds,
               f"impact preview (selling-fees 5% → 7%) of {impact.inquiries} inquiries: "
               f"{impact.seconds:.1f} s (budget {IMPACT_BUDGET_S:.0f} s), "
               f"{len(impact.changes)} change")


def bench_synthetic(settings: Settings, queries: Sequence[str], report: BenchReport,
                    articles: int, progress: bool, cold: bool = False) -> None:
    """Index a synthetic KB and time it; `cold` starts from an empty vector cache, otherwise
    the vectors of earlier runs (BENCH_CACHE) are reused and only the first run is cold."""
    work = Path(tempfile.mkdtemp(prefix="suggester-bench-"))
    try:
        kb = work / "kb"
        paths = make_synthetic_kb(settings.kb_dir, kb, articles)
        synthetic = load_settings({"data_dir": work / "data", "kb_dir": kb,
                                   "embedder": settings.embedder,
                                   "embed_model": settings.embed_model,
                                   "models_dir": settings.models_dir,
                                   "cache_dir": work / "cache" if cold else BENCH_CACHE},
                                  environ={})
        # One indexer throughout, as the publisher keeps one: it remembers what it has read.
        indexer = Indexer(synthetic)
        start = time.perf_counter()
        full = indexer.sync(progress=progress)
        full_seconds = time.perf_counter() - start
        report.memory("synthetic_index")
        chunks = full.added
        dense = chunks - full.internal  # internal-only chunks are never embedded
        report.add("synthetic.full_index_s", full_seconds,
                   f"[synthetic] full index of {articles} articles / {chunks} chunks: "
                   f"{full_seconds:.1f} s ({full.embedded} embedded now, "
                   f"{dense - full.embedded} from the vector cache, {full.internal} "
                   "internal-only not embedded)")
        if full.embedded:
            rate = full.embedded / full_seconds
            report.add("synthetic.embed_per_s", rate,
                       f"[synthetic] embedding throughput {rate:.1f} chunks/s → a cold index "
                       f"of {chunks} chunks ({dense} embedded) takes ≈ "
                       f"{dense / rate / 60:.1f} min")
        edited = paths[len(paths) // 2]
        text = edited.read_text(encoding="utf-8")
        edited.write_text(text.replace("## 요약\n", f"## 요약\n편집 {time.time_ns()}.\n", 1),
                          encoding="utf-8")
        indexer.tokenizer("워밍업")  # a serving process has Kiwi loaded; only the sync is timed
        start = time.perf_counter()
        one = indexer.sync(only=[edited])
        incremental = time.perf_counter() - start
        report.add("synthetic.incremental_s", incremental,
                   f"[synthetic] re-index after editing one article: {incremental * 1000:.0f} ms "
                   f"({one.updated} chunks updated, {one.embedded} embedded; "
                   f"{incremental / full_seconds:.4f}x the full index)")
        report.memory("synthetic_reindex")
        bench_retrieval(Retriever(synthetic), queries, report, "synthetic")
        report.memory("synthetic_retrieval")
        bench_suggest(synthetic, queries, report, "synthetic")
        report.memory("synthetic_suggest")
    finally:
        shutil.rmtree(work, ignore_errors=True)


# A stage is one process: the peak RSS of the synthetic KB's is that of a server of 1,000
# articles, not of one that also holds the golden evaluation and the shipped KB's Suggester
# (~1 GiB between them, kept by caches after they return).
STAGES = ("shipped", "synthetic")


def run_bench(settings: Settings, queries: Sequence[str], *, stage: str, articles: int = 1000,
              progress: bool = True, cold: bool = False) -> BenchReport:
    """One stage of the bench in this process: the shipped KB's figures or the synthetic's."""
    report = BenchReport()
    report.lines.append(f"[engine] {settings.embedder}; dense model {settings.embed_model}; "
                        f"stage: {stage}")
    report.memory("start")
    shared_embedder(settings).query_vector("워밍업")
    report.memory("engine_load")
    if stage == "shipped":
        bench_shipped(settings, queries, report, progress)
    else:
        bench_synthetic(settings, queries, report, articles, progress, cold)
    peak = peak_rss_mib()
    report.add(f"peak_rss.{stage}_mib", peak, f"peak RSS of the {stage} stage's process: "
                                              f"{peak:.0f} MiB")
    return report


def bench_shipped(settings: Settings, queries: Sequence[str], report: BenchReport,
                  progress: bool) -> None:
    Indexer(settings).sync(progress=progress)
    report.memory("shipped_index")
    bench_quality(settings, report)
    report.memory("quality_eval")
    bench_retrieval(Retriever(settings), queries, report, "shipped")
    report.memory("shipped_retrieval")
    bench_suggest(settings, queries, report, "shipped")
    report.memory("shipped_suggest")
    bench_impact(settings, queries, report)
    report.memory("impact_preview")


# (figure key, label, unit) of the engine comparison; `suggester bench` prints them side by side.
COMPARED = (
    ("synthetic.full_index_s", "full index of the synthetic KB", "s"),
    ("synthetic.embed_per_s", "passages embedded per second", "/s"),
    ("shipped.embed_query.p50_ms", "query embedding p50", "ms"),
    ("shipped.embed_query.p95_ms", "query embedding p95", "ms"),
    ("synthetic.suggest.p95_ms", "whole suggestion p95 (synthetic KB)", "ms"),
    ("peak_rss.synthetic_mib", "peak RSS, synthetic KB process", "MiB"),
    ("peak_rss.shipped_mib", "peak RSS, shipped KB + golden eval", "MiB"),
    ("quality.hybrid.mrr", "hybrid MRR, golden test split", ""),
)


def compare_engines(settings: Settings, engines: Sequence[str], *, articles: int, cold: bool,
                    progress: bool) -> list[str]:
    """Bench each engine, each stage in a process of its own (so its peak RSS is its own),
    then compare the engines side by side."""
    reports = {engine: BenchReport() for engine in engines}
    for engine in engines:
        for stage in STAGES:
            child = _bench_in_child(settings, engine, stage, articles, cold, progress)
            reports[engine].lines += [*child.lines, ""]
            reports[engine].figures.update(child.figures)
    lines = [line for report in reports.values() for line in report.lines]
    ratio_title = f"   {engines[0]}/{engines[-1]}" if len(engines) > 1 else ""
    lines.append(f"{'figure':<38}" + "".join(f"{e:>12}" for e in engines) + ratio_title)
    for key, label, unit in COMPARED:
        values = [reports[e].figures.get(key) for e in engines]
        ratio = f"   {values[0] / values[-1]:.2f}x" \
            if len(engines) > 1 and values[0] and values[-1] else ""
        lines.append(f"{label:<38}" + "".join(_cell(v, unit) for v in values) + ratio)
    return lines


def _cell(value: float | None, unit: str) -> str:
    if value is None:
        return f"{'—':>12}"
    return f"{value:>12.3f}" if not unit else f"{value:>8.1f} {unit:<3}"


def _bench_in_child(settings: Settings, engine: str, stage: str, articles: int, cold: bool,
                    progress: bool) -> BenchReport:
    """`suggester bench --engine E --stage S` in a child process; its own index, the shared
    cache."""
    import json
    import os
    import subprocess
    import sys

    work = Path(tempfile.mkdtemp(prefix=f"suggester-bench-{engine}-"))
    try:
        out = work / "report.json"
        environ = {**os.environ,
                   "SUGGESTER_EMBEDDER": engine, "SUGGESTER_KB_DIR": str(settings.kb_dir),
                   # A data dir per engine: an index holds one engine's vectors.
                   "SUGGESTER_DATA_DIR": str(work / "data"),
                   "SUGGESTER_CACHE_DIR": str(settings.cache_path.parent)}
        command = [sys.executable, "-m", "suggester.cli", "bench", "--engine", engine,
                   "--stage", stage, "--articles", str(articles), "--json", str(out)]
        command += ["--cold"] if cold else []
        command += [] if progress else ["--quiet"]
        subprocess.run(command, env=environ, check=True)
        data = json.loads(out.read_text(encoding="utf-8"))
        return BenchReport(lines=data["lines"], figures=data["figures"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
