"""Several app servers: each its own KB copy and data dir, one PostgreSQL, one Chroma server.

Publishing on host A must reach host B's files and index through the shared history; B never
rolls back what A published, and the shared Chroma collection keeps what both serve.
"""

from __future__ import annotations

import shutil
import time
import uuid
from datetime import UTC, datetime

import pytest

from suggester.knowledge.articles import read_article
from suggester.publish import EditConflict, Publisher, set_front_matter, source_hash
from suggester.records.store import ArticleVersion, Store
from suggester.replicate import Replica, served_version
from suggester.search.index import Indexer, load_chunks, open_chroma, open_collection
from suggester.search.models import served_collection

from conftest import DATA, make_settings

ARTICLE = "refund-when"


class Host:
    """One app server: settings, its own store connection, publisher and replica."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.store = Store(settings.database_url)
        self.replica = Replica(settings, self.store)
        self.publisher = Publisher(settings, self.store, replica=self.replica)

    @property
    def path(self):
        return self.settings.kb_dir / "faq" / f"{ARTICLE}.md"

    def chunk_text(self, article_id: str = ARTICLE) -> str:
        return "\n".join(c.text for c in load_chunks(self.settings) if c.article_id == article_id)

    def publish_edit(self, old: str, new: str):
        source = self.path.read_text(encoding="utf-8")
        assert old in source
        return self.publisher.publish(source.replace(old, new), author="minji",
                                      article_id=ARTICLE, base=source_hash(source))


@pytest.fixture
def hosts(tmp_path, postgres_url, chroma_server):
    """Hosts A and B, each with the small KB indexed into one shared Chroma collection."""
    host, port = chroma_server
    collection = f"replica-{uuid.uuid4().hex[:8]}"
    made = []
    for name in ("a", "b"):
        shutil.copytree(DATA / "kb", tmp_path / name / "kb")
        settings = make_settings(tmp_path / name / "data", tmp_path / name / "kb",
                                 database_url=postgres_url, chroma_host=host,
                                 chroma_port=port, collection=collection)
        Indexer(settings).sync()
        made.append(Host(settings))
    yield made
    for each in made:
        each.replica.stop()
        each.store.close()


def chroma_texts(settings, article_id: str = ARTICLE) -> list[str]:
    collection = open_collection(open_chroma(settings), served_collection(settings))
    found = collection.get(where={"article_id": article_id}, include=["documents"])
    return found["documents"]


def test_a_publish_on_one_host_reaches_the_other_hosts_files_and_index(hosts):
    a, b = hosts
    published = a.publish_edit("3~5영업일", "2~4영업일")
    assert "2~4영업일" in a.chunk_text() and "2~4영업일" not in b.chunk_text()

    caught = b.replica.catch_up()

    assert caught.written == [ARTICLE]
    assert b.path.read_text(encoding="utf-8") == a.path.read_text(encoding="utf-8")
    assert read_article(b.path).version == published.version
    assert "2~4영업일" in b.chunk_text() and "3~5영업일" not in b.chunk_text()
    assert any("2~4영업일" in text for text in chroma_texts(b.settings))
    assert b.replica.catch_up().written == []  # nothing new: no work


def test_archiving_on_one_host_stops_the_other_serving_it_and_keeps_the_rest(hosts):
    a, b = hosts
    a.publisher.archive(ARTICLE, author="minji")
    b.replica.catch_up()
    assert read_article(b.path).status == "archived"
    assert b.chunk_text() == "" and chroma_texts(b.settings) == []
    # The other article's chunks, which both hosts indexed, are still in the shared Chroma.
    assert chroma_texts(b.settings, "shipping-late") and b.chunk_text("shipping-late")


def test_a_draft_of_a_published_article_stays_in_history_on_every_host(hosts):
    a, b = hosts
    source = a.path.read_text(encoding="utf-8")
    a.publisher.save_draft(source.replace("3~5영업일", "초안 문구"), author="minji",
                           article_id=ARTICLE)
    caught = b.replica.catch_up()
    assert caught.written == []
    assert b.path.read_text(encoding="utf-8") == source
    assert "초안 문구" not in b.chunk_text()


def test_a_new_article_published_on_one_host_is_created_on_the_other(hosts):
    a, b = hosts
    source = a.path.read_text(encoding="utf-8")
    new = set_front_matter(source.replace("id: refund-when", "id: refund-late"),
                           title="환불이 늦어요", version=1)
    a.publisher.publish(new, author="minji")
    b.replica.catch_up()
    assert (b.settings.kb_dir / "faq" / "refund-late.md").exists()
    assert b.chunk_text("refund-late")


def test_a_host_that_is_behind_catches_up_before_its_own_publish(hosts):
    a, b = hosts
    stale = b.path.read_text(encoding="utf-8")  # what B's editor page showed
    a.publish_edit("3~5영업일", "2~4영업일")
    with pytest.raises(EditConflict):
        b.publisher.publish(stale.replace("즉시~1영업일", "즉시"), author="bora",
                            article_id=ARTICLE, base=source_hash(stale))
    # Reloaded, B's editor builds on A's version: both edits survive, versions keep rising.
    fresh = b.path.read_text(encoding="utf-8")
    result = b.publish_edit("즉시~1영업일", "즉시")
    assert "2~4영업일" in fresh
    a.replica.catch_up()
    text = a.path.read_text(encoding="utf-8")
    assert "2~4영업일" in text and "간편결제는 즉시 안에" in text
    versions = [h.version for h in a.store.article_history(ARTICLE) if h.action == "publish"]
    assert versions == sorted(versions) and versions[-1] == result.version


def test_a_local_file_newer_than_the_history_is_kept(hosts):
    a, b = hosts
    a.publish_edit("3~5영업일", "2~4영업일")
    newer = set_front_matter(b.path.read_text(encoding="utf-8"), version=99)
    b.path.write_text(newer, encoding="utf-8")
    caught = b.replica.catch_up()
    assert caught.kept == [ARTICLE] and b.path.read_text(encoding="utf-8") == newer


def test_the_background_poller_picks_up_a_publish_within_a_second(hosts):
    a, b = hosts
    b.replica.poll_seconds = 0.1
    b.replica.catch_up()
    b.replica.ensure_polling()
    b.replica.ensure_polling()  # idempotent: one poller per process
    a.publish_edit("3~5영업일", "2~4영업일")
    deadline = time.monotonic() + 10
    while "2~4영업일" not in b.chunk_text():
        assert time.monotonic() < deadline, "host B did not catch up within 10 s"
        time.sleep(0.05)
    # Already caught up: nothing to write or re-index. (The poller may still be between
    # writing the index and noting the revision, so this poll can see the old revision and
    # take the lock once — but it finds nothing to do.)
    again = b.replica.poll()
    assert again is None or (not again.written and not again.reindexed)


def entry(n: int, action: str) -> ArticleVersion:
    return ArticleVersion(id=n, article_id="x", version=n, author="minji",
                          created_at=datetime.now(UTC), action=action, source=f"v{n}")


@pytest.mark.parametrize(("actions", "served"), [
    ([], None),
    (["draft"], 1),                       # a new article's draft is its file
    (["draft", "publish"], 2),
    (["publish", "draft"], 1),            # the draft of a published article waits
    (["publish", "draft", "publish"], 3),
    (["publish", "archive", "draft"], 3),  # an archived article's file takes the draft
    (["publish", "archive", "restore"], 3),
])
def test_served_version_follows_the_publishers_rule(actions, served):
    history = [entry(n, action) for n, action in enumerate(actions, start=1)]
    result = served_version(history)
    assert (result.id if result else None) == served


# -- two real server processes ----------------------------------------------------------------

QUESTION = {"inquiry": "판매 수수료는 몇 퍼센트예요?", "audience": "seller"}
CATCH_UP_LIMIT_S = 15  # the poll interval is 1 s; the rest is one article's re-index


def citations(answer: dict) -> dict[str, int]:
    return {c["article_id"]: c["version"] for c in answer["draft"]["citations"]}


def wait_until(check, what: str, seconds: float) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, f"{what} took over {seconds} s"
        time.sleep(0.2)
    return time.monotonic() - started


@pytest.mark.slow
def test_two_servers_share_publishes_through_postgres_and_chroma(tmp_path, postgres_url,
                                                                 chroma_server):
    from suggester.evaluation.serving import EditorSession, Server, make_token, post_json

    from conftest import PASSWORDS, SHIPPED_KB

    collection = f"hosts-{uuid.uuid4().hex[:8]}"
    servers = []
    for name in ("a", "b"):
        shutil.copytree(SHIPPED_KB, tmp_path / name / "kb")
        settings = make_settings(tmp_path / name / "data", tmp_path / name / "kb",
                                 database_url=postgres_url, chroma_host=chroma_server[0],
                                 chroma_port=chroma_server[1], collection=collection)
        Indexer(settings).sync()
        servers.append(Server(kb_dir=settings.kb_dir, data_dir=settings.data_dir,
                              cache_dir=settings.cache_path.parent, workers=1, environ={
                                  "SUGGESTER_DATABASE_URL": postgres_url,
                                  "SUGGESTER_CHROMA_HOST": chroma_server[0],
                                  "SUGGESTER_CHROMA_PORT": str(chroma_server[1]),
                                  "SUGGESTER_COLLECTION": collection}))
    with Store(postgres_url) as store:
        store.add_user("editor", PASSWORDS["editor"], role="editor")
    api_token = make_token(postgres_url, "agent-script")
    with servers[0] as a, servers[1] as b:
        def ask_b() -> dict:
            status, answer = post_json(b.base_url, "/api/suggest", QUESTION, token=api_token)
            assert status == 200, answer
            return answer

        before = ask_b()
        assert "5%" in before["draft"]["text"] and "selling-fees" in citations(before)

        editor = EditorSession(a.base_url, "editor", PASSWORDS["editor"])
        published = editor.publish("selling-fees", lambda source: source.replace("5%", "7%"))
        assert published.ok, published.message

        answers = [before]

        def b_cites_the_edit() -> bool:
            answers.append(ask_b())
            return "7%" in answers[-1]["draft"]["text"]

        took = wait_until(b_cites_the_edit, "host B citing the edit", CATCH_UP_LIMIT_S)
        after = answers[-1]
        assert "5%" not in after["draft"]["text"]
        assert citations(after)["selling-fees"] == published.version > \
            citations(before)["selling-fees"]
        assert "7%" in (tmp_path / "b" / "kb" / "policy" / "selling-fees.md").read_text()

        _, base, token = editor.source("selling-fees")
        status, _ = editor.post_form("/editor/selling-fees/archive",
                                     {"csrf_token": token, "base": base})
        assert status == 200
        wait_until(lambda: "selling-fees" not in citations(ask_b()),
                   "host B dropping the archived article", CATCH_UP_LIMIT_S)
        print(f"host B cited the edit {took:.1f} s after the publish on host A returned")
    for server in servers:
        assert "Traceback" not in server.output, server.output[-3000:]


def test_a_change_scheduled_on_one_host_switches_over_on_the_other_by_date(hosts):
    import datetime as dt

    from suggester.service import Suggester

    a, b = hosts
    day = dt.date.today() + dt.timedelta(days=7)
    source = a.path.read_text(encoding="utf-8").replace("3~5영업일", "2~4영업일")
    successor = set_front_matter(source.replace("id: refund-when", "id: refund-when-next"),
                                 title="환불은 언제 되나요 (변경)", version=1,
                                 effective_from=day.isoformat(), supersedes=ARTICLE)
    a.publisher.publish(successor, author="minji")
    b.replica.catch_up()
    inquiry = "카드로 결제했는데 환불 언제 돼요?"
    for host in (a, b):
        service = Suggester(host.settings)
        today = service.suggest(inquiry, audience="buyer", log=False)
        assert "3~5영업일" in today.draft.text and "2~4영업일" not in today.draft.text
        [note] = today.to_dict()["scheduled_changes"]
        assert note["successor_id"] == "refund-when-next"
        later = service.suggest(inquiry, audience="buyer", log=False, as_of=day)
        assert "2~4영업일" in later.draft.text and "3~5영업일" not in later.draft.text
        assert {c.article_id for c in later.draft.citations} == {"refund-when-next"}
