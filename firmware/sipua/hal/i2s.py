"""``i2s`` for ``hal.audio``, loaded only for it: ``machine.I2S`` on esp32 and rp2, the
microphone on one bus (RX), the amplifier on the other (TX), 16-bit mono 8 kHz.

Pins come from ``board`` (a board config, ``board_configs/*.json``, or its ``"audio"``
section) or else from this port's defaults below (the same as those files). Each bus's
internal buffer (``ibuf``) holds ``"frames"`` frames (default 4: 80 ms of 20 ms frames,
1280 bytes at 16 bits), which the port's DMA buffers feed; a frame's ``readinto`` /
``write`` then returns at once when called every ptime. A microphone with ``"bits": 32``
(the default: MEMS microphones like the INMP441 send 24-bit samples in 32-bit slots and
want 64 bit clocks a frame, which 16-bit slots do not give) is read as 32-bit samples
whose top 16 bits are kept (a 4n-byte scratch buffer, a plain loop: no allocation).
A port without machine.I2S (unix) gets a ValueError naming ``audio.source`` /
``audio.sink``.
"""

import sys


def _pins(plat):
    """A port's I2S pins: board_configs/esp32.json and pico_w.json "audio"."""
    if plat == "esp32":
        return {"mic": {"id": 0, "sck": 32, "ws": 33, "sd": 35, "bits": 32},
                "amp": {"id": 1, "sck": 26, "ws": 25, "sd": 22}, "frames": 4}
    if plat == "rp2":  # the rp2 port wants ws = sck + 1
        return {"mic": {"id": 0, "sck": 16, "ws": 17, "sd": 18, "bits": 32},
                "amp": {"id": 1, "sck": 10, "ws": 11, "sd": 12}, "frames": 4}
    return None


class Bus:
    def __init__(self, i, w):
        self.i = i
        self.w = w  # 32-bit samples: where they are read before their top halves are kept

    def read(self, pcm):
        w = self.w
        if w is None:
            self.i.readinto(pcm)
            return
        self.i.readinto(w)
        for j in range(0, len(pcm), 2):
            pcm[j] = w[2 * j + 2]
            pcm[j + 1] = w[2 * j + 3]

    def write(self, pcm):
        self.i.write(pcm)

    def close(self):
        self.i.deinit()


def bus(board, n, key):
    out = key == "sink"
    try:
        from machine import I2S, Pin
    except ImportError:
        raise ValueError("audio.%s i2s: this port (%s) has no machine.I2S: use wav:PATH, tone:HZ,"
                         " silence, echo or null" % (key, sys.platform)) from None
    a = board.get("audio", board) if board else _pins(sys.platform)
    w = "amp" if out else "mic"
    try:
        p = a[w]
        bits = p.get("bits", 16)
        if out or bits != 32:
            bits = 16
        b = I2S(p["id"], sck=Pin(p["sck"]), ws=Pin(p["ws"]), sd=Pin(p["sd"]),
                mode=I2S.TX if out else I2S.RX, bits=bits, format=I2S.MONO, rate=8000,
                ibuf=bits // 8 * n * a.get("frames", 4))
    except (KeyError, TypeError, AttributeError):
        raise ValueError("audio.%s i2s: the board's \"audio\" needs \"%s\": {id, sck, ws, sd}"
                         % (key, w)) from None
    return Bus(b, bytearray(4 * n) if bits == 32 else None)
