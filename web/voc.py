"""The weekly VOC summary as one page with charts (`/insights/voc`), and its downloads.

The page is standalone HTML (no base template, no script), so `suggester voc --format html`
writes the very same page to a file that opens anywhere; served by the app it links the app's
stylesheet, written to a file it carries the stylesheet inline.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2
from flask import Blueprint, Response, current_app, request

from suggester.operations.voc import VocReport, to_csv, to_markdown, weekly_report
from suggester.records.insights import SIDE_NAMES
from suggester.records.voc import current_week
from web.auth import login_required
from web.charts import daily_types_chart

bp = Blueprint("voc", __name__, url_prefix="/insights/voc")
_HERE = Path(__file__).parent
FORMATS = ("html", "md", "csv")


@functools.cache
def _environment() -> jinja2.Environment:
    """The page's own template environment (also used outside a Flask app, by the CLI)."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(_HERE / "templates"),
                              autoescape=True)


def render_html(report: VocReport, *, stylesheet: str | None = None) -> str:
    """The summary page; `stylesheet` is a URL to link, or None to carry the CSS inline."""
    inline = None if stylesheet else (_HERE / "static" / "app.css").read_text(encoding="utf-8")
    charts = {side: daily_types_chart(daily, width=640, height=220)
              for side, daily in report.daily_by_side.items()}
    return _environment().get_template("voc.html").render(
        report=report, charts=charts, side_names=SIDE_NAMES, stylesheet=stylesheet,
        inline_css=inline, served=stylesheet is not None)


def render(report: VocReport, fmt: str, *, stylesheet: str | None = None) -> str:
    if fmt == "md":
        return to_markdown(report)
    if fmt == "csv":
        return to_csv(report)
    return render_html(report, stylesheet=stylesheet)


@bp.get("/")
@login_required()
def summary():
    week = request.args.get("week") or current_week()
    fmt = request.args.get("format", "html")
    if fmt not in FORMATS:
        fmt = "html"
    try:
        report = weekly_report(current_app.extensions["suggester.store"], week)
    except ValueError:
        return Response("주는 2026-W49 형식으로 입력해 주세요.", status=400,
                        mimetype="text/plain")
    from flask import url_for

    body = render(report, fmt, stylesheet=url_for("static", filename="app.css"))
    if fmt == "html":
        return Response(body, mimetype="text/html")
    mimetype = "text/csv" if fmt == "csv" else "text/markdown"
    return Response(body, mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="voc-{report.week}.{fmt}"'})
