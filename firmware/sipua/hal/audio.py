"""Audio in and out behind one small interface (config ``audio.source`` / ``audio.sink``).

``open_source(spec, n, board=None, sink=None)``: "silence", "tone:HZ", "wav:PATH", "echo",
"i2s". ``open_sink(spec, n, board=None, source=None)``: "null", "wav:PATH", "echo", "i2s".
A source's ``read(pcm)`` fills ``pcm`` (exactly 2n bytes: n int16 little-endian samples,
8 kHz mono), a sink's ``write(pcm)`` takes it; both have ``close()``. No call allocates.
A bad spec raises ValueError naming it.

- ``tone:HZ`` (``hal/tone.py``): a sine at -6 dBFS (peak 16384), a phase accumulator
  over a 256-entry table (or, when it repeats within 4 frames, those frames made once).
- ``echo``: the sink feeds the source: ``read`` gives the frame last written (silence
  before). Open either first and pass it to the other (``open_source("echo", n,
  sink=s)``): both are then the same object. An echo source without an echo sink is silent.
- ``wav:PATH`` (``hal/wav.py``): a 16-bit mono 8 kHz PCM WAV file as the source (looped)
  or the sink (valid even when the call ends abruptly); other formats refused, naming the
  file and the fault.
- ``i2s`` (``hal/i2s.py``): ``machine.I2S``, pins from the board config; on a port
  without it a ValueError naming ``audio.source`` / ``audio.sink``.

This module only opens them: the objects are ``hal/plain.py``'s (silence, null, echo),
``tone``'s, ``wav``'s and ``i2s``'s, each imported only when asked for, so a session may
forget ``sipua.hal.audio`` once its source and sink are open; forget ``sipua.hal.plain``,
``sipua.hal.tone``, ``sipua.hal.wav`` and ``sipua.hal.i2s`` when the call ends.
"""

_RATE = 8000


def _check(spec, n, key):
    if not isinstance(spec, str):
        raise ValueError("audio.%s %r: not a string" % (key, spec))
    if not isinstance(n, int) or n <= 0:
        raise ValueError("audio.%s %s: frame_samples %r" % (key, spec, n))


def open_source(spec, frame_samples, board=None, sink=None):
    n = frame_samples
    _check(spec, n, "source")
    if spec == "silence" or spec == "echo":
        from .plain import Buf, Echo

        if spec == "silence":
            return Buf(n)
        return sink if isinstance(sink, Echo) else Echo(n)
    if spec == "i2s":
        from .i2s import bus

        return bus(board, n, "source")
    if spec[:4] == "wav:" and len(spec) > 4:
        from .wav import WavIn

        return WavIn(spec[4:], n)
    if spec[:5] == "tone:":
        try:
            hz = int(spec[5:])
        except ValueError:
            hz = 0
        if not 0 < hz < _RATE // 2:
            raise ValueError("audio.source %s: HZ from 1 to 3999" % spec)
        from .tone import Tone

        return Tone(hz, n)
    raise ValueError("audio.source %r: use i2s, wav:PATH, tone:HZ, silence or echo" % spec)


def open_sink(spec, frame_samples, board=None, source=None):
    n = frame_samples
    _check(spec, n, "sink")
    if spec == "null" or spec == "echo":
        from .plain import Buf, Echo

        if spec == "null":
            return Buf(0)
        return source if isinstance(source, Echo) else Echo(n)
    if spec == "i2s":
        from .i2s import bus

        return bus(board, n, "sink")
    if spec[:4] == "wav:" and len(spec) > 4:
        from .wav import WavOut

        return WavOut(spec[4:], n)
    raise ValueError("audio.sink %r: use i2s, wav:PATH, echo or null" % spec)
