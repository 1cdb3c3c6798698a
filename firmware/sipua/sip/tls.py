"""TLS for SIP over TCP, imported only when a TLS target is used (the ssl module and its
context cost heap a UDP-only phone should keep).

The server certificate and host name are verified by default (CERT_REQUIRED, the CA file
named by ``sip.ca_file``; SNI and the name check use the target's host name: the SRV target,
as RFC 5922 says). A refusal closes the flow (the transaction reports TRANSPORT_ERROR, the
registration tries the next server; nothing falls back to plain TCP or to an unverified
connection) and ``refused`` logs why: unknown_ca, wrong_name, expired, not_yet_valid. The
handshake runs non-blocking: CPython drives it with ``do_handshake()``; MicroPython does it
inside the first read/write, which raise EAGAIN (or return None) until it is done.
"""

import errno
import ssl

from ..compat import const
from ..sched import POLLIN, POLLOUT

_OPEN = const(1)  # transport.py's flow states
_HANDSHAKE = const(3)


def context(ca_file):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # MicroPython's client default is CERT_NONE: verification must be asked for.
    setattr(ctx, "verify_mode", ssl.CERT_REQUIRED)  # noqa: B010 - not in the port stubs
    if ca_file:
        _load_ca(ctx, ca_file)
    elif hasattr(ctx, "load_default_certs"):
        ctx.load_default_certs()  # CPython host tools: the system store
    else:
        raise OSError("sip.ca_file is needed for TLS")
    return ctx


def _load_ca(ctx, path):
    if not hasattr(ssl, "create_default_context"):  # MicroPython: DER blobs via cadata
        import binascii

        with open(path, "rb") as f:
            data = f.read()
        if b"-----BEGIN" not in data:
            ctx.load_verify_locations(cadata=data)
            return
        # A PEM file (one or more certificates): this port's mbedTLS binding takes DER.
        for block in data.split(b"-----BEGIN CERTIFICATE-----")[1:]:
            b64 = block.split(b"-----END")[0].replace(b"\r", b"").replace(b"\n", b"")
            ctx.load_verify_locations(cadata=binascii.a2b_base64(b64))
        return
    ctx.load_verify_locations(cafile=path)


# What a refusal says (CPython's OpenSSL, MicroPython's mbedTLS), lower-cased = the reason:
# one string, split only when a certificate was refused
_WHY = "expired=expired future=not_yet_valid yet=not_yet_valid name=wrong_name " \
       "issuer=unknown_ca trusted=unknown_ca self=unknown_ca"


def refused(tp, f, err):
    """A TLS flow closed on ``err``: when it was the certificate, one WARN line saying why
    (``not_yet_valid`` on a board whose clock was never set, too)."""
    text = str(err).lower()
    for w in _WHY.split():
        i = w.find("=")
        if w[:i] in text:
            tp._log("warn", "tls_refused", server="%s:%d" % f.peer, host=f.host,
                    reason=w[i + 1:])
            return


def start(tp, f):
    """Transport ``tp``'s connection ``f`` just connected: wrap it, start the handshake.
    False when the flow was closed (no CA file, no ssl module, handshake refused)."""
    try:
        if tp._tls_ctx is None:
            tp._tls_ctx = context(tp.ca_file)
        s = tp._tls_ctx.wrap_socket(f.sock, server_hostname=f.host or f.peer[0],
                                    do_handshake_on_connect=False)
    except Exception as e:  # noqa: BLE001 - a CA file that cannot be read, no ssl module...
        tp._close(f, OSError(errno.EIO, str(e)))
        return False
    tp._by_sock.pop(f.sock, None)
    tp.sched.unwatch(f.sock)
    f.sock = s
    tp._by_sock[s] = f
    tp.sched.watch(s, POLLIN | POLLOUT, tp._on_flow)
    f.state = _HANDSHAKE
    return step(tp, f)


def step(tp, f):
    """Drive ``f``'s handshake on; True once it is done (queued data then goes out)."""
    try:
        done = _handshake(f.sock)
    except Exception as e:  # noqa: BLE001 - certificate or hostname not verified, reset, ...
        tp._close(f, OSError(errno.ECONNABORTED, str(e)))
        return False
    if done:
        f.state = _OPEN
        from .stream import flush

        flush(tp, f)
    return done


def _handshake(sock):
    """True when the handshake is complete; False while it waits for the peer."""
    go = getattr(sock, "do_handshake", None)
    if go is None:
        return True  # MicroPython: finished inside the first write/read
    try:
        go()
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):  # type: ignore
        return False
    return True
