"""Console: framing of answers, request ids, built-ins, app commands, bad input never crashes."""

import json
import os

from fwtest import ListLog, make_tmpdir, new_sched, remove_tmpdir
from sipua import console as con
from sipua.log import INFO, log


def make(**kw):
    out = []
    ll = ListLog()
    c = con.Console(log=ll.logger, write=out.append, **kw)
    return c, out, ll


def answers(out):
    for line in out:
        assert line.startswith(con.PREFIX), line
    return [json.loads(line[1:]) for line in out]


def test_answer_is_one_prefixed_json_line_with_id():
    c, out, _ = make()
    c.register("status", lambda args: {"registered": 1, "args": args}, "state")
    c.feed("status a b\r\n#42 status\n")
    got = answers(out)
    assert got[0] == {"cmd": "status", "ok": True, "registered": 1, "args": ["a", "b"]}
    assert got[1]["id"] == "42" and got[1]["ok"] is True
    assert all("\n" not in line for line in out)


class Weird:
    def __str__(self):
        return "weird!"


def test_errors_are_answers_not_crashes():
    c, out, ll = make()

    def refuse(args):
        raise con.ConsoleError("no call in progress")

    def broken(args):
        return {}["missing"]

    c.register("hangup", refuse)
    c.register("broken", broken)
    c.register("weird", lambda args: {"obj": Weird(), "raw": b"ab", 7: (1, 2),
                                        "no": False, "none": None, "f": 1.5})
    c.feed("hangup\nbroken\nfrobnicate 1\nweird\n\n   \n")
    got = answers(out)
    assert got[0] == {"cmd": "hangup", "ok": False, "error": "no call in progress"}
    assert got[1]["ok"] is False and got[1]["error"].startswith("KeyError")
    assert got[2]["error"] == "unknown command 'frobnicate' (try help)"
    assert got[3] == {"cmd": "weird", "ok": True, "obj": "weird!", "raw": "ab", "7": [1, 2],
                      "no": False, "none": None, "f": 1.5}
    assert len(got) == 4  # blank lines answer nothing
    assert ll.events("handler_error")[0]["cmd"] == "broken"


def test_long_line_is_refused_whole():
    c, out, _ = make()
    c.feed("x" * (con.MAX_LINE + 10) + "\nhelp\n")
    got = answers(out)
    assert got[0]["ok"] is False and "longer than" in got[0]["error"]
    assert got[1]["cmd"] == "help" and got[1]["ok"] is True


def test_help_lists_builtins_and_app_commands():
    c, _out, _ = make()
    c.register("dns", lambda args: None, "dns NAME: resolve")
    res = c.execute("help")
    assert sorted(res["commands"]) == ["config", "dns", "help", "log", "reboot", "reset"]
    assert res["commands"]["dns"] == "dns NAME: resolve"


def test_log_command_sets_levels():
    c, _out, _ = make()
    saved_level, saved_areas = log.level, dict(log.areas)
    try:
        assert c.execute("log debug sip")["areas"]["sip"] == "debug"
        assert c.execute("log warn")["level"] == "warn"
        assert c.execute("log loud")["ok"] is False
        assert c.execute("log a b c")["error"] == "usage: log [LEVEL [AREA]]"
        res = c.execute("log")
        assert res == {"cmd": "log", "ok": True, "level": "warn", "areas": {"sip": "debug"}}
    finally:
        log.level, log.areas = saved_level, saved_areas
    assert log.level == INFO


def test_config_reload_hook():
    c, _out, _ = make()
    assert c.execute("config reload")["error"] == "config reload: not available"
    calls = []
    c.reload_hook = lambda: calls.append(1) or {"accounts": 2}
    assert c.execute("config reload") == {"cmd": "config", "ok": True, "accounts": 2}
    assert c.execute("config")["error"].startswith("usage: config reload | begin")
    assert calls == [1]


def test_reboot_answers_first_then_resets_from_the_scheduler():
    sched, _clock = new_sched()
    resets = []

    class NoInput:  # not pollable: the console says so and keeps answering fed lines
        pass

    c, out, ll = make(stream=NoInput())
    c.reset_hook = resets.append
    c.start(sched)
    assert ll.events("no_input")
    c.feed("reboot\n")
    assert answers(out)[0]["ok"] is True and resets == []
    sched.run(until_ms=100)
    assert resets == [False]
    c.execute("reset")
    sched.run(until_ms=200)
    assert resets == [False, True]


class FakeStream:
    def __init__(self, data):
        self.data = data

    def read(self, n):
        out, self.data = self.data[:n], self.data[n:]
        return out


def test_reader_takes_bytes_or_str_and_stops_at_empty_read():
    for data in ("help\n", b"help\n"):
        c, out, _ = make()
        stream = FakeStream(data)
        for _ in range(10):
            c._on_readable(stream, 1)
        assert answers(out)[0]["cmd"] == "help"


