# The two entry points: `make run` and `make test`. Both create .venv and install on first use.
PORT ?= 3000
VENV := .venv
PY := $(VENV)/bin/python
# Two install stamps: `make run` installs the runtime and the `local` extra only; `make test`
# adds the `dev` extra (test toolchain) and the headless browser, so running after serving
# installs only the rest.
RUN_STAMP := $(VENV)/.installed-local
STAMP := $(VENV)/.installed-dev

.PHONY: run test browser openapi bench clean build-ServicesFunction build-StatesFunction build-TasksFunction

$(PY):
	"$$(sh scripts/find-python.sh)" -m venv $(VENV)

$(RUN_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[local]'
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Serve the API on http://127.0.0.1:$(PORT) with an embedded in-memory DynamoDB (Ctrl-C or SIGTERM stops).
run: $(RUN_STAMP)
	PORT=$(PORT) exec $(PY) -m local.server

## The headless browser the Swagger UI test drives (Debian's chromium + chromium-driver; skipped if impossible).
browser:
	sh scripts/install-browser.sh

## Every test and check: unit, API, contract (OpenAPI drift), template lint, benchmark smoke run.
test: $(STAMP) browser
	$(VENV)/bin/ruff check lib handlers local tests scripts bench
	$(VENV)/bin/cfn-lint template.yaml
	$(PY) -m pytest
	$(PY) -m bench.run --quick --output bench/results-quick.json

## Regenerate docs/openapi.json from the code.
openapi: $(STAMP)
	$(PY) -m local.openapi --write

## Full benchmark: a table on stdout, bench/results.json, and docs/BENCHMARKS.md rendered from it.
bench: $(STAMP)
	$(PY) -m bench.run --output bench/results.json
	$(PY) -m bench.report

## `sam build` calls these (template.yaml: BuildMethod makefile). The package holds the runtime
## dependencies for Lambda's arm64 / Python 3.13, lib/ and handlers/ only, and their bytecode
## precompiled (Lambda's file system is read-only, so uncompiled modules are compiled at every cold start).
LAMBDA_PIP := --platform manylinux2014_aarch64 --implementation cp --python-version 3.13 --only-binary=:all:
build-ServicesFunction build-StatesFunction build-TasksFunction:
	python3 -m pip install --quiet $(LAMBDA_PIP) -r requirements.txt -t "$(ARTIFACTS_DIR)"
	cp -R lib handlers "$(ARTIFACTS_DIR)/"
	find "$(ARTIFACTS_DIR)/lib" "$(ARTIFACTS_DIR)/handlers" -name __pycache__ -prune -exec rm -rf {} +
	# Bytecode is only of use when made by the runtime's version (3.13), which find-python prefers.
	"$$(sh scripts/find-python.sh)" -m compileall -q "$(ARTIFACTS_DIR)/lib" "$(ARTIFACTS_DIR)/handlers"

clean:
	rm -rf $(VENV) build *.egg-info
