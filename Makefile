# Two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# GraphiQL and API-docs files, from the npm registry (pinned by the lock file).
ASSETS := app/static/node_modules/.package-lock.json

.PHONY: install run test test-fast lint format schema bench clean

install: $(STAMP) $(ASSETS)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required (set PYTHON=...)")'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(ASSETS): app/static/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix app/static --ignore-scripts --no-audit --no-fund --loglevel=error \
	  || echo "npm ci failed: GraphiQL and the API docs will load their files from a CDN"; \
	else \
	  echo "npm not found: GraphiQL and the API docs will load their files from a CDN (install Node.js to serve them offline)"; \
	fi

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

# BENCH_SCALE (default 1.0; e.g. 0.01 for a quick run) scales bench.scale's row counts.
bench: install
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.overload
	BENCH_SCALE=$${BENCH_SCALE:-1.0} $(BIN)/python -m bench.scale
	$(BIN)/python -m bench.live

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Mutation testing (docs/mutants.md): app/domain mutated by mutmut, each mutant
# run against the fast rule tests (tests/domain, [tool.mutmut] in pyproject.toml),
# from scratch every time; fails below MUTATE_MIN percent killed (equivalent
# mutants, listed in docs/mutants.md, not counted). MUTATE_JOBS: parallel mutants.
MUTATE_MIN  ?= 90
MUTATE_JOBS ?= 2
.PHONY: mutate
mutate: install
	$(BIN)/python tests/domain/mutation_score.py --check-copy
	rm -rf mutants
	$(BIN)/mutmut run --max-children $(MUTATE_JOBS)
	$(BIN)/mutmut results --all true > mutants/results.txt
	$(BIN)/python tests/domain/mutation_score.py --min $(MUTATE_MIN) < mutants/results.txt
