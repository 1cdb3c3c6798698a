"""A dialog (RFC 3261 §12): its identifiers, CSeq, route set and remote target.

Made by ``invite.py`` with a call's set-up; it builds in-dialog requests (BYE, re-INVITE,
the ACK of a 2xx); where they go (the first Route hop, loose routing, or the remote target
when there is no route set) is ``bye.py``'s ``next_hop``. The lab proxy, like most PBXes,
Record-Routes its *domain*, so the next hop of a BYE is located the same way as the
registrar and "BYE failover" falls out of the same server list.
"""


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
