# The two entry points: `make run` and `make test`. Both create .venv and install on first use.
PORT ?= 3000
VENV := .venv
PY := $(VENV)/bin/python
# Two install stamps: `make run` installs the runtime and the `local` extra only; `make test`
# adds the `dev` extra (test toolchain) and the headless browser, so running after serving
# installs only the rest.
RUN_STAMP := $(VENV)/.installed-local
STAMP := $(VENV)/.installed-dev

.PHONY: run test browser openapi bench clean

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
## pytest runs two workers, a test file per worker at a time (tests of one file share fixtures).
test: $(STAMP) browser
	$(VENV)/bin/ruff check lib handlers local tests scripts bench
	$(VENV)/bin/cfn-lint template.yaml
	$(PY) -m pytest -n 2 --dist loadfile
	$(PY) -m bench.run --quick --output bench/results-quick.json

## Regenerate docs/openapi.json from the code.
openapi: $(STAMP)
	$(PY) -m local.openapi --write

## Full benchmark: a table on stdout, bench/results.json, and docs/BENCHMARKS.md rendered from it.
bench: $(STAMP)
	$(PY) -m bench.run --output bench/results.json
	$(PY) -m bench.report

## `sam build` calls build-<Function> (template.yaml: BuildMethod makefile) with ARTIFACTS_DIR.
## The package holds what runs and nothing else: the runtime dependencies for Lambda's arm64 /
## Python 3.13, lib/ and handlers/ (never local/, tests, docs or dev dependencies), all compiled to
## bytecode by Python 3.13 itself. Lambda's file system is read-only: a module without matching
## bytecode is compiled again at every cold start. The bytecode is "unchecked-hash" (PEP 552): it
## does not depend on file times, which zipping rounds. The dependencies are installed once per
## requirements.txt into build/lambda-deps/<key> and copied from there. botocore's API models are
## kept for the services the code calls only (BOTOCORE_SERVICES; tests/test_package.py checks that
## every client the code creates is among them): they are two thirds of the package otherwise.
FUNCTIONS := ServicesFunction StatesFunction TasksFunction MaintenanceFunction PublisherFunction
LAMBDA_PLATFORM ?= manylinux2014_aarch64
LAMBDA_PIP := --platform $(LAMBDA_PLATFORM) --implementation cp --python-version 3.13 --only-binary=:all:
COMPILE := -m compileall -q -j 0 --invalidation-mode unchecked-hash
# The runtime's Python, wherever it is: on PATH or installed with pyenv (whose shim would refuse to
# run a version that is not selected).
PYTHON313 = $(shell for v in $$(pyenv versions --bare 2>/dev/null | grep '^3\.13' | sort -rV); do \
	PYENV_VERSION=$$v pyenv which python3.13 2>/dev/null && exit 0; done; command -v python3.13)
DEPS_CACHE := build/lambda-deps
BOTOCORE_SERVICES := dynamodb s3 sqs sts events

.PHONY: $(addprefix build-,$(FUNCTIONS)) lambda-python
lambda-python:
	@echo "$(PYTHON313)"

$(addprefix build-,$(FUNCTIONS)):
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set (sam build sets it)" >&2; exit 1; }
	@"$(PYTHON313)" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null \
	  || { echo "Python 3.13 (Lambda's runtime) is needed to build: pyenv install 3.13" >&2; exit 1; }
	@key=$$(cat requirements.txt | "$(PYTHON313)" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read() + sys.version.encode() + b"$(LAMBDA_PIP) $(BOTOCORE_SERVICES)").hexdigest()[:16])'); \
	deps="$(DEPS_CACHE)/$$key"; \
	if [ ! -d "$$deps" ]; then \
	  echo "installing the runtime dependencies for arm64 / Python 3.13 into $$deps"; \
	  rm -rf "$$deps.tmp" && \
	  "$(PYTHON313)" -m pip install --quiet --no-compile $(LAMBDA_PIP) -r requirements.txt -t "$$deps.tmp" && \
	  rm -rf "$$deps.tmp/bin" && \
	  for model in "$$deps.tmp"/botocore/data/*/ "$$deps.tmp"/boto3/data/*/; do \
	    case " $(BOTOCORE_SERVICES) " in *" $$(basename "$$model") "*) ;; *) rm -rf "$$model";; esac; \
	  done && \
	  "$(PYTHON313)" $(COMPILE) "$$deps.tmp" && \
	  mv "$$deps.tmp" "$$deps" || exit 1; \
	fi; \
	mkdir -p "$(ARTIFACTS_DIR)" && cp -R "$$deps/." "$(ARTIFACTS_DIR)/"
	cp -R lib handlers "$(ARTIFACTS_DIR)/"
	find "$(ARTIFACTS_DIR)/lib" "$(ARTIFACTS_DIR)/handlers" -name __pycache__ -prune -exec rm -rf {} +
	"$(PYTHON313)" $(COMPILE) "$(ARTIFACTS_DIR)/lib" "$(ARTIFACTS_DIR)/handlers"

## Deploy with SAM (samconfig.toml holds the defaults): `make deploy STACK=cs-test REGION=eu-west-1`,
## test stacks with `PARAMS="TableDeletionProtection=false"`. Needs AWS credentials; installs the SAM
## CLI into build/sam-cli on first use.
STACK ?= context-services
REGION ?= $(or $(AWS_REGION),$(AWS_DEFAULT_REGION),us-east-1)
SAM_CLI := build/sam-cli/bin/sam
SAM_ARGS = --stack-name $(STACK) --region $(REGION)

$(SAM_CLI):
	"$(PYTHON313)" -m venv build/sam-cli
	build/sam-cli/bin/python -m pip install --quiet 'aws-sam-cli>=1.130,<2'

.PHONY: deploy delete validate
## sam validate --lint and sam build (no AWS account needed).
validate: $(SAM_CLI)
	SAM_CLI_TELEMETRY=0 $(SAM_CLI) validate --lint --region $(REGION)
	SAM_CLI_TELEMETRY=0 $(SAM_CLI) build

deploy: $(SAM_CLI)
	SAM_CLI_TELEMETRY=0 $(SAM_CLI) build
	SAM_CLI_TELEMETRY=0 $(SAM_CLI) deploy $(SAM_ARGS) $(if $(PARAMS),--parameter-overrides $(PARAMS))

## Delete the stack. The table (and its data and grants) and the export bucket are kept on purpose
## (DeletionPolicy Retain): README, "What make delete leaves behind".
delete: $(SAM_CLI)
	-SAM_CLI_TELEMETRY=0 $(SAM_CLI) list stack-outputs $(SAM_ARGS) --output table
	SAM_CLI_TELEMETRY=0 $(SAM_CLI) delete $(SAM_ARGS) --no-prompts
	@echo "kept on purpose: the table (TableName above: data and grants) and the export bucket (ExportBucketName)"

## Re-drive the change feed: publish the stream records of the batches described in the feed's
## dead-letter queue, within the stream's 24 hours (README, Change feed). `ARGS=--dry-run` only checks.
.PHONY: feed-redrive
feed-redrive: $(RUN_STAMP)
	$(PY) -m scripts.feed_redrive --stack $(STACK) --region $(REGION) $(ARGS)

## The end-to-end suite over HTTP: against a local server it starts itself, or against a deployed
## stage with CS_BASE_URL=https://.../Prod/genesys/1/cs (requests signed with SigV4).
.PHONY: e2e
e2e: $(STAMP)
	$(PY) -m pytest tests/e2e

clean:
	rm -rf $(VENV) build *.egg-info
