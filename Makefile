# The two entry points: `make run` and `make test`. Both create .venv and install on first use.
PORT ?= 3000
VENV := .venv
PY := $(VENV)/bin/python
# Two install stamps: `make run` installs the runtime and the `local` extra only; `make test`
# installs the `dev` extra (test toolchain, which includes `local`) and the headless browser, in one
# pip run (one resolution, one editable build) and stamps both, so running after serving installs
# only the rest and serving after testing installs nothing.
RUN_STAMP := $(VENV)/.installed-local
STAMP := $(VENV)/.installed-dev
# Bytecode is written where Python imports from (site-packages, lib/, tests/...), whatever the shell
# says: pip compiles nothing at install (--no-compile: most of the 8,800 modules it would compile,
# about 26 s of CPU, are never imported), each module is compiled on its first import and read from
# __pycache__ afterwards; otherwise every process of `make test` (servers, function workers, `make
# run`s, pytest workers) compiles the project's modules again.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run check tier test browser openapi bench import clean faults

$(PY):
	"$$(sh scripts/find-python.sh)" -m venv $(VENV)

$(RUN_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --no-compile -e '.[local]'
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --no-compile -e '.[dev]'
	touch $(RUN_STAMP) $(STAMP)

## Serve the API on http://127.0.0.1:$(PORT) with an embedded in-memory DynamoDB (SIGTERM, Ctrl-C or SIGHUP stops).
run: $(RUN_STAMP)
	PORT=$(PORT) exec $(PY) -m local.server

## The headless browser the Swagger UI test drives (Debian's chromium + chromium-driver; skipped if impossible).
browser:
	sh scripts/install-browser.sh

## The quick check while changing code (about 30 s): lint, types, and the unit tier (tests/unit: pure
## rules, the documents agreeing with the code, the import contracts of the layers).
LINT := $(VENV)/bin/ruff check lib handlers local tests scripts bench
TYPES := $(PY) -m mypy
check: $(STAMP)
	$(LINT)
	$(TYPES)
	$(PY) -m pytest -n 2 --dist load tests/unit

## One tier: `make tier TIER=api` (unit, api, http, browser, package, e2e; docs/DESIGN.md, "Tests in tiers").
TIER ?= unit
tier: $(STAMP)
	$(PY) -m pytest -n 2 --dist $(if $(filter unit api,$(TIER)),worksteal,loadfile --no-loadscope-reorder) tests/$(TIER)

## Every test and check: lint, types, template lint, every tier, branch coverage of lib/ and handlers/
## over the in-process tiers (failing below COVERAGE_FLOOR, the measured figure rounded down; the other
## tiers run that code in server processes, which coverage does not follow: docs/DESIGN.md), and a
## benchmark smoke run. Parts run at once where the cores have room: test-lint, test-in-process
## (unit, api: both cores busy) and test-servers (http, package, e2e: mostly waiting on servers and
## builds) first; test-browser (the browser tier but the viewer's open-mode file: mostly waiting on
## chromium) and test-bench (mostly one process at a time: a smoke run, whose times no check reads)
## once test-servers is done (the benchmark builds packages as tests/package does), beside the rest of
## the in-process tiers, then the checks of what it wrote (tests/unit/test_bench.py on
## results-quick.json, which the benchmark writes whole, by a rename: the in-process tier reads it only
## if it is there); test-viewer-clock last and alone (tests/browser/test_viewer_open.py times the
## viewer's look-ups on the clock: nothing else keeps the cores busy then).
## The in-process tiers give each test to whichever worker is free; the others a test file per worker
## at a time, the longest files first (tests/conftest.py), so the tests of a file share its server.
COVERAGE_FLOOR := 94
COVERAGE := --cov --cov-branch --cov-report=
# The tests and the benchmark run make themselves (make run, builds, make import): they get no share
# of this make's jobs and output syncing, as when they ran one after another.
ALONE := env -u MAKEFLAGS -u MFLAGS
SERVER_TIERS := --dist loadfile --no-loadscope-reorder
CLOCKED := tests/browser/test_viewer_open.py
.PHONY: test-lint test-in-process test-servers test-browser test-bench test-viewer-clock stop-signals
test: $(STAMP)
	rm -f .coverage .coverage.*
	$(MAKE) --no-print-directory -j 4 --output-sync=target test-lint test-in-process test-servers test-browser test-bench test-viewer-clock
	$(PY) -m coverage combine --quiet .coverage.in-process
	$(PY) -m coverage report --fail-under=$(COVERAGE_FLOOR)

test-lint: $(STAMP)
	$(LINT)
	$(TYPES)
	$(VENV)/bin/cfn-lint template.yaml

test-in-process: $(STAMP)
	$(ALONE) COVERAGE_FILE=.coverage.in-process $(PY) -m pytest -n 2 --dist worksteal $(COVERAGE) tests/unit tests/api

test-servers: $(STAMP)
	$(ALONE) $(PY) -m pytest -n 2 $(SERVER_TIERS) tests/http tests/package tests/e2e

test-browser: $(STAMP) browser test-servers
	$(ALONE) $(PY) -m pytest -n 2 $(SERVER_TIERS) --ignore=$(CLOCKED) tests/browser

test-bench: $(STAMP) test-servers
	$(ALONE) $(PY) -m bench.run --quick --output bench/results-quick.json
	$(ALONE) $(PY) -m pytest -p no:xdist tests/unit/test_bench.py -k "results and quick"

test-viewer-clock: $(STAMP) browser test-lint test-in-process test-servers test-browser test-bench
	$(ALONE) $(PY) -m pytest -p no:xdist $(CLOCKED)

## `make run` stopped by every stop signal x target x repeat count, twice over (52 runs, about 2 minutes;
## `make test` runs 28 of them: every signal to every target, every repeat count; README, "Two commands").
stop-signals: $(STAMP)
	STOP_SIGNALS=all $(PY) -m pytest -p no:xdist tests/http/test_stop_signals.py

## Maintenance under faults, exhaustively: every call of a multi-step purge and export faulted with
## every kind (make test faults every call once, the kinds taking turns). About 15 minutes.
faults: $(STAMP)
	FAULTS=all $(PY) -m pytest -n 2 tests/api/test_maintenance_faults.py
## Import conversations (contract §11) from export files or a running Context Services into the local run
## (default) or a deployed table: make import ARGS="--files exports" (README, Importing conversations).
import: $(RUN_STAMP)
	$(VENV)/bin/cs-import $(ARGS)

## Regenerate docs/openapi.json from the code.
openapi: $(STAMP)
	$(PY) -m local.openapi --write

## Full benchmark: a table on stdout, bench/results.json, docs/BENCHMARKS.md rendered from it, and
## the figures README.md quotes (bench/readme.py: cold start, package size, costs).
bench: $(STAMP)
	$(PY) -m bench.run --output bench/results.json
	$(PY) -m bench.report
	$(PY) -m bench.readme

## `sam build` calls build-<Function> (template.yaml: BuildMethod makefile) with ARTIFACTS_DIR.
## The package holds what runs and nothing else: the runtime dependencies for Lambda's arm64 /
## Python 3.13, lib/ and handlers/ (never local/, tests, docs or dev dependencies), all compiled to
## bytecode by Python 3.13 itself. Lambda's file system is read-only: a module without matching
## bytecode is compiled again at every cold start. The bytecode is "unchecked-hash" (PEP 552): it
## does not depend on file times, which zipping rounds. The dependencies are installed once per
## requirements.txt into build/lambda-deps/<key> and copied from there (under a lock: `make test` runs
## the package tests and the benchmark's build at the same time). botocore's API models are
## kept for the services the code calls only (BOTOCORE_SERVICES; tests/package/test_package.py checks that
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
BOTOCORE_SERVICES := dynamodb s3 sqs sts secretsmanager events

.PHONY: $(addprefix build-,$(FUNCTIONS)) lambda-python
lambda-python:
	@echo "$(PYTHON313)"

$(addprefix build-,$(FUNCTIONS)):
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set (sam build sets it)" >&2; exit 1; }
	@"$(PYTHON313)" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null \
	  || { echo "Python 3.13 (Lambda's runtime) is needed to build: pyenv install 3.13" >&2; exit 1; }
	@mkdir -p "$(DEPS_CACHE)" && exec 9>"$(DEPS_CACHE)/.lock" && { ! command -v flock >/dev/null || flock 9; }; \
	key=$$(cat requirements.txt | "$(PYTHON313)" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read() + sys.version.encode() + b"$(LAMBDA_PIP) $(BOTOCORE_SERVICES)").hexdigest()[:16])'); \
	deps="$(DEPS_CACHE)/$$key"; \
	if [ ! -d "$$deps" ]; then \
	  echo "installing the runtime dependencies for $(LAMBDA_PLATFORM) / Python 3.13 into $$deps"; \
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

