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

# The reference back office runs open (no API key) only in development: make run is one.
run: export BACKOFFICE_DEV ?= 1
run: db
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
