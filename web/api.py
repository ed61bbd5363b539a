"""JSON API: every response is JSON, errors included."""

from __future__ import annotations

from flask import Blueprint, jsonify

from suggester import __version__

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/health")
def health():
    return jsonify(status="ok", version=__version__)
