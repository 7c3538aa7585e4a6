# The two commands of the quick start: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck imports pytest bench clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/wfk demo --store sqlite:///.demo/demo.db

lint: $(STAMP)
	$(BIN)/ruff check kernel adapters testing tests docs bench
	$(BIN)/ruff format --check kernel adapters testing tests docs bench

typecheck: $(STAMP)
	$(BIN)/mypy kernel adapters testing tests docs/examples bench

imports: $(STAMP)
	$(BIN)/lint-imports

# The dashboard's browser tests drive Debian's chromium (never a browser Playwright
# downloads): install it when missing and make runs as root; otherwise they skip.
browser:
	@command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || \
	  { test "$$(id -u)" = 0 && \
	    { apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }; }; } || \
	  echo "make: no chromium (install Debian's chromium as root): the browser tests skip"

# Both cores: most of the suite's wall time is waiting (processes, servers, sleeps).
pytest: $(STAMP) browser
	$(BIN)/pytest -n 2 --dist worksteal

test: lint typecheck imports pytest

# DBOS, for the comparison, lives in a virtualenv of its own (not a dependency).
DBOS_VENV := .bench-dbos
DBOS_STAMP := $(DBOS_VENV)/.installed
BENCH_OUT := .bench
PG_DSN ?= postgresql://postgres@127.0.0.1:5432/test

$(DBOS_STAMP):
	$(PYTHON) -m venv $(DBOS_VENV)
	$(DBOS_VENV)/bin/python -m pip install --quiet dbos==3.4.0
	touch $(DBOS_STAMP)

# Each end-to-end benchmark runs right before DBOS's, in the same command; ratio.py
# reads both outputs. PostgreSQL at $(PG_DSN) (schemas and a database of their own).
bench: SHELL := /bin/bash
bench: .SHELLFLAGS := -o pipefail -ec
bench: $(STAMP) $(DBOS_STAMP)
	mkdir -p $(BENCH_OUT)
	$(BIN)/python bench/store_ops.py
	$(BIN)/python bench/end_to_end.py --runs 2000 --raw-seconds 2 | tee $(BENCH_OUT)/end_to_end.txt
	$(DBOS_VENV)/bin/python bench/compare_dbos.py --runs 500 | tee $(BENCH_OUT)/dbos_sqlite.txt
	$(BIN)/python bench/ratio.py $(BENCH_OUT)/end_to_end.txt $(BENCH_OUT)/dbos_sqlite.txt
	$(BIN)/python bench/end_to_end_postgres.py --dsn $(PG_DSN) --runs 2000 --vacuum-catalogs \
	  | tee $(BENCH_OUT)/end_to_end_postgres.txt
	$(DBOS_VENV)/bin/python bench/compare_dbos.py --runs 1000 --postgres $(PG_DSN) \
	  | tee $(BENCH_OUT)/dbos_postgres.txt
	$(BIN)/python bench/ratio.py $(BENCH_OUT)/end_to_end_postgres.txt $(BENCH_OUT)/dbos_postgres.txt
	$(BIN)/python bench/list_runs.py --runs 100000

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .demo $(DBOS_VENV)
