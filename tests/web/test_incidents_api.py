"""Incidents through the API: a replayed outage opens one, its drafts, closing it, the banner."""

from __future__ import annotations

import pytest

from suggester.evaluation.incidents import PAYMENT_OUTAGE
from suggester.settings import load_settings

from conftest import add_users, console_csrf, sign_in

THRESHOLD = load_settings(environ={}).incident_threshold


@pytest.fixture
def outage(app, api_client):
    """A payment outage replayed through /api/suggest until an incident opens."""
    add_users(app)
    replies = [api_client.post("/api/suggest",
                           json={"inquiry": PAYMENT_OUTAGE[n % len(PAYMENT_OUTAGE)]})
               for n in range(THRESHOLD)]
    assert all(r.status_code == 200 for r in replies)
    flagged = ["outage" in [f["name"] for f in r.get_json()["analysis"]["risk_flags"]]
               or r.get_json()["analysis"]["inquiry_types"][0]["category"] == "장애·긴급"
               for r in replies]
    assert all(flagged), "every replayed message should read as an outage to the analyzer"
    return replies


def test_a_replayed_outage_opens_one_incident_with_every_inquiry_linked(outage, api_client):
    client = api_client
    incidents = client.get("/api/incidents").get_json()["incidents"]
    assert len(incidents) == 1
    incident = incidents[0]
    assert incident["symptom"] == "결제 오류" and incident["status"] == "open"
    assert incident["inquiries"] == THRESHOLD
    assert incident["draft"] and "장애" in incident["draft"]
    detail = client.get(f"/api/incidents/{incident['id']}").get_json()
    assert detail["suggestions"] == [r.get_json()["suggestion_id"] for r in outage]
    assert [e["kind"] for e in detail["timeline"]][:2] == ["first_inquiry", "opened"]


def test_while_open_matching_inquiries_get_the_holding_reply(outage, api_client):
    client = api_client
    reply = client.post("/api/suggest", json={"inquiry": "결제가 계속 실패해요 왜 이래요",
                                              "customer_name": "김민지"}).get_json()
    assert reply["incident"]["symptom"] == "결제 오류"
    assert reply["draft"]["source"] == "incident"
    assert reply["draft"]["text"].startswith("김민지님")
    assert reply["draft"]["citations"][0]["article_id"] == "outage-response"
    other = client.post("/api/suggest", json={"inquiry": "배송은 보통 며칠 걸려요?"}).get_json()
    assert other["incident"] is None and other["draft"]["source"] != "incident"
    count = client.get("/api/incidents").get_json()["incidents"][0]["inquiries"]
    assert count == THRESHOLD + 1  # the live count took the matching inquiry


def test_only_editors_close_and_then_drafts_say_it_is_fixed(outage, app, client, api_client):
    incident_id = api_client.get("/api/incidents").get_json()["incidents"][0]["id"]
    note = "오후 3시 10분부터 카드 결제가 정상적으로 돼요. 다시 시도해 주세요."
    assert client.post(f"/api/incidents/{incident_id}/close",
                       json={"resolution_note": note}).status_code == 401
    sign_in(client, "agent")
    assert client.post(f"/api/incidents/{incident_id}/close", json={"resolution_note": note},
                       headers={"X-CSRF-Token": console_csrf(client)}).status_code == 403
    sign_in(client, "editor")
    client.environ_base["HTTP_X_CSRF_TOKEN"] = console_csrf(client)
    missing = client.post(f"/api/incidents/{incident_id}/close", json={"resolution_note": " "})
    assert missing.status_code == 400 and missing.get_json()["error"] == "missing_resolution_note"
    closed = client.post(f"/api/incidents/{incident_id}/close", json={"resolution_note": note})
    assert closed.status_code == 200 and closed.get_json()["incident"]["closed_by"] == "editor"
    again = client.post(f"/api/incidents/{incident_id}/close", json={"resolution_note": note})
    assert again.status_code == 404 and again.get_json()["error"] == "unknown_incident"
    reply = client.post("/api/suggest", json={"inquiry": "결제가 계속 실패해요"}).get_json()
    assert note in reply["draft"]["text"] and "복구되었어요" in reply["draft"]["text"]
    assert reply["draft"]["citations"][0]["section"] == "복구 안내"
    banner = client.get("/api/incidents").get_json()["incidents"]
    assert banner[0]["status"] == "closed" and note in banner[0]["draft"]


@pytest.mark.parametrize("raw", ["³0", "١٢", "12a", "-1", "1" * 13])
def test_an_incident_id_that_is_not_a_plain_number_is_a_bad_request(api_client, raw):
    # "³0" passes str.isdigit and made int() raise: a 500 the API fuzzer found.
    for response in (api_client.get(f"/api/incidents/{raw}"),
                     api_client.post(f"/api/incidents/{raw}/close",
                                     json={"resolution_note": "결제가 다시 돼요."})):
        assert response.status_code == 400, (raw, response.status_code)
        assert response.get_json()["error"] == "invalid_incident_id"


def test_the_console_carries_the_banner_and_its_script(app, client):
    add_users(app)
    sign_in(client, "agent")
    page = client.get("/").get_data(as_text=True)
    assert 'id="incident-banner"' in page and 'data-can-close="0"' in page
    assert "/static/incidents.js" in page
    assert client.get("/static/incidents.js").status_code == 200


def test_a_token_may_not_close_and_a_blank_note_is_a_bad_request_for_anyone(outage, api_client):
    incident_id = api_client.get("/api/incidents").get_json()["incidents"][0]["id"]
    blank = api_client.post(f"/api/incidents/{incident_id}/close", json={"resolution_note": None})
    assert blank.status_code == 400 and blank.get_json()["error"] == "missing_resolution_note"
    # A token is a known caller, but closing needs an editor's own sign-in: 403, not 401.
    denied = api_client.post(f"/api/incidents/{incident_id}/close",
                             json={"resolution_note": "결제가 다시 돼요."})
    assert denied.status_code == 403 and denied.get_json()["error"] == "forbidden"
    assert api_client.get("/api/incidents").get_json()["incidents"][0]["status"] == "open"
