"""Linux (virtual board, Raspberry Pi running the unix port; CPython in tests).

The OS owns the network, there is no LED or hardware watchdog to drive; the address the
agent uses is ``sip.local_ip`` or the loopback address.
"""

_led_state = [False]


def led(on):
    _led_state[0] = bool(on)


def led_state():
    return _led_state[0]


def watchdog_start(ms):
    pass  # systemd's WatchdogSec would be the Pi's; the vboard has none


def feed():
    pass


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
    import os

    return os.getenv("HOSTNAME") or "unix"


def network_up(cfg, log):
    ip = (cfg.get("sip") or {}).get("local_ip") or "127.0.0.1"
    log.info("net", "up", ip=ip, kind="os")
    return ip
