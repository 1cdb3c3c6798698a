"""A packet capture beside a bench report: tshark (or tcpdump) on ``lo``, filtered to the PBX's
addresses and the board's SIP port, started before a scenario and stopped after it.

Optional: without either tool the bench runs the same, the report just has no pcap.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time

from ..procs import stop_process


def tool() -> str | None:
    for name in ("tshark", "tcpdump"):
        if shutil.which(name):
            return name
    return None


def bpf(ips, board_port: int | None) -> str:
    parts = ["host %s" % ip for ip in ips]
    if board_port:
        parts.append("port %d" % board_port)
    return " or ".join(parts)


class Capture:
    def __init__(self, path: str, ips, board_port: int | None = None, iface: str = "lo"):
        self.path = path
        self.filter = bpf(ips, board_port)
        self.iface = iface
        self.proc: subprocess.Popen | None = None
        self.tool = tool()

    def start(self, ready_s: float = 5.0) -> bool:
        """Start capturing; True once the tool says it captures (False: no tool / failed)."""
        if self.tool is None:
            return False
        if self.tool == "tshark":
            cmd = ["tshark", "-i", self.iface, "-f", self.filter, "-w", self.path, "-q"]
        else:
            cmd = ["tcpdump", "-i", self.iface, "-U", "-w", self.path, self.filter]
        self._err = open(self.path + ".log", "w+")  # noqa: SIM115 - stop() closes it
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self._err,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + ready_s
        while time.monotonic() < deadline and self.proc.poll() is None:
            self._err.seek(0)
            said = self._err.read()
            if "apturing on" in said or "listening on" in said:
                return True
            time.sleep(0.05)
        ok = self.proc.poll() is None
        if not ok:
            self.proc = None
        return ok

    def stop(self) -> str | None:
        """Stop the capture (only our own process); the pcap path if it holds packets."""
        if self.proc is not None:
            time.sleep(0.3)  # the last packets are still on their way into the ring
            stop_process(self.proc, signal.SIGINT)  # tshark writes out its pcap on SIGINT
            self.proc = None
            self._err.close()
            with contextlib.suppress(OSError):
                os.unlink(self.path + ".log")
        return self.path if os.path.exists(self.path) and os.path.getsize(self.path) > 24 else None


def sip_lines(pcap: str, timeout: float = 60) -> list[tuple[float, str, str, str]]:
    """(epoch time, src ip, dst ip, first line) of each SIP message in a pcap (tshark only)."""
    if not shutil.which("tshark"):
        return []
    proc = subprocess.run(
        ["tshark", "-r", pcap, "-Y", "sip", "-T", "fields", "-e", "frame.time_epoch",
         "-e", "ip.src", "-e", "ip.dst", "-e", "sip.Method", "-e", "sip.Status-Code",
         "-e", "sip.CSeq.method"], capture_output=True, text=True, timeout=timeout, check=False)
    out = []
    for line in proc.stdout.splitlines():
        f = line.split("\t")
        if len(f) < 6:
            continue
        method, status, cseq_m = f[3], f[4], f[5]
        label = method or ("%s %s" % (status, cseq_m)).strip()
        try:
            out.append((float(f[0]), f[1], f[2], label))
        except ValueError:
            continue
    return out
