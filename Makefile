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

bench: $(STAMP)
	$(BIN)/python bench/store_ops.py
	$(BIN)/python bench/end_to_end.py --runs 2000
	$(BIN)/python bench/list_runs.py --runs 100000

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .demo
