"""The lab itself, proved with real traffic: DNS zone, registrar, calls, and the fault tools.

Everything else in the lab suites trusts these facts, so each is checked on the wire.
"""

import concurrent.futures
import hashlib
import json
import re
import socket
import time

import dns.message
import dns.query
import dns.rdatatype
import dns.resolver
import labctl
import pytest

pytestmark = pytest.mark.lab

UC1, UC2 = labctl.SERVERS["uc1"], labctl.SERVERS["uc2"]


# ---------------------------------------------------------------- helpers


def query(name, rdtype):
    """Answer records in the server's own order (dns.resolver would not reorder, but be sure)."""
    msg = dns.message.make_query(name, rdtype)
    reply = dns.query.udp(msg, labctl.DNS_IP, port=labctl.DNS_PORT, timeout=2)
    assert reply.rcode() == 0, reply
    rrsets = [r for r in reply.answer if r.rdtype == dns.rdatatype.from_text(rdtype)]
    return rrsets[0] if rrsets else []


def tcp_connect(ip, port, timeout=1.0):
    """'ok', 'refused' or 'timeout' for a TCP connect: how a phone sees a server's state."""
    try:
        socket.create_connection((ip, port), timeout=timeout).close()
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "timeout"
    return "ok"


def timed(fn, *args, **kw):
    t0 = time.monotonic()
    result = fn(*args, **kw)
    return result, time.monotonic() - t0


def far_end_calls(lab, user):
    """The far end's sipp message log, one chunk per INVITE it received (the first is a head)."""
    return (lab.run_dir / f"farend-{user}.msg").read_text(errors="replace").split("INVITE sip:")


def contacts(lab, user, name):
    return [c["contact"] for c in lab.registered(user).get(name, [])]


@pytest.fixture
def registration(lab):
    """Register 6903 from a fresh sipp port; unregister it afterwards wherever it landed."""
    done = []

    def register(name, expires=180, transport="u1"):
        port = labctl.free_port()
        result = lab.sipp_register(
            name, "6903", expires=expires, contact=("127.0.0.1", port), transport=transport
        )
        done.append((name, port))
        return result, f"sip:6903@127.0.0.1:{port}"

    yield register
    for name, port in done:
        if lab.running(name) and not lab.silenced(name):
            lab.sipp_register(name, "6903", expires=0, contact=("127.0.0.1", port))


# ---------------------------------------------------------------- DNS


def test_naptr_is_seed_shaped(lab):
    naptrs = [
        (r.order, r.preference, r.flags, r.service, r.replacement.to_text())
        for r in query("airties.lab", "NAPTR")
    ]
    assert naptrs == [
        (2, 0, b"s", b"SIP+D2T", "_sip._tcp.airties.lab."),
        (2, 0, b"s", b"SIP+D2U", "_sip._udp.airties.lab."),
        (3, 0, b"s", b"SIPS+D2T", "_sips._tcp.airties.lab."),
    ]


def test_srv_sets_are_seed_shaped(lab):
    def srv(name):
        return [(r.priority, r.weight, r.port, r.target.to_text()) for r in query(name, "SRV")]

    for service, port in (("_sip._tcp", 5060), ("_sip._udp", 5060), ("_sips._tcp", 5061)):
        uc2, uc1 = (1, 0, port, "uc2.airties.lab."), (2, 0, port, "uc1.airties.lab.")
        # dnsmasq rotates the answer order, so both seed orders (uc2 first for TCP, uc1 first
        # for UDP) occur: a locator has to sort by priority.
        orders = {tuple(srv(f"{service}.airties.lab")) for _ in range(4)}
        assert orders <= {(uc2, uc1), (uc1, uc2)} and orders


def test_a_records_ttl_and_negative_answers(lab):
    res = dns.resolver.Resolver(configure=False)
    res.nameservers, res.port, res.lifetime = [labctl.DNS_IP], labctl.DNS_PORT, 2
    for srv in (UC1, UC2):
        answer = res.resolve(srv.host, "A")
        assert [a.address for a in answer] == [srv.ip]
        assert answer.rrset.ttl == labctl.DNS_TTL
    with pytest.raises(dns.resolver.NoAnswer):
        res.resolve("uc2.airties.lab", "AAAA")
    with pytest.raises(dns.resolver.NXDOMAIN):
        res.resolve("nosuch.airties.lab", "A")


def listening(pid):
    """Local addresses of the sockets process pid listens on (TCP) or is bound to (UDP)."""
    out = labctl.run(["ss", "-H", "-lnptu"], timeout=5).stdout
    return {line.split()[4] for line in out.splitlines() if f"pid={pid}," in line}


def test_dns_listens_only_on_its_address(lab):
    pid = lab.dns_pid()
    assert listening(pid) == {f"{labctl.DNS_IP}:53"}


