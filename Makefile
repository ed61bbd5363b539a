# One Makefile for developers and CI: CI runs exactly these targets.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install run index lint test test-browser bench clean

help:
	@echo "make run    install what is missing, index kb/articles, serve the console on 127.0.0.1:8000"
	@echo "make test   install what is missing and run the whole test suite"
	@echo "make lint   validate the knowledge base articles"
	@echo "make bench  retrieval quality and latency benchmark"

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

bench: install
	$(BIN)/suggester index --quiet
	$(BIN)/suggester bench
