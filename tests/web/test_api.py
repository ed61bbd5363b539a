"""The JSON API: response shapes, feedback round trip, and one error shape for bad input."""

from __future__ import annotations

import pytest


def test_suggest_returns_the_whole_suggestion(api_client):
    response = api_client.post("/api/suggest", json={"inquiry": "정산 언제 들어와요?",
                                                 "channel": "chat", "customer_name": "이하늘"})
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) >= {"suggestion_id", "analysis", "passages", "draft", "anticipated",
                         "internal_notes", "timings_ms"}
    assert body["draft"]["grounded"] is True and body["draft"]["citations"]
    assert body["draft"]["text"].startswith("이하늘님")
    assert {"article_id", "title", "section"} <= set(body["draft"]["citations"][0])
    assert body["analysis"]["inquiry_types"][0]["category"] == "정산·수수료"
    assert body["timings_ms"]["total_ms"] > 0


def test_the_agent_can_draft_from_an_alternative_article(api_client):
    inquiry = {"inquiry": "카드 말고 무통장입금도 되나요?", "audience": "buyer"}
    first = api_client.post("/api/suggest", json=inquiry).get_json()
    assert first["chosen_by_agent"] is False and len(first["alternatives"]) == 3
    chosen = first["alternatives"][0]["article_id"]
    assert chosen != first["draft"]["citations"][0]["article_id"]
    second = api_client.post("/api/suggest", json={**inquiry, "article_id": chosen}).get_json()
    assert second["chosen_by_agent"] is True and second["draft"]["grounded"] is True
    assert second["draft"]["citations"][0]["article_id"] == chosen
    # The draft is the chosen article's answer, from a section customers may read.
    article = api_client.get(f"/api/articles/{chosen}").get_json()
    public = {" > ".join(s["path"]) for s in article["sections"] if not s["internal"]}
    assert {c["section"] for c in second["draft"]["citations"]
            if c["article_id"] == chosen} <= public
    # The first draft's article is now among the alternatives, to go back to.
    first_article = first["draft"]["citations"][0]["article_id"]
    assert first_article in [a["article_id"] for a in second["alternatives"]]


def test_feedback_round_trip(api_client, app):
    suggestion = api_client.post("/api/suggest", json={"inquiry": "환불 언제 돼요"}).get_json()
    response = api_client.post("/api/feedback", json={
        "suggestion_id": suggestion["suggestion_id"], "verdict": "edited",
        "final_text": "고친 답변", "corrected_types": ["반품·환불"]})
    assert response.status_code == 201
    stored = app.extensions["suggester.store"].feedback_for(suggestion["suggestion_id"])
    assert stored[0].verdict == "edited" and stored[0].corrected_types == ["반품·환불"]


@pytest.mark.parametrize(("kwargs", "status", "code"), [
    ({"json": {"inquiry": ""}}, 400, "empty_inquiry"),
    ({"json": {"inquiry": "   "}}, 400, "empty_inquiry"),
    ({"json": {"inquiry": 5}}, 400, "invalid_inquiry"),
    ({"json": {"inquiry": None}}, 400, "invalid_inquiry"),
    ({"json": {}}, 400, "missing_fields"),
    ({"json": ["환불"]}, 400, "invalid_body"),
    ({"json": {"inquiry": "환불", "extra": 1}}, 400, "unknown_fields"),
    ({"json": {"inquiry": "가" * 4001}}, 413, "inquiry_too_long"),
    ({"json": {"inquiry": "환불", "k": "5"}}, 400, "invalid_k"),
    ({"json": {"inquiry": "환불", "k": True}}, 400, "invalid_k"),
    ({"json": {"inquiry": "환불", "channel": "sms"}}, 400, "invalid_channel"),
    ({"json": {"inquiry": "환불", "article_id": "../etc"}}, 400, "invalid_article_id"),
    ({"json": {"inquiry": "환불 언제 돼요", "article_id": "no-such-article"}}, 404,
     "unknown_article"),
    ({"data": "{not json", "content_type": "application/json"}, 400, "malformed_json"),
    ({"data": "inquiry=환불", "content_type": "application/x-www-form-urlencoded"}, 415,
     "unsupported_media_type"),
    ({"data": "x" * 70_000, "content_type": "application/json"}, 413, "request_entity_too_large"),
])
def test_bad_requests_get_one_json_error_shape(api_client, kwargs, status, code):
    response = api_client.post("/api/suggest", **kwargs)
    assert response.status_code == status
    body = response.get_json()
    assert body["error"] == code
    assert body["message"] and body["message_ko"]


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"suggestion_id": "nope", "verdict": "used"}, 404, "not_found"),
    ({"suggestion_id": "nope"}, 400, "missing_fields"),
    ({"suggestion_id": "nope", "verdict": "used", "corrected_types": [1]}, 400,
     "invalid_corrected_types"),
])
def test_bad_feedback_is_refused(api_client, body, status, code):
    response = api_client.post("/api/feedback", json=body)
    assert response.status_code == status and response.get_json()["error"] == code


