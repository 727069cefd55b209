# `make demo` and `make test` each set everything up (a .venv with the project and its test
# dependencies) and run. `make test` runs the fast set (tests not marked slow, a few minutes);
# `make test-all` adds the slow ones (kill loop, soak, Dask, browser, notebooks), as CI does.
# `make bench` prints the benchmarks' figures and ratios.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-all bench soak lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/jobobs demo --db demo.duckdb

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not slow"

test-all: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_runtime.py
	$(BIN)/python benchmarks/bench_import.py
	$(BIN)/python benchmarks/bench_server.py
	$(BIN)/python benchmarks/bench_dashboard.py
	$(BIN)/python benchmarks/bench_dask.py
	$(BIN)/python benchmarks/bench_schedules.py
	$(BIN)/python benchmarks/bench_alerts.py

soak: $(STAMP)
	JOBOBS_SOAK_SECONDS=600 $(BIN)/python -m pytest -s -p no:cacheprovider tests/reliability/test_soak.py

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) demo.duckdb demo.duckdb.wal data screenshots
