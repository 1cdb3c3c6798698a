"""One audio call between the board (``AgentBoard``) and baresip (``baresipctl.Baresip``),
each way, returning the recording to judge. Shared by tests/lab/test_audio.py and
bench/bench_audio.py.
"""

from __future__ import annotations

import time
from pathlib import Path

from agentboard import board_config
from sipfw import audiocheck as ac

BOARD_USER = "6903"
PAYLOAD_TYPE = {"PCMU": "0", "PCMA": "8"}  # the board logs the codec as its payload type


def audio_config(lab, ip: str, port: int, source: str, sink: str, law: str,
                 auto_answer: bool = False, debug: bool = True) -> dict:
    """The lab's board config with the agreed audio keys (``audio.source``/``sink`` specs,
    ``audio.codecs`` one law)."""
    cfg = board_config(lab, ip, port, auto_answer=auto_answer, debug=debug)
    cfg["audio"] = {"source": source, "sink": sink, "codecs": [law]}
    return cfg


def wav_seconds(wav) -> float:
    return len(ac.read_wav(wav)) / ac.RATE


def board_calls_phone(board, phone, hold_s: float, law: str | None = None,
                      between=None) -> dict:
    """The board dials the phone (which answers by itself), holds ``hold_s`` seconds from the
    phone's CALL_ESTABLISHED (calling ``between(board)`` first if given), hangs up. Returns
    the board's ``answered`` event; the phone's recordings hold what it received."""
    mark = board.mark()
    pmark = phone.mark()
    board.cmd("call %s" % phone.user)
    ans = board.wait("call", "answered", 10, since=mark)
    if law is not None:
        assert ans.get("codec") in (law, PAYLOAD_TYPE[law]), ans
    phone.wait_event("CALL_ESTABLISHED", 5, since=pmark)
    t_end = time.monotonic() + hold_s
    if between is not None:
        between(board)
    time.sleep(max(0.0, t_end - time.monotonic()))
    board.cmd("hangup")
    phone.wait_event("CALL_CLOSED", 5, since=pmark)
    return ans


def phone_calls_board(board, phone, speech_s: float, law: str | None = None) -> Path:
    """The phone dials the board (auto-answer) and plays its source once (aufile's end hangs
    up). Returns the board's sink WAV (``rec.wav`` in its root)."""
    mark = board.mark()
    phone.dial(BOARD_USER)
    ans = board.wait("call", "answered", 10, since=mark)
    if law is not None:
        assert ans.get("codec") in (law, PAYLOAD_TYPE[law]), ans
    board.wait("call", "ended", speech_s + 10, since=mark)
    rec = board.root / "rec.wav"
    assert rec.exists(), "the board wrote no %s:\n%s" % (rec, board.text(mark)[-3000:])
    return rec
