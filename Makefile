# Two commands: `make run` (set up everything, serve the product) and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test install db lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -U pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

db: install
	$(PY) -m app migrate
	$(PY) -m backoffice seed

# `app serve` seeds the back office itself, with the run's payment-callback secret; HOST (default
# 127.0.0.1), PORT, BACKOFFICE_PORT and METRICS_PORT choose where it listens.
run: install
	$(PY) -m app migrate
	$(PY) -m app serve

test: install
	$(PY) -m menus lint config/menus.yaml
	$(PY) -m mypy engine menus dialogs channels backend_clients backoffice app
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(PY) -m menus lint config/menus.yaml
	$(PY) -m ruff check .

# The benchmark users read (README "Benchmark"): ours, the floor and the Node peer under wrk, ~8 minutes.
# BENCH_REDIS_URL (an empty database, default db 15) and BENCH_ARGS (e.g. --server granian) tune it.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: install $(BENCH_STAMP)
	$(PY) bench/bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache
