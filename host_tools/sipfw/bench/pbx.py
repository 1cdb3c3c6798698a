"""The PBX a bench runs against: the local lab by default, any PBX through a bench config.

A bench needs few facts and few actions, whatever the PBX: the SIP domain and DNS server the
board is given, accounts (user, password), the servers in preference order with their
addresses, and how to take a server down (refuse), make it silent, and bring it back. For
the lab these are ``labctl.Lab`` methods; for another PBX a bench config names them::

    {
      "domain": "pbx.example.net", "dns": ["192.0.2.53:53"], "transport": "dns-srv",
      "accounts": [{"user": "201", "password": "..."}, {"user": "202", "password": "..."}],
      "farend": "202",
      "servers": [
        {"name": "a", "ip": "192.0.2.10",
         "stop": "ssh root@a systemctl stop asterisk",
         "start": "ssh root@a systemctl start asterisk",
         "silence": "ask", "unsilence": "ask"},
        {"name": "b", "ip": "192.0.2.11"}
      ]
    }

An action is a shell command, or ``"ask"``: the person is told what to do and the bench
waits for Enter. The first server is the preferred one (what DNS says: the bench checks it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence

from ..errors import ConfigError
from ..paths import LAB_DIR

ACTIONS = ("stop", "start", "silence", "unsilence")


class Pbx:
    """What every PBX offers a scenario (the lab and configured ones alike)."""

    name = "pbx"
    domain = ""
    dns: Sequence[str] = ()
    transport = "dns-srv"
    accounts: Sequence[tuple[str, str]] = ()
    farend_user: str | None = None
    servers: Sequence[tuple[str, str]] = ()  # (name, ip), preferred first
    lab = None  # the labctl.Lab when this is the local lab

    @property
    def primary(self) -> str:
        return self.servers[0][0]

    @property
    def backup(self) -> str:
        return self.servers[1][0]

    def ip(self, name: str) -> str:
        return dict(self.servers)[name]

    def name_of(self, ip: str) -> str | None:
        for name, sip in self.servers:
            if sip == ip:
                return name
        return None

    def board_config(self, index: int = 0, local_ip: str = "127.0.0.61", local_port: int = 5060,
                     expires: int = 180, failback_s: int = 10, level: str = "debug",
                     retry_count: int | None = None, failback_mode: str = "duration",
                     transport: str | None = None) -> dict:
        """config.json for a board using account ``index`` (seed-shaped: Expires 180);
        ``transport`` overrides the PBX's (the lab: dns-srv, which NAPTR makes TCP)."""
        user, password = self.accounts[index]
        acc = {"label": user, "display_name": user, "register_name": user, "user": user,
               "password": password, "server": self.domain,
               # a transport of its own: port 0, so SRV (_sip._udp) still finds the servers
               "port": 0 if transport else 5060,
               "transport": transport or self.transport, "expires": expires,
               "failback": {"mode": failback_mode, "timeout": failback_s},
               "redundancy": "successive"}
        sip = {"local_ip": local_ip, "local_port": local_port}
        if retry_count is not None:
            sip["retry_count"] = retry_count
        return {"accounts": [acc], "dns": {"servers": list(self.dns)}, "sip": sip,
                "log": {"level": level}}

    def prepare(self) -> None:
        """Bring the PBX up if the bench may (the lab); idempotent."""

    def finish(self) -> None:
        """Put back whatever the bench changed and stop what prepare() started."""

    def ensure_farend(self) -> str | None:
        """A far end to call (started if the bench can); its user, or None."""
        return self.farend_user

    def storm_accounts(self) -> list[tuple[str, str]]:
        """Accounts for the storm's boards, one each."""
        return list(self.accounts)

    def act(self, action: str, name: str) -> None:
        raise NotImplementedError


