# sipfw — every entry point a person or CI types. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp

.PHONY: setup test test-deps test-unit test-upy typecheck lint demo lab-up lab-down flash logs bench fuzz clean

# Debian packages the tests start for real (installed only when missing): dnsmasq for the
# DNS tests, sipp for SIP interop, Kamailio and iptables for the lab (labctl checks too), socat
# for the pty pair that stands in for a Raspberry Pi's UART (tests/host/test_serialrunner.py).
TEST_DEBS := dnsmasq-base sip-tester kamailio kamailio-tls-modules iptables openssl socat

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
	$(MAKE) --no-print-directory lint

typecheck: setup
	$(PY) tools/typecheck.py

# Every bench/bench_*.py: prints its table, figures merged into bench/results.json.
bench: setup test-deps
	$(PY) bench/run.py

# Long fuzz runs (>= 1M inputs each), bounded in time.
fuzz: setup
	$(PY) bench/fuzz_dns.py
	$(PY) bench/fuzz_sip.py

lint: setup
	$(VENV)/bin/ruff check firmware host_tools tests tools bench lab

# The lab runs on system python3 (stdlib only), so it works before and without .venv.
lab-up:
	$(PYTHON) lab/labctl.py up

lab-down:
	$(PYTHON) lab/labctl.py down

# The main job: a virtual board registers through the lab, fails over and back (needs root).
demo: setup
	$(PY) -m sipfw.demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache build

# The host tools on the one attached board (or PORT=/dev/ttyACM0, a serial number, a vboard id).
flash: setup
	$(VENV)/bin/sipfw flash $(if $(PORT),--port $(PORT))

logs: setup
	$(VENV)/bin/sipfw logs $(if $(PORT),--port $(PORT))
