"""Write down incidents: the outage-like inquiries (signals), the incidents they open, the timeline.

The queries live here rather than in `Store`, over the Store's own connections. Every decision
that must be made once across workers and hosts is made inside one write transaction, or by the
database itself: at most one open incident per symptom (a partial unique index), and each
tenfold growth is claimed by exactly one caller (a conditional UPDATE), so it is notified once.
Timestamps are UTC ISO text, as in the rest of the Store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from suggester.errors import InputError
from suggester.records.database import Connection
from suggester.records.store import Store, iso_time, now_iso, stored_time

MAX_NOTE_CHARS = 2000
_COLUMNS = ("id, symptom, first_inquiry_at, opened_at, inquiries, peak_rate, peak_at, closed_at, "
            "closed_by, resolution_note")


class UnknownIncident(InputError):
    """No incident has the given id, or it is already closed."""

    def __init__(self, incident_id: int, *, closed: bool = False) -> None:
        self.incident_id = incident_id
        state = "is already closed" if closed else "does not exist"
        super().__init__(f"incident {incident_id} {state} — reload the console to see the "
                         "incidents that are open", code="unknown_incident",
                         korean=f"장애 #{incident_id}은(는) "
                                f"{'이미 종료되었습니다' if closed else '없습니다'}. "
                                "콘솔을 새로 고쳐 열린 장애를 확인하세요.")


@dataclass(frozen=True, kw_only=True)
class Incident:
    id: int
    symptom: str
    first_inquiry_at: datetime
    opened_at: datetime
    inquiries: int
    peak_rate: int               # most inquiries within one detection window …
    peak_at: datetime | None     # … and when that was
    closed_at: datetime | None
    closed_by: str | None
    resolution_note: str | None

    @property
    def open(self) -> bool:
        return self.closed_at is None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "symptom": self.symptom, "status": "open" if self.open else
                "closed", "first_inquiry_at": _text(self.first_inquiry_at),
                "opened_at": _text(self.opened_at), "inquiries": self.inquiries,
                "peak_rate": self.peak_rate, "peak_at": _text(self.peak_at),
                "closed_at": _text(self.closed_at), "closed_by": self.closed_by,
                "resolution_note": self.resolution_note}


@dataclass(frozen=True, kw_only=True)
class Event:
    kind: str
    at: datetime
    detail: str


@dataclass(frozen=True, kw_only=True)
class Observation:
    """What one signal did: the incident it belongs to (if any) and whether it opened it."""

    incident: Incident | None
    opened: bool = False


class IncidentRecords:
    """Read and write incidents in the Store's database (SQLite or PostgreSQL)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def record_signal(self, suggestion_id: str, *, symptom: str, outage: bool, at: datetime,
                      threshold: int, window: timedelta) -> Observation:
        """Record one inquiry with a symptom; link it, or open an incident when it is due.

        It joins the open incident of its symptom. Otherwise, when it is outage-like and it
        makes `threshold` unlinked outage-like inquiries of that symptom within `window`, an
        incident opens and takes every inquiry of the symptom from that window.
        """
        stamp, since = iso_time(at), iso_time(at - window)
        with self._store.write_transaction() as db:
            incident = self._open_for(db, symptom)
            if incident is None and not outage:
                return Observation(incident=None)  # it would neither join nor count
            db.execute("INSERT INTO incident_signals (suggestion_id, symptom, outage, created_at,"
                       " incident_id) VALUES (?, ?, ?, ?, ?) ON CONFLICT (suggestion_id) "
                       "DO NOTHING", (suggestion_id, symptom, int(outage), stamp,
                                      incident.id if incident else None))
            if incident is not None:
                return Observation(incident=self._grow(db, incident.id, stamp, since))
            waiting = db.execute(
                "SELECT COUNT(*) FROM incident_signals WHERE symptom = ? AND outage = 1 "
                "AND incident_id IS NULL AND created_at > ?", (symptom, since)).fetchone()[0]
            if waiting < threshold:
                return Observation(incident=None)
            return self._open(db, symptom, stamp, since)

    def claim_growth(self, incident_id: int) -> int | None:
        """The count to announce when the incident has grown tenfold since the last notice.

        Exactly one caller gets it (the UPDATE is conditional); the rest get None.
        """
        with self._store.write_transaction() as db:
            row = db.execute(
                "UPDATE incidents SET notified_inquiries = inquiries WHERE id = ? "
                "AND closed_at IS NULL AND inquiries >= 10 * notified_inquiries "
                "AND notified_inquiries > 0 RETURNING inquiries", (incident_id,)).fetchone()
            if row is None:
                return None
            _event(db, incident_id, "grew", now_iso(), f"{row[0]}")
            return int(row[0])

    def close(self, incident_id: int, *, by: str, note: str, at: datetime | None = None
              ) -> Incident:
        """Close an open incident with the resolution note customers will be told."""
        note = checked_note(note)
        stamp = iso_time(at or datetime.now(UTC))
        with self._store.write_transaction() as db:
            row = db.execute(f"UPDATE incidents SET closed_at = ?, closed_by = ?, "
                             f"resolution_note = ? WHERE id = ? AND closed_at IS NULL "
                             f"RETURNING {_COLUMNS}", (stamp, by, note, incident_id)).fetchone()
            if row is None:
                exists = db.execute("SELECT 1 FROM incidents WHERE id = ?",
                                    (incident_id,)).fetchone()
                raise UnknownIncident(incident_id, closed=exists is not None)
            _event(db, incident_id, "closed", stamp, by)
        return _incident(row)

    def get(self, incident_id: int) -> Incident:
        """The incident with this id, or raise `UnknownIncident`."""
        with self._store.read_connection() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM incidents WHERE id = ?",
                             (incident_id,)).fetchone()
        if row is None:
            raise UnknownIncident(incident_id)
        return _incident(row)

    def current(self, *, now: datetime, closed_within: timedelta) -> list[Incident]:
        """The open incidents, then those closed within `closed_within`, newest first."""
        with self._store.read_connection() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM incidents WHERE closed_at IS NULL "
                              "OR closed_at > ? ORDER BY opened_at DESC",
                              (iso_time(now - closed_within),)).fetchall()
        incidents = [_incident(row) for row in rows]
        return sorted(incidents, key=lambda i: not i.open)

    def between(self, since: datetime, until: datetime) -> list[Incident]:
        """Incidents opened in [since, until), oldest first (for the weekly VOC)."""
        with self._store.read_connection() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM incidents WHERE opened_at >= ? "
                              "AND opened_at < ? ORDER BY opened_at",
                              (iso_time(since), iso_time(until))).fetchall()
        return [_incident(row) for row in rows]

    def timeline(self, incident_id: int) -> list[Event]:
        """The incident's events in order: first inquiry, opened, growth, peak, closed."""
        with self._store.read_connection() as db:
            rows = db.execute("SELECT kind, at, detail FROM incident_events "
                              "WHERE incident_id = ? ORDER BY at, id", (incident_id,)).fetchall()
        return [Event(kind=kind, at=datetime.fromisoformat(at), detail=detail)
                for kind, at, detail in rows]

    def linked(self, incident_id: int) -> list[str]:
        """The suggestion ids of the incident's inquiries, oldest first."""
        with self._store.read_connection() as db:
            rows = db.execute("SELECT suggestion_id FROM incident_signals WHERE incident_id = ? "
                              "ORDER BY created_at", (incident_id,)).fetchall()
        return [row[0] for row in rows]

    # -- internals ---------------------------------------------------------------------------

    def _open_for(self, db: Connection, symptom: str) -> Incident | None:
        row = db.execute(f"SELECT {_COLUMNS} FROM incidents WHERE symptom = ? "
                         "AND closed_at IS NULL", (symptom,)).fetchone()
        return None if row is None else _incident(row)

    def _open(self, db: Connection, symptom: str, stamp: str, since: str) -> Observation:
        first = db.execute("SELECT MIN(created_at), COUNT(*) FROM incident_signals "
                           "WHERE symptom = ? AND incident_id IS NULL AND created_at > ?",
                           (symptom, since)).fetchone()
        # Another worker may have opened it since _open_for: the index lets one insert win.
        row = db.execute(
            "INSERT INTO incidents (symptom, first_inquiry_at, opened_at, inquiries, "
            "notified_inquiries, peak_rate, peak_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (symptom) WHERE closed_at IS NULL DO NOTHING RETURNING id",
            (symptom, first[0], stamp, first[1], first[1], first[1], stamp)).fetchone()
        if row is None:
            incident = self._open_for(db, symptom)
            return Observation(incident=incident)
        incident_id = int(row[0])
        db.execute("UPDATE incident_signals SET incident_id = ? WHERE symptom = ? "
                   "AND incident_id IS NULL AND created_at > ?", (incident_id, symptom, since))
        _event(db, incident_id, "first_inquiry", first[0], "")
        _event(db, incident_id, "opened", stamp, f"{first[1]}")
        return Observation(incident=self._incident(db, incident_id), opened=True)

    def _grow(self, db: Connection, incident_id: int, stamp: str, since: str) -> Incident:
        rate = db.execute("SELECT COUNT(*) FROM incident_signals WHERE incident_id = ? "
                          "AND created_at > ?", (incident_id, since)).fetchone()[0]
        db.execute("UPDATE incidents SET inquiries = inquiries + 1 WHERE id = ?", (incident_id,))
        peaked = db.execute("UPDATE incidents SET peak_rate = ?, peak_at = ? WHERE id = ? "
                            "AND peak_rate < ? RETURNING id",
                            (rate, stamp, incident_id, rate)).fetchone()
        if peaked is not None:
            # One peak event per incident, moved as the rate climbs, so the timeline stays short.
            db.execute("DELETE FROM incident_events WHERE incident_id = ? AND kind = 'peak'",
                       (incident_id,))
            _event(db, incident_id, "peak", stamp, f"{rate}")
        return self._incident(db, incident_id)

    def _incident(self, db: Connection, incident_id: int) -> Incident:
        return _incident(db.execute(f"SELECT {_COLUMNS} FROM incidents WHERE id = ?",
                                    (incident_id,)).fetchone())


