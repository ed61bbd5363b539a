"""The store on a real SQLite file and on a real PostgreSQL server, with the same tests:
round trips, masking on write, validation, users, history, schema versions, threads."""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.pool import ThreadPool

import pytest

from suggester.errors import InputError
from suggester.records.store import (
    SCHEMA_VERSION,
    Correction,
    Store,
    StoreError,
    UnknownArticleVersion,
    UnknownSuggestion,
)

from conftest import free_port

PHONE = "010-2345-6789"
INQUIRY = f"환불 언제 되나요? 연락은 {PHONE} 로 주세요. 주문번호 20261123-000123"
TABLES = {"schema_version", "suggestions", "feedback", "users", "article_history", "kb_revision"}


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "data" / "suggester.sqlite3"


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, db_path):
    """Where a store lives: a SQLite file path, or the URL of a new PostgreSQL database."""
    if request.param == "sqlite":
        return db_path
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(target):
    with Store(target) as opened:
        yield opened


def raw_sql(target, sql, params=()):
    """Run one statement on the database itself, past the Store; return its rows."""
    if isinstance(target, str):
        import psycopg

        with psycopg.connect(target, autocommit=True) as raw:
            cursor = raw.execute(sql.replace("?", "%s"), params or None)
            return cursor.fetchall() if cursor.description else []
    with closing(sqlite3.connect(target)) as raw, raw:
        return raw.execute(sql, params).fetchall()


def raw_error(target):
    """What the database driver raises when a statement is refused."""
    if isinstance(target, str):
        import psycopg

        return psycopg.Error
    return sqlite3.Error


def stored_text(target) -> bytes:
    """Everything the database keeps: SQLite's file, WAL and shared memory; every row in PG."""
    if isinstance(target, str):
        return "\n".join(str(row[0]) for table in sorted(TABLES)
                         for row in raw_sql(target, f"SELECT t::text FROM {table} t")).encode()
    return database_bytes(target)


def log(store, inquiry=INQUIRY, **changes):
    values = dict(
        inquiry=inquiry, channel="chat", audience="buyer",
        analysis={"types": ["refund"], "urgency": "normal"},
        passages=[{"article_id": "refund-when", "version": 3, "chunk_id": "refund-when#2",
                   "section": "정책", "text": "환불은 3영업일 내 처리됩니다."}],
        grounded=True, draft_text="안녕하세요, 리클로짓입니다. 환불은 3영업일 내 처리됩니다.",
        timings={"retrieve": 41.5, "compose": 3},
    )
    values.update(changes)
    return store.log_suggestion(**values)


def database_bytes(path):
    """Every byte SQLite keeps for this database: the file, its WAL and shared memory."""
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_opening_creates_the_schema(target):
    with Store(target) as store:
        assert store.schema_version == SCHEMA_VERSION
    if isinstance(target, str):
        tables = {row[0] for row in raw_sql(
            target, "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'public'")}
    else:
        tables = {row[0] for row in raw_sql(target, "SELECT name FROM sqlite_master")}
    assert TABLES <= tables


def test_a_sqlite_file_is_created_with_its_folder_in_wal_mode(db_path):
    Store(db_path).close()
    assert db_path.exists()
    assert raw_sql(db_path, "PRAGMA journal_mode")[0][0] == "wal"


def test_suggestion_round_trip(store):
    suggestion_id = log(store)
    record = store.get_suggestion(suggestion_id)
    assert len(suggestion_id) == 32 and record.id == suggestion_id
    assert record.channel == "chat" and record.audience == "buyer"
    assert record.analysis == {"types": ["refund"], "urgency": "normal"}
    # Only what a citation needs is kept, never the passage text.
    assert record.passages == [{"article_id": "refund-when", "version": 3,
                                "chunk_id": "refund-when#2", "section": "정책"}]
    assert record.grounded is True
    assert record.timings == {"retrieve": 41.5, "compose": 3.0}
    assert record.created_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - record.created_at) < timedelta(minutes=1)


def test_inquiry_is_masked_but_order_number_kept(store):
    record = store.get_suggestion(log(store))
    assert PHONE not in record.inquiry_masked
    assert "[전화번호]" in record.inquiry_masked
    assert "20261123-000123" in record.inquiry_masked


