"""Write suggestion-log rows at chosen times, for the insights tests (unit and browser)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from datetime import UTC, datetime
from typing import Any

from suggester.records.store import Store


def log_at(store: Store, when: datetime, **row: Any) -> str:
    """Log one suggestion at `when` (UTC if naive); see `log_many` for the fields."""
    return log_many(store, [(when, row)])[0]


def log_many(store: Store, rows: Sequence[tuple[datetime, dict[str, Any]]]) -> list[str]:
    """Log suggestions through the Store, then move their timestamps in one transaction.

    Each row's fields: inquiry, types, grounded, cited (article ids), channel, audience and
    flags (risk flag names).
    """
    ids = [_log(store, **fields) for _, fields in rows]
    stamps = [(_stamp(when), suggestion_id) for (when, _), suggestion_id in zip(rows, ids,
                                                                               strict=True)]
    # The Store stamps rows with the current time and has no API to change it (on purpose).
    if store.path is not None:
        with closing(sqlite3.connect(store.path)) as db, db:
            db.executemany("UPDATE suggestions SET created_at = ? WHERE id = ?", stamps)
        return ids
    with store.read_connection() as db:  # PostgreSQL: an autocommit connection of the Store
        db.execute("BEGIN")
        for stamp, suggestion_id in stamps:
            db.execute("UPDATE suggestions SET created_at = ? WHERE id = ?",
                       (stamp, suggestion_id))
        db.execute("COMMIT")
    return ids


def _log(store: Store, *, inquiry: str = "배송 언제 와요?", types: Sequence[str] = ("배송",),
         grounded: bool = True, cited: Sequence[str] = ("shipping-delay-buyer",),
         channel: str = "chat", audience: str = "buyer", flags: Sequence[str] = ()) -> str:
    analysis = {"inquiry_types": [{"category": t, "confidence": 0.9} for t in types],
                "risk_flags": [{"name": f, "evidence": [], "escalation": None} for f in flags]}
    passages = [{"article_id": a, "version": 1, "chunk_id": f"{a}#요약", "section": "요약"}
                for a in cited]
    return store.log_suggestion(
        inquiry=inquiry, channel=channel, audience=audience, analysis=analysis,
        passages=passages, grounded=grounded, draft_text="초안입니다.", timings={"total_ms": 1})


def _stamp(when: datetime) -> str:
    moment = when if when.tzinfo else when.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
