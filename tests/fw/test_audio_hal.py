"""hal.audio: silence, null, tone (frequency and level), echo, WAV in (parsing, refusals,
looping) and out (valid after every second, and at close), I2S against a fake
machine.I2S with the board configs' pins, bad specs, no allocation per frame."""

import json
import sys
from array import array

from fwtest import make_tmpdir, raises, remove_tmpdir
from sipua.hal import audio, i2s

N = 160
MPY = sys.implementation.name == "micropython"
ROOT = __file__[:__file__.rfind("/tests/")]


def samples(pcm):
    return list(array("h", bytes(pcm)))


def le(v, k):
    return bytes((v >> (8 * i)) & 255 for i in range(k))


def wav_bytes(data, ch=1, rate=8000, bits=16, tag=1, extra=b"", after=b"", fmt=None):
    if fmt is None:
        fmt = (le(tag, 2) + le(ch, 2) + le(rate, 4) + le(rate * ch * bits // 8, 4)
               + le(ch * bits // 8, 2) + le(bits, 2))
    body = b"WAVE" + b"fmt " + le(len(fmt), 4) + fmt + extra + b"data" + le(len(data), 4) \
        + data + (b"\0" if len(data) & 1 else b"") + after
    return b"RIFF" + le(len(body), 4) + body


def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)


def test_silence_null_echo():
    pcm = bytearray(b"\x55" * 2 * N)
    src = audio.open_source("silence", N)
    src.read(pcm)
    assert pcm == bytearray(2 * N)
    sink = audio.open_sink("null", N)
    sink.write(pcm)
    sink.close()
    src.close()
    e = audio.open_sink("echo", N)
    s = audio.open_source("echo", N, sink=e)
    assert s is e
    s.read(pcm)
    assert pcm == bytearray(2 * N)  # nothing written yet: silence
    frame = bytearray(range(256)) + bytearray(range(64))
    e.write(frame)
    s.read(pcm)
    assert pcm == frame
    s2 = audio.open_source("echo", N)  # the other way round
    assert audio.open_sink("echo", N, source=s2) is s2
    lone = audio.open_source("echo", N, sink=sink)  # no echo sink: silent
    lone.read(pcm)
    assert pcm == bytearray(2 * N)


def test_tone_frequency_level_and_continuity():
    src = audio.open_source("tone:1000", N)
    pcm = bytearray(2 * N)
    x = []
    for _ in range(50):  # one second
        src.read(pcm)
        x.extend(samples(pcm))
    assert max(x) == 16384 and min(x) == -16384  # -6 dBFS
    crossings = sum(1 for i in range(1, len(x)) if (x[i - 1] < 0) != (x[i] < 0))
    assert 1998 <= crossings <= 2000  # 1000 Hz
    assert x[:8] == x[8:16] == x[-8:]  # 8 samples a period: exact at 8 kHz
    assert src.f is not None and src.t is None  # one frame made once, then copied
    # the generator itself (frames of 7: the tone repeats only after 8) gives the same
    odd = audio.open_source("tone:1000", 7)
    assert odd.f is None
    p7, y = bytearray(14), []
    for _ in range(160):
        odd.read(p7)
        y.extend(samples(p7))
    assert y == x[:1120]
    # 440 Hz, read in frames of 80: the same stream as one read in frames of 160
    a, b = audio.open_source("tone:440", 160), audio.open_source("tone:440", 80)
    pa, pb = bytearray(320), bytearray(160)
    ya, yb = [], []
    for _ in range(25):
        a.read(pa)
        ya.extend(samples(pa))
        for _ in range(2):
            b.read(pb)
            yb.extend(samples(pb))
    assert ya == yb
    crossings = sum(1 for i in range(1, len(ya)) if (ya[i - 1] < 0) != (ya[i] < 0))
    assert abs(crossings - 440) <= 2  # half a second: 220 periods


def test_wav_sink_then_source_round_trip_and_loop():
    d = make_tmpdir("sipfw-wav")
    try:
        path = d + "/out.wav"
        sink = audio.open_sink("wav:" + path, N)
        tone = audio.open_source("tone:700", N)
        pcm = bytearray(2 * N)
        sent = []
        for _ in range(30):
            tone.read(pcm)
            sink.write(pcm)
            sent.append(bytes(pcm))
        sink.close()
        sink.close()  # twice is harmless
        with open(path, "rb") as f:
            data = f.read()
        assert len(data) == 44 + 30 * 2 * N
        assert data[:4] == b"RIFF" and int.from_bytes(data[4:8], "little") == len(data) - 8
        assert data[40:44] == le(30 * 2 * N, 4)
        if not MPY:
            import wave

            with wave.open(path) as w:
                assert (w.getnchannels(), w.getsampwidth(), w.getframerate(),
                        w.getnframes()) == (1, 2, 8000, 30 * N)
        src = audio.open_source("wav:" + path, N)
        got = []
        for _ in range(35):
            src.read(pcm)
            got.append(bytes(pcm))
        src.close()
        assert got[:30] == sent and got[30:] == sent[:5]  # looped
    finally:
        remove_tmpdir(d)


def test_wav_sink_valid_while_the_call_goes_on():
    d = make_tmpdir("sipfw-wav")
    try:
        path = d + "/rec.wav"
        sink = audio.open_sink("wav:" + path, N)
        pcm = bytearray(b"\x01\x02" * N)
        with open(path, "rb") as f:
            assert len(f.read()) == 44  # the header is there from the start
        for _ in range(120):  # 2.4 s, never closed: the header says 2 s
            sink.write(pcm)
        with open(path, "rb") as f:
            data = f.read()
        assert data[40:44] == le(16000 * 2, 4) and data[4:8] == le(16000 * 2 + 36, 4)
        src = audio.open_source("wav:" + path, N)  # readable as it is
        src.read(pcm)
        src.close()
        assert pcm == b"\x01\x02" * N
        if not MPY:
            import wave

            with wave.open(path) as w:
                assert w.getnframes() == 16000
        sink.close()
        with open(path, "rb") as f:
            assert f.read()[40:44] == le(120 * 2 * N, 4)
    finally:
        remove_tmpdir(d)


def test_wav_source_parses_chunks_and_pads_the_last_frame():
    d = make_tmpdir("sipfw-wav")
    try:
        path = d + "/in.wav"
        x = bytes(array("h", range(1, 251)))  # 250 samples: a frame and 90
        list_chunk = b"LIST" + le(5, 4) + b"abcde\0"  # odd size: padded
        ext = (le(0xFFFE, 2) + le(1, 2) + le(8000, 4) + le(16000, 4) + le(2, 2) + le(16, 2)
               + le(22, 2) + le(16, 2) + le(4, 4) + le(1, 2) + b"\0\0\0\0\x10\0\x80\0\0\xaa"
               + b"\0\x38\x9b\x71")  # WAVE_FORMAT_EXTENSIBLE, subformat PCM
        write_file(path, wav_bytes(x, extra=list_chunk, after=b"junk" + le(4, 4) + b"zzzz",
                                   fmt=ext))
        src = audio.open_source("wav:" + path, N)
        pcm = bytearray(2 * N)
        reads = []
        for _ in range(4):
            src.read(pcm)
            reads.append(samples(pcm))
        src.close()
        assert reads[0] == list(range(1, 161))
        assert reads[1] == list(range(161, 251)) + [0] * 70  # padded, nothing of "junk"
        assert reads[2] == reads[0] and reads[3] == reads[1]
    finally:
        remove_tmpdir(d)


def test_wav_source_refusals_name_the_file_and_the_fault():
    d = make_tmpdir("sipfw-wav")
    try:
        data = bytes(640)
        cases = [
            (b"OggS" + bytes(40), "not a RIFF/WAVE file"),
            (wav_bytes(data, ch=2), "2 channels"),
            (wav_bytes(data, rate=16000), "16000 Hz"),
            (wav_bytes(data, bits=8), "8 bits"),
            (wav_bytes(data, tag=3, bits=32), "format 3"),
            (wav_bytes(b"")[:-8], "no data chunk"),
            (b"RIFF" + le(4, 4) + b"WAVE", "no fmt chunk"),
            (wav_bytes(b""), "no samples"),
        ]
        for i, (blob, why) in enumerate(cases):
            path = "%s/bad%d.wav" % (d, i)
            write_file(path, blob)
            e = raises(ValueError, audio.open_source, "wav:" + path, N)
            assert path in str(e) and why in str(e), (why, str(e))
        e = raises(ValueError, audio.open_source, "wav:%s/missing.wav" % d, N)
        assert "missing.wav" in str(e) and "cannot open" in str(e)
        e = raises(ValueError, audio.open_sink, "wav:%s/no/such/dir.wav" % d, N)
        assert "dir.wav" in str(e)
    finally:
        remove_tmpdir(d)


def test_bad_specs_name_the_spec():
    for spec in ("tone:abc", "tone:0", "tone:4000", "beep", "wav:", "i2s0", ""):
        e = raises(ValueError, audio.open_source, spec, N)
        assert "audio.source" in str(e) and repr(spec)[1:-1] in str(e), str(e)
    for spec in ("silence", "tone:440", "speaker"):
        e = raises(ValueError, audio.open_sink, spec, N)
        assert "audio.sink" in str(e) and spec in str(e)
    e = raises(ValueError, audio.open_source, 5, N)
    assert "audio.source 5" in str(e)
    e = raises(ValueError, audio.open_source, "silence", 0)
    assert "frame_samples 0" in str(e)


def test_i2s_without_machine_i2s():
    e = raises(ValueError, audio.open_source, "i2s", N)
    assert "audio.source i2s" in str(e) and "machine.I2S" in str(e)
    e = raises(ValueError, audio.open_sink, "i2s", N)
    assert "audio.sink i2s" in str(e)


class FakePin:
    def __init__(self, n):
        self.n = n


MADE = []  # every FakeI2S, in order


class FakeI2S:
    RX, TX, MONO = 10, 11, 20

    def __init__(self, i, sck=None, ws=None, sd=None, mode=None, bits=None, format=None,
                 rate=None, ibuf=None):
        self.args = (i, sck.n, ws.n, sd.n, mode, bits, format, rate, ibuf)
        self.calls = []
        MADE.append(self)

    def readinto(self, buf):
        for i in range(len(buf)):
            buf[i] = i & 255
        self.calls.append(("readinto", len(buf)))
        return len(buf)

    def write(self, buf):
        self.calls.append(("write", bytes(buf)))
        return len(buf)

    def deinit(self):
        self.calls.append(("deinit",))


class FakeMachine:
    I2S = FakeI2S
    Pin = FakePin


class LeanI2S(FakeI2S):
    def readinto(self, buf):
        return len(buf)

    def write(self, buf):
        return len(buf)


class LeanMachine:
    I2S = LeanI2S
    Pin = FakePin


def board_config(name):
    with open(ROOT + "/board_configs/%s.json" % name) as f:
        return json.load(f)


def test_i2s_pins_and_buffers_from_the_board_config():
    had = sys.modules.get("machine")
    sys.modules["machine"] = FakeMachine
    try:
        for name, plat in (("esp32", "esp32"), ("pico_w", "rp2")):
            cfg = board_config(name)
            a = cfg["audio"]
            # the firmware's own defaults for the port are the board config's
            mine = i2s._pins(plat)
            for k in ("mic", "amp", "frames"):
                assert mine[k] == a[k], (name, k)
            del MADE[:]
            src = audio.open_source("i2s", N, board=cfg)
            sink = audio.open_sink("i2s", N, board=a)  # the section alone does too
            rx, tx = MADE
            m, p = a["mic"], a["amp"]
            assert m["bits"] == 32 and "bits" not in p
            ibuf = 2 * N * a["frames"]
            assert ibuf == 1280  # 4 frames of 20 ms at 16 bits
            assert rx.args == (m["id"], m["sck"], m["ws"], m["sd"], FakeI2S.RX, 32,
                               FakeI2S.MONO, 8000, 2 * ibuf)
            assert tx.args == (p["id"], p["sck"], p["ws"], p["sd"], FakeI2S.TX, 16,
                               FakeI2S.MONO, 8000, ibuf)
            pcm = bytearray(2 * N)
            src.read(pcm)
            # 32-bit samples 0x03020100, 0x07060504, ...: their top halves are kept
            assert rx.calls == [("readinto", 4 * N)] and pcm[:4] == b"\2\3\6\7"
            assert pcm[-2:] == bytes([(4 * N - 2) & 255, (4 * N - 1) & 255])
            sink.write(pcm)
            assert tx.calls == [("write", bytes(pcm))]
            src.close()
            sink.close()
            assert rx.calls[-1] == ("deinit",) and tx.calls[-1] == ("deinit",)
        # a 16-bit microphone: read straight into the frame
        del MADE[:]
        src = audio.open_source("i2s", N, {"mic": {"id": 0, "sck": 1, "ws": 2, "sd": 3},
                                           "frames": 3})
        assert MADE[0].args == (0, 1, 2, 3, FakeI2S.RX, 16, FakeI2S.MONO, 8000, 3 * 2 * N)
        pcm = bytearray(2 * N)
        src.read(pcm)
        assert MADE[0].calls == [("readinto", 2 * N)] and pcm[:4] == b"\0\1\2\3"
        e = raises(ValueError, audio.open_source, "i2s", N, {"audio": {"mic": {"sck": 1}}})
        assert "audio.source i2s" in str(e) and '"mic"' in str(e)
        assert i2s._pins("linux") is None
    finally:
        if had is None:
            del sys.modules["machine"]
        else:
            sys.modules["machine"] = had


def test_no_allocation_per_frame():
    if not MPY:
        return  # the budget is the board's
    import gc

    d = make_tmpdir("sipfw-wav")
    try:
        pcm = bytearray(2 * N)
        tone = audio.open_source("tone:1000", N)
        sil = audio.open_source("silence", N)
        null = audio.open_sink("null", N)
        echo = audio.open_sink("echo", N)
        rec = audio.open_sink("wav:" + d + "/rec.wav", N)
        write_file(d + "/in.wav", wav_bytes(bytes(array("h", range(1000)))))  # loops at 6.25
        play = audio.open_source("wav:" + d + "/in.wav", N)
        had = sys.modules.get("machine")
        sys.modules["machine"] = LeanMachine
        try:
            mic = audio.open_source("i2s", N, board_config("esp32"))  # 32-bit samples
            amp = audio.open_sink("i2s", N, board_config("esp32"))
        finally:
            if had is None:
                del sys.modules["machine"]
            else:
                sys.modules["machine"] = had

        def frames(k):
            for _ in range(k):
                mic.read(pcm)
                amp.write(pcm)
                tone.read(pcm)
                echo.write(pcm)
                echo.read(pcm)
                null.write(pcm)
                rec.write(pcm)  # the header patched every 50 frames
                play.read(pcm)
                sil.read(pcm)

        frames(60)
        gc.collect()
        gc.disable()
        try:
            before = gc.mem_alloc()
            frames(200)
            used = gc.mem_alloc() - before
        finally:
            gc.enable()
        for x in (tone, sil, null, echo, rec, play, mic, amp):
            x.close()
        assert used == 0, "%d bytes over 200 frames" % used
    finally:
        remove_tmpdir(d)