def test_everything_binds_to_loopback_only(lab, far_end):
    pids = [lab.server_pid(name) for name in labctl.SERVERS]
    pids.append(lab.farend_pid(far_end))
    for pid in pids:
        addresses = listening(pid)
        assert addresses and all(a.startswith("127.") for a in addresses), addresses


# ---------------------------------------------------------------- registrar


def test_register_401_423_200_like_the_seed(lab, registration):
    result, contact = registration("uc2", expires=180)
    assert result.codes == [401, 423, 200]
    assert re.search(r"^Min-Expires: 300\s*$", result.log, re.MULTILINE)
    assert re.search(
        r"^Expires: 300\s*$", result.log, re.MULTILINE
    )  # what the last REGISTER asked
    bindings = {c["contact"]: c for c in lab.registered("6903")["uc2"]}
    assert 295 <= bindings[contact]["expires"] <= 300
    assert bindings[contact]["socket"] == f"udp:{UC2.ip}:5060"
    assert contact not in contacts(lab, "6903", "uc1")


def test_register_over_tcp_on_uc1(lab, registration):
    result, contact = registration("uc1", expires=600, transport="t1")
    assert result.codes == [401, 200]
    binding = {c["contact"]: c for c in lab.registered("6903")["uc1"]}[contact]
    assert binding["socket"] == f"tcp:{UC1.ip}:5060"


def test_wrong_password_is_refused(lab):
    result = lab.sipp_register("uc2", "6905", expires=300, secret="wrong", timeout=4)
    assert result.codes[:2] == [401, 401]


