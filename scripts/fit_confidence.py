"""Refit the retriever's confidence on the dev golden split (never on test).

    SUGGESTER_CACHE_DIR=.cache/tests .venv/bin/python scripts/fit_confidence.py [SIGNAL ...]

Runs every dev inquiry through the service as served, reads the confidence signals the
retriever computed (`RetrievalResult.signals`), and fits a logistic regression of "the KB
answers this" on them: standardised signals, balanced classes, an L2 strength chosen by
10-fold cross-validation (three fold draws). The served decision also grounds an inquiry whose
first article handles a raised risk flag and holds one that asks for a service the KB says we do
not offer; the cut is placed where that decision's no-answer precision and recall balance out of
fold, and the bias is moved so the cut is 0.5. It prints the cross-validated figures and the
weights, to be written into `CONFIDENCE_WEIGHTS` / `CONFIDENCE_BIAS` (e5) or the model's
`ConfidenceFit` (suggester/search/models.py). SIGNAL names limit the fit to those signals.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np

from suggester.evaluation.golden import load_golden
from suggester.service import Suggester
from suggester.settings import load_settings

STRENGTHS = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
FOLDS = 10
DRAWS = 3
NEWTON_STEPS = 50


@dataclass
class Sample:
    signals: dict[str, float]
    answerable: bool
    flag_grounds: bool  # the first article handles a raised risk flag
    declined: bool  # asks for a service the KB says we do not offer


def samples() -> list[Sample]:
    service = Suggester(load_settings())
    analyzer = service.analyzer
    out = []
    for item in load_golden("dev"):
        analysis, retrieval = service.rank(item.inquiry)
        first = retrieval.passages[0].article_id if retrieval.passages else ""
        out.append(Sample(signals=dict(retrieval.signals), answerable=item.grounded,
                          flag_grounds=first in analyzer.flagged_articles(analysis.flags),
                          declined=retrieval.reason.startswith("asks about a service")))
    return out


def fit(x: np.ndarray, y: np.ndarray, strength: float) -> np.ndarray:
    """Weights (bias last) of an L2-regularised logistic regression, classes balanced."""
    design = np.hstack([x, np.ones((len(x), 1))])
    balance = np.where(y == 1, len(y) / (2 * y.sum()), len(y) / (2 * (len(y) - y.sum())))
    penalty = strength * np.diag([1.0] * x.shape[1] + [0.0])
    w = np.zeros(design.shape[1])
    for _ in range(NEWTON_STEPS):
        p = 1 / (1 + np.exp(-design @ w))
        gradient = design.T @ (balance * (p - y)) + penalty @ w
        hessian = (design * (balance * p * (1 - p))[:, None]).T @ design + penalty
        w -= np.linalg.solve(hessian, gradient)
    return w


def out_of_fold(x: np.ndarray, y: np.ndarray, strength: float, draw: int) -> np.ndarray:
    fold = np.empty(len(y), dtype=int)
    fold[np.random.default_rng(draw).permutation(len(y))] = np.arange(len(y)) % FOLDS
    scores = np.empty(len(y))
    for f in range(FOLDS):
        train, held = fold != f, fold == f
        mean, spread = x[train].mean(axis=0), x[train].std(axis=0) + 1e-9
        w = fit((x[train] - mean) / spread, y[train], strength)
        scores[held] = 1 / (1 + np.exp(-(((x[held] - mean) / spread) @ w[:-1] + w[-1])))
    return scores


def decision_figures(scores: np.ndarray, cut: float,
                     data: list[Sample]) -> tuple[float, float, int]:
    """No-answer precision and recall of the served decision, and answerable inquiries held."""
    held = np.array([(s < cut and not d.flag_grounds) or d.declined
                     for s, d in zip(scores, data, strict=True)])
    unanswerable = np.array([not d.answerable for d in data])
    caught = int((held & unanswerable).sum())
    return (caught / max(int(held.sum()), 1), caught / int(unanswerable.sum()),
            int((held & ~unanswerable).sum()))


def balanced_cut(scores: np.ndarray, data: list[Sample]) -> float:
    """The cut where precision and recall are closest (the higher F1 among ties)."""
    def key(cut: float) -> tuple[float, float]:
        precision, recall, _ = decision_figures(scores, cut, data)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return (round(abs(precision - recall), 3), -f1)
    return min(np.linspace(0.02, 0.98, 97), key=key)


def main(names: list[str]) -> None:
    data = samples()
    names = names or sorted(data[0].signals)
    x = np.array([[d.signals[n] for n in names] for d in data])
    y = np.array([d.answerable for d in data], dtype=float)
    print(f"dev: {int(y.sum())} answerable, {int(len(y) - y.sum())} not; signals {names}")
    results = {}
    for strength in STRENGTHS:
        figures = []
        for draw in range(DRAWS):
            scores = out_of_fold(x, y, strength, draw)
            cut = balanced_cut(scores, data)
            figures.append((cut, *decision_figures(scores, cut, data)))
        results[strength] = np.mean(figures, axis=0)
        cut, precision, recall, held = results[strength]
        print(f"L2 {strength:<5}: out of fold, cut {cut:.2f}: no-answer precision "
              f"{precision:.3f} recall {recall:.3f}, answerable held {held:.1f}")
    strength = max(results, key=lambda s: (2 * results[s][1] * results[s][2]
                                          / (results[s][1] + results[s][2]), -s))
    cut = results[strength][0]
    mean, spread = x.mean(axis=0), x.std(axis=0) + 1e-9
    w = fit((x - mean) / spread, y, strength)
    raw = w[:-1] / spread
    bias = w[-1] - float((w[:-1] * mean / spread).sum()) - math.log(cut / (1 - cut))
    print(f"chosen L2 {strength}, cut {cut:.2f} moved to 0.5:")
    print("weights = {" + ", ".join(f'"{n}": {v:.4g}' for n, v in zip(names, raw, strict=True))
          + "}")
    print(f"bias = {bias:.4g}")


if __name__ == "__main__":
    main(sys.argv[1:])
