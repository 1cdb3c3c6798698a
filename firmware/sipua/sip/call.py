"""Calls: outgoing INVITE with INVITE failover, incoming INVITE, CANCEL, BYE with failover.

    calls = Calls(sched, stack, locator, log)
    calls.add_account(account, registration)     # one per account; stack.on_request is ours
    calls.call("6904")  /  calls.answer()  /  calls.hangup()
    calls.status()                               # for the console

An outgoing INVITE goes first to the server holding the account's registration (server
affinity), then down the account's server list: a server that is silent (retry budget),
refuses, or answers 503 before any provisional response is held and the next one is tried
("INVITE failover" in the seed). Once a server sent a 1xx it owns the call. A BYE goes to the
dialog's next hop; when that fails the other servers are tried ("BYE failover"), and when
the hop was an address, without the route set, so the new proxy routes by the remote target.
"""

from .. import log as logmod
from ..compat import forget, urandom_u32
from .servers import describe, target_key
from .stack import _target, new_branch

CALLING = "calling"
RINGING = "ringing"
ACTIVE = "active"
ENDED = "ended"

# audio.* when no config gave them (tests that build Calls alone): config.py's defaults
_AUDIO = {"source": "silence", "sink": "null", "codecs": ("PCMU", "PCMA"), "ptime": 20,
          "rtp_ports": (40000, 40100), "jitter_ms": 40}
# forgotten when the last call ends (the package stays: it keeps g711's compiled loops); one
# string, not fifteen (a long string constant is an object on the heap while we are loaded)
_MEDIA = "callout invite bye media.rtp media.rtcp media.dtmf media.ctl media.g711 " \
    "media.g711p media.jbuf hal.audio hal.plain hal.tone hal.wav hal.i2s"


def _gone(names):
    """Forget the modules named short: "offer sdp" (sip.*), "media.rtp" (sipua.*)."""
    forget(*[("sipua." if "." in n else "sipua.sip.") + n for n in names.split()])


class Call:
    def __init__(self, call_id, line, direction, remote):
        self.id = call_id
        self.line = line
        self.direction = direction
        self.remote = remote
        self.state = CALLING if direction == "out" else RINGING
        self.server = None
        self.dialog = None
        self.codec = None
        self.started = 0
        self.reason = None
        self.invite = None  # our INVITE (msg.Request) until it is answered
        self.txn = None  # the INVITE client transaction (until the 2xx), or the server one
        # (while ringing: callin.answer drops it with the 200, any other final ends the call)
        self.provisional = False
        self.cancel_pending = False
        self.ack = None  # the ACK of our 2xx, kept to answer 2xx retransmissions
        self.tried = []  # the INVITE's servers (None once answered)
        self.auth = None  # digest state of the INVITE (dropped once answered: it holds the
        # request), then of a re-INVITE or BYE: made for their first challenge (digest())
        self.answer_sdp = None  # our SDP answer to an incoming offer
        self.media = None  # media.rtp.Session: its ports are in our SDP
        self.offer = None  # the far end's SDP (sdp.Media) of an incoming INVITE, until used
        self.sdir = None  # the direction of our answer to it; None: our 200 carries the offer
        self.sid = urandom_u32() & 0x7FFFFFFF  # o= session id, and its version:
        self.ver = 0  # + 1 for each offer or answer of ours
        self.held = False  # we hold the far end (console hold)

    def digest(self):
        """The call's digest state (sip.auth.Auth), made when first asked for."""
        if self.auth is None:
            from .auth import Auth

            acc = self.line.account
            self.auth = Auth(acc.auth_user, acc.password, acc.ha1)
        return self.auth

    def status(self, now):
        return {"id": self.id, "account": self.line.account.label, "direction": self.direction,
                "state": self.state, "remote": self.remote, "codec": self.codec,
                "server": describe(self.server) if self.server else None,
                "duration_ms": now - self.started if self.state == ACTIVE else 0,
                "held": self.held, "media": self.media.stats() if self.media else None}


class Line:
    """One account as the call agent sees it."""

    def __init__(self, account, registration):
        self.account = account
        self.registration = registration

    def targets(self, first=None):
        """Servers for a new request: the one holding the registration (or the call) first
        — unless it just failed and is held: then the next call does not wait for it again."""
        servers = self.registration.servers
        order = list(servers.ordered())
        lead = first or self.registration.server
        if lead is not None and not servers.held(lead):
            order = [lead] + [t for t in order if target_key(t) != target_key(lead)]
        return order


