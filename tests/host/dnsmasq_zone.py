"""A real DNS server for host tests: dnsmasq on 127.0.1.53 holding the seed's airties zone.

The seed's records with the lab's loopback addresses instead of 91.220.65.26/.27. dnsmasq
answers the records of one name in reverse config order, so the NAPTRs and SRVs below are
listed in the opposite order to the seed's trace; the locator's order must not depend on it.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

from sip_proc import free_port
from sipfw.procs import stop_process

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
HOST = "127.0.1.53"
DOMAIN = "airties.test"
UC1, UC2 = "127.0.1.26", "127.0.1.27"

RECORDS = [
    "--naptr-record=%s,2,0,s,SIP+D2U,,_sip._udp.%s" % (DOMAIN, DOMAIN),
    "--naptr-record=%s,2,0,s,SIP+D2T,,_sip._tcp.%s" % (DOMAIN, DOMAIN),
    "--srv-host=_sip._tcp.%s,uc1.%s,5060,2,0" % (DOMAIN, DOMAIN),
    "--srv-host=_sip._tcp.%s,uc2.%s,5060,1,0" % (DOMAIN, DOMAIN),
    "--srv-host=_sip._udp.%s,uc2.%s,5060,1,0" % (DOMAIN, DOMAIN),
    "--srv-host=_sip._udp.%s,uc1.%s,5060,2,0" % (DOMAIN, DOMAIN),
    "--host-record=uc1.%s,%s" % (DOMAIN, UC1),
    "--host-record=uc2.%s,%s" % (DOMAIN, UC2),
]

# What the seed's phone lists (its table after the SRV lookups), with our addresses.
EXPECTED = [
    {"transport": "tcp", "host": "uc2." + DOMAIN, "ip": UC2, "port": 5060, "priority": 1,
     "weight": 0, "source": "naptr"},
    {"transport": "tcp", "host": "uc1." + DOMAIN, "ip": UC1, "port": 5060, "priority": 2,
     "weight": 0, "source": "naptr"},
    {"transport": "udp", "host": "uc2." + DOMAIN, "ip": UC2, "port": 5060, "priority": 1,
     "weight": 0, "source": "naptr"},
    {"transport": "udp", "host": "uc1." + DOMAIN, "ip": UC1, "port": 5060, "priority": 2,
     "weight": 0, "source": "naptr"},
]


class Dnsmasq:
    """Start with ``start()``, stop with ``stop()`` — only the process this started."""

    def __init__(self, extra=()):
        self.extra = list(extra)
        self.dir = tempfile.mkdtemp(prefix="sipfw-dnsmasq-")
        self.port = None
        self.proc = None

    def start(self):
        for _ in range(5):
            self.port = free_port(HOST)
            cmd = [DNSMASQ, "--keep-in-foreground", "--no-resolv", "--no-hosts",
                   "--conf-file=/dev/null", "--bind-interfaces", "--listen-address=" + HOST,
                   "--port=%d" % self.port, "--local-ttl=60", "--local=/%s/" % DOMAIN,
                   "--user=root", "--pid-file=" + os.path.join(self.dir, "dnsmasq.pid"),
                   "--log-facility=" + os.path.join(self.dir, "dnsmasq.log")]
            self.proc = subprocess.Popen(cmd + RECORDS + self.extra, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE)
            if self._ready():
                return self
            self.stop()
        raise RuntimeError("dnsmasq did not start: %s" % self._log())

    def _ready(self):
        q = (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03uc1\x07airties\x04test\x00"
             b"\x00\x01\x00\x01")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(0.2)
            try:
                s.sendto(q, (HOST, self.port))
                if s.recv(512)[:2] == b"\x12\x34":
                    return True
            except OSError:
                time.sleep(0.05)
            finally:
                s.close()
        return False

    def _log(self):
        try:
            with open(os.path.join(self.dir, "dnsmasq.log")) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    @property
    def server(self):
        return "%s:%d" % (HOST, self.port)

    def stop(self):
        p = self.proc
        stop_process(p, grace_s=5)
        if p is not None and p.stderr:
            p.stderr.close()
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
