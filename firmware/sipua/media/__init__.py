"""Media: RTP/RTCP sessions (rtp.py, rtcp.py), G.711 (g711.py), the jitter buffer
(jbuf.py). Loaded when a call starts, forgotten when the last call ends."""
