"""Media: the G.711 codec (``g711``), the jitter buffer (``jbuf``); audio I/O is ``hal.audio``.

Loaded when a call starts. ``g711`` keeps its compiled native code here (``_g711``) so a
board compiles it once per boot even when the call's modules are forgotten after each call
(False: this port cannot compile it; the plain loops are not kept).
"""

_g711 = None  # type: tuple | bool | None
