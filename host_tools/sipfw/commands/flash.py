"""`sipfw flash`: compile the firmware and copy only what changed (see sipfw.flash)."""

from __future__ import annotations

import time

from ..bootwatch import READY_RE

WAIT_TIMEOUT_S = 20.0  # a boot with Wi-Fi, or a traceback and an 8 s watchdog's reset


def add_parser(sub):
    p = sub.add_parser("flash", help="compile and copy the firmware, only what changed",
                       description="Compile firmware/ for the board (.mpy; main.py and boot.py "
                       "stay source), copy only the files whose hash differs, delete stale "
                       "firmware files (never config.json or user files), write /sipfw.json, "
                       "soft-reset and report the boot: ready (with the app's figures), the "
                       "agent failed to start, a traceback, a crash loop, or nothing at all "
                       "(all but ready exit with status 5).")
    p.add_argument("--port", help="device, serial number or vboard id (default $SIPFW_PORT, "
                   "else the one attached board)")
    p.add_argument("--board", help="board config name (default: from the port's USB id)")
    p.add_argument("--dry-run", action="store_true", help="show what would be copied/deleted")
    p.add_argument("--source", metavar="DIR", help="firmware tree to flash (default: firmware/)")
    p.add_argument("--wait-for", metavar="RE", default=READY_RE,
                   help="line that says the agent is ready (default: %(default)s)")
    p.add_argument("--wait-timeout", metavar="S", type=float, default=WAIT_TIMEOUT_S,
                   help="how long to wait for it; not seeing it is an error (default "
                   "%(default).0f)")
    p.add_argument("--no-reset", action="store_true", help="leave the board in the REPL")
    out_of_ram = p.add_mutually_exclusive_group()
    out_of_ram.add_argument("--romfs", action="store_true",
                            help="put the compiled package in the board's ROMFS partition "
                            "(bytecode out of RAM; mpremote romfs deploy); refused on a board "
                            "without one")
    out_of_ram.add_argument("--frozen", action="store_true",
                            help="the board's MicroPython has sipua frozen in (docs/boards.md): "
                            "copy only main.py/boot.py and remove /sipua from its filesystem")
    p.add_argument("--force", action="store_true",
                   help="copy even when the board's free heap is below what the firmware "
                   "needs (see docs/boards.md)")
    p.set_defaults(func=run)
    return p


def preflight(survey, board, args, image: bytes, say) -> None:
    """Before anything is copied: does the firmware fit the board's heap (sipfw.heapcheck),
    and with --romfs, has the board a partition that takes the image (then write it)."""
    from .. import heapcheck
    from ..errors import BoardError

    layout = "romfs" if args.romfs else "frozen" if args.frozen else "mpy"
    fits, line = heapcheck.verdict(survey.heap_free, survey.maxsize, layout)
    if args.frozen:
        from .. import romfs

        version = romfs.frozen_version(survey.other.get("Z"))
        if version is None:
            raise BoardError("this board's MicroPython has no frozen sipua package: build one "
                             "with board_configs/<board>/manifest.py (docs/boards.md), or "
                             "flash without --frozen. Nothing was copied.")
        say("frozen sipua %s in the board's MicroPython image" % version)
    if image:
        from .. import build, flash, romfs

        # the .mpy files are in the image, not in the copied items flash.flash checks
        flash.check_mpy(survey, build.emitted_mpy_version())
        size, old_sha = romfs.parse_query(survey.other.get("R"))
        reason = romfs.refuse_reason(size, image)
        if reason:
            raise BoardError(reason + ". Nothing was copied.")
    if not fits and not args.force:
        raise BoardError("%s; %s. Nothing was copied." % (line, heapcheck.advice(layout)))
    say(line + ("; --force: copying anyway" if not fits else ""))
    if image and not args.dry_run:
        if old_sha == romfs.image_sha(image):
            say("ROMFS image unchanged (%d bytes)" % len(image))
        else:
            romfs.deploy(board.t, image, say)


def run(args) -> int:
    from .. import boards, bootwatch, build, flash, portshare
    from ..board import open_board
    from ..paths import FIRMWARE_DIR

    def say(msg):
        print(msg, flush=True)

    src = args.source or FIRMWARE_DIR
    port = boards.resolve_port(args.port)
    portshare.borrow(port)  # from a monitor holding it, if one does
    cfg = boards.board_of(port, args.board)
    t0 = time.monotonic()
    items = build.build(src, cfg.get("mpy_arch", "host"), opt=cfg.get("mpy_opt", 0))
    survey_extra, image = "", b""
    if args.frozen:
        from .. import romfs

        items = romfs.split_items(items)[1]
        survey_extra = romfs.FROZEN_QUERY
    if args.romfs:
        from .. import romfs

        rom_items, items = romfs.split_items(items)
        image = romfs.build_image(rom_items)
        survey_extra = romfs.query_code(len(image))
    t_build = time.monotonic() - t0
    manifest = flash.make_manifest(items, build.firmware_version(src), build.git_sha(src),
                                   cfg["name"])
    if image:
        manifest["romfs"] = {"sha256": romfs.image_sha(image), "bytes": len(image)}
    say("%s: %s, %d files built in %.1f s" % (port.device, cfg["name"], len(items), t_build))
    root = cfg.get("fs_root", "/")
    with open_board(port, cfg) as board:
        board.enter_raw(soft_reset=True)
        plan = flash.flash(board, items, manifest, root=root, dry_run=args.dry_run, say=say,
                           mpy_version=build.emitted_mpy_version(),
                           install_hint=cfg.get("install_micropython", ""),
                           survey_extra=survey_extra,
                           preflight=lambda sv: preflight(sv, board, args, image, say))
        if args.dry_run:
            return 0
        t_copy = time.monotonic() - t0
        say("copied %d file(s), deleted %d, in %.1f s (manifest %s %s)"
            % (len(plan.write), len(plan.delete), t_copy, manifest["version"], manifest["git"]))
        if args.no_reset:
            return 0
        board.reboot()
        outcome = board.watch_boot(args.wait_timeout, args.wait_for)
    bootwatch.report(outcome, "flashed", say=say)
    return 0
