"""``--ladder``: SIP and DNS exchanges as a sequence diagram in the terminal.

Built only from log lines, so it works on any recorded log too. It reads the events the
SIP and DNS layers log (``sip tx`` / ``sip rx`` / ``dns query`` / ``dns answer``) and is
tolerant of missing or differently named keys: the peer is the first of ``dst``/``to``/
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

from .base import Filter

LANE_W = 24
TX_KEYS = ("dst", "to", "peer", "remote", "server", "addr", "host", "ip")
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


def dns_label(f: dict) -> str:
    qtype = f.get("type") or f.get("qtype") or ""
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
        area, event = f.get("area"), f.get("event")
        out: list = []
        if area == "sip" and event in ("tx", "rx"):
            label = sip_label(f)
        elif area == "dns" and event in ("query", "answer"):
            label = dns_label(f)
        elif f.get("level") in ("WARN", "ERROR"):
            out.append(ev.__class__(ev.t, "ladder", "%s %s" % (self.stamp(ev.t), self._note(
                "%s %s %s" % (f.get("level"), area, event))), f))
            return out
        else:
            return None
        outgoing = event in ("tx", "query")
        lane = self._lane(peer_of(f, outgoing), out, ev)
        a, b = (0, lane) if outgoing else (lane, 0)
        out.append(ev.__class__(ev.t, "ladder", "%s %s" % (self.stamp(ev.t),
                                                            self._row(a, b, label)), f))
        return out
