"""Suggestion checks: score one suggestion against its golden item, then sum up a split.

Written against the service's contract (`Suggestion.analysis`, `.draft`, `.passages`,
`.internal_notes`), read by attribute only, so the checks run on hand-made objects too.
`check_item` returns a plain dict that goes into `items.jsonl`; `summarise` turns a list of
them into the figures of `summary.json` and the gate.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from statistics import median
from typing import Any

from suggester.evaluation.golden import FLAGS, GoldenItem
from suggester.evaluation.metrics import mean
from suggester.reply.draft_check import normalise  # the form leak checks compare text in

MIN_LEAK_CHARS = 12
# An answer-first draft states the facts asked for within its first lines: what an agent (and
# a customer on a phone screen) reads before scrolling.
ANSWER_FIRST_CHARS = 200
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+", re.MULTILINE)
# Sentence and clause ends: a memo line leaks as a whole sentence or as one of its clauses.
_SENTENCE_END = re.compile(r"(?<=[.!?。])\s+|\n+|(?<=[.!?。])(?=[^\d\s])")
_CLAUSE_END = re.compile(r",(?!\d)\s*|[;:·]\s*|\s+-\s+|\s*→\s*")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


def sentences(text: str) -> list[str]:
    """Split Korean prose into sentences (and list items); blank pieces are dropped."""
    pieces = []
    for line in text.split("\n"):
        line = _BULLET.sub("", line).strip()
        pieces += [p.strip() for p in _SENTENCE_END.split(line) if p and p.strip()]
    return pieces


class LeakDetector:
    """Find internal-memo text in a draft.

    Every sentence and clause of every internal chunk, normalised, of at least
    MIN_LEAK_CHARS characters, is a fingerprint; a draft leaks when its normalised text
    contains one. Fingerprints that also occur in customer-facing text are dropped: saying
    what an article says publicly is not a leak.
    """

    def __init__(self, internal_texts: Iterable[str], public_texts: Iterable[str] = (),
                 min_chars: int = MIN_LEAK_CHARS) -> None:
        public = "\n".join(normalise(t) for t in public_texts)
        found: dict[str, str] = {}
        for text in internal_texts:
            for sentence in sentences(text):
                for piece in [sentence, *_CLAUSE_END.split(sentence)]:
                    key = normalise(piece)
                    if len(key) >= min_chars and key not in public:
                        found.setdefault(key, piece.strip())
        self._fingerprints = found

    def __len__(self) -> int:
        return len(self._fingerprints)

    def leaks(self, draft_text: str) -> list[str]:
        """The internal sentences (as written in the KB) that appear in `draft_text`."""
        text = normalise(draft_text)
        return [original for key, original in self._fingerprints.items() if key in text]


def check_item(item: GoldenItem, suggestion: Any, leaks: LeakDetector) -> dict[str, Any]:
    """Everything the checks need from one suggestion, as a JSON-able record."""
    analysis, draft = suggestion.analysis, suggestion.draft
    text = draft.text or ""
    types = [t.category for t in analysis.inquiry_types]
    return {
        "predicted_types": types,
        "type_correct": bool(types) and types[0] in item.expected_types,
        "audience": analysis.audience,
        "audience_correct": analysis.audience == item.audience,
        "urgency": analysis.urgency,
        "urgency_correct": analysis.urgency == item.urgency,
        "flags": sorted({f.name for f in analysis.risk_flags}),
        "draft_grounded": bool(draft.grounded),
        "draft_text": text,
        "citations": [{"article_id": c.article_id, "section": c.section,
                       "chunk_id": c.chunk_id} for c in draft.citations],
        "channel": item.channel,
        "draft_chars": len(text),
        "bullets": bool(_LIST_ITEM.search(text)),
        **included_facts(item, text),
        "must_include_missing": [s for s in item.must_include if s not in text],
        "must_not_include_found": [s for s in item.must_not_include if s in text],
        "leaks": leaks.leaks(text),
    }


def included_facts(item: GoldenItem, text: str) -> dict[str, list[str]]:
    """The item's must_include facts a draft states, and those within its first
    ANSWER_FIRST_CHARS: of the served draft, and of the one written from the item's golden
    first article (what the composer achieves when the ranking is right)."""
    return {"must_include_found": [s for s in item.must_include if s in text],
            "must_include_first": [s for s in item.must_include
                                   if s in text[:ANSWER_FIRST_CHARS]]}


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def precision_recall(predicted: Sequence[bool], actual: Sequence[bool]) -> dict[str, Any]:
    """Precision, recall and F1 of a yes/no prediction, with the counts behind them."""
    tp = sum(p and a for p, a in zip(predicted, actual, strict=True))
    fp = sum(p and not a for p, a in zip(predicted, actual, strict=True))
    fn = sum(a and not p for p, a in zip(predicted, actual, strict=True))
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = (2 * precision * recall / (precision + recall)
          if precision is not None and recall is not None and precision + recall else None)
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn,
            "n": len(actual)}


def macro_f1(predicted: Sequence[Sequence[str]], expected: Sequence[Sequence[str]]) -> float:
    """Mean per-category F1 over the categories the golden items use (multi-label sets)."""
    labels = sorted({c for cats in expected for c in cats})
    scores = []
    for label in labels:
        tp = sum(label in p and label in e for p, e in zip(predicted, expected, strict=True))
        fp = sum(label in p and label not in e for p, e in zip(predicted, expected, strict=True))
        fn = sum(label in e and label not in p for p, e in zip(predicted, expected, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return mean(scores)


def type_accuracy(items: Sequence[GoldenItem], records: Sequence[dict[str, Any]]) -> dict:
    """Top-1 type accuracy and macro-F1 over grounded items."""
    pairs = [(i, r) for i, r in zip(items, records, strict=True) if i.grounded]
    return {
        "accuracy": mean([float(r["type_correct"]) for _, r in pairs]),
        "macro_f1": macro_f1([r["predicted_types"] for _, r in pairs],
                             [i.expected_types for i, _ in pairs]),
        "n": len(pairs),
    }


def summarise(items: Sequence[GoldenItem], records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The suggestion figures of a split (records come from `check_item`, in item order)."""
    grounded = [(i, r) for i, r in zip(items, records, strict=True) if i.grounded]
    with_audience = [(i, r) for i, r in zip(items, records, strict=True)
                     if i.audience != "unknown"]
    types = type_accuracy(items, records)
    include_total = sum(len(i.must_include) for i, _ in grounded)
    include_found = sum(len(r["must_include_found"]) for _, r in grounded)
    violations = [(i.id, s) for i, r in zip(items, records, strict=True)
                  for s in r["must_not_include_found"]]
    leaked = [i.id for i, r in zip(items, records, strict=True) if r["leaks"]]
    no_answer = precision_recall([not r["draft_grounded"] for r in records],
                                 [not i.grounded for i in items])
    return {
        "n": len(items),
        "type_accuracy": types["accuracy"],
        "type_macro_f1": types["macro_f1"],
        "type_n": types["n"],
        "audience_accuracy": mean([float(r["audience_correct"]) for _, r in with_audience]),
        "audience_n": len(with_audience),
        "urgency_accuracy": mean([float(r["urgency_correct"]) for r in records]),
        "flags": flag_scores(items, records),
        "must_include_coverage": include_found / include_total if include_total else None,
        "must_include_total": include_total,
        "must_not_include_violations": len(violations),
        "violating_items": sorted({item_id for item_id, _ in violations}),
        "internal_leaks": len(leaked),
        "leaking_items": leaked,
        "no_answer": no_answer,
        "draft_shape": draft_shape(items, records),
    }


