"""Atomic output files: the old file intact or the new one complete, never torn, nothing left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import BinaryIO

import pytest

from visualizer.errors import UsageError
from visualizer.files import atomic_write, atomic_write_text, writing_files

ROOT = Path(__file__).parent.parent.parent


def test_an_error_while_writing_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")

    def half_then_fail(handle: BinaryIO) -> None:
        handle.write(b"ne")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(target, half_then_fail)
    assert [path.name for path in tmp_path.iterdir()] == ["out.txt"] and target.read_text() == "old"
    assert atomic_write_text(target, "new") == target and target.read_text() == "new"
    assert [path.name for path in tmp_path.iterdir()] == ["out.txt"]


_SIGINT_WHILE_WRITING = """
import os, signal, sys, time
from pathlib import Path
from visualizer.files import atomic_write

def half_then_ctrl_c(handle):
    handle.write(b"ne")
    handle.flush()
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)  # the signal interrupts this
    handle.write(b"w")

atomic_write(Path(sys.argv[1]), half_then_ctrl_c)
"""


def test_a_real_sigint_while_writing_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    done = subprocess.run(
        [sys.executable, "-c", _SIGINT_WHILE_WRITING, str(target)], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode != 0 and "KeyboardInterrupt" in done.stderr
    assert [path.name for path in tmp_path.iterdir()] == ["out.txt"] and target.read_text() == "old"


def test_sigint_during_the_renames_is_held_until_every_file_is_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A set of pages is replaced together: Ctrl-C between two renames arrives after the last."""
    pages = [tmp_path / f"out-{index}.png" for index in (1, 2, 3)]
    for page in pages:
        page.write_text("old")
    real_replace = os.replace
    signalled = []

    def replace_then_ctrl_c(source: str, target: str) -> None:
        real_replace(source, target)
        if not signalled:
            signalled.append(target)
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(os, "replace", replace_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        with writing_files() as files:
            for page in pages:
                files.write(page, lambda handle: handle.write(b"new"))
    assert signalled and [page.read_text() for page in pages] == ["new"] * 3
    assert sorted(path.name for path in tmp_path.iterdir()) == [page.name for page in pages]


def test_permissions_are_those_of_a_plain_open_or_of_the_replaced_file(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    try:
        fresh = atomic_write_text(tmp_path / "fresh.txt", "x")
        assert fresh.stat().st_mode & 0o777 == 0o644  # mkstemp's own would be 0600
        kept = tmp_path / "kept.txt"
        kept.write_text("old")
        kept.chmod(0o640)
        atomic_write_text(kept, "new")
        assert kept.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(mask)


def test_an_unwritable_place_is_one_usage_error(tmp_path: Path) -> None:
    for path, problem in ((tmp_path / "missing" / "out.png", "cannot write"), (tmp_path, "is a directory")):
        with pytest.raises(UsageError, match=problem):
            atomic_write_text(path, "x")
    assert list(tmp_path.iterdir()) == []
