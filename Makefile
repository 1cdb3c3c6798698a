# sipfw — every entry point a person or CI types. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp

.PHONY: setup test test-deps test-unit test-upy typecheck lint demo lab-up lab-down flash logs bench fuzz clean

# Debian packages the test suite drives (each area appends its own; installed only if missing).
SIP_TEST_DEBS := sip-tester
TEST_DEBS += $(SIP_TEST_DEBS)

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

# Idempotent: asks apt only for packages dpkg does not already know as installed.
test-deps:
	@missing=$$(for d in $(TEST_DEBS); do dpkg -s $$d >/dev/null 2>&1 || echo $$d; done); \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

test: setup test-deps
	$(PY) -m pytest -q tests
	$(MAKE) --no-print-directory typecheck

typecheck: setup
	$(PY) tools/typecheck.py

# Every bench/bench_*.py; each merges its figures into bench/results.json under its key.
bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: setup
	$(VENV)/bin/ruff check firmware host_tools tests tools

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache build
