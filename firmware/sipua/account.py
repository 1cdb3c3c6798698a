"""One SIP account as the agent uses it, derived from a validated config entry.

Mirrors the phone's account page in the seed: Register Name is the digest user, User Name
the user part of the address of record, SIP Server the domain, Transport "DNS-SRV" means
"let NAPTR choose" (RFC 3263 §4.1 with no transport given).
"""


class Account:
    def __init__(self, cfg, index=0):
        self.index = index
        self.label = cfg.get("label") or cfg.get("user") or "account%d" % index
        self.user = cfg["user"]
        self.display_name = cfg.get("display_name") or ""
        self.auth_user = cfg.get("register_name") or self.user
        self.password = cfg.get("password") or None
        self.ha1 = cfg.get("ha1") or None
        self.domain = cfg["server"]
        transport = cfg.get("transport") or "dns-srv"
        self.transport = None if transport == "dns-srv" else transport
        # With DNS-SRV the port comes from SRV records: the page's "Port" only pins an
        # explicit transport to an address lookup (RFC 3263 §4.2).
        self.port = (cfg.get("port") or None) if self.transport else None
        self.expires = cfg.get("expires") or 3600
        self.outbound_proxy = cfg.get("outbound_proxy") or None
        self.backup_outbound_proxy = cfg.get("backup_outbound_proxy") or None
        fb = cfg.get("failback") or {}
        self.failback_mode = fb.get("mode") or "new-requests"
        self.failback_timeout = fb.get("timeout") or 3600
        self.redundancy = cfg.get("redundancy") or "successive"
        self.auto_answer = bool(cfg.get("auto_answer"))
        self.enabled = cfg.get("enabled", True)

    @property
    def aor(self):
        """Address of record: ``sip:6903@airties.com``."""
        return "sip%s:%s@%s" % ("s" if self.transport == "tls" else "", self.user, self.domain)

    @property
    def registrar_uri(self):
        return "sip%s:%s" % ("s" if self.transport == "tls" else "", self.domain)

    def locate_plan(self):
        """What to hand the locator, in order: [(host, port, transport), ...].

        With an outbound proxy, requests go to the proxy (and its backup after it) instead of
        the domain's own servers (RFC 3263 §4: the proxy is the next hop).
        """
        if self.outbound_proxy:
            from .addr import hostport  # unloaded with the DNS code

            plan = [hostport(self.outbound_proxy) + (self.transport,)]
            if self.backup_outbound_proxy:
                plan.append(hostport(self.backup_outbound_proxy) + (self.transport,))
            return plan
        return [(self.domain, self.port, self.transport)]