def draft_shape(items: Sequence[GoldenItem], records: Sequence[dict[str, Any]]) -> dict:
    """Are drafts short answers? Length of grounded chat drafts against the reference replies,
    drafts with a bullet list, facts stated within the first ANSWER_FIRST_CHARS characters,
    and coverage of the items that ask about two or more things."""
    pairs = [(i, r) for i, r in zip(items, records, strict=True)
             if i.grounded and r.get("draft_grounded")]
    chat = [(i, r) for i, r in pairs if i.channel == "chat"]
    drafts = [r.get("draft_chars", len(r.get("draft_text", ""))) for _, r in chat]
    references = [len(i.reference_reply) for i, _ in chat]
    draft_median = float(median(drafts)) if drafts else None
    reference_median = float(median(references)) if references else None
    grounded = [(i, r) for i, r in zip(items, records, strict=True) if i.grounded]
    multi = [(i, r) for i, r in grounded if len(i.expected_types) >= 2]
    return {
        "chat_drafts": len(chat),
        "chat_median_chars": draft_median,
        "reference_median_chars": reference_median,
        "chat_chars_ratio": _ratio(draft_median or 0.0, reference_median or 0.0),
        "chat_bullet_drafts": sum(bool(r.get("bullets")) for _, r in chat),
        "answer_first": _share(grounded, "must_include_first"),
        "must_include_multi_type": _share(multi, "must_include_found"),
        "multi_type_items": len(multi),
        "golden_first": _golden_first(grounded),
    }


def _golden_first(grounded: Sequence[tuple[GoldenItem, dict[str, Any]]]) -> dict[str, Any]:
    """must_include coverage and answer-first of the drafts written from the golden first
    article: the share of the served figures' gap that the ranking and refusals owe."""
    pairs = [(i, r["golden_first"]) for i, r in grounded if "golden_first" in r]
    if not pairs:
        return {"skipped": "no draft from the golden first article"}
    return {"must_include_coverage": _share(pairs, "must_include_found"),
            "answer_first": _share(pairs, "must_include_first"), "items": len(pairs)}


def _share(pairs: Sequence[tuple[GoldenItem, dict[str, Any]]], found: str) -> float | None:
    """Share of the items' must_include facts listed under `found` in their records."""
    total = sum(len(i.must_include) for i, _ in pairs)
    return _ratio(sum(len(r.get(found, [])) for _, r in pairs), total)


def flag_scores(items: Sequence[GoldenItem], records: Sequence[dict[str, Any]]) -> dict:
    """Micro precision/recall of risk flags over all items, and per flag."""
    counts: dict[str, Counter[str]] = {flag: Counter() for flag in FLAGS}
    for item, record in zip(items, records, strict=True):
        predicted, expected = set(record["flags"]), set(item.expected_flags)
        for flag in predicted | expected:
            outcome = ("tp" if flag in predicted and flag in expected
                       else "fp" if flag in predicted else "fn")
            counts.setdefault(flag, Counter())[outcome] += 1
    total: Counter[str] = sum(counts.values(), Counter())

    def scores(c: Counter[str]) -> dict[str, Any]:
        return {"precision": _ratio(c["tp"], c["tp"] + c["fp"]),
                "recall": _ratio(c["tp"], c["tp"] + c["fn"]),
                "tp": c["tp"], "fp": c["fp"], "fn": c["fn"]}

    return {"overall": scores(total), "by_flag": {f: scores(c) for f, c in counts.items()}}
