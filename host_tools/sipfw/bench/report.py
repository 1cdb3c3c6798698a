"""The bench report: one self-contained HTML page (inline SVG and CSS, no script, no CDN).

* a **ladder diagram** of the DNS and SIP exchange — columns phone, DNS server, then the
  PBX's servers in preference order (uc2, uc1 in the lab, as in the seed's trace) — drawn
  from the board's log through the ladder filter's model (``filters.ladder.arrows``); SIP
  responses come from the stack's ``sip recv`` debug lines, or, in a log without them, from
  the pcap when there is one, else from the registration's own events;
* a **timeline** of the scenario: what the bench did (stop, silence, console commands), what
  the board logged, and the measured intervals as bars with their times in ms;
* the expectations (pass/fail), the figures, and links to the board log and the pcap.
"""

from __future__ import annotations

import html
import json
import os
import time

from ..filters.ladder import Arrow, arrows, derive_responses

ROW_H = 22
COL_W = 190
LEFT = 110
TOP = 56
GAP_S = 1.0  # a pause longer than this is drawn as a break with its length
MAX_ARROWS = 300  # a flood's ladder would be thousands of rows: the first ones tell the story


def _esc(s) -> str:
    return html.escape(str(s), quote=True)


def ladder_arrows(events, pcap_lines=None, servers=()) -> list[Arrow]:
    """Every arrow of a recorded log (Events with .t and .fields), in time order."""
    out: list[Arrow] = []
    have_recv = False
    entries = []
    anchor, last = None, -1
    for ev in events:
        f = getattr(ev, "fields", None)
        if not f:
            continue
        # The board's own clock orders the messages (host stamps come in bursts of lines);
        # it is anchored to host time at each boot. Read from the text: a dns exchange's
        # ``ms=`` key (its round trip) shadows the line's uptime in the parsed fields.
        try:
            bms = int(ev.text.split(" ", 1)[0])
        except ValueError:
            bms = None
        if bms is None:
            t = ev.t
        else:
            if anchor is None or bms < last:
                anchor = ev.t - bms / 1000.0
            last = bms
            t = anchor + bms / 1000.0
        entries.append((t, f))
        if f.get("level") in ("WARN", "ERROR") and f.get("area") in ("reg", "call"):
            # failover decisions and failures: a red note on the ladder
            why = f.get("reason") or ""
            nxt = f.get("next")
            text = "%s %s%s%s" % (f["area"], f["event"], " (%s)" % why if why else "",
                                  " → %s" % _host(nxt) if nxt else "")
            out.append(Arrow(t, _peer(f.get("server")), True, text, "note"))
        if f.get("area") == "sip" and f.get("event") in ("recv", "rx"):
            have_recv = True
        out.extend(arrows(t, f))
    if not have_recv:
        if pcap_lines:
            ips = {ip for _, ip in servers}
            for t, src, _dst, label in pcap_lines:
                if src in ips and label[:1].isdigit():
                    out.append(Arrow(t, "%s:5060" % src, False, label.split()[0], "sip"))
        else:
            out.extend(derive_responses(entries))
    out.sort(key=lambda a: a.t)
    return out


def _peer(server) -> str:
    """``tcp:uc2.airties.lab/127.0.0.27:5060`` -> ``127.0.0.27:5060``."""
    s = str(server or "?")
    s = s.split(":", 1)[1] if ":" in s else s
    return s.rsplit("/", 1)[-1]


def _host(server) -> str:
    s = str(server)
    return s.split(":", 1)[1].split("/")[0] if ":" in s else s


def dns_ip(server: str) -> str:
    """``127.0.0.53``, ``127.0.0.53:5353``, ``[::1]:53`` -> the address (sipua.addr)."""
    from ..paths import use_firmware

    use_firmware()
    from sipua.addr import hostport, is_ip

    try:
        return hostport(server, 53, is_ip)[0]
    except ValueError:
        return server  # a lane still gets drawn, named as the config wrote it


def lanes_for(arrows_, servers, dns) -> list[tuple[str, str]]:
    """(title, ip) columns: phone, DNS server(s), the servers in preference order, others."""
    lanes = [("phone", "")]
    for d in dns:
        lanes.append(("DNS server", dns_ip(d)))
    for name, ip in servers:
        lanes.append((name, ip))
    known = {ip for _, ip in lanes}
    for a in arrows_:
        ip = a.peer.rsplit(":", 1)[0]
        if a.proto == "note" or ip == "?":
            continue
        if ip not in known:
            lanes.append((a.peer, ip))
            known.add(ip)
    return lanes


