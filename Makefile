# `make test` and `make run` create the virtualenv and install what they need when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run demo test lint clean bench soak

$(BIN)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(BIN)/.dev: requirements.txt requirements-dev.txt $(BIN)/.runtime
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: $(BIN)/.runtime  ## run the service for real with your .env
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

demo: $(BIN)/.runtime  ## the service against a local Vonage emulator; Ctrl-C stops it
	$(BIN)/python -m tools.demo

lint: $(BIN)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint --failure-threshold info Dockerfile

test: lint  ## lint, then every test
	$(BIN)/python -m pytest

bench: $(BIN)/.dev  ## SMS/s and CPU per SMS into docs/benchmarks/ (about 20 min; needs wrk; node for the peer)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

soak: $(BIN)/.dev  ## 3 min of load with Vonage failures; fails unless every answer is right
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .demo
