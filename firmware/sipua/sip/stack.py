"""The SIP endpoint: transports + transaction tables + the hook the UA layer plugs into.

    stack = SipStack(sched, local_ip="127.0.2.1", local_port=5060, log=log)
    stack.start()                                  # listen on UDP and TCP
    req = stack.make_request("REGISTER", "sip:example.com", "sip:6903@example.com")
    req.contact = stack.contact("6903", "udp")
    req.set("Expires", "3600")
    stack.request(req, ("udp", "127.0.0.11", 5060, "uc1.example.com"), on_result)
    # on_result(outcome, response): RESPONSE / UNAVAILABLE (503) / TIMEOUT /
    # TRANSPORT_ERROR, once per transaction (see ctrans.py)
    stack.on_request = fn   # fn(req_msg, server_txn) for INVITE, BYE, ...; answer with
                            # server_txn.respond(code, reason, headers, body, content_type)

The stack itself answers OPTIONS, CANCEL, unknown methods and malformed requests (uas.py);
see docs/architecture.md "SIP core" for the contract.
"""

from .. import log as logmod
from ..compat import drop, forget, urandom_u32
from . import SipError
from .ctrans import ClientTxn
from .msg import LIMITS, Request, parse
from .transport import Transports


def new_branch():
    return "z9hG4bK%08x%08x" % (urandom_u32(), urandom_u32())  # RFC 3261's magic cookie


def new_tag():
    return "%08x" % urandom_u32()


def new_call_id(host="sipfw"):
    return "%08x%08x@%s" % (urandom_u32(), urandom_u32(), host)


