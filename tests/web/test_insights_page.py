"""The insights page and its CSV exports, over a database written with explicit times."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from insights_data import log_at

from web.insights import TABLES

from conftest import add_users, sign_in

XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"


@pytest.fixture
def agent(app, client):
    add_users(app)
    sign_in(client, "agent")
    return client


@pytest.fixture
def store(app):
    return app.extensions["suggester.store"]


def hours_ago(hours: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)


def read_csv(response) -> list[list[str]]:
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")  # Excel needs the BOM to read UTF-8 Korean
    return list(csv.reader(io.StringIO(text[1:])))


def test_an_empty_log_gives_a_page_that_explains_itself(agent):
    response = agent.get("/insights/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "이 기간에 기록된 문의가 없습니다" in html
    assert "아직 상담원 판단" in html and "<svg viewBox" not in html


def test_the_page_shows_every_table(agent, store):
    for n in range(4):
        log_at(store, hours_ago(2 + n), types=("배송",), cited=("off-platform-payment",))
    for n in range(2):
        log_at(store, hours_ago(30 + n), types=("결제",), grounded=False, cited=(),
               inquiry="비트코인으로 결제 되나요")
    judged = log_at(store, hours_ago(1), cited=("off-platform-payment",))
    store.record_feedback(judged, verdict="edited", final_text="고친 답",
                          corrected_types=["사기·안전"])
    html = agent.get("/insights/?days=7").get_data(as_text=True)
    assert html.count("<rect x=") >= 2  # bars on two days
    assert "비트코인으로 결제 되나요" in html and "2건" in html
    assert "안전결제 외 거래 금지 정책" in html  # the article's title, from the index
    assert 'href="/articles/off-platform-payment"' in html
    assert "사기·안전" in html
    assert 'aria-current="page">최근 7일' in html


def test_customer_text_is_escaped_on_the_page(agent, store):
    log_at(store, hours_ago(1), inquiry=XSS, grounded=False, cited=())
    html = agent.get("/insights/").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert" not in html and "<img src=x" not in html


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_table_exports_as_csv(agent, store, table):
    log_at(store, hours_ago(1), grounded=False, cited=())
    judged = log_at(store, hours_ago(2))
    store.record_feedback(judged, verdict="used", final_text="초안", corrected_types=["결제"])
    response = agent.get(f"/insights/export/{table}.csv?days=7")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert f"insights-{table}-7d-" in response.headers["Content-Disposition"]
    rows = read_csv(response)
    assert len(rows) >= 2 and all(len(row) == len(rows[0]) for row in rows)


def test_csv_cells_cannot_run_as_formulas(agent, store):
    log_at(store, hours_ago(1), inquiry="=HYPERLINK(\"http://x\")", grounded=False, cited=())
    rows = read_csv(agent.get("/insights/export/gaps.csv"))
    assert rows[1][3] == "'=HYPERLINK(\"http://x\")"


def test_the_daily_export_has_one_row_per_day_and_type(agent, store):
    log_at(store, hours_ago(1), types=("배송",))
    log_at(store, hours_ago(1), types=("결제",))
    rows = read_csv(agent.get("/insights/export/daily.csv?days=7"))
    assert rows[0] == ["date", "type", "inquiries"]
    assert len(rows) == 1 + 7 * 2
    assert sum(int(row[2]) for row in rows[1:]) == 2


def test_unknown_exports_and_periods(agent):
    assert agent.get("/insights/export/users.csv").status_code == 404
    html = agent.get("/insights/?days=1000").get_data(as_text=True)
    assert 'aria-current="page">최근 30일' in html


def test_the_insights_page_splits_by_side_and_links_the_weekly_summary(app, client):
    add_users(app)
    sign_in(client, "agent")
    page = client.get("/insights/?side=seller").get_data(as_text=True)
    assert 'aria-current="page">판매자' in page and 'id="voc-report"' in page
    summary = client.get("/insights/voc/?week=2026-W49")
    assert summary.status_code == 200 and "주간 VOC" in summary.get_data(as_text=True)
    assert client.get("/insights/voc/?week=2026-W49&format=csv").mimetype == "text/csv"
    assert client.get("/insights/voc/?week=someday").status_code == 400


def test_the_insights_page_has_a_p2p_disputes_view(app, client):
    add_users(app)
    store = app.extensions["suggester.store"]
    log_at(store, datetime.now(UTC), types=("사기·안전",), flags=("fraud",),
           cited=("fraud-report",))
    log_at(store, datetime.now(UTC), types=("사기·안전",), cited=("fraud-report",))
    sign_in(client, "agent")
    page = client.get("/insights/").get_data(as_text=True)
    disputes = page.split('id="disputes"', 1)[1].split("</section>", 1)[0]
    assert "사기·안전" in disputes and "50%" in disputes and "fraud-report" in disputes
