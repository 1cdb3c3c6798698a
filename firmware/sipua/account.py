"""One SIP account as the agent uses it, derived from a validated config entry.

Mirrors the phone's account page in the seed: Register Name is the digest user, User Name
the user part of the address of record, SIP Server the domain, Transport "DNS-SRV" means
"let NAPTR choose" (RFC 3263 §4.1 with no transport given).
"""


class Account:
    # Filled in by start-up's code (startup.account_fields, loaded while accounts start);
    # bare annotations: no class attributes on the board.
    label: str
    user: str
    display_name: str
    auth_user: str
    password: "str | None"
    ha1: "str | None"
    domain: str
    transport: "str | None"  # None: DNS-SRV
    port: "int | None"
    expires: int
    outbound_proxy: "str | None"
    backup_outbound_proxy: "str | None"
    failback_mode: str
    failback_timeout: int
    redundancy: str
    auto_answer: bool
    instance: "str | None"  # ';+sip.instance="<urn:uuid:...>";reg-id=' (RFC 5626), or None

    def __init__(self, cfg, index=0):
        from .startup import account_fields

        account_fields(self, cfg, index)

    @property
    def aor(self):
        """Address of record: ``sip:6903@airties.com``."""
        return "sip%s:%s@%s" % ("s" if self.transport == "tls" else "", self.user, self.domain)

    @property
    def registrar_uri(self):
        return "sip%s:%s" % ("s" if self.transport == "tls" else "", self.domain)
