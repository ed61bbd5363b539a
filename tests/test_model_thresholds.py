"""Each dense model is gated by its own floors when it has them (`make eval-gemma`)."""

from __future__ import annotations

from pathlib import Path

from suggester.evaluation.gate import (
    THRESHOLDS_PATH,
    load_targets,
    load_thresholds,
    thresholds_path,
)

from conftest import ROOT

# The EmbeddingGemma targets (issue 19), served ranking and refusals on test.
GEMMA_TARGETS = {"retrieval.served.hit@1": 0.85, "retrieval.served.hit@5": 0.98,
                 "retrieval.served.mrr": 0.90, "no_answer.precision": 0.85,
                 "no_answer.recall": 0.85, "suggestions.flag_recall": 0.85,
                 "suggestions.flag_precision": 0.85}


def test_a_model_with_its_own_file_is_gated_by_it_and_the_others_by_e5s(tmp_path: Path):
    default = tmp_path / "thresholds.toml"
    default.write_text("[min]\n\"retrieval.hybrid.mrr\" = 0.8\n", encoding="utf-8")
    own = tmp_path / "thresholds-embeddinggemma.toml"
    own.write_text("[min]\n\"retrieval.hybrid.mrr\" = 0.85\n", encoding="utf-8")
    assert thresholds_path("embeddinggemma", default) == own
    # No file of its own, a path or an endpoint: e5-small's floors.
    for model in ("e5-small", "openai:bge-m3", str(own.parent), "../thresholds"):
        assert thresholds_path(model, default) == default
    own.unlink()
    assert thresholds_path("embeddinggemma", default) == default


def test_gemma_file_floors_every_figure_e5s_gate_floors_and_states_its_targets():
    path = thresholds_path("embeddinggemma", ROOT / THRESHOLDS_PATH)
    assert path.name == "thresholds-embeddinggemma.toml"
    gemma = {(t.metric, t.bound) for t in load_thresholds(path)}
    e5 = {(t.metric, t.bound) for t in load_thresholds(ROOT / THRESHOLDS_PATH)}
    assert gemma >= e5
    assert {t.metric: t.value for t in load_targets(path)} == GEMMA_TARGETS
    floors = {(t.metric, t.bound): t.value for t in load_thresholds(path)}
    assert floors[("suggestions.internal_leaks", "max")] == 0  # never negotiable
