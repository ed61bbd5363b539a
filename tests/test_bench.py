"""`suggester bench`: the synthetic-KB figures, cold or from the vector cache."""

from __future__ import annotations

from suggester.evaluation import bench
from suggester.evaluation.bench import BenchReport, bench_synthetic

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