def _upload(c, data, digest=None, chunk=48):
    import binascii
    import hashlib

    if digest is None:
        digest = binascii.hexlify(hashlib.sha256(data).digest()).decode()
    answers = [c.execute("config begin %d %s" % (len(data), digest))]
    for i in range(0, len(data), chunk):
        b64 = binascii.b2a_base64(data[i : i + chunk]).decode().strip()
        answers.append(c.execute("config data " + b64))
    answers.append(c.execute("config commit"))
    return answers


def test_config_upload_replaces_the_file_and_reloads():
    d = make_tmpdir("sipfw-contest")
    try:
        c, _out, _ = make()
        c.config_path = d + "/config.json"
        with open(c.config_path, "w") as f:
            f.write('{"accounts": []}')
        reloads = []
        c.reload_hook = lambda: reloads.append(1) or {"accounts": 1}
        new = b'{"accounts": [{"user": "6903", "server": "airties.lab"}]}'
        got = _upload(c, new)
        assert all(a["ok"] for a in got), got
        assert got[-1]["saved"] is True and got[-1]["reload"] == {"accounts": 1}
        assert reloads == [1]
        with open(c.config_path, "rb") as f:
            assert f.read() == new
        with open(c.config_path + ".bak") as f:
            assert f.read() == '{"accounts": []}'
        # a wrong hash, or a config the schema refuses: nothing changes
        bad = _upload(c, b'{"accounts": []}', digest="0" * 64)
        assert bad[-1]["ok"] is False and "expected" in bad[-1]["error"]
        bad = _upload(c, b'{"accounts": [{"server": "x"}]}')
        assert bad[-1]["ok"] is False
        assert "nothing changed" in bad[-1]["error"] and "accounts[0].user" in bad[-1]["error"]
        with open(c.config_path, "rb") as f:
            assert f.read() == new
        assert sorted(os.listdir(d)) == ["config.json", "config.json.bak"]
        # protocol errors are answers too
        assert "no upload in progress" in c.execute("config data AAAA")["error"]
        assert "size must be" in c.execute("config begin 99999 %s" % ("0" * 64))["error"]
        c.execute("config begin 2 %s" % ("0" * 64))
        assert "more data than" in c.execute("config data AAAAAA==")["error"]
        assert sorted(os.listdir(d)) == ["config.json", "config.json.bak"]
    finally:
        remove_tmpdir(d)


def test_config_upload_the_agent_cannot_start_on_is_undone():
    # The schema took it, the agent did not (reload_hook raised: app.swap kept the old
    # agent): the previous config.json is put back, the answer is an error.
    d = make_tmpdir("sipfw-contest")
    try:
        c, _out, _ = make()
        c.config_path = d + "/config.json"

        def fail():
            raise ValueError("the agent cannot start on it (OSError(98)); the previous one "
                             "runs on")

        c.reload_hook = fail
        new = b'{"accounts": [{"user": "6904", "server": "airties.lab"}]}'
        got = _upload(c, new)  # no config before this one: none after
        assert got[-1]["ok"] is False, got
        assert got[-1]["error"].startswith("config not taken, previous config.json restored: "
                                           "the agent cannot start on it"), got[-1]
        assert os.listdir(d) == []
        old = '{"accounts": []}'
        with open(c.config_path, "w") as f:
            f.write(old)
        got = _upload(c, new)
        assert got[-1]["ok"] is False and "OSError(98)" in got[-1]["error"], got
        with open(c.config_path) as f:
            assert f.read() == old
        assert os.listdir(d) == ["config.json"]
    finally:
        remove_tmpdir(d)


def test_end_of_input_stops_listening_instead_of_spinning():
    class Sched:
        def __init__(self):
            self.unwatched = []

        def unwatch(self, obj):
            self.unwatched.append(obj)

    c, out, ll = make()
    stream = FakeStream("")
    sched = Sched()
    c._sched, c._stream, c._watched = sched, stream, True
    c._on_readable(stream, 1)
    assert sched.unwatched == [stream] and ll.events("input_closed")
    assert c._sched is None and out == []


def test_an_upload_outlives_the_command_code_being_unloaded():
    # cmds.py (and start-up) are forgotten 2 s after the last command; an upload in
    # progress keeps its objects, and the next chunk's error is still caught by class.
    sched, _clock = new_sched()
    d = make_tmpdir("sipfw-contest")
    try:
        c, _out, _ = make()
        c._sched = sched
        c.config_path = d + "/config.json"
        assert c.execute("config begin 2 %s" % ("0" * 64))["ok"] is True
        sched.run(until_ms=sched.now() + 5000)  # the unload timer has run
        err = c.execute("config data AAAAAA==")["error"]
        assert err.startswith("config upload:") and "more data than" in err, err
        assert c.upload is None
    finally:
        remove_tmpdir(d)
