"""app.main() when the agent cannot start: safe idle mode, not a crash (both interpreters).

main() runs for ever, so the test swaps in a scheduler whose run() takes a few turns, asks
the console what a person would ask, and returns; and a console that does not read stdin.
"""

import json

from fwtest import make_tmpdir, remove_tmpdir
from sipua import agent as agentmod
from sipua import app, hal
from sipua import console as conmod
from sipua import log as logmod
from sipua import sched as schedmod


class Rig:
    """Patches the app's collaborators; ``boot(start)`` runs main() with Agent.start = start."""

    def __init__(self):
        self.lines = []
        self.answers = []
        self.fed = [0]
        self.console = None
        self.script = None  # (sched, console) -> None, run instead of the endless loop
        self.ran = False
        self.saved = []

    def patch(self, obj, name, value):
        self.saved.append((obj, name, getattr(obj, name)))
        setattr(obj, name, value)

    def __enter__(self):
        rig = self
        BaseConsole = conmod.Console

        class Sched(schedmod.Scheduler):
            def run(self, until_ms=None):
                rig.ran = True
                for _ in range(3):
                    self.run_once(0)
                if rig.script is not None:
                    rig.script(self, rig.console)

        class Console(BaseConsole):
            def __init__(self, log=None):
                BaseConsole.__init__(self, log=log, write=rig.answers.append)
                rig.console = self

            def start(self, sched):
                self._sched = sched  # commands only through execute(): stdin stays alone

        def feed():
            self.fed[0] += 1

        self.patch(schedmod, "Scheduler", Sched)
        self.patch(conmod, "Console", Console)
        self.patch(hal, "watchdog_start", lambda ms: True)
        self.patch(hal, "feed", feed)
        self.patch(agentmod.Agent, "start", agentmod.Agent.start)
        logmod.log.set_output(self.lines.append)
        self.tmp = make_tmpdir("appboot")
        return self

    def __exit__(self, *exc):
        logmod.log.set_output(None)
        for obj, name, value in reversed(self.saved):
            setattr(obj, name, value)
        remove_tmpdir(self.tmp)

    def boot(self, start, config='{"accounts": []}'):
        agentmod.Agent.start = start
        path = self.tmp + "/config.json"
        with open(path, "w") as f:
            f.write(config)
        app.main(path)
        assert self.ran, "main() never reached the scheduler"

    def events(self, name):
        out = []
        for line in self.lines:
            rec = logmod.parse_line(line)
            if rec is not None and rec["event"] == name:
                out.append(rec)
        return out

    def ask(self, line):
        self.console.execute(line)
        return json.loads(self.answers[-1][1:])


def _no_heap(self):
    raise MemoryError("memory allocation failed, allocating 640 bytes")


def _started(self):
    self.log.info("agent", "listening", ip="test", port=0, accounts=0)


def test_memoryerror_at_agent_start_leaves_the_console_up_and_the_watchdog_fed():
    with Rig() as rig:
        rig.boot(_no_heap)
        failed = rig.events("agent_failed")
        assert len(failed) == 1, rig.lines
        assert failed[0]["level"] == "ERROR"
        assert failed[0]["err"] == "MemoryError: memory allocation failed, allocating 640 bytes"
        assert rig.events("ready") == []  # not ready: the host tools must not say it started
        assert rig.fed[0] >= 3  # the loop turned and fed the watchdog each turn
        st = rig.ask("status")
        assert st["ok"] is True and st["agent"] == "failed", st
        assert st["err"].startswith("MemoryError: memory allocation failed"), st
        assert "heap_free" in st
        # only the built-ins and the failure status: no command bound to a dead agent
        assert rig.console.agent is None
        assert rig.ask("call 6904")["error"] == "unknown command 'call' (try help)"
        assert sorted(rig.ask("help")["commands"]) == ["config", "help", "log", "reboot",
                                                       "reset", "status"]


def test_any_exception_at_agent_start_is_the_same_safe_mode():
    def broken(self):
        raise ValueError("bad thing")

    with Rig() as rig:
        rig.boot(broken)
        assert rig.events("agent_failed")[0]["err"] == "ValueError: bad thing"
        assert rig.ask("status")["err"] == "ValueError: bad thing"


def test_a_config_pushed_in_safe_mode_starts_the_agent():
    def script(sched, console):
        agentmod.Agent.start = _started  # a smaller config, say: this time it fits
        console.execute("config reload")
        sched.run_until(lambda: rig.events("listening"), 3000)

    with Rig() as rig:
        rig.script = script
        rig.boot(_no_heap)
        assert json.loads(rig.answers[-1][1:])["ok"] is True, rig.answers
        assert len(rig.events("listening")) == 1, rig.lines
        st = rig.ask("status")
        assert "agent" not in st and st["accounts"] == [], st  # the agent's own status


def test_a_good_start_is_ready_with_the_agent_status():
    with Rig() as rig:
        rig.boot(_started)
        assert rig.events("agent_failed") == []
        ready = rig.events("ready")
        assert len(ready) == 1 and "heap_free" in ready[0] and ready[0]["ip"], rig.lines
        st = rig.ask("status")
        assert "agent" not in st and st["accounts"] == [] and "uptime_ms" in st, st
        assert "call" in rig.ask("help")["commands"] and not rig.console.commands
