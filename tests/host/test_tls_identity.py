"""TLS identity (issue 13): a registrar whose certificate is wrong — issued by an unknown CA,
for another name, or expired — is refused, the reason logged, and the next server (whose
certificate is right) is tried; never plain TCP, never an unverified connection.

Certificates are made with the openssl CLI at test time. Two TLS registrars on loopback,
the wrong one first in the locator's order (its SRV target name ``sip.test``, the name
RFC 5922 says to check); the real SipStack + Registration run on CPython and on the
MicroPython unix port.
"""

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from pki import issue, make_ca  # noqa: E402
from sip_proc import FIRMWARE, ROOT, free_port, micropython  # noqa: E402
from tls_server import TlsServer  # noqa: E402

SERVER = "127.0.2.62"
PHONE = "127.0.2.63"
NAME = "sip.test"  # the SRV target name both registrars stand for


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """ca.pem (the phone trusts it), other-ca.pem (it does not), and server certificates:
    good (sip.test by ca), unknown_ca (sip.test by other-ca), wrong_name (other.test by ca),
    expired (sip.test by ca, valid 2020-01-01 .. 2020-01-02)."""
    d = tmp_path_factory.mktemp("pki")
    for ca in ("ca", "other-ca"):
        make_ca(d, ca, "sipfw test %s" % ca)
    for stem, name, ca, expired in (("good", NAME, "ca", False),
                                    ("unknown_ca", NAME, "other-ca", False),
                                    ("wrong_name", "other.test", "ca", False),
                                    ("expired", NAME, "ca", True)):
        issue(d, stem, name, d / (ca + ".pem"), d / (ca + ".key"), expired)
    return d


def registrar(pki, name):
    """Answers every request 200 over TLS with certificate ``name``; records what it got."""
    srv = TlsServer(pki / (name + ".pem"), pki / (name + ".key"), SERVER, PHONE)
    srv.name = name
    return srv


@pytest.fixture()
def servers(pki, request):
    bad = registrar(pki, request.param)
    good = registrar(pki, "good")
    for s in (bad, good):
        s.start()
    yield bad, good
    for s in (bad, good):
        s.close()


PHONE_SCRIPT = """
from sipua.account import Account
from sipua.dns import Target, Targets
from sipua.log import Logger
from sipua.sched import Scheduler
from sipua.sip.reg import Registration
from sipua.sip.stack import SipStack

lines = []
sched = Scheduler()
log = Logger(write=lines.append, clock=sched.now)
st = SipStack(sched, "%(phone)s", %(lport)d, ca_file="%(ca)s", log=log)
st.start()


class Locator:
    def locate(self, host, on_done, transport=None, port=None, secure=None):
        ts = Targets([Target("tls", "%(name)s", "%(server)s", %(bad)d, source="srv"),
                      Target("tls", "%(name)s", "%(server)s", %(good)d, source="srv")])
        ts.ttl = 60
        sched.call_soon(on_done, ts, None)


reg = Registration(sched, st, Locator(), Account({"user": "6903", "password": "6903",
                   "server": "%(name)s", "transport": "tls", "expires": 600}), log)
reg.start()
sched.run_until(lambda: reg.state == "registered", 15000)
for line in lines:
    print("LOG", line)
print("RESULT", reg.state, reg.server.port if reg.server else 0)
reg.stop(False)
st.stop()
"""


def run_phone(interpreter, pki, bad, good):
    code = PHONE_SCRIPT % {"phone": PHONE, "lport": free_port(PHONE), "ca": pki / "ca.pem",
                           "name": NAME, "server": SERVER, "bad": bad.port, "good": good.port}
    if interpreter == "micropython":
        cmd = [micropython(), "-X", "heapsize=1M", "-c", code]
        env = dict(os.environ, MICROPYPATH=FIRMWARE + ":.frozen")
    else:
        cmd = [sys.executable, "-c", code]
        env = dict(os.environ, PYTHONPATH=FIRMWARE)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    out = p.stdout
    result = [x for x in out.splitlines() if x.startswith("RESULT ")]
    assert result, out + p.stderr
    logs = [x[4:] for x in out.splitlines() if x.startswith("LOG ")]
    return result[0].split()[1:], logs, out + p.stderr


@pytest.mark.parametrize("interpreter", ["cpython", "micropython"])
@pytest.mark.parametrize("servers", ["unknown_ca", "wrong_name", "expired"], indirect=True)
def test_a_wrong_certificate_is_refused_logged_and_the_next_server_registers(
        pki, servers, interpreter):
    bad, good = servers
    (state, port), logs, out = run_phone(interpreter, pki, bad, good)
    assert state == "registered" and int(port) == good.port, out
    assert bad.got == [], out  # not one SIP byte reached the server it could not verify
    assert good.got and all(m.via.transport == "TLS" for m in good.got), out
    why = bad.name  # the certificate's flaw, as the phone names it
    refused = [x for x in logs if " tls_refused " in x]
    assert len(refused) == 1 and refused[0].split()[1] == "WARN", logs
    assert ("reason=%s" % why) in refused[0] and ("host=%s" % NAME) in refused[0], refused
    assert ("server=%s:%d" % (SERVER, bad.port)) in refused[0], refused
    fo = [x for x in logs if " reg failover " in x]
    assert len(fo) == 1 and "reason=transport_error" in fo[0], logs
    assert "next=tls:%s/%s:%d" % (NAME, SERVER, good.port) in fo[0], fo
    # every REGISTER went to a TLS target: no plain TCP, no second try on the refused one
    regs = [x for x in logs if " reg register " in x]
    assert [("tls:" in x, ":%d" % bad.port in x) for x in regs] == [(True, True), (True, False)]
