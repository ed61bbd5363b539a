"""Who may call the JSON API (web/access.py): sessions with CSRF, API tokens, integration
tokens without internal text, authors of feedback, undoing a correction, the rate limit."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from web.api import OPENAPI

from conftest import add_token, add_users, bearer, console_csrf, form_token, sign_in

SPEC = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
OPEN = {("get", "/api/health")}
OFF_PLATFORM = "외부 계좌로 직접 입금하면 수수료 안 내도 되죠? 카톡으로 연락 주세요"
# Inquiries whose suggestions carry internal notes and escalation rules for agents.
INTERNAL_HEAVY = [OFF_PLATFORM, "가품 같아요 신고하고 싶어요", "환불 언제 돼요"]


def _described_routes() -> list[object]:
    """Every (method, path) of web/openapi.yaml but the open ones, with path parameters filled."""
    routes = []
    for path, item in SPEC["paths"].items():
        for method in item:
            if method in ("get", "post", "put", "patch", "delete") and (method, path) not in OPEN:
                url = re.sub(r"\{[^}]+\}", "off-platform-payment", path)
                routes.append(pytest.param(method, url, id=f"{method.upper()} {path}"))
    return routes


def _internal_lines(app) -> set[str]:
    """Every line of the index's internal sections long enough to identify it."""
    chunks = app.extensions["suggester.service"].retriever.snapshot().chunks.values()
    return {line.strip() for chunk in chunks if chunk.internal
            for line in chunk.text.splitlines() if len(line.strip()) >= 12}


