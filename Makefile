# Gantry: the two commands a fresh machine needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test lint format bench clean

$(STAMP): pyproject.toml
	scripts/system-deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Run Gantry locally: Redis (if none runs), the AWS emulator, a worker and the web server.
run: install
	scripts/run.sh

## Lint and the whole test suite (PostgreSQL when reachable, a real Redis, real processes).
test: install
	scripts/system-deps.sh test
	scripts/test.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python bench/preview_bench.py
	$(BIN)/python bench/event_latency_bench.py
	$(BIN)/python bench/deploy_bench.py
	$(BIN)/python bench/stream_load_bench.py
	$(BIN)/python bench/denied_lookup_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis staticfiles .run