def test_no_raw_personal_data_reaches_the_database(target):
    store = Store(target)
    suggestion_id = log(
        store, draft_text=f"{PHONE} 로 연락드리겠습니다.",
        analysis={"risk_flags": [f"personal data: {PHONE}"], "quote": "신한 110-123-456789"})
    store.record_feedback(suggestion_id, verdict="edited",
                          final_text=f"고객님 {PHONE} 로 연락드릴게요. 메일 minji@naver.com")
    store.close()
    raw = stored_text(target)
    for secret in (PHONE, "01023456789", "110-123-456789", "minji@naver.com"):
        assert secret.encode() not in raw
    assert "[전화번호]".encode() in raw


def test_analysis_dataclasses_are_stored_as_json(store):
    @dataclass(frozen=True, kw_only=True)
    class Analysis:
        types: tuple[str, ...]
        audience: str

    record = store.get_suggestion(log(store, analysis=Analysis(types=("refund",),
                                                                audience="buyer")))
    assert record.analysis == {"types": ["refund"], "audience": "buyer"}


def test_unknown_suggestion_id(store):
    with pytest.raises(UnknownSuggestion, match="no suggestion has id 'nope'"):
        store.get_suggestion("nope")
    with pytest.raises(UnknownSuggestion) as info:
        store.record_feedback("nope", verdict="used")
    assert isinstance(info.value, InputError)
    assert info.value.suggestion_id == "nope"


def test_recent_suggestions_newest_first_with_limit_and_since(store):
    ids = [log(store, inquiry=f"문의 {n}") for n in range(5)]
    assert [r.id for r in store.recent_suggestions(3)] == ids[:1:-1]
    future = datetime.now(UTC) + timedelta(hours=1)
    assert store.recent_suggestions(10, since=future) == []
    past = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)  # naive means UTC
    assert len(store.recent_suggestions(10, since=past)) == 5
    with pytest.raises(InputError, match="limit must be at least 1"):
        store.recent_suggestions(0)


def test_feedback_round_trip(store):
    suggestion_id = log(store)
    first = store.record_feedback(suggestion_id, verdict="used")
    second = store.record_feedback(suggestion_id, verdict="edited",
                                   final_text=f"수정본 {PHONE}",
                                   corrected_types=["refund", "shipping", "refund"])
    feedback = store.feedback_for(suggestion_id)
    assert [f.id for f in feedback] == [first, second]
    assert feedback[0].verdict == "used" and feedback[0].final_text is None
    assert feedback[1].final_text == "수정본 [전화번호]"
    assert feedback[1].corrected_types == ["refund", "shipping"]
    assert feedback[1].created_at.utcoffset() == timedelta(0)
    assert store.feedback_for(log(store)) == []


@pytest.mark.parametrize(("changes", "words"), [
    ({"verdict": "liked"}, "verdict must be one of used, edited, rejected, got 'liked'"),
    ({"verdict": "edited"}, "'edited' verdict needs the final_text"),
    ({"verdict": "edited", "final_text": "  "}, "'edited' verdict needs the final_text"),
    ({"verdict": "used", "corrected_types": "refund"}, "corrected_types must be a list"),
    ({"verdict": "used", "corrected_types": ["refund", ""]}, "corrected_types must be a list"),
])
def test_feedback_validation(store, changes, words):
    suggestion_id = log(store)
    with pytest.raises(InputError, match=words):
        store.record_feedback(suggestion_id, **changes)
    assert store.feedback_for(suggestion_id) == []


def test_corrections_list_the_latest_correction_per_inquiry(store):
    refund = log(store, inquiry=f"환불 언제 돼요 {PHONE}")
    late = log(store, inquiry="배송이 안 와요")
    untouched = log(store, inquiry="사이즈 문의")
    store.record_feedback(refund, verdict="edited", final_text="수정", corrected_types=["cancel"])
    store.record_feedback(late, verdict="rejected", corrected_types=["shipping_delay"])
    store.record_feedback(refund, verdict="rejected", corrected_types=["refund_timing"])
    store.record_feedback(untouched, verdict="used")
    assert store.corrections() == [
        Correction("배송이 안 와요", ["shipping_delay"]),
        Correction("환불 언제 돼요 [전화번호]", ["refund_timing"]),
    ]
    inquiry, types = store.corrections()[0]
    assert (inquiry, types) == ("배송이 안 와요", ["shipping_delay"])


