# Profile Streams. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
KAFKA_VERSION := $(shell sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' streams/broker/pom.xml)
KAFKA_LIBS := .cache/kafka/$(KAFKA_VERSION)/libs
INSTALLED := $(VENV)/.installed
NATIVE := $(VENV)/.native
NATIVE_SOURCES := native/Cargo.toml native/Cargo.lock $(shell find native/src -name '*.rs' 2>/dev/null)
JARS := $(KAFKA_LIBS)/.complete
# PyO3 0.30 (native/) needs it; the Dockerfile's Rust image is held to it by tests/test_deploy.
RUST_MIN := 1.85

.PHONY: help prereqs install kafka-jars run test test-fast lint format bench broker topics worker clean

help: ## List every target
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

prereqs: ## Check Python 3.11+, Java 17+, Maven, cargo and cc; say what is missing
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
		|| { echo "missing: Python 3.11+ (found $$($(PYTHON) --version 2>&1))"; exit 1; }
	@command -v java >/dev/null || { echo "missing: Java 17+ (install openjdk-17-jre-headless)"; exit 1; }
	@java -version 2>&1 | awk -F'"' '/version/ {split($$2, v, "."); if (v[1] < 17) {print "missing: Java 17+ (found " $$2 ")"; exit 1}}'
	@command -v mvn >/dev/null || { echo "missing: Maven (install maven)"; exit 1; }
	@command -v cargo >/dev/null || { echo "missing: cargo, Rust $(RUST_MIN)+ (install with https://rustup.rs)"; exit 1; }
	@command -v cc >/dev/null || { echo "missing: a C compiler, cc (install gcc): Rust links with it"; exit 1; }
	@cargo --version | awk -v min=$(RUST_MIN) '{split($$2, v, "."); split(min, m, "."); if (v[1] < m[1] || (v[1] == m[1] && v[2] < m[2])) {print "missing: Rust " min "+ (found cargo " $$2 ")"; exit 1}}'

$(INSTALLED): pyproject.toml
	@$(MAKE) --no-print-directory prereqs
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@ $(NATIVE)

# The Rust kernel (streams._native) again after a change in native/: only cargo's own work.
$(NATIVE): $(INSTALLED) $(NATIVE_SOURCES)
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

install: $(INSTALLED) $(NATIVE) ## Create .venv with the project (editable, Rust kernel built) and dev tools

$(JARS): streams/broker/pom.xml
	@$(MAKE) --no-print-directory prereqs
	mvn -q -B -f streams/broker/pom.xml dependency:copy-dependencies -DoutputDirectory=$(abspath $(KAFKA_LIBS))
	@touch $@

kafka-jars: $(JARS) ## Fetch the embedded Kafka's jars from Maven Central (once)

run: install kafka-jars ## Embedded Kafka + topics + worker + sample data; Ctrl-C stops
	$(VENV)/bin/streams demo

test: install kafka-jars ## Run the whole test suite (unit, property, integration)
	$(PY) -m pytest

test-fast: install ## Unit and property tests only (no broker)
	$(PY) -m pytest -m "not integration"

lint: install ## ruff, mypy and the import layers (import-linter)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

format: install ## Apply ruff's formatter and fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install kafka-jars ## Benchmarks (most beside their baselines) and a worker's state at 1M profiles
	$(PY) -m benchmarks.run
	$(PY) -m benchmarks.sink_postgres
	$(PY) -m benchmarks.bootstrap
	$(PY) -m benchmarks.backfill
	$(PY) -m benchmarks.ingest_http
	$(PY) -m benchmarks.state_scale

broker: install kafka-jars ## Run the embedded Kafka in the foreground on 127.0.0.1:9092
	$(VENV)/bin/streams broker

topics: install ## Provision the contract's topics on KAFKA_BOOTSTRAP_SERVERS
	$(VENV)/bin/streams topics create

worker: install ## Run one processor worker against KAFKA_BOOTSTRAP_SERVERS
	$(VENV)/bin/streams worker

clean: ## Remove the virtualenv, caches and local state
	rm -rf $(VENV) .cache data .pytest_cache .mypy_cache .ruff_cache
