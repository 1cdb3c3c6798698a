"""The handset agent: from a validated config to running registrations and calls.

    config ─► Account ─► Locator (dns/) ─► ServerSet ─► Registration / Calls
                                                          │
                                   SipStack (transports, transactions) ◄─┘

One ``Agent`` owns one SIP stack (one listening port), one locator (``Dns``) shared by every
account, a registration per account (two in ``concurrent`` redundancy) and the call agent.
``console_commands()`` gives the console its ``status``, ``call``, ``answer``, ``hangup``,
``reg``, ``unreg`` and ``dns`` commands.

Load only what runs: a board's .mpy modules live in RAM once imported, and a stock ESP32
has ~100 KB for everything. The DNS codec, resolver and locator are needed while a
resolution runs (once per TTL), the call, dialog and SDP code while a call exists; both are
imported on demand and unloaded again when idle (``compat.forget``).
"""

from . import VERSION
from . import log as logmod
from .account import Account
from .compat import forget

DNS_IDLE_MS = 2000  # unload DNS this long after the last resolution: coalesces bursts
CALLS_IDLE_MS = 32000  # unload the call code 64·T1 after the last call: late retransmissions
_DNS_MODULES = ("locator", "resolver", "static", "tcp", "cache", "wire")
_CALL_MODULES = ("call", "dialog", "sdp")


class Dns:
    """The RFC 3263 locator with the ``Locator.locate`` interface, loaded for a resolution and
    unloaded ``DNS_IDLE_MS`` after the last one ends (its cache goes with it: the targets it
    gave carry their TTL, and the registration re-resolves when that runs out). Built once
    at once, so a DNS configuration the resolver refuses fails ``Agent.start``, not a
    resolution later in the scheduler."""

    def __init__(self, sched, cfg, local_ip=None, log=None):
        self.sched = sched
        self.log = log  # the agent's, handed to the resolver (None: the global one)
        self.cfg = cfg  # the config's "dns" section
        self.local_ip = local_ip  # DNS leaves by the interface SIP uses
        self._locator = None
        self._busy = 0
        self._idle = None
        self._load()
        self._idle = sched.call_later(DNS_IDLE_MS, self._unload)

    def _load(self):
        loc = self._locator
        if loc is None:
            from .dns.locator import Locator
            from .dns.resolver import from_config

            res = from_config(self.sched, self.cfg, self.local_ip, self.log)
            loc = self._locator = Locator(self.sched, res)
        return loc

    def locate(self, target, on_done, **kw):
        loc = self._load()
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        self._busy += 1

        def done(targets, err):
            self._busy -= 1
            if not self._busy:
                self._idle = self.sched.call_later(DNS_IDLE_MS, self._unload)
            on_done(targets, err)

        return loc.locate(target, done, **kw)

    def _unload(self):
        self._idle = None
        if self._busy:
            return
        self._locator = None
        for name in _DNS_MODULES:
            forget("sipua.dns." + name)
        forget("sipua.addr")  # the locator's and the outbound proxy's


