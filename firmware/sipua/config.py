"""The account configuration (``/config.json``): one schema for the board and the host.

``validate(obj)`` turns parsed JSON into a normalized config (every key present, defaults
filled in) or raises ``ConfigError`` whose messages name the key path and the reason, e.g.
``accounts[0].transport: must be one of udp, tcp, tls, dns-srv, got 'xyz'``. The host's
``sipfw config validate`` imports this same module, so the board and the PC never disagree
about what a valid config is.

The schema is data (nested dicts of ``(kind, default, arg)``), walked by one small function:
adding a key is one line, and the board pays for one table instead of a class per section.

Files are replaced atomically: ``save_atomic`` writes a temp file, moves the current file to
``config.json.bak`` and renames the temp file into place, so a reset at any moment leaves
either the old or the new config, never a truncated one; ``load`` falls back to the ``.bak``
when the main file is missing or broken.
"""

from .addr import hostport, ipv4, ipv6, is_ip, name
from .compat import const

_MAX_FILE_BYTES = const(16384)  # far above any real config; a bigger file is not ours

# Field kinds.
_STR = const(1)
_INT = const(2)  # arg: (min, max)
_BOOL = const(3)
_ENUM = const(4)  # arg: tuple of allowed strings
_OBJ = const(5)  # arg: nested schema
_LIST = const(6)  # arg: (item kind, item arg)
_HOST = const(7)  # a DNS name or an IPv4 literal (SIP runs over IPv4)
_HOSTPORT = const(8)  # host[:port], host as _HOST; "" when unused
_IP4 = const(13)  # an IPv4 literal; "" when unused
_IPPORT = const(14)  # IP[:port], [IPv6]:port: a DNS server (no name: DNS would find it)
_HEX32 = const(10)  # 32 lowercase hex digits (an MD5 HA1)
_MAP = const(11)  # arg: (value kind, value arg): free keys (log areas)
_RECORD = const(12)  # a dns.static record: shape depends on its "type"

REQUIRED = object()  # default of a key that must be given

TRANSPORTS = ("udp", "tcp", "tls", "dns-srv")
FAILBACK_MODES = ("new-requests", "dns-ttl", "registration", "duration")
REDUNDANCY = ("successive", "concurrent")
LOG_LEVELS = ("debug", "info", "warn", "error", "off")
RECORD_TYPES = ("A", "AAAA", "SRV", "NAPTR")

_FAILBACK = {
    "mode": (_ENUM, "new-requests", FAILBACK_MODES),
    # seconds; for "duration" the time on a backup server before trying the preferred again
    "timeout": (_INT, 3600, (0, 86400)),
}

_ACCOUNT = {
    "label": (_STR, ""),  # defaults to user
    "display_name": (_STR, ""),
    "register_name": (_STR, ""),  # the digest auth user name; defaults to user
    "user": (_STR, REQUIRED),
    "password": (_STR, ""),
    "ha1": (_HEX32, ""),  # MD5(user:realm:password), instead of the password
    "server": (_HOST, REQUIRED),  # SIP domain (realm for --store-ha1) or a host
    "port": (_INT, 0, (0, 65535)),  # 0: from SRV, or the transport's default
    "transport": (_ENUM, "dns-srv", TRANSPORTS),
    "expires": (_INT, 3600, (30, 604800)),
    "outbound_proxy": (_HOSTPORT, ""),
    "backup_outbound_proxy": (_HOSTPORT, ""),
    "failback": (_OBJ, None, _FAILBACK),
    "redundancy": (_ENUM, "successive", REDUNDANCY),
    "auto_answer": (_BOOL, False),
    "enabled": (_BOOL, True),
}

_DNS = {
    "servers": (_LIST, None, (_IPPORT, None)),  # empty: the network's (DHCP) servers
    "static": (_LIST, None, (_RECORD, None)),
}

