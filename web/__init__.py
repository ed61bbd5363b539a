"""The Flask app: JSON API under /api and the agents' console.

`create_app` builds the heavy objects once (the store, the retriever and the suggester with its
models) and hangs them on the app, so views stay thin. Templates and static assets ship inside
this package (see pyproject's package-data).
"""

from __future__ import annotations

import logging
import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from suggester.errors import InputError, SearchIndexError, SuggesterError
from suggester.records.store import StoreError, UnknownArticleVersion, UnknownSuggestion, open_store
from suggester.service import Suggester
from suggester.settings import Settings, load_settings

_HERE = Path(__file__).parent
MAX_BODY_BYTES = 64 * 1024
log = logging.getLogger(__name__)

# Which HTTP status each input error code deserves; the rest are 400.
# An article that is no candidate of the inquiry is a reference to something not there: 404.
STATUS_BY_CODE = {"unsupported_media_type": 415, "inquiry_too_long": 413,
                  "unknown_article": 404, "unknown_incident": 404}
HTTP_KOREAN = {413: "요청 본문이 너무 큽니다.", 404: "없는 API 경로입니다.",
               405: "허용되지 않는 메서드입니다."}


def create_app(test_config: dict[str, Any] | None = None, *,
               settings: Settings | None = None) -> Flask:
    """Build the app; `test_config` overrides Flask config, `settings` the Suggester settings."""
    app = Flask(__name__, template_folder=str(_HERE / "templates"),
                static_folder=str(_HERE / "static"))
    app.config.from_mapping(MAX_CONTENT_LENGTH=MAX_BODY_BYTES, SESSION_COOKIE_HTTPONLY=True,
                            SESSION_COOKIE_SAMESITE="Lax",
                            PERMANENT_SESSION_LIFETIME=timedelta(hours=12))
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    if test_config:
        app.config.update(test_config)
    settings = settings or load_settings()
    store = open_store(settings)
    app.extensions["suggester.settings"] = settings
    app.extensions["suggester.store"] = store
    app.extensions["suggester.service"] = Suggester(settings, store=store)
    if store.shared:
        # Other app servers publish too: poll the shared revision in the background (started
        # by the first request, so in each gunicorn worker rather than before the fork).
        from suggester.replicate import Replica

        replica = Replica(settings, store)
        app.extensions["suggester.replica"] = replica
        app.before_request(replica.ensure_polling)

    # Flask's defaults already hold SECRET_KEY = None, so setdefault would never set it.
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(settings)

    from web import access, api, auth, console, editor, handoffs, insights, voc

    for blueprint in (api.bp, auth.bp, console.bp, editor.bp, insights.bp, voc.bp,
                      handoffs.bp):
        app.register_blueprint(blueprint)
    auth.init_app(app)
    access.init_app(app)
    _register_error_handlers(app)
    app.after_request(_security_headers)
    return app


# No inline script anywhere, no third-party origin: a injected <script> cannot run.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def _security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def _secret_key(settings: Settings) -> str:
    """A per-installation key for signing sessions, made once and kept in the data dir."""
    path = settings.data_dir / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker made it first
            pass
        else:
            with os.fdopen(descriptor, "w") as out:
                out.write(secrets.token_hex(32))
    return path.read_text().strip()


def _error(code: str, message: str, korean: str, status: int):
    return jsonify(error=code, message=message, message_ko=korean), status


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(UnknownSuggestion)
    @app.errorhandler(UnknownArticleVersion)
    def not_found(exc: InputError):
        return _error("not_found", str(exc), "요청한 항목을 찾을 수 없습니다.", 404)

    @app.errorhandler(InputError)
    def bad_input(exc: InputError):
        status = STATUS_BY_CODE.get(exc.code, 400)
        return _error(exc.code, str(exc), exc.korean, status)

    @app.errorhandler(SearchIndexError)
    def index_unavailable(exc: SearchIndexError):
        return _error("index_unavailable", str(exc),
                      "검색 색인을 사용할 수 없습니다. 관리자에게 `suggester index` 실행을 "
                      "요청해 주세요.", 503)

    @app.errorhandler(StoreError)
    def database_unavailable(exc: StoreError):
        log.error("database unavailable: %s", exc)
        return _error("database_unavailable", str(exc),
                      "데이터베이스를 사용할 수 없습니다. 잠시 후 다시 시도하고, 계속되면 "
                      "관리자에게 알려 주세요.", 503)

    @app.errorhandler(SuggesterError)
    def suggester_error(exc: SuggesterError):
        log.warning("request failed: %s", exc)
        return _error("error", str(exc), "요청을 처리하지 못했습니다.", 500)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if not request.path.startswith("/api/"):
            return exc
        code = (exc.name or "error").lower().replace(" ", "_")
        korean = HTTP_KOREAN.get(exc.code or 0, "요청이 올바르지 않습니다.")
        return _error(code, exc.description or exc.name, korean, exc.code or 500)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unexpected error on %s", request.path)
        if not request.path.startswith("/api/"):
            return "일시적인 오류가 발생했습니다. 잠시 후 다시 시도해 주세요.", 500
        return _error("internal_error", "unexpected server error; it has been logged",
                      "일시적인 오류가 발생했습니다. 잠시 후 다시 시도해 주세요.", 500)
