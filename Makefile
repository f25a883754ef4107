# Two commands: `make run` (set up everything, serve the product) and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test install db lint bench bench-scale bench-servers bench-menu clean lock mutation

# Dependencies come from requirements.lock (exact versions and hashes, compiled from pyproject.toml by
# `make lock`), so a fresh clone runs and tests what was tested; the project itself installs without deps.
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --require-hashes -r requirements.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

db: install
	$(PY) -m app migrate
	$(PY) -m backoffice seed

# `app serve` seeds the back office itself, with the run's payment-callback secret; HOST (default
# 127.0.0.1), PORT, BACKOFFICE_PORT and METRICS_PORT choose where it listens. The reference back
# office runs open (no API key) only in development: make run is one.
run: export BACKOFFICE_DEV ?= 1
# Agents sign in locally (a marked development form) unless OIDC_ISSUER names an identity provider.
run: export AGENTS_DEV_SIGNIN ?= 1
run: install
	$(PY) -m app migrate
	$(PY) -m app serve

# The suite mostly waits (loopback servers, subprocesses, Redis, PostgreSQL), so three pytest-xdist workers
# keep two cores busy; each worker claims a Redis database of its own (tests/support/services.py).
# `make test PYTEST_ARGS='-n 0 tests/app'` runs in one process, or a part.
PYTEST_ARGS ?= -n 3 --dist worksteal

test: install
	$(PY) -m menus lint config/menus.yaml
	$(PY) -m ruff check .
	$(PY) -m mypy engine menus dialogs channels backend_clients backoffice app web_fallback bench tests
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(PY) -m menus lint config/menus.yaml
	$(PY) -m ruff check .

# Recompile the lock after changing dependencies in pyproject.toml (then commit both).
lock: install
	$(PY) -m pip install -q --disable-pip-version-check pip-tools
	$(PY) -m piptools compile -q --generate-hashes --extra dev --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml

# Mutation testing of the money and identity paths ([tool.mutmut] in pyproject.toml): not in make test.
# Prints the score per module and the survivors, and writes bench/results/mutation.md (README links it).
# MUTMUT_ARGS may name mutants (e.g. 'dialogs.payments.*'); MUTATION_CHILDREN sets the parallel workers.
MUTATION_CHILDREN ?= 2
mutation: install
	rm -rf mutants
	start=$$(date +%s); nice -n 10 $(PY) -m mutmut run --max-children $(MUTATION_CHILDREN) $(MUTMUT_ARGS) || true; \
	$(PY) -m bench.mutation_report --write --seconds $$(( $$(date +%s) - start ))

# The benchmark users read (README "Benchmark"): ours, the floor and the Node peer under wrk, ~8 minutes.
# BENCH_REDIS_URL (an empty database, default db 15) and BENCH_ARGS (e.g. --server granian) tune it.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[bench]'
	touch $(BENCH_STAMP)

bench: install $(BENCH_STAMP)
	$(PY) -m bench.bench $(BENCH_ARGS)

# Hop latency with 1 000 to 1 000 000 idle sessions in Redis, each level in pairs with the first (README "Benchmark"), ~10 minutes; SCALE_ARGS
# e.g. --sessions 1000,10000 --seconds 5.
bench-scale: install $(BENCH_STAMP)
	$(PY) -m bench.session_scale $(SCALE_ARGS)

# The engine under gunicorn sync, gunicorn gthread and granian, side by side (README "Benchmark"); SERVERS_ARGS
# e.g. --concurrency 10,100 --seconds 5 --rounds 3.
bench-servers: install $(BENCH_STAMP)
	$(PY) -m bench.servers $(SERVERS_ARGS)

# Load + lint time of a generated 10 000-node menu file.
bench-menu: install
	$(PY) -m bench.big_menu

clean:
	rm -rf $(VENV) var .pytest_cache mutants