def ladder_svg(arrows_, lanes) -> str:
    """The ladder as an SVG string: one row per message, breaks for long pauses."""
    col = {ip: i for i, (_, ip) in enumerate(lanes)}
    rows = []  # (y, kind, payload)
    y = TOP
    dropped = max(0, len(arrows_) - MAX_ARROWS)
    arrows_ = arrows_[:MAX_ARROWS]
    t0 = arrows_[0].t if arrows_ else 0.0
    prev = None
    for a in arrows_:
        if prev is not None and a.t - prev > GAP_S:
            rows.append((y, "gap", a.t - prev))
            y += ROW_H
        rows.append((y, "arrow", a))
        y += ROW_H
        prev = a.t
    width = LEFT + COL_W * (len(lanes) - 1) + 120
    if dropped:
        rows.append((y, "more", dropped))
        y += ROW_H
    height = y + 20
    p = ['<svg xmlns="http://www.w3.org/2000/svg" class="ladder" width="%d" height="%d" '
         'viewBox="0 0 %d %d" font-family="monospace" font-size="11">' % (width, height, width,
                                                                            height),
         '<defs><marker id="ah" markerWidth="8" markerHeight="8" refX="7" refY="4" '
         'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#333"/></marker>'
         '<marker id="ahr" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
         '<path d="M0,0 L8,4 L0,8 z" fill="#c00"/></marker></defs>']
    for i, (title, ip) in enumerate(lanes):
        x = LEFT + i * COL_W
        p.append('<text x="%d" y="18" text-anchor="middle" font-weight="bold">%s</text>'
                 % (x, _esc(title)))
        p.append('<text x="%d" y="32" text-anchor="middle" fill="#555">%s</text>'
                 % (x, _esc(ip)))
        p.append('<line x1="%d" y1="40" x2="%d" y2="%d" stroke="#999"/>' % (x, x, height - 10))
    for y, kind, a in rows:
        if kind == "more":
            p.append('<text x="4" y="%d" fill="#777">… and %d more messages (see the log)</text>'
                     % (y + 4, a))
            continue
        if kind == "gap":
            p.append('<text x="4" y="%d" fill="#777">⋯ %.1f s ⋯</text>' % (y + 4, a))
            p.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#ccc" stroke-dasharray="2,4"/>'
                     % (LEFT - 10, y, width - 20, y))
            continue
        ip = a.peer.rsplit(":", 1)[0]
        x_peer = LEFT + col.get(ip, 0) * COL_W
        if a.proto == "note":
            p.append('<text x="4" y="%d" fill="#555">+%.3f s</text>' % (y + 4, a.t - t0))
            if x_peer != LEFT:
                p.append('<text x="%d" y="%d" text-anchor="middle" fill="#c00" '
                         'font-size="16">✗</text>' % (x_peer, y + 5))
            p.append('<text x="%d" y="%d" fill="#c00">%s</text>' % (LEFT + 8, y + 4,
                                                                   _esc(a.label)))
            continue
        x0, x1 = (LEFT, x_peer) if a.outgoing else (x_peer, LEFT)
        color = "#c00" if a.failed else ("#1f5fa8" if a.proto == "dns" else "#333")
        dash = ' stroke-dasharray="5,3"' if not a.outgoing else ""
        marker = "ahr" if a.failed else "ah"
        if a.failed:  # no answer: the arrow stops short, with a cross
            x1 = x0 + (x1 - x0) * 0.8
        p.append('<text x="4" y="%d" fill="#555">+%.3f s</text>' % (y + 4, a.t - t0))
        p.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"%s marker-end="url(#%s)"/>'
                 % (x0, y, x1, y, color, dash, marker))
        label = a.label + (" — no answer" if a.failed else "")
        p.append('<text x="%d" y="%d" text-anchor="middle" fill="%s">%s</text>'
                 % ((x0 + x1) / 2, y - 4, color, _esc(label)))
    p.append("</svg>")
    return "\n".join(p)


def timeline_svg(marks, t0: float, t_end: float) -> str:
    """Actions above the axis, board events below, measured spans as bars with their ms."""
    span = max(t_end - t0, 0.001)
    width, x0 = 1000, 20
    scale = (width - 2 * x0) / span
    acts = [m for m in marks if m["kind"] == "action"]
    board = [m for m in marks if m["kind"] == "board"]
    spans = [m for m in marks if m["kind"] == "span"]
    axis_y = 40 + 16 * len(acts)
    height = axis_y + 30 + 16 * len(board) + 24 * len(spans) + 20
    p = ['<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="%d" height="%d" '
         'viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">' % (width, height, width,
                                                                              height)]

    def X(t):
        return x0 + (t - t0) * scale

    p.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>'
             % (x0, axis_y, width - x0, axis_y))
    step = _nice_step(span)
    k = 0.0
    while k <= span + 1e-9:
        p.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#333"/>'
                 % (X(t0 + k), axis_y - 3, X(t0 + k), axis_y + 3))
        p.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%g s</text>'
                 % (X(t0 + k), axis_y + 15, round(k, 3)))
        k += step
    for i, m in enumerate(acts):
        y = 30 + 16 * i
        p.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#c60"/>'
                 % (X(m["t"]), y + 2, X(m["t"]), axis_y))
        p.append('<text x="%.1f" y="%d" fill="#c60">▼ %s</text>' % (X(m["t"]) + 3, y,
                                                                     _esc(m["what"])))
    for i, m in enumerate(board):
        y = axis_y + 34 + 16 * i
        p.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#1f5fa8"/>'
                 % (X(m["t"]), axis_y, X(m["t"]), y - 9))
        anchor = "end" if X(m["t"]) > width * 0.6 else "start"
        p.append('<text x="%.1f" y="%d" fill="#1f5fa8" text-anchor="%s">%s</text>'
                 % (X(m["t"]) + (-3 if anchor == "end" else 3), y, anchor, _esc(m["what"])))
    base = axis_y + 34 + 16 * len(board)
    for i, m in enumerate(spans):
        y = base + 24 * i
        xa, xb = X(m["t"]), max(X(m["t1"]), X(m["t"]) + 2)
        p.append('<rect x="%.1f" y="%d" width="%.1f" height="12" fill="#7b3" opacity="0.8"/>'
                 % (xa, y, xb - xa))
        p.append('<text x="%.1f" y="%d" font-weight="bold">%s</text>' % (xb + 4, y + 10,
                                                                          _esc(m["what"])))
    p.append("</svg>")
    return "\n".join(p)


