"""hal: the unix implementation, and the Wi-Fi retry policy against a fake WLAN."""

from fwtest import ListLog
from sipua import hal
from sipua.hal import unix, wifi


class FakeWLAN:
    """Connects after ``connect_after`` polls of isconnected() in the given attempt."""

    def __init__(self, plan):
        self.plan = list(plan)  # per attempt: polls until connected, or None for never
        self.polls = 0
        self.connected = False
        self.calls = []
        self.limit = None

    def active(self, on=None):
        self.calls.append(("active", on))

    def connect(self, ssid, psk):
        self.calls.append(("connect", ssid, psk))
        self.limit = self.plan.pop(0) if self.plan else None
        self.polls = 0
        if self.limit == "error":
            raise OSError(-1)

    def disconnect(self):
        self.calls.append(("disconnect",))

    def isconnected(self):
        self.polls += 1
        if isinstance(self.limit, int) and self.polls > self.limit:
            self.connected = True
        return self.connected

    def ifconfig(self):
        return ("192.168.1.50", "255.255.255.0", "192.168.1.1", "192.168.1.1")

    def status(self):
        return 1


class FakeNetwork:
    STA_IF = 0

    def __init__(self, wlan):
        self.wlan = wlan
        self.names = []

    def WLAN(self, kind):
        return self.wlan

    def hostname(self, name):
        self.names.append(name)


def run_connect(plan, net_cfg):
    ll = ListLog()
    wlan = FakeWLAN(plan)
    net = FakeNetwork(wlan)
    slept = []
    ip = wifi.connect(net_cfg, ll.logger, network=net, sleep_ms=slept.append)
    return ip, ll, wlan, net, slept


def test_wifi_connects_on_second_attempt_after_a_timeout():
    ip, ll, wlan, net, slept = run_connect([None, 3], {"ssid": "lab", "psk": "12345678",
                                                      "hostname": "phone1"})
    assert ip == "192.168.1.50"
    assert net.names == ["phone1"]
    assert [c[0] for c in wlan.calls].count("connect") == 2
    assert [e["event"] for e in ll.events()] == ["wifi_connect", "wifi_timeout",
                                                 "wifi_connect", "up"]
    # the first attempt waited its whole bounded budget, in steps
    assert sum(slept) >= wifi.CONNECT_WAIT_MS


def test_wifi_gives_up_after_all_attempts():
    ip, ll, _wlan, _net, slept = run_connect(["error", None, None], {"ssid": "lab", "psk": ""})
    assert ip is None
    assert ll.events("wifi_error") and ll.events("wifi_failed")[0]["attempts"] == "3"
    assert sum(slept) < (wifi.ATTEMPTS + 1) * wifi.CONNECT_WAIT_MS  # bounded


def test_no_ssid_means_no_wifi():
    ip, ll, wlan, _net, _slept = run_connect([1], {"ssid": ""})
    assert ip is None and wlan.calls == [] and ll.events("no_wifi_config")


def test_unix_hal():
    ll = ListLog()
    assert hal.network_up({"sip": {"local_ip": "127.0.0.7"}}, ll.logger) == "127.0.0.7"
    assert unix.network_up({}, ll.logger) == "127.0.0.1"
    unix.led(True)
    assert unix.led_state() is True
    unix.led(0)
    assert unix.led_state() is False
    hal.watchdog_start(1000)
    hal.feed()
    assert isinstance(hal.heap_free(), int)
    mid = hal.machine_id()
    assert isinstance(mid, str) and mid
