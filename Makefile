# hexpulse: `make demo` runs the whole system locally, `make test` runs the test suite.
# Both do their own set-up from nothing (venv, packages, ClickHouse, Kafka broker) and are safe
# to re-run. `make down` stops the services they started; data stays in .local/.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONUNBUFFERED := 1

.PHONY: venv services migrate topics demo test lint typecheck bench down clean-local frontend

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "make: could not create $(VENV); on Debian run 'apt-get install -y python3-venv'"; exit 1; }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

services: venv
	@PYTHON=$(PY) deploy/local/services.sh up

migrate: services
	@$(VENV)/bin/hexpulse migrate

topics: services
	@$(VENV)/bin/hexpulse topics

demo: migrate topics
	@deploy/local/demo.sh

test: services
	@$(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: migrate topics
	@$(PY) benchmarks/run_all.py

down:
	@deploy/local/services.sh down
