"""Who may call the JSON API: a signed-in console session or an API token, within a rate limit.

One check before every request under /api (an app-wide `before_request`, so a route added by
any blueprint is covered without a decorator), except the paths in `OPEN_PATHS`:

1. `Authorization: Bearer <token>` names an API token (`suggester tokens add`); an unknown,
   revoked or expired token gets 401 even when a session cookie comes along.
2. Otherwise the console session's user; a state-changing call must also carry the session's
   CSRF token in `X-CSRF-Token` (403 without it), since the browser sends the cookie by itself.
3. Nobody: 401.

An `integration` token may only call views marked `@integration_allowed` (403 elsewhere, so a
new route is closed to it until someone decides otherwise), and those views leave internal text
out of what they answer (`Caller.sees_internal`). Every caller then counts one request against
its per-minute limit (`SUGGESTER_API_RATE_LIMIT`); over it the answer is 429 with Retry-After.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, current_app, g, jsonify, request

from suggester.records.access import AccessRecords
from web import security
from web.auth import current_user

OPEN_PATHS = frozenset({"/api/health"})
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_View = TypeVar("_View", bound=Callable[..., Any])


@dataclass(frozen=True, kw_only=True)
class Caller:
    """The user or token behind an API request."""

    kind: str  # "user" or "token"
    name: str
    role: str  # a user's role (agent, editor, admin) or a token's (agent, integration)

    @property
    def author(self) -> str:
        """How feedback records who sent it: the username, or "token:NAME"."""
        return self.name if self.kind == "user" else f"token:{self.name}"

    @property
    def sees_internal(self) -> bool:
        return self.role != "integration"


def caller() -> Caller:
    """The caller of this API request (set by the check before it)."""
    return g.api_caller


def integration_allowed(view: _View) -> _View:
    """Let `integration` tokens call this view; it must leave internal text out for them."""
    view.integration_allowed = True  # type: ignore[attr-defined]
    return view


def _records() -> AccessRecords:
    return current_app.extensions["suggester.access"]


def _error(status: int, code: str, message: str, korean: str, **headers: str) -> Any:
    response = jsonify(error=code, message=message, message_ko=korean)
    response.status_code = status
    response.headers.update(headers)
    return response


def _token_caller(header: str) -> Caller | None:
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    token = _records().token_for(secret.strip())
    return None if token is None else Caller(kind="token", name=token.name, role=token.role)


def _check_api_access() -> Any:
    if not request.path.startswith("/api/") or request.path in OPEN_PATHS:
        return None
    header = request.headers.get("Authorization")
    if header is not None:
        who = _token_caller(header)
        if who is None:
            return _error(401, "invalid_token", "the API token is unknown, revoked or expired "
                          "— ask an admin for a new one (`suggester tokens add`)",
                          "API 토큰이 없거나 폐기되었거나 만료되었습니다. 관리자에게 새 토큰을 "
                          "요청해 주세요.", **{"WWW-Authenticate": 'Bearer error="invalid_token"'})
    else:
        user = current_user()
        if user is None:
            return _error(401, "unauthorized", "sign in to the console, or send an API token "
                          "as `Authorization: Bearer …`",
                          "로그인이 필요합니다. 콘솔에 로그인하거나 API 토큰을 "
                          "`Authorization: Bearer …` 헤더로 보내 주세요.",
                          **{"WWW-Authenticate": "Bearer"})
        if request.method in _UNSAFE_METHODS and \
                not security.csrf_valid(request.headers.get(security.CSRF_HEADER)):
            return _error(403, "csrf_failed", "a signed-in session must send its CSRF token in "
                          f"the {security.CSRF_HEADER} header — reload the page and try again",
                          "보안 토큰이 없거나 맞지 않습니다. 페이지를 새로 고친 뒤 다시 "
                          "시도하세요.")
        who = Caller(kind="user", name=user.username, role=user.role)
    view = current_app.view_functions.get(request.endpoint or "")
    if not who.sees_internal and view is not None and \
            not getattr(view, "integration_allowed", False):
        return _error(403, "forbidden", "an integration token may only suggest, send feedback "
                      "and read articles", "연동용 토큰으로는 사용할 수 없는 기능입니다.")
    refused = _over_limit(who)
    if refused is not None:
        return refused
    g.api_caller = who
    return None


def _over_limit(who: Caller) -> Any:
    limit = current_app.extensions["suggester.settings"].api_rate_limit
    if limit <= 0:
        return None
    count, reset = _records().count_request(f"{who.kind}:{who.name}")
    if count <= limit:
        return None
    wait = max(1, math.ceil(reset))
    return _error(429, "rate_limited", f"over {limit} API requests a minute for {who.author}; "
                  f"try again in {wait} s",
                  f"요청이 너무 많습니다(분당 {limit}회). {wait}초 후에 다시 시도해 주세요.",
                  **{"Retry-After": str(wait)})


def init_app(app: Flask) -> None:
    """Check every API request's credentials and rate before its view runs."""
    app.extensions["suggester.access"] = AccessRecords(app.extensions["suggester.store"])
    app.before_request(_check_api_access)
