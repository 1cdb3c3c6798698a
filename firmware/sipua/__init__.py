"""sipua: the SIP handset agent that runs on the board.

Nothing here does work at import time: a small board imports only what it uses.
"""

VERSION = "0.1.0"