_SIP = {
    "local_ip": (_IP4, ""),  # "": the address the network gave us
    "local_port": (_INT, 5060, (0, 65535)),
    "retry_count": (_INT, 3, (0, 10)),
    "t1": (_INT, 500, (50, 10000)),  # RFC 3261 T1/T2/T4, ms
    "t2": (_INT, 4000, (100, 60000)),
    "t4": (_INT, 5000, (100, 60000)),
    "ca_file": (_STR, ""),
    "user_agent": (_STR, ""),  # "": sipfw/<version>
    # seconds between keep-alives to the registrar (CRLF on TCP/TLS, OPTIONS on UDP); 0: off
    "keepalive_s": (_INT, 25, (0, 3600)),
    "accept_from": (_ENUM, "servers", ("servers", "any")),  # requests from whom (sip/guard.py)
}

_LOG = {
    "level": (_ENUM, "info", LOG_LEVELS),
    "areas": (_MAP, None, (_ENUM, LOG_LEVELS)),  # {"sip": "debug"}: per-area overrides
    "debug_commands": (_BOOL, False),  # console "stall": tests the watchdog; never in service
}

# audio.source / audio.sink (checked in _check_rules): "i2s" on the MCU boards, else a
# silent source and a sink that drops what it gets
_MCU = __import__("sys").platform in ("esp32", "rp2")
_AUDIO = {
    "source": (_STR, "i2s" if _MCU else "silence"),  # i2s, silence, echo, tone:HZ, wav:PATH
    "sink": (_STR, "i2s" if _MCU else "null"),  # i2s, null, echo, wav:PATH
    "codecs": (_LIST, ["PCMU", "PCMA"], (_ENUM, ("PCMU", "PCMA"))),  # offer order
    "ptime": (_INT, 20, (10, 60)),  # ms of audio per RTP packet
    "rtp_ports": (_LIST, [40000, 40100], (_INT, (1024, 65535))),  # [first, last]
    "jitter_ms": (_INT, 40, (20, 120)),  # the jitter buffer's starting depth
}

_NETWORK = {
    "ssid": (_STR, ""),  # "": no Wi-Fi to join (vboard, Raspberry Pi, wired)
    "psk": (_STR, ""),
    "hostname": (_STR, ""),
}

SCHEMA = {
    "accounts": (_LIST, None, (_OBJ, _ACCOUNT)),
    "dns": (_OBJ, None, _DNS),
    "sip": (_OBJ, None, _SIP),
    "log": (_OBJ, None, _LOG),
    "network": (_OBJ, None, _NETWORK),
    "audio": (_OBJ, None, _AUDIO),
}

# Fields of each dns.static record type beyond name/type/ttl: name -> (kind, arg).
_RECORD_FIELDS = {  # type: dict
    "A": {"address": (_STR, None)},  # IPv4, IPv6: checked in record()
    "AAAA": {"address": (_STR, None)},
    "SRV": {
        "priority": (_INT, (0, 65535)),
        "weight": (_INT, (0, 65535)),
        "port": (_INT, (0, 65535)),
        "target": (_HOST, None),
    },
    "NAPTR": {
        "order": (_INT, (0, 65535)),
        "preference": (_INT, (0, 65535)),
        "flags": (_STR, None),
        "service": (_STR, None),
        "regexp": (_STR, None),
        "replacement": (_HOST, None),
    },
}
_RECORD_OPTIONAL = {"flags": "", "regexp": "", "ttl": 300}


class ConfigError(ValueError):
    """A config that fails validation. ``errors`` holds one message per bad key."""

    def __init__(self, errors):
        if isinstance(errors, str):
            errors = [errors]
        self.errors = errors
        super().__init__("; ".join(errors))