# -- anonymous callers ------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), _described_routes())
@pytest.mark.parametrize("credentials", [
    pytest.param({}, id="nothing"),
    pytest.param(bearer("sgt_not-a-real-token"), id="unknown-token"),
    pytest.param({"Authorization": "Basic YWdlbnQ6YWdlbnQ="}, id="basic-auth"),
])
def test_anonymous_callers_get_401_on_every_described_route(client, method, path, credentials):
    response = client.open(path, method=method.upper(), json={}, headers=credentials)
    assert response.status_code == 401
    body = response.get_json()
    assert body["error"] in {"unauthorized", "invalid_token"}
    assert body["message"] and body["message_ko"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_health_stays_open(client):
    assert client.get("/api/health").status_code == 200


def test_an_anonymous_session_with_a_csrf_token_is_still_anonymous(client):
    token = form_token(client.get("/login").get_data(as_text=True))
    response = client.post("/api/suggest", json={"inquiry": OFF_PLATFORM},
                           headers={"X-CSRF-Token": token})
    assert response.status_code == 401


# -- agents: session or token -------------------------------------------------------------------


def test_a_signed_in_agent_gets_internal_notes(app, client):
    add_users(app)
    sign_in(client, "agent")
    response = client.post("/api/suggest", json={"inquiry": OFF_PLATFORM},
                           headers={"X-CSRF-Token": console_csrf(client)})
    assert response.status_code == 200
    assert response.get_json()["internal_notes"]


def test_an_agent_token_gets_internal_notes(app, client):
    secret = add_token(app, "helpdesk-agent", role="agent")
    response = client.post("/api/suggest", json={"inquiry": OFF_PLATFORM},
                           headers=bearer(secret))
    assert response.status_code == 200
    body = response.get_json()
    assert body["internal_notes"]
    assert any(flag["escalation"] for flag in body["analysis"]["risk_flags"])


@pytest.mark.parametrize("header", [None, "forged-token"])
def test_a_session_post_without_the_right_csrf_header_gets_403(app, client, header):
    add_users(app)
    sign_in(client, "agent")
    console_csrf(client)  # the session has a token; the request does not send it
    headers = {"X-CSRF-Token": header} if header else {}
    response = client.post("/api/suggest", json={"inquiry": OFF_PLATFORM}, headers=headers)
    assert response.status_code == 403
    body = response.get_json()
    assert body["error"] == "csrf_failed" and body["message_ko"]


def test_a_session_get_needs_no_csrf_header(app, client):
    add_users(app)
    sign_in(client, "agent")
    assert client.get("/api/articles/off-platform-payment").status_code == 200


def test_a_token_needs_no_csrf_header(app, client):
    response = client.post("/api/suggest", json={"inquiry": OFF_PLATFORM},
                           headers=bearer(add_token(app)))
    assert response.status_code == 200


# -- integration tokens -------------------------------------------------------------------------


@pytest.mark.parametrize("inquiry", INTERNAL_HEAVY)
def test_an_integration_token_gets_no_internal_text_anywhere(app, client, inquiry):
    internal = _internal_lines(app)
    agent = client.post("/api/suggest", json={"inquiry": inquiry},
                        headers=bearer(add_token(app, "agent-script")))
    outside = client.post("/api/suggest", json={"inquiry": inquiry},
                          headers=bearer(add_token(app, "sidebar", role="integration")))
    assert agent.status_code == outside.status_code == 200
    # The agent's answer holds internal lines, so their absence below proves something.
    assert any(line in agent.get_data(as_text=True) for line in internal)
    text = json.dumps(outside.get_json(), ensure_ascii=False)
    assert [line for line in internal if line in text] == []
    body = outside.get_json()
    assert body["internal_notes"] == [] and body["draft"]["text"]
    assert all(not p["internal"] for p in body["passages"])


def test_an_integration_token_reads_articles_without_internal_sections(app, client):
    secret = add_token(app, "sidebar", role="integration")
    response = client.get("/api/articles/off-platform-payment", headers=bearer(secret))
    assert response.status_code == 200
    body = response.get_json()
    assert body["sections"] and not any(s["internal"] for s in body["sections"])
    text = json.dumps(body, ensure_ascii=False)
    assert "에스컬레이션" not in text and "영구 정지" not in text


def test_an_integration_token_may_send_feedback(app, client):
    secret = add_token(app, "sidebar", role="integration")
    suggestion = client.post("/api/suggest", json={"inquiry": "환불 언제 돼요"},
                             headers=bearer(secret)).get_json()
    response = client.post("/api/feedback", headers=bearer(secret), json={
        "suggestion_id": suggestion["suggestion_id"], "verdict": "used"})
    assert response.status_code == 201


def test_a_new_route_is_closed_to_integration_tokens_until_marked(app, client):
    app.add_url_rule("/api/_agents_only", "agents_only", lambda: {"ok": True})
    outside = client.get("/api/_agents_only",
                         headers=bearer(add_token(app, "sidebar", role="integration")))
    assert outside.status_code == 403 and outside.get_json()["message_ko"]
    assert client.get("/api/_agents_only", headers=bearer(add_token(app))).status_code == 200
    assert client.get("/api/_agents_only").status_code == 401


# -- revoked and expired tokens -----------------------------------------------------------------


def test_a_revoked_token_gets_401_at_once(app, client):
    from suggester.records.access import AccessRecords

    secret = add_token(app, "old-script")
    assert client.get("/api/openapi.yaml", headers=bearer(secret)).status_code == 200
    AccessRecords(app.extensions["suggester.store"]).revoke_token("old-script")
    response = client.get("/api/openapi.yaml", headers=bearer(secret))
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_token"


def test_an_expired_token_gets_401(app, client):
    made = datetime.now(UTC) - timedelta(days=2, minutes=1)
    secret = add_token(app, "short-lived", expires_days=2, now=made)
    response = client.get("/api/openapi.yaml", headers=bearer(secret))
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_token"


def test_a_bad_token_is_refused_even_with_a_signed_in_session(app, client):
    add_users(app)
    sign_in(client, "agent")
    response = client.get("/api/articles/off-platform-payment",
                          headers=bearer("sgt_revoked-or-typo"))
    assert response.status_code == 401


# -- feedback authors and undoing a correction -------------------------------------------------


def test_feedback_is_stored_with_its_author(app, client):
    add_users(app)
    store = app.extensions["suggester.store"]
    secret = add_token(app, "sidebar", role="integration")
    by_token = client.post("/api/suggest", json={"inquiry": "환불 언제 돼요"},
                           headers=bearer(secret)).get_json()["suggestion_id"]
    client.post("/api/feedback", headers=bearer(secret),
                json={"suggestion_id": by_token, "verdict": "used"})
    sign_in(client, "agent")
    token = console_csrf(client)
    by_agent = client.post("/api/suggest", json={"inquiry": "환불 언제 돼요"},
                           headers={"X-CSRF-Token": token}).get_json()["suggestion_id"]
    client.post("/api/feedback", headers={"X-CSRF-Token": token},
                json={"suggestion_id": by_agent, "verdict": "rejected"})
    assert [f.author for f in store.feedback_for(by_token)] == ["token:sidebar"]
    assert [f.author for f in store.feedback_for(by_agent)] == ["agent"]


def test_an_undone_correction_no_longer_changes_the_type(app, client):
    add_users(app)
    inquiry = "택배 상자가 찌그러져서 왔는데 옷은 멀쩡해요 이것도 신고해야 하나요?"
    agent = bearer(add_token(app, "agent-script"))

    def primary_type() -> tuple[str, str]:
        body = client.post("/api/suggest", json={"inquiry": inquiry}, headers=agent).get_json()
        return body["suggestion_id"], body["analysis"]["inquiry_types"][0]["category"]

    suggestion_id, before = primary_type()
    corrected = "P2P분쟁" if before != "P2P분쟁" else "상품상태"
    client.post("/api/feedback", headers=agent, json={
        "suggestion_id": suggestion_id, "verdict": "used", "corrected_types": [corrected]})
    assert primary_type()[1] == corrected

    sign_in(client, "editor")
    page = client.get("/insights/").get_data(as_text=True)
    assert "token:agent-script" in page and "수정 취소" in page
    feedback_id = app.extensions["suggester.store"].feedback_for(suggestion_id)[0].id
    undone = client.post(f"/insights/corrections/{feedback_id}/undo",
                         data={"csrf_token": form_token(page), "days": "30"})
    assert undone.status_code == 302
    assert primary_type()[1] == before
    assert app.extensions["suggester.store"].feedback_for(suggestion_id)[0].undone_by == "editor"
    assert "editor 님이 취소함" in client.get("/insights/").get_data(as_text=True)


def test_agents_may_not_undo_corrections(app, client):
    add_users(app)
    sign_in(client, "agent")
    page = client.get("/insights/").get_data(as_text=True)
    response = client.post("/insights/corrections/1/undo", data={"csrf_token": form_token(page)})
    assert response.status_code == 403


# -- rate limit ---------------------------------------------------------------------------------


def test_going_over_the_limit_gives_429_with_retry_after(app, client):
    app.extensions["suggester.settings"] = replace(app.extensions["suggester.settings"],
                                                   api_rate_limit=3)
    busy, other = bearer(add_token(app, "busy")), bearer(add_token(app, "other"))
    statuses = [client.get("/api/openapi.yaml", headers=busy).status_code for _ in range(3)]
    refused = client.get("/api/openapi.yaml", headers=busy)
    assert statuses == [200, 200, 200] and refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    body = refused.get_json()
    assert body["error"] == "rate_limited" and body["message_ko"]
    # The limit is per token: another one is not held back.
    assert client.get("/api/openapi.yaml", headers=other).status_code == 200
    assert client.get("/api/health").status_code == 200  # and health is never counted


# -- the tokens CLI -----------------------------------------------------------------------------


def test_tokens_cli_adds_lists_and_revokes(app, client):
    from click.testing import CliRunner

    from suggester.cli import main

    runner = CliRunner()
    settings = app.extensions["suggester.settings"]
    base = ["--data-dir", str(settings.data_dir)]
    env = {"SUGGESTER_DATABASE": str(settings.database_path)}
    added = runner.invoke(main, [*base, "tokens", "add", "helpdesk", "--role", "integration",
                                 "--expires", "30"], env=env)
    assert added.exit_code == 0, added.output
    secret = added.stdout.strip()
    assert secret.startswith("sgt_") and "not shown again" in added.stderr
    assert client.get("/api/openapi.yaml", headers=bearer(secret)).status_code == 200

    listed = runner.invoke(main, [*base, "tokens", "list"], env=env).stdout
    assert "helpdesk\tintegration\tactive" in listed and "last used 20" in listed
    assert secret not in listed

    revoked = runner.invoke(main, [*base, "tokens", "revoke", "helpdesk"], env=env)
    assert revoked.exit_code == 0 and "revoked integration token 'helpdesk'" in revoked.stdout
    assert client.get("/api/openapi.yaml", headers=bearer(secret)).status_code == 401
    assert "helpdesk\tintegration\trevoked" in runner.invoke(main, [*base, "tokens", "list"],
                                                             env=env).stdout
    again = runner.invoke(main, [*base, "tokens", "revoke", "helpdesk"], env=env)
    assert again.exit_code == 2 and "no live token is named 'helpdesk'" in again.stderr
