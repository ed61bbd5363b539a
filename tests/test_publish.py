"""The safe write path: lint gate, history first, atomic write, one-article re-index, the lock."""

from __future__ import annotations

import errno
import os
import threading
import time
import uuid
from dataclasses import replace

import pytest

from suggester import publish as publish_module
from suggester.knowledge.articles import read_article
from suggester.publish import (
    RECOVERY_AUTHOR,
    ArticleNotFound,
    EditConflict,
    LintFailed,
    PublishBusy,
    Publisher,
    WriteFailed,
    publish_lock,
    recover,
    remove_stale_staging,
    source_hash,
)
from suggester.records.store import Store
from suggester.search.index import Indexer, load_chunks, read_generation

ARTICLE = "refund-when"


@pytest.fixture
def indexed(small_settings):
    Indexer(small_settings).sync()
    return small_settings


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "history.sqlite3") as opened:
        yield opened


@pytest.fixture
def publisher(indexed, store):
    return Publisher(indexed, store)


@pytest.fixture
def path(small_kb):
    return small_kb / "faq" / f"{ARTICLE}.md"


def fresh_words() -> str:
    # New text every run, so the vector cache cannot already hold it.
    return f"{uuid.uuid4().hex[:6]}영업일"


def chunk_texts(settings, article_id: str = ARTICLE) -> str:
    return "\n".join(c.text for c in load_chunks(settings) if c.article_id == article_id)


def test_publish_bumps_version_records_history_and_reindexes(publisher, path, indexed):
    generation = read_generation(indexed)
    words = fresh_words()
    source = path.read_text(encoding="utf-8").replace("3~5영업일", words)
    result = publisher.publish(source, author="editor-kim", article_id=ARTICLE)
    article = read_article(path)
    assert (result.version, article.version, article.status) == (3, 3, "published")
    assert words in article.source
    entries = publisher.store.article_history(ARTICLE)
    # The file's state before the first edit is kept too, so version 2 can be restored.
    assert [(e.version, e.action, e.author) for e in entries] == [
        (2, "publish", "kb-file"), (3, "publish", "editor-kim")]
    assert entries[-1].source == article.source
    assert read_generation(indexed) == result.generation > generation
    assert words in chunk_texts(indexed)


def test_every_published_version_stays_in_history(publisher, path):
    sources = []
    for number in range(3):
        source = path.read_text(encoding="utf-8").replace(
            "포인트는 환불 승인 즉시", f"포인트는 {number}번째로 즉시")
        publisher.publish(source, author="editor-kim", article_id=ARTICLE)
        sources.append(path.read_text(encoding="utf-8"))
    entries = publisher.store.article_history(ARTICLE)
    assert [e.version for e in entries] == [2, 3, 4, 5]
    assert [e.source for e in entries[1:]] == sources


def test_draft_of_a_published_article_is_kept_in_history_only(publisher, path, indexed):
    before = path.read_text(encoding="utf-8")
    chunks_before = chunk_texts(indexed)
    result = publisher.save_draft(before.replace("3~5영업일", "초안 문구"), author="editor-kim",
                                  article_id=ARTICLE)
    assert not result.file_written and result.version == 2
    assert path.read_text(encoding="utf-8") == before  # agents are still served the published text
    assert chunk_texts(indexed) == chunks_before
    pending = publisher.pending_draft(ARTICLE)
    assert pending is not None and "초안 문구" in pending.source
    assert "status: draft" in pending.source


def test_new_article_draft_is_written_but_not_indexed(publisher, small_kb, indexed, path):
    source = path.read_text(encoding="utf-8").replace("id: refund-when", "id: refund-new") \
        .replace("related: [shipping-late]", "related: [refund-when]")
    result = publisher.save_draft(source, author="editor-kim")
    new_path = small_kb / "faq" / "refund-new.md"
    assert result.file_written and read_article(new_path).status == "draft"
    assert result.version == 2  # a new article keeps the version it was written with
    assert not chunk_texts(indexed, "refund-new")


def test_archive_keeps_the_file_and_leaves_the_index(publisher, path, indexed):
    assert chunk_texts(indexed)
    result = publisher.archive(ARTICLE, author="editor-kim")
    assert path.exists() and read_article(path).status == "archived"
    assert result.version == 2
    assert not chunk_texts(indexed)
    assert publisher.store.article_history(ARTICLE)[-1].action == "archive"


def test_restore_publishes_an_old_version_as_a_new_one(publisher, path, indexed):
    original = path.read_text(encoding="utf-8")
    publisher.publish(original.replace("3~5영업일", fresh_words()), author="editor-kim",
                      article_id=ARTICLE)
    baseline = publisher.store.article_history(ARTICLE)[0]
    result = publisher.restore(ARTICLE, baseline.id, author="editor-lee")
    restored = read_article(path)
    assert (result.version, restored.version) == (4, 4)
    assert restored.source == original.replace("version: 2", "version: 4")
    assert "3~5영업일" in chunk_texts(indexed)
    assert publisher.store.article_history(ARTICLE)[-1].action == "restore"


