"""The insights page in a real browser, over a month of seeded suggestions."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from insights_data import log_at, log_many

from browser.browser_support import LiveServer, log_in, screenshot
from suggester.records.store import Store

pytestmark = pytest.mark.browser

XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"
TYPES = {"배송": ("shipping-delay-buyer", 5), "반품·환불": ("refund-timing", 4),
         "정산·수수료": ("settlement-delayed", 3), "결제": ("payment-methods", 2),
         "사기·안전": ("off-platform-payment", 1)}
GAPS = ["중고차도 팔 수 있나요?", "자동차도 팔 수 있어요?", "비트코인으로 결제 되나요",
        "코인 결제 가능한가요", "해외 배송 되나요?"]


def seed_month(store: Store, now: datetime) -> None:
    """Thirty days of traffic with a surge of 배송 this week, gaps and verdicts."""
    chance = random.Random(5)
    rows = []
    for day in range(30):
        for category, (article, per_day) in TYPES.items():
            surge = 3 if category == "배송" and day < 7 else 1
            for _ in range(chance.randint(0, per_day) * surge):
                rows.append((now - timedelta(days=day, hours=chance.uniform(1, 20)),
                             {"types": (category,), "cited": (article,)}))
        if day % 3 == 0:
            rows.append((now - timedelta(days=day, hours=2),
                         {"inquiry": GAPS[day % len(GAPS)], "grounded": False, "cited": (),
                          "types": ("이용방법",)}))
    ids = log_many(store, rows)
    for n, suggestion_id in enumerate(ids[::4]):
        verdict = ("used", "used", "edited", "rejected")[n % 4]
        store.record_feedback(suggestion_id, verdict=verdict, final_text="최종 답변")


def test_insights_page_draws_its_chart_and_tables(page, live_server: LiveServer):
    now = datetime.now(UTC)
    seed_month(live_server.store, now)
    log_at(live_server.store, now - timedelta(hours=1), inquiry=XSS, grounded=False, cited=())
    log_in(page, live_server)
    page.goto("/insights/")
    assert page.locator("svg.daily-chart rect").count() > 30
    assert page.locator(".legend li").count() >= 5
    assert page.locator("#rising .badge:has-text('급증')").count() >= 1
    assert page.locator("#gaps .quote").filter(has_text=XSS).count() == 1
    assert page.locator("#gaps img").count() == 0
    assert page.locator("#acceptance tbody tr").count() >= 5
    screenshot(page, "insights")
    download = page.locator("#acceptance a.csv")
    assert download.get_attribute("href").startswith("/insights/export/acceptance.csv")


def test_an_editor_undoes_a_correction_and_the_classifier_forgets_it(page,
                                                                     live_server: LiveServer):
    service = live_server.app.extensions["suggester.service"]
    inquiry = "택배 상자가 찌그러져서 왔는데 옷은 멀쩡해요 이것도 신고해야 하나요?"
    first = service.suggest(inquiry)
    before = first.analysis.primary_type
    corrected = "P2P분쟁" if before != "P2P분쟁" else "상품상태"
    service.record_feedback(first.id, verdict="used", corrected_types=[corrected],
                            author="agent-browser")
    assert service.suggest(inquiry, log=False).analysis.primary_type == corrected

    log_in(page, live_server, role="editor")
    page.goto("/insights/")
    page.click("#by-person table.people a:has-text('agent-browser')")
    page.wait_for_selector("#by-person h3:has-text('agent-browser의 최근 수정')")
    row = page.locator("#by-person table.recent-corrections tbody tr", has_text=inquiry)
    assert corrected in row.inner_text()
    row.locator("button:has-text('수정 취소')").click()
    page.wait_for_selector("#by-person .notice-ok:has-text('유형 수정을 취소했습니다')")
    row = page.locator("#by-person table.recent-corrections tbody tr", has_text=inquiry)
    assert "editor-browser 님이 취소함" in row.inner_text()
    assert row.locator("button").count() == 0
    screenshot(page, "insights-corrections-by-person")
    assert service.suggest(inquiry, log=False).analysis.primary_type == before
