"""Receiving a small file over the console, while the agent runs (``config begin/data/commit``).

The host sends the size and sha256 first, then base64 chunks that fit a console line; the
file is written to a temp name and only handed over when its size and hash match, so a
transfer cut half-way (host killed, cable pulled) leaves the real file untouched. Streamed
to the file chunk by chunk: the board never holds the whole file in its heap.

The console's ``config`` command lives here too (``config_command``): a board loads it when
a person pushes a config, not at boot.
"""

from .compat import const
from .console import ConsoleError

_MAX_BYTES = const(16384)  # the config limit; nothing else is uploaded this way


class UploadError(Exception):
    pass


class Upload:
    def __init__(self, tmp, size, digest):
        import hashlib

        if not 0 <= size <= _MAX_BYTES:
            raise UploadError("size must be 0..%d, got %d" % (_MAX_BYTES, size))
        if len(digest) != 64:
            raise UploadError("sha256 must be 64 hex digits")
        self.tmp = tmp
        self.size = size
        self.digest = digest.lower()
        self.got = 0
        self._hash = hashlib.sha256()
        # open across data() calls: finish() or abort() closes it
        self._f = open(tmp, "wb")  # noqa: SIM115

    def data(self, b64):
        import binascii

        try:
            chunk = binascii.a2b_base64(b64)
        except ValueError:
            raise UploadError("bad base64") from None
        if self.got + len(chunk) > self.size:
            self.abort()
            raise UploadError("more data than the announced %d bytes" % self.size)
        self._f.write(chunk)
        self._hash.update(chunk)
        self.got += len(chunk)
        return self.got

    def finish(self):
        """Close and check; raises UploadError (and removes the temp file) on a mismatch."""
        import binascii

        self._f.close()
        got = binascii.hexlify(self._hash.digest()).decode()
        if self.got != self.size or got != self.digest:
            self._remove()
            raise UploadError("got %d bytes sha256 %s, expected %d bytes %s"
                              % (self.got, got[:12], self.size, self.digest[:12]))

    def abort(self):
        try:
            self._f.close()
        except OSError:
            pass
        self._remove()

    def _remove(self):
        import os

        try:
            os.remove(self.tmp)
        except OSError:
            pass


# -- the console's `config` command -------------------------------------------------------
def config_command(con, args):
    """`config reload | begin SIZE SHA256 | data BASE64 | commit | abort` for ``con``, a
    console.Console."""
    sub = args[0] if args else ""
    if sub == "reload" and len(args) == 1:
        return _reload(con)
    if sub == "begin" and len(args) == 3:
        return _begin(con, args[1], args[2])
    if sub == "data" and len(args) == 2 and con.upload is not None:
        return {"bytes": _step(con, con.upload.data, args[1])}
    if sub == "commit" and len(args) == 1 and con.upload is not None:
        return _commit(con)
    if sub == "abort" and con.upload is not None:
        con.upload.abort()
        con.upload = None
        return None
    if sub in ("data", "commit", "abort"):
        raise ConsoleError("config %s: no upload in progress (config begin first)" % sub)
    raise ConsoleError("usage: config reload | begin SIZE SHA256 | data BASE64 | commit "
                       "| abort")


def _reload(con):
    if con.reload_hook is None:
        raise ConsoleError("config reload: not available")
    return con.reload_hook()


def _begin(con, size, digest):
    if con.upload is not None:
        con.upload.abort()
    try:
        con.upload = Upload(con.config_path + ".tmp", int(size), digest)
    except (ValueError, UploadError, OSError) as e:
        con.upload = None
        raise ConsoleError("config begin: %s" % e) from None
    return {"path": con.config_path}


def _step(con, fn, *args):
    try:
        return fn(*args)
    except (UploadError, OSError) as e:
        if con.upload is not None:
            con.upload.abort()
        con.upload = None
        raise ConsoleError("config upload: %s" % e) from None


def _commit(con):
    from . import config

    up = con.upload
    if up is None:
        raise ConsoleError("config commit: no upload in progress")
    _step(con, up.finish)
    con.upload = None
    try:
        config.install(con.config_path + ".tmp", con.config_path)
    except config.ConfigError as e:
        raise ConsoleError("config refused, nothing changed: %s" % e) from None
    except OSError as e:
        raise ConsoleError("config not saved: %s" % e) from None
    finally:
        config.unload()  # rarely needed again: give its heap back
    res = {"saved": True, "reloaded": False}
    if con.reload_hook is not None:
        try:
            res["reload"] = con.reload_hook()
        except Exception as e:  # noqa: BLE001 - the file goes back with the agent
            config.restore(con.config_path)  # the module object, though forgotten
            raise ConsoleError("config not taken, previous config.json restored: %s"
                               % e) from None
        res["reloaded"] = True
    return res
