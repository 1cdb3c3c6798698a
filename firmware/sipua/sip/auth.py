"""Digest authentication, client side (RFC 2617, RFC 7616 for SHA-256, RFC 3261 §22).

``Auth.answer(req, resp)`` reads the 401 (WWW-Authenticate) or 407 (Proxy-Authenticate)
challenge, puts the matching Authorization / Proxy-Authorization header on the Request
and returns True; the caller bumps CSeq and sends it again in a new transaction. It
returns False when answering again would be pointless: a second challenge for a nonce we
already answered (wrong password), unless the server says ``stale=true``; an algorithm or
qop we do not do; only an HA1 stored for another realm or algorithm.

MD5 and SHA-256 (and their -sess forms); qop=auth (auth-int when that is all offered) with
nc and cnonce, or the RFC 2069 form when the server offers no qop. The HA1 may be stored
in the config instead of the password (``ha1``: MD5 of ``user:realm:password``).
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


class Auth:
    """Credentials of one account and what was last answered (nonce counts)."""

    def __init__(self, user, password=None, ha1=None, realm=None):
        self.user = user
        self.password = password
        self.ha1 = ha1  # MD5 HA1, valid for ``realm`` (any realm when None)
        self.realm = realm
        self._nonce = None
        self._nc = 0
        # The request that answered ``_nonce``: a second challenge with the same nonce *for
        # the same request* means the answer was refused (wrong password). A new request may
        # meet the same nonce again (Kamailio's nonces change once a second) and answers it.
        self._req = None

    def answer(self, req, resp, cnonce=None):
        if resp.status == 407:
            chal_h, auth_name = _H_PROXY_AUTHENTICATE, "Proxy-Authorization"
        elif resp.status == 401:
            chal_h, auth_name = _H_WWW_AUTHENTICATE, "Authorization"
        else:
            return False
        for value in resp.all(chal_h):
            c = parse_challenge(value)
            if c is None:
                continue
            if req is self._req and c.get("nonce") == self._nonce and \
                    (c.get("stale") or "").lower() != "true":
                return False  # this request's answer to that very nonce was refused
            hv = self.header(c, req.method, req.uri, req.body, cnonce)
            if hv is not None:
                self._req = req
                req.set(auth_name, hv)
                return True
        return False

    def header(self, c, method, uri, body=b"", cnonce=None):
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
        if self.password is not None:
            ha1 = h(alg, "%s:%s:%s" % (self.user, realm, self.password))
        elif self.ha1 and alg == "MD5" and (self.realm is None or self.realm == realm):
            ha1 = self.ha1
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
        if nonce != self._nonce:
            self._nonce = nonce
            self._nc = 0
        self._nc += 1
        nc = "%08x" % self._nc
        cnonce = cnonce or "%08x%08x" % (urandom_u32(), urandom_u32())
        if sess:
            ha1 = h(alg, "%s:%s:%s" % (ha1, nonce, cnonce))
        resp = digest(alg, ha1, nonce, method, uri, qop, nc, cnonce, body)
        out = 'Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", ' \
              "algorithm=%s" % (_q(self.user), _q(realm), _q(nonce), uri, resp, alg_name)
        if qop:
            out += ', qop=%s, nc=%s, cnonce="%s"' % (qop, nc, cnonce)
        opaque = c.get("opaque")
        if opaque is not None:
            out += ', opaque="%s"' % _q(opaque)
        return out


def _q(s):
    return s.replace("\\", "\\\\").replace('"', '\\"')

