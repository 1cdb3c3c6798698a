"""Host-side audio measurements for the call-audio proof (issue 12): does a recording carry
the reference it should?

    ref = read_wav("speech.wav"); rec = read_wav("recorded.wav")
    m = match(ref, rec, law="PCMU")   # best lag, normalised correlation, speech spans
    m.correlation >= 0.9 and abs(m.duration_error_ms) <= 40
    peak_hz(rec)                      # a tone:1000 source peaks at ~1000 Hz
    rms_dbfs(rec)

Signals are numpy float arrays in [-1, 1) at ``RATE`` (8 kHz) mono. ``match`` first passes
the reference through G.711 (the law the call used) so the comparison is with what the wire
can carry, then finds the lag of the reference inside the recording by FFT
cross-correlation, normalised per lag by both windows' energies (1.0 = identical shape,
whatever the gain). Durations are "speech spans": first to last 5 ms block whose level is
within ``SPAN_DB`` of the signal's loudest block, so leading and trailing silence (call
set-up, the jitter buffer's start, the hang-up) are not counted but a lost, repeated or
stretched stretch of speech is.

Also makes the known speech WAV (``speech_wav``: espeak-ng, then sox to 8 kHz 16-bit mono).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 8000
BLOCK = 40  # samples: 5 ms blocks for speech spans
SPAN_DB = 30.0  # a block is "speech" if within this many dB of the loudest block
FULL_SCALE = 32768.0


# ---------------------------------------------------------------- WAV files


class WavError(ValueError):
    """Not a WAV file this module reads (the message names the file and what is wrong)."""


def read_wav(path, rate: int = RATE) -> np.ndarray:
    """16-bit PCM mono WAV at ``rate`` -> float array in [-1, 1).

    Reads the RIFF chunks itself (also WAVE_FORMAT_EXTENSIBLE, which Python 3.11's ``wave``
    refuses) and trusts the file's length over a stale data-chunk size, so a recording whose
    writer stopped before fixing its header still reads.
    """
    data = Path(path).read_bytes()
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError("%s: not a RIFF/WAVE file" % path)
    pos, fmt, pcm = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt = struct.unpack_from("<HHIIHH", body)
        elif cid == b"data":
            pcm = body  # clipped to what the file holds
            break
        pos += 8 + size + (size & 1)
    if fmt is None or pcm is None:
        raise WavError("%s: no fmt or data chunk" % path)
    tag, channels, srate, _, _, bits = fmt
    if tag not in (1, 0xFFFE) or bits != 16:
        raise WavError("%s: want 16-bit PCM, got format %#x, %d bits" % (path, tag, bits))
    if channels != 1 or srate != rate:
        raise WavError("%s: want mono %d Hz, got %d channel(s) %d Hz"
                       % (path, rate, channels, srate))
    n = len(pcm) // 2
    return np.frombuffer(pcm[:2 * n], dtype="<i2").astype(np.float64) / FULL_SCALE


def write_wav(path, samples: np.ndarray, rate: int = RATE) -> None:
    """Float samples in [-1, 1) -> 16-bit PCM mono WAV."""
    pcm = to_int16(samples).astype("<i2").tobytes()
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", 16,
                         1, 1, rate, rate * 2, 2, 16, b"data", len(pcm))
    Path(path).write_bytes(header + pcm)


def to_int16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(samples) * FULL_SCALE), -32768, 32767).astype(np.int16)


def speech_wav(path, text: str, pad_s: float = 0.0, rate: int = RATE) -> Path:
    """A known speech WAV: espeak-ng speaks ``text``, sox makes it ``rate`` Hz 16-bit mono
    and appends ``pad_s`` seconds of silence (so a looped source leaves a gap)."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise RuntimeError("%s not found: install Debian's %s (make test-deps)" % (tool, tool))
    path = Path(path)
    raw = path.with_suffix(".espeak.wav")
    subprocess.run(["espeak-ng", "-w", str(raw), text], check=True, capture_output=True,
                   timeout=30)
    cmd = ["sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", "-e", "signed-integer",
           str(path)]
    if pad_s:
        cmd += ["pad", "0", "%.3f" % pad_s]
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)
    raw.unlink()
    return path


def tone(hz: float, seconds: float, level: float = 0.5, rate: int = RATE) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return level * np.sin(2 * np.pi * hz * t)


# ---------------------------------------------------------------- G.711 (the reference's trip)
# ITU-T G.711 on 16-bit samples, vectorised; an oracle independent of the firmware's codec.

_SEG_END = np.array([0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF, 0x3FFF, 0x7FFF])


def ulaw_encode(pcm: np.ndarray) -> np.ndarray:
    x = pcm.astype(np.int32) >> 2  # 14-bit, as G.711's reference code
    sign = np.where(x < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(x), 8159) + 0x21
    seg = np.searchsorted(_SEG_END >> 2, mag)  # first segment whose end >= mag
    out = np.where(seg >= 8, 0x7F, (seg << 4) | ((mag >> (seg + 1)) & 0x0F))
    return (out ^ sign).astype(np.uint8)


def ulaw_decode(code: np.ndarray) -> np.ndarray:
    u = (~code.astype(np.int32)) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def alaw_encode(pcm: np.ndarray) -> np.ndarray:
    x = pcm.astype(np.int32) >> 3
    mask = np.where(x >= 0, 0xD5, 0x55)
    mag = np.where(x >= 0, x, -x - 1)
    seg = np.searchsorted(_SEG_END[:8] >> 3, mag)  # 13-bit segment ends 0x1F..0xFFF
    seg = np.minimum(seg, 8)
    aval = np.where(seg >= 2, (seg << 4) | ((mag >> np.maximum(seg, 1)) & 0x0F),
                    (seg << 4) | ((mag >> 1) & 0x0F))
    aval = np.where(seg >= 8, 0x7F, aval)
    return (aval ^ mask).astype(np.uint8)


