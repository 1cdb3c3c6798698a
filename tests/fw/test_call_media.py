"""Calls carry audio: the call agent, a fake proxy and an RTP far end on real loopback
sockets (127.0.4.0/24), virtual time. Outgoing and incoming calls exchange a tone both
ways; re-INVITEs move the stream and hold it (both ways); an offer without G.711 gets 488;
the SDP version goes up with each offer or answer of ours."""

import struct
import sys

from fwtest import new_sched, raises, start_stack
from sipua.account import Account
from sipua.log import Logger, parse_line
from sipua.sip import sdp
from sipua.sip.call import ACTIVE, Calls
from sipua.sip.hold import hold
from sipua.sip.reg import Registration
from sipua.sip.servers import ServerSet
from sipua.sip.strans import response
from test_call import DOMAIN, UC2, Proxy
from test_rtp import Far, listen, rtp

PHONE = "127.0.4.1"
FAR_IP = "127.0.4.50"


def audio(source="tone:1000", codecs=("PCMU", "PCMA")):
    from sipua.compat import urandom_u32

    lo = 44000 + 2 * (urandom_u32() % 2000)
    return {"source": source, "sink": "null", "codecs": list(codecs), "ptime": 20,
            "rtp_ports": [lo, lo + 20], "jitter_ms": 40}


class Echo(Far):
    """An RTP far end that sends every audio packet back with its own SSRC and numbers."""

    def __init__(self, sched, ip=FAR_IP):
        super().__init__(sched, ip)
        self.to = None  # (ip, port) to echo to
        self.n = 0

    def poll(self):
        while self.to is not None and self.n < len(self.got):
            d = self.got[self.n][1]
            self.n += 1
            if d[1] & 0x7F in (0, 8):
                self.send(rtp(d[1] & 0x7F, 1000 + self.n, 80000 + 160 * self.n, 0xEC40,
                              d[12:]), self.to[0], self.to[1])


class Phone:
    def __init__(self, cfg=None):
        self.s, _ = new_sched(real_poll=True, real_wait_ms=2)
        self.lines = []
        self.log = Logger(write=self.lines.append, clock=self.s.now, level=10)
        self.stack = start_stack(self.s, PHONE, self.log, retry_count=3)
        self.uc2 = Proxy(self.s, UC2)
        self.far = Echo(self.s)
        self.account = Account({"user": "6903", "password": "6903", "server": DOMAIN})
        servers = ServerSet(self.s)
        servers.update([self.uc2.target()], 3600)
        self.reg = Registration(self.s, self.stack, None, self.account, self.log, servers)
        self.reg.server = servers.targets[0]
        self.calls = Calls(self.s, self.stack, None, self.log, audio=cfg or audio())
        self.calls.add_account(self.account, self.reg)
        self.offers = []  # SDP bodies the proxy got
        self.uc2.peer.answer = self._answer

    def _answer(self, m):
        if m.method == "ACK":
            return None
        if m.method != "INVITE":
            return [response(m, 200, "OK", "p1")]
        offer = sdp.parse(bytes(m.body))
        self.offers.append(bytes(m.body).decode())
        self.far.to = (offer.ip, offer.port)
        d = {"sendonly": "recvonly", "recvonly": "sendonly"}.get(offer.direction,
                                                                  offer.direction)
        body = sdp.build(FAR_IP, self.far.port, (sdp.choose(offer),), d).encode()
        hdrs = [("Contact", "<sip:6904@%s:5090>" % FAR_IP),
                ("Record-Route", "<sip:%s;lr>" % DOMAIN)]
        return [response(m, 200, "OK", "p1", hdrs, body, "application/sdp")]

    def run(self, ms, pred=None):
        end = self.s.now() + ms
        return self.s.run_until(lambda: (pred and pred()) or self.s.now() >= end, ms + 500)

    def events(self, event, area="media"):
        out = [parse_line(x) for x in self.lines]
        return [x for x in out if x and x["area"] == area and x["event"] == event]

    def close(self):
        for c in list(self.calls.calls):
            self.calls._end(c, "test over")
        self.stack.stop()
        self.uc2.stop()
        self.far.close()


def pcm_of(data, pt):
    from sipua.media import g711

    out = bytearray(2 * len(data))
    g711.decode(pt, data, out, len(data))
    return out


def loud(pcm):
    """Not silence: some sample above 1000 in magnitude."""
    return any(4 <= pcm[i] <= 251 for i in range(1, len(pcm), 2))


