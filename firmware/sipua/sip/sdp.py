"""SDP offer/answer (RFC 3264) for one G.711 audio stream.

The handset offers PCMU, PCMA and telephone-event; as answerer it takes the first codec in
the offerer's order that it supports, or tells the caller to answer 488.
"""

from ..compat import urandom_u32

# payload type -> rtpmap; static types need no rtpmap, but we always write one for clarity
CODECS = ((0, "PCMU/8000"), (8, "PCMA/8000"))
DTMF_PT = 101


class SdpError(Exception):
    pass


class Media:
    """What one side said about its audio: address, port, payload types, direction."""

    __slots__ = ("ip", "port", "payloads", "rtpmap", "direction", "dtmf_pt")

    def __init__(self):
        self.ip = None
        self.port = 0
        self.payloads = []
        self.rtpmap = {}
        self.direction = "sendrecv"
        self.dtmf_pt = None


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
          session_id=None):
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
    lines.append("a=ptime:20")
    lines.append("a=" + direction)
    return "\r\n".join(lines) + "\r\n"


def answer(offer_body, ip, port):
    """(answer body, chosen payload type) for an offer; SdpError means answer 488."""
    offer = parse(offer_body)
    chosen = None
    for pt in offer.payloads:
        ours = _codec_of(offer, pt)
        if ours is not None:
            chosen = ours
            break
    if chosen is None:
        raise SdpError("no common codec")
    direction = offer.direction  # sendonly <-> recvonly, the others as offered
    if direction == "sendonly":
        direction = "recvonly"
    elif direction == "recvonly":
        direction = "sendonly"
    if offer.port == 0:
        direction = "inactive"
    body = build(ip, port, (chosen,), direction, offer.dtmf_pt)
    return body, chosen


def negotiated(answer_body):
    """The payload type the far end chose in its answer to our offer, or SdpError."""
    media = parse(answer_body)
    for pt in media.payloads:
        ours = _codec_of(media, pt)
        if ours is not None:
            return ours
    raise SdpError("answer has no codec we offered")