class SipStack:
    def __init__(self, sched, local_ip="0.0.0.0", local_port=5060, t1=500, t2=4000, t4=5000,
                 retry_count=3, ca_file=None, log=None, user_agent="sipfw", limits=None):
        self.sched = sched
        self.t1 = t1
        self.t2 = t2
        self.t4 = t4
        self.retry_count = retry_count
        self.log = log = log or logmod.log
        self.user_agent = user_agent
        self.limits = limits or LIMITS
        self.tp = Transports(self, sched, local_ip, local_port, ca_file, self.limits, log)
        self.ctx = {}  # client transactions: branch|method -> ClientTxn
        self.stx = {}  # server transactions: uas.server_key -> ServerTxn
        self._accepted = {}  # Call-ID|CSeq -> INVITE ServerTxn waiting for the ACK of its 2xx
        # server keys of answered INVITEs whose transaction ended early (a 2xx ACKed, or shed
        # for heap or a slot): their retransmissions are dropped until Timer L (RFC 6026's
        # Accepted state, kept without the server side's code; strans.ServerTxn.absorb)
        self.absorbed = set()
        self.on_request = None  # fn(msg, server_txn); server_txn is None for a stray ACK
        self.on_cancel = None  # fn(invite_server_txn) after the stack answered 487
        self.on_flow_lost = None  # fn(flow): a TCP/TLS connection was closed by the peer
        # Server transactions held at once: each keeps its last response for 32 s (Timer
        # J/H); beyond this, answered ones are dropped early, then new requests get 503.
        self.max_stx = 8
        # sip.accept_from "servers": the agent's registrations, whose servers alone may send
        # requests (uas.stranger); None: anyone may
        self.registrations = None

    @property
    def local_ip(self):
        return self.tp.local_ip

    @property
    def local_port(self):
        return self.tp.local_port

    def start(self, tcp=True):
        self.tp.listen(tcp)

    def stop(self):
        """Abandon the client transactions, close every flow and socket (tpextra.py)."""
        self.tp._x("stop")

    # -- client side -------------------------------------------------------------------------
    def make_request(self, method, uri, from_uri, to_uri=None, call_id=None, cseq=1,
                     from_tag=None, **kw):
        """A Request with a fresh Call-ID and From tag unless given (keep both across a
        registration's refreshes; bump ``cseq`` for each new request in the same call)."""
        return Request(method, uri, from_uri, to_uri or from_uri, call_id or new_call_id(),
                       cseq, from_tag or new_tag(), **kw)

    def contact(self, user, transport="udp"):
        """Our Contact for ``transport``: the listening address, which is where a server's
        requests reach the phone."""
        t = "" if transport == "udp" else ";transport=" + transport
        return "<sip:%s@%s:%d%s>" % (user, self.tp.via_host(None), self.local_port, t)

    def request(self, req, target, on_result, on_provisional=None, on_2xx=None):
        """Start a client transaction for ``req`` to ``target`` and return it.

        ``target`` is ``(transport, ip, port[, host])`` or an object with those attributes
        (``host`` is the name for TLS SNI/verification). ``on_result(outcome, response)`` is
        called exactly once; ``on_provisional(response)`` for each 1xx; ``on_2xx(response)``
        for 2xx retransmissions/forks after the first (INVITE only).
        """
        kind, ip, port, host = _target(target)
        try:
            flow = self.tp.flow(kind, ip, port, host)
            via_host = self.tp.via_host(flow)
        except OSError as e:
            from .tpextra import DeadFlow

            forget("sipua.sip.tpextra")
            flow = DeadFlow(e)
            via_host = self.local_ip
        branch = new_branch()
        via = "SIP/2.0/%s %s:%d;rport;branch=%s" % (
            kind.upper(), via_host, flow.local_port, branch)
        t = ClientTxn(self, req, flow, branch, via, on_result, on_provisional, on_2xx)
        self.ctx[t.key] = t
        t.start()
        return t

    # -- receiving ---------------------------------------------------------------------------
    def receive(self, data, flow, src, udp):
        """Every message from every transport comes through here. Never raises."""
        try:
            self._receive(data, flow, src, udp)
        except MemoryError:
            if self.shed():  # try once more with the answered transactions gone
                try:
                    self._receive(data, flow, src, udp)
                except MemoryError:
                    pass

    def _receive(self, data, flow, src, udp):
        try:
            if self.registrations is not None and not data.startswith(b"SIP/"):
                from . import uas  # the server side, loaded with the first request

                if uas.stranger(self, src, data):
                    return
            try:
                m = parse(data, udp, self.limits)
            except SipError as e:
                from .strans import answer_error  # the server side answers it

                answer_error(self, e, flow, src)
                return
            m.src = src
            m.flow = flow
            self.tp.trace_rx(m, flow.kind if flow is not None else "udp", src)
            if m.status:
                t = self.ctx.get("%s|%s" % (m.via.branch, m.cseq_method))
                if t is None:
                    self.log.debug("sip", "stray_response", status=m.status, call_id=m.call_id)
                    return
                t.on_response(m)
                return
            from . import uas  # the server side, loaded with the first request

            uas.handle(self, m)  # the server side unloads itself when idle (strans.server_idle)
        except MemoryError:
            raise
        except Exception as e:  # noqa: BLE001 - whatever arrives, the phone keeps answering
            self.log.exc("sip", "receive_error", e, src=src)

    def shed(self):
        """Out of heap: end the server transactions that have answered (they only absorb
        retransmissions; a retransmitted request is simply answered again, an INVITE's is
        dropped by its key: never a second call) and collect. A 200 still waiting for its
        ACK stays: the call needs that ACK (a late offer's answer is in it). Returns False
        when there was nothing to shed."""
        import gc

        done = [t for t in self.stx.values() if t.final and t.on_ack is None]
        for t in done:
            t.absorb()
        gc.collect()
        self.log.warn("sip", "heap_shed", transactions=len(done))
        return bool(done)

    # -- bookkeeping used by transactions and transports --------------------------------------
    def flow_busy(self, flow):
        for t in self.ctx.values():
            if t.flow is flow:
                return True
        for t in self.stx.values():
            if t.req.flow is flow:
                return True
        return False

    def flow_closed(self, flow, err):
        for t in list(self.ctx.values()):
            if t.flow is flow:
                t.on_transport_error(err or OSError("closed"))
        # A pinned flow (a registration lives on it) closing is news even when the peer
        # closed it cleanly: the registrar can no longer reach the phone.
        if (err is not None or flow.pinned) and self.on_flow_lost is not None:
            self.on_flow_lost(flow)

    def ctx_done(self, t):
        key = t.key
        if self.ctx.get(key) is t:
            drop(self.ctx, key)


def _target(t):
    if isinstance(t, tuple):
        return t[0], t[1], t[2], t[3] if len(t) > 3 else None
    return t.transport, t.ip, t.port, getattr(t, "host", None)

