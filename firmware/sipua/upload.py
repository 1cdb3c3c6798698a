"""Receiving a small file over the console, while the agent runs (``config begin/data/commit``).

The host sends the size and sha256 first, then base64 chunks that fit a console line; the
file is written to a temp name and only handed over when its size and hash match, so a
transfer cut half-way (host killed, cable pulled) leaves the real file untouched. Streamed
to the file chunk by chunk: the board never holds the whole file in its heap.
"""

_MAX_BYTES = 16384  # the config limit; nothing else is uploaded this way


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
