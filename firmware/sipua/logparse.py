"""Reading log lines back (``sipfw logs --json``, tests): the inverse of ``Logger.emit``.

Kept out of ``log.py`` so a board, which only writes log lines, never loads it.
"""


def parse_line(line):
    """Inverse of ``Logger.emit`` for one line: dict with ms, level, area, event and the keys.

    Returns None for a line that is not a log line (REPL output, a traceback).
    """
    head = line.split(" ", 4)
    if len(head) < 4 or head[1] not in ("DEBUG", "INFO", "WARN", "ERROR"):
        return None
    try:
        ms = int(head[0])
    except ValueError:
        return None
    out = {"ms": ms, "level": head[1], "area": head[2], "event": head[3]}
    rest = head[4] if len(head) > 4 else ""
    i, n = 0, len(rest)
    while i < n:
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip()
        i = eq + 1
        if i < n and rest[i] == '"':
            i += 1
            buf = []
            while i < n and rest[i] != '"':
                ch = rest[i]
                if ch == "\\" and i + 1 < n:
                    i += 1
                    ch = {"n": "\n", "r": "\r", "t": "\t"}.get(rest[i], rest[i])
                buf.append(ch)
                i += 1
            value = "".join(buf)
            i += 1
        else:
            sp = rest.find(" ", i)
            if sp < 0:
                sp = n
            value = rest[i:sp]
            i = sp
        out[key] = value
        while i < n and rest[i] == " ":
            i += 1
    return out
