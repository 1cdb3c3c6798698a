"""G.711 offer/answer (RFC 3264): codec order, telephone-event, ptime, directions, 488."""

from fwtest import raises
from sipua.sip import sdp

SIPP_OFFER = (
    "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.5\r\ns=-\r\n"
    "c=IN IP4 127.0.0.5\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 0\r\n"
    "a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
)


def test_offer_lists_g711_and_dtmf():
    body = sdp.build("127.0.0.40", 4000, session_id=7)
    assert "m=audio 4000 RTP/AVP 0 8 101\r\n" in body
    assert "c=IN IP4 127.0.0.40\r\n" in body and "a=rtpmap:8 PCMA/8000" in body
    m = sdp.parse(body)
    assert m.payloads == [0, 8, 101] and m.dtmf_pt == 101 and m.ip == "127.0.0.40"


def test_answer_keeps_offerers_preference():
    body, pt, offer = sdp.answer(SIPP_OFFER, "127.0.0.40", 4002)
    assert pt == 8 and offer.port == 6000 and offer.ip == "127.0.0.5"
    m = sdp.parse(body)
    assert m.payloads == [8] and m.port == 4002 and m.direction == "sendrecv"


def test_static_payload_without_rtpmap_and_session_level_address():
    offer = "v=0\r\nc=IN IP4 127.0.0.9\r\nm=audio 5004 RTP/AVP 18 0\r\na=sendonly\r\n"
    body, pt, _ = sdp.answer(offer, "127.0.0.40", 4000)
    assert pt == 0 and "a=recvonly" in body
    assert sdp.parse(offer).ip == "127.0.0.9"


def test_no_common_codec_means_488():
    offer = "v=0\r\nc=IN IP4 127.0.0.9\r\nm=audio 5004 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n"
    raises(sdp.SdpError, sdp.answer, offer, "127.0.0.40", 4000)
    raises(sdp.SdpError, sdp.parse, "v=0\r\n")
    raises(sdp.SdpError, sdp.parse, "v=0\r\nm=audio x RTP/AVP 0\r\n")
    raises(sdp.SdpError, sdp.parse, b"v=0\r\nm=audio 4000 RTP/AVP 0\r\n")  # no c= anywhere


def test_negotiated_codec_from_answer():
    body, _, _ = sdp.answer(SIPP_OFFER, "127.0.0.40", 4000)
    pt, media = sdp.negotiated(body)
    assert pt == 8 and media.port == 4000 and media.ptime == 20
    raises(sdp.SdpError, sdp.negotiated,
           "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n")


def test_offer_follows_the_configured_codec_order_and_ptime():
    ours = sdp.payloads(["PCMA", "PCMU"])
    assert ours == (8, 0) and sdp.payloads(["PCMU"]) == (0,)
    body = sdp.build("127.0.0.40", 4000, ours, version=3, session_id=9, ptime=30)
    assert "m=audio 4000 RTP/AVP 8 0 101\r\n" in body
    assert "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n" in body
    assert "a=ptime:30\r\n" in body and "o=sipfw 9 3 IN IP4 127.0.0.40\r\n" in body
    m = sdp.parse(body)
    assert m.ptime == 30 and m.direction == "sendrecv"


def test_answer_takes_the_offerers_order_among_our_codecs():
    # the offer prefers PCMA; a phone configured for PCMU only answers PCMU
    body, pt, _ = sdp.answer(SIPP_OFFER, "127.0.0.40", 4000, ours=(0,))
    assert pt == 0 and "m=audio 4000 RTP/AVP 0\r\n" in body
    raises(sdp.SdpError, sdp.answer, SIPP_OFFER.replace("8 0", "8"), "127.0.0.40", 4000,
           (0,))


def test_directions_both_ways():
    base = SIPP_OFFER + "a=ptime:30\r\n"
    cases = (("sendrecv", False, "sendrecv"), ("sendonly", False, "recvonly"),
             ("recvonly", False, "sendonly"), ("inactive", False, "inactive"),
             ("sendrecv", True, "sendonly"), ("sendonly", True, "inactive"),
             ("recvonly", True, "sendonly"))
    for offered, hold, want in cases:
        body, _, offer = sdp.answer(base + "a=%s\r\n" % offered, "127.0.0.40", 4000,
                                    ptime=20, hold=hold)
        assert sdp.parse(body).direction == want, (offered, hold, body)
        assert offer.ptime == 30 and offer.direction == offered
    body, _, _ = sdp.answer(SIPP_OFFER.replace("audio 6000", "audio 0"), "127.0.0.40", 4000)
    assert sdp.parse(body).direction == "inactive"  # a disabled stream
