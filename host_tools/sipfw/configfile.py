"""Account configuration on the host: the firmware's own schema, and the board's config file.

Validation is ``sipua.config.validate`` imported from firmware/ — the same code the board
runs — so ``sipfw config validate`` and the agent cannot disagree. On the board the write
follows the firmware's ``save_atomic`` order (temp file, old file to ``config.json.bak``,
rename), checked by sha256 before anything is renamed.
"""

from __future__ import annotations

import hashlib
import json

from . import faults
from .errors import BoardError, ConfigError
from .flash import MV
from .paths import use_firmware

CONFIG = "config.json"
PLACEHOLDER = "***"


def fw_config():
    use_firmware()
    from sipua import config

    return config


def read_json(path: str) -> object:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError("%s: cannot read (%s)" % (path, e.strerror or e)) from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise ConfigError("%s: not valid JSON (%s)" % (path, e)) from None


def check(obj: object, name: str) -> dict:
    """Normalized config, or ConfigError listing every bad key (one per line)."""
    cfgmod = fw_config()
    errors = ["%s: %s: is the redaction placeholder %r (pull with --show-secrets)"
              % (name, path, PLACEHOLDER) for path in placeholder_paths(obj)]
    if errors:
        raise ConfigError("\n".join(errors))
    try:
        return cfgmod.validate(obj)
    except cfgmod.ConfigError as e:
        raise ConfigError("\n".join("%s: %s" % (name, msg) for msg in e.errors)) from None


def placeholder_paths(obj, path="") -> list[str]:
    """Secrets that are '***': a redacted pull pushed back would lock the phone out."""
    fwlog = _fw_log()
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            sub = "%s.%s" % (path, k) if path else str(k)
            if v == PLACEHOLDER and fwlog.is_secret_key(str(k)):
                out.append(sub)
            else:
                out.extend(placeholder_paths(v, sub))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.extend(placeholder_paths(v, "%s[%d]" % (path, i)))
    return out


def _fw_log():
    use_firmware()
    from sipua import log

    return log


def store_ha1(obj: dict, realm: str | None) -> int:
    """Replace each account's password by its digest HA1; how many were converted.

    The realm is the account's ``server`` (its SIP domain) unless ``realm`` is given: the
    registrar's realm must match or every REGISTER gets 401 again.
    """
    cfgmod = fw_config()
    n = 0
    for acc in obj.get("accounts") or []:
        if not isinstance(acc, dict) or not acc.get("password"):
            continue
        user = acc.get("register_name") or acc.get("user")
        acc["ha1"] = cfgmod.ha1(user, realm or acc.get("server"), acc.pop("password"))
        n += 1
    return n


def encode(obj: object) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode()


# Runs on the board: check the staged file, optionally validate it with the board's own
# schema, then the firmware's atomic.replace (flash.MV). Paths are relative to the root.
COMMIT = """\
import os, hashlib, binascii
os.chdir(%(root)r)
%(mv)s
def _h(p):
    with open(p, 'rb') as f:
        return binascii.hexlify(hashlib.sha256(f.read()).digest()).decode()
if _h(%(tmp)r) != %(digest)r:
    print('BAD hash')
else:
    _why = None
    try:
        import json
        from sipua import config as _c
        with open(%(tmp)r) as f:
            _c.validate(json.loads(f.read()))
    except ImportError:
        pass
    except ValueError as e:
        _why = str(e)
    if _why:
        os.remove(%(tmp)r)
        print('INVALID', _why)
    else:
        replace(%(tmp)r, %(path)r)
        print('SAVED', _h(%(path)r))
"""


def push(board, data: bytes, root: str = "/") -> str:
    """Stage, verify and commit ``data`` as the board's config.json; its sha256."""
    digest = hashlib.sha256(data).hexdigest()
    tmp = CONFIG + ".tmp"
    board.write_file(root + tmp, data)
    faults.hit("push-staged")  # tests: killed after staging, before the commit
    code = COMMIT % {"root": root, "mv": MV, "tmp": tmp, "path": CONFIG, "digest": digest}
    out = board.exec(code, timeout=15).decode("utf-8", "replace").strip()
    if out.startswith("INVALID"):
        raise ConfigError("the board's own schema refused it (firmware older or newer than "
                          "these tools?): %s" % out[8:])
    if not out.startswith("SAVED"):
        raise BoardError("config not saved (%s); the previous config is untouched" % out)
    if out.split()[1] != digest:
        raise BoardError("config.json on the board does not match what was sent")
    return digest


def pull(board, root: str = "/") -> bytes | None:
    return board.read_file(root + CONFIG)


LIVE_CHUNK = 150  # bytes per `config data` line: 200 base64 chars, well inside MAX_LINE 256


def push_live(session, data: bytes) -> dict:
    """Upload through the running agent's console (config begin/data/commit): the agent
    checks size and sha256, validates with its own schema, saves atomically and reloads.
    Returns the commit answer. ``session`` is a ``session.Session``."""
    import base64

    digest = hashlib.sha256(data).hexdigest()
    ans = session.ask("config begin %d %s" % (len(data), digest))
    if not ans.get("ok"):
        raise BoardError("the agent refused the upload: %s" % ans.get("error"))
    for i in range(0, len(data), LIVE_CHUNK):
        b64 = base64.b64encode(data[i : i + LIVE_CHUNK]).decode()
        ans = session.ask("config data " + b64)
        if not ans.get("ok"):
            raise BoardError("upload failed: %s; the previous config is untouched"
                             % ans.get("error"))
        faults.hit("push-live-data")  # tests: killed half-way through the upload
    ans = session.ask("config commit")
    if not ans.get("ok"):
        err = str(ans.get("error"))
        if "refused" in err:
            raise ConfigError("the board's own schema refused it (firmware older or newer "
                              "than these tools?): %s" % err)
        if "not taken" in err:  # valid, but the agent could not start on it: undone
            raise ConfigError("the agent could not start on the new config and keeps "
                              "running on the previous one: %s" % err)
        raise BoardError("config not saved: %s" % err)
    return ans
