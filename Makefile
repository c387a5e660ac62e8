# Two commands set everything up on a fresh machine:
#   make run    create .venv, install, run the whole pipeline on the embedded default (tiny preset, CPU)
#   make test   create or update .venv, run the whole test suite
# Between full runs: make test-fast (unit tests only: no Prefect server, nothing slow; under a minute)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint format bench clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint requirements.lock --editable ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/mm15 run --preset tiny

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not flow" -n 2

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/curate.py
	$(BIN)/python bench/preprocess.py
	$(BIN)/python bench/mixture.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/eval.py
	$(BIN)/python bench/dedup.py
	$(BIN)/python bench/cost.py

clean:
	rm -rf .mm15
