# The entry to everything. `make run` and `make test` are the README's two commands;
# each builds its own virtual environment from the pinned requirements first.
PYTHON ?= python3
VENV ?= .venv
SAM_VENV ?= .venv-sam
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAM_STAMP := $(SAM_VENV)/.installed
REGION ?= eu-north-1
# make test's workers (pytest-xdist): two per core, since most of the slow tests' time is waiting (a soak's
# backoff, a stack's pollers, a subprocess starting), not computing: one per core left half the CPU idle
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print(2 * (os.cpu_count() or 1))')
# ruff's rules and its format: `make lint` and `make test` (which runs the type check beside the tests)
STYLE_CHECK = $(BIN)/ruff check . && $(BIN)/ruff format --check .
# SAM CLI would otherwise try to send telemetry: nothing leaves this machine.
export SAM_CLI_TELEMETRY := 0

.PHONY: help deps run sandbox test unit lint typecheck format validate build clean soak bench

## list every target with what it does (this list)
help:
	@awk '/^## /{d = d (d ? " " : "") substr($$0, 4); next} /^[a-z][a-z-]*:/{if (d) {split($$0, t, ":"); printf "  %-9s %s\n", t[1], d}} {d = ""}' $(firstword $(MAKEFILE_LIST))

## build .venv (the project) and .venv-sam (the SAM CLI) from the pinned, hashed requirements
deps: $(STAMP) $(SAM_STAMP)

# Before any venv or pip: a Python older than 3.11 would otherwise end in pages of pip errors.
CHECK_PYTHON = @$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 11) else \
	f"make: $(PYTHON) is Python {v[0]}.{v[1]}; this project needs 3.11 or newer: make PYTHON=python3.11 ...")'

$(STAMP): requirements/dev.txt
	$(CHECK_PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements/dev.txt
	$(BIN)/python -m pip check
	touch $@

$(SAM_STAMP): requirements/sam.txt
	$(CHECK_PYTHON)
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements/sam.txt
	$(SAM_VENV)/bin/python -m pip check
	touch $@

## run the whole stack locally: sandbox, moto, API on :3000, queue pollers (see docs/getting-started.md)
run: $(STAMP)
	$(BIN)/python -m local.stack

## only the Engage sandbox, on :8080
sandbox: $(STAMP)
	$(BIN)/python -m local.engage_sandbox

# The type check runs beside the tests (its first run takes seconds a fresh clone would otherwise wait), its
# verdict printed after theirs; either failing fails the run.
## run every test (lint included), two workers per core (TEST_WORKERS=1: one at a time), the slowest listed at the end
test: deps
	$(STYLE_CHECK)
	@$(BIN)/mypy > $(VENV)/mypy.out 2>&1 & types=$$!; \
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup \
		--durations=15 --durations-min=1 $(PYTEST_ARGS); tests=$$?; \
	wait $$types; typed=$$?; echo "mypy: $$(cat $(VENV)/mypy.out)"; \
	exit $$(( tests ? tests : typed ))

## the pure rules and the handler with fakes: no network, no moto, no subprocess (well under a minute)
unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

## fault soak: SOAK_COMMANDS (default 5000) through SQS while Engage fails, then a reconciliation;
## SOAK_OUTAGE_HOURS=6: Engage down that long instead (time compressed), nothing valid may be dead-lettered
soak: $(STAMP)
	$(BIN)/python -m local.soak

## benchmarks: prints a table, writes .bench/results.json (BENCH_ARGS=--quick: fewer; --docs: update docs/performance.md)
bench: deps
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" $(BIN)/python -m local.bench $(BENCH_ARGS)

## ruff's rules, the complexity gate (C901/PLR0912/PLR0915, pyproject.toml), the format and the types (mypy)
lint: $(STAMP)
	$(STYLE_CHECK)
	$(BIN)/mypy

## only the type check: mypy over the layer, the functions and local/ (pyproject.toml [tool.mypy])
typecheck: $(STAMP)
	$(BIN)/mypy

## rewrite the code to ruff's format and apply ruff's safe fixes
format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## check template.yaml with sam validate --lint and cfn-lint
validate: deps
	$(SAM_VENV)/bin/sam validate --lint --region $(REGION)
	$(BIN)/cfn-lint template.yaml

## build the SAM application (needs a python3.13, the Lambda runtime's, on PATH; local.lambda_python finds one)
build: deps
	@runtime="$$($(BIN)/python -m local.lambda_python)" || exit 1; \
	echo "sam build (python3.13 from $$runtime)"; PATH="$$runtime:$$PATH" $(SAM_VENV)/bin/sam build

## remove SAM's build and the tools' caches
clean:
	rm -rf .aws-sam .pytest_cache .ruff_cache .mypy_cache
