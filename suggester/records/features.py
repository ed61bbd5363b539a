"""Write down feature requests (기능제안): their groups, each group's status and announcement.

A group keeps the centroid of its members' vectors (computed in `suggester.operations.features`,
which owns the embedding), the status an editor sets (접수/검토중/반영/보류) and, once the
feature shipped, the one line an editor wrote for customers. The requests' text stays in the
suggestion log (masked), so examples here are masked too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from suggester.errors import InputError
from suggester.records.store import Store, now_iso, stored_time

STATUSES = ("접수", "검토중", "반영", "보류")
SHIPPED = "반영"
MAX_ANNOUNCEMENT_CHARS = 300
EXAMPLES = 3


@dataclass(frozen=True, kw_only=True)
class FeatureGroup:
    id: int
    representative: str
    status: str
    announcement: str
    centroid: list[float]
    requests: int
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    examples: list[str] = field(default_factory=list)  # masked, newest first
    updated_by: str | None = None


class FeatureRecords:
    """Read and write feature request groups in the Store's database."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def groups(self, *, with_examples: bool = False) -> list[FeatureGroup]:
        """Every group, most requested first (examples only when asked: they cost a query)."""
        with self._store.read_connection() as db:
            rows = db.execute(
                "SELECT g.id, g.representative, g.status, g.announcement, g.centroid_json, "
                "g.updated_by, COUNT(r.suggestion_id), MIN(r.created_at), MAX(r.created_at) "
                "FROM feature_groups g LEFT JOIN feature_requests r ON r.group_id = g.id "
                "GROUP BY g.id, g.representative, g.status, g.announcement, g.centroid_json, "
                "g.updated_by ORDER BY COUNT(r.suggestion_id) DESC, g.id").fetchall()
            examples = self._examples(db) if with_examples else {}
        return [FeatureGroup(id=int(id_), representative=rep, status=status,
                             announcement=line, centroid=json.loads(centroid), updated_by=by,
                             requests=int(n), first_seen=stored_time(first),
                             last_seen=stored_time(last),
                             examples=examples.get(int(id_), []))
                for id_, rep, status, line, centroid, by, n, first, last in rows]

    def add(self, suggestion_id: str, *, representative: str, vector: list[float],
            group_id: int | None, centroid: list[float] | None = None) -> int:
        """Link a request to `group_id` (moving its centroid), or to a new group; return it."""
        stamp = now_iso()
        with self._store.write_transaction() as db:
            if group_id is None:
                group_id = int(db.execute(
                    "INSERT INTO feature_groups (representative, centroid_json, created_at) "
                    "VALUES (?, ?, ?) RETURNING id",
                    (representative, json.dumps(vector), stamp)).fetchone()[0])
            elif centroid is not None:
                db.execute("UPDATE feature_groups SET centroid_json = ? WHERE id = ?",
                           (json.dumps(centroid), group_id))
            db.execute("INSERT INTO feature_requests (suggestion_id, group_id, created_at) "
                       "VALUES (?, ?, ?) ON CONFLICT (suggestion_id) DO NOTHING",
                       (suggestion_id, group_id, stamp))
        return group_id

    def set_status(self, group_id: int, *, status: str, announcement: str, by: str) -> None:
        """An editor's decision: the status, and for 반영 the line drafts may say."""
        if status not in STATUSES:
            raise InputError(f"status must be one of {', '.join(STATUSES)}, got {status!r}",
                             code="invalid_status",
                             korean=f"상태는 {', '.join(STATUSES)} 중 하나여야 합니다.")
        announcement = " ".join(announcement.split())
        if len(announcement) > MAX_ANNOUNCEMENT_CHARS:
            raise InputError(f"the announcement is longer than {MAX_ANNOUNCEMENT_CHARS} "
                             "characters", code="invalid_announcement",
                             korean=f"안내 문구는 {MAX_ANNOUNCEMENT_CHARS}자 이하로 써 주세요.")
        with self._store.write_transaction() as db:
            row = db.execute("UPDATE feature_groups SET status = ?, announcement = ?, "
                             "updated_by = ? WHERE id = ? RETURNING id",
                             (status, announcement, by, group_id)).fetchone()
        if row is None:
            raise InputError(f"no feature request group {group_id} — reload the page",
                             code="unknown_feature_group",
                             korean="해당 기능 제안 묶음이 없습니다. 페이지를 새로 고쳐 주세요.")

    def _examples(self, db) -> dict[int, list[str]]:
        rows = db.execute("SELECT r.group_id, s.inquiry_masked FROM feature_requests r "
                          "JOIN suggestions s ON s.id = r.suggestion_id "
                          "ORDER BY r.created_at DESC").fetchall()
        examples: dict[int, list[str]] = {}
        for group_id, text in rows:
            kept = examples.setdefault(int(group_id), [])
            if len(kept) < EXAMPLES:
                kept.append(text)
        return examples

