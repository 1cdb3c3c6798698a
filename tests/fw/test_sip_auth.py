"""Digest auth (RFC 2617 / 7616 vectors) and the pure-Python MD5 fallback."""

import hashlib

from sipua.sip.auth import Auth
from sipua.sip.digest import digest, h, parse_challenge
from sipua.sip.md5 import md5
from sipua.sip.msg import Request, parse

RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def test_md5_fallback_matches_hashlib():
    for n in (0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000):
        data = bytes((i * 7 + n) & 255 for i in range(n))
        assert md5(data).digest() == hashlib.md5(data).digest(), n
    m = md5(b"ab")
    m.update(b"c")
    assert m.digest() == hashlib.md5(b"abc").digest() and m.digest() == m.digest()
    assert md5(b"").digest() == b"\xd4\x1d\x8c\xd9\x8f\x00\xb2\x04\xe9\x80\t\x98\xec\xf8B~"


def test_rfc2617_md5_qop_auth_vector():
    ha1 = h("MD5", "Mufasa:testrealm@host.com:Circle Of Life")
    r = digest("MD5", ha1, "dcd98b7102dd2f0e8b11d0f600bfb0c093", "GET", "/dir/index.html",
               "auth", "00000001", "0a4f113b")
    assert r == "6629fae49393a05397450978507c4ef1"


def test_rfc7616_sha256_and_md5_vectors():
    for alg, want in (
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ):
        ha1 = h(alg, "Mufasa:http-auth@example.org:Circle of Life")
        r = digest(alg, ha1, RFC7616_NONCE, "GET", "/dir/index.html", "auth", "00000001",
                   RFC7616_CNONCE)
        assert r == want, alg


def challenge(status, value):
    name = b"WWW-Authenticate" if status == 401 else b"Proxy-Authenticate"
    return parse(b"SIP/2.0 %d X\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1"
                 b"\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n%s: %s\r\n"
                 b"Content-Length: 0\r\n\r\n" % (status, name, value))


def new_req():
    return Request("REGISTER", "sip:example.com", "sip:6903@example.com",
                   "sip:6903@example.com", "cid", 1, "ft")


def test_answer_401_and_407_with_password_or_ha1():
    resp = challenge(401, b'Digest realm="example.com", nonce="abc", qop="auth,auth-int", '
                          b'opaque="op", algorithm=MD5')
    req = new_req()
    a = Auth("6903", "secret")
    assert a.answer(req, resp, cnonce="cn")
    hv = req.get("Authorization")
    c = parse_challenge(hv.encode())
    assert c["username"] == "6903" and c["qop"] == "auth" and c["nc"] == "00000001"
    assert c["opaque"] == "op" and c["uri"] == "sip:example.com"
    ha1 = h("MD5", "6903:example.com:secret")
    assert c["response"] == digest("MD5", ha1, "abc", "REGISTER", "sip:example.com", "auth",
                                   "00000001", "cn")
    # The same HA1 stored instead of the password gives the same answer.
    req2 = new_req()
    assert Auth("6903", ha1=ha1, realm="example.com").answer(req2, resp, cnonce="cn")
    assert req2.get("Authorization") == hv
    assert not Auth("6903", ha1=ha1, realm="other").answer(new_req(), resp)
    # 407 -> Proxy-Authorization
    req3 = new_req()
    assert Auth("6903", "secret").answer(req3, challenge(407, b'Digest realm="p", nonce="n"'))
    assert req3.get("Proxy-Authorization").startswith('Digest username="6903", realm="p"')
    assert "qop" not in req3.get("Proxy-Authorization")


def test_same_nonce_again_means_wrong_password_unless_stale():
    a = Auth("u", "p")
    req = new_req()
    r1 = challenge(401, b'Digest realm="r", nonce="n1", qop="auth"')
    assert a.answer(req, r1)
    assert not a.answer(req, r1)  # refused: give up rather than loop
    assert a.answer(req, challenge(401, b'Digest realm="r", nonce="n1", qop="auth", stale=true'))
    assert 'nc=00000002' in req.get("Authorization")
    req2 = new_req()
    assert a.answer(req2, challenge(401, b'Digest realm="r", nonce="n2", qop="auth"'))
    assert 'nc=00000001' in req2.get("Authorization")


def test_a_challenged_answer_gets_one_more_try_only_for_a_stale_nonce():
    # A fresh nonce after our answer is a refusal too (a server that never takes an answer
    # would otherwise be asked for ever), and stale=true earns one retry per request.
    a = Auth("u", "p")
    req = new_req()
    assert a.answer(req, challenge(401, b'Digest realm="r", nonce="n1", qop="auth"'))
    assert not a.answer(req, challenge(401, b'Digest realm="r", nonce="n2", qop="auth"'))
    req = new_req()
    assert a.answer(req, challenge(401, b'Digest realm="r", nonce="n3", qop="auth"'))
    assert a.answer(req, challenge(401, b'Digest realm="r", nonce="n4", stale=true'))
    assert 'nonce="n4"' in req.get("Authorization")
    assert not a.answer(req, challenge(401, b'Digest realm="r", nonce="n5", stale=true'))
    req = new_req()  # the next request starts afresh
    assert a.answer(req, challenge(401, b'Digest realm="r", nonce="n5", stale=true'))


def test_a_new_request_answers_a_nonce_an_earlier_request_used():
    # Kamailio's nonces change once a second: a refresh sent within the same second as the
    # last registration meets the same nonce. That is not a refused answer.
    a = Auth("u", "p")
    ch = challenge(401, b'Digest realm="r", nonce="n1", qop="auth"')
    first, refresh = new_req(), new_req()
    assert a.answer(first, ch)
    assert a.answer(refresh, ch)
    assert 'nc=00000002' in refresh.get("Authorization")
    assert not a.answer(refresh, ch)  # the refresh's own answer refused: wrong password


def test_sha256_challenge_and_unsupported_ones():
    req = new_req()
    assert Auth("u", "p").answer(req, challenge(
        401, b'Digest realm="r", nonce="n", algorithm=SHA-256, qop="auth"'), cnonce="c")
    c = parse_challenge(req.get("Authorization").encode())
    assert c["algorithm"] == "SHA-256" and len(c["response"]) == 64
    assert not Auth("u", "p").answer(new_req(), challenge(
        401, b'Digest realm="r", nonce="n", algorithm=SHA-512-256'))
    assert not Auth("u", "p").answer(new_req(), challenge(401, b'Basic realm="r"'))
    assert not Auth("u", ha1="x").answer(new_req(), challenge(
        401, b'Digest realm="r", nonce="n", algorithm=SHA-256'))