def test_lint_errors_refuse_the_save_with_path_and_line(publisher, path):
    before = path.read_text(encoding="utf-8")
    broken = before.replace("category: 반품·환불", "category: 아무거나") \
        .replace("{고객명}님", "{고객님}님")
    with pytest.raises(LintFailed) as caught:
        publisher.publish(broken, author="editor-kim", article_id=ARTICLE)
    lines = {(f.path.name, f.line) for f in caught.value.findings if f.severity == "error"}
    assert (f"{ARTICLE}.md", 6) in lines  # category
    assert any(line > 15 for _, line in lines)  # the unknown placeholder in the body
    assert f"{ARTICLE}.md:6" in str(caught.value)
    assert path.read_text(encoding="utf-8") == before
    assert publisher.store.article_history(ARTICLE) == []


@pytest.mark.parametrize(("old", "new", "words"), [
    ("id: refund-when", "id: refund-other", "id cannot change"),
    ("type: faq", "type: policy", "type cannot change"),
    ("id: refund-when", "id: Refund When", "must be a slug"),
])
def test_id_and_type_of_an_article_cannot_change(publisher, path, old, new, words):
    source = path.read_text(encoding="utf-8").replace(old, new)
    with pytest.raises(LintFailed, match=words):
        publisher.publish(source, author="editor-kim", article_id=ARTICLE)


def test_new_article_cannot_take_an_existing_id(publisher, path):
    with pytest.raises(LintFailed, match="already used"):
        publisher.save_draft(path.read_text(encoding="utf-8"), author="editor-kim")


def test_unknown_article_cannot_be_archived(publisher):
    with pytest.raises(ArticleNotFound):
        publisher.archive("no-such-article", author="editor-kim")


def test_a_stale_edit_is_refused(publisher, path):
    opened = source_hash(read_article(path).source)
    publisher.publish(path.read_text(encoding="utf-8"), author="editor-lee", article_id=ARTICLE)
    with pytest.raises(EditConflict):
        publisher.publish(path.read_text(encoding="utf-8"), author="editor-kim",
                          article_id=ARTICLE, base=opened)


def leftovers(folder) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_failed_replace_leaves_the_old_file_intact(publisher, path, monkeypatch):
    before = path.read_text(encoding="utf-8")

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(publish_module.os, "replace", disk_full)
    with pytest.raises(WriteFailed) as caught:
        publisher.publish(before.replace("3~5영업일", "7영업일"), author="editor-kim",
                          article_id=ARTICLE)
    assert "디스크 공간이 부족" in caught.value.korean and "disk is full" in str(caught.value)
    assert path.read_text(encoding="utf-8") == before
    assert leftovers(path.parent) == []


