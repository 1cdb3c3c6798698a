"""Keep-alive on the registration's flow: a server that dies while the phone is idle.

Every ``sip.keepalive_s`` the agent runs a round (``_keepalives``): ``ping(reg)`` for each
registered leg:

- TCP/TLS: an RFC 5626 §4.4.1 ping, CRLFCRLF, on the connection the binding lives on; the
  server answers CRLF (the pong; any bytes read on the connection count as well). Nothing
  by 2·T1 (1 s by default) is a missed keep-alive: a stream has no loss to allow for.
- UDP: an OPTIONS to the registrar, a transaction like any other; any response, even an
  error, says the server is alive. It is missed when the transaction gives up: the same
  retry budget as a REGISTER's (three sends, 3.5 s by default), so one lost datagram is not
  a dead server. (The same packets keep a NAT binding open, which a CRLF on UDP did before.)

One missed keep-alive is a dead server: the registration fails over at once by the
failover path every REGISTER takes (``reason=keepalive``; the server is held, the next one
in the list gets the REGISTER, the binding left on the dead one is removed, and failback
comes back to it later as after any failover). A send that fails outright (a connection
already gone) means register again at once, as before. Nothing is sent while a REGISTER is
on its way: that checks the server already.

``ping`` returns how long its answer may take (0 when nothing was sent): the agent starts
the next round that much before ``sip.keepalive_s`` is up, so a server that dies just after
answering is noticed within ``sip.keepalive_s``, not that plus the wait.

Loaded for each round of keep-alives and unloaded after it (``agent``); with
``sip.keepalive_s`` 0 never.
"""

from .ctrans import RESPONSE, UNAVAILABLE, budget_ms
from .stack import _target

_PING = b"\r\n\r\n"


def _keepalives(agent):
    """``Agent._keepalives``: one round, then the next one's timer, early by the longest
    answer's wait, so that a server dying just after it answered is noticed within
    ``sip.keepalive_s`` (unless that is short)."""
    wait = 0
    for r in agent.registrations:
        wait = max(wait, ping(r))
    every = agent._ka_ms
    agent._keepalive = agent.sched.call_later(every - wait if every >= 2 * wait else every,
                                              agent._keepalives)


def ping(reg):
    srv = reg.server
    if reg.state != "registered" or srv is None or reg._txn is not None:
        return 0  # not registered, or a REGISTER on its way already checks the server
    stack = reg.stack
    reg.log.debug("reg", "keepalive", account=reg.account.label)
    if srv.transport == "udp":
        req = stack.make_request("OPTIONS", "sip:%s" % srv.host, reg.account.aor)
        stack.request(req, srv, lambda o, r: o == RESPONSE or o == UNAVAILABLE
                      or _lost(reg, srv))
        return budget_ms(stack.retry_count, stack.t1, stack.t2, False)
    flow = reg._flow
    if flow is not None:
        flow.heard = False  # the transport sets it when anything arrives on the connection
    try:
        if flow is None:
            raise OSError
        stack.tp.flow(*_target(srv)).send(_PING)  # outside any transaction
    except OSError:
        reg.register_now()  # the connection is gone: register again (a new one) at once
        return 0

    def check():
        if not flow.heard:
            _lost(reg, srv)

    reg.sched.call_later(2 * stack.t1, check)
    return 2 * stack.t1


def _lost(reg, srv):
    """A missed keep-alive: fail over, unless the registration moved on meanwhile."""
    if reg.server is srv and reg._txn is None and not reg._stopped:
        reg._tried = []
        reg._x("failover", srv, "keepalive", None)
