"""`sipfw monitor` in a real terminal (tmux) on a virtual board running the firmware against
the lab: the status bar follows the registration from uc2 to uc1 when uc2 is stopped, and a
command typed while the log streams is answered inline."""

import os
import re
import shutil

import labctl
import pytest
from agentboard import BIN, AgentBoard, board_config
from tmuxterm import Term

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(shutil.which("tmux") is None,
                                 reason="tmux not installed (make setup installs TEST_DEBS)")]

UC2 = labctl.SERVERS["uc2"].ip


def test_status_bar_follows_the_registration_from_uc2_to_uc1(lab, tmp_path):
    for name in labctl.SERVERS:
        lab.unsilence(name)
        lab.start(name)
    board = AgentBoard(tmp_path / "board", board_config(lab, "127.0.5.90", 5070), heap="512k")
    term = None
    try:
        board.start()
        board.wait("reg", "registered", 10, server=re.compile(re.escape(UC2) + ":"))
        device = board.release()
        env = {"PATH": os.environ["PATH"], "SIPFW_RUNTIME_DIR": str(tmp_path / "run"),
               "SIPFW_VBOARD_DIR": str(tmp_path / "vboards")}
        term = Term(tmp_path, [str(BIN / "sipfw"), "monitor", "--port", device,
                               "--status-every", "1"], env)
        term.wait_for(lambda s: "6903 → registered @ uc2.airties.lab" in s, timeout=10,
                      what="status bar on uc2")
        term.keys("status", "Enter")
        term.wait_for(lambda s: "⇒ @{" in s and '"state": "registered"' in s,
                      what="inline answer")
        lab.stop("uc2")
        screen = term.wait_for(lambda s: "6903 → registered @ uc1.airties.lab" in s,
                               timeout=10, what="status bar on uc1")
        assert "reg failover" in screen  # the log went on streaming meanwhile
        term.keys("unreg", "Enter")  # leave no binding in the lab
        term.wait_for(lambda s: "6903 → idle" in s, what="unregistered")
        print("\n=== monitor screen ===\n" + term.screen().rstrip())
    finally:
        if term is not None:
            term.kill()
        board.stop()
        lab.start("uc2")
