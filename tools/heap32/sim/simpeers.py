"""The peers inside the simulated network: a DNS server and SIP registrars.

``Dns`` answers from canned answers built on the host (``simzone.ANSWERS``: question bytes
→ a whole answer whose ID is patched per query); anything else gets NXDOMAIN.

``Registrar`` is a registrar and proxy in one, over UDP and TCP on port 5060: REGISTER is
challenged (401, a fresh single-use nonce each time) and the digest checked, an Expires
under ``min_expires`` gets 423, then 200 with the Contact's expires. It also stands for
the far end of a call: INVITE is challenged (407), then answered 100, 180 and 200 with
SDP (Record-Route: itself, so ACK and BYE come back the same way); BYE gets 200. With
``silent_udp`` it drops every datagram (a dead server: the phone must fail over).

``Rtp`` is the far end's media: every RTP packet of the phone's is sent back at once with
the far end's own SSRC, sequence number and timestamp (an echo, so audio flows both ways at
the phone's pace); RTCP on the next port is counted.
"""

import binascii
from socket import deliver, peers

_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
            "l": "content-length"}
_ECHO = (("via", "Via"), ("record-route", "Record-Route"), ("from", "From"),
         ("call-id", "Call-ID"), ("cseq", "CSeq"))


class Dns:
    def __init__(self, ip, answers):
        self.addr = (ip, 53)
        self.answers = answers
        self.queries = 0
        peers[("udp", ip, 53)] = self

    def datagram(self, data, addr, src):
        self.queries += 1
        end = 12
        while data[end]:
            end += data[end] + 1
        question = data[12:end + 5]
        canned = self.answers.get(bytes(question).lower())
        if canned is None:  # NXDOMAIN
            canned = b"\0\0\x81\x83\0\x01\0\0\0\0\0\0" + question
        deliver(data[:2] + canned[2:], addr, src)


def _md5(text):
    import hashlib

    return binascii.hexlify(hashlib.md5(text.encode()).digest()).decode()


def _digest_params(value):
    out = {}
    for part in value.split(" ", 1)[1].split(","):
        k, _, v = part.strip().partition("=")
        out[k.lower()] = v.strip('"')
    return out


def parse(data):
    """(first line, [(lower-case name, value)], body)."""
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    hdrs = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        hdrs.append((_COMPACT.get(name, name), value.strip()))
    return lines[0], hdrs, body


def get(hdrs, name, default=""):
    for n, v in hdrs:
        if n == name:
            return v
    return default


