"""The message ladder: one DEBUG line per SIP message sent or received, in the shape
`sipfw logs --ladder` draws. Imported by the transport only while the sip log area is at
debug, so a phone that does not trace never keeps this code.

    sip tx method=REGISTER cseq="1 REGISTER" dst=127.0.0.27:5060 proto=tcp
    sip rx status=401 reason=Unauthorized cseq="1 REGISTER" src=127.0.0.27:5060 proto=tcp
"""


def trace_tx(log, data, kind, ip, port):
    eol = data.find(b"\r\n")
    first = bytes(data[:eol if eol > 0 else 80])
    kv = {"dst": "%s:%d" % (ip, port), "proto": kind, "cseq": _cseq_of(data)}
    if first.startswith(b"SIP/2.0 "):
        kv["status"] = first[8:11].decode()
        kv["reason"] = first[12:].decode()
    else:
        kv["method"] = first.split(b" ", 1)[0].decode()
    log.debug("sip", "tx", **kv)


def trace_rx(log, m, kind, src):
    peer = "%s:%d" % (src[0], src[1]) if src else "?"
    cseq = "%d %s" % (m.cseq, m.cseq_method)
    if m.status:
        log.debug("sip", "rx", status=m.status, reason=m.reason, cseq=cseq, src=peer,
                  proto=kind)
    else:
        log.debug("sip", "rx", method=m.method, cseq=cseq, src=peer, proto=kind)


def _cseq_of(data):
    """The CSeq value of an encoded message (for the trace line), or ""."""
    i = data.find(b"\r\nCSeq:")
    if i < 0:
        return ""
    e = data.find(b"\r\n", i + 7)
    try:
        return bytes(data[i + 7:e]).strip().decode()
    except ValueError:  # not UTF-8 (echoed from a request): the line is still written
        return "?"