def test_feedback_keeps_its_author(store):
    suggestion_id = log(store)
    store.record_feedback(suggestion_id, verdict="used", author="minji")
    store.record_feedback(suggestion_id, verdict="rejected", author="token:helpdesk")
    assert [f.author for f in store.feedback_for(suggestion_id)] == ["minji", "token:helpdesk"]


def test_an_undone_correction_teaches_nothing_and_the_one_before_wins_again(store):
    refund = log(store, inquiry="환불 언제 돼요")
    first = store.record_feedback(refund, verdict="used", corrected_types=["cancel"],
                                  author="minji")
    second = store.record_feedback(refund, verdict="used", corrected_types=["shipping"],
                                   author="bora")
    assert store.corrections() == [Correction("환불 언제 돼요", ["shipping"])]
    undone = store.undo_correction(second, by="editor")
    assert undone.corrected_types == ["shipping"] and undone.undone_by is None
    assert store.corrections() == [Correction("환불 언제 돼요", ["cancel"])]
    assert store.corrections(inquiry="환불 언제 돼요") == [Correction("환불 언제 돼요", ["cancel"])]
    assert store.corrections(inquiry="다른 문의") == []
    store.undo_correction(first, by="editor")
    store.undo_correction(first, by="someone-later")  # a second undo changes nothing
    assert store.corrections() == []
    assert [(f.undone_by, f.undone_at is not None) for f in store.feedback_for(refund)] == \
        [("editor", True), ("editor", True)]


def test_only_a_correction_can_be_undone(store):
    used = store.record_feedback(log(store), verdict="used")
    for feedback_id in (used, 999_999):
        with pytest.raises(InputError, match="is no type correction"):
            store.undo_correction(feedback_id, by="editor")


def test_users_passwords_are_hashed_and_checked(store, target):
    assert not store.has_users()
    user = store.add_user("minji", "correct horse", role="editor")
    assert user.username == "minji" and user.role == "editor"
    assert store.has_users()
    stored_hash = raw_sql(target, "SELECT password_hash FROM users WHERE username = 'minji'")[0][0]
    assert stored_hash != "correct horse" and "correct horse" not in stored_hash
    assert store.verify_password("minji", "correct horse") == user
    assert store.verify_password("minji", "wrong horse!") is None
    assert store.verify_password("nobody", "correct horse") is None
    assert store.get_user("minji") == user
    assert store.get_user("nobody") is None


def test_user_validation(store):
    store.add_user("admin", "s3cret-pass", role="admin")
    with pytest.raises(InputError, match="user 'admin' already exists"):
        store.add_user("admin", "another-pass")
    with pytest.raises(InputError, match="role must be one of agent, editor, admin"):
        store.add_user("jisoo", "s3cret-pass", role="root")
    with pytest.raises(InputError, match="at least 8 characters"):
        store.add_user("jisoo", "short")
    with pytest.raises(InputError, match="username must be"):
        store.add_user("ji soo", "s3cret-pass")
    store.add_user("bora", "s3cret-pass")
    assert [(u.username, u.role) for u in store.list_users()] == [("admin", "admin"),
                                                                 ("bora", "agent")]


def test_history_keeps_every_version_in_order(store):
    ids = [
        store.record_article_version("refund-when", version=1, author="minji", action="draft",
                                     source="# v1"),
        store.record_article_version("refund-when", version=1, author="minji",
                                     action="publish", source="# v1"),
        store.record_article_version("shipping-late", version=1, author="bora",
                                     action="publish", source="# other"),
        store.record_article_version("refund-when", version=2, author="jisoo",
                                     action="publish", source="# v2"),
        store.record_article_version("refund-when", version=2, author="admin",
                                     action="archive", source="# v2"),
    ]
    history = store.article_history("refund-when")
    assert [h.id for h in history] == [ids[0], ids[1], ids[3], ids[4]]
    assert [(h.version, h.action, h.author) for h in history] == [
        (1, "draft", "minji"), (1, "publish", "minji"), (2, "publish", "jisoo"),
        (2, "archive", "admin")]
    assert store.article_version("refund-when", ids[3]).source == "# v2"
    with pytest.raises(UnknownArticleVersion):
        store.article_version("refund-when", ids[2])  # belongs to another article


