"""DNS for the phone: wire codec, stub resolver, RFC 3263 locator.

Split along the data flow so a board loads only what it uses: ``wire`` (codec), ``cache``
(TTL + negative cache), ``resolver`` (UDP stub on the scheduler), ``tcp`` (only imported when
an answer comes back truncated), ``static`` (only imported when the config has static
records), ``locator`` (NAPTR -> SRV -> A/AAAA). Nothing here knows SIP messages.
"""

from ..compat import const

# RR types (RFC 1035, 3596, 2782, 3403, 6891) and classes.
A = const(1)
CNAME = const(5)
SOA = const(6)
AAAA = const(28)
SRV = const(33)
NAPTR = const(35)
OPT = const(41)
IN = const(1)

# Response codes the resolver acts on (RFC 1035 §4.1.1).
NOERROR = const(0)
FORMERR = const(1)
SERVFAIL = const(2)
NXDOMAIN = const(3)
REFUSED = const(5)


class DnsError(Exception):
    """The one error of this package: a malformed packet, name or record; a bad config entry."""