## The viewer function's package: its handler and the viewer's static files (viewer/), nothing else
## (it imports no dependency and nothing of lib/).
.PHONY: build-ViewerFunction
build-ViewerFunction:
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set (sam build sets it)" >&2; exit 1; }
	mkdir -p "$(ARTIFACTS_DIR)/handlers"
	# A package marker of its own: handlers/__init__.py imports lib/, which this package does not hold.
	printf '"""The journey viewer: its handler alone (no lib/)."""\n' > "$(ARTIFACTS_DIR)/handlers/__init__.py"
	cp handlers/viewer.py "$(ARTIFACTS_DIR)/handlers/"
	cp -R viewer "$(ARTIFACTS_DIR)/"

## Deploy with SAM (samconfig.toml holds the defaults): `make deploy STACK=cs-test REGION=eu-west-1`,
## test stacks with `PARAMS="TableDeletionProtection=false"`. Needs AWS credentials, checked (with the
## account, caller and region printed) before anything is installed or built; then installs the SAM
## CLI into build/sam-cli on first use. The region: REGION, else AWS_REGION, else AWS_DEFAULT_REGION, else
## us-east-1 (a profile's own region is not read: name it with REGION).
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

# The credentials are checked first, with the project's own Python (boto3 is a runtime dependency),
# before the SAM CLI's first installation and before the build: each takes minutes.
deploy: $(RUN_STAMP)
	$(PY) scripts/deploy_check.py --stack $(STACK) --region $(REGION)
	@$(MAKE) --no-print-directory $(SAM_CLI)
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
