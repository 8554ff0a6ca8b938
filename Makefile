# Two entry points for a fresh machine: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# A service must never wait on telemetry; the example project also ships `.telemetry` (consent: false).
export KEDRO_DISABLE_TELEMETRY := 1

# The wheel holds the plugin only; the example project (payment_fraud) is imported from src/.
# `kedro ...` adds it itself ([tool.kedro] source_dir), pytest through its `pythonpath`; a plain
# python running the example's modules (make demo, make bench) gets it here.
EXAMPLE_PATH := PYTHONPATH=$(CURDIR)/src$${PYTHONPATH:+:$$PYTHONPATH}

.PHONY: install demo test test-tansu pythons lint bench soak mutants package clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,example]"
	@touch $@

install: $(STAMP)

## demo: generate payments, train, score in batch, then stream them through the embedded broker
demo: $(STAMP)
	$(BIN)/kedro run
	$(BIN)/kedro stream compile --namespace scoring
	$(EXAMPLE_PATH) $(BIN)/python -m payment_fraud.stream_demo

## test: lint, then the whole test suite
test: lint
	$(BIN)/python -m pytest --durations=10

## test-tansu: the integration tests again, against Tansu (an independent Kafka implementation)
test-tansu: $(STAMP)
	$(BIN)/python tests/run_on_tansu.py --durations=10

## pythons: the unit tests, the example's tests and one end-to-end stream on every other Python that
## requires-python admits, each in its own .venv-3.X (pyenv's or python3.X on the PATH; a missing
## one fails)
pythons: $(STAMP)
	$(BIN)/python tests/run_on_pythons.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

## bench: side-by-side benchmarks (installs kedro-boot)
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,example,bench]"
	$(EXAMPLE_PATH) $(BIN)/python bench/session_overhead.py
	$(EXAMPLE_PATH) $(BIN)/python bench/throughput.py --rounds 3
	$(BIN)/python bench/state_store.py
	$(BIN)/python bench/state_restore.py
	$(EXAMPLE_PATH) $(BIN)/python bench/scale_out.py
	$(EXAMPLE_PATH) $(BIN)/python bench/restore_times.py

## soak: 1 000 000 records through `kedro stream consume`; throughput and memory per window
soak: $(STAMP)
	$(BIN)/python bench/soak.py

## mutants: plant known bugs in a scratch copy and show which tests catch each (not in `test`)
mutants: $(STAMP)
	$(BIN)/python tests/mutants.py

## package: the example as a deployment ships it, in dist/: the plugin's wheel, the example
## project's wheel (deploy/example-wheel) and its conf archive, as `kedro package` writes it
package: $(STAMP)
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir dist . deploy/example-wheel
	tar --exclude='local/*.yml' -czf dist/conf-payment_fraud.tar.gz conf

clean:
	rm -rf $(VENV) .venv-3.* build deploy/example-wheel/build dist *.egg-info src/*.egg-info .pytest_cache .ruff_cache

## deploy-check: promtool over deploy/prometheus (Debian: apt-get install prometheus); the rest
## of the deployment files are checked by tests/deploy, part of `make test`
.PHONY: deploy-check
deploy-check:
	@command -v promtool >/dev/null || { echo "promtool not found: apt-get install -y prometheus" >&2; exit 1; }
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts_test.yml
	promtool check config deploy/prometheus/prometheus.yml

## docs: build the documentation site into site/, strict: a broken link or anchor, or a page of
## docs/ left out of mkdocs.yml's nav, fails it; part of `make test`
.PHONY: docs
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
test: docs
