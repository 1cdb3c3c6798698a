#!/usr/bin/env python3
"""The sipfw lab on loopback: two Kamailio registrars, a DNS server and a sipp far end.

Importable (``from labctl import Lab``) for pytest fixtures and benches, and a CLI:

    labctl.py up | down | status [--json]
    labctl.py stop|start|silence|unsilence uc1|uc2
    labctl.py registered USER [--json]
    labctl.py config [USER] [--transport T] [--expires N]
    labctl.py farend [USER] [--port P] [--servers uc2,uc1]

Everything binds to 127.0.0.0/8 and everything started is recorded in a pid file under
lab/run/, so ``down`` stops only what ``up`` (or ``farend``) started. Stdlib only, CPython 3.11.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

LAB_DIR = Path(__file__).resolve().parent
RUN_DIR = LAB_DIR / "run"
SIPP_DIR = LAB_DIR / "sipp"
KAMAILIO_TEMPLATE = LAB_DIR / "kamailio" / "kamailio.cfg.in"

DOMAIN = "airties.lab"
REALM = DOMAIN
DNS_IP = "127.0.0.53"
DNS_PORT = 53
DNS_TTL = 60
SIP_PORT = 5060
TLS_PORT = 5061
MIN_EXPIRES = 300
MAX_EXPIRES = 3600
# Password = user name, like the seed's account 6903/6903.
USERS = ("6903", "6904", "6905")
# 100 more accounts for `sipfw bench --scenario storm` (one per virtual board), same rule.
BENCH_USERS = tuple(str(u) for u in range(7000, 7100))
FAREND_IP = "127.0.0.1"
FAREND_PORT = 5090
# sipp binds SIP (-i), media (-mi) and its remote-control socket (-ci) to FAREND_IP; without
# -ci the control socket would listen on 0.0.0.0.
SIPP_LOOPBACK = ["-i", FAREND_IP, "-mi", FAREND_IP, "-ci", FAREND_IP]

PACKAGES = (
    "kamailio",
    "kamailio-tls-modules",
    "sip-tester",
    "dnsmasq-base",
    "dnsutils",
    "iptables",
    "openssl",
)
# Debian's multiarch module path (x86_64-linux-gnu, aarch64-linux-gnu, ...).
KAMAILIO_MODULE_GLOB = "/usr/lib/*/kamailio/modules/"
IPTABLES_TAG = "sipfw-lab"
# Kamailio 5.6's auth module challenges with one algorithm per instance (modparam).
AUTH_ALGORITHMS = ("MD5", "SHA-256")
CMD_TIMEOUT = 30


@dataclass(frozen=True)
class Server:
    """One registrar; priority is its SRV priority (1 = preferred, like the seed's uc2)."""

    name: str
    ip: str
    priority: int
    peer: str

    @property
    def host(self) -> str:
        return f"{self.name}.{DOMAIN}"


SERVERS = {
    "uc2": Server("uc2", "127.0.0.27", 1, peer="uc1"),
    "uc1": Server("uc1", "127.0.0.26", 2, peer="uc2"),
}


@dataclass
class SippResult:
    """What one sipp run saw: status codes received in order, and its full message log."""

    codes: list[int]
    log: str

    @property
    def ok(self) -> bool:
        return self.codes[-1:] == [200]


class LabError(RuntimeError):
    """Something in the lab could not be done; the message says what and where to look."""


# ---------------------------------------------------------------- processes and commands


def run(cmd: list[str], timeout: float = CMD_TIMEOUT, check: bool = True, **kw):
    """Run a command with a timeout, capturing text output (every lab subprocess has one)."""
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def pid_alive(pid: int) -> bool:
    """True if pid runs; a zombie counts as gone (it lingers until reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def read_pid(pid_file: Path, marker: str) -> int | None:
    """The live pid recorded in pid_file, if its command line still contains marker.

    The marker check keeps us from signalling an unrelated process that reused the pid.
    """
    try:
        pid = int(pid_file.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError, IndexError):
        return None
    return pid if marker in cmdline and pid_alive(pid) else None


def stop_pid(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within timeout."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if wait_for(lambda: not pid_alive(pid), timeout):
            return
    raise LabError(f"pid {pid} survived SIGKILL")


def wait_for(predicate, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


def free_port(ip: str = FAREND_IP) -> int:
    """A currently free UDP port on ip (sipp needs one it can name in its Contact)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- probes


def options_request(ip: str, port: int, transport: str, lport: int) -> bytes:
    tag = f"{os.getpid()}{time.monotonic_ns()}"
    return (
        f"OPTIONS sip:{ip}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport.upper()} {FAREND_IP}:{lport};branch=z9hG4bK{tag};rport\r\n"
        f"From: <sip:labctl@{DOMAIN}>;tag={tag}\r\nTo: <sip:{ip}:{port}>\r\n"
        f"Call-ID: {tag}@{FAREND_IP}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def sip_options(
    ip: str,
    port: int | None = None,
    timeout: float = 1.0,
    transport: str = "udp",
    ca_file: Path | None = None,
    server_name: str | None = None,
) -> str:
    """Send one OPTIONS: 'ok' (200), 'refused' (ICMP unreachable / RST), 'timeout', or the
    status line of any other answer.

    transport is udp, tcp or tls; for tls the server certificate is verified against ca_file
    and server_name, so this also proves the lab's TLS material.
    """
    port = port or (TLS_PORT if transport == "tls" else SIP_PORT)
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    try:
        with socket.socket(socket.AF_INET, kind) as raw:
            raw.settimeout(timeout)
            raw.bind((FAREND_IP, 0))
            # connect() on UDP too: a closed port's ICMP error then surfaces as ECONNREFUSED.
            raw.connect((ip, port))
            request = options_request(ip, port, transport, raw.getsockname()[1])
            sock = raw
            if transport == "tls":
                ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
                sock = ctx.wrap_socket(raw, server_hostname=server_name or ip)
            sock.send(request)
            reply = sock.recv(4096).decode(errors="replace")
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "timeout"
    return "ok" if reply.startswith("SIP/2.0 200") else reply.split("\r\n", 1)[0]


def dns_query_a(name: str, server: str = DNS_IP, port: int = DNS_PORT, timeout=1.0) -> bool:
    """True if the DNS server answers an A query for name with at least one answer record."""
    qid = os.getpid() & 0xFFFF
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    packet = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question + b"\0\1\0\1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(packet, (server, port))
            reply = s.recv(512)
        except OSError:
            return False
    return len(reply) >= 12 and struct.unpack("!H", reply[6:8])[0] > 0


# ---------------------------------------------------------------- the lab


class Lab:
    """Start, stop and break the lab's servers. Every method is idempotent."""

    def __init__(self, run_dir: Path = RUN_DIR, auth_algorithm: str = "MD5"):
        """auth_algorithm (MD5 or SHA-256) applies to the registrars this object starts."""
        if auth_algorithm not in AUTH_ALGORITHMS:
            raise LabError(f"auth_algorithm must be one of {', '.join(AUTH_ALGORITHMS)}")
        self.run_dir = Path(run_dir).resolve()
        self.tls_dir = self.run_dir / "tls"
        self.auth_algorithm = auth_algorithm

    # -- public facts the firmware config and tests need

    @property
    def ca_file(self) -> Path:
        """The lab CA certificate (PEM): name it as sip.ca_file for TLS tests."""
        return self.tls_dir / "ca.crt"

    dns_server = f"{DNS_IP}:{DNS_PORT}"
    domain = DOMAIN
    servers = SERVERS
    users = USERS
    bench_users = BENCH_USERS

    # -- whole lab

    def up(self) -> list[str]:
        """Bring up what is not running; return the names of the parts started now."""
        require_root()
        ensure_packages()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        started = []
        if not self.dns_running():
            self.start_dns()
            started.append("dns")
        for name in SERVERS:
            if not self.running(name):
                self.start(name)
                started.append(name)
        return started

    def down(self) -> list[str]:
        """Stop everything the lab started and remove its firewall rules; return what stopped."""
        require_root()
        stopped = [f.stem for f in self._farend_pid_files() if self._stop_farend_file(f)]
        for name in SERVERS:
            self.unsilence(name)
            self.undegrade(name)
            if self.running(name):
                self.stop(name)
                stopped.append(name)
        if self.dns_running():
            stop_pid(self.dns_pid())
            stopped.append("dns")
        self._dns_pid_file.unlink(missing_ok=True)
        return stopped

    def status(self) -> dict:
        """Running, answering and silenced state of each part, plus the facts tests need."""
        servers = {}
        for name, srv in SERVERS.items():
            servers[name] = {
                "ip": srv.ip,
                "host": srv.host,
                "priority": srv.priority,
                "running": self.running(name),
                "silenced": self.silenced(name),
                "options": sip_options(srv.ip, timeout=0.5),
                "auth_algorithm": self.running_algorithm(name),
            }
        return {
            "dns": {"server": self.dns_server, "running": self.dns_running()},
            "servers": servers,
            "farends": [f.stem for f in self._farend_pid_files()],
            "domain": DOMAIN,
            "users": list(USERS),
            "sip_port": SIP_PORT,
            "tls_port": TLS_PORT,
            "ca_file": str(self.ca_file),
        }

    def firmware_config(self, user: str = "6903", transport: str = "dns-srv",
                        expires: int = 180) -> dict:
        """A config.json for the firmware pointing at this lab, like the seed's account page.

        expires defaults to the seed's 180 so a registration meets the 423 -> 300 step.
        """
        return {
            "accounts": [{
                "label": user, "display_name": user, "register_name": user, "user": user,
                "password": password(user), "server": DOMAIN, "port": SIP_PORT,
                "transport": transport, "expires": expires,
            }],
            "dns": {"servers": [self.dns_server]},
            "sip": {"ca_file": str(self.ca_file)},
        }

    # -- one registrar

    def running(self, name: str) -> bool:
        return self.server_pid(name) is not None

    def start(self, name: str) -> None:
        """Start registrar name (no-op if running); returns once it answers OPTIONS."""
        srv = server(name)
        if self.running(name):
            return
        self.make_pki()
        rdir = self._srv_dir(name)
        rdir.mkdir(parents=True, exist_ok=True)
        cfg = rdir / "kamailio.cfg"
        cfg.write_text(self._render_kamailio(srv))
        # Absolute -P/-Y paths: kamailio changes to / before writing its pid file.
        cmd = ["kamailio", "-f", str(cfg), "-P", str(rdir / "kamailio.pid"), "-Y", str(rdir), "-E"]
        # It forks its daemon and the first process exits; -E keeps logs on stderr (the file).
        with open(rdir / "kamailio.log", "wb") as log:  # this run only
            proc = subprocess.run(cmd, check=False, stdout=log, stderr=log, timeout=CMD_TIMEOUT)
        if proc.returncode != 0 or not wait_for(lambda: self.running(name), 5):
            # The last lines name the cause, e.g. an address in use by a foreign Kamailio.
            tail = (rdir / "kamailio.log").read_text(errors="replace").strip().splitlines()[-3:]
            raise LabError(f"kamailio {name} did not start ({rdir / 'kamailio.log'}): "
                           + " / ".join(tail))
        if self.silenced(name):
            return  # it cannot answer while silenced; the pid is proof enough
        if not wait_for(lambda: sip_options(srv.ip, timeout=0.3) == "ok", 10):
            raise LabError(f"kamailio {name} runs but does not answer OPTIONS on {srv.ip}")

    def stop(self, name: str) -> None:
        """Kill registrar name: its address then refuses (ICMP port unreachable / TCP RST)."""
        pid = self.server_pid(name)
        if pid is not None:
            stop_pid(pid)
        self._wait_ports_free(server(name).ip)

    def running_algorithm(self, name: str) -> str | None:
        """The digest algorithm registrar name was started with (None if stopped)."""
        if not self.running(name):
            return None
        cfg = (self._srv_dir(name) / "kamailio.cfg").read_text()
        return re.search(r'modparam\("auth", "algorithm", "([^"]+)"\)', cfg).group(1)

    def silenced(self, name: str) -> bool:
        return self._iptables("-C", name).returncode == 0

    def silence(self, name: str) -> None:
        """Drop every packet to the registrar's address: it becomes a black hole (timeouts)."""
        if not self.silenced(name):
            self._iptables("-I", name, check=True)

    def unsilence(self, name: str) -> None:
        while self.silenced(name):
            self._iptables("-D", name, check=True)

    def degrade(self, name: str, loss: float) -> None:
        """Drop a random fraction ``loss`` of the packets to the registrar (a lossy path);
        tagged ``sipfw-lab:<name>:loss`` so ``undegrade`` and ``down`` remove it."""
        self.undegrade(name)
        run(["iptables", "-w", "-A", *self._loss_rule(name, loss)])

    def undegrade(self, name: str) -> None:
        """Remove every loss rule degrade() added for name."""
        import shlex

        tag = f"{IPTABLES_TAG}:{name}:loss"
        listing = run(["iptables", "-w", "-S", "INPUT"], check=False).stdout
        for line in listing.splitlines():
            words = shlex.split(line)
            if tag in words and words[:1] == ["-A"]:
                run(["iptables", "-w", "-D", *words[1:]], check=False)

    def _loss_rule(self, name: str, loss: float) -> list[str]:
        ip = server(name).ip
        return ["INPUT", "-d", f"{ip}/32", "-m", "statistic", "--mode", "random",
                "--probability", f"{loss:g}", "-m", "comment", "--comment",
                f"{IPTABLES_TAG}:{name}:loss", "-j", "DROP"]

    def registered(self, user: str) -> dict[str, list[dict]]:
        """Bindings of user per running registrar: {name: [{'contact':..., 'expires':...}]}."""
        result = {}
        for name in SERVERS:
            if self.running(name):
                result[name] = self._ul_lookup(name, user)
        return result

    # -- DNS

    def dns_pid(self) -> int | None:
        return read_pid(self._dns_pid_file, f"--pid-file={self._dns_pid_file}")

    def dns_running(self) -> bool:
        return self.dns_pid() is not None

    def start_dns(self) -> None:
        log = self.run_dir / "dnsmasq.log"
        run(["dnsmasq", *dnsmasq_args(self._dns_pid_file, log)])
        if not wait_for(lambda: dns_query_a(f"uc2.{DOMAIN}"), 5):
            raise LabError(f"dnsmasq does not answer on {DNS_IP}:{DNS_PORT}: see {log}")

    # -- far end

    def farend(
        self,
        user: str = "6904",
        port: int = FAREND_PORT,
        servers=("uc2", "uc1"),
        ring_ms: int = 200,
    ) -> int:
        """Start a sipp UAS as user on FAREND_IP:port and register it; return its pid.

        Registered on every server named (default both), so calls reach it through either
        one even after the other is stopped. Stopped by down() or stop_farend().
        """
        pid_file = self._farend_pid_file(user)
        pid = self.farend_pid(user)
        if pid is None:
            pid = self._spawn_uas(user, port, ring_ms)
            # The port is kept beside the pid so stopping can unregister the same contact.
            pid_file.write_text(f"{pid}\n{port}\n")
        else:
            port = farend_port(pid_file) or port
        for name in servers:
            result = self.sipp_register(name, user, expires=MAX_EXPIRES, contact=(FAREND_IP, port))
            if not result.ok:
                raise LabError(f"far end {user} could not register on {name}: {result.codes}")
        return pid

    def stop_farend(self, user: str = "6904") -> None:
        """Unregister the far end from the running servers and stop it."""
        self._stop_farend_file(self._farend_pid_file(user))

    def farend_pid(self, user: str = "6904") -> int | None:
        return read_pid(self._farend_pid_file(user), self._farend_marker(user))

    def farend_running(self, user: str = "6904") -> bool:
        return self.farend_pid(user) is not None

    def farend_contact(self, user: str = "6904") -> tuple[str, int] | None:
        """(ip, port) the far end answers on, if it runs."""
        port = farend_port(self._farend_pid_file(user))
        return (FAREND_IP, port) if port and self.farend_running(user) else None

    # -- sipp one-shots (used by tests and benches)

    def sipp_register(
        self,
        name: str,
        user: str,
        expires: int = MAX_EXPIRES,
        contact: tuple[str, int] | None = None,
        transport: str = "u1",
        timeout: float = 10,
        secret: str | None = None,
    ) -> SippResult:
        """REGISTER user at registrar name with digest auth, following one 423.

        contact defaults to sipp's own address; name another (the far end's) to register it.
        expires=0 unregisters that contact.
        """
        port = free_port()
        host, cport = contact or (FAREND_IP, port)
        keys = {"domain": DOMAIN, "expires": expires, "contact_host": host, "contact_port": cport}
        return self._sipp_oneshot(
            "register", name, user, port, keys, transport, timeout, secret=secret
        )

    def sipp_call(self, name: str, caller: str = "6903", callee: str = "6904",
                  hold_ms: int = 500, transport: str = "u1", timeout: float = 15,
                  bye_via: str | None = None) -> SippResult:
        """Call callee from caller through registrar name (answering 407), hang up with BYE.

        bye_via names the registrar the BYE is sent to (default: name), e.g. the other one
        after name was stopped mid-call: the BYE-failover case of the seed.
        """
        bye = server(bye_via or name)
        keys = {"domain": DOMAIN, "user": caller, "bye_host": bye.ip, "bye_port": SIP_PORT,
                "bye_proto": "tcp" if transport.startswith("t") else "udp"}
        return self._sipp_oneshot("uac", name, caller, free_port(), keys, transport, timeout,
                                  service=callee, extra=["-d", str(hold_ms)])

    def sipp_cancel(self, name: str, caller: str = "6903", callee: str = "6904",
                    transport: str = "u1", timeout: float = 10) -> SippResult:
        """Call callee through registrar name and CANCEL it on 180 (expects 200, 487)."""
        keys = {"domain": DOMAIN, "user": caller}
        return self._sipp_oneshot("uac-cancel", name, caller, free_port(), keys, transport,
                                  timeout, service=callee)

    # -- TLS material

    def make_pki(self) -> None:
        """A lab CA and one server certificate per registrar, made once per run dir."""
        self.tls_dir.mkdir(parents=True, exist_ok=True)
        ca_key = self.tls_dir / "ca.key"
        new_ca = False
        if not self.ca_file.exists():
            subj = "/O=sipfw lab/CN=sipfw lab CA"
            run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
                 "-subj", subj, "-keyout", str(ca_key), "-out", str(self.ca_file)])
            new_ca = True
        for srv in SERVERS.values():
            # A new CA invalidates every server certificate signed by the old one.
            if new_ca or not (self.tls_dir / f"{srv.name}.crt").exists():
                self._make_server_cert(srv, ca_key)

    def _make_server_cert(self, srv: Server, ca_key: Path) -> None:
        key, csr, crt = (self.tls_dir / f"{srv.name}.{ext}" for ext in ("key", "csr", "crt"))
        ext = self.tls_dir / f"{srv.name}.ext"
        ext.write_text(
            f"subjectAltName=DNS:{srv.host},DNS:{DOMAIN},IP:{srv.ip}\n"
            "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
        )
        run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes",
             "-subj", f"/O=sipfw lab/CN={srv.host}", "-keyout", str(key), "-out", str(csr)])
        run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(self.ca_file),
             "-CAkey", str(ca_key), "-CAcreateserial", "-days", "825", "-sha256",
             "-extfile", str(ext), "-out", str(crt)])

    # -- internals

    @property
    def _dns_pid_file(self) -> Path:
        return self.run_dir / "dnsmasq.pid"

    def _srv_dir(self, name: str) -> Path:
        return self.run_dir / name

    def server_pid(self, name: str) -> int | None:
        """The main Kamailio pid of registrar name, if it runs."""
        rdir = self._srv_dir(name)
        return read_pid(rdir / "kamailio.pid", str(rdir / "kamailio.cfg"))

    def _render_kamailio(self, srv: Server) -> str:
        users = "\n".join(f'\t$sht(users=>{u}) = "{u}";' for u in USERS + BENCH_USERS)
        values = {
            "NAME": srv.name,
            "IP": srv.ip,
            "HOST": srv.host,
            "PEER_IP": SERVERS[srv.peer].ip,
            "DOMAIN": DOMAIN,
            "REALM": REALM,
            "SIP_PORT": SIP_PORT,
            "TLS_PORT": TLS_PORT,
            "RUN": self._srv_dir(srv.name),
            "MPATH": kamailio_modules(),
            "USERS": users,
            "MIN_EXPIRES": MIN_EXPIRES,
            "MAX_EXPIRES": MAX_EXPIRES,
            "ALGORITHM": self.auth_algorithm,
            "TLS_CERT": self.tls_dir / f"{srv.name}.crt",
            "TLS_KEY": self.tls_dir / f"{srv.name}.key",
            "TLS_CA": self.ca_file,
        }
        text = KAMAILIO_TEMPLATE.read_text()
        for key, value in values.items():
            text = text.replace(f"@{key}@", str(value))
        leftover = re.search(r"@[A-Z_]+@", text)
        if leftover:
            raise LabError(f"kamailio template: nothing replaces {leftover.group()}")
        return text

    def _wait_ports_free(self, ip: str) -> None:
        """After a kill, wait until nothing answers on ip any more (children exit last)."""
        wait_for(lambda: sip_options(ip, timeout=0.2) != "ok", 5)

    def _iptables(self, op: str, name: str, check: bool = False):
        ip = server(name).ip
        tag = f"{IPTABLES_TAG}:{name}"  # the comment marks the rules we own
        rule = ["INPUT", "-d", f"{ip}/32", "-m", "comment", "--comment", tag, "-j", "DROP"]
        return run(["iptables", "-w", op, *rule], check=check)

    def _ul_lookup(self, name: str, user: str) -> list[dict]:
        sock = f"unix:{self._srv_dir(name) / 'kamailio_ctl'}"
        proc = run(
            ["kamcmd", "-s", sock, "ul.lookup", "location", f"s:{user}"], check=False, timeout=5
        )
        if proc.returncode != 0 or "AoR" not in proc.stdout:
            return []
        return parse_ul_lookup(proc.stdout)

    def _spawn_uas(self, user: str, port: int, ring_ms: int) -> int:
        log = self.run_dir / f"farend-{user}"
        # sipp takes no keyword in a timeout attribute: the ring time is written into a copy.
        xml = (SIPP_DIR / "uas.xml").read_text()
        scenario = self.run_dir / f"farend-{user}.xml"
        scenario.write_text(re.sub(r'(request="CANCEL" timeout=")\d+', rf"\g<1>{ring_ms}", xml))
        cmd = ["sipp", "-sf", str(scenario), *SIPP_LOOPBACK, "-p", str(port),
               "-t", "u1", "-s", user, "-nostdin", "-bg",
               "-trace_msg", "-message_file", f"{log}.msg",
               "-trace_err", "-error_file", f"{log}.err"]
        # -bg detaches sipp (no zombie in a long-lived caller); its parent exits 99 then.
        out = run(cmd, check=False).stdout
        match = re.search(r"PID=\[(\d+)\]", out)
        if not match:
            raise LabError(f"sipp UAS did not report its pid: {out!r}")
        pid = int(match.group(1))
        if not wait_for(lambda: pid_alive(pid), 2):
            raise LabError(f"sipp UAS exited at once: see {log}.err")
        return pid

    def _farend_marker(self, user: str) -> str:
        """What only this far end's command line contains: its own scenario copy."""
        return str(self.run_dir / f"farend-{user}.xml")

    def _farend_pid_file(self, user: str) -> Path:
        return self.run_dir / f"farend-{user}.pid"

    def _farend_pid_files(self) -> list[Path]:
        return sorted(self.run_dir.glob("farend-*.pid"))

    def _stop_farend_file(self, pid_file: Path) -> bool:
        """Unregister the far end from every running server, then stop its sipp."""
        user = pid_file.stem.removeprefix("farend-")
        pid = self.farend_pid(user)
        if pid is not None:
            port = farend_port(pid_file)
            for name in SERVERS:
                if port and self.running(name) and not self.silenced(name):
                    self.sipp_register(name, user, expires=0, contact=(FAREND_IP, port))
            stop_pid(pid)
        pid_file.unlink(missing_ok=True)
        return pid is not None

    def _sipp_oneshot(
        self,
        scenario: str,
        name: str,
        user: str,
        port: int,
        keys: dict,
        transport: str,
        timeout: float,
        service: str | None = None,
        extra: list[str] = (),
        secret: str | None = None,
    ) -> SippResult:
        srv = server(name)
        sipp_port = SIP_PORT if transport[0] in "ut" else TLS_PORT
        msg_file = self.run_dir / f"sipp-{scenario}-{user}-{port}.msg"
        cmd = ["sipp", f"{srv.ip}:{sipp_port}", "-sf", str(SIPP_DIR / f"{scenario}.xml"),
               *SIPP_LOOPBACK, "-p", str(port), "-t", transport, "-m", "1",
               "-s", service or user, "-au", user, "-ap", secret or password(user),
               "-auth_uri", DOMAIN, "-nostdin",
               "-timeout", f"{int(timeout)}s", "-timeout_error",
               "-trace_msg", "-message_file", str(msg_file), *extra]
        for key, value in keys.items():
            cmd += ["-key", key, str(value)]
        proc = run(cmd, timeout=timeout + 5, check=False, stdin=subprocess.DEVNULL)
        if not msg_file.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise LabError(f"sipp {scenario} did not run: {' / '.join(tail)}")
        log = msg_file.read_text(errors="replace")
        msg_file.unlink()
        return SippResult(received_codes(log), log)


