"""Calls carry audio (issue 12's proof, the short one): the board on a virtual board against
baresip 1.0 (Debian baresip-core), through the lab PBX (Kamailio relays the signalling, the
media flows phone to phone on loopback).

A known speech WAV (espeak-ng, 8 kHz 16-bit mono by sox, made here in a temp dir) is played by
one side and recorded by the other; the recording must hold it: normalised
cross-correlation >= 0.9 against the reference passed through the same G.711 law, and its
speech span within ±40 ms of the reference's (``sipfw.audiocheck``). Board -> baresip and
baresip -> board, PCMU and PCMA; a ``tone:1000`` source recorded by baresip peaks at 1000 Hz;
DTMF digits sent from the board's console reach baresip as RFC 4733 events.

``test_harness_selfcheck_*`` are not product tests: baresip calls baresip through the same
lab, which proves the harness (baresip's configuration, its recordings, the measure) before
the board is judged by it, and shows the measure rejects a recording of other speech.

Run it in a private network namespace (fixed loopback addresses):

    unshare --net bash -c 'ip link set lo up; .venv/bin/python -m pytest -q \
        tests/lab/test_audio.py'
"""

import re
import shutil
import time

import baresipctl
import pytest
from agentboard import AgentBoard
from audiocalls import audio_config, board_calls_phone, phone_calls_board, wav_seconds
from sipfw import audiocheck as ac

pytestmark = pytest.mark.lab

HEAP = "512k"
PHONE = "7098"  # baresip: a bench account no other lab test registers (6904/6905 are theirs)
PHONE2 = "7099"  # the second baresip of the harness self-check
SPEECH = "The quick brown fox jumps over the lazy dog."
OTHER_SPEECH = "Seven eight nine, call me back at ten."
PAD_S = 1.0  # silence after the speech: a looped source leaves a gap
MIN_CORRELATION = 0.9
MAX_DURATION_ERROR_MS = 40
LAWS = ("PCMU", "PCMA")
_next_ip = [0]


def next_addr():
    _next_ip[0] += 1
    return "127.0.6.%d" % (10 + _next_ip[0]), 5070


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    d = tmp_path_factory.mktemp("speech")
    return ac.speech_wav(d / "speech.wav", SPEECH, pad_s=PAD_S)


@pytest.fixture
def phones(tmp_path):
    """baresip processes, stopped (and so unregistered) at the end."""
    started = []

    def make(user=PHONE, **kw):
        p = baresipctl.Baresip(tmp_path / ("phone%d-%s" % (len(started), user)), user, **kw)
        started.append(p)
        p.start()
        return p

    yield make
    for p in started:
        p.stop()


@pytest.fixture
def boards(tmp_path):
    started = []

    def boot(cfg, files=()):
        root = tmp_path / ("board%d" % len(started))
        root.mkdir()
        for f in files:  # on the board's filesystem, as a person would copy them
            shutil.copy(f, root / f.name)
        b = AgentBoard(root, cfg, heap=HEAP)
        started.append(b)
        b.start()
        return b

    yield boot
    for b in started:
        b.retire()


def config(lab, source, sink, law, auto_answer=False):
    ip, port = next_addr()
    return audio_config(lab, ip, port, source, sink, law, auto_answer=auto_answer)


def judge(ref_wav, rec_wav, law, max_lag_s):
    m = ac.match(ac.read_wav(ref_wav), ac.read_wav(rec_wav), law=law, max_lag_s=max_lag_s)
    detail = "%s %s: %s" % (law, rec_wav, m.as_dict())
    assert m.correlation >= MIN_CORRELATION, detail
    assert abs(m.duration_error_ms) <= MAX_DURATION_ERROR_MS, detail
    return m


def decoder(phone) -> str:
    found = re.findall(r"Set audio decoder: (\w+)", phone.log())
    return found[-1] if found else ""


# ---------------------------------------------------------------- harness self-check


@pytest.mark.parametrize("law", LAWS)
def test_harness_selfcheck_baresip_to_baresip(healthy, phones, speech, tmp_path, law):
    """HARNESS SELF-CHECK, not a product test: two baresips, each plays the speech and
    records the other; both recordings must pass the same bar the board must pass, and a
    recording of other speech must fail it."""
    callee = phones(PHONE, source=speech, codecs=[law])
    caller = phones(PHONE2, source=speech, codecs=[law])
    caller.dial(PHONE)
    callee.wait_event("CALL_ESTABLISHED", 5)
    caller.wait_event("CALL_CLOSED", wav_seconds(speech) + 10)  # aufile's end hangs up
    callee.wait_event("CALL_CLOSED", 5)
    for p in (callee, caller):
        assert decoder(p) == law, p.log()
        m = judge(speech, p.recordings()[1], law, max_lag_s=2.0)
        assert m.rms_dbfs > -40
    other = ac.speech_wav(tmp_path / "other.wav", OTHER_SPEECH, pad_s=PAD_S)
    wrong = ac.match(ac.read_wav(other), ac.read_wav(callee.recordings()[1]), law=law)
    assert wrong.correlation < 0.5, wrong.as_dict()


