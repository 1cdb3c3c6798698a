"""Which boards are attached, and which one a command means.

A *port* is a USB serial device (from pyserial's ``list_ports``: VID:PID, serial number)
matched to a board kind by the ``usb_ids`` of ``board_configs/*.json``, or a running virtual
board (from the vboard registry). ``resolve_port`` turns ``--port`` into one port:
``$SIPFW_PORT`` when ``--port`` is not given, else ``auto`` — the one attached board. With
several boards attached it lists them and refuses to guess (as belay's
``InsufficientSpecifierError``): flashing the wrong board is worse than asking.

``--port`` also takes a serial number (or a vboard id), which is how a board is found again
when a reset re-enumerates it under another device name (ESP32-S3 native USB, Pico W).
"""

from __future__ import annotations

import glob
import json
import os
import time
from dataclasses import dataclass, field

from .errors import PortError, UsageError
from .paths import BOARD_CONFIGS_DIR

ENV_PORT = "SIPFW_PORT"


@dataclass
class Port:
    device: str  # what to open: /dev/ttyUSB0, /dev/pts/7
    kind: str  # "usb" or "virtual"
    board: str | None = None  # board config name, when known
    vid_pid: str | None = None  # "303a:1001"
    serial_number: str | None = None  # USB serial number, or the vboard id
    description: str = ""
    extra: dict = field(default_factory=dict)

    def label(self) -> str:
        parts = [self.device, self.board or "unknown board"]
        if self.vid_pid:
            parts.append(self.vid_pid)
        if self.serial_number:
            parts.append("sn=" + self.serial_number)
        if self.description:
            parts.append(self.description)
        return "  ".join(parts)

    def as_dict(self) -> dict:
        return {"device": self.device, "kind": self.kind, "board": self.board,
                "vid_pid": self.vid_pid, "serial_number": self.serial_number,
                "description": self.description, **self.extra}


def board_configs() -> dict[str, dict]:
    """Every ``board_configs/*.json`` by name."""
    out = {}
    for path in sorted(glob.glob(os.path.join(BOARD_CONFIGS_DIR, "*.json"))):
        with open(path) as f:
            cfg = json.load(f)
        out[cfg.get("name") or os.path.basename(path)[:-5]] = cfg
    return out


def board_config(name: str) -> dict:
    configs = board_configs()
    if name not in configs:
        raise UsageError("unknown board %r (one of %s)" % (name, ", ".join(sorted(configs))))
    return configs[name]


def board_for_usb_id(vid_pid: str, configs: dict[str, dict] | None = None) -> str | None:
    for name, cfg in (configs or board_configs()).items():
        if vid_pid in (cfg.get("usb_ids") or {}):
            return name
    return None


def usb_ports(configs: dict[str, dict] | None = None, only_known: bool = True) -> list[Port]:
    """USB serial ports; by default only those whose VID:PID belongs to a board config
    (a laptop's other serial devices are none of our business)."""
    from serial.tools import list_ports

    configs = configs or board_configs()
    out = []
    for info in list_ports.comports():
        if info.vid is None:
            continue
        vid_pid = "%04x:%04x" % (info.vid, info.pid)
        board = board_for_usb_id(vid_pid, configs)
        if board is None and only_known:
            continue
        out.append(Port(device=info.device, kind="usb", board=board, vid_pid=vid_pid,
                        serial_number=info.serial_number, description=info.description or ""))
    return out


def virtual_ports() -> list[Port]:
    """Running virtual boards (``sipfw vboard``), from their registry."""
    try:
        from .vboard import list_vboards
    except ImportError:  # pragma: no cover - the vboard module ships with the tools
        return []
    out = []
    for entry in list_vboards():
        out.append(Port(device=entry["device"], kind="virtual", board="vboard",
                        serial_number=entry.get("id"), description="root=%s" % entry.get("root"),
                        extra={"pid": entry.get("pid"), "link": entry.get("link")}))
    return out


def list_ports(only_known: bool = True) -> list[Port]:
    return usb_ports(only_known=only_known) + virtual_ports()


def _matches(port: Port, spec: str) -> bool:
    if spec in (port.device, port.serial_number):
        return True
    link = port.extra.get("link")
    if link and os.path.abspath(spec) == os.path.abspath(link):
        return True
    try:
        return os.path.realpath(spec) == os.path.realpath(port.device)
    except OSError:
        return False


def resolve_port(spec: str | None, ports: list[Port] | None = None) -> Port:
    """``--port`` value -> one Port. None means ``$SIPFW_PORT``, else ``auto``.

    A device path that is not in the list (a plain serial adapter, a pty made by hand) is
    still accepted: the user named it, so it is used as given.
    """
    if not spec:
        spec = os.environ.get(ENV_PORT) or "auto"
    if ports is None:
        ports = list_ports()
    if spec == "auto":
        if not ports:
            raise PortError("no board found: plug one in, start `sipfw vboard`, or give --port")
        if len(ports) > 1:
            listing = "; ".join(p.label() for p in ports)
            raise PortError("%d boards attached, not guessing: give --port (or $%s): %s"
                            % (len(ports), ENV_PORT, listing))
        return ports[0]
    for port in ports:
        if _matches(port, spec):
            return port
    if os.path.exists(spec):
        return Port(device=spec, kind="serial", description="given with --port")
    raise PortError("no such port %r (attached: %s)" % (
        spec, ", ".join(p.device for p in ports) or "none"))


def refind(port: Port, timeout: float = 10.0, interval: float = 0.2) -> Port:
    """The same board after a reset, by serial number: USB boards may come back under
    another device name. Gives up with PortError after ``timeout`` seconds."""
    if not port.serial_number:
        return port
    deadline = time.monotonic() + timeout
    while True:
        for p in list_ports():
            if p.serial_number == port.serial_number and os.path.exists(p.device):
                return p
        if time.monotonic() >= deadline:
            raise PortError("board sn=%s did not come back within %.0f s"
                            % (port.serial_number, timeout))
        time.sleep(interval)


def board_of(port: Port, override: str | None = None) -> dict:
    """The board config for a port: ``--board`` wins, then what the port told us."""
    name = override or port.board
    if not name:
        raise UsageError("cannot tell which board is on %s: give --board (one of %s)"
                         % (port.device, ", ".join(sorted(board_configs()))))
    return board_config(name)