class LabPbx(Pbx):
    name = "lab"

    def __init__(self, keep_up: bool = False, run_dir: str | None = None):
        if LAB_DIR not in sys.path:
            sys.path.insert(0, LAB_DIR)
        from labctl import Lab

        # In a private network namespace (sipfw bench --netns) the lab gets its own run dir:
        # the pid files of a lab in the host's namespace must not make it think it is up.
        run_dir = run_dir or os.environ.get("SIPFW_LAB_RUN_DIR")
        self.lab = Lab(run_dir) if run_dir else Lab()
        self.domain = self.lab.domain
        self.dns = [self.lab.dns_server]
        self.accounts = [(u, u) for u in self.lab.users]
        ordered = sorted(self.lab.servers.values(), key=lambda s: s.priority)
        self.servers = [(s.name, s.ip) for s in ordered]
        self.farend_user = None
        self.keep_up = keep_up
        self._started: list[str] = []

    def prepare(self) -> None:
        if os.geteuid() != 0:
            raise ConfigError("the lab needs root (DNS on 127.0.0.53:53, iptables): run as root,"
                              " or name another PBX with --config")
        import labctl

        try:
            self._started = self.lab.up()
        except labctl.LabError as e:
            # Typically another lab (another worktree, a test run) holds the addresses.
            raise ConfigError("lab: %s — or run the bench in a network namespace of its own "
                              "(--netns)" % e) from None

    def finish(self) -> None:
        for name, _ in self.servers:
            self.lab.unsilence(name)
            self.lab.undegrade(name)
            self.lab.start(name)  # a scenario may have stopped it
        if self.farend_user is not None:
            self.lab.stop_farend(self.farend_user)
            self.farend_user = None
        if self._started and not self.keep_up:
            self.lab.down()

    def ensure_farend(self) -> str | None:
        import labctl

        user = self.accounts[-1][0]  # 6905: 6904 is the far end tests start themselves
        self.lab.farend(user, port=labctl.free_port())
        self.farend_user = user
        return user

    def storm_accounts(self) -> list[tuple[str, str]]:
        return [(u, u) for u in self.lab.bench_users]

    def act(self, action: str, name: str) -> None:
        getattr(self.lab, action)(name)


class ConfigPbx(Pbx):
    def __init__(self, path: str, ask=input, out=sys.stderr):
        # prompts and the actions' output go to stderr: stdout is a --json bench's answer
        try:
            with open(path) as f:
                cfg = json.load(f)
        except (OSError, ValueError) as e:
            raise ConfigError("bench config %s: %s" % (path, e)) from None
        self.name = os.path.basename(path)
        self._ask = ask
        self._out = out
        try:
            self.domain = str(cfg["domain"])
            self.dns = [str(d) for d in cfg.get("dns", [])]
            self.transport = str(cfg.get("transport", "dns-srv"))
            self.accounts = [(str(a["user"]), str(a["password"])) for a in cfg["accounts"]]
            self.farend_user = cfg.get("farend")
            self.servers = [(str(s["name"]), str(s["ip"])) for s in cfg["servers"]]
            self._actions = {(str(s["name"]), a): s.get(a) for s in cfg["servers"]
                             for a in ACTIONS}
        except (KeyError, TypeError) as e:
            raise ConfigError("bench config %s: missing or bad key %s" % (path, e)) from None
        if len(self.servers) < 2 or not self.accounts:
            raise ConfigError("bench config %s: needs two servers and an account" % path)

    def act(self, action: str, name: str) -> None:
        how = self._actions.get((name, action))
        if not how:
            raise ConfigError("bench config: no %r action for server %s" % (action, name))
        if how == "ask":
            self._out.write("\n>>> please %s server %s (%s), then press Enter: "
                            % (action, name, self.ip(name)))
            self._out.flush()
            self._ask()
            return
        proc = subprocess.run(how, shell=True, timeout=120, check=False, stdout=2)
        if proc.returncode != 0:
            raise ConfigError("%s %s: %r exited %d" % (action, name, how, proc.returncode))


def stop_lab_dir(run_dir: str) -> list[str]:
    """Stop what a lab run dir's pid files name (a namespace's lab whose bench died)."""
    if LAB_DIR not in sys.path:
        sys.path.insert(0, LAB_DIR)
    import labctl

    lab = labctl.Lab(run_dir)
    stopped = []
    for f in lab._farend_pid_files():
        pid = lab.farend_pid(f.stem.removeprefix("farend-"))
        if pid is not None:
            labctl.stop_pid(pid)
            stopped.append(f.stem)
    for name in labctl.SERVERS:
        pid = lab.server_pid(name)
        if pid is not None:
            labctl.stop_pid(pid)
            stopped.append(name)
    pid = lab.dns_pid()
    if pid is not None:
        labctl.stop_pid(pid)
        stopped.append("dns")
    return stopped


def open_pbx(config: str | None, keep_up: bool = False) -> Pbx:
    return ConfigPbx(config) if config else LabPbx(keep_up=keep_up)


def lab_act_degrade(pbx: Pbx, name: str, loss: float) -> None:
    """Random loss on the path to a server (lab only: iptables statistic, tagged)."""
    if pbx.lab is None:
        raise ConfigError("packet loss needs the local lab")
    if loss > 0:
        pbx.lab.degrade(name, loss)
    else:
        pbx.lab.undegrade(name)
