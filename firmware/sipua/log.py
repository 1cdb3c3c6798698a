"""One line per event on the serial console: ``<ms> <LEVEL> <area> <event> key=value ...``.

Machine-readable on purpose: ``sipfw logs --json`` parses these lines back. A value with a
space, a quote or an ``=`` is written as a double-quoted string with ``\\"`` and ``\\\\``
escaped. The value of any key named like a secret is never printed, whatever the level.
"""

from .compat import const, print_exception, ticks_diff, ticks_ms

DEBUG = const(10)
INFO = const(20)
WARN = const(30)
ERROR = const(40)
OFF = const(100)

_NAMES = {DEBUG: "DEBUG", INFO: "INFO", WARN: "WARN", ERROR: "ERROR"}
SECRET_KEYS = ("password", "secret", "ha1", "psk", "passwd")
REDACTED = "***"


def is_secret_key(key):
    key = key.lower()
    for s in SECRET_KEYS:
        if s in key:
            return True
    return False


def format_value(value):
    s = value if isinstance(value, str) else str(value)
    if not s:
        return '""'
    for ch in ' "=\\\r\n\t':
        if ch in s:
            s = s.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r")
            return '"%s"' % s.replace("\n", "\\n").replace("\t", "\\t")
    return s


class Logger:
    def __init__(self, write=None, clock=None, level=INFO):
        self._write = write
        self._clock = clock or ticks_ms
        self._t0 = self._clock()
        self.level = level
        self.areas = {}  # area -> level, overrides self.level

    def set_output(self, write):
        self._write = write

    def enabled(self, level, area):
        return level >= self.areas.get(area, self.level)

    def uptime_ms(self):
        return ticks_diff(self._clock(), self._t0)

    def emit(self, level, area, event, kv):
        if level < self.areas.get(area, self.level):
            return
        parts = ["%d %s %s %s" % (self.uptime_ms(), _NAMES.get(level, "INFO"), area, event)]
        for key in sorted(kv):
            value = REDACTED if is_secret_key(key) else format_value(kv[key])
            parts.append("%s=%s" % (key, value))
        line = " ".join(parts)
        if self._write is not None:
            self._write(line)
        else:
            print(line)

    def debug(self, area, event, **kv):
        self.emit(DEBUG, area, event, kv)

    def info(self, area, event, **kv):
        self.emit(INFO, area, event, kv)

    def warn(self, area, event, **kv):
        self.emit(WARN, area, event, kv)

    def error(self, area, event, **kv):
        self.emit(ERROR, area, event, kv)

    def exc(self, area, event, err, **kv):
        """An unexpected exception: an ERROR line, then the traceback on the console."""
        kv["err"] = "%s: %s" % (type(err).__name__, err)
        self.emit(ERROR, area, event, kv)
        print_exception(err)


# The agent's one logger. main.py points it at the console and sets the level from config.
log = Logger()


def parse_line(line):
    """Inverse of ``Logger.emit`` for one line (``logparse.parse_line``); None for a line that
    is not a log line. The parser lives apart: only the host tools and tests read logs back,
    a board only writes them."""
    from .logparse import parse_line as parse

    return parse(line)
