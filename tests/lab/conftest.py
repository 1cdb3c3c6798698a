"""Session fixtures for the lab suites: the lab PBX + DNS, a sipp far end, and `healthy`
(both registrars up and answering before and after a test)."""

import os
import sys
from pathlib import Path

import pytest

LAB_DIR = Path(__file__).resolve().parents[2] / "lab"
if str(LAB_DIR) not in sys.path:
    sys.path.insert(0, str(LAB_DIR))

import labctl  # noqa: E402


@pytest.fixture(scope="session")
def lab():
    """The running lab. Brought down at the end only if this session brought it up."""
    if os.geteuid() != 0:
        pytest.skip("lab tests need root: DNS on 127.0.0.53:53, iptables and apt-get")
    run_dir = os.environ.get("SIPFW_LAB_RUN_DIR")  # a lab of its own (own_netns tests)
    the_lab = labctl.Lab(run_dir) if run_dir else labctl.Lab()
    started = the_lab.up()
    yield the_lab
    for name in labctl.SERVERS:
        # A failed test may leave a server stopped or silenced; hand the lab back whole.
        the_lab.unsilence(name)
    if started:
        the_lab.down()
    else:
        the_lab.up()


@pytest.fixture(scope="session")
def far_end_process(lab):
    """The sipp UAS answering as 6904 (stopped at the end if this session started it)."""
    user = "6904"
    was_running = lab.farend_running(user)
    lab.farend(user, port=labctl.free_port(), servers=())
    yield user
    if not was_running:
        lab.stop_farend(user)


@pytest.fixture
def far_end(lab, far_end_process):
    """6904, (re-)registered on uc1 for this test: a test may have restarted a server."""
    lab.farend(far_end_process, servers=("uc1",))
    return far_end_process


@pytest.fixture
def healthy(lab):
    """Both registrars up and answering before and after the test (a fault never leaks)."""

    def restore():
        for name in labctl.SERVERS:
            lab.unsilence(name)
            lab.start(name)

    restore()
    yield lab
    restore()


@pytest.fixture
def boards(tmp_path):
    """boot(cfg, wait_ready=True, root=None): an agent board (512k heap: .mpy on the 64-bit
    unix port; 256k runs but fragments under a call), retired (un-REGISTERed, stopped) at
    the test's end."""
    from agentboard import AgentBoard

    started = []

    def boot(cfg, wait_ready=True, root=None):
        b = AgentBoard(root or tmp_path / ("board%d" % len(started)), cfg, heap="512k")
        started.append(b)
        b.start(wait_ready)
        return b

    yield boot
    for b in started:
        b.retire()


# Tests marked own_netns rewire the network itself (take the board's address away): they run
# only inside a private network namespace with a lab of its own, which
# tests/lab/test_linkwatch_lab.py::test_own_netns_tests starts for them from the host's run.
OWN_NETNS_ENV = "SIPFW_OWN_NETNS"


def pytest_collection_modifyitems(config, items):
    inside = os.environ.get(OWN_NETNS_ENV) == "1"
    keep, drop = [], []
    for item in items:
        own = item.get_closest_marker("own_netns") is not None
        (keep if own == inside or not item.nodeid.startswith("tests/lab/") else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
