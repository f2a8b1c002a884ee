# peerlift: `make demo` serves a seeded demo; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test bench bench-search serve migrate clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: $(STAMP)
	$(BIN)/peerlift demo --port $(PORT)

serve: $(STAMP)
	$(BIN)/peerlift migrate
	$(BIN)/peerlift serve --port $(PORT)

migrate: $(STAMP)
	$(BIN)/peerlift migrate

# Debian's Chromium drives the browser tests (Playwright cannot download a browser here).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "Installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

test: $(TEST_STAMP) chromium
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -n auto --dist loadfile -q

bench: $(TEST_STAMP)
	$(BIN)/python bench/feed.py
	$(BIN)/python bench/stream.py
	$(BIN)/python bench/scheduler.py
	$(BIN)/python bench/protocols.py
	$(BIN)/python bench/triage.py
	$(BIN)/python bench/cues.py
	$(BIN)/python bench/metrics.py
	$(BIN)/python bench/backup.py
	$(BIN)/python bench/people.py --backend sqlite

# Not part of `make bench`: building an index of 1,000,000 posts per backend takes several minutes.
bench-search: $(TEST_STAMP)
	$(BIN)/python bench/search.py

clean:
	rm -rf $(VENV) var .pytest_cache
