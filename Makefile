# One command per task. Each target creates .venv and installs what it needs on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench clean services test-tools

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

demo: $(STAMP)  ## run the whole order flow on embedded SQLite in a fresh directory
	rm -rf .demo && mkdir -p .demo && cd .demo && ../$(BIN)/cairn demo

test-tools:  ## Debian's Chromium (the console's browser tests; Playwright's own download cannot work) and promtool (the alert rules' tests)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	command -v promtool >/dev/null || deploy/prometheus/install-promtool.sh

test: $(STAMP) test-tools  ## lint, type-check and run the whole test suite against the real services
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)  ## benchmarks against PostgreSQL, the eventsourcing library and raw psycopg
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
