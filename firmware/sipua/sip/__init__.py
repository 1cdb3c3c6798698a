"""sip/: the SIP core — messages, transports, transactions, digest auth, the stack object.

Read along the data flow: ``scan`` (byte-level lexing) → ``hdr`` (header names) → ``msg``
(parse, frame, build) → ``transport`` (UDP/TCP/TLS sockets) → ``ctrans`` / ``strans``
(RFC 3261 §17 client / server transactions) → ``stack`` (the endpoint the agents use).
``auth`` answers digest challenges; ``uas`` is the lazily imported error answering of a
phone's listening port. Nothing here does work at import time.
"""


class SipError(Exception):
    """The one error of this package.

    ``code`` is the SIP status a server answers with (400 malformed, 505 version, 513 too
    large, ...); ``reason`` says why, in words that fit a reason phrase (given as str, or
    as the number of one of ``reasons.py``'s). ``msg`` is the partly parsed message when the
    header structure was sound enough to answer it.
    """

    def __init__(self, code, reason, msg=None):
        if isinstance(reason, int):
            from .reasons import text  # loaded with the first malformed message

            reason = text(reason)
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.msg = msg
