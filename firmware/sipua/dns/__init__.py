"""DNS for the phone: wire codec, stub resolver, RFC 3263 locator.

Split along the data flow so a board loads only what it uses: ``wire`` (codec), ``cache``
(TTL + negative cache), ``resolver`` (UDP stub on the scheduler), ``tcp`` (only imported when
an answer comes back truncated), ``static`` (only imported when the config has static
records), ``locator`` (NAPTR -> SRV -> A/AAAA). Nothing here knows SIP messages.

``Target``/``Targets`` (the locator's answer) live here, not in ``locator``: the SIP side keeps
them for as long as it talks to those servers, and an instance keeps its class's module
alive. Defined here, they let the codec, resolver and locator be unloaded between
resolutions (``agent.Dns``).
"""


class DnsError(Exception):
    """The one error of this package: a malformed packet, name or record; a bad config entry."""


class Target:
    __slots__ = ("transport", "host", "ip", "port", "priority", "weight", "source", "naptr")

    def __init__(self, transport, host, ip, port, priority=0, weight=0, source="a", naptr=None):
        self.transport = transport
        self.host = host  # the SRV target (or the URI host)
        self.ip = ip
        self.port = port
        self.priority = priority
        self.weight = weight
        self.source = source  # "naptr", "srv" or "a"
        self.naptr = naptr  # the SRV name a NAPTR pointed to, for display


class Targets(list):
    """Ordered targets, best first, plus when to look again."""

    ttl = None  # seconds; None: no DNS involved, never expires
    expires_ms = None  # scheduler time at which the TTL runs out
