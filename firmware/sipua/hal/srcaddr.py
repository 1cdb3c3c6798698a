"""The unix port's own address, when ``sip.local_ip`` leaves it to the OS (``hal.unix.link``
with ``follow``): loaded only there, so a pinned address costs nothing of it."""


from ..compat import urandom_u32


def source(toward, ip):
    """The source address the kernel would use to reach ``toward``: a UDP socket connected
    to it (no packet leaves) shows it in /proc/net/udp (the unix port's sockets have no
    getsockname), found by the random port it was connected to (read through a VfsPosix of
    the host's /proc: a virtual board's ``/`` is its own folder). ``ip`` when that says
    nothing (no /proc, or ``toward`` is an address of this host whose route names no
    source); None when there is no route."""
    import os
    import socket
    import sys

    port = 1024 + urandom_u32() % 64000
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(socket.getaddrinfo(toward, port)[0][-1])
        a = [int(x) for x in toward.split(".")]
        if sys.byteorder == "little":  # /proc prints the address as a host-order word
            a.reverse()
        rem = "%02X%02X%02X%02X:%04X" % (a[0], a[1], a[2], a[3], port)
        vfs = getattr(os, "VfsPosix", None)  # a vboard's / is its folder: the host's /proc
        with vfs("/proc").open("/net/udp", "r") if vfs else open("/proc/net/udp") as f:
            for line in f:
                w = line.split()
                if len(w) > 2 and w[2] == rem:
                    v = int(w[1][:8], 16)
                    b = [v >> 24, v >> 16 & 255, v >> 8 & 255, v & 255]
                    if sys.byteorder == "little":
                        b.reverse()
                    found = "%d.%d.%d.%d" % (b[0], b[1], b[2], b[3])
                    return ip if found == toward else found
    except OSError as e:
        if e.errno in (101, 113):  # ENETUNREACH, EHOSTUNREACH: no route, the link is down
            return None
    finally:
        s.close()
    return ip
