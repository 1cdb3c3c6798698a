"""The host tools' one client of the agent's console: each command goes out as
``#<id> <command>`` (``request``), the answer is the ``@{...}`` line carrying that id
(``answer``; see firmware/sipua/console.py). ``Session`` waits for it over a
``monitor.LineReader``, showing or skipping the log lines in between (``sipfw console``,
``sipfw config push`` live, the bench rig); ``sipfw monitor`` and the lab's
``tests/lab/agentboard.py`` send with ``request`` and match with ``answer`` on their own
streams."""

from __future__ import annotations

import json
import sys
import time


def request(rid: str, command: str) -> bytes:
    return ("#%s %s\r\n" % (rid, command)).encode()


def answer(text: str) -> dict | None:
    """The console answer a line carries (any id), or None."""
    if not text.startswith("@{"):
        return None
    try:
        ans = json.loads(text[1:])
    except ValueError:
        return None
    return ans if isinstance(ans, dict) else None


class Session:
    def __init__(self, reader, timeout: float, show_logs: bool = False, out=None):
        self.reader = reader
        self.timeout = timeout
        self.show_logs = show_logs
        self.out = out or sys.stdout
        self.seq = int(time.time() * 1000) % 100000  # ids differ from a previous session's
        self.events = None

    def ask(self, command: str) -> dict:
        from .errors import BoardError

        self.seq += 1
        rid = str(self.seq)
        self.reader.write(request(rid, command))
        deadline = time.monotonic() + self.timeout
        prompt_seen = False
        for ev in self.reader.events(deadline):
            if ev.kind == "answer":
                ans = answer(ev.text)
                if ans is not None and ans.get("id") == rid:
                    return ans
            elif ev.kind in ("gap", "reconnect"):
                self.out.write(ev.text + "\n")
            else:
                if ev.text.startswith(">>>") or "NameError" in ev.text:
                    prompt_seen = True  # the line went to the REPL: no agent will answer
                    break
                if self.show_logs:
                    self.out.write(ev.text + "\n")
        if prompt_seen:
            raise BoardError("%s: the board is at the MicroPython REPL, not running the agent "
                             "(flash it, or reset it)" % self.reader.port.device)
        raise BoardError("%s: no answer to %r within %.0f s: is the agent running? "
                         "(`sipfw logs` shows what the board prints)"
                         % (self.reader.port.device, command, self.timeout))
