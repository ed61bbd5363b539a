"""Insights aggregates over the suggestion log: rows are written with explicit timestamps."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from insights_data import log_at, log_many

from suggester.records.insights import NO_CITATION, Insights, Window, bigrams, group_similar
from suggester.records.store import Store, StoreError

NOW = datetime(2024, 5, 31, 3, 0, tzinfo=UTC)  # 12:00 KST on Friday 31 May


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path: Path) -> Store:
    """The same figures from a SQLite file and from a PostgreSQL database."""
    if request.param == "sqlite":
        return Store(tmp_path / "suggester.sqlite3")
    return Store(request.getfixturevalue("postgres_url"))


@pytest.fixture
def insights(store: Store) -> Insights:
    return Insights(store)


def days_ago(days: float, hours: float = 0) -> datetime:
    return NOW - timedelta(days=days, hours=hours)


# -- windows and daily counts -------------------------------------------------------------------

def test_window_covers_whole_korean_days():
    window = Window.last_days(7, now=NOW)
    assert window.days[0] == date(2024, 5, 25) and window.days[-1] == date(2024, 5, 31)
    assert window.since == datetime(2024, 5, 24, 15, 0, tzinfo=UTC)  # 00:00 KST on 25 May
    with pytest.raises(ValueError):
        Window.last_days(0, now=NOW)


def test_daily_types_counts_each_inquiry_once_on_its_korean_day(store, insights):
    log_at(store, datetime(2024, 5, 29, 14, 59, tzinfo=UTC))          # 23:59 KST on the 29th
    log_at(store, datetime(2024, 5, 29, 15, 0, tzinfo=UTC))           # 00:00 KST on the 30th
    log_at(store, datetime(2024, 5, 30, 1, 0, tzinfo=UTC), types=("반품·환불", "배송"))
    log_at(store, datetime(2024, 5, 1, tzinfo=UTC))                   # before the window
    log_at(store, days_ago(1), types=())
    daily = insights.daily_types(Window.last_days(7, now=NOW))
    assert daily.series("배송")[-3:] == [1, 1, 0]
    assert daily.counts[(date(2024, 5, 30), "반품·환불")] == 1  # the first type only
    assert daily.total("미분류") == 1
    assert daily.categories[0] == "배송" and len(daily.days) == 7


def test_a_correction_decides_an_inquirys_type(store, insights):
    suggestion = log_at(store, days_ago(1), types=("배송",))
    store.record_feedback(suggestion, verdict="used", corrected_types=["주문취소"])
    daily = insights.daily_types(Window.last_days(7, now=NOW))
    assert daily.total("주문취소") == 1 and daily.total("배송") == 0


def test_an_undone_correction_no_longer_decides_the_type(store, insights):
    suggestion = log_at(store, days_ago(1), types=("배송",))
    wrong = store.record_feedback(suggestion, verdict="used", corrected_types=["주문취소"])
    store.undo_correction(wrong, by="editor")
    daily = insights.daily_types(Window.last_days(7, now=NOW))
    assert daily.total("배송") == 1 and daily.total("주문취소") == 0
    assert insights.summary(Window.last_days(7, now=NOW)).corrected == 0


def test_corrections_are_counted_and_listed_by_person(store, insights):
    first = log_at(store, datetime.now(UTC), inquiry="배송 언제 와요?", types=("배송",))
    second = log_at(store, datetime.now(UTC), inquiry="취소할래요", types=("배송",))
    store.record_feedback(first, verdict="used", corrected_types=["주문취소"], author="minji")
    undone = store.record_feedback(second, verdict="used", corrected_types=["주문취소"],
                                   author="minji")
    store.record_feedback(second, verdict="used", corrected_types=["교환"],
                          author="token:helpdesk")
    store.record_feedback(first, verdict="used", author="bora")  # no correction
    store.undo_correction(undone, by="editor")
    window = Window.last_days(7)  # feedback is stamped with the real time
    people = insights.corrections_by_person(window)
    assert [(p.author, p.corrections, p.undone) for p in people] == \
        [("minji", 2, 1), ("token:helpdesk", 1, 0)]
    recent = insights.recent_corrections(window)
    assert [(c.author, c.inquiry, c.predicted, c.corrected, c.undone_by) for c in recent] == [
        ("token:helpdesk", "취소할래요", ["배송"], ["교환"], None),
        ("minji", "취소할래요", ["배송"], ["주문취소"], "editor"),
        ("minji", "배송 언제 와요?", ["배송"], ["주문취소"], None)]
    assert [c.author for c in insights.recent_corrections(window, author="token:helpdesk")] == \
        ["token:helpdesk"]


# -- rising types -------------------------------------------------------------------------------

def test_a_type_rises_when_this_week_doubles_its_weekly_average(store, insights):
    log_at(store, days_ago(40), types=("교환",))  # the log is older than the five weeks
    for week in range(1, 5):
        log_at(store, days_ago(7 * week + 2), types=("배송",))
        for _ in range(2):
            log_at(store, days_ago(7 * week + 3), types=("반품·환불",))
    for _ in range(5):
        log_at(store, days_ago(1), types=("배송",))
    for _ in range(2):
        log_at(store, days_ago(2), types=("반품·환불",))
        log_at(store, days_ago(2), types=("쿠폰·포인트",))  # new, but too few to call a surge
    trends = insights.trends(now=NOW)
    by_type = {t.category: t for t in trends.rows}
    assert trends.baseline_weeks == 4.0
    assert by_type["배송"].rising and by_type["배송"].weekly_average == pytest.approx(1.0)
    assert by_type["배송"].ratio == pytest.approx(5.0)
    assert not by_type["반품·환불"].rising and not by_type["쿠폰·포인트"].rising
    assert trends.rows[0].category == "배송"


def test_a_young_log_is_averaged_over_the_weeks_it_has(store, insights):
    log_at(store, days_ago(7 + 14), types=("결제",))  # two weeks before this week began
    log_at(store, days_ago(8), types=("결제",))
    for _ in range(3):
        log_at(store, days_ago(1), types=("결제",))
    trends = insights.trends(now=NOW)
    assert trends.baseline_weeks == pytest.approx(2.0)
    row = trends.rows[0]
    assert row.weekly_average == pytest.approx(1.0) and row.rising


def test_nothing_rises_without_a_week_of_history(store, insights):
    for _ in range(6):
        log_at(store, days_ago(1), types=("결제",))
    trends = insights.trends(now=NOW)
    assert not trends.comparable
    assert [(t.category, t.this_week, t.rising) for t in trends.rows] == [("결제", 6, False)]


# -- knowledge gaps -----------------------------------------------------------------------------

def test_ungrounded_inquiries_are_grouped_by_wording(store, insights):
    for text in ("중고차도 팔 수 있나요?", "자동차도 팔 수 있어요?", "중고차도 팔 수 있을까요"):
        log_at(store, days_ago(2), inquiry=text, grounded=False, cited=())
    log_at(store, days_ago(1), inquiry="비트코인으로 결제 되나요", grounded=False, cited=())
    log_at(store, days_ago(1), inquiry="중고차도 팔 수 있나요?", grounded=True)
    log_at(store, days_ago(60), inquiry="중고차도 팔 수 있나요?", grounded=False, cited=())
    gaps = insights.knowledge_gaps(Window.last_days(30, now=NOW))
    assert [g.size for g in gaps] == [3, 1]
    assert set(gaps[0].questions) == {"중고차도 팔 수 있나요?", "자동차도 팔 수 있어요?",
                                      "중고차도 팔 수 있을까요"}
    assert gaps[1].questions == ["비트코인으로 결제 되나요"]
    assert gaps[0].channels == {"chat": 3}


def test_grouping_ignores_endings_masks_and_spacing():
    assert bigrams("[전화번호] 로 연락 주세요!") == bigrams("로연락 주세요")
    texts = ["오늘 서울 날씨 어때요?", "서울 날씨 알려주세요", "반려동물 용품도 팔 수 있나요?",
             "중고차도 팔 수 있나요?", "해외 배송 되나요?", "해외로도 배송해 주시나요", "환불",
             "환불 언제 돼요"]
    groups = [[texts[i] for i in group] for group in group_similar(texts)]
    assert ["오늘 서울 날씨 어때요?", "서울 날씨 알려주세요"] in groups
    assert ["해외 배송 되나요?", "해외로도 배송해 주시나요"] in groups
    assert ["반려동물 용품도 팔 수 있나요?"] in groups and ["환불"] in groups


# -- acceptance per article ---------------------------------------------------------------------

def test_acceptance_counts_the_latest_verdict_per_cited_article(store, insights):
    both = log_at(store, days_ago(1), cited=("refund-timing", "refund-timing", "fee-policy"))
    store.record_feedback(both, verdict="rejected", final_text="다른 답")
    store.record_feedback(both, verdict="edited", final_text="고친 답")    # the latest wins
    corrected = log_at(store, days_ago(1), cited=("refund-timing",))
    store.record_feedback(corrected, verdict="rejected", final_text="초안")
    # A type correction sent on its own (verdict 'used', no text) is not a verdict.
    store.record_feedback(corrected, verdict="used", corrected_types=["반품·환불"])
    holding = log_at(store, days_ago(1), cited=(), grounded=False)
    store.record_feedback(holding, verdict="used", final_text="보류 답변")
    log_at(store, days_ago(1), cited=("refund-timing",))                 # no verdict yet
    rows = {a.article_id: a for a in insights.acceptance(Window.last_days(7, now=NOW))}
    assert (rows["refund-timing"].edited, rows["refund-timing"].rejected) == (1, 1)
    assert rows["refund-timing"].total == 2 and rows["refund-timing"].accepted_rate == 0.5
    assert rows["fee-policy"].edited == 1 and rows["fee-policy"].total == 1
    assert rows[NO_CITATION].used == 1


def test_summary_counts_the_window(store, insights):
    judged = log_at(store, days_ago(1))
    store.record_feedback(judged, verdict="used", final_text="초안")
    corrected = log_at(store, days_ago(1), grounded=False, cited=())
    store.record_feedback(corrected, verdict="used", corrected_types=["결제"])
    log_at(store, days_ago(40))
    summary = insights.summary(Window.last_days(7, now=NOW))
    assert (summary.suggestions, summary.grounded, summary.judged, summary.corrected) == \
        (2, 1, 1, 1)
    assert summary.verdicts == {"used": 1, "edited": 0, "rejected": 0}


# -- classification corrections -----------------------------------------------------------------

def test_corrections_count_removed_and_added_types(store, insights):
    for _ in range(3):
        log_at(store, days_ago(1), types=("배송",))
    wrong = log_at(store, days_ago(1), types=("배송", "결제"))
    store.record_feedback(wrong, verdict="used", corrected_types=["배송"])
    store.record_feedback(wrong, verdict="used", corrected_types=["주문취소"])  # latest wins
    rows = {c.category: c for c in insights.corrections(Window.last_days(7, now=NOW))}
    assert (rows["배송"].predicted, rows["배송"].removed) == (4, 1)
    assert rows["배송"].removed_rate == pytest.approx(0.25)
    assert rows["배송"].replaced_by == [("주문취소", 1)]
    assert (rows["결제"].predicted, rows["결제"].removed) == (1, 1)
    assert (rows["주문취소"].predicted, rows["주문취소"].added) == (0, 1)


# -- reading safely, at scale -------------------------------------------------------------------

def test_insights_read_only(tmp_path):
    insights = Insights(Store(tmp_path / "suggester.sqlite3"))
    with insights._read() as db, pytest.raises(sqlite3.OperationalError, match="readonly"):
        db.execute("DELETE FROM suggestions")


def test_a_missing_database_says_what_to_do(tmp_path):
    with pytest.raises(StoreError, match="start the app once"):
        Insights(tmp_path / "nope.sqlite3").summary(Window.last_days(7, now=NOW))


def test_thousands_of_rows_aggregate_quickly_and_exactly(store, insights):
    log_many(store, [(days_ago(n % 29, hours=1 + n % 23),
                      {"types": (("배송", "결제", "교환")[n % 3],), "grounded": n % 4 != 0,
                       "inquiry": f"질문 {n % 40}번 배송 관련"}) for n in range(1200)])
    window = Window.last_days(30, now=NOW)
    started = time.perf_counter()
    daily = insights.daily_types(window)
    gaps = insights.knowledge_gaps(window)
    summary = insights.summary(window)
    insights.trends(now=NOW)
    insights.acceptance(window)
    insights.corrections(window)
    assert time.perf_counter() - started < 3
    assert sum(daily.total(c) for c in daily.categories) == summary.suggestions
    assert sum(g.size for g in gaps) == summary.suggestions - summary.grounded == 300
