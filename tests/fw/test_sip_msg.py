"""SIP message parsing, framing and building (sipua.sip.msg / scan / hdr)."""

from fwtest import raises
from sipua.sip import SipError, invite
from sipua.sip.hdr import H_CALL_ID, H_CSEQ, H_VIA, lookup, lookup_exact
from sipua.sip.hdr import name as hdr_name
from sipua.sip.msg import Limits, Request, parse
from sipua.sip.scan import parse_name_addr, parse_via
from sipua.sip.strans import response
from sipua.sip.stream import NEED_MORE, frame
from sipua.sip.uri import parse_uri

# ids without a public name in hdr.py: looked up by name
H_OTHER = 0
H_CONTACT = lookup(b"contact")
H_CONTENT_LENGTH = lookup(b"content-length")
H_SUPPORTED = lookup(b"supported")
H_SUBJECT = lookup(b"subject")
H_ACCEPT = lookup(b"accept")

REG = (
    b"REGISTER sip:example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Bob" <sip:bob@example.com>;tag=456248\r\n'
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: 843817637684230@998sdasdh09\r\n"
    b"CSeq: 1826 REGISTER\r\n"
    b"Contact: <sip:bob@192.0.2.1>;expires=7200, <sip:bob@192.0.2.2>\r\n"
    b"Expires: 3600\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def rfc4475(name):
    with open("tests/data/rfc4475/%s.dat" % name, "rb") as f:
        return f.read()


def test_header_ids_are_case_insensitive_and_know_compact_forms():
    assert lookup(b"via") == H_VIA and lookup(b"v") == H_VIA
    assert lookup(b"call-id") == H_CALL_ID and lookup(b"i") == H_CALL_ID
    assert lookup(b"k") == H_SUPPORTED and lookup(b"s") == H_SUBJECT
    assert lookup(b"l") == H_CONTENT_LENGTH and lookup(b"m") == H_CONTACT
    assert lookup(b"x-unknown") == H_OTHER and lookup(b"q") == H_OTHER
    compact = {"v": "Via", "f": "From", "t": "To", "i": "Call-ID", "m": "Contact",
               "l": "Content-Length", "c": "Content-Type", "k": "Supported", "s": "Subject",
               "e": "Content-Encoding", "o": "Event", "u": "Allow-Events", "r": "Refer-To",
               "b": "Referred-By", "x": "Session-Expires", "y": "Identity"}
    for letter, name in compact.items():
        assert hdr_name(lookup(letter.encode())) == name, letter
        assert lookup(name.lower().encode()) == lookup(letter.encode()), name
    assert lookup_exact(b"Call-ID") == H_CALL_ID and lookup_exact(b"CALL-ID") == -1
    assert lookup(b"via\x82from") == H_OTHER and lookup(b"") == H_OTHER and lookup(b"ia") == 0
    # every id's spelling reads back and looks up to the id, as written and lower-cased
    spellings = [hdr_name(i) for i in range(43)]
    assert spellings[0] == "" and spellings[1] == "Via" and spellings[42] == "Reason"
    assert spellings[8] == "Content-Length" and spellings[10] == "WWW-Authenticate"
    for i in range(1, 43):
        assert lookup(spellings[i].lower().encode()) == i, spellings[i]
        assert lookup_exact(spellings[i].encode()) == i, spellings[i]


def test_parse_register_fields():
    m = parse(REG)
    assert m.status == 0 and m.method == "REGISTER" and m.ruri == b"sip:example.com"
    assert m.via.transport == "UDP" and m.via.host == "192.0.2.1" and m.via.port == 5060
    assert m.via.branch == "z9hG4bK776" and "rport" in m.via.params
    assert m.via.params["rport"] is None
    assert m.call_id == "843817637684230@998sdasdh09"
    assert m.cseq == 1826 and m.cseq_method == "REGISTER"
    assert m.from_tag == "456248" and m.to_tag is None
    assert m.int(18) == 3600  # Expires
    cs = m.contacts()
    assert len(cs) == 2 and cs[0].params["expires"] == "7200"
    assert parse_uri(cs[1].uri).host == "192.0.2.2"
    assert m.body == b""


def test_parse_response_and_status_line():
    m = parse(b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKx\r\n"
              b"From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: c\r\n"
              b"CSeq: 1 REGISTER\r\nWWW-Authenticate: Digest realm=\"b\", nonce=\"n\"\r\n"
              b"Content-Length: 0\r\n\r\n")
    assert m.status == 401 and m.reason == "Unauthorized"
    assert m.to_tag == "2" and m.header("www-authenticate").startswith("Digest")
    assert m.via.transport == "TCP" and m.via.port is None


def test_folding_lws_and_compact_forms_wsinv():
    m = parse(rfc4475("wsinv"))
    assert m.method == "INVITE" and m.cseq == 9 and m.cseq_method == "INVITE"
    assert m.to_tag == "1918181833n" and m.from_tag == "98asjd8"
    assert m.via.host == "192.0.2.2" and m.via.branch == "390skdjuw"
    vias = m.values(H_VIA)
    assert len(vias) == 3
    v = parse_via(vias[1])
    assert v.transport == "TCP" and v.host == "spindle.example.com" and v.branch == "z9hG4bK9ikj8"
    assert parse_via(vias[2]).branch == "z9hG4bK30239"
    c = m.contacts()[0]
    assert c.display == 'Quoted string ""' and c.params["q"] == "0.33"
    assert c.params["secondparam"] is None and c.params["newparam"] == "newvalue"
    assert m.header("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.get(H_SUBJECT) == ""
    assert len(m.body) == 150


def test_several_values_in_one_header_and_repeated_headers():
    m = parse(rfc4475("semiuri"))
    acc = m.values(H_ACCEPT)
    assert acc == [b"application/sdp", b"application/pkcs7-mime", b"multipart/mixed",
                   b"multipart/signed", b"message/sip", b"message/sipfrag"]
    m = parse(rfc4475("transports"))
    assert [parse_via(v).transport for v in m.values(H_VIA)] == ["UDP", "SCTP", "TLS",
                                                                 "UNKNOWN", "TCP"]


def test_quoted_strings_and_escapes_intmeth():
    m = parse(rfc4475("intmeth"))
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~"
    to = m.name_addr(3)
    assert to.display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    fr = m.name_addr(2)
    assert fr.tag == "_token~1'+`*%!-." and fr.display == "token1~` token2'+_ token3*%!.-"
    assert (fr.params["fromparam''~+*_!.-%"]
            == "\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439")
    u = parse_uri(m.ruri)
    assert u.user.startswith("1_unusual.URI~") and u.password.startswith("&it+has=1")
    assert u.host == "example.com"


def test_sip_and_sips_uris_with_params_and_headers():
    u = parse_uri(b"sips:alice:pw@[2001:db8::1]:5061;transport=tcp;lr?subject=hi&x=y")
    assert u.scheme == "sips" and u.user == "alice" and u.password == "pw"
    assert u.host == "[2001:db8::1]" and u.port == 5061
    assert u.params == {"transport": "tcp", "lr": None} and u.headers == "subject=hi&x=y"
    u = parse_uri(b"sip:example.com")
    assert u.user is None and u.host == "example.com" and u.port is None
    assert parse_uri(b"tel:+123").scheme == "tel"
    for bad in (b"sip:", b"sip:a@", b"sip:h:99999", b"<sip:a@b>", b"nocolon", b"sip:a b"):
        assert raises(SipError, parse_uri, bad).code == 400


def test_name_addr_forms():
    na = parse_name_addr(b"caller<sip:caller@example.com>;tag=323")
    assert na.display == "caller" and na.tag == "323"
    na = parse_name_addr(b"sip:user@example.com;tag=1")
    assert na.uri == b"sip:user@example.com" and na.tag == "1"
    assert parse_name_addr(b"*", True) is None
    raises(SipError, parse_name_addr, b'"Mr. J. User <sip:j.user@example.com>')
    raises(SipError, parse_name_addr, b"<sip:a@b")


def test_malformed_messages_have_defined_errors_not_crashes():
    cases = [
        (b"", 400), (b"INVITE\r\n\r\n", 400), (b"INVITE sip:a@b SIP/2.0\r\n", 400),
        (b"OPTIONS sip:a@b SIP/3.0\r\nVia: SIP/2.0/UDP h\r\n\r\n", 505),
        (b"SIP/2.0 99 X\r\n\r\n", 400), (b"SIP/2.0 4294967301 X\r\n\r\n", 400),
        (REG.replace(b"CSeq: 1826", b"CSeq: 99999999999"), 400),
        (REG.replace(b"Call-ID", b"X-Call-ID"), 400),
        (REG.replace(b"Max-Forwards: 70", b"Max-Forwards: 256"), 400),
        (REG.replace(b"Content-Length: 0", b"Content-Length: 10"), 400),
        (REG.replace(b"Via: ", b"Via : SIP/3.0/UDP h, "), 400),
        (REG.replace(b"Expires: 3600", b"Expires: 4294967296"), 400),
        (REG.replace(b"\r\n\r\n", b"\r\n"), 400),
        (b"\xff\xfe sip:a@b SIP/2.0\r\n\r\n", 400),
    ]
    for data, code in cases:
        e = raises(SipError, parse, data)
        assert e.code == code, (data, e.code, e.reason)
    # Every prefix of a valid message fails cleanly too.
    for n in range(len(REG) - 2):
        raises(SipError, parse, REG[:n])


def test_limits_give_a_clear_error():
    lim = Limits()
    lim.max_msg = 200
    assert raises(SipError, parse, REG, True, lim).code == 513
    lim = Limits()
    lim.max_headers = 5
    e = raises(SipError, parse, REG, True, lim)
    assert e.code == 513 and e.reason == "Too many headers"
    lim = Limits()
    lim.max_line = 40
    assert raises(SipError, parse, REG, True, lim).reason == "Header line too long"
    lim = Limits()
    lim.max_body = 3
    big = REG.replace(b"Content-Length: 0\r\n\r\n", b"Content-Length: 4\r\n\r\nabcd")
    assert raises(SipError, parse, big, True, lim).code == 413


def test_udp_body_rules():
    # No Content-Length over UDP: the body is the rest of the datagram (RFC 3261 §18.3).
    m = parse(REG.replace(b"Content-Length: 0\r\n", b"") + b"abc")
    assert m.body == b"abc"
    # Bytes after Content-Length are ignored (RFC 4475 dblreq).
    m = parse(rfc4475("dblreq"))
    assert m.method == "REGISTER" and m.body == b""
    # On a stream a missing Content-Length means no body.
    m = parse(REG.replace(b"Content-Length: 0\r\n", b""), False)
    assert m.body == b""


def test_stream_framing_partial_reads_and_several_messages():
    two = REG + REG.replace(b"Content-Length: 0\r\n\r\n", b"l: 5\r\n\r\nhello")
    total1 = len(REG)
    for n in range(total1):
        assert frame(two, n) == NEED_MORE
    assert frame(two, total1) == total1
    assert frame(two, len(two)) == total1
    rest = two[total1:]
    assert frame(rest, len(rest) - 1) == NEED_MORE
    assert frame(rest, len(rest)) == len(rest)
    assert parse(rest[:frame(rest, len(rest))], False).body == b"hello"
    e = raises(SipError, frame, rfc4475("mcl01"), len(rfc4475("mcl01")))
    assert e.code == 400
    e = raises(SipError, frame, rfc4475("ncl"), len(rfc4475("ncl")))
    assert e.code == 400
    buf = bytearray(REG)
    assert frame(buf, len(buf)) == len(REG)
    assert raises(SipError, frame, b"x" * 9000, 9000).code == 513


def test_serialize_roundtrip_is_canonical():
    m = parse(rfc4475("wsinv"))
    out = m.to_bytes()
    m2 = parse(out)
    assert m2.to_bytes() == out
    assert m2.call_id == m.call_id and m2.body == m.body and m2.to_tag == m.to_tag
    assert b"\r\nContact: " in out and b"\r\nm:" not in out


def test_response_copies_headers_and_fills_received_rport():
    m = parse(REG)
    m.src = ("127.0.2.9", 40000)
    out = response(m, 200, "OK", to_tag="abc", headers=[("Expires", "60")])
    r = parse(out)
    assert r.status == 200 and r.reason == "OK"
    assert r.via.params["received"] == "127.0.2.9" and r.via.params["rport"] == "40000"
    assert r.via.branch == "z9hG4bK776"
    assert r.to_tag == "abc" and r.from_tag == "456248" and r.call_id == m.call_id
    assert r.get(H_CSEQ) == "1826 REGISTER" and r.header("Expires") == "60"


def test_request_builder_encodes_parseable_messages():
    req = Request("INVITE", "sip:bob@example.com", "sip:alice@example.com",
                  "sip:bob@example.com", "cid1", cseq=7, from_tag="ft",
                  contact="<sip:alice@127.0.2.1:5060>", headers=[("Route", "<sip:p;lr>")],
                  body=b"v=0\r\n", content_type="application/sdp", from_display='Al "X"')
    via = "SIP/2.0/UDP 127.0.2.1:5060;rport;branch=z9hG4bKabc"
    m = parse(req.encode(via))
    assert m.method == "INVITE" and m.cseq == 7 and m.from_tag == "ft" and m.body == b"v=0\r\n"
    assert m.name_addr(2).display == 'Al "X"'
    ack = parse(invite.ack(req, via, b"<sip:bob@example.com>;tag=tt"))
    assert ack.method == "ACK" and ack.cseq == 7 and ack.to_tag == "tt"
    assert ack.via.branch == "z9hG4bKabc" and ack.header("Route") == "<sip:p;lr>"
    cancel = parse(invite.cancel(req, via))
    assert cancel.method == "CANCEL" and cancel.cseq_method == "CANCEL" and cancel.to_tag is None
    req.set("Expires", "10")
    req.set("expires", "20")
    assert req.get("EXPIRES") == "20" and len(req.headers) == 2
