"""Digest computation for ``auth.Auth`` (RFC 2617, RFC 7616 for SHA-256, RFC 3261 §22):
loaded for a challenge and forgotten after it, as a phone answers one per registration
refresh (and per challenged call request); see auth.py for what is answered and when.
"""

import binascii
import hashlib

from ..compat import const, urandom_u32
from .scan import params, token_end, ws

# hdr.py's ids (private: no dict entry here; a host test checks they match)
_H_WWW_AUTHENTICATE = const(10)
_H_PROXY_AUTHENTICATE = const(11)


def h(alg, s):
    """Lower-case hex digest of str/bytes ``s``."""
    if isinstance(s, str):
        s = s.encode()
    f = getattr(hashlib, "sha256" if alg == "SHA-256" else "md5", None)
    if f is None and alg != "SHA-256":  # a port without md5 in C
        from .md5 import md5 as f
    return binascii.hexlify(f(s).digest()).decode()


def parse_challenge(value):
    """``Digest realm="x", nonce="y", ...`` (bytes) -> dict of lower-case params, or None
    for another scheme."""
    i = ws(value, 0)
    e = token_end(value, i)
    if value[i:e].lower() != b"digest":
        return None
    p, _ = params(value, e, 44)  # comma-separated auth-params
    return p


def digest(alg, ha1, nonce, method, uri, qop=None, nc=None, cnonce=None, body=b""):
    """The ``response`` value; ``ha1`` already folded for -sess by the caller."""
    if qop == "auth-int":
        ha2 = h(alg, "%s:%s:%s" % (method, uri, h(alg, body)))
    else:
        ha2 = h(alg, "%s:%s" % (method, uri))
    if qop:
        return h(alg, "%s:%s:%s:%s:%s:%s" % (ha1, nonce, nc, cnonce, qop, ha2))
    return h(alg, "%s:%s:%s" % (ha1, nonce, ha2))


def answer(auth, req, resp, cnonce=None):
    """``Auth.answer``: see auth.py."""
    if resp.status == 407:
        chal_h, auth_name = _H_PROXY_AUTHENTICATE, "Proxy-Authorization"
    elif resp.status == 401:
        chal_h, auth_name = _H_WWW_AUTHENTICATE, "Authorization"
    else:
        return False
    again = req is auth._req  # this request carried our answer and is challenged again
    for value in resp.all(chal_h):
        c = parse_challenge(value)
        if c is None:
            continue
        # Our answer was refused (a wrong password, or a server that never takes one): only
        # a stale nonce (right password, old nonce) earns one more try, once per request.
        if again and (auth.stale or (c.get("stale") or "").lower() != "true"):
            return False
        hv = header(auth, c, req.method, req.uri, req.body, cnonce)
        if hv is not None:
            auth.stale = again  # set with _req: read only when _req is this request
            auth._req = req
            req.set(auth_name, hv)
            return True
    return False


def header(auth, c, method, uri, body=b"", cnonce=None):
    """The Authorization value answering challenge dict ``c``, or None."""
    realm = c.get("realm") or ""
    nonce = c.get("nonce")
    alg_name = c.get("algorithm") or "MD5"
    alg = alg_name.upper()
    sess = alg.endswith("-SESS")
    if sess:
        alg = alg[:-5]
    if nonce is None or alg not in ("MD5", "SHA-256"):
        return None
    if auth.password is not None:
        ha1 = h(alg, "%s:%s:%s" % (auth.user, realm, auth.password))
    elif auth.ha1 and alg == "MD5" and (auth.realm is None or auth.realm == realm):
        ha1 = auth.ha1
    else:
        return None
    offered = [x.strip() for x in (c.get("qop") or "").split(",") if x.strip()]
    if not offered:
        qop = None
    elif "auth" in offered:
        qop = "auth"
    elif "auth-int" in offered:
        qop = "auth-int"
    else:
        return None
    if nonce != auth._nonce:
        auth._nonce = nonce
        auth._nc = 0
    auth._nc += 1
    nc = "%08x" % auth._nc
    cnonce = cnonce or "%08x%08x" % (urandom_u32(), urandom_u32())
    if sess:
        ha1 = h(alg, "%s:%s:%s" % (ha1, nonce, cnonce))
    resp = digest(alg, ha1, nonce, method, uri, qop, nc, cnonce, body)
    out = 'Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", ' \
          "algorithm=%s" % (_q(auth.user), _q(realm), _q(nonce), uri, resp, alg_name)
    if qop:
        out += ', qop=%s, nc=%s, cnonce="%s"' % (qop, nc, cnonce)
    opaque = c.get("opaque")
    if opaque is not None:
        out += ', opaque="%s"' % _q(opaque)
    return out


def _q(s):
    return s.replace("\\", "\\\\").replace('"', '\\"')

