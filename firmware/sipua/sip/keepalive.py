"""Keep-alive on the registration's flow: a server that dies while the phone is idle.

Every ``sip.keepalive_s`` the agent calls ``ping(reg)`` for each registered leg:

- TCP/TLS: an RFC 5626 §4.4.1 ping, CRLFCRLF, on the connection the binding lives on; the
  server answers CRLF (the pong; any bytes read on the connection count as well).
- UDP: an OPTIONS to the registrar, a transaction like any other (retransmitted at T1); any
  response, even an error, says the server is alive. (The same packets keep a NAT binding
  open, which a CRLF on UDP did before.)

No answer within 2·T1 (1 s by default: two sends of the OPTIONS over UDP) is a missed
keep-alive, and one missed keep-alive is a dead server: the registration fails over at
once by the failover path every REGISTER takes (``reason=keepalive``; the server is held,
the next one in the list gets the REGISTER, the binding left on the dead one is removed,
and failback comes back to it later as after any failover). A send that fails outright (a
connection already gone) means register again at once, as before.

Loaded with the first keep-alive; with ``sip.keepalive_s`` 0 it is never loaded.
"""

from .ctrans import RESPONSE, UNAVAILABLE
from .servers import describe

_PING = b"\r\n\r\n"


def ping(reg):
    srv = reg.server
    if reg.state != "registered" or srv is None or reg._txn is not None:
        return  # not registered, or a REGISTER on its way already checks the server
    stack = reg.stack
    sched = reg.sched
    wait = 2 * stack.t1
    if srv.transport == "udp":
        req = stack.make_request("OPTIONS", "sip:%s" % srv.host, reg.account.aor)

        def done(outcome, resp):
            timer.cancel()
            if outcome != RESPONSE and outcome != UNAVAILABLE:
                _lost(reg, srv)

        def late():
            txn.abandon()
            _lost(reg, srv)

        txn = stack.request(req, srv, done)
        timer = sched.call_later(wait, late)
        return
    flow = reg._flow
    if flow is not None:
        flow.heard = False  # the transport sets it when anything arrives on the connection
    if flow is None or not stack.send_raw(_PING, srv):
        reg.log.warn("reg", "keepalive_failed", account=reg.account.label,
                     server=describe(srv), next="register")
        reg.register_now()
        return

    def check():
        if not flow.heard:
            _lost(reg, srv)

    sched.call_later(wait, check)


def _lost(reg, srv):
    """A missed keep-alive: fail over, unless the registration moved on meanwhile."""
    if reg.server is srv and reg.state == "registered" and reg._txn is None \
            and not reg._stopped:
        reg._tried = []
        reg._failover(srv, "keepalive", None)
