# sipfw — every entry point a person or CI types. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
HEAP32 := tools/heap32
HEAP32_STAMP := $(HEAP32)/node_modules/.setup-stamp

.PHONY: setup test test-deps node-deps test-unit test-upy typecheck lint demo lab-up lab-down flash logs bench fuzz clean

# Debian packages the tests start for real (installed only when missing): dnsmasq for the
# DNS tests, sipp for SIP interop, Kamailio, dig and iptables for the lab (labctl checks too:
# the same list, but a lab inside a network namespace cannot reach the package mirror), socat
# for the pty pair that stands in for a Raspberry Pi's UART (tests/host/test_serialrunner.py);
# baresip-core (the softphone the call audio is proven against), espeak-ng (the known speech)
# and sox (8 kHz 16-bit mono) for tests/lab/test_audio.py and bench/bench_audio.py.
TEST_DEBS := dnsmasq-base dnsutils sip-tester kamailio kamailio-tls-modules iptables openssl socat tmux \
	baresip-core espeak-ng sox

setup: $(STAMP) $(HEAP32_STAMP)

# Idempotent: re-runs pip only when a pin changes.
$(STAMP): pyproject.toml requirements-dev.txt requirements-stubs.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt -e .
	for port in esp32 rp2; do \
	  $(PY) -m pip install -q --disable-pip-version-check --upgrade \
	    --target $(VENV)/stubs/$$port $$(grep -- "-$$port-stubs" requirements-stubs.txt) || exit 1; \
	done
	touch $(STAMP)

# MicroPython's 32-bit WebAssembly port for the heap harness (tools/heap32), pinned in its
# package-lock.json; npm runs again only when the pin changes.
$(HEAP32_STAMP): $(HEAP32)/package.json $(HEAP32)/package-lock.json
	$(MAKE) --no-print-directory node-deps
	npm ci --prefix $(HEAP32) --no-audit --no-fund --loglevel=error
	touch $@

# node runs the harness, npm installs its port: Debian's packages, only when missing.
node-deps:
	@missing=$$(command -v node >/dev/null || echo nodejs; command -v npm >/dev/null || echo npm); \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

# Idempotent: asks apt only for packages dpkg does not already know as installed.
test-deps: node-deps
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

# Long fuzz runs (>= 1M inputs each), bounded in time; then the config path: 20 000
# generated configs through validate and a running agent (~1 min).
fuzz: setup
	$(PY) bench/fuzz_dns.py
	$(PY) bench/fuzz_sip.py
	SIPFW_FUZZ_EXAMPLES=20000 $(PY) -m pytest -q tests/host/test_config_hypothesis.py

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
	rm -rf $(VENV) .pytest_cache .mypy_cache build $(HEAP32)/node_modules

# The host tools on the one attached board (or PORT=/dev/ttyACM0, a serial number, a vboard id).
flash: setup
	$(VENV)/bin/sipfw flash $(if $(PORT),--port $(PORT))

logs: setup
	$(VENV)/bin/sipfw logs $(if $(PORT),--port $(PORT))