def test_disk_full_while_writing_records_nothing(publisher, path, monkeypatch):
    before = path.read_text(encoding="utf-8")

    def disk_full(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(publish_module.os, "fsync", disk_full)
    with pytest.raises(WriteFailed, match="disk is full"):
        publisher.publish(before.replace("3~5영업일", "7영업일"), author="editor-kim",
                          article_id=ARTICLE)
    assert path.read_text(encoding="utf-8") == before
    assert publisher.store.article_history(ARTICLE) == []
    assert leftovers(path.parent) == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root ignores directory permissions")
def test_read_only_kb_folder_fails_clearly(publisher, path):
    before = path.read_text(encoding="utf-8")
    path.parent.chmod(0o555)
    try:
        with pytest.raises(WriteFailed) as caught:
            publisher.publish(before.replace("3~5영업일", "7영업일"), author="editor-kim",
                              article_id=ARTICLE)
    finally:
        path.parent.chmod(0o755)
    assert "읽기 전용" in caught.value.korean
    assert path.read_text(encoding="utf-8") == before
    assert publisher.store.article_history(ARTICLE) == []


def test_unusable_data_dir_fails_before_anything_changes(indexed, store, path, tmp_path):
    # A data dir under a regular file cannot be created, even by root.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    publisher = Publisher(replace(indexed, data_dir=blocker / "data"), store)
    before = path.read_text(encoding="utf-8")
    with pytest.raises(WriteFailed, match="cannot write"):
        publisher.publish(before, author="editor-kim", article_id=ARTICLE)
    assert path.read_text(encoding="utf-8") == before
    assert store.article_history(ARTICLE) == []


def test_a_held_lock_makes_publish_wait_then_give_up(indexed, store, path):
    publisher = Publisher(indexed, store, lock_timeout=0.2)
    with publish_lock(indexed), pytest.raises(PublishBusy):
        publisher.publish(path.read_text(encoding="utf-8"), author="editor-kim",
                          article_id=ARTICLE)


def test_concurrent_publishes_do_not_interleave(publisher, path):
    source = path.read_text(encoding="utf-8")
    errors: list[Exception] = []

    def publish(words: str) -> None:
        try:
            publisher.publish(source.replace("3~5영업일", words), author="editor-kim",
                              article_id=ARTICLE)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(f"{n}영업일",)) for n in (6, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    versions = [e.version for e in publisher.store.article_history(ARTICLE)]
    assert versions == [2, 3, 4]
    assert read_article(path).version == 4


def test_history_is_written_before_the_file_is_replaced(publisher, path, monkeypatch):
    # The test hook of issue 7's crash test: between the two steps the history already has
    # the new version while the file is still whole and old.
    monkeypatch.setenv(publish_module.TEST_DELAY_ENV, "0.5")
    before = path.read_text(encoding="utf-8")
    worker = threading.Thread(target=publisher.publish, kwargs={
        "source": before.replace("3~5영업일", "8영업일"), "author": "editor-kim",
        "article_id": ARTICLE})
    worker.start()
    deadline = time.monotonic() + 5
    while len(publisher.store.article_history(ARTICLE)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert publisher.store.article_history(ARTICLE)[-1].version == 3
    assert path.read_text(encoding="utf-8") == before
    worker.join()
    assert "8영업일" in path.read_text(encoding="utf-8")


def test_preview_check_lints_as_if_published(publisher, path):
    draft = path.read_text(encoding="utf-8").replace("status: published", "status: draft")
    without_summary = draft.replace("## 요약", "## 소개")
    messages = [f.message for f in publisher.check(without_summary, article_id=ARTICLE)
                if f.severity == "error"]
    assert "missing section '## 요약'" in messages


def test_crlf_from_browsers_is_stored_as_lf(publisher, path):
    source = path.read_text(encoding="utf-8").replace("\n", "\r\n")
    publisher.publish(source, author="editor-kim", article_id=ARTICLE)
    assert b"\r\n" not in path.read_bytes()


def test_publishing_repairs_an_unreadable_file(publisher, path, indexed):
    good = path.read_text(encoding="utf-8")
    path.write_text("not an article any more", encoding="utf-8")
    result = publisher.publish(good, author="editor-kim", article_id=ARTICLE)
    assert result.version == 2 and read_article(path).source == good
    assert "3~5영업일" in chunk_texts(indexed)


def test_leftovers_of_a_crashed_publish_are_removed(indexed, path):
    leftover = path.parent / f".{path.name}.abc123.publishing.tmp"
    leftover.write_text("half an article", encoding="utf-8")
    assert remove_stale_staging(indexed) == 1
    assert not leftover.exists() and path.exists()


def test_recover_ends_the_history_with_the_served_version(publisher, path, indexed):
    publisher.publish(path.read_text(encoding="utf-8"), author="editor-kim", article_id=ARTICLE)
    served = path.read_text(encoding="utf-8")
    # What a publish killed between its history entry and its file replace leaves behind.
    interrupted = served.replace("version: 3", "version: 4").replace("3~5영업일", "9영업일")
    publisher.store.record_article_version(ARTICLE, version=4, author="editor-lee",
                                           action="publish", source=interrupted)
    (path.parent / f".{path.name}.x1y2.publishing.tmp").write_text(interrupted, "utf-8")
    before = publisher.store.article_history(ARTICLE)

    outcome = recover(indexed, publisher.store)
    assert (outcome.staging_removed, outcome.history_recorded) == (1, [ARTICLE])
    assert outcome.index_repaired == [] and outcome.index_error == ""
    after = publisher.store.article_history(ARTICLE)
    assert after[:-1] == before  # the interrupted version stays, restorable
    assert (after[-1].author, after[-1].version, after[-1].source) == (RECOVERY_AUTHOR, 3, served)
    assert path.read_text(encoding="utf-8") == served
    assert recover(indexed, publisher.store).summary().endswith(
        "the articles, their history and the index agree")


def test_recover_leaves_a_pending_draft_alone(publisher, path, indexed):
    publisher.save_draft(path.read_text(encoding="utf-8").replace("3~5영업일", "초안"),
                         author="editor-kim", article_id=ARTICLE)
    assert recover(indexed, publisher.store).history_recorded == []
    assert publisher.pending_draft(ARTICLE) is not None


def test_recover_repairs_an_index_behind_the_files(publisher, path, indexed):
    path.write_text(path.read_text(encoding="utf-8").replace("3~5영업일", fresh_words()),
                    encoding="utf-8")  # as if killed after the replace, before re-indexing
    outcome = recover(indexed, publisher.store)
    assert outcome.index_repaired and "re-synced the index" in outcome.summary()
    assert Indexer(indexed).verify().ok


def test_recover_starts_even_when_chroma_is_unreachable(publisher, indexed):
    from conftest import free_port

    unreachable = replace(indexed, chroma_host="127.0.0.1", chroma_port=free_port())
    outcome = recover(unreachable, publisher.store)
    assert outcome.index_error and "index not checked" in outcome.summary()

