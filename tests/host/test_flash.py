"""`sipfw flash` against virtual boards: only what changed, never a half-written firmware."""

from __future__ import annotations

import hashlib
import json
import time

from hostfix import START_LINE, board_files, firmware_tree, sipfw
from sipfw import boards, faults, flash
from sipfw.board import open_board
from sipfw.build import Item
from sipfw.cli import main as sipfw_main


def test_full_flash_then_a_second_flash_copies_nothing(tmp_path, vboards):
    src = firmware_tree(tmp_path / "fw")
    board = vboards(files={"config.json": '{"accounts": []}', "notes.txt": "mine"})
    t0 = time.monotonic()
    r = sipfw("flash", "--port", board.device, "--source", str(src))
    full_s = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert "agent ready in" in r.stdout
    files = board_files(board.root)
    manifest = json.loads(files["sipfw.json"])
    assert manifest["board"] == "vboard" and manifest["version"] == "0.1.0"
    # .mpy for the package, source for main.py, no host-only module, no temp files
    assert "sipua/config.mpy" in files and "sipua/hal/wifi.mpy" in files
    assert "sipua/_cpython.mpy" not in files and "sipua/config.py" not in files
    assert files["main.py"] == (src / "main.py").read_bytes()
    assert not [f for f in files if f.endswith(flash.TMP_SUFFIX)]
    for path, digest in manifest["files"].items():
        assert hashlib.sha256(files[path]).hexdigest() == digest
    assert files["config.json"] == b'{"accounts": []}' and files["notes.txt"] == b"mine"

    t0 = time.monotonic()
    r = sipfw("flash", "--port", board.device, "--source", str(src))
    again_s = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert "0 file(s) to copy" in r.stdout and "agent ready in" in r.stdout
    assert board_files(board.root) == files
    print("flash full %.2f s, no change %.2f s" % (full_s, again_s))


