"""``sipfw flash --romfs`` / ``--frozen``: the firmware's bytecode out of RAM.

MicroPython (1.25 and later, on builds with ROMFS enabled) mounts partition 0 of its ROM
filesystem at ``/rom`` and puts ``/rom`` and ``/rom/lib`` on ``sys.path``; a ``.mpy`` there is
executed in place, so only its module dicts, functions and qstrs take heap. The image is
built and written by mpremote's own code (``mpremote romfs build`` / ``romfs deploy``, the
pinned mpremote 1.29), driven on the connection ``sipfw flash`` already holds:

* the image holds ``sipua/`` compiled for the board (``build.build``: the same ``.mpy`` files
  plain flash copies), packed by mpremote's ``make_romfs``;
* the board's partition is queried inside flash's survey exec (no extra round trip, same
  test as ``mpremote romfs query``: ``vfs.rom_ioctl`` exists and partition 0 exists), with
  the sha256 of its first bytes, so an unchanged image is not written again;
* ``main.py``/``boot.py`` stay on the filesystem; the plain plan then deletes ``/sipua`` there
  (it would shadow ``/rom``: ``''`` comes first on ``sys.path``).

Order keeps a board bootable at every step: until the commit removes ``/sipua`` from the
filesystem, the old ``.mpy`` files there shadow a half-written or new image.

``--frozen`` is for a MicroPython image built with ``sipua`` frozen in
(``board_configs/<board>/manifest.py``, docs/boards.md): the survey asks ``.frozen`` for the
package and its VERSION; only main.py/boot.py are copied, and ``/sipua`` on the filesystem
is deleted (it would shadow the frozen package).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile

from .build import PACKAGE, Item, sha256
from .errors import BoardError

PARTITION = 0

# Runs inside flash's survey exec (hashlib and binascii are imported there). %(n)d is the new
# image's length: the partition's first n bytes are hashed. Prints "R <size> <sha256|->",
# size 0 when the board has no ROMFS partition.
QUERY = """\
try:
    import vfs
    _d = vfs.rom_ioctl(2, %(p)d) if vfs.rom_ioctl(1) > %(p)d else -1
except (ImportError, AttributeError, OSError):
    _d = -1
if isinstance(_d, int):
    print('R 0 -')
elif hasattr(_d, 'ioctl'):
    print('R', _d.ioctl(4, 0) * _d.ioctl(5, 0), '-')
else:
    print('R', len(_d), binascii.hexlify(hashlib.sha256(memoryview(_d)[:%(n)d]).digest()).decode())
del _d
"""


# Runs inside flash's survey exec (sys is imported there): "Z <VERSION>" of the frozen
# package, "Z -" when the image has none.
FROZEN_QUERY = """\
_p = sys.path[:]
sys.path[:] = ['.frozen']
try:
    import sipua
    print('Z', sipua.VERSION)
except ImportError:
    print('Z -')
sys.path[:] = _p
del _p
"""


def frozen_version(line: str | None) -> str | None:
    """The frozen package's VERSION from the survey's Z line; None when there is none."""
    text = (line or "-").strip()
    return None if text in ("", "-") else text


def query_code(image_len: int, partition: int = PARTITION) -> str:
    return QUERY % {"p": partition, "n": image_len}


def parse_query(line: str | None) -> tuple[int, str]:
    """(partition size in bytes, sha256 of its first image-length bytes or "") from the
    survey's R line; (0, "") when the board has none (or said nothing)."""
    parts = (line or "").split()
    if len(parts) != 2 or not parts[0].isdigit():
        return 0, ""
    return int(parts[0]), "" if parts[1] == "-" else parts[1]


def split_items(items: list[Item]) -> tuple[list[Item], list[Item]]:
    """(what goes in the image: the package; what stays on the filesystem: main.py, boot.py)."""
    rom = [it for it in items if it.remote.startswith(PACKAGE + "/")]
    return rom, [it for it in items if it not in rom]


def build_image(rom_items: list[Item]) -> bytes:
    """The ROMFS image of these files, packed by mpremote's ``make_romfs`` (already compiled,
    so mpremote's own mpy-cross pass is off)."""
    from mpremote.romfs import make_romfs

    with tempfile.TemporaryDirectory(prefix="sipfw-romfs-") as tree:
        for it in rom_items:
            path = os.path.join(tree, it.remote)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(it.data)
        with contextlib.redirect_stdout(io.StringIO()):  # its file tree listing
            return make_romfs(tree, mpy_cross=False)


def refuse_reason(size: int, image: bytes) -> str | None:
    if size <= 0:
        return ("this board's MicroPython has no ROMFS partition (no vfs.rom_ioctl, or no "
                "partition %d; `mpremote romfs query` says the same): flash without --romfs, "
                "or install a MicroPython build with ROMFS (docs/boards.md)" % PARTITION)
    if len(image) > size:
        return ("the ROMFS image (%d bytes) is larger than the board's partition (%d bytes)"
                % (len(image), size))
    return None


def image_sha(image: bytes) -> str:
    return sha256(image)


class _State:
    """What mpremote's command functions need of its ``State``: our open transport, already
    in the raw REPL (so no second soft reset)."""

    def __init__(self, transport):
        from mpremote.main import State

        self._s = State()
        self._s.transport = transport
        self._s._auto_soft_reset = False

    def __getattr__(self, name):
        return getattr(self._s, name)


def deploy(transport, image: bytes, say=print, partition: int = PARTITION) -> None:
    """Write ``image`` to the partition with mpremote's ``romfs deploy`` (its own chunking,
    compression and ioctls), on ``transport`` (a SerialTransport in the raw REPL)."""
    from mpremote.commands import CommandError, do_romfs
    from mpremote.transport import TransportError

    with tempfile.NamedTemporaryFile(suffix=".romfs", prefix="sipfw-") as f:
        f.write(image)
        f.flush()
        args = argparse.Namespace(command=["deploy"], path=f.name, partition=partition,
                                  mpy=False, output=None)
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                do_romfs(_State(transport), args)
        except (CommandError, TransportError, SystemExit) as e:
            last = [x for x in out.getvalue().replace("\r", "\n").splitlines() if x.strip()]
            raise BoardError("romfs deploy failed: %s" % (str(e) if str(e) not in ("", "1")
                                                        else (last or ["?"])[-1])) from None
    if "ROMFS image deployed" not in out.getvalue():
        raise BoardError("romfs deploy did not finish: %r" % out.getvalue()[-200:])
    say("ROMFS image deployed (%d bytes, partition %d)" % (len(image), partition))