def test_registered_cli_reports_the_binding(lab, registration, capsys):
    _, contact = registration("uc2", expires=300)
    assert labctl.main(["registered", "6903", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert contact in [c["contact"] for c in found["uc2"]]


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_options_answered_on_every_transport(lab, transport):
    for srv in (UC1, UC2):
        assert (
            labctl.sip_options(
                srv.ip, transport=transport, ca_file=lab.ca_file, server_name=srv.host
            )
            == "ok"
        )


def raw_register(ip, user, authorization=""):
    """One UDP REGISTER for user with Expires 300; returns the reply text."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.bind(("127.0.0.1", 0))
        s.connect((ip, 5060))
        port = s.getsockname()[1]
        s.send(
            f"REGISTER sip:airties.lab SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bK{time.monotonic_ns()}\r\n"
            f"From: <sip:{user}@airties.lab>;tag=sha\r\nTo: <sip:{user}@airties.lab>\r\n"
            f"Call-ID: sha-{port}\r\nCSeq: {2 if authorization else 1} REGISTER\r\n"
            f"Contact: <sip:{user}@127.0.0.1:{port}>\r\nMax-Forwards: 70\r\n"
            f"Expires: 0\r\n{authorization}Content-Length: 0\r\n\r\n".encode()
        )
        return s.recv(4096).decode()


def test_sha256_digest_when_asked(lab):
    """Kamailio 5.6 can challenge with SHA-256 (RFC 8760), one algorithm per instance."""
    lab.stop("uc1")
    try:
        labctl.Lab(lab.run_dir, auth_algorithm="SHA-256").start("uc1")
        assert lab.running_algorithm("uc1") == "SHA-256"
        challenge = raw_register(UC1.ip, "6905")
        assert challenge.startswith("SIP/2.0 401") and "algorithm=SHA-256" in challenge
        nonce = re.search(r'nonce="([^"]+)"', challenge).group(1)

        def h(text):
            return hashlib.sha256(text.encode()).hexdigest()

        response = h(f"{h('6905:airties.lab:6905')}:{nonce}:{h('REGISTER:sip:airties.lab')}")
        auth = (
            f'Authorization: Digest username="6905",realm="airties.lab",nonce="{nonce}",'
            f'uri="sip:airties.lab",response="{response}",algorithm=SHA-256\r\n'
        )
        assert raw_register(UC1.ip, "6905", auth).startswith("SIP/2.0 200")
    finally:
        lab.stop("uc1")
        lab.start("uc1")
    assert lab.running_algorithm("uc1") == "MD5"


# ---------------------------------------------------------------- calls


def test_call_across_servers(lab, far_end):
    contact = lab.farend_contact(far_end)
    lab.sipp_register("uc2", far_end, expires=0, contact=contact)  # only uc1 may know it
    assert contacts(lab, far_end, "uc2") == []
    assert f"sip:{far_end}@{contact[0]}:{contact[1]}" in contacts(lab, far_end, "uc1")
    result = lab.sipp_call("uc2", caller="6903", callee=far_end, hold_ms=200)
    assert result.codes[0] == 407  # the INVITE is challenged first
    assert 180 in result.codes
    assert result.codes[-2:] == [200, 200]  # 200 to the INVITE, then 200 to the BYE
    # The route set names the service domain, so ACK/BYE may go through either server.
    assert re.search(r"^Record-Route: <sip:airties\.lab;[^>]*\blr\b", result.log, re.MULTILINE)
    assert re.search(r"^BYE .*\n(?:.*\n)*?Route: <sip:airties\.lab;", result.log, re.MULTILINE)


def test_bye_through_the_other_server_after_a_stop(lab, far_end):
    """Call set up via uc2; uc2 dies mid-call; the BYE sent to uc1 still ends the call."""
    before = len(far_end_calls(lab, far_end))

    def answered():
        calls = far_end_calls(lab, far_end)
        return len(calls) > before and "SIP/2.0 200 OK" in calls[-1]

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        call = pool.submit(lab.sipp_call, "uc2", callee=far_end, hold_ms=1500, bye_via="uc1")
        assert labctl.wait_for(answered, 3)
        lab.stop("uc2")
        try:
            result = call.result(timeout=20)
        finally:
            lab.start("uc2")
    assert result.codes[-2:] == [200, 200]
    bye = far_end_calls(lab, far_end)[-1].split("BYE sip:", 1)[1]
    assert f"Via: SIP/2.0/UDP {UC1.ip}" in bye


class TcpPhone:
    """A minimal phone registered over one TCP connection, as the seed's Yealink does."""

    def __init__(self, ip, user):
        self.user, self.sock = user, socket.create_connection((ip, 5060), timeout=5)
        self.port = self.sock.getsockname()[1]
        self.buf, self.cseq = b"", 0

    def send(self, text):
        self.sock.sendall(text.replace("\n", "\r\n").encode())

    def recv(self):
        """One SIP message (head and body) from the stream, framed by Content-Length."""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(4096)
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?im)^Content-Length: *(\d+)", head).group(1))
        while len(rest) < length:
            rest += self.sock.recv(4096)
        self.buf = rest[length:]
        return head.decode()

    def register(self, authorization="", expires=300):
        u, self.cseq = self.user, self.cseq + 1  # same Call-ID, rising CSeq, or it is stale
        self.send(
            f"REGISTER sip:airties.lab SIP/2.0\nVia: SIP/2.0/TCP 127.0.0.1:{self.port};"
            f"branch=z9hG4bK{time.monotonic_ns()}\nFrom: <sip:{u}@airties.lab>;tag=tcp\n"
            f"To: <sip:{u}@airties.lab>\nCall-ID: tcp-{self.port}\n"
            f"CSeq: {self.cseq} REGISTER\nMax-Forwards: 70\n"
            f"Contact: <sip:{u}@127.0.0.1:{self.port};transport=tcp>\nExpires: {expires}\n"
            f"{authorization}Content-Length: 0\n\n"
        )
        return self.recv_response()

    def recv_response(self):
        """The next response; requests in between (the proxy's ACK to our 486) are skipped."""
        while not (msg := self.recv()).startswith("SIP/2.0 "):
            pass
        return msg

    def register_with_digest(self, expires=300):
        nonce = re.search(r'nonce="([^"]+)"', self.register(expires=expires)).group(1)

        def h(text):
            return hashlib.md5(text.encode()).hexdigest()

        u = self.user
        response = h(f"{h(f'{u}:airties.lab:{u}')}:{nonce}:{h('REGISTER:sip:airties.lab')}")
        return self.register(
            f'Authorization: Digest username="{u}",realm="airties.lab",nonce="{nonce}",'
            f'uri="sip:airties.lab",response="{response}",algorithm=MD5\n',
            expires,
        )

    def reply(self, request, status):
        """A response to request, echoing its Via/From/To/Call-ID/CSeq/Record-Route lines.

        Its Contact is the connection's own (ephemeral, not listening) port, as baresip's is:
        only this connection reaches the phone.
        """
        keep = [
            ln
            for ln in request.split("\r\n")[1:]
            if ln.split(":")[0].lower() in ("via", "from", "to", "call-id", "cseq", "record-route")
        ]
        if ";tag=" not in next(ln for ln in keep if ln.lower().startswith("to:")):
            keep = [ln + ";tag=tcpphone" if ln.lower().startswith("to:") else ln for ln in keep]
        contact = f"Contact: <sip:{self.user}@127.0.0.1:{self.port};transport=tcp>"
        self.send(f"SIP/2.0 {status}\n" + "\n".join([*keep, contact]) + "\nContent-Length: 0\n\n")


@pytest.mark.parametrize("via, bye_via", [("uc2", "uc1"), ("uc1", "uc2"), ("uc1", "uc1")])
def test_call_to_a_tcp_phone_rides_its_connection(lab, via, bye_via):
    """A phone registered over TCP on uc2 gets INVITE, ACK and BYE on that connection, even
    when they come through uc1, which relays to uc2 because it holds no connection to it."""
    phone = TcpPhone(UC2.ip, "6905")
    try:
        assert phone.register_with_digest().startswith("SIP/2.0 200")
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            call = pool.submit(
                lab.sipp_call, via, callee="6905", hold_ms=200, bye_via=bye_via, timeout=8
            )
            invite = phone.recv()
            assert invite.startswith("INVITE sip:6905@127.0.0.1:")
            phone.reply(invite, "200 OK")
            assert phone.recv().startswith("ACK sip:6905@127.0.0.1:")
            bye = phone.recv()
            assert bye.startswith("BYE sip:6905@127.0.0.1:")
            phone.reply(bye, "200 OK")
            assert call.result(timeout=15).codes[-2:] == [200, 200]
        assert phone.register_with_digest(expires=0).startswith("SIP/2.0 200")
    finally:
        phone.sock.close()
    assert lab.registered("6905")["uc2"] == []


def test_cancel_while_ringing(lab, far_end):
    result = lab.sipp_cancel("uc2", caller="6903", callee=far_end)
    assert 180 in result.codes and result.codes[-2:] == [200, 487]


def test_never_relays_off_loopback(lab):
    """An in-dialog request routed to a host name is refused, never resolved: Kamailio would
    ask the host's resolver, outside the lab."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.bind(("127.0.0.1", 0))
        s.connect((UC2.ip, 5060))
        port = s.getsockname()[1]
        s.send(
            f"BYE sip:6904@127.0.0.1:5999 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bKoff{port}\r\n"
            "Route: <sip:nowhere.invalid;lr>\r\n"
            "From: <sip:6903@airties.lab>;tag=a\r\nTo: <sip:6904@airties.lab>;tag=b\r\n"
            f"Call-ID: off-{port}\r\nCSeq: 9 BYE\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n".encode()
        )
        assert s.recv(4096).decode().startswith("SIP/2.0 502")


def test_call_to_unknown_user_is_404(lab):
    result = lab.sipp_call("uc1", caller="6903", callee="6999", timeout=8)
    assert result.codes[-1] == 404


# ---------------------------------------------------------------- fault tools


def test_stop_refuses_then_start_restores(lab, far_end):
    lab.stop("uc2")
    try:
        assert not lab.running("uc2")
        state, took = timed(labctl.sip_options, UC2.ip, timeout=2)
        assert (state, took < 0.5) == ("refused", True)
        assert tcp_connect(UC2.ip, 5060) == "refused"
        assert labctl.sip_options(UC1.ip) == "ok"
        # The survivor still serves calls to users registered on it.
        assert lab.sipp_call("uc1", callee=far_end, hold_ms=100).codes[-2:] == [200, 200]
    finally:
        lab.start("uc2")
    assert labctl.sip_options(UC2.ip) == "ok"
    assert lab.registered(far_end)["uc2"] == []  # a restart forgets its bindings


def test_silence_times_out_then_unsilence_restores(lab, far_end, registration):
    _, contact = registration("uc2", expires=300)
    lab.silence("uc2")
    try:
        assert lab.silenced("uc2") and lab.running("uc2")
        state, took = timed(labctl.sip_options, UC2.ip, timeout=1)
        assert (state, took >= 1) == ("timeout", True)
        assert tcp_connect(UC2.ip, 5060, timeout=1) == "timeout"
        assert labctl.sip_options(UC1.ip) == "ok"
        # uc1 asks the silent peer for 6903 and gives up after its 3 s peer timer.
        result, took = timed(lab.sipp_call, "uc1", caller=far_end, callee="6903", timeout=10)
        assert result.codes[-1] == 480 and took < 6
    finally:
        lab.unsilence("uc2")
    assert not lab.silenced("uc2")
    assert labctl.IPTABLES_TAG not in labctl.run(["iptables", "-S", "INPUT"], timeout=5).stdout
    assert labctl.sip_options(UC2.ip) == "ok"
    assert contact in contacts(lab, "6903", "uc2")  # silence, unlike stop, keeps state


def test_firmware_config_points_at_the_lab(lab, capsys):
    assert labctl.main(["config", "6905", "--transport", "tls"]) == 0
    config = json.loads(capsys.readouterr().out)
    (account,) = config["accounts"]
    assert (account["server"], account["transport"], account["user"]) == (
        "airties.lab",
        "tls",
        "6905",
    )
    assert config["dns"]["servers"] == ["127.0.0.53:53"]
    assert config["sip"]["ca_file"] == str(lab.ca_file) and lab.ca_file.exists()


def test_up_is_idempotent(lab):
    started, took = timed(lab.up)
    assert started == [] and took < 2
