"""``--ladder``: SIP and DNS exchanges as a sequence diagram in the terminal.

Built only from log lines, so it works on any recorded log too. It reads the events the
SIP and DNS layers log at DEBUG — ``sip send method=.. target=tcp:ip:port``, ``sip recv
status=.. method=.. src=ip:port`` and ``dns exchange server=.. name=.. qtype=.. ms=..
outcome=..`` (one line per round trip: drawn as a query ``ms`` before the answer) — and the
older names ``sip tx`` / ``sip rx`` / ``dns query`` / ``dns answer``. ``arrows()`` is the one
model of "which message went where" that this filter and the bench's SVG ladder
(``sipfw.bench.report``) both draw; ``derive_responses()`` fills in SIP responses from the
registration's own events for logs made without ``sip recv``. It is tolerant of missing or
differently named keys: the peer is the first of ``dst``/``to``/
``peer``/``remote``/``server``/``addr``/``host`` (``src``/``from``/... for received
messages), with ``port`` appended when it is separate; a line without a peer goes to a
lane named ``?``. Lanes are added as peers appear (a header is printed each time)::

                 board                   127.0.0.53:53           127.0.0.12:5060
    12:00:01.120 |---NAPTR airties.lab-->|                       |
    12:00:01.124 |<------NAPTR 2 rr------|                       |
    12:00:01.300 |-----------------REGISTER cseq=1-------------->|
    12:00:01.310 |<---------------401 Unauthorized---------------|

Warnings and errors of any area are drawn as notes on the board's lane; markers (boot,
gap, reconnect) and tracebacks pass through; everything else is dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .base import Filter

LANE_W = 24
TX_KEYS = ("dst", "target", "to", "peer", "remote", "server", "addr", "host", "ip")
RX_KEYS = ("src", "from", "peer", "remote", "server", "addr", "host", "ip")
PASS = ("boot", "gap", "reconnect", "traceback")


def _first(fields: dict, keys) -> str | None:
    for k in keys:
        v = fields.get(k)
        if v:
            return str(v)
    return None


def peer_of(fields: dict, outgoing: bool) -> str:
    peer = _first(fields, TX_KEYS if outgoing else RX_KEYS)
    if peer is None:
        return "?"
    if peer.count(":") == 2:  # the stack's "tcp:127.0.0.27:5060": the transport goes
        peer = peer.split(":", 1)[1]
    port = fields.get("port") or fields.get("dport" if outgoing else "sport")
    if port and ":" not in peer:
        peer = "%s:%s" % (peer, port)
    return peer


def sip_label(f: dict) -> str:
    method = f.get("method") or f.get("request")
    status = f.get("status") or f.get("code")
    if status and not (method and f.get("event") == "tx" and not f.get("reason")):
        text = str(status)
        if f.get("reason"):
            text += " " + str(f["reason"])
        cseq = f.get("cseq")
        if cseq and not str(cseq)[:1].isdigit():
            text += " (%s)" % cseq
        elif cseq and " " in str(cseq):
            text += " (%s)" % str(cseq).split(" ", 1)[1]
        return text
    text = str(method or f.get("msg") or "SIP")
    cseq = f.get("cseq")
    if cseq:
        text += " cseq=%s" % str(cseq).split(" ")[0]
    return text


QTYPES = {1: "A", 5: "CNAME", 28: "AAAA", 33: "SRV", 35: "NAPTR", 6: "SOA"}


def qtype_name(q) -> str:
    try:
        return QTYPES.get(int(q), str(q))
    except (TypeError, ValueError):
        return str(q or "")


def dns_label(f: dict) -> str:
    qtype = qtype_name(f.get("type") or f.get("qtype") or "")
    name = f.get("name") or f.get("qname") or ""
    if f.get("event") == "query":
        return ("%s %s" % (qtype, name)).strip() or "query"
    parts = [str(qtype)] if qtype else []
    rcode = f.get("rcode")
    if rcode and str(rcode).upper() not in ("0", "NOERROR"):
        parts.append(str(rcode))
    count = f.get("count") or f.get("answers") or f.get("an")
    if count is not None:
        parts.append("%s rr" % count if str(count).isdigit() else str(count))
    return " ".join(parts) or "answer"


@dataclass
class Arrow:
    """One message on the ladder: between the board and ``peer`` (``ip:port``)."""

    t: float  # host time (seconds)
    peer: str
    outgoing: bool  # board -> peer
    label: str
    proto: str  # "sip" | "dns"
    failed: bool = False  # a DNS query that got no answer


def arrows(t: float, f: dict) -> list[Arrow]:
    """The messages one parsed log line stands for (none for most lines)."""
    area, event = f.get("area"), f.get("event")
    if area == "sip" and event in ("tx", "rx", "send", "recv"):
        out = event in ("tx", "send")
        g = f
        if event == "recv" and f.get("method"):
            g = dict(f, method=None, cseq=f["method"])  # "401 (REGISTER)"
        return [Arrow(t, peer_of(f, out), out, sip_label(g), "sip")]
    if area == "dns" and event in ("query", "answer"):
        out = event == "query"
        return [Arrow(t, peer_of(f, out), out, dns_label(f), "dns")]
    if area == "dns" and event == "exchange":
        peer = peer_of(f, True)
        try:
            rtt = float(f.get("ms") or 0) / 1000.0
        except ValueError:
            rtt = 0.0
        q = dict(f, event="query")
        outcome = str(f.get("outcome") or "")
        if not outcome.startswith("rcode="):
            return [Arrow(t - rtt, peer, True, dns_label(q), "dns", failed=True)]
        rc, _, n = outcome[6:].partition(" answers=")
        a = dict(f, event="answer", rcode=rc, count=n or None)
        return [Arrow(t - rtt, peer, True, dns_label(q), "dns"),
                Arrow(t, peer, False, dns_label(a), "dns")]
    return []


def derive_responses(entries) -> list[Arrow]:
    """SIP responses implied by registration events, for a log without ``sip recv`` lines.

    ``entries`` are (host time, fields). A REGISTER followed by another REGISTER to the same
    server with no 423 between was challenged (401); ``reg interval_too_brief`` is a 423;
    ``reg registered`` a 200. Only REGISTER can be derived this way.
    """
    out: list[Arrow] = []
    last = None  # (server ip:port) of the REGISTER in flight
    for t, f in entries:
        if f.get("area") != "reg":
            continue
        ev = f.get("event")
        peer = _server_peer(f.get("server"))
        if ev == "register":
            if last is not None and last[0] == peer and not last[1]:
                out.append(Arrow(t - 0.0005, peer, False, "401", "sip"))
            last = [peer, False]
        elif ev == "interval_too_brief" and last is not None:
            out.append(Arrow(t, last[0], False, "423", "sip"))
            last[1] = True
        elif ev == "registered":
            out.append(Arrow(t, peer, False, "200", "sip"))
            last = None
        elif ev == "failover":
            last = None
    return out


def _server_peer(server) -> str:
    """``tcp:uc2.airties.lab/127.0.0.27:5060`` (servers.describe) -> ``127.0.0.27:5060``."""
    s = str(server or "?")
    s = s.split(":", 1)[1] if ":" in s else s
    return s.rsplit("/", 1)[-1]


class LadderFilter(Filter):
    name = "ladder"

    def __init__(self, lane_width: int = LANE_W, stamp=None):
        self.lanes = ["board"]
        self.w = lane_width
        self.stamp = stamp or (lambda t: time.strftime("%H:%M:%S", time.localtime(t))
                               + ".%03d" % int((t % 1) * 1000))

    def _lane(self, name: str, out: list, ev) -> int:
        if name not in self.lanes:
            self.lanes.append(name)
            out.append(ev.__class__(ev.t, "ladder-head", self.header()))
        return self.lanes.index(name)

    def header(self) -> str:
        pad = " " * (len(self.stamp(0)) + 1)
        cells = [name[: self.w - 1].ljust(self.w) for name in self.lanes]
        return (pad + "".join(cells)).rstrip()

    def _row(self, a: int, b: int, label: str) -> str:
        width = self.w * (len(self.lanes) - 1) + 1
        row = [" "] * width
        for i in range(len(self.lanes)):
            row[i * self.w] = "|"
        lo, hi = sorted((a, b))
        x0, x1 = lo * self.w, hi * self.w
        for x in range(x0 + 1, x1):
            row[x] = "-"
        if b > a:
            row[x1 - 1] = ">"
        else:
            row[x0 + 1] = "<"
        span = x1 - x0 - 5
        text = label[: max(span, 0)]
        if text:
            start = x0 + 1 + (x1 - x0 - 1 - len(text)) // 2
            row[start : start + len(text)] = list(text)
        return "".join(row).rstrip()

    def _note(self, text: str) -> str:
        width = self.w * (len(self.lanes) - 1) + 1
        row = [" "] * max(width, 1)
        for i in range(len(self.lanes)):
            row[i * self.w] = "|"
        return ("".join(row[:1]) + " " + text + "".join(row[len(text) + 2 :])).rstrip()

    def __call__(self, ev):
        if ev.kind in PASS:
            return ev
        f = ev.fields
        if not f:
            return None
        out: list = []
        found = arrows(ev.t, f)
        if not found:
            if f.get("level") in ("WARN", "ERROR"):
                out.append(ev.__class__(ev.t, "ladder", "%s %s" % (self.stamp(ev.t), self._note(
                    "%s %s %s" % (f.get("level"), f.get("area"), f.get("event")))), f))
                return out
            return None
        for a in found:
            lane = self._lane(a.peer, out, ev)
            x, y = (0, lane) if a.outgoing else (lane, 0)
            label = a.label + (" (no answer)" if a.failed else "")
            out.append(ev.__class__(a.t, "ladder", "%s %s" % (self.stamp(a.t),
                                                              self._row(x, y, label)), f))
        return out
