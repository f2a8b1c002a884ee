# peerlift: `make demo` serves a seeded demo; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test bench bench-search load serve migrate clean chromium nginx

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

# Debian's nginx runs the shipped deploy/nginx configuration in the deployment tests: unpacked into
# the venv, never installed or started as a service. An nginx already on the PATH is used instead.
NGINX := $(VENV)/nginx/usr/sbin/nginx
nginx: | $(BIN)/python
	@if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ] && [ ! -x $(NGINX) ]; then \
		echo "Unpacking Debian's nginx for the deployment tests"; \
		tmp=$$(mktemp -d) && apt-get update -qq && (cd $$tmp && apt-get download -qq nginx 2>/dev/null) && \
		dpkg -x $$tmp/nginx_*.deb $(VENV)/nginx; status=$$?; rm -rf $$tmp; exit $$status; \
	fi

test: $(TEST_STAMP) chromium nginx
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -n 3 --dist loadfile -q

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

# 1,000 members on PostgreSQL + Redis + two serve processes + a worker for 5 minutes (about 6 minutes
# in all, so not part of `make bench`). Smaller: make load LOAD_ARGS="--members 100 --duration 20"
LOAD_ARGS ?=
load: $(TEST_STAMP)
	$(BIN)/python bench/load.py $(LOAD_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache
