"""Score risk flags as served on a flag-only set: messages and the flags they should raise.

`eval/golden/flags-fresh.jsonl` is such a set: risk messages written after the cue rules, in
wording they had not seen, plus look-alikes that should raise nothing. It is never tuned on:
it tells whether the flags hold on new wording. One JSON object a line:
`{"id": "flag-001", "inquiry": "...", "expected_flags": ["off_platform"]}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suggester.evaluation.checks import flag_scores
from suggester.evaluation.golden import FLAGS
from suggester.settings import Settings


@dataclass(frozen=True, kw_only=True)
class FlagItem:
    id: str
    inquiry: str
    expected_flags: list[str]


def read_flag_set(path: Path) -> list[FlagItem]:
    """The set's items; an unknown flag or a line that is not an item stops with its line."""
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            item = FlagItem(id=str(raw["id"]), inquiry=str(raw["inquiry"]),
                            expected_flags=list(raw["expected_flags"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a flag item ({exc})") from exc
        unknown = [f for f in item.expected_flags if f not in FLAGS]
        if unknown:
            raise ValueError(f"{path}:{number}: unknown flag(s) {', '.join(unknown)}")
        items.append(item)
    return items


def run_flag_set(settings: Settings, path: Path) -> dict[str, Any]:
    """Precision and recall of the flags the service raises on each item, and the misses."""
    from suggester.service import Suggester

    items = read_flag_set(path)
    suggester = Suggester(settings)
    records = []
    for item in items:
        analysis, _ = suggester.rank(item.inquiry)
        records.append({"id": item.id, "flags": sorted(analysis.flags)})
    scores = flag_scores(items, records)
    scores["wrong"] = [{"id": i.id, "inquiry": i.inquiry, "expected": sorted(i.expected_flags),
                        "raised": r["flags"]}
                       for i, r in zip(items, records, strict=True)
                       if set(r["flags"]) != set(i.expected_flags)]
    scores["items"] = len(items)
    return scores
