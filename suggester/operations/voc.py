"""The weekly VOC summary: one week's figures by side, ready for the weekly meeting.

`weekly_report` gathers them (top types per side, rising and falling types with the week they
changed, knowledge gaps per side, feature requests, incidents, P2P disputes, classification
corrections); `to_markdown` and `to_csv` write them. The HTML page with charts is drawn by the
web app (`web/voc.py`), from the same report.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from suggester.records.features import FeatureGroup, FeatureRecords
from suggester.records.incidents import Incident, IncidentRecords
from suggester.records.insights import SIDE_NAMES, SIDES, DailyTypes, GapGroup, Window
from suggester.records.store import Store
from suggester.records.voc import (
    CorrectionWeek,
    DisputeType,
    VocQueries,
    changed_week,
    week_window,
)

TOP_TYPES = 5
GAPS_PER_SIDE = 5


@dataclass(frozen=True, kw_only=True)
class Change:
    category: str
    this_week: int
    weekly_average: float
    week: str | None  # the ISO week it jumped or dropped


@dataclass(frozen=True, kw_only=True)
class VocReport:
    week: str
    window: Window
    total: int
    daily_by_side: dict[str, DailyTypes]
    rising: list[Change]
    falling: list[Change]
    gaps_by_side: dict[str, list[GapGroup]]
    feature_requests: list[FeatureGroup]  # groups asked for again this week
    incidents: list[Incident]
    disputes: list[DisputeType]
    corrections: list[CorrectionWeek]

    def correction_types(self) -> list[str]:
        """The analyzer's types seen in the correction weeks, most suggested first."""
        totals: dict[str, int] = {}
        for week in self.corrections:
            for category, (n, _) in week.by_type.items():
                totals[category] = totals.get(category, 0) + n
        return sorted(totals, key=lambda c: (-totals[c], c))

    def top_types(self, side: str) -> list[tuple[str, int]]:
        daily = self.daily_by_side[side]
        return [(c, daily.total(c)) for c in daily.categories[:TOP_TYPES]]


def weekly_report(store: Store, week: str) -> VocReport:
    """Every figure of the week's VOC summary (`week` like 2026-W49, Korean time)."""
    window = week_window(week)
    queries = VocQueries(store)
    daily = {side: queries.daily_types(window, side=side) for side in SIDES}
    trends = queries.trends(now=window.until)
    weeks = queries.type_weeks(window)

    def change(trend) -> Change:
        return Change(category=trend.category, this_week=trend.this_week,
                      weekly_average=trend.weekly_average,
                      week=changed_week(weeks.get(trend.category, []), falling=trend.falling))

    gaps = {side: queries.knowledge_gaps(window, side=side)[:GAPS_PER_SIDE]
            for side in ("buyer", "seller")}
    requests = [g for g in FeatureRecords(store).groups(with_examples=True)
                if g.last_seen is not None and window.since <= g.last_seen < window.until]
    return VocReport(
        week=week, window=window,
        total=sum(sum(d.total(c) for c in d.categories) for d in daily.values()),
        daily_by_side=daily,
        rising=[change(t) for t in trends.rows if t.rising],
        falling=[change(t) for t in trends.rows if t.falling],
        gaps_by_side=gaps, feature_requests=requests,
        incidents=IncidentRecords(store).between(window.since, window.until),
        disputes=queries.disputes(window), corrections=queries.correction_weeks(window))


def to_markdown(report: VocReport) -> str:
    """The summary as Markdown, to paste into the meeting notes."""
    return "\n".join(_markdown(report)) + "\n"


def _markdown(report: VocReport) -> Iterator[str]:
    first, last = report.window.days[0], report.window.days[-1]
    yield f"# 주간 VOC {report.week} ({first:%m/%d}–{last:%m/%d}, 문의 {report.total}건)"
    yield ""
    yield "## 구분별 상위 유형"
    for side in SIDES:
        top = ", ".join(f"{c} {n}건" for c, n in report.top_types(side)) or "없음"
        yield f"- **{SIDE_NAMES[side]}**: {top}"
    for title, rows in (("## 급증한 유형", report.rising), ("## 급감한 유형", report.falling)):
        yield ""
        yield title
        yield from (f"- {r.category}: 이번 주 {r.this_week}건 (이전 주 평균 "
                    f"{r.weekly_average:.1f}건, 변화 {r.week or '—'})" for r in rows)
        if not rows:
            yield "- 없음"
    yield ""
    yield "## 지식 공백 (답할 문서가 없던 문의)"
    for side, groups in report.gaps_by_side.items():
        for group in groups:
            yield f"- [{SIDE_NAMES[side]}] {group.questions[0]} ({group.size}건, {group.category})"
    yield ""
    yield "## 기능 제안"
    for group in report.feature_requests:
        yield f"- {group.representative} ({group.requests}건, {group.status})"
    if not report.feature_requests:
        yield "- 없음"
    yield ""
    yield "## 장애"
    for incident in report.incidents:
        state = "진행 중" if incident.open else f"복구: {incident.resolution_note}"
        yield f"- #{incident.id} {incident.symptom}: 문의 {incident.inquiries}건, {state}"
    if not report.incidents:
        yield "- 없음"
    yield ""
    yield "## P2P 분쟁"
    for d in report.disputes:
        articles = ", ".join(a for a, _ in d.articles) or "—"
        yield (f"- {d.category}: {d.inquiries}건, 에스컬레이션 {d.escalated_share:.0%}, "
               f"답변 근거 {articles}")
    yield ""
    yield "## 유형 수정 비율 (분류 품질)"
    for week in report.corrections:
        yield f"- {week.week}: {week.share:.1%} ({week.corrected}/{week.suggestions})"
    latest = report.corrections[-1] if report.corrections else None
    if latest and latest.by_type:
        yield f"- {latest.week} 유형별: " + ", ".join(
            f"{t} {c}/{n}" for t, (n, c) in latest.by_type.items() if n)


def to_csv(report: VocReport) -> str:
    """The summary as one CSV table: section, side, item, value, detail."""
    out = io.StringIO()
    out.write("\ufeff")  # so Excel opens the Korean as UTF-8
    writer = csv.writer(out)
    writer.writerow(["section", "side", "item", "value", "detail"])
    for side in SIDES:
        writer.writerows(["top_type", side, c, n, ""] for c, n in report.top_types(side))
    for name, rows in (("rising", report.rising), ("falling", report.falling)):
        writer.writerows([name, "", r.category, r.this_week, r.week or ""] for r in rows)
    for side, groups in report.gaps_by_side.items():
        writer.writerows(["gap", side, spreadsheet_cell(g.questions[0]), g.size, g.category]
                         for g in groups)
    writer.writerows(["feature_request", "", spreadsheet_cell(g.representative), g.requests,
                      g.status] for g in report.feature_requests)
    writer.writerows(["incident", "", i.symptom, i.inquiries, "open" if i.open else "closed"]
                     for i in report.incidents)
    writer.writerows(["dispute", "", d.category, d.inquiries, f"{d.escalated_share:.4f}"]
                     for d in report.disputes)
    writer.writerows(["corrected_share", "", w.week, f"{w.share:.4f}", w.suggestions]
                     for w in report.corrections)
    return out.getvalue()


# Spreadsheets run cells starting with these as formulas; customers write the inquiries.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: object) -> object:
    """Defuse text a spreadsheet would run as a formula (CSV injection); other values pass."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
