# sipfw — every entry point a person or CI types. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp

.PHONY: setup test test-unit test-upy typecheck lint demo lab-up lab-down flash logs bench fuzz clean

setup: $(STAMP)

# Idempotent: re-runs pip only when a pin changes.
$(STAMP): pyproject.toml requirements-dev.txt requirements-stubs.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt -e .
	for port in esp32 rp2; do \
	  $(PY) -m pip install -q --disable-pip-version-check --upgrade \
	    --target $(VENV)/stubs/$$port $$(grep -- "-$$port-stubs" requirements-stubs.txt) || exit 1; \
	done
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q tests
	$(MAKE) --no-print-directory typecheck

typecheck: setup
	$(PY) tools/typecheck.py

lint: setup
	$(VENV)/bin/ruff check firmware host_tools tests tools

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache build

# The host tools on the one attached board (or PORT=/dev/ttyACM0, a serial number, a vboard id).
flash: setup
	$(VENV)/bin/sipfw flash $(if $(PORT),--port $(PORT))

logs: setup
	$(VENV)/bin/sipfw logs $(if $(PORT),--port $(PORT))
