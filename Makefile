# The two entry points: `make run` and `make test`. Both create .venv and install on first use.
PORT ?= 3000
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint openapi bench bench-quick clean

$(PY):
	"$$(sh scripts/find-python.sh)" -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Serve the API on http://127.0.0.1:$(PORT) with an embedded in-memory DynamoDB.
run: $(STAMP)
	PORT=$(PORT) $(PY) -m lib.local_server

## Every test and check: unit, API, contract (OpenAPI drift), template lint, benchmark smoke run.
test: $(STAMP)
	$(VENV)/bin/ruff check lib handlers tests scripts bench
	$(VENV)/bin/cfn-lint template.yaml
	$(PY) -m pytest
	$(PY) -m bench.run --quick --output bench/results-quick.json

## Regenerate docs/openapi.json from the code.
openapi: $(STAMP)
	$(PY) -m lib.openapi --write

## Full benchmark: bench/results.json and a table on stdout.
bench: $(STAMP)
	$(PY) -m bench.run --output bench/results.json

clean:
	rm -rf $(VENV) build *.egg-info
