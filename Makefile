# casematch — `make help` lists the targets.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install test test-slow test-model test-all lint run mlflow sample clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, from the pinned CPU build: an unpinned torch pulled in later would be a multi-GB CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install casematch with its dev extras

test: $(STAMP) ## run the default test suite (not slow, not model)
	$(BIN)/pytest

test-slow: $(STAMP) ## run only the slow tests (full-size worlds, real models)
	$(BIN)/pytest -m slow

test-model: $(STAMP) ## run the quality gates: train on the sample + real corpora, check dev metrics against tests/model/floors.py
	$(BIN)/pytest -m model tests/model

test-all: $(STAMP) ## run every test, slow and model-quality ones included
	$(BIN)/pytest -m ''

lint: $(STAMP) ## ruff, mypy --strict and the import contracts (pyproject.toml [tool.importlinter])
	$(BIN)/ruff check ml service tests bench
	$(BIN)/ruff format --check ml service tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

run: $(STAMP) ## serve the API on 127.0.0.1:8000 (first run: world, champion model, store, index)
	$(BIN)/casematch serve

mlflow: $(STAMP) ## open the MLflow UI over the local tracking store (var/mlflow.db) on 127.0.0.1:5000
	$(BIN)/mlflow ui --backend-store-uri "$${CASEMATCH_MLFLOW_TRACKING_URI:-sqlite:///$${CASEMATCH_HOME:-$(CURDIR)/var}/mlflow.db}" \
		--host 127.0.0.1 --port 5000 --workers 1

sample: $(STAMP) ## regenerate the committed test sample in data/synthetic/sample
	$(BIN)/casematch synth --name sample --cases 2000 --doctors 500 --force

clean: ## remove .venv and the working folder ./var
	rm -rf $(VENV) var