class Agent:
    def __init__(self, sched, cfg, log=None, heap_free=None, ip=None):
        self.sched = sched
        self.cfg = cfg
        self.log = log or logmod.log
        self.heap_free = heap_free
        self.ip = ip  # the address the network gave us; sip.local_ip overrides it
        self.stack = None
        self.locator = None
        self.calls = None  # sip.call.Calls while a call exists (loaded with the first one)
        self.registrations = []  # every leg of every account
        self._lines = []  # (account, registration) for the call agent
        self._next_call_id = 1  # call ids go on across unloads of the call code
        self._calls_idle = None
        self._keepalive = None  # the keep-alive timer; before it, the accounts' deferred start
        self.started_at = sched.now()

    # -- life cycle --------------------------------------------------------------------------
    def start(self, delay=0):
        """Everything that can fail first (DNS servers, the SIP port); the registrations
        then start at once, or ``delay`` ms later (a reload: after the old agent's
        un-REGISTERs)."""
        from .sip.stack import SipStack

        cfg = self.cfg
        sip = dict(cfg.get("sip") or ())  # the schema's keys are SipStack's parameters
        sip["local_ip"] = sip.get("local_ip") or self.ip or "0.0.0.0"  # "": the network's
        sip["ca_file"] = sip.get("ca_file") or None
        sip["user_agent"] = sip.get("user_agent") or "sipfw/" + VERSION
        self._ka_ms = sip.pop("keepalive_s", 25) * 1000  # the agent's, not the stack's
        self.stack = SipStack(self.sched, log=self.log, **sip)
        self.stack.start()
        self.locator = Dns(self.sched, cfg.get("dns") or {}, self.stack.local_ip, self.log)
        self.stack.on_request = self._on_request
        self.stack.on_cancel = self._on_cancel
        self.stack.on_flow_lost = self._flow_lost
        self.log.info("agent", "listening", ip=self.stack.local_ip, port=self.stack.local_port,
                      accounts=len(cfg.get("accounts") or ()))
        if delay:
            self._keepalive = self.sched.call_later(delay, self._start_accounts)
        else:
            self._start_accounts()

    def _start_accounts(self):
        for i, acc_cfg in enumerate(self.cfg.get("accounts") or ()):
            if acc_cfg.get("enabled", True) is False:
                continue
            self._start_account(Account(acc_cfg, i))
        self._keepalive = None
        if self._ka_ms:
            self._keepalive = self.sched.call_later(self._ka_ms, self._keepalives)

    def _start_account(self, account):
        from .sip.reg import Registration
        from .sip.servers import ServerSet

        servers = ServerSet(self.sched)
        primary = Registration(self.sched, self.stack, self.locator, account, self.log, servers)
        self.registrations.append(primary)
        self._lines.append((account, primary))
        if account.redundancy == "concurrent":
            # The backup leg registers at the best server the primary leg is not using.
            def avoid(p=primary):
                s = p.server or servers.preferred()
                return s.ip if s is not None else None

            backup = Registration(self.sched, self.stack, self.locator, account, self.log,
                                  servers, leg=1, avoid=avoid)
            self.registrations.append(backup)
            primary.start()
            self.sched.call_later(200, backup.start)  # after the primary picked its server
        else:
            primary.start()

    # -- the call agent, loaded with the first call -----------------------------------------
    def _call_agent(self):
        calls = self.calls
        if calls is None:
            from .sip.call import Calls

            calls = self.calls = Calls(self.sched, self.stack, self.locator, self.log,
                                       first_id=self._next_call_id)
            for account, reg in self._lines:
                calls.add_account(account, reg)
            calls.on_idle = self._calls_ended
        elif self._calls_idle is not None:
            self._calls_idle.cancel()
            self._calls_idle = None
        return calls

    def _on_request(self, m, stx):
        calls = self._call_agent()
        calls.on_request(m, stx)
        if not calls.calls:  # refused, or not a call at all: nothing keeps the code loaded
            self._calls_ended()

    def _on_cancel(self, stx):
        if self.calls is not None:
            self.calls.on_cancel(stx)

    def _calls_ended(self):
        if self._calls_idle is None:
            self._calls_idle = self.sched.call_later(CALLS_IDLE_MS, self._unload_calls)

    def _unload_calls(self):
        self._calls_idle = None
        calls = self.calls
        if calls is None or calls.calls:
            return
        self._next_call_id = calls.next_id
        self.calls = None
        self.stack.on_request = self._on_request
        self.stack.on_cancel = self._on_cancel
        for name in _CALL_MODULES:
            forget("sipua.sip." + name)

    # -- keeping the flow to the registrar alive (RFC 5626 §3.5.1, §4.4) ---------------------
    def _keepalives(self):
        """Every ``sip.keepalive_s``: a ping (CRLF, OPTIONS on UDP) per registered leg keeps
        NAT bindings and connections open and finds a server that died (sip/keepalive.py)."""
        from .sip.keepalive import ping

        for r in self.registrations:
            ping(r)
        forget("sipua.sip.keepalive")  # 1 KB of code, needed for a second every 25 s
        self._keepalive = self.sched.call_later(self._ka_ms, self._keepalives)

    def _flow_lost(self, flow):
        for r in self.registrations:
            r.flow_lost(flow)

    def stop(self, unregister=True):
        if self._keepalive is not None:
            self._keepalive.cancel()
        for r in self.registrations:
            r.stop(unregister)
        if self.stack is not None:
            if unregister:
                self.sched.call_later(500, self.stack.stop)  # let the un-REGISTERs leave first
            else:
                self.stack.stop()

    # -- console -----------------------------------------------------------------------------
    def status(self, args=None):
        """``status [gc]``: with ``gc`` the heap is collected first, so heap_free is the live
        heap's complement rather than that minus whatever garbage has piled up since the
        last collection (the bench's baseline for "heap back where it was")."""
        if args and args[0] == "gc":
            import gc

            gc.collect()
        accounts = []
        for r in self.registrations:
            s = r.status()
            if r.leg:
                s["leg"] = "backup"
            accounts.append(s)
        return {"accounts": accounts, "calls": self.calls.status() if self.calls else [],
                "heap_free": self.heap_free() if self.heap_free else None,
                "uptime_ms": self.sched.now() - self.started_at}

    def console_commands(self):
        return {
            "status": (self.status, "status [gc]: accounts, calls, heap (gc: collect first)"),
            "call": (self._cmd_call, "call URI|USER: start a call"),
            "answer": (self._cmd_answer, "answer [ID]: answer the ringing call"),
            "hangup": (self._cmd_hangup, "hangup [ID]: end, cancel or reject a call"),
            "reg": (self._cmd_reg, "reg [LABEL]: re-register now"),
            "unreg": (self._cmd_unreg, "unreg [LABEL]: remove the registration"),
            "dns": (self._cmd_dns, "dns NAME [TRANSPORT]: run the RFC 3263 locator"),
        }

    def _cmd_call(self, args):
        from .console import ConsoleError

        if not args:
            raise ConsoleError("usage: call URI")
        calls = self._call_agent()
        try:
            c = calls.call(args[0])
        except ValueError as e:
            if not calls.calls:
                self._calls_ended()
            raise ConsoleError(str(e)) from None
        return {"call": c.id, "state": c.state}

    def _cmd_answer(self, args):
        from .console import ConsoleError

        c = self.calls.answer(int(args[0]) if args else None) if self.calls else None
        if c is None:
            raise ConsoleError("no ringing call")
        return {"call": c.id, "state": c.state}

    def _cmd_hangup(self, args):
        from .console import ConsoleError

        c = self.calls.hangup(int(args[0]) if args else None) if self.calls else None
        if c is None:
            raise ConsoleError("no call")
        return {"call": c.id, "state": c.state}

    def _legs(self, args):
        from .console import ConsoleError

        legs = [r for r in self.registrations if not args or r.account.label == args[0]]
        if not legs:
            raise ConsoleError("no such account")
        return legs

    def _cmd_reg(self, args):
        legs = self._legs(args)
        for r in legs:
            r.register_now()
        return {"accounts": [r.account.label for r in legs]}

    def _cmd_unreg(self, args):
        legs = self._legs(args)
        for r in legs:
            r.stop(unregister=True)
        return {"accounts": [r.account.label for r in legs]}

    def _cmd_dns(self, args):
        """Runs the locator and answers when it is done: the answer line comes later."""
        from .console import ConsoleError

        if not args:
            raise ConsoleError("usage: dns NAME [udp|tcp|tls]")
        name = args[0]
        transport = args[1] if len(args) > 1 else None

        def done(targets, err):
            self.log.info("dns", "located", name=name, error=err or "",
                          targets=" ".join("%s:%s:%s:%d" % (t.transport, t.host, t.ip, t.port)
                                           for t in (targets or ())))

        self.locator.locate(name, done, transport=transport)
        return {"pending": True, "name": name}
