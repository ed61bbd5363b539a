"""The insights pages (being built: see issue 5)."""

from __future__ import annotations

from flask import Blueprint, render_template_string

bp = Blueprint("insights", __name__, url_prefix="/insights")


@bp.get("/")
def index():
    return render_template_string('{% extends "base.html" %}{% block content %}'
                                  '<p>준비 중입니다.</p>{% endblock %}')
