"""Interop on loopback with sipp (Debian sip-tester): the firmware's SIP stack against a
real third-party SIP implementation, on the MicroPython unix port (and CPython).

- a sipp registrar challenges the stack's REGISTER (401, MD5 qop=auth) and checks the
  digest with its own verifyauth: 200 only if our digest is right (UDP and TCP);
- a sipp caller sends OPTIONS and INVITE to the stack: 200 with Allow; 100, 480, ACK;
- a relay between the stack and sipp drops sipp's first answer: the stack's Timer E
  retransmission makes sipp answer again, and the transaction ends with that 200.
"""

import os
import select
import shutil
import socket
import subprocess
import sys
import threading

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from sip_proc import FIRMWARE, ROOT, EchoServer, free_port, micropython  # noqa: E402

SIPP_DIR = os.path.join(HERE, "sipp")
PHONE = "127.0.2.40"
SIPP = "127.0.2.41"
RELAY = "127.0.2.42"


def sipp(args, timeout=30):
    exe = shutil.which("sipp")
    assert exe, "sipp is missing: `make test-deps` installs Debian's sip-tester"
    return subprocess.Popen([exe, *args, "-nostdin", "-timeout", "20s", "-m", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=SIPP_DIR)


def finish(proc, timeout=30):
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return proc.returncode, out.decode("latin-1")[-3000:]


def run_client(interp, kind, target_ip, target_port, method="REGISTER", retry=3):
    port = free_port(PHONE)
    env = dict(os.environ)
    if interp == "micropython":
        cmd = [micropython(), "-X", "heapsize=256K"]
        env["MICROPYPATH"] = FIRMWARE + ":.frozen"
    else:
        cmd = [sys.executable]
        env["PYTHONPATH"] = FIRMWARE
    cmd += [os.path.join(HERE, "sip_client.py"), PHONE, str(port), kind, target_ip,
            str(target_port), method, str(retry)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    lines = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
    assert lines, p.stdout + p.stderr
    _, outcome, status, ms = lines[-1].split()
    return outcome, int(status), int(ms)


@pytest.mark.parametrize("kind", ["udp", "tcp"])
def test_sipp_registrar_accepts_our_digest_on_micropython(kind):
    port = free_port(SIPP)
    proc = sipp(["-sf", "uas_register_auth.xml", "-i", SIPP, "-p", str(port),
                 "-t", "u1" if kind == "udp" else "t1"])
    try:
        import time

        time.sleep(0.3)  # sipp binds its socket
        outcome, status, _ = run_client("micropython", kind, SIPP, port)
    finally:
        rc, out = finish(proc)
    assert (outcome, status) == ("response", 200), out
    assert rc == 0, out


def test_sipp_caller_gets_the_phones_answers_on_micropython():
    port = free_port(PHONE)
    with EchoServer("micropython", PHONE, port) as srv:
        proc = sipp(["%s:%d" % (PHONE, port), "-sf", "uac_options_invite.xml", "-i", SIPP,
                     "-p", str(free_port(SIPP)), "-t", "u1"])
        rc, out = finish(proc)
        assert srv.alive()
    assert rc == 0, out


class DropFirstAnswer(threading.Thread):
    """A UDP relay stack <-> sipp that loses sipp's first packet (its first 200)."""

    def __init__(self, sipp_addr):
        super().__init__(daemon=True)
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind((RELAY, free_port(RELAY)))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind((RELAY, 0))
        self.sipp_addr = sipp_addr
        self.client = None
        self.requests = 0
        self.dropped = 0
        self.stop = False

    @property
    def port(self):
        return self.front.getsockname()[1]

    def run(self):
        while not self.stop:
            r, _, _ = select.select([self.front, self.back], [], [], 0.05)
            for s in r:
                data, addr = s.recvfrom(65535)
                if s is self.front:
                    self.client = addr
                    self.requests += 1
                    self.back.sendto(data, self.sipp_addr)
                elif not self.dropped:
                    self.dropped += 1
                elif self.client:
                    self.front.sendto(data, self.client)


@pytest.mark.parametrize("interp", ["micropython", "cpython"])
def test_lost_answer_is_recovered_by_retransmission(interp):
    port = free_port(SIPP)
    proc = sipp(["-sf", "uas_options.xml", "-i", SIPP, "-p", str(port), "-t", "u1"])
    relay = DropFirstAnswer((SIPP, port))
    relay.start()
    try:
        import time

        time.sleep(0.3)
        outcome, status, ms = run_client(interp, "udp", RELAY, relay.port, "OPTIONS")
    finally:
        relay.stop = True
        _rc, out = finish(proc)
    assert (outcome, status) == ("response", 200), out
    assert relay.dropped == 1 and relay.requests >= 2  # Timer E did the work
    assert 450 <= ms < 3000, ms  # the answer to the retransmission at T1 = 500 ms
