"""`sipfw resolve --json` prints only JSON on stdout: the resolver's log lines (here: a
forged answer dropped) go to stderr, and name the source the dropped answer came from."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading

BIN = os.path.dirname(sys.executable)


def question_end(q: bytes) -> int:
    i = 12
    while q[i]:
        i += 1 + q[i]
    return i + 5  # the root label, QTYPE, QCLASS


def spoofing_server():
    """A name server on 127.0.0.1 that answers each query twice: first with the wrong ID
    (dropped by the resolver), then for real (an A record, 127.0.0.9)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)

    def serve():
        try:
            q, addr = sock.recvfrom(1500)
        except OSError:
            return
        qid = struct.unpack("!H", q[:2])[0]
        question = q[12 : question_end(q)]
        answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([127, 0, 0, 9])
        for i in (qid ^ 0x5A5A, qid):
            sock.sendto(struct.pack("!HHHHHH", i, 0x8180, 1, 1, 0, 0) + question + answer,
                        addr)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return sock, t


def test_resolve_json_keeps_log_lines_off_stdout():
    sock, t = spoofing_server()
    port = sock.getsockname()[1]
    try:
        p = subprocess.run([os.path.join(BIN, "sipfw"), "resolve", "--json", "--port", "5060",
                            "--transport", "udp", "--dns", "127.0.0.1:%d" % port, "uc1.test"],
                           capture_output=True, text=True, timeout=60)
    finally:
        t.join(10)
        sock.close()
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)  # the whole of stdout is the document
    assert [(x["ip"], x["port"], x["transport"]) for x in got] == [("127.0.0.9", 5060, "udp")]
    dropped = [x for x in p.stderr.splitlines() if "answer_dropped" in x]
    assert len(dropped) == 1, p.stderr
    assert "why=id" in dropped[0] and "src=127.0.0.1:%d" % port in dropped[0], dropped
