"""The insights (VOC) page and its CSV exports, over the suggestion log."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from datetime import datetime

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)

from suggester.errors import InputError, SearchIndexError
from suggester.operations.voc import spreadsheet_cell
from suggester.records.insights import KST, NO_CITATION, SIDE_NAMES, SIDES, Insights, Window
from suggester.records.voc import VocQueries
from web.auth import current_user, login_required, signed_in_as
from web.charts import daily_types_chart

bp = Blueprint("insights", __name__, url_prefix="/insights")

PERIODS = (7, 30, 90)
DEFAULT_DAYS = 30
GAPS_SHOWN = 20
EXAMPLES_SHOWN = 4
RECENT_CORRECTIONS = 30
VERDICT_NAMES = {"used": "그대로 사용", "edited": "수정 후 사용", "rejected": "사용 안 함"}


def _insights() -> VocQueries:
    return VocQueries(current_app.extensions["suggester.store"])


def _window() -> Window:
    days = request.args.get("days", DEFAULT_DAYS, type=int)
    return Window.last_days(days if days in PERIODS else DEFAULT_DAYS)


def _titles() -> dict[str, str]:
    """Article titles by id from the live index; ids alone when the index is unavailable."""
    try:
        chunks = current_app.extensions["suggester.service"].retriever.snapshot().chunks
    except SearchIndexError:
        return {}
    return {chunk.article_id: chunk.title for chunk in chunks.values()}


def _side() -> str | None:
    """The side the figures are limited to (?side=buyer), or None for everyone."""
    side = request.args.get("side")
    return side if side in SIDES else None


@bp.get("/")
@login_required()
def index():
    window, insights, side = _window(), _insights(), _side()
    author = request.args.get("author")
    gaps = insights.knowledge_gaps(window, side=side)
    return render_template(
        "insights.html", window=window, periods=PERIODS, days=len(window.days),
        side=side, side_names=SIDE_NAMES, can_edit=signed_in_as("editor"),
        disputes=insights.disputes(window),
        summary=insights.summary(window),
        chart=daily_types_chart(insights.daily_types(window, side=side)),
        trends=insights.trends(now=window.until, side=side), gaps=gaps[:GAPS_SHOWN],
        gap_total=len(gaps),
        examples_shown=EXAMPLES_SHOWN, acceptance=insights.acceptance(window),
        corrections=insights.corrections(window), titles=_titles(),
        verdict_names=VERDICT_NAMES, no_citation=NO_CITATION,
        people=insights.corrections_by_person(window), author=author,
        recent=insights.recent_corrections(window, author=author, limit=RECENT_CORRECTIONS),
        may_undo=signed_in_as("editor"))


@bp.post("/corrections/<int:feedback_id>/undo")
@login_required("editor")
def undo_correction(feedback_id: int):
    """Undo an agent's type correction: the classifier forgets it at once."""
    user = current_user()
    assert user is not None
    try:
        current_app.extensions["suggester.service"].undo_correction(feedback_id,
                                                                    by=user.username)
    except InputError as exc:
        flash(exc.korean, "error")
    else:
        flash("유형 수정을 취소했습니다. 분류기는 이 수정을 더 이상 따르지 않습니다.", "ok")
    days = request.form.get("days", DEFAULT_DAYS, type=int)
    return redirect(url_for("insights.index", days=days, author=request.form.get("author") or None,
                            _anchor="by-person"))


# -- CSV exports: one function per table, each returning the header and the rows ---------------

Rows = tuple[list[str], Iterable[list[object]]]


def _daily_rows(window: Window, insights: Insights) -> Rows:
    daily = insights.daily_types(window)
    rows = ([day.isoformat(), category, daily.counts.get((day, category), 0)]
            for day in daily.days for category in daily.categories)
    return ["date", "type", "inquiries"], rows


def _rising_rows(window: Window, insights: Insights) -> Rows:
    trends = insights.trends(now=window.until)
    rows = ([t.category, t.this_week, round(t.weekly_average, 2),
             "" if t.ratio is None else round(t.ratio, 2), int(t.rising),
             round(trends.baseline_weeks, 2)] for t in trends.rows)
    return ["type", "last_7_days", "weekly_average_before", "ratio", "rising",
            "baseline_weeks"], rows


def _gap_rows(window: Window, insights: Insights) -> Rows:
    rows = ([n, g.size, g.category, g.questions[0], _local(g.first_seen), _local(g.last_seen),
             " | ".join(g.questions[1:11])]
            for n, g in enumerate(insights.knowledge_gaps(window), start=1))
    return ["group", "inquiries", "type", "representative", "first_seen", "last_seen",
            "other_examples"], rows


def _acceptance_rows(window: Window, insights: Insights) -> Rows:
    titles = _titles()
    rows = ([a.article_id, titles.get(a.article_id, ""), a.used, a.edited, a.rejected, a.total,
             round(a.accepted_rate, 4)] for a in insights.acceptance(window))
    return ["article_id", "title", "used", "edited", "rejected", "total", "accepted_rate"], rows


def _correction_rows(window: Window, insights: Insights) -> Rows:
    rows = ([c.category, c.predicted, c.removed, round(c.removed_rate, 4), c.added,
             "; ".join(f"{t} {n}" for t, n in c.replaced_by)]
            for c in insights.corrections(window))
    return ["type", "predicted", "removed", "removed_rate", "added", "replaced_by"], rows


TABLES: dict[str, Callable[[Window, Insights], Rows]] = {
    "daily": _daily_rows, "rising": _rising_rows, "gaps": _gap_rows,
    "acceptance": _acceptance_rows, "corrections": _correction_rows,
}


@bp.get("/export/<table>.csv")
@login_required()
def export(table: str):
    build = TABLES.get(table)
    if build is None:
        abort(404)
    window = _window()
    header, rows = build(window, _insights())
    out = io.StringIO()
    out.write("\ufeff")  # so Excel opens the Korean as UTF-8
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([spreadsheet_cell(value) for value in row] for row in rows)
    name = f"insights-{table}-{len(window.days)}d-{window.until.astimezone(KST):%Y%m%d}.csv"
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.app_template_filter("kst")
def _local(moment: datetime) -> str:
    """Korean local time, as agents read it."""
    return moment.astimezone(KST).strftime("%Y-%m-%d %H:%M")
