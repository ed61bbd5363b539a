"""The database behind the web app: suggestions, agent feedback, users and article history.

One `Store` per process, shared by Flask's threads. It runs on a SQLite file (the default: one
host, WAL mode so the CLI and the server can use it at once) or on a PostgreSQL server that
several app servers share (`SUGGESTER_DATABASE_URL`); `suggester.records.database` holds the little
that differs, and every query here is written once for both. The schema is created or migrated
when the database is opened and its version is kept in `schema_version`.

Customer text never reaches the disk unmasked: every inquiry, draft and final reply, and every
string inside an analysis, goes through `privacy.mask_personal_data` here, so no caller can
forget. Article history is append-only (triggers refuse UPDATE and DELETE). Timestamps are UTC.
Every history entry also bumps `kb_revision`, the one number other hosts poll to learn that
the articles changed (`suggester.replicate`).
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from werkzeug.security import check_password_hash, generate_password_hash

from suggester.errors import InputError
from suggester.records.database import (
    Connection,
    Database,
    StoreError,
    open_database,
)
from suggester.records.privacy import mask_personal_data
from suggester.settings import Settings

VERDICTS = ("used", "edited", "rejected")
ROLES = ("agent", "editor", "admin")
ACTIONS = ("publish", "archive", "restore", "draft")
MIN_PASSWORD_CHARS = 8
MAX_USERNAME_CHARS = 64
# What a suggestion keeps of each passage: enough to cite and to replay against history,
# not the passage text, which lives in the article files and article_history.
CITATION_KEYS = ("article_id", "version", "chunk_id", "section")


class UnknownSuggestion(InputError):
    """No suggestion has the given id."""

    def __init__(self, suggestion_id: str) -> None:
        self.suggestion_id = suggestion_id
        super().__init__(f"no suggestion has id {suggestion_id!r} — "
                         "use the id returned when the suggestion was made")


class UnknownArticleVersion(InputError):
    """No history entry has the given id for that article."""

    def __init__(self, article_id: str, history_id: int) -> None:
        self.article_id = article_id
        self.history_id = history_id
        super().__init__(f"article {article_id!r} has no history entry {history_id} — "
                         "list its history to see the entries it has")


class SupportsToDict(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True, kw_only=True)
class SuggestionRecord:
    id: str
    created_at: datetime
    inquiry_masked: str
    channel: str
    audience: str
    analysis: dict[str, Any]
    passages: list[dict[str, Any]]
    grounded: bool
    draft_text: str
    timings: dict[str, float]
    # Who drafted the reply and, for an LLM draft that was refused, why (suggester/reply/llm.py).
    drafter: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Feedback:
    id: int
    suggestion_id: str
    verdict: str
    final_text: str | None
    corrected_types: list[str]
    created_at: datetime
    author: str | None = None  # a username, or "token:NAME"; None before authors were kept
    undone_by: str | None = None  # the editor who undid this correction
    undone_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class CorrectionMark:
    """How far a process has followed the corrections: the newest feedback id and undo time."""

    feedback_id: int = 0
    undone_at: str = ""


class Correction(NamedTuple):
    inquiry_masked: str
    corrected_types: list[str]


@dataclass(frozen=True, kw_only=True)
class User:
    username: str
    role: str
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class ArticleVersion:
    id: int
    article_id: str
    version: int
    author: str
    created_at: datetime
    action: str
    source: str


class _AppendOnly(NamedTuple):
    """The database's own way to refuse UPDATE and DELETE on a table (triggers)."""

    table: str


