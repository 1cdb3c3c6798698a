"""SDP offer/answer (RFC 3264) for one G.711 audio stream.

The handset offers its codecs in the order of ``audio.codecs`` (PCMU, PCMA), telephone-event
(RFC 4733, events 0-15), ``a=ptime`` and a direction; as answerer it takes the first codec
in the offerer's order that it has, or tells the caller to answer 488, and mirrors the
direction (the offerer's sendonly is our recvonly: a far end holding us is not sent to).
The o= line's version goes up with each new offer or answer of ours (the call keeps it).
"""

from ..compat import urandom_u32

# payload type -> rtpmap; static types need no rtpmap, but we always write one for clarity
CODECS = ((0, "PCMU/8000"), (8, "PCMA/8000"))
DTMF_PT = 101


class SdpError(ValueError):
    pass


class Media:
    """What one side said about its audio: address, port, payload types, direction."""

    __slots__ = ("ip", "port", "payloads", "rtpmap", "direction", "dtmf_pt", "ptime")

    def __init__(self):
        self.ip = None
        self.port = 0
        self.payloads = []
        self.rtpmap = {}
        self.direction = "sendrecv"
        self.dtmf_pt = None
        self.ptime = 0  # a=ptime, 0 when not given


def parse(body):
    """The first audio stream of an SDP body; SdpError if there is none usable."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        body = bytes(body).decode()
    media = None
    session_ip = None
    for line in body.split("\n"):
        line = line.rstrip("\r")
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:]
        if kind == "m":
            if media is not None:
                break  # only the first audio stream matters to a handset
            parts = value.split()
            if len(parts) < 4 or parts[0] != "audio":
                continue
            media = Media()
            try:
                media.port = int(parts[1])
                media.payloads = [int(p) for p in parts[3:]]
            except ValueError:
                raise SdpError("bad m= line") from None
        elif kind == "c":
            parts = value.split()
            if len(parts) == 3 and parts[0] == "IN":
                if media is None:
                    session_ip = parts[2]
                else:
                    media.ip = parts[2]
        elif kind == "a" and media is not None:
            if value in ("sendrecv", "sendonly", "recvonly", "inactive"):
                media.direction = value
            elif value.startswith("ptime:"):
                try:
                    media.ptime = int(value[6:])
                except ValueError:
                    raise SdpError("bad ptime") from None
            elif value.startswith("rtpmap:"):
                pt, _, enc = value[7:].partition(" ")
                try:
                    media.rtpmap[int(pt)] = enc
                except ValueError:
                    raise SdpError("bad rtpmap") from None
                if enc.lower().startswith("telephone-event/"):
                    media.dtmf_pt = int(pt)
    if media is None:
        raise SdpError("no audio stream")
    if media.ip is None:
        media.ip = session_ip
    if media.ip is None:
        raise SdpError("no connection address")
    return media


def _codec_of(media, pt):
    enc = media.rtpmap.get(pt)
    for ours, name in CODECS:
        if enc is not None and enc.upper() == name:
            return ours
        if enc is None and pt == ours:  # static payload type without rtpmap
            return ours
    return None


def build(ip, port, payloads=(0, 8), direction="sendrecv", dtmf_pt=DTMF_PT, version=1,
          session_id=None, ptime=20):
    """An SDP body (str) offering or answering ``payloads`` on ip:port."""
    sid = session_id if session_id is not None else urandom_u32() & 0x7FFFFFFF
    fmts = list(payloads) + ([dtmf_pt] if dtmf_pt is not None else [])
    lines = [
        "v=0",
        "o=sipfw %d %d IN IP4 %s" % (sid, version, ip),
        "s=sipfw",
        "c=IN IP4 %s" % ip,
        "t=0 0",
        "m=audio %d RTP/AVP %s" % (port, " ".join(str(p) for p in fmts)),
    ]
    names = dict(CODECS)
    for pt in payloads:
        lines.append("a=rtpmap:%d %s" % (pt, names[pt]))
    if dtmf_pt is not None:
        lines.append("a=rtpmap:%d telephone-event/8000" % dtmf_pt)
        lines.append("a=fmtp:%d 0-15" % dtmf_pt)
    lines.append("a=ptime:%d" % ptime)
    lines.append("a=" + direction)
    return "\r\n".join(lines) + "\r\n"


def choose(media, ours=(0, 8)):
    """The first payload type of ``media`` (in its order) that is one of ``ours``."""
    for pt in media.payloads:
        c = _codec_of(media, pt)
        if c is not None and c in ours:
            return c
    raise SdpError("no common codec")


def answer(offer_body, ip, port, ours=(0, 8), ptime=20, version=1, session_id=None,
           hold=False):
    """(answer body, chosen payload type, the offer's Media) for an offer; SdpError means
    answer 488. ``hold``: we hold the call, so we only send (or do nothing)."""
    offer = parse(offer_body)
    chosen = choose(offer, ours)
    direction = flip(offer.direction)
    if hold:
        direction = "sendonly" if direction in ("sendrecv", "sendonly") else "inactive"
    if offer.port == 0:
        direction = "inactive"
    body = build(ip, port, (chosen,), direction, offer.dtmf_pt, version, session_id, ptime)
    return body, chosen, offer


def flip(direction):
    """Their direction seen from our side: sendonly <-> recvonly, the others the same."""
    if direction == "sendonly":
        return "recvonly"
    return "sendonly" if direction == "recvonly" else direction


def negotiated(answer_body, ours=(0, 8)):
    """(payload type the far end chose in its answer to our offer, its Media), or SdpError."""
    media = parse(answer_body)
    try:
        return choose(media, ours), media
    except SdpError:
        raise SdpError("answer has no codec we offered") from None


def payloads(names):
    """audio.codecs (["PCMU", "PCMA"]) -> payload types (0, 8) in that order."""
    return tuple(pt for name in names for pt, n in CODECS if n.startswith(name + "/"))
