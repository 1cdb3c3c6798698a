"""esp32 and rp2 (Pico W): LED, hardware watchdog, heap, unique id, Wi-Fi station."""

import sys

from ..compat import const

_LED_PIN = {"esp32": 2, "rp2": "LED"}  # board_configs/*.json "led_pin"
_RP2_WDT_MAX_MS = const(8388)  # the RP2040 watchdog cannot count longer

_led = None
_wdt = None
_net = [None]  # type: list  # the config's "network" section, for reconnect()


def led(on):
    global _led
    if _led is None:
        from machine import Pin

        pin = _LED_PIN.get(sys.platform)
        if pin is None:
            return
        _led = Pin(pin, Pin.OUT)
    _led.value(1 if on else 0)


def watchdog_start(ms):
    """Start the hardware watchdog (it cannot be stopped again); 0 leaves it off. True when
    it runs."""
    global _wdt
    if ms <= 0:
        return False
    if _wdt is not None:
        return True
    from machine import WDT

    if sys.platform == "rp2" and ms > _RP2_WDT_MAX_MS:
        ms = _RP2_WDT_MAX_MS
    _wdt = WDT(timeout=ms)
    return True


def feed():
    if _wdt is not None:
        _wdt.feed()


def heap_free():
    import gc

    return gc.mem_free()


def machine_id():
    import binascii

    import machine

    return binascii.hexlify(machine.unique_id()).decode()


def network_up(cfg, log):
    """Join the configured Wi-Fi network; the station's IP address, or None."""
    from .wifi import connect

    nc = _net[0] = cfg.get("network") or {}
    return connect(nc, log)


def link(ip, follow=False):
    """The link watch's probe (every second): the station's address while it is connected
    (another than ``ip`` after a DHCP change), None while it is not. (``follow``: the unix
    port's; the station always takes the address DHCP gives it.)"""
    import network

    w = network.WLAN(network.STA_IF)
    return w.ifconfig()[0] if w.isconnected() else None


def reconnect():
    """One non-blocking connect attempt (netwatch.py spaces them out)."""
    nc = _net[0]
    if nc and nc.get("ssid"):
        import network

        w = network.WLAN(network.STA_IF)
        try:
            w.active(True)
            w.connect(nc["ssid"], nc.get("psk") or "")
        except OSError:
            pass  # still busy with the last attempt: the next one comes later
