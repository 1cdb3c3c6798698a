"""RFC 4733 telephone-events out (console ``dtmf 123#``), loaded while digits are sent; and
an event coming in (``heard``: ``rtp.py`` loads this for the first packet of each).

Each digit is one event: its packets replace the audio packets, one per ptime, all with the
timestamp of the event's start and the marker on the first; the duration field grows by a
ptime each time up to ``_EV_MS``, then the end packet (E bit) goes out three times
(§2.5.1.4), each with a sequence number of its own. ``_GAP_MS`` of audio separate two
digits. An event coming in is logged once (``media dtmf digit=5``) and kept for ``status``.
"""

from ..compat import const, forget

DIGITS = "0123456789*#ABCD"  # RFC 4733 events 0-15

_EV_MS = const(100)  # the tone's length
_GAP_MS = const(60)  # audio between two digits


def heard(s, event):
    if event < 16:
        d = DIGITS[event]
        s.digits = (s.digits + d)[-32:]
        s.log.info("media", "dtmf", call=s.call, digit=d)


def send(s, digits):
    for d in digits:
        if d not in DIGITS:
            raise ValueError("not a DTMF digit: %r" % d)
    if s.rdtmf is None:
        raise ValueError("the far end takes no telephone-event")
    if s.ev is None:
        # [digits left, event or -1, ts hi, ts lo, ms sent (or of pause left), ends sent, step]
        s.ev = [digits, -1, 0, 0, 0, 0, step]
    else:
        s.ev[0] += digits


def step(s, ev):
    """This ptime's packet of the current event: True when it took the place of an audio
    packet; False in the pause between two (and at the end, when this module goes)."""
    if ev[1] < 0:  # between events: pause, then the next digit
        if ev[4] > 0:
            ev[4] -= s.ptime
            return False
        if not ev[0]:
            s.ev = None
            forget("sipua.media.dtmf")
            return False
        ev[1] = DIGITS.index(ev[0][0])
        ev[0] = ev[0][1:]
        ev[2], ev[3] = s.ts_hi, s.ts_lo
        ev[4] = ev[5] = 0
        s.mark = 1  # the first packet of an event
    ev[4] += s.ptime
    done = ev[4] >= _EV_MS
    dur = (ev[4] if ev[4] < _EV_MS else _EV_MS) * 8  # samples since the event began
    tx = s.tx
    tx[12] = ev[1]
    tx[13] = (0x80 if done else 0) | 10  # E bit, volume -10 dBm0
    tx[14], tx[15] = dur >> 8, dur & 255
    s._send(16, s.rdtmf, ev[2], ev[3])
    if done:
        ev[5] += 1
        if ev[5] >= 3:  # the end packet three times, then a pause
            ev[1] = -1
            ev[4] = _GAP_MS
            if s.source is None:  # silence: its code back where the event's bytes went
                tx[12] = tx[13] = tx[14] = tx[15] = s.jb.fill
    return True
