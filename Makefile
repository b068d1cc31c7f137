# Everything a newcomer needs: `make demo` runs the whole pipeline locally, `make test` runs the tests.
# Both create the virtual environment on first use; no Docker and no AWS account are needed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Reinstalled when a pin or the project's own packaging changes.
INSTALL_INPUTS := requirements.txt lambdas/requirements.txt pyproject.toml
STAMP := $(VENV)/.installed-$(shell cat $(INSTALL_INPUTS) | cksum | cut -d' ' -f1)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
# pytest-xdist workers; each worker that runs e2e tests starts its own local pipeline (tests/e2e/conftest.py).
WORKERS ?= 2

.PHONY: browser venv demo up test test-fast unit integration infra e2e e2e-localstack synth cdk-synth deploy bench lint redrive openapi clean

$(STAMP): $(INSTALL_INPUTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

## The main job: the whole pipeline on the embedded emulator, replaying events, showing recommendations.
## EVENTS=path.jsonl replays a file in the shared data format; N=... sets the generated event count.
demo: venv
	$(PY) -m tools.demo $(if $(EVENTS),--events-file $(EVENTS)) $(if $(N),--events $(N)) $(if $(SPEED),--speed $(SPEED)) $(if $(PROBES),--probes $(PROBES)) $(if $(LIMIT),--limit $(LIMIT))

## Leave the local pipeline running (prints the base URL, API keys, console and storefront URLs; writes
## .local/endpoint.json), warmed in the background with the demo shop's events (the storefront's catalog).
## N=0 starts empty, N=... sets the generated event count; EVENTS=path.jsonl (LIMIT=, SPEED=) replays and
## shows a file instead. `python -m local_emulator up` is the bare emulator: no storefront, empty.
up: venv
	$(PY) -m tools.up $(if $(EVENTS),--events-file $(EVENTS)) $(if $(N),--events $(N)) $(if $(SPEED),--speed $(SPEED)) $(if $(LIMIT),--limit $(LIMIT))

## The test suite (what .ci/run runs).
## (The browser tests need Chromium: `make browser` finds it or installs Debian's package first.)
test: venv browser
	$(PY) -m pytest -n $(WORKERS) --dist loadgroup

## Chromium for the browser tests (tests/e2e/browser.py finds it on PATH or as $$CHROMIUM): installs
## Debian's/Ubuntu's package when none is found.
browser:
	@test -n "$$CHROMIUM" || command -v chromium || command -v chromium-browser || command -v google-chrome \
		|| { if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y chromium; \
			else sudo apt-get update && sudo apt-get install -y chromium; fi; }

## Everything but the end-to-end tests.
test-fast: venv
	$(PY) -m pytest -n $(WORKERS) -m "not e2e"

## One kind of test each: logic without AWS or network (unit), code against moto and the emulator's
## parts (integration), the synthesized template (infra), the whole local pipeline over HTTP (e2e).
unit: venv
	$(PY) -m pytest -n $(WORKERS) tests/unit

integration: venv
	$(PY) -m pytest -n $(WORKERS) tests/integration

infra: venv
	$(PY) -m pytest -n $(WORKERS) tests/infra

e2e: venv browser
	$(PY) -m pytest -n $(WORKERS) --dist loadgroup tests/e2e

## The same e2e suite against a running LocalStack (needs Docker; start it first, see localstack/README.md):
## deploys with cdklocal (= npm run localstack:deploy), then skips, with the reason, what LocalStack lacks.
e2e-localstack: venv
	bash localstack/deploy.sh
	STREAMREC_TARGET=localstack STREAMREC_PROFILE=localstack $(PY) -m pytest -m e2e

## Synthesize the CloudFormation template into cdk.out (no CDK CLI needed).
synth: venv
	$(PY) app.py

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

## The same through the pinned CDK CLI; `make deploy` ships it to the account in your AWS profile.
cdk-synth: venv node_modules/.package-lock.json
	npx cdk synth $(if $(ENV),-c env=$(ENV))

deploy: venv node_modules/.package-lock.json
	npx cdk deploy $(if $(ENV),-c env=$(ENV))

bench: venv
	$(PY) -m bench.run_all

## Replay the dead-letter and on-failure queues once the cause is fixed (docs/runbook.md#redrive):
## SOURCE=dlq|on-failure (default both), DRY_RUN=1 to see what it would apply, ARGS= for more options.
redrive: venv
	$(PY) -m tools.redrive $(if $(SOURCE),--source $(SOURCE)) $(if $(DRY_RUN),--dry-run) $(ARGS)

openapi: venv
	$(PY) -m tools.export_openapi

## ruff, then the type checker (mypy, [tool.mypy] in pyproject.toml): the project's packages, then the tests.
lint: venv
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m mypy tests

clean:
	rm -rf cdk.out .local .pytest_cache .hypothesis
