"""JSON API under /api: every response is JSON, errors included ({error, message, message_ko}).

Who may call it, and what an integration token sees, is decided in web/access.py.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from suggester import __version__
from suggester.errors import InputError
from suggester.knowledge.articles import ARTICLE_ID
from suggester.records.store import Store
from suggester.search.index import read_generation
from suggester.service import Suggester
from web.access import caller, integration_allowed
from web.articles import render_article

bp = Blueprint("api", __name__, url_prefix="/api")

SUGGEST_FIELDS = {"inquiry": str, "audience": str, "channel": str, "customer_name": str,
                  "order_id": str, "k": int, "article_id": str, "as_of": str}
FEEDBACK_FIELDS = {"suggestion_id": str, "verdict": str, "final_text": str,
                   "corrected_types": list}
OPENAPI = Path(__file__).with_name("openapi.yaml")
# JSON may escape half a UTF-16 pair ("\ud800"): Python keeps it, but no UTF-8 text (SQLite,
# Kiwi, the response) can hold it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def suggester() -> Suggester:
    return current_app.extensions["suggester.service"]


def store() -> Store:
    return current_app.extensions["suggester.store"]


def json_body(fields: dict[str, type], required: tuple[str, ...]) -> dict[str, Any]:
    """The request's JSON object, checked for content type, shape, unknown and missing fields."""
    if not request.is_json:
        raise InputError("send a JSON body with Content-Type: application/json",
                         code="unsupported_media_type",
                         korean="Content-Type: application/json 형식의 JSON 본문을 보내 주세요.")
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # Python's JSON decoder stops at ~1,000 levels: "[[[[…"
        raise InputError("the JSON body is nested too deeply", code="malformed_json",
                         korean="본문 JSON이 너무 깊게 중첩되어 있습니다.") from None
    if body is None:
        raise InputError("the body is not valid JSON", code="malformed_json",
                         korean="본문이 올바른 JSON이 아닙니다.")
    if not isinstance(body, dict):
        raise InputError("the body must be a JSON object", code="invalid_body",
                         korean="본문은 JSON 객체여야 합니다.")
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise InputError(f"unknown field(s): {', '.join(unknown)}", code="unknown_fields",
                         korean=f"알 수 없는 필드가 있습니다: {', '.join(unknown)}")
    missing = [name for name in required if name not in body]
    if missing:
        raise InputError(f"missing field(s): {', '.join(missing)}", code="missing_fields",
                         korean=f"필수 필드가 없습니다: {', '.join(missing)}")
    for name, value in body.items():
        expected = fields[name]
        if value is not None and (not isinstance(value, expected)
                                  or (expected is int and isinstance(value, bool))):
            raise InputError(f"{name} must be a {expected.__name__}", code=f"invalid_{name}",
                             korean=f"{name} 필드의 형식이 올바르지 않습니다.")
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(text, str) and _LONE_SURROGATE.search(text) for text in texts):
            raise InputError(f"{name} is not valid Unicode text (a lone surrogate such as "
                             "\\ud800)", code=f"invalid_{name}",
                             korean=f"{name} 필드에 올바르지 않은 문자가 있습니다.")
    return body


@bp.post("/suggest")
@integration_allowed
def suggest():
    body = json_body(SUGGEST_FIELDS, ("inquiry",))
    for name, limit in (("customer_name", 50), ("order_id", 40)):
        if body.get(name) and len(body[name]) > limit:
            raise InputError(f"{name} is longer than {limit} characters", code=f"invalid_{name}",
                             korean=f"{name} 필드는 {limit}자 이하여야 합니다.")
    article_id = body.get("article_id")
    if article_id is not None and not ARTICLE_ID.fullmatch(article_id):
        raise InputError("article_id must be an article id (a lowercase slug)",
                         code="invalid_article_id", korean="문서 ID 형식이 올바르지 않습니다.")
    result = suggester().suggest(
        body["inquiry"], audience=body.get("audience"), channel=body.get("channel") or "chat",
        customer_name=body.get("customer_name"), order_id=body.get("order_id"),
        k=5 if body.get("k") is None else body["k"], article_id=article_id,
        as_of=_as_of(body.get("as_of")))
    return jsonify(result.to_dict(internal=caller().sees_internal))


def _as_of(value: str | None) -> dt.date | None:
    """The order or event date (YYYY-MM-DD) whose rules apply; empty means today."""
    if not value:
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return dt.date.fromisoformat(value)
    except ValueError:
        pass
    raise InputError("as_of must be a date YYYY-MM-DD (the order or event date)",
                     code="invalid_as_of", korean="기준일(as_of)은 YYYY-MM-DD 형식의 날짜여야 "
                                                  "합니다.")


@bp.post("/feedback")
@integration_allowed
def feedback():
    body = json_body(FEEDBACK_FIELDS, ("suggestion_id", "verdict"))
    corrected = body.get("corrected_types") or []
    if not all(isinstance(t, str) for t in corrected):
        raise InputError("corrected_types must be a list of strings",
                         code="invalid_corrected_types",
                         korean="corrected_types는 문자열 목록이어야 합니다.")
    feedback_id = suggester().record_feedback(
        body["suggestion_id"], verdict=body["verdict"], final_text=body.get("final_text"),
        corrected_types=corrected, author=caller().author)
    return jsonify(feedback_id=feedback_id, suggestion_id=body["suggestion_id"]), 201


@bp.get("/openapi.yaml")
@integration_allowed
def openapi():
    """This API's OpenAPI description (web/openapi.yaml)."""
    return current_app.response_class(OPENAPI.read_bytes(), mimetype="application/yaml")


@bp.get("/health")
def health():
    settings = suggester().settings
    generation = read_generation(settings)
    status = "ok" if generation else "empty_index"
    return jsonify(status=status, version=__version__, index_generation=generation,
                   chroma="server" if settings.chroma_host else "embedded"), \
        200 if generation else 503


@bp.get("/articles/<article_id>")
@integration_allowed
def article(article_id: str):
    if not ARTICLE_ID.fullmatch(article_id):
        raise InputError("article ids are lowercase slugs", code="invalid_article_id",
                         korean="문서 ID 형식이 올바르지 않습니다.")
    rendered = render_article(suggester().settings.kb_dir, article_id)
    if rendered is None:
        return jsonify(error="not_found", message=f"no article {article_id!r}",
                       message_ko=f"'{article_id}' 문서를 찾을 수 없습니다."), 404
    if not caller().sees_internal:
        rendered["sections"] = [s for s in rendered["sections"] if not s["internal"]]
    return jsonify(rendered)


# Incidents live in their own module, under this blueprint so its guards cover them.
from web import incidents  # noqa: E402

bp.register_blueprint(incidents.bp)