def alaw_decode(code: np.ndarray) -> np.ndarray:
    a = code.astype(np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    big = (t + 0x108) << np.maximum(seg - 1, 0)
    t = np.where(seg == 0, t + 8, np.where(seg == 1, t + 0x108, big))
    return np.where(a & 0x80, t, -t).astype(np.int16)


LAWS = {"PCMU": (ulaw_encode, ulaw_decode), "PCMA": (alaw_encode, alaw_decode)}


def g711(samples: np.ndarray, law: str) -> np.ndarray:
    """samples through a G.711 encoder and decoder of ``law`` (PCMU or PCMA)."""
    try:
        enc, dec = LAWS[law]
    except KeyError:
        raise ValueError("law must be one of %s, not %r" % (", ".join(LAWS), law)) from None
    return dec(enc(to_int16(samples))).astype(np.float64) / FULL_SCALE


# ---------------------------------------------------------------- measurements


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples)))) if len(samples) else 0.0


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level in dB relative to full scale (a full-scale sine is -3.0 dBFS)."""
    r = rms(samples)
    return float(20 * np.log10(r)) if r > 0 else float("-inf")


def peak_hz(samples: np.ndarray, rate: int = RATE) -> float:
    """The strongest frequency (Hann window, FFT, parabolic interpolation between bins)."""
    x = np.asarray(samples, dtype=np.float64)
    if len(x) < 16:
        raise ValueError("peak_hz needs at least 16 samples, got %d" % len(x))
    spec = np.abs(np.fft.rfft((x - x.mean()) * np.hanning(len(x))))
    k = int(np.argmax(spec[1:])) + 1
    if 1 <= k < len(spec) - 1:
        a, b, c = np.log(spec[k - 1:k + 2] + 1e-30)
        den = a - 2 * b + c
        k = k + (0.5 * (a - c) / den if den else 0.0)
    return float(k * rate / len(x))


def speech_span(samples: np.ndarray, span_db: float = SPAN_DB) -> tuple[int, int]:
    """(first, end) sample of the blocks within ``span_db`` of the loudest; (0, 0) if silent."""
    n = len(samples) // BLOCK
    if n == 0:
        return 0, 0
    levels = np.sqrt(np.mean(np.square(samples[:n * BLOCK].reshape(n, BLOCK)), axis=1))
    top = levels.max()
    if top <= 0:
        return 0, 0
    loud = np.nonzero(levels >= top * 10 ** (-span_db / 20))[0]
    return int(loud[0] * BLOCK), int((loud[-1] + 1) * BLOCK)


@dataclass
class Match:
    lag: int  # samples: where the reference starts in the recording
    correlation: float  # normalised, at that lag
    ref_span_ms: float  # the reference's speech span
    rec_span_ms: float  # the recording's, inside the aligned window
    rec_ms: float  # the recording's whole length
    rms_dbfs: float  # the recording's level inside the aligned window

    @property
    def lag_ms(self) -> float:
        return self.lag * 1000 / RATE

    @property
    def duration_error_ms(self) -> float:
        return self.rec_span_ms - self.ref_span_ms

    def as_dict(self) -> dict:
        return {"lag_ms": round(self.lag_ms, 1), "correlation": round(self.correlation, 4),
                "ref_span_ms": round(self.ref_span_ms, 1),
                "rec_span_ms": round(self.rec_span_ms, 1),
                "duration_error_ms": round(self.duration_error_ms, 1),
                "rec_ms": round(self.rec_ms, 1), "rms_dbfs": round(self.rms_dbfs, 1)}


def xcorr_normalised(ref: np.ndarray, rec: np.ndarray) -> np.ndarray:
    """c[k] = <ref, rec[k:k+len(ref)]> / (|ref|·|rec[k:k+len(ref)]|) for k = 0..len(rec)-len(ref)
    (rec zero-padded to at least len(ref)). Each value is in [-1, 1]."""
    m = len(ref)
    if len(rec) < m:
        rec = np.concatenate([rec, np.zeros(m - len(rec))])
    n = len(rec)
    size = 1 << int(np.ceil(np.log2(n + m)))
    dot = np.fft.irfft(np.fft.rfft(rec, size) * np.conj(np.fft.rfft(ref, size)), size)[:n - m + 1]
    csum = np.concatenate([[0.0], np.cumsum(np.square(rec))])
    energy = csum[m:] - csum[:n - m + 1]
    den = np.sqrt(np.maximum(energy, 0) * float(np.dot(ref, ref)))
    return np.where(den > 1e-12, dot / np.maximum(den, 1e-12), 0.0)


def match(ref: np.ndarray, rec: np.ndarray, law: str | None = None,
          max_lag_s: float | None = None) -> Match:
    """Where ``ref`` (through G.711 ``law`` if given) sits in ``rec`` and how well it matches.

    ``max_lag_s`` bounds the search (the first copy of a looped source, not a later one)."""
    if law:
        ref = g711(ref, law)
    c = xcorr_normalised(ref, rec)
    if max_lag_s is not None:
        c = c[:max(1, int(max_lag_s * RATE) + 1)]
    lag = int(np.argmax(c))
    window = rec[lag:lag + len(ref)]
    r0, r1 = speech_span(ref)
    w0, w1 = speech_span(window)
    return Match(lag=lag, correlation=float(c[lag]), ref_span_ms=(r1 - r0) * 1000 / RATE,
                 rec_span_ms=(w1 - w0) * 1000 / RATE, rec_ms=len(rec) * 1000 / RATE,
                 rms_dbfs=rms_dbfs(window))
