"""Session fixtures for the lab suites: the lab PBX + DNS, and a sipp far end."""

import os
import sys
from pathlib import Path

import pytest

LAB_DIR = Path(__file__).resolve().parents[2] / "lab"
if str(LAB_DIR) not in sys.path:
    sys.path.insert(0, str(LAB_DIR))

import labctl


@pytest.fixture(scope="session")
def lab():
    """The running lab. Brought down at the end only if this session brought it up."""
    if os.geteuid() != 0:
        pytest.skip("lab tests need root: DNS on 127.0.0.53:53, iptables and apt-get")
    the_lab = labctl.Lab()
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
def far_end(lab):
    """The sipp UAS answering as 6904, registered on uc1 only (stopped at the end if ours)."""
    user = "6904"
    was_running = lab.farend_running(user)
    lab.farend(user, port=labctl.free_port(), servers=("uc1",))
    yield user
    if not was_running:
        lab.stop_farend(user)
