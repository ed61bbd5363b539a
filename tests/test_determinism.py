"""The same KB gives the same answers however and wherever its index was built (issue 14).

Two indexes of the shipped KB in fresh data dirs: the session's, built with the article files
listed in reverse order (cold on a fresh clone: its vectors computed then), and one built here
in order from the vector cache. Every golden inquiry must get the same ranked articles and
passages, the same analysis and the same draft from both.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from suggester.evaluation.golden import load_golden
from suggester.evaluation.runner import KnownVectors, query_vectors
from suggester.knowledge.articles import discover, read_article
from suggester.knowledge.chunks import chunk_article
from suggester.search.cache import ContentCache
from suggester.search.index import Indexer
from suggester.search.models import resolve_model, shared_embedder
from suggester.search.retrieve import Retriever
from suggester.service import Suggester
from suggester.settings import Settings

from conftest import ROOT, SHIPPED_KB, make_settings

GOLDEN = load_golden("all", ROOT / "eval" / "golden")


def answers(settings: Settings, embedder: KnownVectors) -> dict[str, dict[str, Any]]:
    """What each golden inquiry gets: rankings, analysis and draft, keyed by item id."""
    retriever = Retriever(settings, embedder=embedder)  # type: ignore[arg-type]
    suggester = Suggester(settings, retriever=retriever)
    found = {}
    for item in GOLDEN:
        plain = retriever.search(item.inquiry)
        served = suggester.suggest(item.inquiry, channel=item.channel, log=False)
        found[item.id] = {
            "hybrid": plain.articles, "hybrid_passages": [p.chunk.id for p in plain.passages],
            "served": served.retrieval.articles,
            "served_passages": [p.chunk.id for p in served.passages],
            "grounded": served.retrieval.grounded,
            "types": [(t.category, t.confidence) for t in served.analysis.inquiry_types],
            "flags": served.analysis.flags, "audience": served.analysis.audience,
            "draft": served.draft.text,
        }
    return found


def test_two_builds_of_the_index_answer_every_golden_inquiry_alike(shipped_settings, tmp_path):
    in_order = make_settings(tmp_path / "data", SHIPPED_KB)
    assert Indexer(in_order).sync().embedded == 0  # every vector from the cache
    embedder = KnownVectors(shared_embedder(in_order))
    embedder.add(query_vectors(in_order, embedder, [item.inquiry for item in GOLDEN]))
    reversed_cold, cached = answers(shipped_settings, embedder), answers(in_order, embedder)
    differ = [item_id for item_id in reversed_cold if reversed_cold[item_id] != cached[item_id]]
    assert not differ, [(i, reversed_cold[i], cached[i]) for i in differ[:3]]


def test_cached_vectors_are_the_ones_the_engine_computes_now(shipped_settings):
    # A vector cache filled by another engine build (or another engine under the same model
    # name) would rank a warm checkout apart from a fresh clone; the engine must also give a
    # passage the same vector whatever batch it is embedded in.
    chunks = sorted((c for path in discover(SHIPPED_KB) for c in chunk_article(read_article(path))
                     if not c.internal), key=lambda c: len(c.embed_text))[:6]
    cache = ContentCache(shipped_settings.cache_path)
    try:
        cached = cache.vectors(resolve_model(shipped_settings).cache_key,
                               [c.content_hash for c in chunks])
    finally:
        cache.close()
    texts = [c.embed_text for c in chunks]
    embedder = shared_embedder(shipped_settings)
    batch, backwards = embedder.passage_vectors(texts), embedder.passage_vectors(texts[::-1])
    alone = np.vstack([embedder.passage_vectors([text]) for text in texts])
    assert np.array_equal(batch, alone) and np.array_equal(batch, backwards[::-1])
    assert all(np.array_equal(cached[c.content_hash], batch[n]) for n, c in enumerate(chunks))