def _type_name(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _is_int(value):
    # bool is a subclass of int on CPython (not on MicroPython): refuse it on both.
    return isinstance(value, int) and not isinstance(value, bool)


def _join(path, key):
    return key if not path else path + "." + key


def _v4name(text):
    """What SIP takes for a host: an IPv4 address or a name (no IPv6 on the boards' SIP)."""
    return ipv4(text) or name(text)


class _Checker:
    """Walks a value against a schema, collecting every error (not only the first)."""

    def __init__(self):
        self.errors = []

    def fail(self, path, msg):
        self.errors.append("%s: %s" % (path or "config", msg))

    def obj(self, path, value, schema):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.fail(path, "must be an object, got %s" % _type_name(value))
            return None
        out = {}
        for key in value:
            if key not in schema:
                self.fail(_join(path, str(key)), "unknown key")
        for key in schema:
            spec = schema[key]
            kind, default = spec[0], spec[1]
            arg = spec[2] if len(spec) > 2 else None
            sub = _join(path, key)
            if key not in value:
                if default is REQUIRED:
                    self.fail(sub, "is required")
                    continue
                if kind in (_OBJ, _LIST, _MAP) and not default:
                    out[key] = self.value(sub, None, kind, arg)
                elif kind == _LIST:
                    out[key] = list(default)  # a copy: the schema's own list stays as it is
                else:
                    out[key] = default
                continue
            out[key] = self.value(sub, value[key], kind, arg)
        return out

    def value(self, path, value, kind, arg):
        if kind == _OBJ:
            return self.obj(path, value, arg)
        if kind == _LIST:
            if value is None:
                return []
            if not isinstance(value, list):
                self.fail(path, "must be a list, got %s" % _type_name(value))
                return []
            kind, arg = arg
            return [self.value("%s[%d]" % (path, i), v, kind, arg) for i, v in enumerate(value)]
        if kind == _MAP:
            if value is None:
                return {}
            if not isinstance(value, dict):
                self.fail(path, "must be an object, got %s" % _type_name(value))
                return {}
            kind, arg = arg
            return {k: self.value(_join(path, k), v, kind, arg) for k, v in value.items()}
        if kind == _BOOL:
            if not isinstance(value, bool):
                self.fail(path, "must be true or false, got %s" % _type_name(value))
            return value
        if kind == _INT:
            if not _is_int(value):
                self.fail(path, "must be an integer, got %s" % _type_name(value))
            elif arg and not arg[0] <= value <= arg[1]:
                self.fail(path, "must be %d..%d, got %d" % (arg[0], arg[1], value))
            return value
        if kind == _RECORD:
            return self.record(path, value)
        if not isinstance(value, str):
            self.fail(path, "must be a string, got %s" % _type_name(value))
            return value
        if value and min(value) < " ":  # a CR LF in a header value would start a new header
            self.fail(path, "must not contain control characters, got %r" % value)
            return value
        if kind == _ENUM:
            if value not in arg:
                self.fail(path, "must be one of %s, got %r" % (", ".join(arg), value))
        elif kind == _HOST:
            if not _v4name(value):
                self.fail(path, "must be a host name or IPv4 address, got %r" % value)
            value = value.lower()
        elif kind == _IPPORT or (kind == _HOSTPORT and value):
            try:
                hostport(value, 0, is_ip if kind == _IPPORT else _v4name)
            except ValueError as e:
                self.fail(path, "must be an IP address[:port], got %r" % value
                          if kind == _IPPORT else "must be host[:port]: %s" % e)
        elif kind == _IP4 and value and not ipv4(value):
            self.fail(path, "must be an IPv4 address, got %r" % value)
        elif kind == _HEX32 and value:
            value = value.lower()
            if len(value) != 32 or value.strip("0123456789abcdef"):
                self.fail(path, "must be 32 hex digits (an MD5 digest)")
        return value

    def record(self, path, value):
        if not isinstance(value, dict):
            self.fail(path, "must be an object, got %s" % _type_name(value))
            return value
        rtype = value.get("type")
        fields = _RECORD_FIELDS.get(rtype) if isinstance(rtype, str) else None
        if fields is None:
            self.fail(_join(path, "type"), "must be one of %s, got %r" % (", ".join(RECORD_TYPES),
                                                                         rtype))
            return value
        schema = {"name": (_HOST, REQUIRED), "type": (_STR, REQUIRED),
                  "ttl": (_INT, 300, (0, 2147483647))}
        for key in fields:
            kind, arg = fields[key]
            default = _RECORD_OPTIONAL.get(key, REQUIRED)
            schema[key] = (kind, default, arg)
        out = self.obj(path, value, schema)
        if out is None:
            return value
        a = out.get("address")
        if isinstance(a, str) and not (ipv4 if rtype == "A" else ipv6)(a):
            self.fail(path + ".address", "must be an IPv%s address, got %r"
                      % ("4" if rtype == "A" else "6", a))
        for key in ("flags", "service", "regexp"):  # zone text: one word each
            v = out.get(key)
            if isinstance(v, str) and (" " in v or '"' in v):
                self.fail(_join(path, key), "must not contain spaces or quotes, got %r" % v)
        return out


def _check_rules(cfg, chk):
    """Rules across keys, which the per-key schema cannot say."""
    labels = {}  # type: dict
    for i, acc in enumerate(cfg["accounts"]):
        if not isinstance(acc, dict):
            continue
        path = "accounts[%d]" % i
        if acc.get("password") and acc.get("ha1"):
            chk.fail(path, "give password or ha1, not both")
        if not acc.get("label"):
            acc["label"] = acc.get("user", "")
        if not acc.get("register_name"):
            acc["register_name"] = acc.get("user", "")
        fb = acc.get("failback")
        if isinstance(fb, dict) and fb.get("mode") == "duration" and fb.get("timeout") == 0:
            chk.fail(path + ".failback.timeout", "must be > 0 when mode is duration")
        label = acc.get("label")
        if label in labels:
            chk.fail(path + ".label", "duplicate of accounts[%d].label %r" % (labels[label],
                                                                             label))
        labels[label] = i
    sip = cfg["sip"]
    if (isinstance(sip, dict) and _is_int(sip.get("t1")) and _is_int(sip.get("t2"))
            and sip["t2"] < sip["t1"]):
        chk.fail("sip.t2", "must be >= sip.t1 (%d), got %d" % (sip["t1"], sip["t2"]))
    if isinstance(cfg["audio"], dict):
        _check_audio(cfg["audio"], chk)
    net = cfg["network"]
    if isinstance(net, dict):
        psk = net.get("psk")
        if isinstance(psk, str) and psk and not 8 <= len(psk) <= 63:
            chk.fail("network.psk", "must be 8..63 characters (WPA2), got %d" % len(psk))
        if net.get("psk") and not net.get("ssid"):
            chk.fail("network.ssid", "is required when network.psk is set")
        host = net.get("hostname")
        if isinstance(host, str) and host and ("." in host or not name(host)):
            chk.fail("network.hostname", "must be one DNS label (letters, digits, '-')")


def _check_audio(a, chk):
    for key in ("source", "sink"):
        v = a.get(key)
        if not isinstance(v, str):
            continue
        kind, _, arg = v.partition(":")
        ok = (v in ("i2s", "echo") or v == ("silence" if key == "source" else "null")
              or (kind == "wav" and arg) or (kind == "tone" and key == "source"
                                             and arg.isdigit() and 0 < int(arg) < 4000))
        if not ok:
            chk.fail("audio." + key, "must be i2s, echo, %s, wav:PATH%s, got %r" % (
                "silence" if key == "source" else "null",
                ", tone:HZ (1..3999)" if key == "source" else "", v))
    c = a.get("codecs")
    if isinstance(c, list) and (not c or len(set(c)) != len(c)):
        chk.fail("audio.codecs", "must list PCMU and/or PCMA once each, got %r" % (c,))
    p = a.get("rtp_ports")
    if isinstance(p, list) and not (len(p) == 2 and all(_is_int(x) for x in p)
                                    and p[0] + (p[0] & 1) < p[1]):
        chk.fail("audio.rtp_ports", "must be [first, last] with room for a port pair, got %r"
                 % (p,))


def validate(obj):
    """Parsed JSON -> normalized config (all keys, defaults filled), or raise ConfigError."""
    chk = _Checker()
    cfg = chk.obj("", obj, SCHEMA)
    if cfg is not None and not chk.errors:
        _check_rules(cfg, chk)
    if chk.errors:
        raise ConfigError(chk.errors)
    return cfg


def default():
    """The safe config: no accounts, every default. The agent then only answers on its port."""
    return validate({})


def parse(text):
    """JSON text -> normalized config; bad JSON is a ConfigError too."""
    import json

    try:
        obj = json.loads(text)
    except ValueError as e:
        raise ConfigError("config: not valid JSON (%s)" % (e,)) from None
    return validate(obj)


def _read(path):
    import os

    # Size first: read(n) allocates n bytes up front on MicroPython, and a 16 KB block is
    # more than a fragmented 100 KB heap may have in one piece.
    size = os.stat(path)[6]
    if size > _MAX_FILE_BYTES:
        raise ConfigError("config: file larger than %d bytes" % _MAX_FILE_BYTES)
    with open(path) as f:
        text = f.read()
    return parse(text)


def load(path):
    """(config, error): the file's config and None, or a safe config and why.

    A missing or broken file falls back to ``<path>.bak`` (the previous config that
    save_atomic kept), and then to ``default()``. The error text is for the log.
    """
    try:
        return _read(path), None
    except (OSError, ConfigError) as e:
        err = "%s: %s" % (path, _why(e))
    try:
        return _read(path + ".bak"), err + "; using %s.bak" % path
    except (OSError, ConfigError):
        pass
    return default(), err + "; using defaults"


def _why(err):
    if isinstance(err, OSError):
        return "cannot read (%s)" % (err.args[0] if err.args else err,)
    return str(err)


def save_atomic(path, obj):
    """Validate, then write ``path`` so a reset at any point leaves a whole config behind.

    Order: write ``path.tmp``; then ``atomic.replace``: ``path`` -> ``path.bak`` (over the
    old one), ``path.tmp`` -> ``path``. Between the two renames only the ``.bak`` exists,
    which ``load`` falls back to. Returns the normalized config.
    """
    import json

    from .atomic import replace

    cfg = validate(obj)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(obj))
    replace(tmp, path)
    return cfg


