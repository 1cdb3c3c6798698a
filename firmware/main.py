# Run by the board after boot.py: start the sipfw agent. Kept as source (not .mpy) so a
# person can read what the board runs; everything else is compiled. The loop runs here
# rather than in app.main(), whose frame would keep app.py loaded for the phone's life.
from sipua import app
from sipua.compat import forget

sched = app.boot()[0]
del app
forget("sipua.app")
sched.run()
