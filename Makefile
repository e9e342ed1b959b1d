# Two commands a newcomer needs: `make run` (local stack on the sandbox) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## Run the connector, a worker and the Punchh sandbox locally (starts Redis if none answers).
run: setup
	$(BIN)/python scripts/dev.py

## Lint, type-check and run every test (CI runs exactly this).
test: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

## Measure intake throughput, latency, memory and time to commit (needs wrk).
bench: setup
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