# ---------------------------------------------------------------- the board


@pytest.mark.parametrize("law", LAWS)
def test_board_to_baresip_speech(healthy, phones, boards, speech, tmp_path, law):
    """The board plays the speech (its wav source loops: one copy and the gap, then hang up);
    baresip records what it decodes."""
    listener = phones(PHONE, source=baresipctl.silence_wav(tmp_path / "quiet.wav", 60),
                      codecs=[law])
    b = boards(config(healthy, "wav:" + speech.name, "null", law), files=[speech])
    b.wait("reg", "registered", 10)
    board_calls_phone(b, listener, wav_seconds(speech) + 0.5, law)  # one copy, not the next
    assert decoder(listener) == law, listener.log()
    judge(speech, listener.recordings()[1], law, max_lag_s=PAD_S)


@pytest.mark.parametrize("law", LAWS)
def test_baresip_to_board_speech(healthy, phones, boards, speech, law):
    """baresip plays the speech once and hangs up at its end; the board answers by itself and
    writes what it plays out to a WAV on its filesystem."""
    b = boards(config(healthy, "silence", "wav:rec.wav", law, auto_answer=True))
    b.wait("reg", "registered", 10)
    talker = phones(PHONE, source=speech, codecs=[law])
    rec = phone_calls_board(b, talker, wav_seconds(speech), law)
    # the board's sink runs on its playout clock from the call's start: allow the jitter
    # buffer's start and the first packet's way
    judge(speech, rec, law, max_lag_s=2.0)


def test_board_tone_1000_reaches_baresip_at_1000_hz(healthy, phones, boards, tmp_path):
    listener = phones(PHONE, source=baresipctl.silence_wav(tmp_path / "quiet.wav", 60),
                      codecs=["PCMU"])
    b = boards(config(healthy, "tone:1000", "null", "PCMU"))
    b.wait("reg", "registered", 10)
    board_calls_phone(b, listener, 1.5, "PCMU")
    rec = ac.read_wav(listener.recordings()[1])
    assert len(rec) / ac.RATE > 1.0
    assert ac.peak_hz(rec) == pytest.approx(1000, abs=5)
    assert ac.rms_dbfs(rec) > -30


def test_board_dtmf_reaches_baresip(healthy, phones, boards, tmp_path):
    listener = phones(PHONE, source=baresipctl.silence_wav(tmp_path / "quiet.wav", 60),
                      codecs=["PCMU"])
    b = boards(config(healthy, "silence", "null", "PCMU"))
    b.wait("reg", "registered", 10)
    mark = listener.mark()

    def send_digits(board):
        board.cmd("dtmf 123#")
        end = time.monotonic() + 5  # until each digit has started and ended (its end packets)
        while len(listener.find_events("CALL_DTMF_END", mark)) < 4 and time.monotonic() < end:
            time.sleep(0.05)

    board_calls_phone(b, listener, 0.5, "PCMU", between=send_digits)
    assert listener.dtmf_digits(mark) == "123#", listener.log()
    assert len(listener.find_events("CALL_DTMF_END", mark)) == 4, listener.log()
    # baresip's own account of it: each digit's event begins once and ends once
    assert re.findall(r"received event: '(.)' \(end=1\)", listener.log()) == list("123#")


@pytest.mark.parametrize("law", LAWS)
def test_baresip_hears_its_speech_echoed_by_the_board(healthy, phones, boards, speech, law):
    """Both directions in one call: the board's ``echo`` sink feeds its source, so baresip
    records its own speech after a trip through the board's receive path (jitter buffer,
    decode) and send path (encode, pacing)."""
    b = boards(config(healthy, "echo", "echo", law, auto_answer=True))
    b.wait("reg", "registered", 10)
    talker = phones(PHONE, source=speech, codecs=[law])
    mark = b.mark()
    talker.dial("6903")
    b.wait("call", "answered", 10, since=mark)
    talker.wait_event("CALL_CLOSED", wav_seconds(speech) + 10)
    assert decoder(talker) == law, talker.log()
    # the reference went through G.711 twice: the law's trip is idempotent after the first
    m = judge(speech, talker.recordings()[1], law, max_lag_s=2.0)
    assert m.lag_ms < 500, m.as_dict()  # the board's buffering, not a lost second
