"""The weekly VOC: sides that add up, falling types and their week, disputes, correction drift."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from insights_data import log_at, log_many

from suggester.operations.voc import to_csv, to_markdown, weekly_report
from suggester.records.insights import SIDES, Insights, Window
from suggester.records.store import Store
from suggester.records.voc import VocQueries, changed_week, iso_week, week_window

WEEK = "2026-W49"  # Monday 30 November to Sunday 6 December 2026
MONDAY = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # 10:00 KST


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        return Store(tmp_path / "suggester.sqlite3")
    return Store(request.getfixturevalue("postgres_url"))


def test_a_week_is_monday_to_sunday_in_korea():
    window = week_window(WEEK)
    assert window.days[0] == date(2026, 11, 30) and window.days[-1] == date(2026, 12, 6)
    assert window.since == datetime(2026, 11, 29, 15, 0, tzinfo=UTC)
    assert iso_week(date(2026, 12, 6)) == WEEK and iso_week(date(2026, 12, 7)) == "2026-W50"
    with pytest.raises(ValueError, match="2026-W49"):
        week_window("last week")


def test_the_buyer_and_seller_split_sums_to_the_total(store):
    rows = []
    for n in range(30):
        side = SIDES[n % 3]
        types = (("배송",), ("정산·수수료",), ("P2P분쟁",), ())[n % 4]
        rows.append((MONDAY + timedelta(hours=n * 5), {"types": types, "audience": side,
                                                       "grounded": n % 5 != 0}))
    log_many(store, rows)
    insights, window = Insights(store), week_window(WEEK)
    whole = insights.daily_types(window)
    sides = {side: insights.daily_types(window, side=side) for side in SIDES}
    assert sides["buyer"].total("배송") > 0 and sides["seller"].total("배송") > 0
    for category in whole.categories:
        for day in window.days:
            assert sum(s.counts.get((day, category), 0) for s in sides.values()) == \
                whole.counts.get((day, category), 0)
    gaps = sum(g.size for g in insights.knowledge_gaps(window))
    assert gaps == sum(g.size for side in SIDES
                       for g in insights.knowledge_gaps(window, side=side)) == 6
    report = weekly_report(store, WEEK)
    assert report.total == 30
    assert sum(n for side in SIDES for _, n in report.top_types(side)) <= 30


def test_a_type_that_drops_is_falling_and_the_week_it_changed_is_named(store):
    rows = []
    for week in range(1, 5):  # four busy weeks of 교환 before W49 …
        rows += [(MONDAY - timedelta(weeks=week, hours=n), {"types": ("교환",)})
                 for n in range(6)]
    rows.append((MONDAY + timedelta(days=1), {"types": ("교환",)}))  # … then one
    rows.append((MONDAY - timedelta(weeks=6), {"types": ("배송",)}))  # an older log
    log_many(store, rows)
    queries, window = VocQueries(store), week_window(WEEK)
    trends = {t.category: t for t in queries.trends(now=window.until).rows}
    assert trends["교환"].falling and not trends["교환"].rising
    series = queries.type_weeks(window)["교환"]
    assert [week for week, _ in series][-1] == WEEK
    assert changed_week(series, falling=True) == WEEK
    assert changed_week(series, falling=False) is None
    report = weekly_report(store, WEEK)
    assert [(c.category, c.week) for c in report.falling] == [("교환", WEEK)]


def test_disputes_show_the_escalated_share_and_the_articles_that_answered(store):
    log_at(store, MONDAY, types=("사기·안전",), flags=("fraud",), cited=("fraud-report",))
    log_at(store, MONDAY, types=("사기·안전",), cited=("fraud-report", "safe-payment"))
    log_at(store, MONDAY, types=("P2P분쟁",), cited=("p2p-dispute",))
    log_at(store, MONDAY, types=("배송",), flags=("fraud",))  # not a dispute type
    disputes = {d.category: d for d in VocQueries(store).disputes(week_window(WEEK))}
    assert disputes["사기·안전"].inquiries == 2 and disputes["사기·안전"].escalated_share == 0.5
    assert disputes["사기·안전"].articles[0] == ("fraud-report", 2)
    assert disputes["P2P분쟁"].escalated == 0 and disputes["상품상태"].inquiries == 0


def test_the_weekly_share_of_corrected_types_shows_drift(store):
    earlier = [log_at(store, MONDAY - timedelta(weeks=1), types=("배송",)) for _ in range(4)]
    this_week = [log_at(store, MONDAY, types=("배송",)) for _ in range(4)]
    store.record_feedback(earlier[0], verdict="used", corrected_types=["교환"])
    for suggestion in this_week[:3]:
        store.record_feedback(suggestion, verdict="used", corrected_types=["교환"])
    weeks = {w.week: w for w in VocQueries(store).correction_weeks(week_window(WEEK))}
    assert weeks["2026-W48"].share == 0.25 and weeks[WEEK].share == 0.75
    assert weeks[WEEK].by_type["배송"] == (4, 3)
    assert len(weeks) == 8
    report = weekly_report(store, WEEK)
    assert report.correction_types() == ["배송"]
    assert "2026-W49 유형별: 배송 3/4" in to_markdown(report)


def test_the_summary_writes_markdown_and_csv(store):
    from suggester.records.features import FeatureRecords

    # A request group last asked for now, this week's summary lists it only for this week.
    FeatureRecords(store).add("s1", representative="=찜 목록을 폴더로 나눌 수 있게 해 주세요",
                              vector=[1.0, 0.0], group_id=None)
    this_week = datetime.now(UTC).astimezone(week_window(WEEK).tz).date()
    report = weekly_report(store, iso_week(this_week))
    markdown = to_markdown(report)
    assert markdown.startswith(f"# 주간 VOC {report.week}") and "## 기능 제안" in markdown
    assert "찜 목록을 폴더로" in markdown
    table = to_csv(report)
    assert "feature_request,,'=찜 목록을 폴더로" in table  # defused for spreadsheets
    assert "찜 목록" not in to_markdown(weekly_report(store, "2026-W40"))  # not asked then
    assert table.splitlines()[0].lstrip("\ufeff") == "section,side,item,value,detail"


def test_the_sides_are_checked(store):
    with pytest.raises(ValueError, match="side"):
        Insights(store).daily_types(Window.last_days(7), side="robot")


# -- the page and the command ----------------------------------------------------------------

def test_the_summary_page_has_a_chart_per_side_and_carries_its_css(store):
    from web.voc import render_html

    log_at(store, MONDAY, types=("배송",), audience="buyer")
    log_at(store, MONDAY, types=("정산·수수료",), audience="seller")
    page = render_html(weekly_report(store, WEEK))
    assert page.count("<svg viewBox") == 2 and "<style>" in page
    assert 'id="side-buyer"' in page and "정산·수수료" in page
    assert "<script" not in page


def test_the_voc_command_writes_each_format(tmp_path):
    from click.testing import CliRunner

    from suggester.cli import main

    data = tmp_path / "data"
    with Store(data / "suggester.sqlite3") as store:
        log_at(store, MONDAY, types=("배송",), audience="seller")
    runner = CliRunner()
    for fmt, marker in (("md", "# 주간 VOC 2026-W49"), ("csv", "top_type,seller,배송,1"),
                        ("html", "<svg viewBox")):
        result = runner.invoke(main, ["--data-dir", str(data), "voc", "--week", WEEK,
                                      "--format", fmt])
        assert result.exit_code == 0, result.output
        assert marker in result.output
    bad = runner.invoke(main, ["--data-dir", str(data), "voc", "--week", "soon"])
    assert bad.exit_code == 2 and "2026-W49" in bad.output
