"""A terminal for tests of interactive tools: a tmux session on a private server, keys sent
with ``send-keys``, the screen read with ``capture-pane``; every wait bounded."""

from __future__ import annotations

import subprocess
import time


class Term:
    """A tmux session on a private server; every wait bounded."""

    def __init__(self, tmp_path, argv, env):
        self.sock = str(tmp_path / "tmux.sock")
        self.name = "mon"
        envargs = []
        for k, v in env.items():
            envargs += ["-e", "%s=%s" % (k, v)]
        self.tmux("new-session", "-d", "-s", self.name, "-x", "160", "-y", "40", *envargs,
                  " ".join(argv) + "; sleep 30")

    def tmux(self, *args):
        return subprocess.run(["tmux", "-S", self.sock, *args], capture_output=True,
                              text=True, timeout=10, check=True).stdout

    def keys(self, *keys):
        self.tmux("send-keys", "-t", self.name, *keys)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-t", self.name, "-S", "-200")

    def wait_for(self, pred, timeout=15.0, what="") -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            text = self.screen()
            if pred(text):
                return text
            time.sleep(0.2)
        raise AssertionError("not on screen within %.0f s: %s\n%s" % (timeout, what, text))

    def kill(self):
        subprocess.run(["tmux", "-S", self.sock, "kill-server"], capture_output=True,
                       timeout=10)