def test_history_is_append_only(store, target):
    store.record_article_version("refund-when", version=1, author="minji", action="publish",
                                 source="# v1")
    refused = ["DELETE FROM article_history", "UPDATE article_history SET source = 'x'"]
    if isinstance(target, str):
        refused.append("TRUNCATE article_history")
    for sql in refused:
        with pytest.raises(raw_error(target), match="append-only"):
            raw_sql(target, sql)
    assert [h.source for h in store.article_history("refund-when")] == ["# v1"]


@pytest.mark.parametrize(("changes", "words"), [
    ({"action": "delete"}, "action must be one of publish, archive, restore, draft"),
    ({"version": 0}, "version must be a whole number of at least 1"),
    ({"author": " "}, "author must not be empty"),
])
def test_history_validation(store, changes, words):
    values = {"version": 1, "author": "minji", "action": "publish", "source": "# v1"} | changes
    with pytest.raises(InputError, match=words):
        store.record_article_version("refund-when", **values)


def test_concurrent_writes_lose_no_rows(store):
    threads, per_thread = 8, 25
    errors: list[BaseException] = []

    def work(n):
        try:
            for i in range(per_thread):
                suggestion_id = log(store, inquiry=f"스레드 {n} 문의 {i}")
                store.record_feedback(suggestion_id, verdict="used")
        except BaseException as exc:  # reported by the assert below, not lost in the thread
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    rows = store.recent_suggestions(1000)
    assert len(rows) == len({r.id for r in rows}) == threads * per_thread


def test_two_stores_on_one_database_share_writes(target):
    # The CLI and the server (or two hosts) open the same database; two stores stand in.
    with Store(target) as first, Store(target) as second:
        def work(store, tag):
            for i in range(20):
                log(store, inquiry=f"{tag} {i}")

        workers = [threading.Thread(target=work, args=(s, t))
                   for s, t in ((first, "a"), (second, "b"))]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert len(first.recent_suggestions(100)) == 40


def test_reopening_keeps_the_data(target):
    with Store(target) as store:
        suggestion_id = log(store)
        store.record_feedback(suggestion_id, verdict="used")
        store.add_user("minji", "correct horse")
        store.record_article_version("refund-when", version=1, author="minji",
                                     action="publish", source="# v1")
    with Store(target) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.get_suggestion(suggestion_id).inquiry_masked.startswith("환불 언제")
        assert [f.verdict for f in store.feedback_for(suggestion_id)] == ["used"]
        assert store.verify_password("minji", "correct horse") is not None
        assert len(store.article_history("refund-when")) == 1


def test_a_file_that_is_not_a_database_is_a_clear_error(db_path):
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable Suggester database"):
        Store(db_path)


