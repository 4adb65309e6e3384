# The two commands of the README: `make up` and `make test`. Everything else is a helper.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BUDGET ?= 60

.PHONY: up test install functions-package browser dashboard-screenshot lint unit integration e2e contract bench-train bench-train-splits bench-train-splits-precall bench-batch bench-serve bench-cli bench-up clean

# The install: uv (from PATH, else from PyPI into the venv) resolves and installs much faster than pip (bench/README.md, "First prediction");
# INSTALLER=pip, or any failure of uv, installs with pip as before.
INSTALLER ?= uv
PIP_INSTALL = { $(BIN)/pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true; } && \
	{ $(BIN)/pip install --quiet -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true; }
UV_INSTALL = UV="$$(command -v uv || { $(BIN)/pip install --quiet uv >/dev/null 2>&1 && echo $(BIN)/uv; })" && \
	test -n "$$UV" && "$$UV" pip install --quiet --python $(BIN)/python -e '.[dev]'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=python3"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	@if [ "$(INSTALLER)" = uv ] && $(UV_INSTALL); then echo "installed with uv"; else echo "installing with pip"; $(PIP_INSTALL); fi
	$(BIN)/python -c "import shared, flaml, mlflow, lightgbm, xgboost, lleaves" && touch $(STAMP)

install: $(STAMP)

## The main job on the embedded (local) backend: train if needed, deploy, serve, retrain on events. Ctrl-C stops.
up: $(STAMP)
	$(BIN)/bankops up --budget $(BUDGET)

## Debian's chromium and chromedriver, for the dashboard's browser test; installed only when missing.
APT := $(if $(filter 0,$(shell id -u)),,sudo)
APT_INSTALL := DEBIAN_FRONTEND=noninteractive $(APT) apt-get install -y -q --no-install-recommends chromium chromium-driver
browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || $(APT_INSTALL) || { $(APT) apt-get update -q && $(APT_INSTALL); }

## docs/dashboard.png: the dashboard's browser test, its traffic spread over two and a half minutes.
dashboard-screenshot: $(STAMP) browser
	DASHBOARD_SCREENSHOT=$(CURDIR)/docs/dashboard.png DASHBOARD_TRAFFIC_SECONDS=150 $(BIN)/python -m pytest -q tests/integration/test_dashboard_browser.py

## The function app's deployment folder as Azure's remote build makes it (pip install -r requirements.txt into
## .python_packages/lib/site-packages, in a fresh venv), its installed size, and the functions it indexes.
functions-package:
	$(PYTHON) infra/functions_package.py --out .cache/functions-package --index

## Install, lint (ruff; mypy --strict on shared/, functions/, function_app.py) and run every test tier.
test: $(STAMP) browser
	$(BIN)/ruff check shared functions function_app.py tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -p no:cacheprovider -q

lint: $(STAMP)
	$(BIN)/ruff check shared functions function_app.py tests bench
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

integration: $(STAMP) browser
	$(BIN)/python -m pytest -q tests/integration

e2e: $(STAMP)
	$(BIN)/python -m pytest -q tests/e2e

## The same assertions on the local and the Azure adapters (Azurite via npm on first use, fakes of MLClient).
contract: $(STAMP)
	$(BIN)/python -m pytest -q tests/contract

bench-train: $(STAMP)
	$(BIN)/python bench/train_bench.py --budget $(BUDGET) --out bench/results/train.json

## Six splits (seeds 42, 1-5), each with bankops, AutoGluon medium_quality and best_quality (a venv of their own in
## .cache/bench-venvs, made on first use) and the default LightGBM, same rows and budget: about 35 min at 60 s.
## PRE_CALL=1 leaves out duration for all of them; BASELINE=1 adds bankops with every column kept; BENCH_LOCK=FILE
## takes that flock around each run (a machine shared with other benchmarks).
TRAIN_SPLITS_OUT = bench/results/train_splits$(if $(PRE_CALL),_precall).json
bench-train-splits: $(STAMP)
	$(BIN)/python bench/train_splits.py --budget $(BUDGET) $(if $(PRE_CALL),--pre-call) $(if $(BASELINE),--with-baseline) \
		$(if $(BENCH_LOCK),--lock $(BENCH_LOCK)) --out $(TRAIN_SPLITS_OUT)

bench-train-splits-precall:
	$(MAKE) bench-train-splits PRE_CALL=1

## Batch scoring of 1,000,000 generated rows, whole processes: bankops batch-score cold and compiled against pandas +
## MLflow predict, on a model of each budget in BATCH_BUDGETS (homes BATCH_HOME-<budget>; BATCH_LOCK: a lock file held per run).
BATCH_HOME ?= /tmp/bankops-bench-batch
BATCH_ROWS ?= 1000000
BATCH_BUDGETS ?= 60,30
BATCH_LOCK ?=
bench-batch: $(STAMP)
	$(BIN)/python bench/batch_bench.py --rows $(BATCH_ROWS) --home $(BATCH_HOME) --budgets $(BATCH_BUDGETS) $(if $(BATCH_LOCK),--lock $(BATCH_LOCK)) --out bench/results/batch.json

## Real-time scoring: bankops serve against azmlinfsrv and mlflow models serve (peers in .cache/bench-venvs), same model, wrk on loopback.
SERVE_HOME ?= /tmp/bankops-bench-serve
SERVE_BUDGET ?= 60
bench-serve: $(STAMP)
	$(BIN)/python bench/serve_bench.py --home $(SERVE_HOME) --budget $(SERVE_BUDGET) --out bench/results/serve.json

## How long `--help`, `keys show`, `logs` and `status` take as whole processes, beside `python -c pass` and `mlflow --help`.
bench-cli: $(STAMP)
	$(BIN)/python bench/cli_startup.py --out bench/results/cli_startup.json

## From a fresh clone (git clone of HEAD) to the first 200 of /score and to the full model, install included, with
## an empty package cache and then the warm one; UP_SCENARIOS="cold warm peer-cold peer-warm" adds the pip + no-quick peer.
UP_SCENARIOS ?= cold warm
bench-up:
	$(PYTHON) bench/up_bench.py --scenarios $(UP_SCENARIOS) --out bench/results/up.json

clean:
	rm -rf $(VENV) .bankops .pytest_cache
