"""baresip 1.0 (Debian baresip-core) as a lab softphone: configured, started, driven over its
``ctrl_tcp`` socket and read back (events, log, recordings). Stdlib only, like labctl.

    phone = Baresip(work_dir, "6905", source="speech.wav", codecs=["PCMU"])
    phone.start()                      # registers through uc2 (UDP outbound proxy)
    phone.wait_event("REGISTER_OK")
    phone.command("dial", "sip:6903@airties.lab")
    phone.wait_event("CALL_CLOSED", timeout=20)
    enc, dec = phone.recordings()      # what it sent / what it received (sndfile)
    phone.stop()                       # unregisters on SIGTERM

What baresip 1.0 does with the modules used here (checked in the lab):

- ``aufile`` is a source only (no player in 1.0). It reads the whole WAV (8 kHz 16-bit mono
  here: it refuses another rate or channel count) and plays it once; at its end the ``menu``
  module hangs the call up ("menu: audio error (0,end of file)"). So a call it makes or
  answers with a speech source lasts the speech; give a long silent WAV (``silence_wav``)
  to a phone that must stay in a call someone else ends.
- ``sndfile`` is an audio filter: for every call it writes ``snd_path/dump-<time>-enc.wav``
  (what the encoder was given) and ``-dec.wav`` (each received packet as decoded, in
  arrival order, from the first packet on: no playout clock, no concealment). The time has
  one-second resolution, so one phone process is used per call.
- There is no null player: ``aubridge`` with device ``nil`` stands in for the sound card.
- ``g711`` gives PCMU and PCMA; the account's ``audio_codecs`` picks and orders them.
  baresip offers ``telephone-event`` and reports received RFC 4733 digits as
  ``CALL_DTMF_START`` events (param = the digit), ``CALL_DTMF_END`` at the event's end, and
  the log lines ``received event: '5' (end=0)`` / ``(end=1)``.
- ``answermode=auto`` answers at once; ``ctrl_tcp`` takes JSON commands in netstrings
  (``{"command": "dial", "params": "...", "token": "..."}``) and sends every UA event.

Network: SIP, RTP and the control socket bind to 127.0.0.1. With ``outbound`` set (the
default: uc2 over UDP) baresip sends every request to that address literal and never
resolves the lab domain, so its DNS client stays unused; without it (``outbound=None``) it
resolves NAPTR/SRV at ``dns_server``, and its DNS client sockets bind to the wildcard
address: run it only in a private network namespace (bench/compare_baresip.py does).
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

MODULE_PATH = "/usr/lib/baresip/modules"
DOMAIN = "airties.lab"
LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 10


class BaresipError(RuntimeError):
    """baresip did not do what was asked; the message quotes its log."""


def config_text(sip_port: int, modules=("g711",), apps=("account", "menu"),
                source: str = "aubridge,nil", extra: dict | None = None,
                dns_server: str = "127.0.0.53:53") -> str:
    """A baresip 1.0 ``config``: loopback only, no sound card (aubridge ``nil`` plays)."""
    lines = ["poll_method epoll", "sip_listen %s:%d" % (LOOPBACK, sip_port),
             "net_interface %s" % LOOPBACK, "dns_server %s" % dns_server,
             "module_path %s" % MODULE_PATH]
    lines += ["module %s.so" % m for m in (*modules, "aubridge")]
    lines += ["module_app %s.so" % m for m in apps]
    lines += ["audio_player aubridge,nil", "audio_source %s" % source,
              "audio_alert aubridge,nil"]
    lines += ["%s %s" % kv for kv in (extra or {}).items()]
    return "\n".join(lines) + "\n"


def account_line(user: str, password: str | None = None, regint: int | None = None,
                 auto_answer: bool = False, codecs=None, outbound: str | None = None) -> str:
    line = "<sip:%s@%s>;auth_pass=%s" % (user, DOMAIN, password or user)
    if regint is not None:
        line += ";regint=%d" % regint
    if auto_answer:
        line += ";answermode=auto"
    if codecs:
        line += ";audio_codecs=%s" % ",".join(codecs)
    if outbound:
        line += ';outbound="%s"' % outbound
    return line + "\n"


def write_config(conf_dir: Path, config: str, account: str) -> Path:
    conf_dir = Path(conf_dir)
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / "config").write_text(config)
    (conf_dir / "accounts").write_text(account)
    return conf_dir


def silence_wav(path, seconds: float, rate: int = 8000) -> Path:
    """A silent 16-bit mono WAV (a source for a phone that only listens)."""
    n = int(seconds * rate)
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + 2 * n, b"WAVE", b"fmt ", 16, 1,
                         1, rate, rate * 2, 2, 16, b"data", 2 * n)
    Path(path).write_bytes(header + bytes(2 * n))
    return Path(path)


def free_tcp_port(ip: str = LOOPBACK) -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


class Baresip:
    """One baresip process for one user; ``source`` a WAV path (aufile) or None (silence)."""

    def __init__(self, work_dir, user: str, source=None, codecs=("PCMU", "PCMA"),
                 auto_answer: bool = True, outbound: str | None = "127.0.0.27:5060",
                 sip_port: int | None = None, rtp_ports: str = "20000-29999",
                 regint: int = 600):
        if shutil.which("baresip") is None:
            raise BaresipError("baresip not found: install Debian's baresip-core "
                               "(make test-deps)")
        self.dir = Path(work_dir)
        self.user = user
        self.rec_dir = self.dir / "rec"
        self.rec_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "baresip.log"
        self.ctrl_port = free_tcp_port()
        self.sip_port = sip_port or free_tcp_port()
        src = "aufile,%s" % Path(source).resolve() if source else "aubridge,nil"
        ob = "sip:%s;transport=udp" % outbound if outbound else None
        write_config(self.dir, config_text(
            self.sip_port, modules=("g711", "aufile", "sndfile"),
            apps=("account", "menu", "ctrl_tcp"), source=src,
            extra={"ctrl_tcp_listen": "%s:%d" % (LOOPBACK, self.ctrl_port),
                   "snd_path": str(self.rec_dir), "rtp_ports": rtp_ports}),
            account_line(user, regint=regint, auto_answer=auto_answer, codecs=codecs,
                         outbound=ob))
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.events: list[dict] = []
        self.responses: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self._token = 0

    # -- life cycle
    def start(self, register_timeout: float = START_TIMEOUT_S) -> None:
        log = open(self.log_path, "wb")  # noqa: SIM115 (the child keeps it)
        self.proc = subprocess.Popen(["baresip", "-f", str(self.dir)], stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        try:
            self._connect(register_timeout)
        except BaseException:
            self.stop()  # a phone that failed to start is not left running
            raise

    def _connect(self, register_timeout: float) -> None:
        end = time.monotonic() + START_TIMEOUT_S
        while self.sock is None:
            try:
                self.sock = socket.create_connection((LOOPBACK, self.ctrl_port), timeout=1)
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > end:
                    raise BaresipError("baresip's ctrl_tcp never listened:\n"
                                       + self.log()) from None
                time.sleep(0.05)
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        if register_timeout:
            self.wait_registered(register_timeout)

    def wait_registered(self, timeout: float) -> None:
        """Until the log shows "200 OK ... [1 binding]" (the REGISTER_OK event may come
        before the control connection is up, so the log is the witness)."""
        end = time.monotonic() + timeout
        while not re.search(r"200 OK .*\[\d+ binding", self.log()):
            if self.proc.poll() is not None or time.monotonic() > end:
                raise BaresipError("%s did not register within %.1f s:\n%s"
                                   % (self.user, timeout, self.log()))
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM (baresip unregisters, then exits), SIGKILL after 5 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self._reader is not None:
            self._reader.join(2)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- control socket: netstrings of JSON
    def command(self, command: str, params: str = "", timeout: float = 5) -> dict:
        with self._lock:
            self._token += 1
            token = str(self._token)
        body = json.dumps({"command": command, "params": params, "token": token}).encode()
        self.sock.sendall(b"%d:%s," % (len(body), body))
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if token in self.responses:
                    return self.responses.pop(token)
            time.sleep(0.02)
        raise BaresipError("no answer to %r within %.1f s:\n%s" % (command, timeout, self.log()))

    def _read_loop(self) -> None:
        buf = b""
        sock = self.sock
        while sock is not None and sock.fileno() >= 0:
            try:
                ready, _, _ = select.select([sock], [], [], 0.2)
                if not ready:
                    continue
                chunk = sock.recv(65536)
            except (OSError, ValueError):
                return
            if not chunk:
                return
            buf += chunk
            while b":" in buf:
                head, _, rest = buf.partition(b":")
                n = int(head)
                if len(rest) < n + 1:
                    break
                msg = json.loads(rest[:n])
                buf = rest[n + 1:]
                msg["host_t"] = time.monotonic()
                with self._lock:
                    if msg.get("response"):
                        self.responses[str(msg.get("token"))] = msg
                    elif msg.get("event"):
                        self.events.append(msg)

    def find_events(self, type_: str, since: int = 0) -> list[dict]:
        with self._lock:
            return [e for e in self.events[since:] if e.get("type") == type_]

    def mark(self) -> int:
        with self._lock:
            return len(self.events)

    def wait_event(self, type_: str, timeout: float, since: int = 0) -> dict:
        end = time.monotonic() + timeout
        while True:
            found = self.find_events(type_, since)
            if found:
                return found[0]
            if time.monotonic() > end:
                with self._lock:
                    seen = [e.get("type") for e in self.events]
                raise BaresipError("no %s event within %.1f s (events %s); log:\n%s"
                                   % (type_, timeout, seen, self.log()))
            time.sleep(0.02)

    # -- calls
    def dial(self, user: str) -> dict:
        return self.command("dial", "sip:%s@%s" % (user, DOMAIN))

    def hangup(self) -> dict:
        return self.command("hangup")

    def dtmf_digits(self, since: int = 0) -> str:
        """The digits received (CALL_DTMF_START events) since the mark."""
        return "".join(str(e.get("param", "")) for e in self.find_events("CALL_DTMF_START",
                                                                          since))

    def recordings(self) -> tuple[Path, Path]:
        """(enc, dec) WAVs of the last call: what baresip sent, what it received."""
        pairs = []
        for kind in ("enc", "dec"):
            found = sorted(self.rec_dir.glob("dump-*-%s.wav" % kind), key=os.path.getmtime)
            if not found:
                raise BaresipError("no %s recording in %s:\n%s" % (kind, self.rec_dir,
                                                                    self.log()))
            pairs.append(found[-1])
        return pairs[0], pairs[1]

    def log(self) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        # the status line ("[0:00:03] audio=64000/64000 (bit/s)") is rewritten in place
        return "\n".join(x for x in text.replace("\r", "\n").splitlines()
                         if "audio=" not in x or "bit/s" not in x)[-6000:]