def test_changed_removed_and_shadowing_files(tmp_path, vboards):
    src = firmware_tree(tmp_path / "fw")
    (src / "sipua" / "extra.py").write_text("X = 1\n")
    board = vboards(files={"config.json": "{}", "config.json.bak": "{}", "lib/user.py": "u"})
    assert sipfw("flash", "--port", board.device, "--source", str(src)).returncode == 0
    # the next firmware: one module changed, one gone; the board grew a stale .py that
    # would shadow the .mpy of the same name
    (src / "sipua" / "extra.py").unlink()
    with open(src / "sipua" / "log.py", "a") as f:
        f.write("\nCHANGED = 1\n")
    (board.root / "sipua" / "sched.py").write_text("raise ImportError('stale')\n")
    r = sipfw("flash", "--port", board.device, "--source", str(src), "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "copy   sipua/log.mpy" in r.stdout
    assert "delete sipua/extra.mpy" in r.stdout and "delete sipua/sched.py" in r.stdout
    assert (board.root / "sipua" / "extra.mpy").exists()  # dry run: nothing changed
    r = sipfw("flash", "--port", board.device, "--source", str(src))
    assert r.returncode == 0, r.stderr
    assert "1 file(s) to copy" in r.stdout and "2 to delete" in r.stdout
    files = board_files(board.root)
    assert "sipua/extra.mpy" not in files and "sipua/sched.py" not in files
    assert files["config.json"] == b"{}" and files["config.json.bak"] == b"{}"
    assert files["lib/user.py"] == b"u"


def test_killed_mid_copy_leaves_the_old_firmware_booting(tmp_path, vboards):
    old = firmware_tree(tmp_path / "old", version="old")
    board = vboards()
    assert sipfw("flash", "--port", board.device, "--source", str(old)).returncode == 0
    before = board_files(board.root)

    new = firmware_tree(tmp_path / "new", version="new")
    for mod in ("log.py", "sched.py", "config.py", "console.py"):
        with open(new / "sipua" / mod, "a") as f:
            f.write("\nNEW = 1\n")
    # SIGKILL in the middle of the third file's chunks: no cleanup runs, as with a pulled
    # cable; the board is left inside a half-sent raw-REPL exec
    r = sipfw("flash", "--port", board.device, "--source", str(new),
              env={"SIPFW_FAILPOINT": "flash-chunk:3"})
    assert r.returncode == -9
    after = board_files(board.root)
    staged = [f for f in after if f.endswith(flash.TMP_SUFFIX)]
    assert staged, "the kill came before anything was staged"
    assert {f: v for f, v in after.items() if f not in staged} == before

    # the old firmware still boots: get the board back and soft-reboot it
    with open_board(boards.resolve_port(board.device)) as b:
        b.enter_raw(soft_reset=False)
        b.reboot()
        out = b.watch_boot(10, r"app start version=\w+")
        assert out.state == "ready", b.boot_output
        assert (START_LINE % "old") in b.boot_output

    # and the next flash completes, cleaning up the staged files
    r = sipfw("flash", "--port", board.device, "--source", str(new))
    assert r.returncode == 0, r.stderr
    final = board_files(board.root)
    assert not [f for f in final if f.endswith(flash.TMP_SUFFIX)]
    assert json.loads(final["sipfw.json"])["files"]["sipua/log.mpy"] == hashlib.sha256(
        final["sipua/log.mpy"]).hexdigest()


def test_board_reset_mid_copy_is_one_clear_error(tmp_path, vboards, monkeypatch, capsys):
    old = firmware_tree(tmp_path / "old", version="old")
    board = vboards()
    assert sipfw("flash", "--port", board.device, "--source", str(old)).returncode == 0
    before = board_files(board.root)
    new = firmware_tree(tmp_path / "new", version="new")
    for mod in ("log.py", "sched.py", "config.py"):
        with open(new / "sipua" / mod, "a") as f:
            f.write("\nNEW = 2\n")

    def reset_board(name):  # the board resets (its interpreter dies) after the first file
        if name == "flash-file":
            import os
            import signal

            for pid in board.interpreter_pids():
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.3)

    monkeypatch.setattr(faults, "hit", reset_board)
    rc = sipfw_main(["flash", "--port", board.device, "--source", str(new)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 5, err
    assert len(err) == 1 and err[0].startswith("sipfw flash: %s:" % board.device), err
    after = board_files(board.root)
    assert {f: v for f, v in after.items() if not f.endswith(flash.TMP_SUFFIX)} == before


def test_looping_main_is_recovered(tmp_path, vboards):
    src = firmware_tree(tmp_path / "fw")
    # main.py loops, and swallows the first Ctrl-C of each of three rounds: a single
    # Ctrl-C is not enough, the burst strategy is
    looping = ("import time\nfor _ in range(3):\n    try:\n        while True:\n"
               "            time.sleep(0.02)\n    except KeyboardInterrupt:\n        pass\n"
               "while True:\n    time.sleep(0.02)\n")
    board = vboards(files={"main.py": looping})
    board.wait_file("main.py")
    time.sleep(0.5)  # main.py is running
    r = sipfw("flash", "--port", board.device, "--source", str(src))
    assert r.returncode == 0, r.stderr
    assert "agent ready in" in r.stdout


def test_plan_is_pure_and_tolerates_a_broken_manifest():
    items = [Item("main.py", b"m", "h1", ""), Item("sipua/a.mpy", b"a", "h2", "")]
    sv = flash.parse_survey("M {not json\nF main.py h1\nF sipua/a.mpy old\nF sipua/b.py x\n"
                            "F boot.py y\nF config.json z\nF main.py.sipfw-tmp t\nD sipua\n"
                            "D sipua/gone\nEND\n")
    assert sv.manifest is None
    plan = flash.make_plan(items, sv)
    assert [it.remote for it in plan.write] == ["sipua/a.mpy"]
    # boot.py is not ours (no manifest says so): kept; config.json never touched
    assert plan.delete == ["main.py.sipfw-tmp", "sipua/b.py"]
    assert plan.rmdirs == ["sipua/gone"] and plan.mkdirs == []


def test_progress_bar_only_on_a_terminal():
    import io

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        p = flash.Progress(200, stream=stream)
        p.update(50, "sipua/log.mpy")
        p.update(200, "commit")
        p.finish()
    assert pipe.getvalue() == ""
    out = tty.getvalue()
    assert "\r[#######" in out and " 25% sipua/log.mpy" in out and "100% commit" in out
    assert out.endswith("\n")


def test_mpy_version_mismatch_refused_before_copying():
    sv = flash.parse_survey("F main.py h\nV 2822 1.29.0\nEND\n")
    assert sv.mpy_version() == "6.3" and sv.micropython == "1.29.0"
    flash.check_mpy(sv, "6.3")  # the same: fine
    try:
        flash.check_mpy(sv, "6.4", "pip install newer")
    except flash.BoardError as e:
        assert "loads .mpy v6.3; these tools build .mpy v6.4. Nothing was copied." in str(e)
        assert "pip install newer" in str(e)
    else:
        raise AssertionError("a mismatch was accepted")
    old = flash.parse_survey("V 0 1.12.0\nEND\n")  # too old to say: not refused here
    assert old.mpy_version() is None
    flash.check_mpy(old, "6.3")