# Each migration is a list of statements run in one transaction; entry N takes the database
# from schema version N to N+1. Append new migrations, never edit an applied one. `{id}`,
# `{timestamp}` and `{row_order}` are filled from the database's `ddl` (SQLite and PostgreSQL
# spell an auto-increment key differently); everything else is the same SQL for both.
_MIGRATIONS: tuple[tuple[str | _AppendOnly, ...], ...] = (
    (
        """CREATE TABLE suggestions (
            id TEXT PRIMARY KEY,
            created_at {timestamp} NOT NULL,
            inquiry_masked TEXT NOT NULL,
            channel TEXT NOT NULL,
            audience TEXT NOT NULL,
            analysis_json TEXT NOT NULL,
            passages_json TEXT NOT NULL,
            grounded INTEGER NOT NULL CHECK (grounded IN (0, 1)),
            draft_text TEXT NOT NULL,
            timings_json TEXT NOT NULL{row_order})""",
        "CREATE INDEX suggestions_by_time ON suggestions (created_at)",
        """CREATE TABLE feedback (
            id {id},
            suggestion_id TEXT NOT NULL REFERENCES suggestions (id),
            verdict TEXT NOT NULL CHECK (verdict IN ('used', 'edited', 'rejected')),
            final_text TEXT,
            corrected_types TEXT NOT NULL DEFAULT '[]',
            created_at {timestamp} NOT NULL)""",
        "CREATE INDEX feedback_by_suggestion ON feedback (suggestion_id)",
        """CREATE TABLE users (
            id {id},
            username TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('agent', 'editor', 'admin')),
            created_at {timestamp} NOT NULL)""",
        """CREATE TABLE article_history (
            id {id},
            article_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            author TEXT NOT NULL,
            created_at {timestamp} NOT NULL,
            action TEXT NOT NULL CHECK (action IN ('publish', 'archive', 'restore', 'draft')),
            source TEXT NOT NULL)""",
        "CREATE INDEX article_history_by_article ON article_history (article_id, id)",
        _AppendOnly("article_history"),
    ),
    (
        "ALTER TABLE suggestions ADD COLUMN drafter_json TEXT NOT NULL DEFAULT '{}'",
    ),
    (
        # One row, bumped with every history entry in the same transaction: hosts poll this
        # single number instead of scanning the history (see suggester.replicate).
        """CREATE TABLE kb_revision (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            revision INTEGER NOT NULL)""",
        "INSERT INTO kb_revision (id, revision) VALUES (1, 0)",
    ),
    (
        # Failed logins and lockouts, shared by every worker and host (an in-memory count gave
        # each gunicorn worker its own five attempts).
        """CREATE TABLE login_failures (
            id {id},
            key TEXT NOT NULL,
            failed_at {timestamp} NOT NULL)""",
        "CREATE INDEX login_failures_by_key ON login_failures (key, failed_at)",
        """CREATE TABLE login_locks (
            key TEXT PRIMARY KEY,
            locked_until {timestamp} NOT NULL)""",
    ),
    (
        # API access (suggester.records.access): tokens stored as SHA-256 of the secret, a
        # name reusable once its token is revoked; requests per user or token per minute for
        # the rate limit; and who sent each feedback row and who undid a correction.
        """CREATE TABLE api_tokens (
            id {id},
            name TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL CHECK (role IN ('agent', 'integration')),
            created_at {timestamp} NOT NULL,
            expires_at {timestamp},
            revoked_at {timestamp},
            last_used_at {timestamp})""",
        "CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL",
        """CREATE TABLE api_requests (
            key TEXT NOT NULL,
            window_start {timestamp} NOT NULL,
            requests INTEGER NOT NULL,
            PRIMARY KEY (key, window_start))""",
        "ALTER TABLE feedback ADD COLUMN author TEXT",
        "ALTER TABLE feedback ADD COLUMN undone_by TEXT",
        "ALTER TABLE feedback ADD COLUMN undone_at {timestamp}",
        # Every worker asks for the latest undo every few seconds (CorrectionMark).
        "CREATE INDEX feedback_by_undone_at ON feedback (undone_at)",
    ),
    (
        # Incidents raised from the inquiries themselves (suggester.records.incidents): each
        # outage-like inquiry is a signal, linked to its incident once one opens; the events
        # are the incident's timeline. One open incident per symptom, whichever worker or host
        # saw the inquiry that crossed the threshold.
        """CREATE TABLE incidents (
            id {id},
            symptom TEXT NOT NULL,
            first_inquiry_at {timestamp} NOT NULL,
            opened_at {timestamp} NOT NULL,
            inquiries INTEGER NOT NULL DEFAULT 0,
            notified_inquiries INTEGER NOT NULL DEFAULT 0,
            peak_rate INTEGER NOT NULL DEFAULT 0,
            peak_at {timestamp},
            closed_at {timestamp},
            closed_by TEXT,
            resolution_note TEXT)""",
        "CREATE UNIQUE INDEX incidents_one_open ON incidents (symptom) WHERE closed_at IS NULL",
        """CREATE TABLE incident_signals (
            suggestion_id TEXT PRIMARY KEY,
            symptom TEXT NOT NULL,
            outage INTEGER NOT NULL CHECK (outage IN (0, 1)),
            created_at {timestamp} NOT NULL,
            incident_id INTEGER REFERENCES incidents (id))""",
        "CREATE INDEX incident_signals_by_symptom ON incident_signals (symptom, created_at)",
        "CREATE INDEX incident_signals_by_incident ON incident_signals (incident_id, created_at)",
        """CREATE TABLE incident_events (
            id {id},
            incident_id INTEGER NOT NULL REFERENCES incidents (id),
            kind TEXT NOT NULL,
            at {timestamp} NOT NULL,
            detail TEXT NOT NULL DEFAULT '')""",
        "CREATE INDEX incident_events_by_incident ON incident_events (incident_id, id)",
        # Feature requests (기능제안) grouped by meaning (suggester.records.features): each
        # group keeps its centroid vector, the status an editor sets and the line drafts may
        # say once it shipped.
        """CREATE TABLE feature_groups (
            id {id},
            representative TEXT NOT NULL,
            centroid_json TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT '접수'
                CHECK (status IN ('접수', '검토중', '반영', '보류')),
            announcement TEXT NOT NULL DEFAULT '',
            updated_by TEXT,
            created_at {timestamp} NOT NULL)""",
        """CREATE TABLE feature_requests (
            suggestion_id TEXT PRIMARY KEY,
            group_id INTEGER NOT NULL REFERENCES feature_groups (id),
            created_at {timestamp} NOT NULL)""",
        "CREATE INDEX feature_requests_by_group ON feature_requests (group_id, created_at)",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)

# A feedback row that teaches the classifier: it corrected the types and nobody undid it.
LIVE_CORRECTION = "corrected_types != '[]' AND undone_at IS NULL"

# Columns are named, never `SELECT *`, so a later migration that adds one breaks nothing.
_SUGGESTION_COLUMNS = ("id, created_at, inquiry_masked, channel, audience, analysis_json, "
                       "passages_json, grounded, draft_text, timings_json, drafter_json")
_FEEDBACK_COLUMNS = ("id, suggestion_id, verdict, final_text, corrected_types, created_at, "
                     "author, undone_by, undone_at")
_USER_COLUMNS = "username, role, created_at"
_HISTORY_COLUMNS = "id, article_id, version, author, created_at, action, source"


def open_store(settings: Settings) -> Store:
    """The store the settings name: the PostgreSQL URL when set, else the SQLite file."""
    return Store(settings.database_url or settings.database_path)


class Store:
    """Read and write the Suggester database; safe to share between threads.

    `target` is a SQLite file path or a `postgresql://user@host:port/dbname` URL.
    """

    def __init__(self, target: Path | str) -> None:
        self._db: Database = open_database(target)
        self.path: Path | None = self._db.path  # the SQLite file; None on PostgreSQL
        self.location = self._db.location  # where, for messages (never a password)
        try:
            self._migrate()
        except self._db.unusable_errors as exc:
            self._db.close()
            raise self._db.unusable(exc) from exc
        except BaseException:
            self._db.close()
            raise

    @property
    def shared(self) -> bool:
        """Whether several hosts may use this database (PostgreSQL) rather than one (SQLite)."""
        return self._db.kind != "sqlite"

    def close(self) -> None:
        """Close the connections; later calls on this store fail."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with self._db.read() as db:
            return self._version(db)

    # -- suggestions -----------------------------------------------------------------------

    def log_suggestion(
        self,
        *,
        inquiry: str,
        channel: str,
        audience: str,
        analysis: Mapping[str, Any] | object,
        passages: Sequence[Mapping[str, Any] | SupportsToDict],
        grounded: bool,
        draft_text: str,
        timings: Mapping[str, float] | None = None,
        drafter: Mapping[str, Any] | None = None,
    ) -> str:
        """Record a suggestion with its inquiry and draft masked; return its new id.

        `analysis` is a mapping or a dataclass (such as the analyzer's result); `passages`
        are mappings or objects with `to_dict()` (`retrieve.Passage`), of which only the
        citation keys are kept.
        """
        suggestion_id = uuid.uuid4().hex
        row = (
            suggestion_id, now_iso(), mask_personal_data(inquiry).text, channel, audience,
            _dumps(_masked(_plain(analysis))), _dumps([_citation(p) for p in passages]),
            int(bool(grounded)), mask_personal_data(draft_text).text,
            _dumps({name: float(ms) for name, ms in (timings or {}).items()}),
            _dumps(_masked(_plain(dict(drafter or {})))),
        )
        with self._write() as db:
            db.execute(f"INSERT INTO suggestions ({_SUGGESTION_COLUMNS}) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        return suggestion_id

    def get_suggestion(self, suggestion_id: str) -> SuggestionRecord:
        """Return the suggestion with this id, or raise `UnknownSuggestion`."""
        with self._db.read() as db:
            row = db.execute(f"SELECT {_SUGGESTION_COLUMNS} FROM suggestions WHERE id = ?",
                             (suggestion_id,)).fetchone()
        if row is None:
            raise UnknownSuggestion(suggestion_id)
        return _suggestion(row)

    def recent_suggestions(self, limit: int = 50,
                           since: datetime | None = None) -> list[SuggestionRecord]:
        """Return up to `limit` suggestions, newest first, made at or after `since`."""
        if limit < 1:
            raise InputError(f"limit must be at least 1, got {limit}")
        sql, params = f"SELECT {_SUGGESTION_COLUMNS} FROM suggestions", []
        if since is not None:
            sql += " WHERE created_at >= ?"
            params.append(as_utc(since).isoformat(timespec="microseconds"))
        sql += f" ORDER BY created_at DESC, {self._db.row_order} DESC LIMIT ?"
        with self._db.read() as db:
            rows = db.execute(sql, (*params, limit)).fetchall()
        return [_suggestion(row) for row in rows]

    # -- feedback --------------------------------------------------------------------------

    def record_feedback(
        self,
        suggestion_id: str,
        *,
        verdict: str,
        final_text: str | None = None,
        corrected_types: Sequence[str] = (),
        author: str | None = None,
    ) -> int:
        """Record an agent's verdict on a suggestion; return the feedback id.

        `edited` needs the `final_text` the agent sent; `corrected_types` are the inquiry
        types the agent says were right, for the classifier to learn from; `author` is who
        sent it (a username, or "token:NAME").
        """
        if verdict not in VERDICTS:
            raise InputError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
        if verdict == "edited" and not (final_text or "").strip():
            raise InputError("an 'edited' verdict needs the final_text the agent sent")
        if isinstance(corrected_types, str) or not all(
                isinstance(t, str) and t.strip() for t in corrected_types):
            raise InputError("corrected_types must be a list of non-empty type names, "
                             f"got {corrected_types!r}")
        types = list(dict.fromkeys(t.strip() for t in corrected_types))
        masked = None if final_text is None else mask_personal_data(final_text).text
        with self._write() as db:
            if db.execute("SELECT 1 FROM suggestions WHERE id = ?",
                          (suggestion_id,)).fetchone() is None:
                raise UnknownSuggestion(suggestion_id)
            return _new_id(db.execute(
                "INSERT INTO feedback (suggestion_id, verdict, final_text, corrected_types, "
                "created_at, author) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (suggestion_id, verdict, masked, _dumps(types), now_iso(), author),
            ))

    def feedback_for(self, suggestion_id: str) -> list[Feedback]:
        """Return the feedback on a suggestion, oldest first."""
        with self._db.read() as db:
            rows = db.execute(
                f"SELECT {_FEEDBACK_COLUMNS} FROM feedback WHERE suggestion_id = ? ORDER BY id",
                (suggestion_id,)).fetchall()
        return [_feedback(row) for row in rows]

    def corrections(self, *, inquiry: str | None = None) -> list[Correction]:
        """Return each corrected inquiry with its right types, oldest first.

        When a suggestion was corrected more than once the latest correction wins, so one
        inquiry never teaches the classifier two answers; an undone correction teaches
        nothing (the one before it, if any, wins again). `inquiry` keeps only the
        corrections of that masked inquiry text.
        """
        sql = f"""SELECT s.inquiry_masked, f.corrected_types FROM feedback f
                  JOIN suggestions s ON s.id = f.suggestion_id
                  WHERE f.id IN (SELECT MAX(id) FROM feedback WHERE {LIVE_CORRECTION}
                                 GROUP BY suggestion_id)"""
        params: tuple[str, ...] = ()
        if inquiry is not None:
            sql, params = sql + " AND s.inquiry_masked = ?", (inquiry,)
        with self._db.read() as db:
            rows = db.execute(sql + " ORDER BY f.id", params).fetchall()
        return [Correction(text, json.loads(types)) for text, types in rows]

    def correction_mark(self) -> CorrectionMark:
        """Where the corrections stand now (two index lookups: cheap enough to poll)."""
        with self._db.read() as db:
            newest, undone = db.execute("SELECT MAX(id), MAX(undone_at) FROM feedback"
                                        ).fetchone()
        return CorrectionMark(feedback_id=newest or 0, undone_at=undone or "")

    def inquiries_corrected_since(self, mark: CorrectionMark) -> list[str]:
        """The masked inquiries whose corrections were added or undone after `mark`."""
        with self._db.read() as db:
            rows = db.execute(
                """SELECT DISTINCT s.inquiry_masked FROM feedback f
                   JOIN suggestions s ON s.id = f.suggestion_id
                   WHERE (f.id > ? AND f.corrected_types != '[]') OR f.undone_at > ?""",
                (mark.feedback_id, mark.undone_at)).fetchall()
        return [row[0] for row in rows]

    def undo_correction(self, feedback_id: int, *, by: str) -> Feedback:
        """Mark a type correction undone by editor `by`; return it as it was before.

        Undoing twice changes nothing the second time. Raises `InputError` when the feedback
        does not exist or corrected no type.
        """
        with self._write() as db:
            row = db.execute(f"SELECT {_FEEDBACK_COLUMNS} FROM feedback WHERE id = ?",
                             (feedback_id,)).fetchone()
            if row is None or json.loads(row[4]) == []:
                raise InputError(f"feedback {feedback_id} is no type correction — pick one "
                                 "from the insights page's list of corrections",
                                 code="not_a_correction",
                                 korean="유형 수정 기록이 아닙니다. 인사이트 화면의 수정 "
                                        "목록에서 골라 주세요.")
            db.execute("UPDATE feedback SET undone_by = ?, undone_at = ? "
                       "WHERE id = ? AND undone_at IS NULL", (by, now_iso(), feedback_id))
        return _feedback(row)

    # -- users -----------------------------------------------------------------------------

    def add_user(self, username: str, password: str, *, role: str = "agent") -> User:
        """Create a user with a hashed password; the username must be new."""
        username = _check_username(username)
        if role not in ROLES:
            raise InputError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        if len(password) < MIN_PASSWORD_CHARS:
            raise InputError(f"password must have at least {MIN_PASSWORD_CHARS} characters")
        password_hash = generate_password_hash(password)  # slow on purpose: outside the lock
        created_at = now_iso()
        try:
            with self._write() as db:
                db.execute("INSERT INTO users (username, password_hash, role, created_at) "
                           "VALUES (?, ?, ?, ?)", (username, password_hash, role, created_at))
        except self._db.integrity_error as exc:
            raise InputError(f"user {username!r} already exists — choose another name"
                             ) from exc
        return User(username=username, role=role, created_at=datetime.fromisoformat(created_at))

    def verify_password(self, username: str, password: str) -> User | None:
        """Return the user when the password is right, else None."""
        with self._db.read() as db:
            row = db.execute(
                f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE username = ?",
                (username.strip(),)).fetchone()
        if row is None:
            # Hash anyway, so a wrong username takes as long as a wrong password and the
            # login form does not reveal which usernames exist.
            check_password_hash(_dummy_hash(), password)
            return None
        if not check_password_hash(row[3], password):
            return None
        return _user(row)

    def get_user(self, username: str) -> User | None:
        """Return the user with this name, or None."""
        with self._db.read() as db:
            row = db.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE username = ?",
                             (username.strip(),)).fetchone()
        return None if row is None else _user(row)

    def list_users(self) -> list[User]:
        """Return every user, by username."""
        with self._db.read() as db:
            rows = db.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username").fetchall()
        return [_user(row) for row in rows]

    def has_users(self) -> bool:
        """Say whether any user exists (the app asks for a first admin when none does)."""
        with self._db.read() as db:
            return db.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None

    # -- login throttling ------------------------------------------------------------------

    def login_locked_until(self, keys: Sequence[str]) -> datetime | None:
        """When the latest lock among `keys` (a username, an address) ends; None if none."""
        if not keys:
            return None
        marks = ", ".join("?" * len(keys))
        with self._db.read() as db:
            row = db.execute(f"SELECT MAX(locked_until) FROM login_locks WHERE key IN ({marks})",
                             tuple(keys)).fetchone()
        return None if row is None or row[0] is None else datetime.fromisoformat(row[0])

    def record_login_failure(self, keys: Sequence[str], *, now: datetime, window: float,
                             lockout: float, max_failures: int) -> None:
        """Count a failed login against each key; a key with `max_failures` within `window`
        seconds is locked for `lockout` seconds and its count starts again."""
        stamp, since = iso_time(now), iso_time(now - timedelta(seconds=window))
        until = iso_time(now + timedelta(seconds=lockout))
        with self._write() as db:
            # Old rows go first, so the tables hold only the last window's attempts.
            db.execute("DELETE FROM login_failures WHERE failed_at <= ?", (since,))
            db.execute("DELETE FROM login_locks WHERE locked_until <= ?", (stamp,))
            for key in dict.fromkeys(keys):
                db.execute("INSERT INTO login_failures (key, failed_at) VALUES (?, ?)",
                           (key, stamp))
                count = db.execute("SELECT COUNT(*) FROM login_failures WHERE key = ?",
                                   (key,)).fetchone()[0]
                if count >= max_failures:
                    db.execute("INSERT INTO login_locks (key, locked_until) VALUES (?, ?) "
                               "ON CONFLICT (key) DO UPDATE SET locked_until = "
                               "excluded.locked_until", (key, until))
                    db.execute("DELETE FROM login_failures WHERE key = ?", (key,))

    def clear_login_failures(self, key: str) -> None:
        """Forget a key's failures and lock (the username that just signed in)."""
        with self._write() as db:
            db.execute("DELETE FROM login_failures WHERE key = ?", (key,))
            db.execute("DELETE FROM login_locks WHERE key = ?", (key,))

    # -- article history -------------------------------------------------------------------

    def record_article_version(self, article_id: str, *, version: int, author: str,
                               action: str, source: str) -> int:
        """Append one version of an article's Markdown source; return the history id."""
        if not article_id.strip():
            raise InputError("article_id must not be empty")
        if not author.strip():
            raise InputError("author must not be empty")
        if action not in ACTIONS:
            raise InputError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InputError(f"version must be a whole number of at least 1, got {version!r}")
        with self._write() as db:
            history_id = _new_id(db.execute(
                "INSERT INTO article_history (article_id, version, author, created_at, action, "
                "source) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (article_id, version, author, now_iso(), action, source)))
            db.execute("UPDATE kb_revision SET revision = revision + 1 WHERE id = 1")
        return history_id

    def article_history(self, article_id: str) -> list[ArticleVersion]:
        """Return every recorded version of an article, oldest first."""
        with self._db.read() as db:
            rows = db.execute(f"SELECT {_HISTORY_COLUMNS} FROM article_history "
                              "WHERE article_id = ? ORDER BY id", (article_id,)).fetchall()
        return [_article_version(row) for row in rows]

    def article_version(self, article_id: str, history_id: int) -> ArticleVersion:
        """Return one history entry of an article, or raise `UnknownArticleVersion`."""
        with self._db.read() as db:
            row = db.execute(f"SELECT {_HISTORY_COLUMNS} FROM article_history "
                             "WHERE article_id = ? AND id = ?",
                             (article_id, history_id)).fetchone()
        if row is None:
            raise UnknownArticleVersion(article_id, history_id)
        return _article_version(row)

    def kb_revision(self) -> int:
        """A number that grows with every history entry, on whichever host it was made."""
        with self._db.read() as db:
            return int(db.execute("SELECT revision FROM kb_revision WHERE id = 1").fetchone()[0])

    def latest_versions(self) -> dict[str, ArticleVersion]:
        """The newest history entry of every article that has history, in one query."""
        with self._db.read() as db:
            rows = db.execute(f"SELECT {_HISTORY_COLUMNS} FROM article_history WHERE id IN "
                              "(SELECT MAX(id) FROM article_history GROUP BY article_id)"
                              ).fetchall()
        return {version.article_id: version for version in map(_article_version, rows)}

    def latest_history_ids(self) -> dict[str, int]:
        """The newest history id of every article that has history."""
        with self._db.read() as db:
            rows = db.execute("SELECT article_id, MAX(id) FROM article_history "
                              "GROUP BY article_id").fetchall()
        return {article_id: int(newest) for article_id, newest in rows}

    # -- for other modules -----------------------------------------------------------------

    def exclusive(self, name: str, *, timeout: float) -> AbstractContextManager[None]:
        """Hold a lock named `name` that every host sharing this database respects.

        On SQLite (one host) it holds nothing: callers also hold a local file lock. Raises
        `StoreBusy` after `timeout` seconds.
        """
        return self._db.exclusive(name, timeout)

    @property
    def integrity_error(self) -> type[Exception]:
        """The exception this database raises when a constraint refuses a row."""
        return self._db.integrity_error

    def read_connection(self) -> AbstractContextManager[Connection]:
        """A connection for read-only queries written with `?` or `:name` placeholders."""
        return self._db.read()

    def write_transaction(self) -> AbstractContextManager[Connection]:
        """One write transaction (committed on exit, rolled back on an error) for the
        other modules of `suggester.records`."""
        return self._db.write()

    @property
    def sql_functions(self) -> dict[str, str]:
        """This database's spelling of the JSON and date expressions `Insights` uses."""
        return self._db.functions

    # -- internals -------------------------------------------------------------------------

    def _write(self) -> AbstractContextManager[Connection]:
        return self._db.write()

    def _version(self, db: Connection) -> int:
        row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return row[0] or 0

    def _migrate(self) -> None:
        with self._write() as db:
            # Inside the write transaction: two processes (or hosts) opening a new database
            # at once must not both apply the same migration.
            self._db.lock_schema(db)
            db.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                       "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
            current = self._version(db)
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.location} has schema version {current}, newer than this Suggester "
                    f"knows ({SCHEMA_VERSION}) — upgrade Suggester before opening it")
            for number, statements in enumerate(_MIGRATIONS[current:], start=current + 1):
                for statement in statements:
                    if isinstance(statement, _AppendOnly):
                        for sql in self._db.append_only(statement.table):
                            db.execute(sql)
                    else:
                        db.execute(_fill(statement, self._db.ddl))
                db.execute("INSERT INTO schema_version VALUES (?, ?)", (number, now_iso()))


@functools.cache
def _dummy_hash() -> str:
    return generate_password_hash(uuid.uuid4().hex)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def iso_time(moment: datetime) -> str:
    """A moment as stored: UTC, ISO 8601 with microseconds (text compares in time order)."""
    return as_utc(moment).isoformat(timespec="microseconds")


def stored_time(value: str | datetime | None) -> datetime | None:
    """A stored timestamp read back as an aware datetime (PostgreSQL may hand one over)."""
    if value is None or value == "":
        return None
    return as_utc(value if isinstance(value, datetime) else datetime.fromisoformat(value))


def as_utc(moment: datetime) -> datetime:
    """Treat a naive datetime as UTC, as everything stored here is."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _new_id(cursor: Any) -> int:
    """The id an `INSERT … RETURNING id` made (SQLite 3.35+ and PostgreSQL both have it)."""
    return int(cursor.fetchone()[0])


def _fill(statement: str, ddl: Mapping[str, str]) -> str:
    """Put the database's column types into a schema statement (`{id}`, `{timestamp}`…)."""
    for key, value in ddl.items():
        statement = statement.replace("{" + key + "}", value)
    return statement


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _plain(value: Any) -> Any:
    """Turn dataclasses, enums, dates and sets into JSON-ready values."""
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted(_plain(item) for item in value)
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _masked(value: Any) -> Any:
    """Mask every string in a JSON-ready value: an analysis may quote the inquiry."""
    if isinstance(value, str):
        return mask_personal_data(value).text
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


def _citation(passage: Mapping[str, Any] | SupportsToDict) -> dict[str, Any]:
    data = passage if isinstance(passage, Mapping) else passage.to_dict()
    return {key: _plain(data[key]) for key in CITATION_KEYS if key in data}


def _check_username(username: str) -> str:
    username = username.strip()
    if not username or len(username) > MAX_USERNAME_CHARS or any(c.isspace() for c in username):
        raise InputError(f"username must be 1–{MAX_USERNAME_CHARS} characters without spaces, "
                         f"got {username!r}")
    return username


def _suggestion(row: tuple) -> SuggestionRecord:
    (id_, created_at, inquiry, channel, audience, analysis, passages, grounded, draft,
     timings, drafter) = row
    return SuggestionRecord(
        id=id_, created_at=datetime.fromisoformat(created_at), inquiry_masked=inquiry,
        channel=channel, audience=audience, analysis=json.loads(analysis),
        passages=json.loads(passages), grounded=bool(grounded), draft_text=draft,
        timings=json.loads(timings), drafter=json.loads(drafter),
    )


def _feedback(row: tuple) -> Feedback:
    id_, suggestion_id, verdict, final_text, types, created_at, author, undone_by, undone_at = row
    return Feedback(id=id_, suggestion_id=suggestion_id, verdict=verdict, final_text=final_text,
                    corrected_types=json.loads(types),
                    created_at=datetime.fromisoformat(created_at), author=author,
                    undone_by=undone_by,
                    undone_at=None if undone_at is None else datetime.fromisoformat(undone_at))


def _user(row: tuple) -> User:
    return User(username=row[0], role=row[1], created_at=datetime.fromisoformat(row[2]))


def _article_version(row: tuple) -> ArticleVersion:
    id_, article_id, version, author, created_at, action, source = row
    return ArticleVersion(id=id_, article_id=article_id, version=version, author=author,
                          created_at=datetime.fromisoformat(created_at), action=action,
                          source=source)