def test_feedback_verdict_must_be_known(api_client):
    suggestion = api_client.post("/api/suggest", json={"inquiry": "환불 언제 돼요"}).get_json()
    response = api_client.post("/api/feedback", json={"suggestion_id": suggestion["suggestion_id"],
                                                  "verdict": "maybe"})
    assert response.status_code == 400 and "verdict" in response.get_json()["message"]


def test_health_reports_the_index(client):
    body = client.get("/api/health").get_json()
    assert body["status"] == "ok" and body["index_generation"] >= 1


def test_article_endpoint_marks_internal_sections(api_client):
    body = api_client.get("/api/articles/off-platform-payment").get_json()
    internal = {s["title"] for s in body["sections"] if s["internal"]}
    assert internal >= {"에스컬레이션"}
    assert not any(s["internal"] for s in body["sections"] if s["title"] == "응대 예시")
    assert all("<script" not in s["html"] for s in body["sections"])


@pytest.mark.parametrize(("path", "status"), [("/api/articles/no-such-article", 404),
                                              ("/api/articles/Bad_Id", 400),
                                              ("/api/nowhere", 404)])
def test_unknown_things_are_json_errors(api_client, path, status):
    response = api_client.get(path)
    assert response.status_code == status and response.is_json


def test_wrong_method_is_a_json_error(api_client):
    response = api_client.get("/api/suggest")
    assert response.status_code == 405 and response.get_json()["error"] == "method_not_allowed"


@pytest.mark.parametrize("path", ["/api/health", "/login"])
def test_every_response_carries_a_strict_content_security_policy(api_client, path):
    policy = api_client.get(path).headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy


def test_an_unusable_database_is_a_503_that_names_it(app, api_client):
    store = app.extensions["suggester.store"]
    store.close()  # as good as a database server that went away
    response = api_client.post("/api/suggest", json={"inquiry": "환불 언제 돼요"})
    assert response.status_code == 503
    body = response.get_json()
    assert body["error"] == "database_unavailable" and body["message_ko"]


# -- found by fuzzing (tests/web/test_fuzz_api.py, tests/knowledge/test_fuzz_articles.py) ------


@pytest.mark.parametrize(("path", "body", "code"), [
    ("/api/suggest", b'{"inquiry": "\\ud800"}', "invalid_inquiry"),
    ("/api/suggest", b'{"inquiry": "a", "customer_name": "\\udfff"}', "invalid_customer_name"),
    ("/api/feedback", b'{"suggestion_id": "\\ud800", "verdict": "used"}', "invalid_suggestion_id"),
    ("/api/feedback", b'{"suggestion_id": "x", "verdict": "used", "corrected_types": ["\\ud800"]}',
     "invalid_corrected_types"),
])
def test_lone_surrogates_in_json_text_are_refused(api_client, path, body, code):
    response = api_client.post(path, data=body, content_type="application/json")
    assert response.status_code == 400 and response.get_json()["error"] == code


def test_json_nested_deeper_than_the_decoder_goes_is_malformed(api_client):
    response = api_client.post("/api/suggest", data="[" * 5000 + "]" * 5000,
                           content_type="application/json")
    assert response.status_code == 400 and response.get_json()["error"] == "malformed_json"


def test_k_zero_is_refused_not_replaced_by_the_default(api_client):
    response = api_client.post("/api/suggest", json={"inquiry": "환불 언제 돼요", "k": 0})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_k"


def test_article_id_longer_than_a_file_name_is_not_found(api_client):
    response = api_client.get("/api/articles/" + "a" * 300)
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"
