"""A dialog (RFC 3261 §12): its identifiers, CSeq, route set and remote target.

It builds in-dialog requests (BYE, re-INVITE, the ACK of a 2xx) and says where they go: the
first Route hop (loose routing), or the remote target when there is no route set. The lab
proxy, like most PBXes, Record-Routes its *domain*, so the next hop of a BYE is located the
same way as the registrar and "BYE failover" falls out of the same server list.
"""

from ..compat import const
from ..dns import Target
from .msg import tail
from .scan import parse_name_addr, text
from .uri import parse_uri

# hdr.py's ids (private: no dict entry; tests/host/test_sip_msg_ids.py checks them)
_H_FROM = const(2)
_H_TO = const(3)
_H_CONTACT = const(7)
_H_RECORD_ROUTE = const(15)


class Dialog:
    def __init__(self, call_id, local_uri, local_tag, remote_uri, remote_tag, local_cseq,
                 remote_target, route_set, contact):
        self.call_id = call_id
        self.local_uri = local_uri
        self.local_tag = local_tag
        self.remote_uri = remote_uri
        self.remote_tag = remote_tag
        self.local_cseq = local_cseq
        self.remote_target = remote_target  # str URI from the peer's Contact
        self.route_set = route_set  # list of str name-addrs, in the order to put in Route
        self.contact = contact  # our Contact header value

    @classmethod
    def as_uac(cls, req, resp):
        """From our INVITE (a msg.Request) and its 2xx: route set is Record-Route reversed."""
        rr = [text(v) for v in resp.values(_H_RECORD_ROUTE)]
        rr.reverse()
        return cls(req.call_id, req.from_uri, req.from_tag, req.to_uri, resp.to_tag, req.cseq,
                   _contact_uri(resp) or req.uri, rr, req.contact)

    @classmethod
    def as_uas(cls, m, local_tag, contact):
        """From a received INVITE (a parsed Msg): route set is Record-Route as received."""
        local = m.name_addr(_H_TO)
        remote = m.name_addr(_H_FROM)
        rr = [text(v) for v in m.values(_H_RECORD_ROUTE)]
        return cls(m.call_id, text(local.uri) if local else "", local_tag,
                   text(remote.uri) if remote else "", m.from_tag, 0,
                   _contact_uri(m) or text(remote.uri if remote else b""), rr, contact)

    def request(self, stack, method, body=b"", content_type=None, cseq=None):
        """A msg.Request inside this dialog (R-URI = remote target, Route = route set)."""
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        req = stack.make_request(method, self.remote_target, self.local_uri, self.remote_uri,
                                 call_id=self.call_id, cseq=cseq, from_tag=self.local_tag,
                                 to_tag=self.remote_tag, contact=self.contact, body=body,
                                 content_type=content_type)
        for r in self.route_set:
            req.headers.append(("Route", r))
        return req

    def next_hop(self):
        """The first Route URI (loose routing) or the remote target: where an in-dialog
        request goes, as a dns.Target whose host is to be located (``ip`` None)."""
        uri = self.route_set[0] if self.route_set else self.remote_target
        if uri.startswith("<") or '"' in uri or " " in uri:
            na = parse_name_addr(uri.encode())
            uri = text(na.uri)
        u = parse_uri(uri.encode())
        transport = u.params.get("transport")
        if isinstance(transport, (bytes, bytearray)):
            transport = text(transport)
        if transport:
            transport = transport.lower()
        elif u.scheme == "sips":
            transport = "tls"
        return Target(transport, u.host, None, u.port)


def _contact_uri(m):
    for v in m.values(_H_CONTACT):
        na = parse_name_addr(v, True)
        if na is not None:
            return text(na.uri)
    return None


# -- the ACK and CANCEL of an INVITE: built here, loaded with calls, not with registration ---
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
