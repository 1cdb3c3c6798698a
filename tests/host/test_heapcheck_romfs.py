"""`sipfw flash` tells the user before it fails: the board's free heap against the firmware's
measured need (sipfw.heapcheck), and `--romfs` on boards with and without a ROMFS partition
(sipfw.romfs)."""

from __future__ import annotations

import json

import pytest
from hostfix import board_files, firmware_tree, sipfw
from sipfw import build, flash, heapcheck, romfs
from sipfw.errors import ConfigError
from sipfw.paths import FIRMWARE_DIR

KB = 1024


def test_budgets_file_has_every_phase_and_the_image():
    data = heapcheck.load_budgets()
    assert data["unit"] == "bytes"
    for phase in ("booted", "udp_failover", "tcp_registered", "in_call", "after_call",
                  "refreshes"):
        entry = data["phases"][phase]
        assert entry["guard"] > 0 and entry["budget"] > 0
    assert data["mpy_image"]["budget"] > 0


def test_need_scales_with_word_size_and_layout():
    budgets = {"phases": {"booted": {"guard": 35 * KB, "budget": 24 * KB},
                          "in_call": {"guard": 145 * KB, "budget": 88 * KB}}}
    assert heapcheck.need_bytes(budgets, 4) == 145 * KB  # the worst phase, 32-bit
    assert heapcheck.need_bytes(budgets, 8) == int(145 * KB * 1.4)
    assert heapcheck.need_bytes(budgets, 4, "romfs") == int(145 * KB * 0.7)
    assert heapcheck.word_bytes(2 ** 31 - 1) == 4 and heapcheck.word_bytes(2 ** 63 - 1) == 8
    fits, line = heapcheck.verdict(100 * KB, 2 ** 31 - 1, budgets=budgets)
    assert not fits
    assert line == ("heap: the firmware needs ~145 KB as .mpy files on a 32-bit board; "
                    "this board has 100 KB free")
    fits, line = heapcheck.verdict(160 * KB, 2 ** 31 - 1, budgets=budgets)
    assert fits and line.endswith("this board has 160 KB free (little room for garbage and "
                                  "fragmentation: expect collections mid-call)")
    assert heapcheck.verdict(182 * KB, 2 ** 31 - 1, budgets=budgets)[1].endswith("182 KB free")
    fits, line = heapcheck.verdict(130 * KB, 2 ** 31 - 1, "romfs", budgets=budgets)
    assert fits and "~101 KB with its bytecode in ROMFS" in line
    assert heapcheck.verdict(-1, 0, budgets=budgets) == (
        True, "heap: not checked (the board does not report its free heap)")


def test_a_broken_budgets_file_names_the_key(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"phases": {"in_call": {"guard": "big", "budget": 1}}}))
    with pytest.raises(ConfigError, match=r"phases\.in_call\.guard must be a positive number"):
        heapcheck.load_budgets(str(path))
    path.write_text("{")
    with pytest.raises(ConfigError, match="not JSON"):
        heapcheck.load_budgets(str(path))


def test_survey_reads_heap_word_size_and_extra_lines():
    sv = flash.parse_survey("H 96000 9223372036854775807\nF main.py h\nR 0 -\nEND\n")
    assert sv.heap_free == 96000 and heapcheck.word_bytes(sv.maxsize) == 8
    assert sv.other == {"R": "0 -"}
    assert romfs.parse_query(sv.other.get("R")) == (0, "")
    assert romfs.parse_query("262144 ab12") == (262144, "ab12")
    assert romfs.parse_query(None) == (0, "")


def test_flash_refuses_a_board_with_too_little_heap_then_force_copies(tmp_path, vboards):
    src = firmware_tree(tmp_path / "fw")
    board = vboards(files={"config.json": "{}"}, heap="100k")
    before = board_files(board.root)
    r = sipfw("flash", "--port", board.device, "--source", str(src))
    print(r.stdout + r.stderr)
    assert r.returncode == 5, r.stdout + r.stderr
    need = heapcheck.need_bytes(heapcheck.load_budgets(), 8) // KB
    line = r.stderr.strip()
    assert line.startswith("sipfw flash: heap: the firmware needs ~%d KB as .mpy files on a "
                           "64-bit board; this board has " % need), line
    free = int(line.split("this board has ")[1].split()[0])
    assert 80 < free < 100  # a 100k heap, minus the REPL and the survey's own code
    assert line.endswith("; use --romfs or a frozen build (docs/boards.md), or --force to "
                         "copy anyway. Nothing was copied."), line
    assert board_files(board.root) == before

    r = sipfw("flash", "--port", board.device, "--source", str(src), "--force",
              "--no-reset")
    assert r.returncode == 0, r.stderr
    assert "; --force: copying anyway" in r.stdout
    files = board_files(board.root)
    assert "sipua/config.mpy" in files and "sipfw.json" in files