def frequency(pcm):
    """Hz of the tone in 8 kHz int16 LE samples, from its zero crossings."""
    n = len(pcm) // 2
    prev = 0
    cross = 0
    for i in range(n):
        v = pcm[2 * i] | pcm[2 * i + 1] << 8
        if v & 0x8000:
            v -= 0x10000
        if v and prev and (v > 0) != (prev > 0):
            cross += 1
        if v:
            prev = v
    return cross * 8000 // (2 * n)


def test_an_outgoing_call_sends_and_receives_the_tone():
    p = Phone(audio(codecs=("PCMA", "PCMU")))
    try:
        c = p.calls.call("6904")
        assert p.run(2000, lambda: c.state == ACTIVE)
        # answered: the set-up code, the dialog's making and the offer/answer glue are gone,
        # and the call let go of its INVITE (the transaction runs out on its own)
        assert c.invite is None and c.txn is None and c.dialog is not None
        if sys.implementation.name == "micropython":
            for name in ("callout", "invite", "offer", "sdp", "bye"):
                assert "sipua.sip." + name not in sys.modules, name
        offer = sdp.parse(p.offers[0])
        assert offer.payloads == [8, 0, 101] and offer.port == c.media.port
        assert offer.ip == PHONE and offer.ptime == 20
        rec = listen(c.media)
        p.run(1000, p.far.poll)
        for _ in range(50):
            p.far.poll()
            p.run(20)
        st = p.calls.status()[0]["media"]
        assert st["codec"] == "PCMA" and st["remote"] == "%s:%d" % (FAR_IP, p.far.port)
        audio_in = p.far.audio()
        assert len(audio_in) >= 90 and all(d[1] & 0x7F == 8 for _, d in audio_in)
        sent = b"".join(pcm_of(d[12:], 8) for _, d in audio_in[5:55])
        assert abs(frequency(sent) - 1000) <= 10, frequency(sent)
        heard = b"".join(f for f in rec.frames if loud(f))
        assert len(heard) >= 2 * 160 * 40 and abs(frequency(heard) - 1000) <= 10
        assert st["received"] >= 40 and st["lost"] == 0 and st["sent"] >= 90
        p.calls.hangup()
        assert p.run(2000, lambda: p.events("stop"))
        stop = p.events("stop")[0]
        assert int(stop["sent"]) >= 90 and int(stop["received"]) >= 40
        assert p.run(500, lambda: any(d[-7] == 203 for _, d in p.far.rtcp))  # RTCP BYE
    finally:
        p.close()


def _req(method, p, cseq, body=b"", to_tag=None, branch="z9hG4bKin"):
    ip, port = p.stack.local_ip, p.stack.local_port
    to = "<sip:6903@%s>" % DOMAIN + (";tag=%s" % to_tag if to_tag else "")
    head = ("%s sip:6903@%s:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s:%d;branch=%s%d\r\n"
            "From: <sip:6904@%s>;tag=far1\r\nTo: %s\r\nCall-ID: media-1@%s\r\n"
            "CSeq: %d %s\r\nContact: <sip:6904@%s:%d>\r\nMax-Forwards: 70\r\n"
            % (method, ip, port, UC2, p.uc2.port, branch, cseq, DOMAIN, to, UC2, cseq,
               method, UC2, p.uc2.port))
    if body:
        head += "Content-Type: application/sdp\r\n"
    return (head + "Content-Length: %d\r\n\r\n" % len(body)).encode() + body


def _offer(ip, port, pts=(0, 8), direction="sendrecv"):
    return sdp.build(ip, port, pts, direction, session_id=55).encode()


def _send(p, data):
    from sipua.sip.transport import sockaddr

    p.uc2.peer.sock.sendto(data, sockaddr(p.stack.local_ip, p.stack.local_port))


def _final(p, cseq):
    for _, m in p.uc2.peer.got:
        if m.status and m.status >= 200 and m.cseq == cseq:
            return m
    return None


