"""Retrieval metrics over ranked article ids (pure functions, one score per item)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def hit_at(ranked: Sequence[str], relevant: Sequence[str], k: int) -> float:
    return float(any(a in relevant for a in ranked[:k]))


def recall_at(ranked: Sequence[str], relevant: Sequence[str], k: int) -> float:
    if not relevant:
        return 0.0
    return len(set(ranked[:k]) & set(relevant)) / len(set(relevant))


def reciprocal_rank(ranked: Sequence[str], relevant: Sequence[str]) -> float:
    for rank, article in enumerate(ranked, start=1):
        if article in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at(ranked: Sequence[str], relevant: Sequence[str], k: int) -> float:
    """Binary-relevance nDCG; the first relevant id counts as most relevant (gain 2)."""
    gains = {a: (2.0 if i == 0 else 1.0) for i, a in enumerate(relevant)}
    dcg = sum(gains.get(a, 0.0) / math.log2(r + 1) for r, a in enumerate(ranked[:k], start=1))
    ideal = sorted(gains.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(r + 1) for r, g in enumerate(ideal, start=1))
    return dcg / idcg if idcg else 0.0


def retrieval_scores(ranked: Sequence[str], relevant: Sequence[str]) -> dict[str, float]:
    return {
        "hit@1": hit_at(ranked, relevant, 1),
        "hit@5": hit_at(ranked, relevant, 5),
        "recall@5": recall_at(ranked, relevant, 5),
        "mrr": reciprocal_rank(ranked, relevant),
        "ndcg@5": ndcg_at(ranked, relevant, 5),
    }


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
