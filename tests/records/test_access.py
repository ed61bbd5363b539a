"""API tokens and request counts (suggester.records.access) on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from records.test_store import raw_sql
from suggester.errors import InputError
from suggester.records.access import LAST_USED_PRECISION, AccessRecords, token_hash
from suggester.records.store import Store

START = datetime(2026, 11, 24, 9, 0, 30, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    if request.param == "sqlite":
        return tmp_path / "suggester.sqlite3"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def access(target):
    with Store(target) as store:
        yield AccessRecords(store)


def test_a_token_is_stored_hashed_and_found_by_its_secret(access, target):
    token, secret = access.add_token("helpdesk", role="integration", now=START)
    assert secret.startswith("sgt_") and len(secret) > 40
    stored = raw_sql(target, "SELECT token_hash FROM api_tokens")
    assert stored == [(token_hash(secret),)] and secret not in str(stored)
    found = access.token_for(secret, now=START)
    assert found is not None and (found.name, found.role) == ("helpdesk", "integration")
    assert access.token_for(secret + "x", now=START) is None
    assert token.expires_at is None


def test_last_use_is_noted_at_most_once_a_minute(access):
    _, secret = access.add_token("script", role="agent", now=START)
    assert access.tokens()[0].last_used_at is None
    access.token_for(secret, now=START)
    access.token_for(secret, now=START + LAST_USED_PRECISION / 2)
    assert access.tokens()[0].last_used_at == START
    later = START + LAST_USED_PRECISION * 2
    access.token_for(secret, now=later)
    assert access.tokens()[0].last_used_at == later


def test_a_revoked_token_stops_working_and_its_name_can_be_reused(access):
    _, old = access.add_token("script", role="agent", now=START)
    revoked = access.revoke_token("script", now=START)
    assert revoked.state(START) == "revoked"
    assert access.token_for(old, now=START) is None
    _, new = access.add_token("script", role="agent", now=START)
    assert access.token_for(new, now=START) is not None
    assert [t.state(START) for t in access.tokens()] == ["revoked", "active"]
    with pytest.raises(InputError, match="no live token is named 'nobody'"):
        access.revoke_token("nobody")


def test_a_token_expires_on_its_own(access):
    _, secret = access.add_token("temp", role="agent", expires_days=1, now=START)
    assert access.token_for(secret, now=START + timedelta(hours=23)) is not None
    assert access.token_for(secret, now=START + timedelta(days=1)) is None
    assert access.tokens()[0].state(START + timedelta(days=2)) == "expired"


@pytest.mark.parametrize(("name", "role", "days", "words"), [
    ("two words", "agent", None, "without spaces"),
    ("", "agent", None, "1–64 characters"),
    ("script", "admin", None, "role must be one of agent, integration"),
    ("script", "agent", 0, "at least 1 day"),
])
def test_token_validation(access, name, role, days, words):
    with pytest.raises(InputError, match=words):
        access.add_token(name, role=role, expires_days=days)
    assert access.tokens() == []


def test_a_live_name_is_taken(access):
    access.add_token("script", role="agent")
    with pytest.raises(InputError, match="already exists"):
        access.add_token("script", role="integration")


def test_requests_are_counted_per_key_and_minute_across_stores_on_one_database(target):
    with Store(target) as one, Store(target) as other:  # two workers, one database
        first, second = AccessRecords(one), AccessRecords(other)
        assert first.count_request("token:a", now=START) == (1, 30.0)
        assert second.count_request("token:a", now=START + timedelta(seconds=10)) == (2, 20.0)
        assert first.count_request("user:minji", now=START)[0] == 1
        # The next minute starts again, and drops the past minutes' rows.
        assert second.count_request("token:a", now=START + timedelta(seconds=31))[0] == 1
        assert raw_sql(target, "SELECT COUNT(*) FROM api_requests") == [(1,)]
