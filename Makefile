# simtrust: every target sets itself up first (a .venv with the project installed).
# The first interpreter that runs and is 3.11 or newer (version-manager shims may exist but not run).
PYTHON ?= $(shell for p in python3 python3.13 python3.12 python3.11; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { command -v $$p; break; }; done)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast bench lint serve sysdeps clean

$(STAMP): pyproject.toml setup.py src/simtrust/subscriber/auc/_native.c src/simtrust/flows/_native.c src/simtrust/flows/_rx.c src/simtrust/flows/_flowcommon.h src/simtrust/detect/_fast.c src/simtrust/policy/_counters.c src/simtrust/diameter/_native.c src/simtrust/sbi/_native.c
	@test -n "$(PYTHON)" || { echo "simtrust needs Python 3.11 or newer on PATH (python3)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/simtrust demo

# Test processes (pytest-xdist); the tests of one file stay in one process, so fixtures
# a file shares (network namespaces, servers) are never raced. Two by default; the runs
# that brought out load-dependent tests, and their fixes, are in
# docs/decisions/tests-two-processes.md. `make test TEST_PROCESSES=1` runs serially.
TEST_PROCESSES ?= 2

test: setup
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist loadfile $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: setup
	@mkdir -p bench-results
	$(BIN)/simtrust bench all --json | tee bench-results/latest.jsonl

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

serve: setup
	@test -f "$${SIMTRUST_HOME:-$$HOME/.simtrust}/master.keys" || $(BIN)/simtrust init
	$(BIN)/simtrust serve

# Debian packages the real-exporter, gateway and capture tests use (run as root).
sysdeps:
	@pkgs="$$(grep -v '^\s*#' .ci/apt-packages | tr '\n' ' ')"; \
	missing=""; for p in $$pkgs; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "system packages present"; fi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache bench-results