def test_an_incoming_call_reinvites_move_and_hold_the_stream():
    p = Phone()
    p.uc2.peer.answer = lambda m: None
    far2 = Far(p.s, "127.0.4.51")
    try:
        _send(p, _req("INVITE", p, 1, _offer(FAR_IP, p.far.port)))
        assert p.run(1000, lambda: p.calls.calls)
        c = p.calls.answer()
        assert p.run(1000, lambda: _final(p, 1))
        ok = _final(p, 1)
        ans = sdp.parse(bytes(ok.body))
        assert ok.status == 200 and ans.port == c.media.port and ans.direction == "sendrecv"
        assert " 1 IN IP4" in bytes(ok.body).decode()  # o= version 1
        # media started with our 200: the far end hears us before any ACK
        assert p.run(500, lambda: len(p.far.audio()) >= 5)
        # sip/sdp.py is loaded for each offer or answer, and nothing of it is kept; so are
        # g711.py (the session holds the loops; its null sink needs no decode table),
        # hal/audio.py and rtcp.py
        assert c.offer is None and c.media.enc is not None and c.media.table is None
        if sys.implementation.name == "micropython":
            for name in ("sip.sdp", "media.g711", "hal.audio", "media.rtcp", "media.ctl",
                         "sip.callin", "sip.offer", "sip.invite"):
                assert "sipua." + name not in sys.modules, name
        tag = ok.to_tag
        # re-INVITE: the far end moved to another address and port
        _send(p, _req("INVITE", p, 2, _offer("127.0.4.51", far2.port), tag))
        assert p.run(1000, lambda: _final(p, 2))
        assert " 2 IN IP4" in bytes(_final(p, 2).body).decode()  # o= version 2
        n1 = len(p.far.audio())
        assert p.run(500, lambda: len(far2.audio()) >= 5)
        assert len(p.far.audio()) <= n1 + 1
        assert p.events("update")[-1]["remote"] == "127.0.4.51:%d" % far2.port
        # the far end holds us: we answer recvonly and stop sending
        _send(p, _req("INVITE", p, 3, _offer("127.0.4.51", far2.port, direction="sendonly"),
                      tag))
        assert p.run(1000, lambda: _final(p, 3))
        assert sdp.parse(bytes(_final(p, 3).body)).direction == "recvonly"
        n2 = len(far2.audio())
        p.run(300)
        assert len(far2.audio()) <= n2 + 1
        assert p.calls.status()[0]["media"]["dir"] == "recvonly"
        # an offer without G.711: 488, and the call goes on as it was
        g729 = b"v=0\r\nc=IN IP4 127.0.4.51\r\nm=audio 5004 RTP/AVP 18\r\n" \
               b"a=rtpmap:18 G729/8000\r\n"
        _send(p, _req("INVITE", p, 4, g729, tag))
        assert p.run(1000, lambda: _final(p, 4))
        assert _final(p, 4).status == 488 and c.state == ACTIVE
        # taken off hold: sendrecv again, and the first packet carries the marker
        _send(p, _req("INVITE", p, 5, _offer("127.0.4.51", far2.port), tag))
        assert p.run(1000, lambda: _final(p, 5))
        assert p.run(500, lambda: len(far2.audio()) > n2 + 3)
        assert far2.audio()[n2][1][1] & 0x80
        _send(p, _req("BYE", p, 6, to_tag=tag))
        assert p.run(1000, lambda: p.events("stop"))
        assert p.events("ended", "call")[0]["reason"] == "remote hangup"
    finally:
        far2.close()
        p.close()


def test_console_hold_and_resume_send_reinvites():
    p = Phone()
    try:
        c = p.calls.call("6904")
        assert p.run(2000, lambda: c.state == ACTIVE)
        assert p.run(500, lambda: len(p.far.audio()) >= 5)
        hold(p.calls)
        assert p.run(1000, lambda: len(p.offers) == 2)
        held = sdp.parse(p.offers[1])
        assert held.direction == "sendonly" and held.port == c.media.port
        assert " 2 IN IP4" in p.offers[1] and " 1 IN IP4" in p.offers[0]
        assert p.run(1000, lambda: p.events("update"))
        assert p.calls.status()[0]["held"] is True
        n = len(p.far.audio())
        p.run(300)
        assert len(p.far.audio()) <= n + 1  # held: nothing sent
        hold(p.calls, on=False)
        assert p.run(1000, lambda: len(p.offers) == 3)
        assert sdp.parse(p.offers[2]).direction == "sendrecv" and " 3 IN IP4" in p.offers[2]
        assert p.run(1000, lambda: len(p.far.audio()) > n + 5)
        assert p.far.audio()[n + 1][1][1] & 0x80 or p.far.audio()[n][1][1] & 0x80
        acks = [m for _, m in p.uc2.peer.got if m.method == "ACK"]
        assert len(acks) == 3  # the INVITE's and both re-INVITEs'
    finally:
        p.close()


