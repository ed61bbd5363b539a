"""Sign-in, sessions and roles: /login, /logout and the `login_required` decorator.

Sessions are Flask's signed cookie (HttpOnly, SameSite=Lax, 12 hours) holding the username
only; the role is read from the store on every request, so a changed role or a removed user
takes effect at once. Roles are ordered agent < editor < admin.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from flask import (
    Blueprint,
    Flask,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from suggester.errors import InputError
from suggester.records.store import Store, User
from web import security

bp = Blueprint("auth", __name__)

ROLE_RANK = {"agent": 1, "editor": 2, "admin": 3}
ROLE_KOREAN = {"agent": "상담원", "editor": "편집자", "admin": "관리자"}
BOOTSTRAP_USERNAME = "admin"
_View = TypeVar("_View", bound=Callable[..., Any])


def _store() -> Store:
    return current_app.extensions["suggester.store"]


def _limiter() -> security.LoginLimiter:
    return current_app.extensions["suggester.login_limiter"]


def current_user() -> User | None:
    """The signed-in user of this request, or None."""
    if "user" not in g:
        username = session.get("user")
        g.user = _store().get_user(username) if isinstance(username, str) else None
    return g.user


def signed_in_as(role: str) -> bool:
    """Whether this request's user holds `role` or a higher one (agent < editor < admin)."""
    user = current_user()
    return user is not None and ROLE_RANK.get(user.role, 0) >= ROLE_RANK[role]


def refusal(role: str = "agent") -> Any:
    """The response refusing this request to a user below `role`, or None to let it through."""
    user = current_user()
    if user is None:
        if _wants_json() and g.get("api_caller") is not None:
            # An API token is a known caller without a person's role: forbidden, not unknown.
            return jsonify(error="forbidden", message=f"this needs a signed-in {role}",
                           message_ko=f"{ROLE_KOREAN[role]} 계정으로 로그인해야 합니다."), 403
        if _wants_json():
            return jsonify(error="unauthorized", message="sign in first",
                           message_ko="로그인이 필요합니다."), 401
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if not signed_in_as(role):
        needed = ROLE_KOREAN[role]
        if _wants_json():
            return jsonify(error="forbidden", message=f"this needs the {role} role",
                           message_ko=f"{needed} 권한이 필요합니다."), 403
        return render_template("auth_message.html", title="권한 없음",
                               message=f"이 페이지는 {needed} 권한이 있어야 볼 수 있습니다."), 403
    return None


def login_required(role: str = "agent") -> Callable[[_View], _View]:
    """Let a view through only for a signed-in user with at least `role`."""
    if role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}: use one of {', '.join(ROLE_RANK)}")

    def decorator(view: _View) -> _View:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            refused = refusal(role)
            return refused if refused is not None else view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def _wants_json() -> bool:
    return (request.path.startswith("/api/") or request.is_json
            or request.accept_mimetypes.best == "application/json")


def _safe_next(target: str | None) -> str:
    # Only paths on this site: "//evil.example" or "https://…" would be an open redirect.
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return url_for("console.index")


@bp.get("/login")
def login():
    return render_template("login.html", next=_safe_next(request.args.get("next")))


@bp.post("/login")
def login_submit():
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    target = _safe_next(request.form.get("next"))
    keys = (f"user:{username.lower()}", f"ip:{request.remote_addr}")
    wait = _limiter().retry_after(*keys)
    if wait > 0:
        minutes = max(1, round(wait / 60))
        return _login_page(f"로그인 시도가 너무 많습니다. {minutes}분 후에 다시 시도하세요.",
                           username, target, 429)
    user = _store().verify_password(username, password) if username and password else None
    if user is None:
        _limiter().failed(*keys)
        return _login_page("아이디 또는 비밀번호가 올바르지 않습니다.", username, target, 401)
    _limiter().succeeded(keys[0])
    session.clear()  # a fresh session (and CSRF token) for the signed-in user
    session["user"] = user.username
    session.permanent = True
    return redirect(target)


def _login_page(error: str, username: str, target: str, status: int) -> Any:
    return render_template("login.html", error=error, username=username, next=target), status


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("auth.login"))


def bootstrap_admin(store: Store) -> str | None:
    """Create `admin` with a random password when the store has no user; return the password.

    Returns None when users already exist (or another worker created the admin first), so the
    caller prints the password at most once.
    """
    if store.has_users():
        return None
    password = secrets.token_urlsafe(12)
    try:
        store.add_user(BOOTSTRAP_USERNAME, password, role="admin")
    except InputError:  # created concurrently by another process
        return None
    return password


def init_app(app: Flask) -> None:
    """Install CSRF checks, the login limiter and the template helpers."""
    security.init_app(app)
    app.extensions["suggester.login_limiter"] = security.LoginLimiter(
        app.extensions["suggester.store"])
    app.jinja_env.globals["current_user"] = current_user
    app.jinja_env.globals["signed_in_as"] = signed_in_as
    app.jinja_env.globals["role_korean"] = ROLE_KOREAN
