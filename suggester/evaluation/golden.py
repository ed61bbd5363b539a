"""Load and validate the golden set (eval/golden/*.jsonl)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suggester.errors import InputError
from suggester.knowledge.articles import CHANNELS, TAXONOMY
from suggester.reply.analyze import FLAGS

URGENCIES = ("normal", "high", "critical")
GOLDEN_DIR = Path("eval/golden")


@dataclass(frozen=True, kw_only=True)
class GoldenItem:
    id: str
    inquiry: str
    audience: str
    channel: str
    expected_types: list[str]
    relevant: list[str]
    reference_reply: str
    must_include: list[str]
    must_not_include: list[str]
    expected_flags: list[str]
    urgency: str
    grounded: bool
    relevant_sections: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GoldenItem:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def load_golden(split: str, golden_dir: Path = GOLDEN_DIR) -> list[GoldenItem]:
    """Items of one split ('dev', 'test') or of both ('all')."""
    if split == "all":
        return load_golden("dev", golden_dir) + load_golden("test", golden_dir)
    path = golden_dir / f"{split}.jsonl"
    if not path.exists():
        raise InputError(f"no golden split {split!r}: {path} does not exist")
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(GoldenItem.from_dict(json.loads(line)))
        except (json.JSONDecodeError, TypeError) as exc:
            raise InputError(f"{path}:{number}: not a golden item: {exc}") from exc
    return items


def validate_golden(items: list[GoldenItem], article_ids: set[str]) -> list[str]:
    """Every problem in the golden set, as sentences; an empty list means valid."""
    problems = []
    seen_ids: set[str] = set()
    seen_inquiries: dict[str, str] = {}
    for item in items:
        where = f"{item.id}:"
        if item.id in seen_ids:
            problems.append(f"{where} duplicate id")
        seen_ids.add(item.id)
        key = "".join(item.inquiry.split())
        if key in seen_inquiries:
            problems.append(f"{where} same inquiry as {seen_inquiries[key]}")
        seen_inquiries.setdefault(key, item.id)
        problems += [f"{where} unknown article '{a}'" for a in item.relevant
                     if a not in article_ids]
        problems += [f"{where} unknown type '{t}'" for t in item.expected_types
                     if t not in TAXONOMY]
        problems += [f"{where} unknown flag '{f}'" for f in item.expected_flags if f not in FLAGS]
        if item.audience not in ("buyer", "seller", "unknown"):
            problems.append(f"{where} audience must be buyer, seller or unknown")
        if item.channel not in CHANNELS:
            problems.append(f"{where} channel must be one of {', '.join(CHANNELS)}")
        if item.urgency not in URGENCIES:
            problems.append(f"{where} urgency must be one of {', '.join(URGENCIES)}")
        if item.grounded and not item.relevant:
            problems.append(f"{where} grounded item needs relevant articles")
        if not item.grounded and item.relevant:
            problems.append(f"{where} negative item must not list relevant articles")
        if not item.inquiry.strip():
            problems.append(f"{where} empty inquiry")
    return problems
