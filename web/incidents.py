"""Incidents over the API: what the console's banner polls, the timeline, and closing one.

The routes hang under the `api` blueprint (`/api/incidents…`), so whatever guards /api guards
them too; closing also needs the editor role.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

from suggester.errors import InputError
from suggester.operations.incidents import IncidentDesk
from suggester.records.incidents import Incident, checked_note
from web.auth import current_user, refusal

bp = Blueprint("incidents", __name__, url_prefix="/incidents")
POLL_SECONDS = 3  # the console asks this often, so a banner shows within 5 s


def desk() -> IncidentDesk:
    desk = current_app.extensions["suggester.service"].incidents
    if desk is None:
        raise InputError("incidents need a database", code="no_store",
                         korean="장애 기록에 쓸 데이터베이스가 설정되지 않았습니다.")
    return desk


def _described(incident: Incident) -> dict[str, Any]:
    """The incident with the draft its matching inquiries get (no customer name filled)."""
    service = current_app.extensions["suggester.service"]
    draft = desk().draft(incident, service.retriever.snapshot().chunks.values(),
                         channel="chat", values={})
    return {**incident.to_dict(), "draft": draft.text if draft else None,
            "draft_reason_ko": draft.reason_ko if draft else None}


@bp.get("")
def current():
    """Open incidents and those lately closed, for the console's banner."""
    return jsonify(incidents=[_described(i) for i in desk().current()],
                   poll_seconds=POLL_SECONDS)


def _number(raw: str) -> int:
    # ASCII digits only: "³0" and "١٢" pass str.isdigit, and int() refuses the first.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
        raise InputError("incident ids are whole numbers", code="invalid_incident_id",
                         korean="장애 번호는 숫자여야 합니다.")
    return int(raw)


@bp.get("/<incident_id>")
def one(incident_id: str):
    """One incident with its timeline and the suggestions linked to it."""
    records = desk().records
    incident_id = _number(incident_id)
    incident = records.get(incident_id)
    timeline = [{"kind": e.kind, "at": e.at.isoformat(), "detail": e.detail}
                for e in records.timeline(incident_id)]
    return jsonify(incident=_described(incident), timeline=timeline,
                   suggestions=records.linked(incident_id))


@bp.post("/<incident_id>/close")
def close(incident_id: str):
    """Close an incident with its resolution note (editors and admins)."""
    from web.api import json_body  # web.api registers this module: import it late

    number = _number(incident_id)
    body = json_body({"resolution_note": str}, ("resolution_note",))
    note = checked_note(body["resolution_note"])  # a bad request is a 400 whoever sends it
    refused = refusal("editor")
    if refused is not None:
        return refused
    user = current_user()
    incident = desk().close(number, by=user.username if user else "unknown", note=note)
    return jsonify(incident=_described(incident))