def test_a_newer_schema_is_refused(target):
    Store(target).close()
    raw_sql(target, "INSERT INTO schema_version VALUES (?, 'later')", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer than this Suggester knows"):
        Store(target)


def test_an_old_database_is_migrated_on_open(target):
    Store(target).close()
    # Back to schema version 2: the migrations from 3 on are undone by hand.
    raw_sql(target, "DELETE FROM schema_version WHERE version >= 3")
    for table in ("feature_requests", "feature_groups", "incident_events", "incident_signals",
                  "incidents", "login_locks", "login_failures", "kb_revision", "api_tokens",
                  "api_requests"):
        raw_sql(target, f"DROP TABLE {table}")
    raw_sql(target, "DROP INDEX feedback_by_undone_at")
    for column in ("author", "undone_by", "undone_at"):
        raw_sql(target, f"ALTER TABLE feedback DROP COLUMN {column}")
    with Store(target) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.kb_revision() == 0
        assert store.login_locked_until(["user:minji"]) is None
        store.record_feedback(log(store), verdict="used", author="minji")


def test_every_history_entry_bumps_the_kb_revision(store):
    assert store.kb_revision() == 0 and store.latest_history_ids() == {}
    first = store.record_article_version("refund-when", version=1, author="minji",
                                         action="publish", source="# v1")
    other = store.record_article_version("shipping-late", version=1, author="bora",
                                         action="draft", source="# draft")
    newest = store.record_article_version("refund-when", version=2, author="minji",
                                          action="publish", source="# v2")
    assert store.kb_revision() == 3
    assert store.latest_history_ids() == {"refund-when": newest, "shipping-late": other}
    assert first < newest


def test_five_failed_logins_lock_a_key_for_the_lockout_in_every_store_on_the_database(target):
    start = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    limits = {"window": 300.0, "lockout": 300.0, "max_failures": 5}
    with Store(target) as one, Store(target) as other:  # two workers, one database
        for second in range(4):
            one.record_login_failure(["user:minji", "ip:10.0.0.1"],
                                     now=start + timedelta(seconds=second), **limits)
        assert other.login_locked_until(["user:minji"]) is None
        other.record_login_failure(["user:minji"], now=start + timedelta(seconds=4), **limits)
        assert one.login_locked_until(["user:minji", "ip:10.0.0.1"]) == \
            start + timedelta(seconds=304)
        assert one.login_locked_until(["ip:10.0.0.1"]) is None  # four failures only
        one.clear_login_failures("user:minji")
        assert other.login_locked_until(["user:minji"]) is None


def test_failures_older_than_the_window_do_not_count(store):
    start = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    for minute in range(5):  # one failure every 2 minutes: never 5 within 5 minutes
        store.record_login_failure(["user:bora"], now=start + timedelta(minutes=2 * minute),
                                   window=300.0, lockout=300.0, max_failures=5)
    assert store.login_locked_until(["user:bora"]) is None


def test_latest_versions_are_the_newest_entry_of_each_article(store):
    store.record_article_version("refund-when", version=1, author="minji", action="publish",
                                 source="# v1")
    store.record_article_version("shipping-late", version=1, author="bora", action="draft",
                                 source="# draft")
    newest = store.record_article_version("refund-when", version=2, author="minji",
                                          action="publish", source="# v2")
    latest = store.latest_versions()
    assert set(latest) == {"refund-when", "shipping-late"}
    assert (latest["refund-when"].id, latest["refund-when"].source) == (newest, "# v2")
    assert latest["shipping-late"].action == "draft"


def test_postgres_reaches_the_same_database_from_a_second_store(postgres_url):
    with Store(postgres_url) as first, Store(postgres_url) as second:
        assert first.shared
        first.record_article_version("a", version=1, author="x", action="publish", source="s")
        assert second.kb_revision() == 1


def test_an_unreachable_postgres_names_host_and_port_but_not_the_password():
    port = free_port()  # nothing listens there
    with pytest.raises(StoreError) as caught:
        Store(f"postgresql://cx:s3cret-pw@127.0.0.1:{port}/suggester")
    message = str(caught.value)
    assert f"127.0.0.1:{port}/suggester" in message and "SUGGESTER_DATABASE_URL" in message
    assert "s3cret-pw" not in message


def test_postgres_recovers_when_the_server_drops_its_connections(postgres_url):
    with Store(postgres_url) as store:
        with ThreadPool(3) as pool:  # several pooled connections, all about to be dropped
            pool.map(lambda _: store.has_users(), range(6))
        raw_sql(postgres_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        with pytest.raises(StoreError, match="lost the connection"):
            store.has_users()
        assert store.has_users() is False  # the next call connects afresh


def test_a_postgres_database_of_another_application_is_refused(postgres_url):
    raw_sql(postgres_url, "CREATE TABLE suggestions (something_else INTEGER)")
    with pytest.raises(StoreError, match="not a usable Suggester database"):
        Store(postgres_url)


def test_exclusive_locks_span_stores_on_postgres(target):
    from suggester.records.database import StoreBusy

    with Store(target) as first, Store(target) as second:
        with first.exclusive("publish", timeout=1):
            if isinstance(target, str):
                started = time.monotonic()
                with pytest.raises(StoreBusy, match="publish lock"), \
                        second.exclusive("publish", timeout=0.3):
                    pass
                assert time.monotonic() - started < 2
            else:  # one host: the publish file lock serialises, the store adds nothing
                with second.exclusive("publish", timeout=0.3):
                    pass
        with second.exclusive("publish", timeout=1):
            pass


def test_stores_opening_a_new_database_at_once_migrate_it_once(target):
    # Several workers (or hosts) start together on an empty database.
    with ThreadPool(4) as pool:
        stores = pool.map(lambda _: Store(target), range(4))
    try:
        assert {store.schema_version for store in stores} == {SCHEMA_VERSION}
        versions = raw_sql(target, "SELECT version FROM schema_version ORDER BY version")
        assert [row[0] for row in versions] == list(range(1, SCHEMA_VERSION + 1))
    finally:
        for store in stores:
            store.close()
