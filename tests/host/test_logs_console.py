"""`sipfw logs` and `sipfw console` against virtual boards."""

from __future__ import annotations

import json
import time

from hostfix import Tail, firmware_tree, sipfw
from sipfw.filters import LadderFilter, LevelFilter, chain
from sipfw.monitor import Classifier

# Boots twice: the first run soft-resets the board itself (as `reboot` on the console
# does), the second run says "done". The log lines are the firmware's format.
MAIN_REBOOTING = """\
import os, time
def exists(p):
    try:
        os.stat(p)
        return True
    except OSError:
        return False
if exists('/go'):  # the test says when: before that, main.py does nothing
    second = exists('/booted')
    print('0 INFO app start version=t boot=%d' % (2 if second else 1))
    print('5 DEBUG dns query name=airties.lab type=NAPTR server=127.0.0.53:53')
    print('7 WARN reg failover from=uc2 to=uc1')
    if not second:
        open('/booted', 'w').close()
        time.sleep(0.2)
        import machine
        machine.soft_reset()
    print('9 INFO app done')
"""


def logs_over_a_reboot(board, *args):
    """`sipfw logs ARGS` open before the board (re)boots with main.py."""
    board.wait_file("main.py")
    tail = Tail("logs", "--port", board.device, *args)
    tail.opened(board.device)
    (board.root / "go").write_text("")
    board.soft_reboot()
    rc, err = tail.finish()
    return rc, err, tail.lines


def test_logs_across_a_soft_reset_json(vboards):
    board = vboards(files={"main.py": MAIN_REBOOTING})
    rc, err, lines = logs_over_a_reboot(board, "--json", "--until", "app done", "--duration",
                                        "15")
    assert rc == 0, err
    evs = [json.loads(x) for x in lines]
    starts = [e for e in evs if e["kind"] == "boot" and "app start" in e["text"]]
    assert [e["log"]["boot"] for e in starts] == ["1", "2"], lines
    assert any(e["kind"] == "boot" and "soft reboot" in e["text"] for e in evs)
    warn = [e for e in evs if e.get("log", {}).get("event") == "failover"]
    assert len(warn) == 2 and warn[0]["log"] == {"ms": 7, "level": "WARN", "area": "reg",
                                                  "event": "failover", "from": "uc2",
                                                  "to": "uc1"}
    stamps = [e["t"] for e in evs]
    assert stamps == sorted(stamps)
    assert evs[-1]["text"] == "9 INFO app done"


def test_logs_filters_save_and_no_colour_in_a_pipe(tmp_path, vboards):
    board = vboards(files={"main.py": MAIN_REBOOTING})
    saved = tmp_path / "saved.log"
    rc, err, lines = logs_over_a_reboot(board, "--level", "warn", "--until", "app done",
                                        "--duration", "15", "--save", str(saved))
    assert rc == 0, err
    assert not any("\x1b[" in x for x in lines)
    assert sum("WARN reg failover" in x for x in lines) == 2
    assert not any("DEBUG dns" in x for x in lines)
    assert sum("==== boot ====" in x for x in lines) >= 3  # soft reboot + 2 start lines
    text = saved.read_text()
    assert text.count("DEBUG dns query") == 2  # the file keeps everything
    r = sipfw("logs", "--port", board.device, "--grep", "nothing-like-this", "--until", "x{9}",
              "--duration", "1")
    assert r.returncode == 1 and "no line matched --until" in r.stderr
    r = sipfw("logs", "--port", board.device, "--level", "loud", "--duration", "1")
    assert r.returncode == 2 and "unknown level" in r.stderr


def test_logs_reconnect_after_the_board_goes_away(tmp_path, vboards):
    link = tmp_path / "ttyBOARD"
    board = vboards(link=link)
    (board.root / "main.py").write_text("print('0 INFO app start version=t')\n")
    tail = Tail("logs", "--port", str(link), "--until", "second life", "--duration", "20")
    try:
        tail.opened(board.device)
        board.soft_reboot()
        tail.wait_for("app start")
        board.stop()  # unplugged
        tail.wait_for("disconnected --")
        (board.root / "main.py").write_text("print('0 INFO app start version=t')\n"
                                            "print('1 INFO app second life')\n")
        board.start()  # plugged back in: a new pty behind the same link
        tail.wait_for("reconnected after")
        board.soft_reboot()
    finally:
        rc, err = tail.finish()
    assert rc == 0, err
    lines = tail.lines
    gap = [i for i, x in enumerate(lines) if "disconnected --" in x]
    back = [i for i, x in enumerate(lines) if "reconnected after" in x]
    assert gap and back and gap[0] < back[0], lines
    assert any("second life" in x for x in lines[back[0]:])


