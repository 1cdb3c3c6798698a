"""Linux (virtual board, Raspberry Pi running the unix port; CPython in tests).

The OS owns the network and there is no LED to drive. The address the agent uses is
``sip.local_ip`` when the config names one (pinned), else the one the OS picks to reach the
first DNS server, followed as it changes (``link``); with no DNS server configured, or one
on this host, it is the loopback address.

No hardware watchdog either, and a thread or a signal timer inside the interpreter could
not reset it honestly (a stuck interpreter cannot restart itself). So the watchdog is a
heartbeat file that a supervisor outside the interpreter watches: when the environment
variable ``SIPFW_WATCHDOG`` names a file, ``watchdog_start(ms)`` writes the period into it
and ``feed()`` rewrites it every ``ms/4`` at most; a supervisor that sees it go stale for
longer than the period kills and restarts the interpreter, as a WDT reset does. ``sipfw
vboard`` is that supervisor; on a Pi a service wrapper can be.
"""

from ..compat import ticks_diff, ticks_ms

WATCHDOG_ENV = "SIPFW_WATCHDOG"

_led_state = [False]
_toward = [None]  # the first DNS server's address: whose route names our address
_wdt = [None, 0, 0]  # type: list  # heartbeat path, period ms, ticks of the last write


def led(on):
    _led_state[0] = bool(on)


def led_state():
    return _led_state[0]


def watchdog_start(ms):
    """Arm the heartbeat (see above); True if a supervisor asked for one."""
    path = _env(WATCHDOG_ENV)
    if ms <= 0 or not path:
        return False
    _wdt[0] = path
    _wdt[1] = ms
    _beat(ticks_ms())
    return True


def feed():
    path = _wdt[0]
    if path is None:
        return
    now = ticks_ms()
    if ticks_diff(now, _wdt[2]) >= _wdt[1] >> 2:  # a file write per turn would be wasteful
        _beat(now)


def _beat(now):
    _wdt[2] = now
    try:
        with open(_wdt[0], "w") as f:
            f.write("%d\n" % _wdt[1])
    except OSError:
        pass  # a full or read-only disk must not stop the phone; the supervisor will see


def heap_free():
    import gc

    free = getattr(gc, "mem_free", None)
    return free() if free is not None else -1  # CPython has no heap limit to report


def machine_id():
    """/etc/machine-id on Linux (stable per install), else the host name."""
    try:
        with open("/etc/machine-id") as f:
            mid = f.read().strip()
        if mid:
            return mid
    except OSError:
        pass
    return _env("HOSTNAME") or "unix"


def _env(name):
    """An environment variable, or None (MicroPython's WebAssembly port has no getenv)."""
    import os

    getenv = getattr(os, "getenv", None)
    return getenv(name) if getenv is not None else None


def link(ip, follow=False):
    """The link watch's probe (``Agent._watch``, every second). Pinned (``sip.local_ip``
    set, ``follow`` false): ``ip`` while the host still has it (a socket can be bound to
    it), None once it is gone (EADDRNOTAVAIL: the interface is down or the address was
    removed). Following the OS: the source address it picks now (another after a DHCP
    renumbering), None when there is no route any more."""
    import socket

    if follow and _toward[0]:
        from .srcaddr import source  # loaded only where the address is followed

        return source(_toward[0], ip)
    if ip == "0.0.0.0":
        return ip
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(socket.getaddrinfo(ip, 0)[0][-1])
        return ip
    except OSError:
        return None
    finally:
        s.close()


def reconnect():
    """The OS brings its links back itself."""


def network_up(cfg, log):
    ip = (cfg.get("sip") or {}).get("local_ip")
    dns = ((cfg.get("dns") or {}).get("servers") or [""])[0]
    _toward[0] = dns.split(":")[0] if dns[:1] not in ("", "[") else None  # IPv4 only
    if not ip:
        ip = (link(None, True) if _toward[0] else None) or "127.0.0.1"
    log.info("net", "up", ip=ip, kind="os")
    return ip