def _event(db: Connection, incident_id: int, kind: str, at: str, detail: str) -> None:
    db.execute("INSERT INTO incident_events (incident_id, kind, at, detail) VALUES (?, ?, ?, ?)",
               (incident_id, kind, at, detail))


def _incident(row: tuple) -> Incident:
    (id_, symptom, first, opened, inquiries, peak_rate, peak_at, closed_at, closed_by,
     note) = row
    return Incident(id=int(id_), symptom=symptom, first_inquiry_at=stored_time(first),
                    opened_at=stored_time(opened), inquiries=int(inquiries),
                    peak_rate=int(peak_rate), peak_at=stored_time(peak_at),
                    closed_at=stored_time(closed_at), closed_by=closed_by,
                    resolution_note=note)


def _text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def checked_note(note: str | None) -> str:
    """The resolution note, stripped; an InputError when it is blank or too long."""
    note = (note or "").strip()
    if not note:
        raise InputError("a resolution note (복구 안내) is required to close an incident",
                         code="missing_resolution_note",
                         korean="복구 안내 문구를 입력해야 장애를 종료할 수 있습니다.")
    if len(note) > MAX_NOTE_CHARS:
        raise InputError(f"the resolution note is longer than {MAX_NOTE_CHARS} characters",
                         code="invalid_resolution_note",
                         korean=f"복구 안내는 {MAX_NOTE_CHARS}자 이하로 써 주세요.")
    return note
