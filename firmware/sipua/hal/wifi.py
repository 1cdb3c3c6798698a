"""Wi-Fi station bring-up with retries (esp32, Pico W): the one place that waits at boot.

Runs before the scheduler starts, so it may sleep; every wait is bounded. ``network`` and
``sleep_ms`` are injectable so the retry policy is tested on the host with a fake WLAN.
"""

from ..compat import const

ATTEMPTS = 3
CONNECT_WAIT_MS = 15000  # per attempt: DHCP on a busy AP can take several seconds
_STEP_MS = const(250)


def connect(net_cfg, log, network=None, sleep_ms=None, feed=None):
    """Join ``net_cfg['ssid']`` with ``net_cfg['psk']``; the IP address, or None."""
    ssid = net_cfg.get("ssid") or ""
    if not ssid:
        log.warn("net", "no_wifi_config")
        return None
    if network is None:
        import network
    if sleep_ms is None:
        from time import sleep_ms
    hostname = net_cfg.get("hostname") or ""
    if hostname:
        try:
            network.hostname(hostname)
        except (AttributeError, ValueError, OSError) as e:
            log.warn("net", "hostname_failed", hostname=hostname, err=str(e))
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    for attempt in range(1, ATTEMPTS + 1):
        log.info("net", "wifi_connect", ssid=ssid, attempt=attempt)
        try:
            if wlan.isconnected():
                wlan.disconnect()
            wlan.connect(ssid, net_cfg.get("psk") or "")
        except OSError as e:
            log.warn("net", "wifi_error", ssid=ssid, err=str(e))
            sleep_ms(_STEP_MS)
            continue
        waited = 0
        while waited < CONNECT_WAIT_MS:
            if wlan.isconnected():
                ip = wlan.ifconfig()[0]
                log.info("net", "up", ssid=ssid, ip=ip, attempt=attempt)
                return ip
            if feed is not None:
                feed()
            sleep_ms(_STEP_MS)
            waited += _STEP_MS
        log.warn("net", "wifi_timeout", ssid=ssid, status=wlan.status(), attempt=attempt)
    log.error("net", "wifi_failed", ssid=ssid, attempts=ATTEMPTS)
    return None