def _nice_step(span: float) -> float:
    for s in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600):
        if span / s <= 12:
            return s
    return 1200


CSS = """body{font-family:sans-serif;margin:24px;color:#222}h1{font-size:20px}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
.pass{color:#080;font-weight:bold}.fail{color:#c00;font-weight:bold}
pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:11px}"""


def render(result: dict, events, marks, dns, pcap_lines=None, t_from=None) -> str:
    """The HTML page for one scenario result and its board log."""
    arrows_ = ladder_arrows(events, pcap_lines, [(s["name"], s["ip"]) for s in
                                                  result["servers"]])
    lanes = lanes_for(arrows_, [(s["name"], s["ip"]) for s in result["servers"]], dns)
    times = [m["t"] for m in marks] + [m.get("t1", m["t"]) for m in marks]
    t0 = t_from if t_from is not None else (min(times) if times else 0.0)
    t_end = max(times) if times else t0 + 1
    verdict = "pass" if result["ok"] else "fail"
    rows = "".join('<tr><td class="%s">%s</td><td>%s</td><td>%s</td></tr>'
                   % ("pass" if e["ok"] else "fail", "PASS" if e["ok"] else "FAIL",
                      _esc(e["what"]), _esc("" if e["detail"] is None else e["detail"]))
                   for e in result["expectations"])
    times_rows = "".join("<tr><td>%s</td><td>%.0f ms</td></tr>" % (_esc(k), v)
                         for k, v in result["times_ms"].items())
    links = []
    for key in ("log", "pcap"):
        if result.get(key):
            links.append('<a href="%s">%s</a>' % (_esc(os.path.basename(result[key])), key))
    return """<!DOCTYPE html><html><head><meta charset="utf-8">
<title>sipfw bench: {name}</title><style>{css}</style></head><body>
<h1>sipfw bench — {name}: <span class="{verdict}">{VERDICT}</span></h1>
<p>PBX {pbx}; board {board}; started {started}. {links}</p>
<h2>Measured</h2><table>{times}</table>
<h2>Expectations</h2><table>{rows}</table>
<h2>Timeline</h2>{timeline}
<h2>Ladder (DNS and SIP, from the board's log)</h2>{ladder}
<h2>Figures</h2><pre>{figures}</pre>
</body></html>
""".format(name=_esc(result["scenario"]), css=CSS, verdict=verdict, VERDICT=verdict.upper(),
           pbx=_esc(result["pbx"]), board=_esc(json.dumps(result["board"])),
           started=_esc(result["started"]), links=" ".join(links), times=times_rows or
           "<tr><td>nothing measured</td></tr>", rows=rows,
           timeline=timeline_svg(marks, t0, t_end), ladder=ladder_svg(arrows_, lanes),
           figures=_esc(json.dumps(result["figures"], indent=1)))


def write(report_dir: str, result: dict, run) -> str:
    """report.html, the board log (``<scenario>.log``) and result.json into report_dir."""
    os.makedirs(report_dir, exist_ok=True)
    name = result["scenario"]
    events = run.watch.lines if run.watch is not None else []
    log_path = os.path.join(report_dir, "%s.log" % name)
    with open(log_path, "w") as f:
        for ev in events:
            f.write("%.3f %s\n" % (ev.t, ev.text))
    result["log"] = log_path
    pcap_lines = None
    if result.get("pcap"):
        from .capture import sip_lines

        pcap_lines = sip_lines(result["pcap"])
    page = render(result, events, run.marks, run.pbx.dns, pcap_lines,
                  t_from=events[0].t if events else None)
    path = os.path.join(report_dir, "%s.html" % name)
    with open(path, "w") as f:
        f.write(page)
    with open(os.path.join(report_dir, "%s.json" % name), "w") as f:
        json.dump(result, f, indent=2)
    return path


def load_log(path: str):
    """A saved board log (``<host time> <line>`` per line, as write() saves it) -> Events."""
    from ..monitor import Classifier, Event  # noqa: F401

    classify = Classifier()
    out = []
    with open(path) as f:
        for line in f:
            t, _, text = line.rstrip("\n").partition(" ")
            try:
                out.append(classify(float(t), text))
            except ValueError:
                continue
    return out


__all__ = ("ladder_arrows", "ladder_svg", "lanes_for", "load_log", "render", "time",
           "timeline_svg", "write")
