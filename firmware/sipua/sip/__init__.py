"""sip/: the SIP core — messages, transports, transactions, digest auth, the stack object.

Read along the data flow: ``scan`` (byte-level lexing) → ``hdr`` (header names) → ``msg``
(parse, frame, build) → ``transport`` (UDP/TCP/TLS sockets) → ``ctrans`` / ``strans``
(RFC 3261 §17 client / server transactions) → ``stack`` (the endpoint the agents use).
``auth`` answers digest challenges; ``uas`` is the lazily imported error answering of a
phone's listening port. Nothing here does work at import time.
"""


# The parser's reasons (scan.py, msg.py refer to them by number, ``_R_...`` consts), each
# after 128 + its number: one bytes constant where a str object each cost ~45 B of heap;
# the text is made only when one is raised.
_REASONS = (
    b"\x80Unterminated quoted string\x81Empty parameter\x82Empty parameter value"
    b"\x83Missing < after display name\x84Bad display name\x85Junk after name-addr"
    b"\x86Bad Via protocol\x87Bad Via version\x88Bad Via host\x89Bad Via port"
    b"\x8aMessage Too Large\x8bBad Content-Length\x8cBad start line\x8dNo end of headers"
    b"\x8eHeader line too long\x8fBad folding\x90Header without colon\x91Bad header name"
    b"\x92Too many headers\x93Content-Length larger than body\x94Request Entity Too Large"
    b"\x95Bad status line\x96Bad status code\x97Missing Via\x98Missing CSeq"
    b"\x99Missing or bad Call-ID\x9aMissing From or To\x9bBad Max-Forwards\x9cBad Expires"
)


class SipError(Exception):
    """The one error of this package.

    ``code`` is the SIP status a server answers with (400 malformed, 505 version, 513 too
    large, ...); ``reason`` says why, in words that fit a reason phrase (given as str, or
    as the number of one of ``_REASONS``). ``msg`` is the partly parsed message when the
    header structure was sound enough to answer it.
    """

    def __init__(self, code, reason, msg=None):
        if isinstance(reason, int):
            t = _REASONS
            i = t.find(bytes((128 + reason,))) + 1
            e = i
            while e < len(t) and t[e] < 128:
                e += 1
            reason = t[i:e].decode()
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.msg = msg
