# hexpulse: `make demo` runs the whole system locally, `make test` runs the test suite.
# Both do their own set-up from nothing (venv, packages, ClickHouse, Kafka broker) and are safe
# to re-run. `make down` stops the services they started; data stays in .local/.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONUNBUFFERED := 1

.PHONY: venv services migrate topics demo test lint bench bench-city bench-traffic-ceiling bench-tourism down browser faults fuzz soak realtime abuse

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) 2>/dev/null \
	  || { [ "$$(id -u)" = 0 ] && rm -rf $(VENV) && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null && $(PYTHON) -m venv $(VENV); } \
	  || { echo "make: could not create $(VENV); on Debian run 'apt-get install -y python3-venv'"; exit 1; }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,modern,sim]'
	@touch $(STAMP)

venv: $(STAMP)

services: venv
	@deploy/local/services.sh up

migrate: services
	@$(VENV)/bin/hexpulse migrate

topics: services
	@$(VENV)/bin/hexpulse topics

demo: migrate topics
	@deploy/local/demo.sh

# Headless Chromium + playwright-core for the browser tests, poppler-utils for the report PDF check
# (Debian packages and npm only).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || echo "make: chromium not installed; the dashboard browser test will be skipped"
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; } || echo "make: npm not installed; the dashboard browser test will be skipped"
	@command -v pdftoppm >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null; } || echo "make: poppler-utils not installed; the tourism report PDF check will be skipped"
	@if [ -f frontend/package-lock.json ] && [ ! -d frontend/node_modules/playwright-core ]; then npm ci --prefix frontend --no-audit --no-fund --loglevel=error; fi

test: services browser
	@$(PY) -m pytest $(PYTEST_ARGS)

# Reliability proof (RELIABILITY.md): the full-size fault runs and the fuzzers, with the CI-sized
# fault tests they extend. Figures go to .local/reliability-{faults,fuzz}.jsonl and are printed at the end.
# Outages and broker kills use private ClickHouse/Kafka instances; the shared ones are never stopped.
FAULT_TESTS := tests/faults tests/integration/aggregate/test_crash.py tests/integration/aggregate/test_outage.py \
  tests/integration/aggregate/test_broker_restart.py tests/integration/aggregate/test_neighbour.py \
  tests/integration/privacy/release/test_noise_once.py tests/integration/ingest/test_dlq.py \
  tests/integration/alerts/test_webhooks.py
FUZZ_TESTS := tests/fuzz tests/unit/ingest/test_properties.py tests/integration/api/test_schemathesis.py

faults: services
	@rm -f .local/reliability-faults.jsonl
	@export RELIABILITY_FULL=1 RELIABILITY_FIGURES=.local/reliability-faults.jsonl; $(PY) -m pytest $(FAULT_TESTS) -q $(PYTEST_ARGS); rc=$$?; $(PY) -m tests.support.figures; exit $$rc

fuzz: services
	@rm -f .local/reliability-fuzz.jsonl
	@export RELIABILITY_FULL=1 RELIABILITY_FIGURES=.local/reliability-fuzz.jsonl; $(PY) -m pytest $(FUZZ_TESTS) -q $(PYTEST_ARGS); rc=$$?; $(PY) -m tests.support.figures; exit $$rc

# The whole system next to the simulated city in real time (benchmarks/soak.py): RSS slope of every
# process, consumer and release lag; SOAK_MINUTES (default 30), SOAK_ARGS (e.g. --devices 20000).
soak: migrate topics
	@$(PY) benchmarks/soak.py --out .local/soak.jsonl $(SOAK_ARGS)

# realtime_lag_s_p95 of issue #12 (benchmarks/bench_realtime.py): REALTIME_ARGS, e.g. --minutes 6.
realtime: migrate topics
	@$(PY) benchmarks/bench_realtime.py $(REALTIME_ARGS)

abuse: services
	$(PY) benchmarks/bench_abuse.py

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The peers of benchmarks/bench_peers.py (Quix Streams) live in the optional 'bench' extra.
$(VENV)/.bench-installed: $(STAMP)
	$(PY) -m pip install -q -e '.[dev,modern,sim,bench]'
	@touch $@

bench: migrate topics $(VENV)/.bench-installed
	@$(VENV)/bin/hexpulse keyring init
	@$(PY) benchmarks/run_all.py $(BENCH)

# The simulated city at real density end to end (BENCHMARKS.md "City at real density"): three
# 10-minute runs, ~3 GB of memory each, many minutes of CPU; not part of `make test` or `make bench`.
bench-city: services
	@$(PY) benchmarks/bench_city.py $(BENCH_CITY_ARGS)

# How close any release of the corridors' speed bins can come to the congestion levels
# (BENCHMARKS.md "Six speed bins and the level ceiling"): the simulator only, ~3 min, ~4.5 GB.
bench-traffic-ceiling: venv
	@$(PY) benchmarks/bench_traffic_ceiling.py $(BENCH_CEILING_ARGS)

# Tourism accuracy of issue #14 (benchmarks/bench_tourism.py): one local day end to end through
# Kafka and the deployed processes (55 min at load ~18); BENCH_TOURISM_ARGS, e.g. --draws 2000.
bench-tourism: services
	@$(PY) benchmarks/bench_tourism.py $(BENCH_TOURISM_ARGS)

down:
	@deploy/local/services.sh down
