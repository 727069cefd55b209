# `make demo` and `make test` each set everything up (a .venv with the project and its test
# dependencies) and run. `make test` runs the fast set (tests not marked slow, a few minutes);
# `make test-all` adds the slow ones (kill loop, soak, Dask, browser, notebooks), as CI does.
# `make bench` prints the benchmarks' figures and ratios. `make notebooks` opens JupyterLab on
# notebooks/ against the database `make demo` made (demo.duckdb), on 127.0.0.1.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NOTEBOOKS_PORT ?= 8888

.PHONY: demo notebooks test test-all bench soak lint clean screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/jobobs demo --db demo.duckdb

# JupyterLab offline (no news feed, update check or extension catalogue), as root too, on one
# port so that the URL printed first is the one it serves.
notebooks: $(STAMP)
	@test -f demo.duckdb || { echo "No demo.duckdb here: run 'make demo' first (it keeps serving;" \
	  "leave it running or stop it with Ctrl-C), then 'make notebooks'." >&2; exit 1; }
	@token=$$($(BIN)/python -c "import secrets; print(secrets.token_hex(24))"); \
	echo "JupyterLab on notebooks/ against demo.duckdb:" \
	  "http://127.0.0.1:$(NOTEBOOKS_PORT)/lab?token=$$token (Ctrl-C stops it)"; \
	JOBOBS_DB="$(CURDIR)/demo.duckdb" JOBOBS_LIVE_DB="$(CURDIR)/live.duckdb" \
	  exec $(BIN)/jupyter lab --no-browser --ServerApp.ip=127.0.0.1 \
	  --ServerApp.port=$(NOTEBOOKS_PORT) --ServerApp.port_retries=0 --ServerApp.allow_root=True \
	  --IdentityProvider.token=$$token --ServerApp.root_dir="$(CURDIR)/notebooks" \
	  --LabApp.news_url=None --LabApp.extension_manager=readonly \
	  --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate

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
	$(BIN)/python benchmarks/bench_search.py

soak: $(STAMP)
	JOBOBS_SOAK_SECONDS=600 $(BIN)/python -m pytest -s -p no:cacheprovider tests/reliability/test_soak.py

# The README's pictures of the dashboard (docs/*.png): the demo in a temporary folder on free
# ports, each page in headless Chromium.
screenshots: $(STAMP)
	$(BIN)/python tools/screenshots.py --out docs

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) demo.duckdb demo.duckdb.wal live.duckdb live.duckdb.wal data screenshots
