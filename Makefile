# One Makefile for developers and CI: CI runs exactly these targets.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install run index lint test test-browser eval bench bench-external clean

help:
	@echo "make run    install what is missing, index kb/articles, serve the console on 127.0.0.1:8000"
	@echo "make test   install what is missing and run the whole test suite"
	@echo "make lint   validate the knowledge base articles"
	@echo "make eval   evaluate on the golden test split and apply the CI gate"
	@echo "make bench  latency, index-time and memory benchmark"

# Reinstall only when the project's dependencies change.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/suggester lint

index: install
	$(BIN)/suggester index

run: install
	$(BIN)/suggester index
	$(BIN)/suggester serve

test: install
	sh scripts/install-browser.sh
	$(BIN)/python -m pytest

test-browser: install
	sh scripts/install-browser.sh
	$(BIN)/python -m pytest -m browser

clean:
	rm -rf $(VENV) .suggester .pytest_cache

# The gate reuses the vectors the test run already embedded (content-hash cache).
eval: install
	SUGGESTER_CACHE_DIR=.cache/tests $(BIN)/suggester eval --set test --gate --quiet

bench-external: install
	$(BIN)/suggester eval --external korquad
	$(BIN)/suggester eval --external welfare

bench: install
	$(BIN)/suggester index --quiet
	$(BIN)/suggester bench
