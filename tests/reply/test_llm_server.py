"""LLM drafting against a real OpenAI-compatible server: llama-cpp-python with Gemma 3 270M.

`make test-llm` installs both (scripts/install-llm.sh) and runs these; elsewhere they skip.
Gemma 3 270M is far too small to write good Korean, so these check the contract, not prose:
the request our client sends, the timeout, the validation of what comes back, the fallback to
the composer, and that the CLI and the evaluation report which drafter was used.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from llama_server import llama_server

from suggester.cli import main
from suggester.reply.draft_check import check_draft
from suggester.reply.llm import LLMDrafter, build_messages, prompt_passages

from conftest import ROOT, SHIPPED_KB, TEST_CACHE, free_port

# slow too: a server process and seconds per draft, like the other server tests.
pytestmark = [pytest.mark.llm, pytest.mark.slow]

MODEL = "gemma-3-270m"
# Generous: a draft takes seconds on 2 cores, and CI shares them with other work.
TIMEOUT_S = 120.0
INQUIRIES = ["환불 언제 돼요?", "반품 배송비는 누가 내나요?", "판매 수수료가 얼마예요?"]


@pytest.fixture(scope="module")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The chat server; its base URL (…/v1)."""
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    # The GGUF carries no chat template: without the format the server guesses llama-2.
    with llama_server(MODEL, log_path, "--chat_format", "gemma", "--n_ctx", "8192") as url:
        yield url


@pytest.fixture(scope="module")
def llm_settings(shipped_settings, llm_server):
    return replace(shipped_settings, llm_base_url=llm_server, llm_model=MODEL,
                   llm_timeout=TIMEOUT_S)


@pytest.fixture(scope="module")
def llm_suggester(llm_settings, shipped_retriever):
    from suggester.service import Suggester

    return Suggester(llm_settings, retriever=shipped_retriever)


def test_the_request_is_an_openai_chat_completion_with_our_timeout(llm_settings,
                                                                   shipped_suggester):
    sent: list[httpx.Request] = []
    client = httpx.Client(event_hooks={"request": [sent.append]})
    drafter = LLMDrafter(llm_settings, http_client=client)
    suggestion = shipped_suggester.suggest(INQUIRIES[0], log=False)
    passages = prompt_passages(suggestion.draft, suggestion.retrieval,
                               shipped_suggester.retriever.snapshot().chunks)
    text = drafter.complete(build_messages(suggestion.analysis, passages, suggestion.draft))
    assert isinstance(text, str) and text  # the server answered in the OpenAI shape
    (request,) = sent  # no retry
    assert request.method == "POST" and request.url.path == "/v1/chat/completions"
    import json

    body = json.loads(request.content)
    assert body["model"] == MODEL and body["stream"] is False
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert "[1]" in body["messages"][0]["content"]
    assert body["max_tokens"] > 0 and body["temperature"] < 1
    assert request.extensions["timeout"]["read"] == TIMEOUT_S


def test_a_suggestion_is_a_checked_llm_draft_or_the_composers_with_the_reason(
        llm_suggester, capsys):
    chunks = llm_suggester.retriever.snapshot().chunks
    for inquiry in INQUIRIES:
        suggestion = llm_suggester.suggest(inquiry, log=False)
        draft, attempt = suggestion.draft, suggestion.draft.llm
        assert attempt is not None and attempt.model == MODEL and attempt.latency_ms > 0
        if draft.source == "llm":
            assert attempt.status == "accepted" and draft.citations
            # Every citation resolves to a customer-facing passage the model was given...
            given = {c.id for c in prompt_passages(draft, suggestion.retrieval, chunks)}
            assert {c.chunk_id for c in draft.citations} <= given
            assert not any(chunks[c.chunk_id].internal for c in draft.citations)
            # ...and the draft passes the validator again as the agent sees it.
            texts = [chunks[c.chunk_id].text for c in draft.citations]
            assert check_draft(draft.cited_text, texts).ok
        else:
            assert draft.source == "composer" and attempt.status == "rejected"
            assert attempt.reason and attempt.detail
            assert draft.citations  # the composer's grounded draft, unchanged
        with capsys.disabled():
            print(f"\n{inquiry} → {draft.source} {attempt.status} {attempt.reason} "
                  f"{attempt.latency_ms:.0f} ms")


def test_a_tiny_timeout_falls_back_with_reason_timeout(llm_settings, shipped_retriever):
    from suggester.service import Suggester

    hasty = Suggester(replace(llm_settings, llm_timeout=0.001), retriever=shipped_retriever)
    suggestion = hasty.suggest(INQUIRIES[0], log=False)
    assert suggestion.draft.source == "composer"
    assert suggestion.draft.llm.status == "rejected"
    assert suggestion.draft.llm.reason == "timeout"
    assert suggestion.timings_ms["llm_ms"] < 2000


def test_a_dead_port_falls_back_with_reason_error(llm_settings, shipped_retriever):
    from suggester.service import Suggester

    dead = Suggester(replace(llm_settings, llm_base_url=f"http://127.0.0.1:{free_port()}/v1"),
                     retriever=shipped_retriever)
    suggestion = dead.suggest(INQUIRIES[0], log=False)
    assert suggestion.draft.source == "composer" and suggestion.draft.llm.reason == "error"


def test_suggest_command_prints_the_drafter_used_and_streams(llm_settings, tmp_path: Path):
    result = CliRunner().invoke(main, [
        "--data-dir", str(llm_settings.data_dir), "--kb-dir", str(SHIPPED_KB),
        "suggest", INQUIRIES[0], "--no-log", "--stream"],
        env={"SUGGESTER_CACHE_DIR": str(TEST_CACHE),
             "SUGGESTER_LLM_BASE_URL": llm_settings.llm_base_url,
             "SUGGESTER_LLM_MODEL": MODEL, "SUGGESTER_LLM_TIMEOUT": str(TIMEOUT_S)})
    assert result.exit_code == 0, result.output
    assert "LLM 작성" in result.stdout or "LLM 초안 사용 안 함" in result.stdout
    assert result.stderr.strip()  # the model's tokens, as they came


def test_eval_shows_the_llm_rows(llm_settings, monkeypatch):
    from suggester.evaluation.report import markdown_summary
    from suggester.evaluation.runner import run_eval

    monkeypatch.chdir(ROOT)
    report = run_eval(llm_settings, "dev", ["hybrid"], limit=1, progress=False,
                      corrections=False)
    assert report.llm["model"] == MODEL and report.llm["asked"] == 1
    assert 0.0 <= report.llm["rejection_rate"] <= 1.0
    for name in ("faithfulness", "answer_relevancy"):
        row = report.ragas[name]
        assert "value" in row or "no LLM configured" not in row["skipped"]
    markdown = markdown_summary(report)
    assert "LLM drafts rejected by the validator (rate)" in markdown
    assert "| faithfulness |" in markdown
