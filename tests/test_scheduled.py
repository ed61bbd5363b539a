"""Scheduled policy changes: a successor published now takes over on its effective date.

The selling fee goes from 5% to 7% through a new article `selling-fees-next` that supersedes
`selling-fees`. Which one serves is decided per query from the date (today, or the order date
sent as `as_of`), so the switch needs no cron, restart or re-index.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import replace

import pytest

from suggester.search.index import Indexer
from suggester.service import Suggester
from web import create_app

from conftest import SHIPPED_KB, add_users, console_csrf, make_settings, sign_in

FEE_QUESTION = "판매 수수료 몇 퍼센트 떼 가요?"
TODAY = dt.date.today()


def _kb_with_fee_change(root, takes_effect: dt.date):
    kb = root / "kb"
    shutil.copytree(SHIPPED_KB, kb)
    source = (kb / "policy" / "selling-fees.md").read_text(encoding="utf-8")
    successor = (source.replace("5%", "7%").replace("id: selling-fees", "id: selling-fees-next")
                 .replace("effective_from: 2026-01-05", f"effective_from: {takes_effect}")
                 .replace("version: 2", "version: 1\nsupersedes: selling-fees")
                 .replace("title: 판매 수수료 안내", "title: 판매 수수료 안내 (인상)"))
    (kb / "policy" / "selling-fees-next.md").write_text(successor, encoding="utf-8")
    settings = make_settings(root / "data", kb)
    Indexer(settings).sync()
    return settings


@pytest.fixture(scope="module")
def next_week(tmp_path_factory):
    """A fee change to 7% scheduled for a week from today."""
    return _kb_with_fee_change(tmp_path_factory.mktemp("next-week"),
                               TODAY + dt.timedelta(days=7))


@pytest.fixture(scope="module")
def last_week(tmp_path_factory):
    """The same change, in effect since a week ago."""
    return _kb_with_fee_change(tmp_path_factory.mktemp("last-week"),
                               TODAY - dt.timedelta(days=7))


def _fee(suggestion) -> str:
    text = suggestion.draft.text
    assert ("5%" in text) != ("7%" in text), text
    return "5%" if "5%" in text else "7%"


def test_before_a_scheduled_change_drafts_keep_the_old_fee_and_agents_see_a_note(next_week):
    suggestion = Suggester(next_week).suggest(FEE_QUESTION, audience="seller", log=False)
    assert _fee(suggestion) == "5%"
    assert [c.article_id for c in suggestion.draft.citations][0] == "selling-fees"
    day = TODAY + dt.timedelta(days=7)
    [note] = suggestion.to_dict()["scheduled_changes"]
    assert note["successor_id"] == "selling-fees-next"
    assert note["note"].startswith(f"정책 변경 예정: {day.month}월 {day.day}일부터")
    assert "정책 변경 예정" not in suggestion.draft.text  # internal only


def test_as_of_the_change_day_the_successor_serves_and_the_draft_names_the_date(next_week):
    service = Suggester(next_week)
    day = TODAY + dt.timedelta(days=7)
    later = service.suggest(FEE_QUESTION, audience="seller", log=False, as_of=day)
    assert _fee(later) == "7%"
    cited = [c.article_id for c in later.draft.citations]
    assert cited[0] == "selling-fees-next" and "selling-fees" not in cited  # never the old rule
    opening = later.draft.text.split("\n\n")[0]
    assert f"주문하신 {day.month}월 {day.day}일 기준 수수료는 7%예요." in opening
    assert later.to_dict()["scheduled_changes"] == []
    # The same process, no restart or re-index: the day before still gets the old rule.
    before = service.suggest(FEE_QUESTION, audience="seller", log=False,
                             as_of=day - dt.timedelta(days=1))
    assert _fee(before) == "5%"


def test_after_a_change_took_effect_today_gets_the_new_fee_and_an_earlier_order_the_old(
        last_week):
    service = Suggester(last_week)
    assert _fee(service.suggest(FEE_QUESTION, audience="seller", log=False)) == "7%"
    order_day = TODAY - dt.timedelta(days=10)
    old = service.suggest(FEE_QUESTION, audience="seller", log=False, as_of=order_day)
    assert _fee(old) == "5%"
    opening = old.draft.text.split("\n\n")[0]
    assert f"주문하신 {order_day.month}월 {order_day.day}일 기준 수수료는 5%예요." in opening


def _signed_in(settings, database, role: str):
    app = create_app({"TESTING": True}, settings=replace(settings, database=database))
    add_users(app)
    client = app.test_client()
    sign_in(client, role)
    # A signed-in session's writes to /api carry the page's CSRF token, as the console's do.
    client.environ_base["HTTP_X_CSRF_TOKEN"] = console_csrf(client)
    return client


def test_the_api_takes_as_of_and_refuses_a_date_it_cannot_read(last_week, tmp_path):
    client = _signed_in(last_week, tmp_path / "app.sqlite3", "agent")
    order_day = TODAY - dt.timedelta(days=10)
    response = client.post("/api/suggest", json={"inquiry": FEE_QUESTION, "audience": "seller",
                                                 "as_of": order_day.isoformat()})
    assert response.status_code == 200
    body = response.get_json()
    assert body["as_of"] == order_day.isoformat() and "5%" in body["draft"]["text"]
    bad = client.post("/api/suggest", json={"inquiry": FEE_QUESTION, "as_of": "2026-13-01"})
    assert bad.status_code == 400
    assert bad.get_json()["error"] == "invalid_as_of"


def test_editors_see_upcoming_switchovers_in_the_article_list(next_week, tmp_path):
    client = _signed_in(next_week, tmp_path / "app.sqlite3", "editor")
    page = client.get("/editor/").get_data(as_text=True)
    day = TODAY + dt.timedelta(days=7)
    assert "예정된 정책 전환" in page
    switch = page[page.index('id="switchovers"'):]
    assert f"{day.month}월 {day.day}일" in switch
    assert "/editor/selling-fees-next/edit" in switch and "/editor/selling-fees/edit" in switch
