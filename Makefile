# Gantry: the two commands a fresh machine needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# checkov (the templates' security scanner) in a virtualenv of its own: its pins conflict
# with Gantry's dependencies (see [dependency-groups] in pyproject.toml).
CHECKOV       := $(VENV)/checkov
CHECKOV_STAMP := $(CHECKOV)/.installed-stamp

.PHONY: install run test lint format bench clean vendor

$(STAMP): pyproject.toml
	scripts/system-deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(CHECKOV_STAMP): pyproject.toml $(STAMP)
	test -x $(CHECKOV)/bin/python || $(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV)/bin/python -m pip install --quiet --group checkov
	touch $(CHECKOV_STAMP)

install: $(STAMP) $(CHECKOV_STAMP)

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

## The browser libraries served from static/vendor/ (never a CDN): installed from npm at the
## versions package-lock.json pins, and each built file copied with its licence. The copies are
## committed, so `make run` and `make test` need no npm; run this after changing package.json.
VENDOR := static/vendor
vendor:
	npm ci --ignore-scripts --no-audit --no-fund
	install -d $(VENDOR)/svg-pan-zoom
	install -m 644 node_modules/svg-pan-zoom/dist/svg-pan-zoom.min.js $(VENDOR)/svg-pan-zoom/
	install -m 644 node_modules/svg-pan-zoom/LICENSE $(VENDOR)/svg-pan-zoom/LICENSE
	rm -rf node_modules

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis staticfiles .run
