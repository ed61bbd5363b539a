"""Sign-in, roles, CSRF, the login rate limit, the users CLI and the first admin."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest
from click.testing import CliRunner

from suggester.cli import main
from suggester.records.store import Store
from web.auth import bootstrap_admin, login_required
from web.security import LoginLimiter

from conftest import PASSWORDS, add_users, console_csrf, form_token, sign_in


@pytest.fixture
def users(app):
    add_users(app)
    # A page only agents and up may see, standing in for the console until it is wired.
    app.add_url_rule("/_agents_only", "agents_only", login_required()(lambda: "agents only"))
    return app


def test_login_success_sets_a_hardened_session_cookie(users, client):
    response = sign_in(client, "editor")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/editor/").status_code == 200


def test_login_failure_shows_one_message_for_user_and_password(users, client):
    wrong_password = sign_in(client, "editor", "not-the-password")
    unknown_user = sign_in(client, "nobody", "whatever-password")
    for response in (wrong_password, unknown_user):
        assert response.status_code == 401
        assert "아이디 또는 비밀번호가 올바르지 않습니다" in response.get_data(as_text=True)
    assert client.get("/editor/").status_code == 302


def test_logout_ends_the_session(users, client):
    sign_in(client, "editor")
    token = form_token(client.get("/editor/").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/editor/").headers["Location"].startswith("/login")


def test_login_is_refused_for_five_minutes_after_five_failures(users, client, app):
    now = [1_790_000_000.0]
    app.extensions["suggester.login_limiter"] = LoginLimiter(app.extensions["suggester.store"],
                                                             clock=lambda: now[0])
    for _ in range(5):
        assert sign_in(client, "editor", "wrong-password").status_code == 401
    refused = sign_in(client, "editor")  # even the right password
    assert refused.status_code == 429
    assert "로그인 시도가 너무 많습니다" in refused.get_data(as_text=True)
    now[0] += 301
    assert sign_in(client, "editor").status_code == 302


def test_failures_from_one_address_lock_out_other_usernames(users, client):
    for name in ("a1", "a2", "a3", "a4", "a5"):
        sign_in(client, name, "wrong-password")
    assert sign_in(client, "agent").status_code == 429


def test_login_only_redirects_to_this_site(users, client):
    token = form_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": "agent", "password": PASSWORDS["agent"],
                                           "csrf_token": token, "next": "//evil.example/x"})
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize(("token", "status"), [(None, 400), ("forged-token", 403)])
def test_forms_without_the_right_csrf_token_are_refused(users, client, token, status):
    client.get("/login")  # the session now has a token, just not the one sent
    data = {"username": "editor", "password": PASSWORDS["editor"]}
    if token:
        data["csrf_token"] = token
    response = client.post("/login", data=data)
    assert response.status_code == status
    assert "보안 토큰" in response.get_data(as_text=True)


def test_editor_form_posts_need_the_csrf_token_too(users, client):
    sign_in(client, "editor")
    response = client.post("/editor/refund-timing/archive", data={})
    assert response.status_code == 400


def test_json_api_takes_a_session_with_its_csrf_header(users, client):
    sign_in(client, "agent")
    response = client.post("/api/suggest", json={"inquiry": "환불 언제 돼요"},
                           headers={"X-CSRF-Token": console_csrf(client)})
    assert response.status_code == 200
    assert client.post("/api/suggest", json={"inquiry": "환불 언제 돼요"}).status_code == 403


@pytest.mark.parametrize("path", ["/editor/", "/editor/refund-timing/edit",
                                  "/editor/refund-timing/history", "/editor/new"])
def test_agents_get_403_on_editor_pages(users, client, path):
    sign_in(client, "agent")
    response = client.get(path)
    assert response.status_code == 403
    assert "편집자 권한" in response.get_data(as_text=True)


def test_admins_may_edit(users, client):
    sign_in(client, "admin")
    assert client.get("/editor/").status_code == 200


def test_anonymous_users_are_sent_to_the_login_page(users, client):
    response = client.get("/editor/refund-timing/edit")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/editor/refund-timing/edit"
    assert client.get("/_agents_only").status_code == 302


def test_anonymous_json_requests_get_401(users, client):
    client.get("/login")
    with client.session_transaction() as session:
        token = session["csrf"]
    response = client.post("/editor/preview", json={"source": "x"},
                           headers={"X-CSRF-Token": token})
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"


def test_login_required_lets_every_role_reach_agent_pages(users, client):
    sign_in(client, "agent")
    assert client.get("/_agents_only").get_data(as_text=True) == "agents only"


def test_a_removed_role_takes_effect_at_once(users, client, app):
    sign_in(client, "editor")
    # The session only names the user; the role is read on each request.
    with closing(sqlite3.connect(app.extensions["suggester.store"].path)) as db, db:
        db.execute("UPDATE users SET role = 'agent' WHERE username = 'editor'")
    assert client.get("/editor/").status_code == 403


def test_bootstrap_admin_creates_one_admin_once(tmp_path):
    with Store(tmp_path / "db.sqlite3") as store:
        password = bootstrap_admin(store)
        assert password and store.verify_password("admin", password).role == "admin"
        assert bootstrap_admin(store) is None


def test_users_cli_adds_and_lists(tmp_path):
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path)]
    added = runner.invoke(main, [*base, "users", "add", "kim", "--role", "editor",
                                 "--password-stdin"], input="long-enough-pw\n")
    assert added.exit_code == 0, added.output
    prompted = runner.invoke(main, [*base, "users", "add", "lee"],
                             input="another-password\nanother-password\n")
    assert prompted.exit_code == 0, prompted.output
    listed = runner.invoke(main, [*base, "users", "list"])
    assert "kim\teditor" in listed.output and "lee\tagent" in listed.output
    with Store(tmp_path / "suggester.sqlite3") as store:
        assert store.verify_password("kim", "long-enough-pw") is not None


def test_users_cli_refuses_short_passwords_clearly(tmp_path):
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "users", "add", "kim",
                                       "--password-stdin"], input="short\n")
    assert result.exit_code == 2
    assert "at least 8 characters" in result.output
