"""`make fuzz`: a long mutation fuzz of the firmware's SIP decoder (bounded in count and time).

Seeds are the RFC 4475 torture messages plus the typical REGISTER / INVITE / 200 of
bench/sip_worker.py; each input is a seed with 1-6 mutations: the generic byte ones
(fuzzlib) and SIP-shaped ones — a header line repeated, a CRLF removed or doubled, a
Content-Length rewritten, a compact form swapped in, a line made very long. Each input goes
through what a phone does with bytes from the network: stream framing (``frame``), datagram
parsing (``parse``), and re-serializing what parsed (``to_bytes``) and parsing that again.
Only ``SipError`` may escape.

    python bench/fuzz_sip.py [--inputs 1000000] [--max-seconds 900] [--seed 1]
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [os.path.join(ROOT, "firmware"), HERE]

from fuzzlib import args_parser, byte_mutation, run  # noqa: E402
from sip_worker import INVITE, OK200, REGISTER  # noqa: E402
from sipua.sip import SipError  # noqa: E402
from sipua.sip.msg import parse  # noqa: E402
from sipua.sip.stream import NEED_MORE, frame  # noqa: E402

RFC4475 = os.path.join(ROOT, "tests", "data", "rfc4475")
_HEADERS = (b"v: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKf", b"l: 12", b"Content-Length: 99999",
            b"m: *", b"i: x@y", b"CSeq: 4294967296 INVITE", b"To: <sip:a@b>;tag=",
            b"Contact: <sip:a@[::1]:5060;transport=tcp>;expires=-1", b"f: \"\\\" <sip:x>")


def seeds():
    out = [REGISTER, INVITE, OK200]
    for name in sorted(os.listdir(RFC4475)):
        if name.endswith(".dat"):
            with open(os.path.join(RFC4475, name), "rb") as f:
                out.append(f.read())
    return out


def mutate(rng, corpus):
    b = bytearray(rng.choice(corpus))
    for _ in range(rng.randint(1, 6)):
        lines = bytes(b).split(b"\r\n")
        op = rng.randrange(9)
        if op == 5 and len(lines) > 2:  # a header line repeated, elsewhere
            i = rng.randrange(1, len(lines))
            lines.insert(rng.randrange(1, len(lines)), lines[i])
        elif op == 6 and len(lines) > 2:  # a CRLF removed or doubled
            i = rng.randrange(1, len(lines) - 1)
            if rng.random() < 0.5:
                lines[i:i + 2] = [lines[i] + lines[i + 1]]
            else:
                lines.insert(i, b"")
        elif op == 7 and len(lines) > 1:  # a strange header in
            lines.insert(rng.randrange(1, len(lines)), rng.choice(_HEADERS))
        elif op == 8 and len(lines) > 1:  # a very long line
            i = rng.randrange(1, len(lines))
            lines[i] = lines[i] + b"a" * rng.choice((500, 1100, 5000, 9000))
        else:
            byte_mutation(rng, b, corpus)
            continue
        b = bytearray(b"\r\n".join(lines))
    return bytes(b)


def decode(data):
    """What a phone does with bytes from the network; returns the parsed message or None."""
    n = frame(data, len(data))  # stream framing: a length, NEED_MORE, or SipError
    assert n == NEED_MORE or 0 < n <= len(data), n
    m = parse(data, True)
    again = parse(m.to_bytes(), True)  # what we re-serialize must parse the same way
    assert (again.status, again.method, again.cseq) == (m.status, m.method, m.cseq)
    return m


def main():
    args = args_parser("mutation fuzz of the SIP decoder").parse_args()
    return run("sip", seeds(), mutate, decode, SipError, args)


if __name__ == "__main__":
    sys.exit(main())