def test_flash_on_a_board_with_enough_heap_says_so(tmp_path, vboards):
    src = firmware_tree(tmp_path / "fw")
    board = vboards(heap="512k")
    r = sipfw("flash", "--port", board.device, "--source", str(src), "--dry-run")
    assert r.returncode == 0, r.stderr
    [line] = [x for x in r.stdout.splitlines() if x.startswith("heap:")]
    free = int(line.split("this board has ")[1].split()[0])
    assert 480 < free < 512 and "64-bit board" in line


def test_romfs_refused_on_a_board_without_a_partition(tmp_path, vboards):
    """The unix port (the vboard) has vfs.VfsRom but no vfs.rom_ioctl: no ROMFS segments."""
    src = firmware_tree(tmp_path / "fw")
    board = vboards(files={"config.json": "{}"})
    before = board_files(board.root)
    r = sipfw("flash", "--port", board.device, "--source", str(src), "--romfs")
    assert r.returncode == 5, r.stdout + r.stderr
    assert r.stderr.strip() == (
        "sipfw flash: this board's MicroPython has no ROMFS partition (no vfs.rom_ioctl, or "
        "no partition 0; `mpremote romfs query` says the same): flash without --romfs, or "
        "install a MicroPython build with ROMFS (docs/boards.md). Nothing was copied.")
    assert board_files(board.root) == before
    # mpremote's own query agrees
    import subprocess

    from hostfix import BIN
    q = subprocess.run([str(BIN / "mpremote"), "connect", board.device, "romfs", "query"],
                       capture_output=True, text=True, timeout=30)
    assert "ROMFS is not enabled on this device" in q.stdout, q.stdout + q.stderr


def test_romfs_image_holds_the_package_and_only_it(tmp_path):
    items = build.build(FIRMWARE_DIR, "xtensawin")
    rom, fs = romfs.split_items(items)
    assert [it.remote for it in fs] == ["main.py"]
    image = romfs.build_image(rom)
    assert image.startswith(b"\xd2\xcd\x31")  # mpremote's ROMFS header
    for it in rom:  # every .mpy is in the image byte for byte
        assert it.data in image
    assert romfs.refuse_reason(len(image), image) is None
    assert "larger than the board's partition" in romfs.refuse_reason(len(image) - 1, image)


class RomBoard:
    """A board's ROMFS partition behind mpremote's own transport code: ``exec_raw`` runs the
    board-side code mpremote (and the survey query) send, in CPython, against a ``vfs``
    whose ``rom_ioctl`` writes a bytearray as a port's flash driver does (prepare erases,
    write stores, 1 partition). Everything above ``exec_raw`` is mpremote's."""

    def __new__(cls, size: int = 256 * KB, block: int = 4096):
        import builtins
        import io
        import types

        from mpremote.transport_serial import SerialTransport

        class T(SerialTransport):
            def __init__(self):
                self.in_raw_repl = True
                self.rom = bytearray(b"\xff" * size)
                self.prepared = []
                vfs = types.ModuleType("vfs")
                vfs.rom_ioctl = self.ioctl
                vfs.umount = lambda path: None
                real_import = builtins.__import__

                def imp(name, *a, **kw):
                    if name == "vfs":
                        return vfs
                    if name == "deflate":  # as on a port built without it
                        raise ImportError("no module named 'deflate'")
                    return real_import(name, *a, **kw)

                self.ns = {"__builtins__": dict(vars(builtins), __import__=imp)}
                self.io = io

            def ioctl(self, op, rom_id=0, *args):
                if op == 1:
                    return 1
                if rom_id != 0:
                    return -19
                if op == 2:
                    return memoryview(self.rom)
                if op == 6:
                    return block
                if op == 3:  # prepare (erase) offset, length; or length from 0
                    off, n = (args[0], args[1]) if len(args) == 2 else (0, args[0])
                    self.rom[off:off + n] = b"\xff" * n
                    self.prepared.append((off, n))
                    return 16
                if op == 4:
                    off, buf = args
                    self.rom[off:off + len(buf)] = buf
                    return 0
                return 0

            def exec_raw(self, command, timeout=10, data_consumer=None):
                import contextlib
                import traceback

                out = self.io.StringIO()
                with contextlib.redirect_stdout(out):
                    try:
                        exec(command, self.ns)
                    except Exception:  # noqa: BLE001 - a board reports any error
                        return out.getvalue().encode(), traceback.format_exc().encode()
                return out.getvalue().encode(), b""

        return T()


def _survey_rom(t, image: bytes) -> tuple[int, str]:
    out, err = t.exec_raw("import hashlib, binascii\n" + romfs.query_code(len(image)))
    assert not err, err
    sv = flash.parse_survey(out.decode() + "END\n")
    return romfs.parse_query(sv.other.get("R"))


