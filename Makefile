# Entry points. `make run` and `make test` need only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: install run serve test fuzz bench migrate seed openapi lint clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required: run make PYTHON=python3.12 (or another 3.11+)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/mediation migrate

seed: migrate
	$(BIN)/mediation seed-demo

run: seed
	@echo "Serving the front-end on http://$(HOST):$(PORT)/  (API docs: http://$(HOST):$(PORT)/docs)"
	$(BIN)/mediation serve --host $(HOST) --port $(PORT)

# Two parts: most tests spread over the machine's cores (pytest-xdist, one database of its own
# per worker), then the tests that measure time or run servers, relays and a browser of their own,
# alone, so a busy machine does not make them miss their deadlines. A marker expression goes in
# TEST_MARK, not in PYTEST_ARGS (pytest keeps only the last -m, which would undo the split).
# Exit status 5 is pytest's "nothing selected": fine for one part (a PYTEST_ARGS that names tests
# of the other only), an error when neither part ran anything.
# Two workers at most by default: a concurrency test fills its app's pool (30 connections), and
# PostgreSQL's default max_connections (100) holds two such pools with room to spare.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ "$$n" -gt 2 ] && n=2; echo $$n)
TEST_MARK ?=
test: install
	@status=0; empty=0; \
	$(BIN)/pytest -n $(TEST_WORKERS) -m "not serial$(if $(TEST_MARK), and ($(TEST_MARK)))" $(PYTEST_ARGS) \
		|| { rc=$$?; if [ $$rc -eq 5 ]; then empty=$$((empty + 1)); else status=$$rc; fi; }; \
	$(BIN)/pytest -m "serial$(if $(TEST_MARK), and ($(TEST_MARK)))" $(PYTEST_ARGS) \
		|| { rc=$$?; if [ $$rc -eq 5 ]; then empty=$$((empty + 1)); else status=$$rc; fi; }; \
	if [ $$empty -eq 2 ]; then echo "no test selected"; status=5; fi; \
	exit $$status

# The model-based lifecycle test with ten times the sequences of `make test` (2,000 on both
# databases), and contract fuzzing with 150 generated examples per operation and 150 stateful
# scenarios per role, on SQLite and PostgreSQL.
fuzz: install
	MODEL_SEQUENCES_SCALE=10 $(BIN)/pytest tests/test_lifecycle_model.py $(PYTEST_ARGS)
	CONTRACT_FUZZ_EXAMPLES=150 CONTRACT_FUZZ_DATABASES=sqlite,postgresql $(BIN)/pytest tests/test_contract_fuzz.py $(PYTEST_ARGS)

# Speed targets live here, not in the tests: each script prints its figures and fails when one
# misses its target. SQLite first, then PostgreSQL when it is reachable; the statistics over a
# million cases run on PostgreSQL only.
PG_ADMIN_DSN ?= postgresql://postgres@127.0.0.1:5432/postgres
# Every benchmark runs and prints its figures; the target fails at the end if any one missed.
BENCH_ARGS ?=
bench: install
	@status=0; \
	$(BIN)/python bench/run.py --admin-dsn $(PG_ADMIN_DSN) $(BENCH_ARGS) || status=1; \
	$(BIN)/python bench/bench_triage.py || status=1; \
	$(BIN)/python bench/bench_triage.py --postgres $(PG_ADMIN_DSN) || status=1; \
	$(BIN)/python bench/bench_stats.py --postgres $(PG_ADMIN_DSN) || status=1; \
	exit $$status

openapi: install
	$(BIN)/mediation openapi --output openapi/openapi.json

lint: install
	$(BIN)/ruff check src tests migrations bench examples
	$(BIN)/ruff format --check src tests migrations bench examples
	$(BIN)/mypy src

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache mediation.db mediation.db-wal mediation.db-shm
