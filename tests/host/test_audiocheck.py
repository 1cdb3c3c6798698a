"""sipfw.audiocheck on synthetic signals: the measures the call-audio proof relies on must
tell a match from a non-match, find the lag, the length and the frequency."""

import struct

import numpy as np
import pytest
from sipfw import audiocheck as ac

RATE = ac.RATE
rng = np.random.default_rng(12)


def burst_signal(seconds=2.0):
    """Speech-like: noise bursts of varying length and level with gaps, 0.3 s silence each
    side."""
    x = np.zeros(int(seconds * RATE))
    pos = int(0.3 * RATE)
    while pos < len(x) - int(0.5 * RATE):
        n = int(rng.integers(400, 1600))
        x[pos:pos + n] = rng.normal(0, rng.uniform(0.05, 0.3), n) * np.hanning(n)
        pos += n + int(rng.integers(100, 800))
    return x


def test_a_delayed_copy_correlates_about_one_at_its_delay():
    ref = burst_signal()
    delay = 1234
    rec = np.concatenate([np.zeros(delay), ref * 0.5, np.zeros(3000)])  # gain does not matter
    rec += rng.normal(0, 1e-4, len(rec))
    m = ac.match(ref, rec)
    assert m.lag == delay
    assert m.correlation > 0.99
    assert abs(m.duration_error_ms) <= 5
    assert m.rec_ms == pytest.approx(len(rec) * 1000 / RATE)


@pytest.mark.parametrize("law", ["PCMU", "PCMA"])
def test_after_g711_a_copy_still_correlates_and_the_reference_takes_the_same_trip(law):
    ref = burst_signal()
    wire = ac.g711(ref, law)
    assert np.max(np.abs(wire - ref)) < 0.02  # G.711: small quantisation error
    rec = np.concatenate([np.zeros(800), wire])
    m = ac.match(ref, rec, law=law)
    assert m.lag == 800 and m.correlation > 0.9999  # the same trip: identical samples


def test_noise_does_not_correlate():
    ref = burst_signal()
    rec = rng.normal(0, 0.1, len(ref) + 4000)
    assert ac.match(ref, rec).correlation < 0.3


def test_a_different_signal_does_not_correlate():
    assert ac.match(burst_signal(), burst_signal()).correlation < 0.5


def test_a_lost_stretch_shortens_the_span_and_lowers_the_correlation():
    ref = burst_signal(3.0)
    # 200 ms of the middle missing (frames lost and not concealed): everything after moves
    cut = np.concatenate([ref[:RATE], ref[RATE + 1600:]])
    m = ac.match(ref, cut)
    assert m.correlation < 0.9
    ref_span = ac.speech_span(ref)
    cut_span = ac.speech_span(cut)
    assert (ref_span[1] - ref_span[0]) - (cut_span[1] - cut_span[0]) == 1600


def test_silence_recording_gives_zero_correlation():
    m = ac.match(burst_signal(), np.zeros(20000))
    assert m.correlation == 0.0 and m.rec_span_ms == 0


def test_a_short_recording_is_padded_not_an_error():
    ref = burst_signal()
    m = ac.match(ref, ref[: len(ref) // 2])
    # half the speech is missing: the correlation may stay high (the half that is there
    # matches), the span tells
    assert m.lag == 0 and m.correlation < 0.999
    assert m.duration_error_ms < -200


def test_max_lag_keeps_the_first_copy_of_a_looped_source():
    ref = burst_signal()
    rec = np.concatenate([np.zeros(500), ref, ref, ref])
    assert ac.match(ref, rec, max_lag_s=0.5).lag == 500


@pytest.mark.parametrize("hz", [1000, 440, 3400])
def test_a_tone_peaks_at_its_frequency(hz):
    x = ac.tone(hz, 1.0) + rng.normal(0, 0.01, RATE)
    assert ac.peak_hz(x) == pytest.approx(hz, abs=1.0)


def test_rms_of_a_full_scale_sine_is_minus_3_dbfs():
    assert ac.rms_dbfs(ac.tone(1000, 1.0, level=1.0)) == pytest.approx(-3.01, abs=0.02)
    assert ac.rms_dbfs(np.zeros(100)) == float("-inf")


def test_wav_round_trip_and_a_stale_header(tmp_path):
    x = ac.tone(1000, 0.5)
    p = tmp_path / "t.wav"
    ac.write_wav(p, x)
    y = ac.read_wav(p)
    assert len(y) == 4000 and np.max(np.abs(y - x)) < 1 / 32768 + 1e-9
    # a writer that died before fixing its sizes: the data size says more than the file has
    data = bytearray(p.read_bytes())
    struct.pack_into("<I", data, 40, 10**6)
    p.write_bytes(bytes(data[:-1000]))
    assert len(ac.read_wav(p)) == 3500


def test_wav_errors_name_the_file(tmp_path):
    p = tmp_path / "bad.wav"
    p.write_bytes(b"nope")
    with pytest.raises(ac.WavError, match=r"bad\.wav"):
        ac.read_wav(p)
    ac.write_wav(p, np.zeros(10), rate=16000)
    with pytest.raises(ac.WavError, match="16000 Hz"):
        ac.read_wav(p)
    with pytest.raises(ValueError, match="law"):
        ac.g711(np.zeros(4), "G722")


def test_g711_matches_the_reference_tables_at_known_points():
    x = np.array([0, 1, -1, 1000, -1000, 32767, -32768], dtype=np.int16)
    # PCMU: silence is 0xFF (+0) / 0x7F (-0); full scale 0x80 / 0x00
    assert list(ac.ulaw_encode(x)[[0, 5, 6]]) == [0xFF, 0x80, 0x00]
    # PCMA: silence is 0xD5; full scale 0xAA / 0x2A
    assert list(ac.alaw_encode(x)[[0, 5, 6]]) == [0xD5, 0xAA, 0x2A]
    codes = np.arange(256, dtype=np.uint8)
    assert np.array_equal(ac.alaw_encode(ac.alaw_decode(codes)), codes)
    back = ac.ulaw_encode(ac.ulaw_decode(codes))  # only -0 (0x7F) comes back as +0 (0xFF)
    assert [c for c in codes if back[c] != c] == [0x7F] and back[0x7F] == 0xFF
    for enc, dec in ac.LAWS.values():
        assert np.max(np.abs(dec(enc(x)).astype(int) - x)) <= 1024  # top segment step


def test_speech_wav_is_8khz_mono_speech_with_the_padding(tmp_path):
    p = ac.speech_wav(tmp_path / "s.wav", "one two three", pad_s=0.5)
    x = ac.read_wav(p)
    start, end = ac.speech_span(x)
    assert 0.5 < (end - start) / RATE < 3.0
    assert len(x) - end >= 0.5 * RATE - ac.BLOCK
    assert 100 < ac.peak_hz(x) < 3400
