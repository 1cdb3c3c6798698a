"""An INVITE's set-up pieces, loaded with a call's set-up and not kept by a running call:
the dialog it makes (RFC 3261 §12.1: as UAC from our INVITE and its 2xx, as UAS from a
received INVITE), the ACK of a non-2xx final answer and the CANCEL."""

from ..compat import const
from .dialog import Dialog
from .msg import tail
from .scan import parse_name_addr, text

# hdr.py's ids (private: no dict entry; tests/host/test_sip_msg_ids.py checks them)
_H_FROM = const(2)
_H_TO = const(3)
_H_CONTACT = const(7)
_H_RECORD_ROUTE = const(15)


def uac_dialog(req, resp):
    """From our INVITE (a msg.Request) and its 2xx: route set is Record-Route reversed."""
    rr = [text(v) for v in resp.values(_H_RECORD_ROUTE)]
    rr.reverse()
    return Dialog(req.call_id, req.from_uri, req.from_tag, req.to_uri, resp.to_tag, req.cseq,
                  _contact_uri(resp) or req.uri, rr, req.contact)


def uas_dialog(m, local_tag, contact):
    """From a received INVITE (a parsed Msg): route set is Record-Route as received."""
    local = m.name_addr(_H_TO)
    remote = m.name_addr(_H_FROM)
    rr = [text(v) for v in m.values(_H_RECORD_ROUTE)]
    return Dialog(m.call_id, text(local.uri) if local else "", local_tag,
                  text(remote.uri) if remote else "", m.from_tag, 0,
                  _contact_uri(m) or text(remote.uri if remote else b""), rr, contact)


def _contact_uri(m):
    for v in m.values(_H_CONTACT):
        na = parse_name_addr(v, True)
        if na is not None:
            return text(na.uri)
    return None


def _bare(req, method, via, to):
    """``method`` for INVITE ``req`` on its branch: its URI, From, Call-ID, CSeq and Route."""
    head = "%s %s SIP/2.0\r\nVia: %s\r\nMax-Forwards: 70\r\nFrom: %s\r\nTo: %s\r\n" \
           "Call-ID: %s\r\nCSeq: %d %s\r\n" % (method, req.uri, via, req._from(), to,
                                                req.call_id, req.cseq, method)
    parts = [head.encode()]
    tail(parts, [(n, v) for n, v in req.headers if n.lower() == "route"], b"", None)
    return b"".join(parts)


def ack(req, via, to):
    """ACK for a non-2xx final answer (RFC 3261 §17.1.1.3): same branch and Route, To as in
    the response (``to`` bytes/str, with its tag)."""
    return _bare(req, "ACK", via, text(to) if isinstance(to, bytes) else to)


def cancel(req, via):
    """CANCEL for an INVITE request (RFC 3261 §9.1): same branch, URI, tags, Route."""
    return _bare(req, "CANCEL", via, req._to())