def kamailio_modules() -> str:
    found = sorted(Path("/").glob(KAMAILIO_MODULE_GLOB.lstrip("/")))
    if not found:
        raise LabError(f"no Kamailio modules in {KAMAILIO_MODULE_GLOB}: is kamailio installed?")
    return f"{found[0]}/"


def farend_port(pid_file: Path) -> int | None:
    """The far end's SIP port, recorded on the pid file's second line."""
    try:
        return int(pid_file.read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None


def password(user: str) -> str:
    """Lab passwords equal user names, as in the seed."""
    return user


def server(name: str) -> Server:
    try:
        return SERVERS[name]
    except KeyError:
        raise LabError(f"unknown server {name!r}: use one of {', '.join(SERVERS)}") from None


def received_codes(message_log: str) -> list[int]:
    """Status codes of the responses sipp logged as received, in order.

    Only "<TRANSPORT> message received" entries count: sipp logs an unexpected message a second
    time under "Unexpected ... received", which must not count twice.
    """
    pattern = r"^[A-Z]+ message received[^\n]*\n\s*\nSIP/2\.0 (\d{3})"
    return [int(code) for code in re.findall(pattern, message_log, re.MULTILINE)]


UL_FIELDS = ("Expires", "Socket", "Received", "User-Agent", "Call-ID", "Path")


def parse_ul_lookup(text: str) -> list[dict]:
    """kamcmd ul.lookup output -> [{'contact', 'expires', 'socket', 'received', ...}]."""
    contacts, current = [], None
    for line in text.splitlines():
        key, _, value = line.strip().partition(": ")
        if key == "Address":
            current = {"contact": value}
            contacts.append(current)
        elif current is not None and key in UL_FIELDS:
            current[key.lower().replace("-", "_")] = value
    for c in contacts:
        if c.get("expires", "").lstrip("-").isdigit():
            c["expires"] = int(c["expires"])
    return contacts


def dnsmasq_args(pid_file: Path, log_file: Path) -> list[str]:
    """The seed-shaped zone, for dnsmasq-base bound to DNS_IP only.

    dnsmasq answers the NAPTR records of one name in reverse config order, so they are listed
    backwards here: the answer is SIP+D2T, SIP+D2U (order 2, as in the seed), then SIPS+D2T
    (order 3, for TLS tests, after the seed's two). SRV answers rotate between queries
    (measured: uc2-first and uc1-first alternate), which covers both of the seed's orders
    and means a locator must sort by priority rather than trust the order.
    """
    args = [f"--listen-address={DNS_IP}", "--bind-interfaces", f"--port={DNS_PORT}",
            "--no-hosts", "--no-resolv", "--no-poll", f"--local-ttl={DNS_TTL}",
            f"--local=/{DOMAIN}/", "--conf-file=/dev/null", "--user=root",
            f"--pid-file={pid_file}", f"--log-facility={log_file}", "--log-queries"]
    naptrs = [("SIPS+D2T", 3, "_sips._tcp"), ("SIP+D2U", 2, "_sip._udp"),
              ("SIP+D2T", 2, "_sip._tcp")]
    args += [f"--naptr-record={DOMAIN},{order},0,s,{svc},,{repl}.{DOMAIN}"
             for svc, order, repl in naptrs]
    for service, port in (("_sip._tcp", SIP_PORT), ("_sip._udp", SIP_PORT),
                          ("_sips._tcp", TLS_PORT)):
        args += [f"--srv-host={service}.{DOMAIN},{s.host},{port},{s.priority},0"
                 for s in SERVERS.values()]
    args += [f"--host-record={s.host},{s.ip}" for s in SERVERS.values()]
    return args


# ---------------------------------------------------------------- host preparation


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (DNS on port 53, iptables, apt-get): run as root")


def missing_packages(packages=PACKAGES) -> list[str]:
    proc = run(["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n", *packages], check=False)
    installed = {
        line.split()[0] for line in proc.stdout.splitlines() if line.endswith(" installed")
    }
    return [p for p in packages if p not in installed]


def ensure_packages() -> None:
    """apt-get install what is missing; nothing (and no apt-get update) when all are there."""
    missing = missing_packages()
    if not missing:
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print(f"labctl: installing {' '.join(missing)}", file=sys.stderr)
    run(["apt-get", "update"], timeout=600, env=env)
    run(["apt-get", "install", "-y", "--no-install-recommends", *missing], timeout=900, env=env)
    if shutil.which("kamailio") is None:
        raise LabError("kamailio is still missing after apt-get install")


# ---------------------------------------------------------------- CLI


def print_status(lab: Lab, as_json: bool) -> None:
    st = lab.status()
    if as_json:
        print(json.dumps(st, indent=2))
        return
    dns = st["dns"]
    print(f"dns  {dns['server']:<17} {'running' if dns['running'] else 'stopped'}")
    for name, s in st["servers"].items():
        state = "running" if s["running"] else "stopped"
        silent = " silenced" if s["silenced"] else ""
        auth = f", auth {s['auth_algorithm']}" if s["running"] else ""
        print(f"{name}  {s['ip']:<17} {state}{silent}, OPTIONS: {s['options']}{auth}")
    print(f"far ends: {', '.join(st['farends']) or 'none'}")
    print(f"CA: {st['ca_file']}")


def print_registered(lab: Lab, user: str, as_json: bool) -> None:
    found = lab.registered(user)
    if as_json:
        print(json.dumps(found, indent=2))
        return
    for name, contacts in found.items():
        for c in contacts:
            print(f"{name} {c['contact']} expires={c.get('expires')} via={c.get('socket')}")
    if not any(found.values()):
        print(f"{user} is not registered")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="labctl", description=__doc__.split("\n\n")[0])
    ap.add_argument("--auth-algorithm", choices=AUTH_ALGORITHMS, default="MD5",
                    help="digest algorithm of registrars started by this command")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up")
    sub.add_parser("down")
    sub.add_parser("status").add_argument("--json", action="store_true")
    for cmd in ("stop", "start", "silence", "unsilence"):
        sub.add_parser(cmd).add_argument("server", choices=sorted(SERVERS))
    reg = sub.add_parser("registered")
    reg.add_argument("user")
    reg.add_argument("--json", action="store_true")
    cfg = sub.add_parser("config", help="print a firmware config.json for this lab")
    cfg.add_argument("user", nargs="?", default="6903")
    cfg.add_argument("--transport", default="dns-srv", choices=["udp", "tcp", "tls", "dns-srv"])
    cfg.add_argument("--expires", type=int, default=180)
    far = sub.add_parser("farend", help="start a sipp UAS far end and register it")
    far.add_argument("user", nargs="?", default="6904")
    far.add_argument("--port", type=int, default=FAREND_PORT)
    far.add_argument("--servers", default="uc2,uc1")
    args = ap.parse_args(argv)

    try:
        return dispatch(Lab(auth_algorithm=args.auth_algorithm), args)
    except (LabError, subprocess.TimeoutExpired) as exc:
        print(f"labctl: {exc}", file=sys.stderr)
        return 1


def dispatch(lab: Lab, args) -> int:
    if args.cmd == "up":
        t0 = time.monotonic()
        started = lab.up()
        took = time.monotonic() - t0
        print(f"lab up: started {', '.join(started) or 'nothing (already up)'} in {took:.1f} s")
        print_status(lab, False)
    elif args.cmd == "down":
        t0 = time.monotonic()
        stopped = lab.down()
        took = time.monotonic() - t0
        print(f"lab down: stopped {', '.join(stopped) or 'nothing'} in {took:.1f} s")
    elif args.cmd == "status":
        print_status(lab, args.json)
    elif args.cmd == "registered":
        print_registered(lab, args.user, args.json)
    elif args.cmd == "config":
        print(json.dumps(lab.firmware_config(args.user, args.transport, args.expires), indent=2))
    elif args.cmd == "farend":
        require_root()
        pid = lab.farend(args.user, args.port, tuple(args.servers.split(",")))
        print(f"far end {args.user} on {FAREND_IP}:{args.port} (pid {pid})")
    else:
        require_root()
        getattr(lab, args.cmd)(args.server)
        print_status(lab, False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