class Calls:
    def __init__(self, sched, stack, locator, log=None, max_calls=2, first_id=1, audio=None):
        self.sched = sched
        self.audio = audio = audio or _AUDIO
        from . import sdp  # loaded for each offer or answer and forgotten after it

        self.ours = sdp.payloads(audio["codecs"])  # payload types in our order
        _gone("sdp")
        self.stack = stack
        self.locator = locator
        self.log = log or logmod.log
        self.max_calls = max_calls
        self.lines = []
        self.calls = []
        self.next_id = first_id
        self.on_idle = None  # fn() when the last call has ended (the agent unloads us)
        stack.on_request = self.on_request
        stack.on_cancel = self.on_cancel

    def add_account(self, account, registration):
        self.lines.append(Line(account, registration))

    # -- console -----------------------------------------------------------------------------
    def status(self):
        now = self.sched.now()
        return [c.status(now) for c in self.calls]

    def find(self, call_id=None, state=None):
        for c in self.calls:
            if (call_id is None or c.id == call_id) and (state is None or c.state == state):
                return c
        return None

    # -- outgoing ----------------------------------------------------------------------------
    def call(self, dest, line_index=0):
        """Start a call to ``dest`` (a SIP URI, or a user part of the account's domain)."""
        from .callout import dial  # forgotten once the call is answered or ends

        return dial(self, dest, line_index)

    def _reack(self, c):
        """The INVITE transaction's on_2xx: a retransmitted 2xx means our ACK was lost."""
        return lambda r: c.ack is None or _send_stateless(self.stack, c.ack, c.server)

    # -- offers, answers, media ---------------------------------------------------------------
    def sdp(self, name, *args):
        """offer.py's ``name`` (offer, answer, answer_in, go, acked, reinvite) on this call
        agent: loaded with sdp.py for it and forgotten after it."""
        from . import offer

        try:
            return getattr(offer, name)(self, *args)
        finally:
            _gone("offer sdp")

    # -- hanging up --------------------------------------------------------------------------
    def hangup(self, call_id=None):
        from .bye import hangup  # forgotten when the last call has ended

        return hangup(self, call_id)

    def _stop(self, c, reason):
        m = c.media
        if m is not None:
            c.media = None
            m.stop(reason)

    def _end(self, c, reason):
        was_active = c.started and c.state in (ACTIVE, ENDED)
        c.state = ENDED
        c.reason = reason
        self._stop(c, reason)
        self.log.info("call", "ended", call=c.id, reason=reason,
                      duration_ms=self.sched.now() - c.started if was_active else 0)
        if c in self.calls:
            self.calls.remove(c)
        if not self.calls:
            _gone(_MEDIA)  # the media code is loaded with the next call's SDP
            if self.on_idle is not None:
                self.on_idle()

    # -- incoming: callin.py, loaded for each and forgotten after it ------------------------
    def _in(self, name, *args):
        from . import callin

        try:
            return getattr(callin, name)(self, *args)
        finally:
            _gone("callin invite")

    def on_request(self, m, stx):
        """The stack hands us INVITE, BYE and ACK (OPTIONS and errors it answers itself)."""
        self._in("request", m, stx)

    def answer(self, call_id=None):
        return self._in("answer", call_id)

    def on_cancel(self, stx):
        self._in("cancelled", stx)

    def _on_ack(self, stx, c):
        stx.on_ack = lambda m: self.sdp("acked", c, m)


# -- the agent's call agent (agent.Agent: made with the first call, unloaded when idle) ----
def _call_agent(agent):
    """``Agent._call_agent``: the agent's ``Calls``, made with the first call; a call coming
    while the code waits to be unloaded keeps it."""
    calls = agent.calls
    if calls is None:
        calls = agent.calls = Calls(agent.sched, agent.stack, agent.locator, agent.log,
                                    first_id=agent._next_call_id, audio=agent.audio)
        for account, reg in agent._lines:
            calls.add_account(account, reg)
        calls.on_idle = agent._calls_ended
    elif agent._calls_idle is not None:
        agent._calls_idle.cancel()
        agent._calls_idle = None
    return calls


def _unload_calls(agent):
    """``agent.CALLS_IDLE_MS`` after the last call: the call code forgotten (this module
    with it), the stack's requests back to the agent, the call ids going on."""
    agent._calls_idle = None
    calls = agent.calls
    if calls is None or calls.calls:
        return
    agent._next_call_id = calls.next_id
    agent.calls = None
    st = agent.stack
    st.on_request = agent._on_request
    st.on_cancel = agent._on_cancel
    _gone("call callout callin invite offer bye dialog sdp uri")


# -- what only a call sends (kept out of stack.py, which a registered phone keeps loaded) ---
def _send_stateless(stack, req, target):
    """Send a request outside any transaction with a new branch: the ACK of a 2xx
    (RFC 3261 §13.2.2.4), which the dialog — not a transaction — owns and repeats for each
    retransmitted 2xx. A transport failure is left to the dialog's timers."""
    kind, ip, port, host = _target(target)
    try:
        flow = stack.tp.flow(kind, ip, port, host)
        via = "SIP/2.0/%s %s:%d;rport;branch=%s" % (kind.upper(), stack.tp.via_host(flow),
                                                   flow.local_port, new_branch())
        flow.send(req.encode(via, stack.user_agent))
    except OSError:
        pass
