# ketacare: two commands for a new user (`make run`, `make test`); the rest are for developers.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# the suite runs on both cores (each worker has its own databases)
PYTEST_ARGS ?= -n 2

.PHONY: setup run test lint format bench clean-venv

## setup: .venv with the locked Python dependencies, the `ketacare` command and the npm front-end libraries
setup: $(VENV)/.stamp-python node_modules/.stamp-npm

$(VENV)/.stamp-python: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	# opentiva (agreement tests and benchmarks) ships a stale C file: rebuild it from its .pyx
	$(BIN)/python -m pip install -q --no-build-isolation opentiva==1.1.2
	# compile the population engine's loops once, into numba's on-disk cache
	$(BIN)/python -c "from ketacare.core.pharmacology.kernel import warm; warm()"
	touch $@

node_modules/.stamp-npm: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## run: set up, upgrade the database, seed a demo clinic on an empty database, serve on 127.0.0.1:8000
run: setup
	$(BIN)/ketacare db upgrade
	$(BIN)/ketacare demo --if-empty
	$(BIN)/ketacare serve --host $(HOST) --port $(PORT)

## test: set up, then the whole suite (PostgreSQL and Chromium tests run when those are installed)
test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

LINTED := $(wildcard src tests bench migrations)

lint: setup
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format $(LINTED)
	$(BIN)/ruff check --fix $(LINTED)

bench: setup
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/pk.py
	$(BIN)/python bench/preview.py
	$(BIN)/python bench/disclosure.py

clean-venv:
	rm -rf $(VENV) node_modules
