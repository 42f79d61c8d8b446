# Two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-fast lint format schema bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required (set PYTHON=...)")'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	APP_ENV=$${APP_ENV:-development} $(BIN)/interview-api serve

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

# SQLite only, no Redis, no long fuzz runs: the quick loop while editing.
test-fast: install
	$(BIN)/pytest -m "not postgres and not redis and not slow" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check app tests bench
	$(BIN)/ruff format --check app tests bench
	$(BIN)/mypy

format: install
	$(BIN)/ruff format app tests bench
	$(BIN)/ruff check --fix app tests bench

schema: install
	$(BIN)/interview-api export-schema --output schema.graphql

bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