def install(tmp, path):
    """Validate the config staged in ``tmp`` (a console upload), then put it in place as
    save_atomic does. A bad file is removed and ConfigError raised; ``path`` is untouched."""
    import os

    from .atomic import replace

    try:
        cfg = _read(tmp)
    except (OSError, ConfigError):
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    replace(tmp, path)
    return cfg


def restore(path):
    """Undo an install: ``path.bak`` back in place of ``path`` (none: ``path`` goes, and the
    defaults are the config again). A reset half-way leaves the .bak, which load reads."""
    import os

    from .atomic import exists, move

    os.remove(path)
    if exists(path + ".bak"):
        move(path + ".bak", path)
    unload()


def unload():
    """Drop this module and the ones only it uses (``addr``, ``atomic``; ~15 KB of heap on
    the unix port): the agent needs the validated config, not the validator. A caller's
    reference to the module still works; the next import loads it afresh."""
    from .compat import forget

    forget("sipua.config", "sipua.addr", "sipua.atomic")


def redacted(cfg):
    """A deep copy with passwords, HA1 digests and the Wi-Fi key replaced by '***'."""
    from .log import REDACTED, is_secret_key

    if isinstance(cfg, dict):
        out = {}
        for k, v in cfg.items():
            if is_secret_key(k) and isinstance(v, str) and v:
                out[k] = REDACTED
            else:
                out[k] = redacted(v)
        return out
    if isinstance(cfg, list):
        return [redacted(v) for v in cfg]
    return cfg


def md5_hex(data):
    """MD5 hex digest. hashlib.md5 exists on the esp32/rp2/unix ports we build for; a port
    built without it gets the SIP layer's pure-Python MD5 when there is one."""
    import binascii
    import hashlib

    try:
        md5 = hashlib.md5
    except AttributeError:
        try:
            from .sip.md5 import md5  # type: ignore
        except ImportError:
            raise ConfigError("ha1: this port has no MD5") from None
    return binascii.hexlify(md5(data).digest()).decode()


def ha1(user, realm, password):
    """The digest HA1 (RFC 2617): MD5 of ``user:realm:password``, as lowercase hex."""
    return md5_hex(("%s:%s:%s" % (user, realm, password)).encode())