def test_ladder_from_log_lines():
    c = Classifier()
    ladder = LadderFilter(stamp=lambda t: "%05.1f" % t)
    lines = [
        "10 INFO dns query name=airties.lab type=NAPTR server=127.0.0.53:53",
        "12 INFO dns answer name=airties.lab type=NAPTR count=2 server=127.0.0.53:53",
        '15 INFO sip tx method=REGISTER cseq="1 REGISTER" dst=127.0.0.12 port=5060',
        '17 INFO sip rx status=401 reason=Unauthorized cseq="1 REGISTER" src=127.0.0.12:5060',
        "18 INFO sip tx method=REGISTER",  # no peer, no cseq: still drawn
        "19 INFO app tick",  # not an exchange: dropped
        "Traceback (most recent call last):",
    ]
    out = []
    for i, line in enumerate(lines):
        out += [e.text for e in chain([ladder], c(float(i), line))]
    assert out[0].split() == ["board", "127.0.0.53:53"]
    assert out[1].startswith("000.0 |") and "NAPTR airties.lab" in out[1] and "->|" in out[1]
    assert out[2].startswith("001.0 |<-") and "NAPTR 2 rr" in out[2]
    assert out[3].split() == ["board", "127.0.0.53:53", "127.0.0.12:5060"]
    assert "REGISTER cseq=1" in out[4] and out[4].endswith("->|")
    assert "401 Unauthorized (REGISTER)" in out[5] and out[5].startswith("003.0 |<-")
    assert out[6].split()[-1] == "?" and "REGISTER" in out[7]
    assert out[8] == "Traceback (most recent call last):"
    assert len(out) == 9
    # tracebacks count as errors for the level filter
    assert chain([LevelFilter("error")], c(9.0, "  File \"main.py\", line 1"))


def test_logs_ladder_live(vboards):
    main = ("print('0 INFO app start version=t')\n"
            "print('1 INFO dns query name=airties.lab type=SRV server=127.0.0.53:53')\n"
            "print('2 INFO sip tx method=REGISTER dst=127.0.0.12:5060 cseq=1')\n"
            "print('3 INFO sip rx status=200 reason=OK src=127.0.0.12:5060')\n"
            "print('4 INFO app done')\n")
    board = vboards()
    (board.root / "main.py").write_text(main)
    rc, err, lines = logs_over_a_reboot(board, "--ladder", "--until", "app done",
                                        "--duration", "10")
    assert rc == 0, err
    text = "\n".join(lines)
    assert "SRV airties.lab" in text and "200 OK" in text
    assert "app start" in text  # the boot marker passes through


AGENT_MAIN = """\
from sipua.sched import Scheduler
from sipua.console import Console
from sipua.log import log
from sipua import config
s = Scheduler(log=log)
c = Console(log=log)
state = {"cfg": config.load("/config.json")[0]}
c.register("status", lambda args: {"accounts": len(state["cfg"]["accounts"])}, "status")
def reload():
    state["cfg"] = config.load("/config.json")[0]
    return {"accounts": len(state["cfg"]["accounts"])}
c.reload_hook = reload
c.start(s)
log.info("app", "start", version="t")
log.info("app", "ready", ip="127.0.0.1")
s.run()
"""


def test_console_commands_on_the_running_agent(tmp_path, vboards):
    src = firmware_tree(tmp_path / "fw", main=AGENT_MAIN)
    board = vboards(files={"config.json": '{"accounts": []}'})
    assert sipfw("flash", "--port", board.device, "--source", str(src)).returncode == 0
    r = sipfw("console", "--port", board.device, "status")
    assert r.returncode == 0, r.stderr
    ans = json.loads(r.stdout)
    assert ans["cmd"] == "status" and ans["ok"] is True and ans["accounts"] == 0
    # the config changes under the agent; `config reload` picks it up without a reset
    (board.root / "config.json").write_text('{"accounts": [{"user": "1", "server": "x"}]}')
    r = sipfw("console", "--port", board.device, "config reload; log debug sip; nope")
    assert r.returncode == 1  # one answer said ok: false
    got = [json.loads(x) for x in r.stdout.splitlines()]
    assert got[0]["accounts"] == 1 and got[1]["areas"] == {"sip": "debug"}
    assert got[2] == {"cmd": "nope", "ok": False, "id": got[2]["id"],
                      "error": "unknown command 'nope' (try help)"}
    # interactive: commands from stdin, one answer line each
    r = sipfw("console", "--port", board.device, stdin="help\n\nstatus\nquit\n")
    assert r.returncode == 0, r.stderr
    got = [json.loads(x) for x in r.stdout.splitlines()]
    assert [g["cmd"] for g in got] == ["help", "status"]
    assert "status" in got[0]["commands"]


def test_console_on_a_board_without_the_agent(vboards):
    board = vboards()  # no main.py: the board sits at the REPL
    time.sleep(0.3)
    r = sipfw("console", "--port", board.device, "--timeout", "2", "status")
    assert r.returncode == 5
    assert "at the MicroPython REPL, not running the agent" in r.stderr


class Upper:
    """A user's own filter, loaded by `--filter module:Class`."""

    def __call__(self, ev):
        ev.text = ev.text.upper()
        return ev


def test_filters_load_by_name_or_module_class():
    from sipfw import filters

    assert isinstance(filters.load("ladder"), LadderFilter)
    assert isinstance(filters.load("test_logs_console:Upper"), Upper)
    for bad in ("nope", "no_such_module:X", "json:NoSuchClass"):
        try:
            filters.load(bad)
        except ValueError as e:
            assert bad.split(":")[0] in str(e)
        else:
            raise AssertionError(bad)
