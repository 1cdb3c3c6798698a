"""`sipfw monitor` in a real terminal (tmux): typed console commands answered inline while
the log streams, the status bar, Ctrl-T f re-flashing a changed module, and other sipfw
commands on the same port going through the monitor (sipfw.portshare)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time

import pytest
from hostfix import SIPFW, firmware_tree, sipfw
from tmuxterm import Term

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux not installed (make setup installs TEST_DEBS)")

AGENT_MAIN = """\
from sipua.sched import Scheduler
from sipua.console import Console
from sipua.log import log
from sipua import config
s = Scheduler(log=log)
c = Console(log=log)
n = [0]
def tick():
    n[0] += 1
    log.info("app", "tick", n=n[0])
    s.call_later(400, tick)
c.register("status", lambda args: {"accounts": [{"label": "6903", "state": "registered",
           "server": {"host": "uc1.lab", "ip": "127.0.0.26", "port": 5060}}],
           "calls": [], "heap_free": 54321, "uptime_ms": s.now()}, "status")
c.start(s)
log.info("app", "start", version="%s")
log.info("app", "ready", ip="127.0.0.1")
s.call_later(400, tick)
s.run()
"""


@pytest.fixture
def agent_board(tmp_path, vboards):
    src = firmware_tree(tmp_path / "fw", main=AGENT_MAIN % "one")
    board = vboards(files={"config.json": '{"accounts": []}'})
    r = sipfw("flash", "--port", board.device, "--source", str(src))
    assert r.returncode == 0, r.stdout + r.stderr
    return board, src


@pytest.fixture
def monitor(tmp_path, agent_board, monkeypatch):
    board, src = agent_board
    monkeypatch.setenv("SIPFW_RUNTIME_DIR", str(tmp_path / "run"))
    env = {k: os.environ[k] for k in ("SIPFW_VBOARD_DIR", "SIPFW_RUNTIME_DIR", "PATH")}
    term = Term(tmp_path, [SIPFW, "monitor", "--port", board.device, "--status-every", "1",
                           "--source", str(src),
                           "--save", str(tmp_path / "mon.log")], env)
    try:
        term.wait_for(lambda s: "INFO app tick" in s, what="log streaming")
        yield term, board, src
    finally:
        term.kill()


def test_typed_command_answer_status_bar_and_flash_key(monitor, tmp_path):
    term, _board, src = monitor
    # the status bar: account → state @ server, call, heap, uptime
    screen = term.wait_for(lambda s: "6903 → registered @ uc1.lab | call idle | heap 54321"
                           in s, what="status bar")
    term.keys("status", "Enter")
    screen = term.wait_for(lambda s: "⇒ @{" in s and '"state": "registered"' in s,
                           what="inline answer")
    ticks_before = screen.count("INFO app tick")
    term.wait_for(lambda s: s.count("INFO app tick") > ticks_before + 1, what="log goes on")
    # Ctrl-T h lists the keys
    term.keys("C-t", "h")
    term.wait_for(lambda s: "flash what changed" in s and "quit (also Ctrl-])" in s)
    # a changed module, then Ctrl-T f: flashed, the boot report shown, the log comes back
    (src / "main.py").write_text(AGENT_MAIN % "two")
    term.keys("C-t", "f")
    screen = term.wait_for(lambda s: "flash: done; back to the log" in s, timeout=30,
                           what="flash done")
    assert "1 file(s) to copy" in screen and "agent ready in" in screen  # the boot report
    # the log resumes from the new firmware's first tick
    term.wait_for(lambda s: "INFO app tick n=1" in s.split("flash: done; back to the log")[-1]
                  and "INFO app tick n=2" in s.split("flash: done; back to the log")[-1],
                  what="log after flash")
    # Ctrl-T c asks for a config file, pushes it, and the log comes back
    cfg = tmp_path / "new.json"
    cfg.write_text('{"accounts": []}')
    term.keys("C-t", "c")
    term.wait_for(lambda s: "config file: " in s.splitlines()[-1] if s.strip() else False,
                  what="config prompt")
    term.keys(str(cfg), "Enter")
    screen = term.wait_for(lambda s: "config push %s: done; back to the log" % cfg in s,
                           timeout=30, what="config push done")
    mark = "config push %s: done; back to the log" % cfg
    term.wait_for(lambda s: "app tick" in s.split(mark)[-1], what="log after config push")
    # Ctrl-T p pauses the output (lines held), Ctrl-T p shows them
    term.keys("C-t", "p")
    term.wait_for(lambda s: "output paused" in s)
    time.sleep(1.0)
    assert "app tick" not in term.screen().split("output paused")[-1]
    term.keys("C-t", "p")
    screen = term.wait_for(lambda s: "output resumed" in s
                           and "app tick" in s.split("output resumed")[-1], what="held lines")
    held = int(screen.split("output resumed (")[1].split(" lines held")[0])
    assert held >= 2  # ~2.5 ticks a second, paused for over a second
    # Ctrl-T s soft-reboots through the console: the boot shows and the log starts again
    term.keys("C-t", "s")
    term.wait_for(lambda s: "==== boot ====" in s.split("-- soft reboot --")[-1]
                  and "app tick n=1" in s.split("-- soft reboot --")[-1], what="soft reboot")
    term.keys("C-t", "l")
    term.wait_for(lambda s: "-- ladder view on --" in s, what="ladder on")
    print("\n=== monitor screen ===\n" + term.screen().rstrip())
    term.keys("C-]")  # quits: the port is free again
    end = time.monotonic() + 5
    while time.monotonic() < end and any((tmp_path / "run").glob("sipfw/*.sock")):
        time.sleep(0.1)
    assert not any((tmp_path / "run").glob("sipfw/*.sock"))
    assert "INFO app tick" in (tmp_path / "mon.log").read_text()  # --save


def test_other_commands_go_through_the_monitor(monitor, tmp_path):
    term, board, src = monitor
    alone = {}
    r = sipfw("console", "--port", board.device, "status")
    assert r.returncode == 0, r.stderr
    ans = json.loads(r.stdout)
    assert ans["cmd"] == "status" and ans["accounts"][0]["state"] == "registered"
    alone["console"] = r.stdout
    term.wait_for(lambda s: "port back from pid" in s, what="port back after console")
    r = sipfw("config", "pull", "--port", board.device)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"accounts": []}
    r = sipfw("flash", "--port", board.device, "--source", str(src))
    assert r.returncode == 0, r.stderr
    alone["flash"] = r.stdout
    assert "nothing to copy" in r.stdout.lower() or "unchanged" in r.stdout.lower(), r.stdout
    screen = term.wait_for(lambda s: s.count("port back from pid") >= 3, timeout=20,
                           what="three lends")
    assert "port lent to pid" in screen
    n = screen.count("app tick")
    term.wait_for(lambda s: s.count("app tick") > n, what="log after the lends")
    # a second monitor says who holds the port
    r = sipfw("monitor", "--port", board.device, "--duration", "1")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "held by sipfw monitor pid" in r.stderr and "since" in r.stderr
    print("\n=== second monitor ===\n" + r.stderr)
    print("=== console, flash through the monitor ===\n" + alone["console"] + alone["flash"])
    print("=== the monitor meanwhile ===\n" + term.screen().rstrip())


def test_a_logs_tail_lends_the_port_too(agent_board, tmp_path, monkeypatch):
    from hostfix import Tail

    board, _src = agent_board
    monkeypatch.setenv("SIPFW_RUNTIME_DIR", str(tmp_path / "run"))
    tail = Tail("logs", "--port", board.device, "--duration", "8")
    try:
        tail.wait_for("INFO app tick")
        r = sipfw("console", "--port", board.device, "status")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["accounts"][0]["label"] == "6903"
        r = sipfw("monitor", "--port", board.device, "--duration", "1")
        assert r.returncode == 3 and "held by sipfw logs pid" in r.stderr, r.stderr
        before = sum("app tick" in x for x in tail.lines)
        end = time.monotonic() + 5
        while sum("app tick" in x for x in tail.lines) <= before and time.monotonic() < end:
            with contextlib.suppress(AssertionError):
                tail.wait_for("no such line", timeout=0.3)  # pumps the lines that came
        assert sum("app tick" in x for x in tail.lines) > before  # the tail goes on
    finally:
        rc, err = tail.finish()
    assert rc == 0, err
    assert "port lent to pid" in err and "port back from pid" in err
    assert all(x[:2].isdigit() for x in tail.lines)  # stdout keeps only stamped lines


def test_monitor_in_a_pipe_no_bar_no_colour(agent_board, tmp_path, monkeypatch):
    board, _src = agent_board
    monkeypatch.setenv("SIPFW_RUNTIME_DIR", str(tmp_path / "run"))
    r = sipfw("monitor", "--port", board.device, "--duration", "2", stdin="status\n")
    assert r.returncode == 0, r.stderr
    assert "\x1b[" not in r.stdout and "6903 → registered" not in r.stdout  # no status bar
    assert "\n> status\n" in r.stdout and '  ⇒ @{"id": ' in r.stdout
    assert "INFO app tick" in r.stdout
    assert not list((tmp_path / "run").glob("sipfw/*"))  # socket and holder file removed


def test_a_dead_holder_does_not_hold(tmp_path, monkeypatch):
    import subprocess as sp

    from sipfw import portshare

    monkeypatch.setenv("SIPFW_RUNTIME_DIR", str(tmp_path / "run"))
    p = sp.Popen(["true"])
    p.wait()
    sock, info = portshare.paths("/dev/ttyFAKE0")
    sock.write_text("")
    info.write_text(json.dumps({"pid": p.pid, "since": 0, "what": "monitor"}))
    assert portshare.holder("/dev/ttyFAKE0") is None
    server = portshare.Server("/dev/ttyFAKE0")  # takes over the stale files
    try:
        held = portshare.holder("/dev/ttyFAKE0")
        assert held is not None and held["pid"] == os.getpid()
        with pytest.raises(Exception, match="held by sipfw monitor pid %d" % os.getpid()):
            portshare.Server("/dev/ttyFAKE0")
    finally:
        server.close()
    assert portshare.holder("/dev/ttyFAKE0") is None
