"""API access records: API tokens and the per-minute request counts of the rate limit.

A token is shown once, when it is made, and stored only as the SHA-256 of its secret: the
secret is 32 random bytes, so a slow password hash would add nothing but latency to every
request. A revoked token stays listed (its name may be given to a new token); an expired one
stops working on its own.

Request counts live in the database, like the login lockout, so every gunicorn worker and
every host behind a load balancer counts against the same limit: one row per key (a user or a
token) per minute, bumped in one upsert, and rows of past minutes are dropped as new ones
start.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from suggester.errors import InputError
from suggester.records.store import Store, as_utc, iso_time, stored_time

TOKEN_ROLES = ("agent", "integration")
TOKEN_PREFIX = "sgt_"  # makes a leaked token easy to recognise in logs and secret scanners
MAX_TOKEN_NAME_CHARS = 64
LAST_USED_PRECISION = timedelta(minutes=1)  # last_used_at is written at most once a minute
RATE_WINDOW = timedelta(minutes=1)
_COLUMNS = "name, role, created_at, expires_at, revoked_at, last_used_at"


@dataclass(frozen=True, kw_only=True)
class ApiToken:
    name: str
    role: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def state(self, now: datetime) -> str:
        """"active", "revoked" or "expired"."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class AccessRecords:
    """Make, list, revoke and check API tokens; count API requests per key and minute."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- tokens --------------------------------------------------------------------------------

    def add_token(self, name: str, *, role: str, expires_days: int | None = None,
                  now: datetime | None = None) -> tuple[ApiToken, str]:
        """Make a token; return it with its secret, which is shown once and never stored."""
        name = name.strip()
        if not name or len(name) > MAX_TOKEN_NAME_CHARS or any(c.isspace() for c in name):
            raise InputError(f"a token name must be 1–{MAX_TOKEN_NAME_CHARS} characters "
                             f"without spaces, got {name!r}")
        if role not in TOKEN_ROLES:
            raise InputError(f"role must be one of {', '.join(TOKEN_ROLES)}, got {role!r}")
        if expires_days is not None and expires_days < 1:
            raise InputError(f"--expires must be at least 1 day, got {expires_days}")
        now = _moment(now)
        expires = None if expires_days is None else now + timedelta(days=expires_days)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.store.write_transaction() as db:
            # Not `ON CONFLICT`: the live name is unique through a partial index.
            taken = db.execute("SELECT 1 FROM api_tokens WHERE name = ? AND revoked_at IS NULL",
                               (name,)).fetchone()
            if taken:
                raise InputError(f"a token named {name!r} already exists — revoke it first "
                                 f"(`suggester tokens revoke {name}`) or choose another name")
            db.execute("INSERT INTO api_tokens (name, token_hash, role, created_at, expires_at) "
                       "VALUES (?, ?, ?, ?, ?)",
                       (name, token_hash(secret), role, iso_time(now), _stamp(expires)))
        token = ApiToken(name=name, role=role, created_at=now, expires_at=expires,
                         revoked_at=None, last_used_at=None)
        return token, secret

    def tokens(self) -> list[ApiToken]:
        """Every token, revoked ones included, by name and age."""
        with self.store.read_connection() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM api_tokens ORDER BY name, id").fetchall()
        return [_token(row) for row in rows]

    def revoke_token(self, name: str, *, now: datetime | None = None) -> ApiToken:
        """Revoke the live token called `name`; it stops working at once on every host."""
        with self.store.write_transaction() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM api_tokens "
                             "WHERE name = ? AND revoked_at IS NULL", (name,)).fetchone()
            if row is None:
                raise InputError(f"no live token is named {name!r} — "
                                 "`suggester tokens list` shows the names")
            stamp = iso_time(_moment(now))
            db.execute("UPDATE api_tokens SET revoked_at = ? "
                       "WHERE name = ? AND revoked_at IS NULL", (stamp, name))
        return _token((*row[:4], stamp, row[5]))

    def token_for(self, secret: str, *, now: datetime | None = None) -> ApiToken | None:
        """The active token with this secret, its use noted; None when unknown, revoked or
        expired."""
        now = _moment(now)
        with self.store.read_connection() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM api_tokens WHERE token_hash = ?",
                             (token_hash(secret),)).fetchone()
        token = None if row is None else _token(row)
        if token is None or token.state(now) != "active":
            return None
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_PRECISION:
            with self.store.write_transaction() as db:
                db.execute("UPDATE api_tokens SET last_used_at = ? WHERE token_hash = ?",
                           (iso_time(now), token_hash(secret)))
        return token

    # -- request counts ------------------------------------------------------------------------

    def count_request(self, key: str, *, now: datetime | None = None) -> tuple[int, float]:
        """Count one request of `key` in this minute; return the minute's count so far and
        the seconds until the next minute starts."""
        now = _moment(now)
        seconds = RATE_WINDOW.total_seconds()
        start = datetime.fromtimestamp(now.timestamp() // seconds * seconds, UTC)
        with self.store.write_transaction() as db:
            count = int(db.execute(
                "INSERT INTO api_requests (key, window_start, requests) VALUES (?, ?, 1) "
                "ON CONFLICT (key, window_start) DO UPDATE "
                "SET requests = api_requests.requests + 1 RETURNING requests",
                (key, iso_time(start))).fetchone()[0])
            if count == 1:  # this key's first request of the minute: drop the past minutes
                db.execute("DELETE FROM api_requests WHERE window_start < ?", (iso_time(start),))
        return count, (start + RATE_WINDOW - now).total_seconds()


def _moment(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else as_utc(now)


def _stamp(moment: datetime | None) -> str | None:
    return None if moment is None else iso_time(moment)


def _token(row: tuple) -> ApiToken:
    name, role, created_at, expires_at, revoked_at, last_used_at = row
    return ApiToken(name=name, role=role, created_at=stored_time(created_at),
                    expires_at=stored_time(expires_at), revoked_at=stored_time(revoked_at),
                    last_used_at=stored_time(last_used_at))