def test_dtmf_on_a_call_reaches_the_far_end():
    p = Phone()
    try:
        c = p.calls.call("6904")
        assert p.run(2000, lambda: c.state == ACTIVE)
        c.media.dtmf("5")
        assert p.run(1000, lambda: sum(1 for _, d in p.far.got if d[1] & 0x7F == 101) >= 7)
        ev = [d for _, d in p.far.got if d[1] & 0x7F == 101]
        assert ev[0][12] == 5 and struct.unpack(">H", ev[-1][14:16])[0] == 800
    finally:
        p.close()


def test_an_offer_without_g711_is_refused_and_leaves_no_media_behind():
    from sipua.media import rtp as rtpmod

    p = Phone()
    p.uc2.peer.answer = lambda m: None
    try:
        g729 = b"v=0\r\nc=IN IP4 127.0.4.51\r\nm=audio 5004 RTP/AVP 18\r\n"
        _send(p, _req("INVITE", p, 1, g729))
        assert p.run(1000, lambda: _final(p, 1))
        assert _final(p, 1).status == 488 and not p.calls.calls
        assert [x for x in rtpmod._sessions if x.sched is p.s] == []
    finally:
        p.close()


def test_an_invite_without_offer_gets_ours_and_media_starts_on_the_ack():
    p = Phone()
    p.uc2.peer.answer = lambda m: None
    try:
        _send(p, _req("INVITE", p, 1))
        assert p.run(1000, lambda: p.calls.calls)
        c = p.calls.answer()
        assert p.run(1000, lambda: _final(p, 1))
        ok = _final(p, 1)
        offer = sdp.parse(bytes(ok.body))
        assert offer.payloads == [0, 8, 101] and offer.port == c.media.port
        p.run(200)
        assert p.far.got == [] and p.events("start") == []  # no answer yet: no media
        ack = _req("ACK", p, 1, _offer(FAR_IP, p.far.port, (8,)), ok.to_tag, "z9hG4bKack")
        _send(p, ack)
        assert p.run(1000, lambda: len(p.far.audio()) >= 3)
        assert p.events("start")[0]["codec"] == "PCMA" and c.codec == 8
    finally:
        p.close()


class _Agent:
    def __init__(self, calls):
        self.calls = calls


def test_console_dtmf_hold_and_resume():
    from sipua import cmds
    from sipua.console import ConsoleError

    p = Phone()
    a = _Agent(p.calls)
    try:
        e = raises(ConsoleError, cmds.run, "dtmf", a, ["1"], None)
        assert "no call with audio" in str(e)
        assert "no active call" in str(raises(ConsoleError, cmds.run, "hold", a, [], None))
        c = p.calls.call("6904")
        assert p.run(2000, lambda: c.state == ACTIVE)
        assert cmds.run("dtmf", a, ["1#"], None) == {"call": c.id, "digits": "1#"}
        assert "not a DTMF digit" in str(raises(ConsoleError, cmds.run, "dtmf", a, ["1x"],
                                                None))
        assert cmds.run("hold", a, [], None) == {"call": c.id, "held": True}
        assert p.run(1000, lambda: len(p.offers) == 2)
        assert cmds.run("resume", a, [str(c.id)], None) == {"call": c.id, "held": False}
        assert p.run(1000, lambda: len(p.offers) == 3)
        assert p.calls.status()[0]["held"] is False
    finally:
        p.close()


def test_a_refused_hold_leaves_the_call_as_it_was():
    p = Phone()
    answer = p._answer
    p.uc2.peer.answer = lambda m: ([response(m, 491, "Request Pending", "p1")]
                                   if m.method == "INVITE" and m.to_tag else answer(m))
    try:
        c = p.calls.call("6904")
        assert p.run(2000, lambda: c.state == ACTIVE)
        hold(p.calls)
        assert c.media.held  # silent at once, before the answer
        assert p.run(1000, lambda: p.events("reinvite_failed", "call"))
        assert p.events("reinvite_failed", "call")[0]["reason"] == "491"
        assert not c.held and not c.media.held
        n = len(p.far.audio())
        assert p.run(500, lambda: len(p.far.audio()) > n + 5)  # sending again
    finally:
        p.close()