def test_romfs_deploy_with_mpremote_then_unchanged_is_skipped():
    from types import SimpleNamespace

    from sipfw.commands.flash import preflight

    items = build.build(FIRMWARE_DIR, "armv6m")
    image = romfs.build_image(romfs.split_items(items)[0])
    t = RomBoard()
    size, sha = _survey_rom(t, image)
    assert size == 256 * KB and sha != romfs.image_sha(image)

    said = []
    board = SimpleNamespace(t=t)
    args = SimpleNamespace(romfs=True, frozen=False, force=False, dry_run=False)
    sv = flash.Survey(heap_free=150 * KB, maxsize=2 ** 31 - 1, other={"R": "%d %s" % (size, sha)})
    preflight(sv, board, args, image, said.append)
    assert bytes(t.rom[:len(image)]) == image  # written by mpremote's romfs deploy
    assert said[0].startswith("heap: the firmware needs ~") and "in ROMFS" in said[0]
    assert said[1] == "ROMFS image deployed (%d bytes, partition 0)" % len(image)

    size, sha = _survey_rom(t, image)
    assert sha == romfs.image_sha(image)
    t.prepared.clear()
    said.clear()
    preflight(flash.Survey(heap_free=150 * KB, maxsize=2 ** 31 - 1,
                           other={"R": "%d %s" % (size, sha)}), board, args, image, said.append)
    assert said[1] == "ROMFS image unchanged (%d bytes)" % len(image) and not t.prepared

    # too small a heap even with the bytecode in ROMFS: refused, nothing written
    t2 = RomBoard()
    with pytest.raises(flash.BoardError, match="use a frozen build"):
        preflight(flash.Survey(heap_free=20 * KB, maxsize=2 ** 31 - 1,
                               other={"R": "%d -" % size}), SimpleNamespace(t=t2), args, image,
                  said.append)
    assert t2.rom == bytearray(b"\xff" * 256 * KB)
    # a board that loads another .mpy version: refused before the image is written
    with pytest.raises(flash.BoardError, match=r"loads \.mpy v6\.1; these tools build"):
        preflight(flash.Survey(heap_free=150 * KB, maxsize=2 ** 31 - 1, mpy=6 | (1 << 8),
                               other={"R": "%d -" % size}), SimpleNamespace(t=t2), args, image,
                  said.append)
    assert t2.rom == bytearray(b"\xff" * 256 * KB)
    # a partition too small for the image: refused by size, before mpremote is asked
    with pytest.raises(flash.BoardError, match="larger than the board's partition"):
        preflight(flash.Survey(heap_free=150 * KB, maxsize=2 ** 31 - 1,
                               other={"R": "4096 -"}), SimpleNamespace(t=t2), args, image,
                  said.append)


def test_frozen_refused_on_a_board_without_the_frozen_package(tmp_path, vboards):
    src = firmware_tree(tmp_path / "fw")
    board = vboards(files={"config.json": "{}"})
    before = board_files(board.root)
    r = sipfw("flash", "--port", board.device, "--source", str(src), "--frozen")
    assert r.returncode == 5, r.stdout + r.stderr
    assert r.stderr.strip() == (
        "sipfw flash: this board's MicroPython has no frozen sipua package: build one with "
        "board_configs/<board>/manifest.py (docs/boards.md), or flash without --frozen. "
        "Nothing was copied.")
    assert board_files(board.root) == before
    r = sipfw("flash", "--port", board.device, "--source", str(src), "--frozen", "--romfs")
    assert r.returncode == 2 and "not allowed with argument" in r.stderr


def test_frozen_board_gets_main_only_and_a_smaller_need():
    from types import SimpleNamespace

    from sipfw.commands.flash import preflight

    sv = flash.parse_survey("H 70000 2147483647\nZ 0.1.0\nEND\n")
    assert romfs.frozen_version(sv.other.get("Z")) == "0.1.0"
    assert romfs.frozen_version("-") is None and romfs.frozen_version(None) is None
    said = []
    args = SimpleNamespace(romfs=False, frozen=True, force=False, dry_run=False)
    preflight(sv, None, args, b"", said.append)
    need = heapcheck.need_bytes(heapcheck.load_budgets(), 4, "frozen")
    assert need < 70000
    assert said[0] == "frozen sipua 0.1.0 in the board's MicroPython image"
    assert said[1].startswith("heap: the firmware needs ~%d KB frozen into the MicroPython "
                              "image on a 32-bit board; this board has 68 KB free"
                              % (need // KB)), said
    with pytest.raises(flash.BoardError, match="a board with more RAM"):
        preflight(flash.parse_survey("H 30000 2147483647\nZ 0.1.0\nEND\n"), None, args, b"",
                  said.append)


def test_romfs_layout_factor_is_measured(tmp_path):
    """heapcheck's 0.7 for bytecode in ROMFS: every module imported from a VfsRom image keeps
    at most that share of what the same .mpy files keep (64-bit unix port;
    bench/bench_boards.py prints the same figures)."""
    from hostfix import BIN
    from sipfw.boardcheck import romfs_heap

    kept = romfs_heap(str(BIN / "micropython"), tmp_path)
    print("all %d modules imported: %d B as .mpy, %d B from ROMFS (%.2f)"
          % (kept["modules"], kept["mpy"], kept["rom"], kept["ratio"]))
    assert kept["mpy"] > 100_000  # it did import the firmware
    assert kept["ratio"] <= heapcheck.LAYOUT_FACTOR["romfs"]
