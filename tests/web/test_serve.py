"""`suggester serve --prod`: gunicorn with several workers, each answering from the index."""

from __future__ import annotations

import pytest

from suggester.evaluation.serving import EditorSession, Server, get_json, make_token, post_json

from conftest import PASSWORDS

pytestmark = pytest.mark.slow


def test_production_server_runs_workers_that_answer(shipped_settings, tmp_path):
    server = Server(kb_dir=shipped_settings.kb_dir, data_dir=shipped_settings.data_dir,
                    cache_dir=shipped_settings.cache_path.parent,
                    database=tmp_path / "prod.sqlite3", workers=2)
    token = make_token(tmp_path / "prod.sqlite3", "agent-script")
    with server:
        status, health = get_json(server.base_url, "/api/health")
        assert (status, health["status"]) == (200, "ok")
        assert len(server.worker_pids()) == 2
        answers = [post_json(server.base_url, "/api/suggest", {"inquiry": "정산은 언제 들어와요?"},
                             token=token) for _ in range(4)]
        # Only /api/health is open: no token, no suggestion, in every worker.
        assert {post_json(server.base_url, "/api/suggest", {"inquiry": "정산은 언제 들어와요?"}
                          )[0] for _ in range(4)} == {401}
        assert {status for status, _ in answers} == {200}
        assert all(a["draft"]["grounded"] for _, a in answers)
        assert {a["draft"]["citations"][0]["article_id"] for _, a in answers} == {
            "settlement-schedule"}
    output = server.output
    assert "with 2 gunicorn workers" in output
    assert "start-up check: the articles, their history and the index agree" in output
    assert "Traceback" not in output


def test_a_publish_on_one_server_is_seen_by_another(served_kb):
    def serve() -> Server:
        return Server(kb_dir=served_kb.kb_dir, data_dir=served_kb.data_dir,
                      cache_dir=served_kb.cache_path.parent, workers=1)

    token = make_token(served_kb.database_path, "agent-script")
    with serve() as first, serve() as second:
        question = {"inquiry": "판매 수수료는 몇 퍼센트예요?", "audience": "seller"}
        _, before = post_json(second.base_url, "/api/suggest", question, token=token)
        assert "5%" in fee_sentences(before)

        editor = EditorSession(first.base_url, "editor", PASSWORDS["editor"])
        published = editor.publish("selling-fees", lambda source: source.replace("5%", "7%"))
        assert published.ok, published.message

        _, after = post_json(second.base_url, "/api/suggest", question, token=token)
        assert "7%" in fee_sentences(after) and "5%" not in fee_sentences(after)
        cited = {c["article_id"]: c["version"] for c in after["draft"]["citations"]}
        assert cited["selling-fees"] == published.version > {
            c["article_id"]: c["version"] for c in before["draft"]["citations"]}["selling-fees"]


def fee_sentences(answer: dict) -> str:
    """The draft's sentences cited from selling-fees (other articles state the fee too)."""
    cited = {c["number"] for c in answer["draft"]["citations"]
             if c["article_id"] == "selling-fees"}
    return " ".join(s["text"] for s in answer["draft"]["sentences"] if cited & set(s["citations"]))
