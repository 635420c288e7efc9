# The front door. `make help` lists the targets.
SHELL := /bin/bash
PY := .venv/bin/python
# stop/status work even from a .venv made before tools/carbon_dev existed (run installs it: setup)
DEVSTACK := PYTHONPATH=tools/carbon_dev/src $(PY) -m carbon_dev.devstack
PROTOS := $(shell find proto -name '*.proto' | sort)
GRPC_PROTOS := $(shell grep -l '^service ' $(PROTOS))
export PATH := $(CURDIR)/.deps/bin:$(PATH)

.DEFAULT_GOAL := help
.PHONY: help setup deps-up deps-down run stop status test test-unit test-int test-e2e bench chaos exchange-chaos proto proto-check lint format chart-lint chart-golden compose k8s-check lock up down clean

# What each goal needs installed: `setup` runs scripts/install-deps.sh once with what the goals
# given on the command line need together, so a first `make run` builds only FerretDB and Jaeger
# (sets and tools: scripts/install-deps.sh; `make setup` alone installs everything).
NEEDS_setup := all
NEEDS_run := run
NEEDS_deps-up := run
NEEDS_test := test
NEEDS_test-unit := chart
NEEDS_test-int := run helm
NEEDS_test-e2e := run
NEEDS_bench := run
NEEDS_chaos := run
NEEDS_exchange-chaos := run
NEEDS_chart-lint := chart
NEEDS_chart-golden := chart
NEEDS_k8s-check := k8s
SETUP_SETS := $(sort $(foreach goal,$(MAKECMDGOALS),$(NEEDS_$(goal))))

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}'

setup: ## install everything missing: Debian packages, Go tools (FerretDB, Jaeger, helm, kube-score, kind), the venv; other goals install only what they need
	@bash scripts/install-deps.sh $(or $(SETUP_SETS),python)

deps-up: setup ## start RabbitMQ, FerretDB and Jaeger on loopback (idempotent)
	@bash scripts/deps.sh start

deps-down: ## stop RabbitMQ, FerretDB and Jaeger
	@bash scripts/deps.sh stop

run: setup ## start the dependencies (unless running) and the platform, stream a demo day, show where to look; Ctrl-C stops what it started
	@$(PY) -m carbon_dev.devstack run

stop: ## stop the platform and its dependencies, whoever started them (bounded: never waits for a missing pid file)
	-@$(DEVSTACK) stop 2>/dev/null
	@bash scripts/deps.sh stop

status: ## show what is running and who started it
	@bash scripts/deps.sh status
	-@$(DEVSTACK) status 2>/dev/null

test: deps-up proto-check lint ## lint, then unit + integration + e2e tests against real RabbitMQ, FerretDB and Jaeger (+ messaging on quorum queues)
	@$(PY) -m pytest -q
	@echo "== messaging again on quorum queues (CARBON_QUEUE_TYPE=quorum)"
	@CARBON_QUEUE_TYPE=quorum $(PY) -m pytest -q -p no:cacheprovider libs/carbon_common/tests/integration/test_messaging.py libs/carbon_common/tests/integration/test_topology_queue_types.py

test-unit: setup ## fast tests only (no servers)
	@$(PY) -m pytest -q -m "not integration and not e2e"

test-int: deps-up ## integration tests
	@$(PY) -m pytest -q -m integration

test-e2e: deps-up ## end-to-end tests over the whole running platform
	@$(PY) -m pytest -q -m e2e

bench: deps-up ## benchmarks: figures and ratios (tests/bench/bench_*.py; the platform load with 1 and 2 replicas)
	@for f in tests/bench/bench_*.py; do [ $$f = tests/bench/bench_platform.py ] && continue; echo "== $$f"; $(PY) $$f || exit 1; done
	@echo "== tests/bench/bench_platform.py (one replica each, then two of calc and account)"
	@$(PY) tests/bench/bench_platform.py --label single
	@$(PY) tests/bench/bench_platform.py --label replicas --replicas calc=2,account=2 --compare-with single

proto: setup ## regenerate Python code from proto/ (committed; CI fails on a dirty tree)
	@rm -rf libs/carbon_proto/src/carbon && mkdir -p libs/carbon_proto/src
	@$(PY) -m grpc_tools.protoc -Iproto --python_out=libs/carbon_proto/src --pyi_out=libs/carbon_proto/src $(PROTOS)
	@$(PY) -m grpc_tools.protoc -Iproto --grpc_python_out=libs/carbon_proto/src $(GRPC_PROTOS)
	@$(PY) scripts/proto_packages.py libs/carbon_proto/src/carbon
	@echo "generated code for $(words $(PROTOS)) proto files"

proto-check: proto ## fail when the committed generated code differs from the protos
	@git diff --exit-code --stat -- libs/carbon_proto || { echo "generated code is stale: run make proto and commit"; exit 1; }

chart-lint: setup ## helm lint + render examples + kubernetes-validate + compose config
	@$(PY) -m pytest -q tests/chart

chart-golden: setup ## re-render the chart's golden files (examples/*/rendered.yaml, tests/chart/golden/) and docker-compose.yml after reviewing the diff
	@cd tests/chart && ../../$(PY) golden.py
	@$(PY) -m carbon_dev.compose

compose: setup ## regenerate docker-compose.yml from the chart's values (committed; tests/chart fails when it is stale)
	@$(PY) -m carbon_dev.compose

k8s-check: setup ## the chart on a local cluster (kind) when one can be had, else says why; kube-score + tests/chart offline
	@bash scripts/k8s-check.sh

lint: setup ## ruff lint + format check over every Python file (rules and why they were chosen: ruff.toml)
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check . >/dev/null || { $(PY) -m ruff format --check .; echo "not formatted: run make format"; exit 1; }

format: setup ## apply ruff format (the style make lint checks)
	@$(PY) -m ruff format .

lock: ## re-resolve requirements.in into requirements.lock
	@$(PY) -m pip install -q -r requirements.in && $(PY) -m pip freeze --all | grep -vE '^(-e|pip==|carbon-|ingest|calc|account|exchange-bridge)' > requirements.lock

up: ## docker-compose up (needs a Docker engine)
	docker-compose up --build -d

down: ## docker-compose down
	docker-compose down
chaos: deps-up ## kill processes and restart RabbitMQ/FerretDB mid-stream; audit exactly-once
	@$(PY) scripts/chaos.py

exchange-chaos: deps-up ## batches form while the registry injects >= 1,000 faults and the bridge/registry are SIGKILLed; audit: no double submission, every tonne issued once, reconciliation clean
	@$(PY) scripts/exchange_chaos.py
