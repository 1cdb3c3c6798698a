"""`sipfw flash` and `sipfw config push` say what the board did after the reset: a traceback,
a crash loop, an agent that could not start (and the safe idle mode it leaves the board in),
against virtual boards. The lines-to-outcome rules are in test_bootwatch.py."""

from __future__ import annotations

import json
import os
import time

from hostfix import START_LINE, agent_main, firmware_tree, sipfw

RAISING_MAIN = "print(%r)\nraise ValueError('boom at boot')\n" % (START_LINE % "t")

# Arms the (virtual) watchdog as the app does, then dies: the board's REPL does not feed it,
# so the vboard resets the board 1 s later, and main.py dies again.
LOOPING_MAIN = (
    "from sipua import hal\n"
    "print(%r)\n"
    "hal.watchdog_start(1000)\n"
    "raise MemoryError('memory allocation failed, allocating 640 bytes')\n" % (START_LINE % "t"))


def test_flash_to_a_board_whose_main_raises_fails_and_shows_the_traceback(tmp_path, vboards):
    src = firmware_tree(tmp_path / "fw", main=RAISING_MAIN)
    board = vboards()
    t0 = time.monotonic()
    r = sipfw("flash", "--port", board.device, "--source", str(src), "--wait-timeout", "4")
    took = time.monotonic() - t0
    assert r.returncode == 5, r.stdout + r.stderr
    assert "agent ready" not in r.stdout
    err = r.stderr.splitlines()
    assert "  | Traceback (most recent call last):" in err
    assert '  |   File "main.py", line 2, in <module>' in err
    assert "  | ValueError: boom at boot" in err
    assert err[-1] == ("sipfw flash: flashed, but main.py raised ValueError: boom at boot "
                       "(the board stopped at its REPL)")
    assert took < 15


def test_flash_to_a_board_in_a_crash_loop_says_so(tmp_path, vboards):
    src = firmware_tree(tmp_path / "fw", main=LOOPING_MAIN)
    board = vboards()
    r = sipfw("flash", "--port", board.device, "--source", str(src))
    assert r.returncode == 5, r.stdout + r.stderr
    last = r.stderr.splitlines()[-1]
    assert last.startswith("sipfw flash: flashed, but the board is in a crash loop: it "
                           "restarted 1 time in "), last
    assert last.endswith("without a ready line; the first boot raised MemoryError: memory "
                         "allocation failed, allocating 640 bytes")
    assert "  | MemoryError: memory allocation failed, allocating 640 bytes" in r.stderr


def test_config_push_through_the_repl_reports_a_traceback(tmp_path, vboards):
    # the config makes this main.py raise: the push says so, and fails
    main = ("from sipua import config\n"
            "cfg, err = config.load('/config.json')\n"
            "if cfg['accounts']:\n    raise RuntimeError('no room for %d accounts' % "
            "len(cfg['accounts']))\n"
            "print('1 INFO app ready ip=127.0.0.1')\n")
    src = firmware_tree(tmp_path / "fw", main=main)
    board = vboards(files={"config.json": '{"accounts": []}'})
    r = sipfw("flash", "--port", board.device, "--source", str(src))
    assert r.returncode == 0 and "agent ready in" in r.stdout, r.stderr
    lab = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "lab.json")
    r = sipfw("config", "push", lab, "--port", board.device, "--wait-timeout", "3")
    assert r.returncode == 5, r.stdout + r.stderr
    assert "config.json written" in r.stdout
    assert r.stderr.splitlines()[-1] == ("sipfw config: config written, but main.py raised "
                                         "RuntimeError: no room for 2 accounts (the board "
                                         "stopped at its REPL)")


def test_config_push_through_the_console_reboot_reports_the_boot(tmp_path, vboards):
    # an agent without a reload hook is rebooted through its console; the boot is read the
    # same way: here it comes up on the new config, with the ready line's figures
    src = firmware_tree(tmp_path / "fw", main=agent_main(reload=False))
    board = vboards(files={"config.json": '{"accounts": []}'})
    assert sipfw("flash", "--port", board.device, "--source", str(src)).returncode == 0
    lab = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "lab.json")
    r = sipfw("config", "push", lab, "--port", board.device)
    assert r.returncode == 0, r.stderr
    assert "through the agent's console" in r.stdout
    assert "agent ready in" in r.stdout and "(ip=127.0.0.1)" in r.stdout
    # and a boot that goes wrong after that reboot is an error, as through the REPL
    (board.root / "main.py").write_text(
        agent_main(reload=False).replace('log.info("app", "ready"', 'raise OSError(12)\n#'))
    r = sipfw("config", "push", lab, "--port", board.device, "--wait-timeout", "3")
    assert r.returncode == 5, r.stdout + r.stderr
    assert "through the agent's console" in r.stdout
    assert r.stderr.splitlines()[-1] == ("sipfw config: config written, but main.py raised "
                                         "OSError: [Errno 12] ENOMEM (the board stopped at "
                                         "its REPL)")


def _free_port():
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_agent_that_cannot_start_leaves_the_board_in_safe_mode(tmp_path, vboards):
    # The real firmware, told to listen on an address this host does not have: Agent.start
    # raises (as a MemoryError on a small heap would). The board must not crash-loop: the
    # console answers, the watchdog is fed, and a good config brings the agent up.
    bad = {"accounts": [], "sip": {"local_ip": "192.0.2.1", "local_port": 5060}}
    board = vboards(files={"config.json": json.dumps(bad)})
    r = sipfw("flash", "--port", board.device)
    assert r.returncode == 5, r.stdout + r.stderr
    last = r.stderr.splitlines()[-1]
    assert last.startswith("sipfw flash: flashed, but the agent did not start: OSError: "), last
    assert "safe mode" in last and "  | Traceback (most recent call last):" in r.stderr

    r = sipfw("console", "--port", board.device, "status")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["ok"] is True and st["agent"] == "failed" and st["err"].startswith("OSError")
    # the scheduler turns and feeds the watchdog: the heartbeat file keeps being rewritten
    beat = board.root / ".watchdog"
    first = beat.stat().st_mtime
    end = time.monotonic() + 6
    while beat.stat().st_mtime == first and time.monotonic() < end:
        time.sleep(0.2)
    assert beat.stat().st_mtime > first, "the watchdog is not fed in safe mode"

    good = tmp_path / "good.json"
    good.write_text(json.dumps({"accounts": [], "sip": {"local_ip": "127.0.0.1",
                                                         "local_port": _free_port()}}))
    r = sipfw("config", "push", str(good), "--port", board.device)
    assert r.returncode == 0, r.stderr
    assert "through the agent's console" in r.stdout
    end = time.monotonic() + 5
    while True:
        st = json.loads(sipfw("console", "--port", board.device, "status").stdout)
        if "agent" not in st or time.monotonic() > end:
            break
        time.sleep(0.2)
    assert "agent" not in st and st["accounts"] == [] and "uptime_ms" in st, st
