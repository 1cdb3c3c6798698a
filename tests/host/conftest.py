"""Fixtures for the host-tool tests: a private vboard registry, virtual boards on ptys
(helpers that are not fixtures live in hostfix.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostfix import Vboard


@pytest.fixture
def registry(tmp_path, monkeypatch) -> Path:
    reg = tmp_path / "registry"
    monkeypatch.setenv("SIPFW_VBOARD_DIR", str(reg))
    monkeypatch.delenv("SIPFW_PORT", raising=False)
    monkeypatch.delenv("SIPFW_FAILPOINT", raising=False)
    return reg


@pytest.fixture
def vboards(tmp_path, registry):
    started: list[Vboard] = []

    # 384k (as the bench rig's boards): `sipfw flash` refuses a 64-bit board with less free
    # heap than the firmware needs (sipfw.heapcheck: ~203 KB as .mpy files today, from
    # board_configs/budgets/heap32.json); tests of that refusal pass a smaller heap.
    def start(name="board", files=None, link=None, heap="384k") -> Vboard:
        root = tmp_path / name
        root.mkdir(exist_ok=True)
        for fname, text in (files or {}).items():
            (root / fname).parent.mkdir(parents=True, exist_ok=True)
            (root / fname).write_text(text)
        board = Vboard(root, registry, link=link, heap=heap)
        started.append(board)
        return board

    yield start
    for board in started:
        board.stop()
