# Run by the board after boot.py: start the sipfw agent. Kept as source (not .mpy) so a
# person can read what the board runs; everything else is compiled.
from sipua import app

app.main()
