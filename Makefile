# The two commands in the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres
# make run PORT=8001 (or SHEAF_PORT=8001 make run)
PORT ?= $(or $(SHEAF_PORT),8000)

.PHONY: install run test test-sqlite test-postgres lint services bench clean

$(BIN)/sheaf: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/sheaf

## Set everything up and run sheaf: API, console, embedded worker, SQLite, demo data.
# (the demo checks the port first: a taken port stops it before it migrates or mints)
run: install
	$(BIN)/sheaf demo --check-port $(PORT)
	$(BIN)/sheaf serve --host 127.0.0.1 --port $(PORT)

## Set everything up and run the whole suite: lint, SQLite, then PostgreSQL.
test: install lint services test-sqlite test-postgres

lint:
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src

services:
	bash scripts/services.sh

test-sqlite:
	$(BIN)/pytest

# The same suite against the real PostgreSQL server (SDK tests already ran on SQLite).
test-postgres:
	SHEAF_TEST_DATABASE_URL=$(PG_URL) $(BIN)/pytest -m "not sdk"

bench: install
	$(BIN)/python bench/identity/run.py

clean:
	rm -rf $(VENV) .sdk-venvs var .pytest_cache
