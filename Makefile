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

bench: install
	$(PY) bench/ussd_hops.py

clean:
	rm -rf $(VENV) var .pytest_cache
