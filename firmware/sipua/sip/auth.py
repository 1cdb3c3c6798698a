"""Digest authentication, client side (RFC 2617, RFC 7616 for SHA-256, RFC 3261 §22).

``Auth.answer(req, resp)`` reads the 401 (WWW-Authenticate) or 407 (Proxy-Authenticate)
challenge, puts the matching Authorization / Proxy-Authorization header on the Request
and returns True; the caller bumps CSeq and sends it again in a new transaction. It
returns False when answering again would be pointless: a second challenge to a request that
carried our answer (wrong password; also a server that sends a fresh nonce every time),
unless the server says ``stale=true`` — honoured once per request, so a registrar that calls
every nonce stale cannot loop us; an algorithm or qop we do not do; only an HA1 stored for
another realm or algorithm.

MD5 and SHA-256 (and their -sess forms); qop=auth (auth-int when that is all offered) with
nc and cnonce, or the RFC 2069 form when the server offers no qop. The HA1 may be stored
in the config instead of the password (``ha1``: MD5 of ``user:realm:password``).
"""

from ..compat import forget


class Auth:
    """Credentials of one account and what was last answered (nonce counts). The digest
    code is in ``digest.py``, loaded while a challenge is answered."""

    def __init__(self, user, password=None, ha1=None, realm=None):
        self.user = user
        self.password = password
        self.ha1 = ha1  # MD5 HA1, valid for ``realm`` (any realm when None)
        self.realm = realm
        self._nonce = None
        self._nc = 0
        # The request that carried our last answer: a second challenge *for the same request*
        # means the answer was refused (wrong password), but for one ``stale=true`` (then
        # digest.py sets ``stale``). A new request may meet the same nonce again (Kamailio's
        # nonces change once a second) and answers it.
        self._req = None

    def answer(self, req, resp, cnonce=None):
        from .digest import answer

        try:
            return answer(self, req, resp, cnonce)
        finally:
            forget("sipua.sip.digest")
