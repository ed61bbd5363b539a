"""CSRF tokens for HTML forms and the login rate limiter.

CSRF: one random token per session, put in every HTML form as a hidden `csrf_token` input (or
sent by our own scripts as the `X-CSRF-Token` header) and checked on every state-changing
request outside /api. Under /api, web/access.py checks the header itself, and only for callers
signed in by session cookie: an API token is no ambient credential a forged request could use.

Login limiting counts failures in the database (SQLite or PostgreSQL): five failures for a
username or an address within five minutes lock it for five minutes, in every worker and on
every host at once.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from flask import Flask, render_template, request, session

if TYPE_CHECKING:
    from suggester.records.store import Store

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_SESSION_KEY = "csrf"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def csrf_token() -> str:
    """This session's CSRF token, created on first use."""
    token = session.get(_SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[_SESSION_KEY] = token
    return token


def csrf_valid(sent: str | None) -> bool:
    """Compare in constant time, so the token cannot be guessed byte by byte."""
    expected = session.get(_SESSION_KEY)
    if not sent or not isinstance(expected, str) or not expected:
        return False
    return hmac.compare_digest(sent.encode("utf-8"), expected.encode("utf-8"))


def _check_csrf():
    if request.method in _SAFE_METHODS or request.path.startswith("/api/"):
        return None
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD)
    if not sent:
        return _refusal(400, "보안 토큰이 없어 요청을 처리하지 않았습니다. 페이지를 새로 고친 뒤 "
                             "다시 시도하세요.")
    if not csrf_valid(sent):
        return _refusal(403, "보안 토큰이 맞지 않습니다(세션 만료 또는 다른 사이트의 요청). "
                             "페이지를 새로 고친 뒤 다시 시도하세요.")
    return None


def _refusal(status: int, message: str):
    if request.is_json or request.headers.get(CSRF_HEADER) is not None:
        return {"error": "csrf_failed", "message": "missing or invalid CSRF token",
                "message_ko": message}, status
    return render_template("auth_message.html", title="요청 거부", message=message), status


def init_app(app: Flask) -> None:
    """Check CSRF on every request and offer `csrf_token()` to templates."""
    app.before_request(_check_csrf)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["csrf_field"] = CSRF_FIELD


class LoginLimiter:
    """Refuse logins for a while after too many failures for one username or one address.

    The counts live in the database, so every gunicorn worker and every host behind a load
    balancer enforces the same limit.
    """

    def __init__(self, store: Store, *, max_failures: int = 5, window: float = 300.0,
                 lockout: float = 300.0, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.max_failures = max_failures
        self.window = window
        self.lockout = lockout
        self.clock = clock  # seconds since the epoch

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def retry_after(self, *keys: str) -> float:
        """Seconds until any of `keys` may try again; 0 when none is locked."""
        until = self.store.login_locked_until(keys)
        return 0.0 if until is None else max(0.0, (until - self._now()).total_seconds())

    def failed(self, *keys: str) -> None:
        """Count a failed attempt against each key; lock a key that reached the limit."""
        self.store.record_login_failure(keys, now=self._now(), window=self.window,
                                        lockout=self.lockout, max_failures=self.max_failures)

    def succeeded(self, key: str) -> None:
        """Forget the failures of a key (the username that just signed in)."""
        self.store.clear_login_failures(key)