class Registrar:
    def __init__(self, ip, realm, password, silent_udp=False, min_expires=600, far_ip=None):
        self.ip = ip
        self.realm = realm
        self.password = password
        self.silent_udp = silent_udp
        self.min_expires = min_expires
        self.far_ip = far_ip or ip
        self.nonce = None
        self.nonces = 0
        self.seen = {}  # method -> requests received
        self.ok = 0  # REGISTERs answered 200
        self.expires = 0  # granted in the last 200
        self.bufs = {}  # TCP connection (the phone's socket) -> unframed bytes
        peers[("udp", ip, 5060)] = self
        peers[("tcp", ip, 5060)] = self

    # -- transport ---------------------------------------------------------------------------
    def datagram(self, data, addr, src):
        if self.silent_udp:
            self.seen["silent"] = self.seen.get("silent", 0) + 1
            return
        for out in self.handle(data, "udp"):
            deliver(out, addr, src)

    def stream(self, conn, data):
        buf = self.bufs.get(conn) or bytearray()
        self.bufs[conn] = buf
        buf.extend(data)
        while buf:
            if buf[:4] == b"\r\n\r\n":  # RFC 5626 keep-alive ping: pong
                buf[:4] = b""
                conn.answer(b"\r\n")
                continue
            if buf[:2] == b"\r\n":
                buf[:2] = b""
                continue
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            length = int(get(parse(buf[:end + 4])[1], "content-length", "0"))
            if len(buf) < end + 4 + length:
                return
            msg = bytes(buf[:end + 4 + length])
            buf[:end + 4 + length] = b""
            for out in self.handle(msg, "tcp"):
                conn.answer(out)

    def closed(self, conn):
        self.bufs.pop(conn, None)

    # -- SIP ---------------------------------------------------------------------------------
    def handle(self, data, proto):
        first, hdrs, _ = parse(data)
        if first.startswith("SIP/2.0"):
            return ()  # a response of the phone's (to an OPTIONS, say): nothing to do
        method = first.split(" ", 1)[0]
        self.seen[method] = self.seen.get(method, 0) + 1
        if method == "REGISTER":
            return (self._register(first, hdrs),)
        if method == "INVITE":
            if not self._authorized(get(hdrs, "proxy-authorization"), method):
                return (self._challenge(hdrs, 407, "Proxy Authentication Required",
                                        "Proxy-Authenticate"),)
            return self._answer(hdrs, proto)
        if method == "ACK":
            return ()
        return (reply(hdrs, 200, "OK"),)

    def _register(self, first, hdrs):
        if not self._authorized(get(hdrs, "authorization"), "REGISTER"):
            return self._challenge(hdrs, 401, "Unauthorized", "WWW-Authenticate")
        contact = get(hdrs, "contact")
        uri, _, params = contact.partition(">")
        expires = int(get(hdrs, "expires", "3600"))
        for p in params.split(";"):
            if p.strip().startswith("expires="):
                expires = int(p.strip()[8:])
        if 0 < expires < self.min_expires:
            return reply(hdrs, 423, "Interval Too Brief",
                         "Min-Expires: %d\r\n" % self.min_expires)
        self.ok += 1
        self.expires = expires
        return reply(hdrs, 200, "OK", "Contact: %s>;expires=%d\r\n" % (uri, expires))

    def _challenge(self, hdrs, code, reason, header):
        self.nonces += 1
        self.nonce = "%08x" % (self.nonces * 2654435761 & 0xFFFFFFF)
        return reply(hdrs, code, reason, '%s: Digest realm="%s", nonce="%s", qop="auth", '
                     'algorithm=MD5\r\n' % (header, self.realm, self.nonce))

    def _authorized(self, value, method):
        """The digest answers the current nonce (single use) with the right password."""
        if not value or self.nonce is None:
            return False
        p = _digest_params(value)
        if p.get("nonce") != self.nonce:
            return False
        ha1 = _md5("%s:%s:%s" % (p.get("username"), self.realm, self.password))
        ha2 = _md5("%s:%s" % (method, p.get("uri")))
        if "qop" in p:
            want = _md5("%s:%s:%s:%s:%s:%s" % (ha1, self.nonce, p.get("nc"), p.get("cnonce"),
                                             p.get("qop"), ha2))
        else:
            want = _md5("%s:%s:%s" % (ha1, self.nonce, ha2))
        self.nonce = None
        return p.get("response") == want

    def _answer(self, hdrs, proto):
        """The far end: rings, then answers with SDP."""
        tp = ";transport=tcp" if proto == "tcp" else ""
        rr = "Record-Route: <sip:%s:5060%s;lr>\r\n" % (self.ip, tp)
        contact = "Contact: <sip:far@%s:5060%s>\r\n" % (self.far_ip, tp)
        sdp = ("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"
               "m=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
               "a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n"
               % (self.far_ip, self.far_ip, RTP_PORT))
        return (reply(hdrs, 100, "Trying", tag=False),
                reply(hdrs, 180, "Ringing", rr + contact),
                reply(hdrs, 200, "OK", rr + contact + "Content-Type: application/sdp\r\n",
                      sdp))


RTP_PORT = 4000


class Rtp:
    def __init__(self, ip, port=RTP_PORT):
        self.addr = (ip, port)
        self.got = 0  # RTP packets from the phone
        self.sent = 0  # echoed
        self.rtcp = 0
        self.buf = bytearray(12)
        peers[("udp", ip, port)] = self
        peers[("udp", ip, port + 1)] = self

    def datagram(self, data, addr, src):
        if addr[1] != self.addr[1]:
            self.rtcp += 1
            return
        self.got += 1
        self.sent += 1
        n = self.sent
        h = self.buf
        h[0], h[1] = 0x80, data[1] & 0x7F
        h[2], h[3] = n >> 8 & 255, n & 255
        ts = 160 * n
        h[4], h[5], h[6], h[7] = ts >> 24 & 255, ts >> 16 & 255, ts >> 8 & 255, ts & 255
        h[8], h[9], h[10], h[11] = 0x5E, 0xC0, 0xEC, 0x40
        deliver(bytes(h) + data[12:], addr, src)


def reply(hdrs, code, reason, extra="", body="", tag=True):
    """A response to the request with headers ``hdrs``."""
    out = ["SIP/2.0 %d %s\r\n" % (code, reason)]
    for name, canon in _ECHO:
        for n, v in hdrs:
            if n == name:
                out.append("%s: %s\r\n" % (canon, v))
    to = get(hdrs, "to")
    if tag and ";tag=" not in to:
        to += ";tag=far1"
    out.append("To: %s\r\n%sContent-Length: %d\r\n\r\n%s" % (to, extra, len(body), body))
    return "".join(out).encode()
