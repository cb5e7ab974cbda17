# Hypervision — developer and demo entry points. Everything installs itself on first use:
# uv (pinned, into .tools/), then the locked Python dependencies (into .venv/).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= var
DEMO_ENV := $(DATA_DIR)/demo.env
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Trust the machine's certificate store (as pip does), e.g. behind a TLS-inspecting proxy.
export UV_SYSTEM_CERTS := 1

.PHONY: help install demo serve test test-deep test-fast image lint format clean bench bench-quick bench-scale bench-pages fuzz release-test

help:
	@echo "make demo   install, create the embedded database, load the demo, serve (HYPERVISION_BIND_PORT, default 8000)"
	@echo "make test   install and run the whole test suite (SQLite + PostgreSQL, browser tests),"
	@echo "            on TEST_WORKERS processes (default $(TEST_WORKERS)); prints its duration"
	@echo "make test-fast  a quick subset while developing: SQLite only, without the browser tests,"
	@echo "            the leak matrix and the API fuzzing (make test before pushing)"
	@echo "make lint   ruff + mypy (strict)"
	@echo "make fuzz   schemathesis against the API, deeper than in make test (SQLite + PostgreSQL;"
	@echo "            FUZZ_EXAMPLES per operation, with the coverage phase)"
	@echo "make serve  serve with the current configuration (HYPERVISION_* variables)"
	@echo "make bench  write path, feed/search latency, audit verify on SQLite and PostgreSQL"
	@echo "            (bench-quick: small sizes; see bench/README.md)"
	@echo "make bench-scale  issue 15's figures on PostgreSQL at full size (about half an hour here; ADR 0056)"
	@echo "make release-test  a rolling release of 3 replicas behind haproxy under 300 live clients"
	@echo "            and 20 writes/s: nothing lost, duplicated or missed (RELEASE_ARGS, bench/README.md)"
	@echo "make bench-pages  page weight (first and cached load) of the main pages in Chromium on"
	@echo "            the demo, and their Lighthouse mobile scores (without Lighthouse: BENCH_PAGES_ARGS=)"

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python >= 3.11 is required (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python "$$(command -v $(PYTHON))"
	@touch $@

# Front-end packages from the npm registry (locked by package-lock.json), copied into the
# package's static folder: the app serves them itself, never from a CDN.
# The DSFR stylesheet is reduced to the classes the templates and scripts use: rebuilt when
# they change.
ASSETS := src/hypervision/web/static/vendor/.installed
PURGE_CONTENT := $(wildcard src/hypervision/web/templates/*.html src/hypervision/web/static/*.js)
$(ASSETS): package.json package-lock.json src/hypervision/web/assets.py $(PURGE_CONTENT) $(VENV)/.installed
	@command -v npm >/dev/null || { echo "Node.js >= 20 and npm are required"; exit 1; }
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	$(BIN)/python -m hypervision.web.assets node_modules
	@touch $@

install: $(VENV)/.installed $(ASSETS)

# A random secret key for the demo, made once and kept in var/demo.env.
$(DEMO_ENV):
	@umask 077; mkdir -p $(DATA_DIR)
	@umask 077; printf 'HYPERVISION_SECRET_KEY=%s\nHYPERVISION_DATA_DIR=%s\n' \
		"$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(48))')" "$(abspath $(DATA_DIR))" > $@

# The demo serves its own open-data feed, polled by one product's source (docs/adr/0029).
demo: export HYPERVISION_DEMO_FEEDS ?= true
demo: export HYPERVISION_PRODUCT_SOURCE_HOSTS ?= 127.0.0.1
demo: install $(DEMO_ENV)
	HYPERVISION_CONFIG_FILE=$(DEMO_ENV) $(BIN)/hypervision migrate
	HYPERVISION_CONFIG_FILE=$(DEMO_ENV) $(BIN)/hypervision demo load
	@echo "Hypervision demo: logins in README.md; its address follows (HYPERVISION_BIND_HOST/PORT)"
	HYPERVISION_CONFIG_FILE=$(DEMO_ENV) $(BIN)/hypervision serve

serve: install
	$(BIN)/hypervision migrate
	$(BIN)/hypervision serve

# The suite on a few processes (pytest-xdist, one set of databases per worker): much of it waits
# on PostgreSQL, the browser or a subprocess, so workers overlap that waiting even on 2 cores.
# Python keeps its compiled modules (__pycache__) during the tests, even where the environment
# says PYTHONDONTWRITEBYTECODE: the suite starts dozens of Python processes (command line,
# replicas, backups), and each would otherwise compile SQLAlchemy, FastAPI... from source again.
TEST_ENV := PYTHONDONTWRITEBYTECODE=
TEST_WORKERS ?= 3
test: install
	@start=$$(date +%s); status=0; $(TEST_ENV) $(BIN)/pytest -n $(TEST_WORKERS) -m "not deep" $(PYTEST_ARGS) \
		|| status=$$?; echo "make test: $$(( $$(date +%s) - start )) s"; exit $$status

# The long runs kept out of `make test` (tests marked deep: the leak matrix on SQLite and with
# RLS alone on PostgreSQL, the bounded API fuzzing, the differential searches at their full
# counts, of which make test runs a quarter to a third); CI runs them after `make test`.
test-deep: install
	@start=$$(date +%s); status=0; $(TEST_ENV) $(BIN)/pytest -n 2 -m deep $(PYTEST_ARGS) || status=$$?; \
	echo "make test-deep: $$(( $$(date +%s) - start )) s"; exit $$status

FAST_SKIP := --ignore=tests/browser --ignore=tests/security/test_fuzz_api.py \
	--ignore=tests/security/test_leak_matrix.py
test-fast: install
	@start=$$(date +%s); status=0; $(TEST_ENV) HYPERVISION_TEST_ENGINES=sqlite \
	$(BIN)/pytest -n $(TEST_WORKERS) $(FAST_SKIP) --durations=5 $(PYTEST_ARGS) || status=$$?; \
	echo "make test-fast: $$(( $$(date +%s) - start )) s"; exit $$status

# The container image (ADR 0034): Debian base by mmdebstrap (cached in var/image), podman;
# installs podman, runc and mmdebstrap from Debian's packages when missing (root).
IMAGE_TAG ?= dev
image: install
	IMAGE_TAG=$(IMAGE_TAG) UV=$(UV) deploy/image/build.sh

# SECURITY.md item 17; the figures go to test-artifacts/fuzz-summary.json.
FUZZ_EXAMPLES ?= 200
FUZZ_ENGINES ?= sqlite,postgresql
fuzz: install
	HYPERVISION_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) HYPERVISION_FUZZ_ENGINES=$(FUZZ_ENGINES) \
	HYPERVISION_FUZZ_COVERAGE=1 HYPERVISION_FUZZ_STATEFUL=1 \
		$(BIN)/pytest tests/security/test_fuzz_api.py -s

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: install
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

# Benchmarks print figures and ratios against a baseline of the same run; they never fail on a
# timing. Each makes and drops its own database. The 1M targets:
#   make bench BENCH_ENGINES=postgresql BENCH_FEED_ROWS=1000000 BENCH_AUDIT_ROWS=1000000
BENCH_ENGINES ?= sqlite postgresql
BENCH_WRITE_ROWS ?= 2000
BENCH_FEED_ROWS ?= 100000
BENCH_AUDIT_ROWS ?= 200000
BENCH_PRODUCT_ROWS ?= 1000000

bench: install
	@set -e; for engine in $(BENCH_ENGINES); do \
		$(BIN)/python bench/write_path.py --engine $$engine --rows $(BENCH_WRITE_ROWS); \
		$(BIN)/python bench/feed_search.py --engine $$engine --rows $(BENCH_FEED_ROWS); \
		$(BIN)/python bench/map_data.py --engine $$engine --rows $(BENCH_FEED_ROWS); \
		$(BIN)/python bench/audit_verify.py --engine $$engine --rows $(BENCH_AUDIT_ROWS); \
		$(BIN)/python bench/products.py --engine $$engine --rows $(BENCH_PRODUCT_ROWS); \
		$(BIN)/python bench/spaces.py --engine $$engine --rows $(BENCH_FEED_ROWS) --clients 10,100; \
	done

bench-quick: install
	@set -e; for engine in $(BENCH_ENGINES); do \
		$(BIN)/python bench/write_path.py --engine $$engine --rows 200 --rounds 2; \
		$(BIN)/python bench/feed_search.py --engine $$engine --rows 5000 --requests 30; \
		$(BIN)/python bench/map_data.py --engine $$engine --rows 5000 --requests 30; \
		$(BIN)/python bench/audit_verify.py --engine $$engine --rows 20000 --repeat 1; \
		$(BIN)/python bench/products.py --engine $$engine --rows 20000 --rounds 1 --requests 20; \
		$(BIN)/python bench/spaces.py --engine $$engine --rows 5000 --renders 5 --requests 10 \
			--clients 5 --live-events 1; \
	done

# Issue 15's figures (docs/adr/0056), each against its own baseline in the same run: the write
# path and 8 writers, audited reads at 200 readers, verify and the map at 1M, and 1,500 live
# streams alone, beside 10,000 idle ones, and on 3 replicas over NATS (127.0.0.1:4222).
bench-scale: install
	@set -e; \
	$(BIN)/python bench/write_path.py --engine postgresql --rows 1500 --rounds 3 --scaling 8 --scaling-rows 300; \
	$(BIN)/python bench/write_path.py --engine sqlite --rows 1500 --rounds 3; \
	$(BIN)/python bench/feed_search.py --engine postgresql --rows 20000 --requests 5 \
		--readers 200 --reader-requests 5 --reader-rounds 4; \
	$(BIN)/python bench/audit_verify.py --engine postgresql --rows 1000000; \
	$(BIN)/python bench/map_data.py --engine postgresql --rows 1000000; \
	live="$(BIN)/python bench/live.py --engine postgresql --clients 1500 --rate 20 --seconds 60"; \
	$$live; \
	$$live --idle 10000 --skip-baseline; \
	$$live --replicas 3 --bus nats --skip-baseline

# Page weight and Lighthouse (mobile) on the demo, in Chromium; prints two Markdown tables.
BENCH_PAGES_ARGS ?= --lighthouse
bench-pages: install
	$(BIN)/python bench/pages.py $(BENCH_PAGES_ARGS)

# The release test (bench/release.py): PostgreSQL (owner + app role), NATS at 127.0.0.1:4222,
# haproxy (installed from Debian when missing, as root); exit status 1 when anything written
# was lost or duplicated or a live client missed an event. RELEASE_ARGS=--image runs the
# container image (make image) instead of the package.
RELEASE_ARGS ?=
release-test: install
	@start=$$(date +%s); status=0; $(BIN)/python bench/release.py $(RELEASE_ARGS) || status=$$?; \
	echo "make release-test: $$(( $$(date +%s) - start )) s"; exit $$status

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache
