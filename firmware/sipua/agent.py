"""The handset agent: from a validated config to running registrations and calls.

    config ─► Account ─► Locator (dns/) ─► ServerSet ─► Registration / Calls
                                                          │
                                   SipStack (transports, transactions) ◄─┘

One ``Agent`` owns one SIP stack (one listening port), one locator (``Dns``) shared by every
account, a registration per account (two in ``concurrent`` redundancy) and the call agent.
``console_commands()`` gives the console its ``status``, ``call``, ``answer``,
``hangup``, ``dtmf``, ``hold``, ``resume``, ``reg``, ``unreg`` and ``dns`` commands (their
bodies in ``cmds.py``, loaded when one runs; ``status()`` runs its body there too).

Load only what runs: a board's .mpy modules live in RAM once imported, and a stock ESP32
has ~100 KB for everything. The DNS codec, resolver and locator are needed while a
resolution runs (once per TTL), the call, dialog and SDP code while a call exists; both are
imported on demand and unloaded again when idle (``compat.forget``).
"""

from . import hal
from . import log as logmod
from .compat import const, forget

_LINK_MS = const(1000)  # the link watch: a lost link is noticed within 2 s

# Unload DNS this long after the last resolution: on the next turn of the loop, so the
# REGISTER exchange that follows a resolution (digest, messages, flows) does not stack on
# ~19 KB of DNS code — the registration's peak drops to the resolution's. Resolutions that
# follow one another inside their callbacks (a registration's plan, both legs of a
# concurrent account) still share one load.
DNS_IDLE_MS = 0
CALLS_IDLE_MS = 32000  # unload the call code 64·T1 after the last call: late retransmissions


class Dns:
    """The RFC 3263 locator with the ``Locator.locate`` interface, loaded for a resolution and
    unloaded ``DNS_IDLE_MS`` after the last one ends (its cache goes with it: the targets it
    gave carry their TTL, and the registration re-resolves when that runs out). Built once
    at once, so a DNS configuration the resolver refuses fails ``Agent.start``, not a
    resolution later in the scheduler. The loading and unloading is the DNS code's own
    (``dns.locator.locate``): nothing of it stays between resolutions."""

    def __init__(self, sched, cfg, local_ip=None, log=None):
        self.sched = sched
        self.log = log  # the agent's, handed to the resolver (None: the global one)
        self.cfg = cfg  # the config's "dns" section
        self.local_ip = local_ip  # DNS leaves by the interface SIP uses
        self._locator = None
        self._busy = 0
        self._idle = None
        self.locate(None, None)

    def locate(self, target, on_done, **kw):
        from .dns.locator import locate

        return locate(self, target, on_done, kw)


def avoider(primary, servers):
    """A concurrent account's backup leg registers at the best server its primary leg is
    not using: ``avoid()`` names that server's address."""

    def avoid():
        s = primary.server or servers.preferred()
        return s.ip if s is not None else None

    return avoid


class Agent:
    def __init__(self, sched, cfg, log=None, heap_free=None, ip=None):
        self.sched = sched
        self.cfg = cfg  # None once the accounts have started
        self.log = log or logmod.log
        self.heap_free = heap_free
        self.ip = ip  # the address the network gave us; sip.local_ip overrides it
        self.stack = None
        self.locator = None
        self.calls = None  # sip.call.Calls while a call exists (loaded with the first one)
        self.audio = None  # the config's "audio" section (media of each call)
        self.registrations = []  # every leg of every account
        self._lines = []  # (account, registration) for the call agent
        self._next_call_id = 1  # call ids go on across unloads of the call code
        self._calls_idle = None
        self._keepalive = None  # the keep-alive timer; before it, the accounts' deferred start
        self._ka_ms = 0  # sip.keepalive_s in ms, set at start (0: no keep-alives)
        self.net = None  # the link's state and its watch's timer (netwatch.py), set at start
        self.started_at = sched.now()

    # -- life cycle --------------------------------------------------------------------------
    def start(self, delay=0):
        """Everything that can fail first (DNS servers, the SIP port); the registrations
        then start at once, or ``delay`` ms later (a reload: after the old agent's
        un-REGISTERs). Run once per agent: the code is start-up's (``startup.agent_start``),
        and the config is dropped once the accounts have started."""
        from .startup import agent_start

        agent_start(self, delay)

    # -- the call agent, loaded with the first call -----------------------------------------
    def _call_agent(self):
        """The call agent, made with the first call (``sip.call._call_agent``)."""
        from .sip.call import _call_agent

        return _call_agent(self)

    def _on_request(self, m, stx):
        calls = self._call_agent()
        calls.on_request(m, stx)
        if not calls.calls:  # refused, or not a call at all: nothing keeps the code loaded
            self._calls_ended()

    def _on_cancel(self, stx):
        if self.calls is not None:
            self.calls.on_cancel(stx)

    def _calls_ended(self):
        """The last call ended: the call code goes CALLS_IDLE_MS later unless another call
        comes (``sip.call._unload_calls``)."""
        if self._calls_idle is None:
            from .sip.call import _unload_calls

            self._calls_idle = self.sched.call_later(CALLS_IDLE_MS, _unload_calls, self)

    # -- keeping the flow to the registrar alive (RFC 5626 §3.5.1, §4.4) ---------------------
    def _keepalives(self):
        """Every ``sip.keepalive_s``: a ping (CRLF, OPTIONS on UDP) per registered leg keeps
        NAT bindings and connections open and finds a server that died; the round and the
        next one's timer are sip/keepalive.py's, loaded for it (1 KB of code, needed for a
        second every 25 s)."""
        from .sip.keepalive import _keepalives

        _keepalives(self)
        forget("sipua.sip.keepalive")

    # -- the link and the local address (netwatch.py when something changed) ---------------
    def _watch(self):
        net = self.net
        net[7] = self.sched.call_later(_LINK_MS, self._watch)
        ip = hal.link(self.stack.tp.local_ip, net[8])  # the address now; None: link down
        if ip != net[0] or not net[1]:  # down, back, or another address
            from .netwatch import step

            step(self, ip)
            if ip is not None:
                forget("sipua.netwatch")

    def _flow_lost(self, flow):
        for r in self.registrations:
            r.flow_lost(flow)

    def stop(self, unregister=True):
        """Stop the registrations (un-REGISTER first when asked) and the stack: start-up's
        code (``startup.stop``), run at a reload or when a start failed."""
        from .startup import stop

        stop(self, unregister)

    # -- console -----------------------------------------------------------------------------
    def status(self, args=None):
        """``status [gc]``: accounts, calls, link, heap (the body is cmds.py's, loaded for it
        and forgotten after, as for every console command)."""
        from .console import _run

        return _run("status", self, args, None)

    def console_commands(self):
        """The console's agent commands (start-up's ``console_commands``): ``status`` here, the
        others in ``cmds.py``."""
        from .startup import console_commands

        return console_commands(self)
