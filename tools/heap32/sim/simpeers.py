"""The peers inside the simulated network: a DNS server and SIP registrars.

``Dns`` answers from canned answers built on the host (``simzone.ANSWERS``: question bytes
→ a whole answer whose ID is patched per query); anything else gets NXDOMAIN.

``Registrar`` is a registrar and proxy in one, over UDP and TCP on port 5060: REGISTER is
challenged (401, a fresh single-use nonce each time) and the digest checked, an Expires
under ``min_expires`` gets 423, then 200 with the Contact's expires. It also stands for
the far end of a call: INVITE is challenged (407), then answered 100, 180 and 200 with
SDP (Record-Route: itself, so ACK and BYE come back the same way); BYE gets 200. With
``silent_udp`` it drops every datagram (a dead server: the phone must fail over).

It also stands for a far end calling the phone (``call_phone``): the far end's INVITE as
the proxy forwards it down the phone's registered connection (its Via on top, Record-Route,
the far end's Contact, an SDP offer of PCMU on ``Rtp``); the phone's 200 is ACKed at once,
and ``hangup_phone`` sends the far end's BYE. The phone's answers are counted in ``seen``.

``Rtp`` is the far end's media: every RTP packet of the phone's is sent back at once with
the far end's own SSRC, sequence number and timestamp (an echo, so audio flows both ways at
the phone's pace); RTCP on the next port is counted.
"""

import binascii
from socket import deliver, peers

_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
            "l": "content-length"}
_CSEQ_IN = ("1 INVITE", "2 BYE")  # the far end's requests in a call to the phone
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
        self.calls_in = 0  # calls to the phone (call_phone)
        self.call_in = None  # the one in progress: [connection, To, Contact, far user]
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

    def ping_phone(self, phone_ip, phone_port, n):
        """An OPTIONS to the phone down its registration's TCP connection, as a registrar
        pings a registered Contact (Kamailio's nathelper, say); the phone's answer is
        counted in ``seen`` as ``answered_200``."""
        conn = list(self.bufs)[-1]  # the phone's socket: the connection it registered on
        conn.answer(("OPTIONS sip:%s:%d;transport=tcp SIP/2.0\r\n"
                     "Via: SIP/2.0/TCP %s:5060;branch=z9hG4bKping%d\r\n"
                     "From: <sip:ping@%s>;tag=ping\r\nTo: <sip:%s:%d>\r\n"
                     "Call-ID: ping-%d@%s\r\nCSeq: %d OPTIONS\r\nMax-Forwards: 70\r\n"
                     "Content-Length: 0\r\n\r\n"
                     % (phone_ip, phone_port, self.ip, n, self.realm, phone_ip, phone_port,
                        n, self.ip, n)).encode())

    # -- SIP ---------------------------------------------------------------------------------
    def handle(self, data, proto):
        first, hdrs, _ = parse(data)
        if first.startswith("SIP/2.0"):  # the phone's answer to our OPTIONS ping or call
            return self._phone_said(first[8:11], hdrs)
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

    def _phone_said(self, code, hdrs):
        """A response of the phone's: counted (``answered_200`` for a ping; with its method
        for our call: ``answered_180_INVITE``); its 200 to our INVITE is ACKed, to our BYE
        ends the call. (No name or short string here the firmware also uses: interned by
        the simulation first, it would hide the firmware's qstr; see simdrive.options_ping.)"""
        cseq = get(hdrs, "cseq")
        mine = cseq in _CSEQ_IN
        key = "answered_" + code + ("_" + cseq[2:] if mine else "")
        self.seen[key] = self.seen.get(key, 0) + 1
        c = self.call_in
        if not mine or code != "200":
            return ()
        if cseq != _CSEQ_IN[0]:  # the BYE's
            self.call_in = None
            return ()
        m = get(hdrs, "contact")
        c[1], c[2] = get(hdrs, "to"), m[1:m.find(">")]  # the dialog's, as the phone says
        return (self._far("ACK " + c[2], c[1], "1 ACK"),)

    def _far(self, line, to, cseq, extra="", body=""):
        """The far end's request as this proxy forwards it to the phone (RFC 3261 §16.6)."""
        n = "%d%s" % (self.calls_in, line[:3])  # a branch per request: call, method
        return ("%s SIP/2.0\r\nVia: SIP/2.0/TCP %s:5060;branch=z9hG4bKpx%s\r\n"
                "Via: SIP/2.0/TCP %s:5060;branch=z9hG4bKfar%s\r\nMax-Forwards: 69\r\n"
                "From: <sip:%s@%s>;tag=farin\r\nTo: %s\r\nCall-ID: in%d@%s\r\n"
                "CSeq: %s\r\n%sContent-Length: %d\r\n\r\n%s"
                % (line, self.ip, n, self.far_ip, n, self.call_in[3], self.realm, to,
                   self.calls_in, self.far_ip, cseq, extra, len(body), body)).encode()

    def call_phone(self, phone_ip, phone_port, user, far_user):
        """The far end (``far_user``) calls ``user``: its INVITE down the phone's
        registration's TCP connection, as a proxy forwards it; the call's dialog is kept
        in ``call_in`` (connection, the phone's To and Contact, the far end's user) until
        the phone answers the BYE."""
        conn = list(self.bufs)[-1]  # the phone's socket: the connection it registered on
        self.calls_in += 1
        self.call_in = [conn, None, None, far_user]
        conn.answer(self._far(
            "INVITE sip:%s@%s:%d;transport=tcp" % (user, phone_ip, phone_port),
            "<sip:%s@%s>" % (user, self.realm), _CSEQ_IN[0],
            "Record-Route: <sip:%s:5060;transport=tcp;lr>\r\nContact: <sip:%s@%s:5060;"
            "transport=tcp>\r\nContent-Type: application/sdp\r\n"
            % (self.ip, far_user, self.far_ip), _sdp(self.far_ip)))

    def hangup_phone(self):
        """The far end hangs up: its BYE to the phone's Contact, down the same connection."""
        c = self.call_in
        c[0].answer(self._far("BYE " + c[2], c[1], _CSEQ_IN[1]))

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
        return (reply(hdrs, 100, "Trying", tag=False),
                reply(hdrs, 180, "Ringing", rr + contact),
                reply(hdrs, 200, "OK", rr + contact + "Content-Type: application/sdp\r\n",
                      _sdp(self.far_ip)))


RTP_PORT = 4000


def _sdp(ip):
    """The far end's SDP: PCMU and telephone-event at ``Rtp``."""
    return ("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"
            "m=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n" % (ip, ip, RTP_PORT))


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
