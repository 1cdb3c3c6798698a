"""The parser's reasons (scan.py and msg.py refer to them by number, ``_R_...`` consts), each
after 128 + its number in one bytes constant, where a str object each cost ~45 B of heap;
the text is made only when one is raised (``SipError``). Loaded with the first malformed
message and kept: a phone that only ever meets well-formed SIP never loads it."""

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


def text(n):
    """Reason number ``n`` as a str."""
    t = _REASONS
    i = t.find(bytes((128 + n,))) + 1
    e = i
    while e < len(t) and t[e] < 128:
        e += 1
    return t[i:e].decode()
