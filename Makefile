# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: help demo test unit up down status clean

help:
	@echo "make demo    set everything up, stream a dataset through the app, print a summary"
	@echo "make test    set everything up and run the unit and integration tests"
	@echo "make unit    unit tests only (no services)"
	@echo "make up | down | status    the local Kafka broker and Schema Registry"

$(INSTALLED): pyproject.toml
	@echo "== installing Python packages into $(VENV) (first run only)"
	@mkdir -p $(VENV) && date +%s > $(VENV)/.started
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@echo "== installed in $$(( $$(date +%s) - $$(cat $(VENV)/.started) )) s"; rm -f $(VENV)/.started
	touch $@

# The Quix Streams contender of `mlstream bench scorer` runs in an environment of its own.
.venv-quix/.installed: tools/bench/quix-requirements.txt
	$(PYTHON) -m venv .venv-quix
	.venv-quix/bin/pip install --quiet -r tools/bench/quix-requirements.txt
	touch $@

demo: $(INSTALLED)
	$(BIN)/mlstream demo

test: $(INSTALLED)
	bash infra/postgres.sh >/dev/null   # PostgreSQL for the metrics store tests (Debian package, our port)
	bash infra/chromium.sh >/dev/null   # headless Chromium for the dashboard test (Debian package)
	@# The servers the tests started are stopped again, whatever the tests' outcome (Kafka and the
	@# registry stop at the end of the pytest session that started them).
	status=0; $(BIN)/pytest -ra --durations=10 || status=$$?; \
	  bash infra/catalog/catalog.sh stop; bash infra/postgres.sh stop; bash infra/s3proxy/s3proxy.sh stop; \
	  exit $$status

unit: $(INSTALLED)
	$(BIN)/pytest -m "not integration"

up down status: $(INSTALLED)
	$(BIN)/mlstream $@

clean: down
	rm -rf .mlstream
