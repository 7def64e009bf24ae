"""Writing output files atomically: the old file intact, or the new one complete, never torn.

Every figure and text output goes through :func:`atomic_write` (one file) or
:func:`writing_files` (several files that belong together: the pages of a ladder).
Each file is written to a temporary file in its own folder (so the final rename
stays on one file system), flushed to disk, then moved over its name with
``os.replace``, which POSIX makes atomic. Until then nothing exists under the
final name: an error or Ctrl-C while drawing or writing removes the temporary
files and leaves what was there before. The renames of a set of files happen
together at the end, with SIGINT held back for those few microseconds, so an
interrupted run never mixes old and new pages.

Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from visualizer.errors import UsageError

Writer = Callable[[BinaryIO], object]
"""Writes a file's content into the binary file it is given (``figure.savefig(handle, format=...)``)."""

TEMPORARY_SUFFIX = ".part"


def atomic_write(path: Path, writer: Writer) -> Path:
    """Write ``path`` atomically with ``writer``; returns ``path``.

    A path that cannot be written (missing folder, no permission, a directory) is the
    caller's mistake: one UsageError line naming it.
    """
    with writing_files() as files:
        files.write(path, writer)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """:func:`atomic_write` of UTF-8 text."""
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


class PendingFiles:
    """Files written to temporary names, waiting to be moved over their final names together."""

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []
        self._obsolete: list[Path] = []

    def write(self, path: Path, writer: Writer) -> None:
        """Write ``path``'s content to a temporary file beside it (moved into place on commit)."""
        if path.is_dir():
            raise UsageError(f"{path}: is a directory")
        try:
            descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
        except OSError as error:
            raise UsageError(f"{path}: cannot write ({error.strerror or error})") from None
        temporary = Path(name)
        self._pending.append((temporary, path))
        with os.fdopen(descriptor, "wb") as handle:
            writer(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, _mode_for(path))

    def remove_on_commit(self, paths: Iterable[Path]) -> None:
        """Files of an earlier run that would be mistaken for this one's: removed once it is in place."""
        self._obsolete.extend(paths)

    def commit(self) -> list[Path]:
        """Move every file into place (SIGINT held back meanwhile); returns the final paths."""
        with _signals_held():
            for temporary, path in self._pending:
                try:
                    os.replace(temporary, path)
                except OSError as error:
                    raise UsageError(f"{path}: cannot write ({error.strerror or error})") from None
            for path in self._obsolete:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        written = [path for _, path in self._pending]
        self._pending = []
        return written

    def discard(self) -> None:
        """Remove the temporary files (after an error or an interruption)."""
        for temporary, _ in self._pending:
            with contextlib.suppress(OSError):
                temporary.unlink()
        self._pending = []


@contextlib.contextmanager
def writing_files() -> Iterator[PendingFiles]:
    """``with writing_files() as files: files.write(path, writer)...``: all in place at the end, or none."""
    files = PendingFiles()
    try:
        yield files
        files.commit()
    except BaseException:
        files.discard()
        raise


def numbered_siblings(path: Path) -> list[Path]:
    """The files named like pages of ``path`` (``out-1.png``, ``out-2.png``... for ``out.png``) in its folder."""
    pattern = re.compile(re.escape(path.stem) + r"-[1-9][0-9]*" + re.escape(path.suffix))
    try:
        return sorted(sibling for sibling in path.parent.iterdir() if pattern.fullmatch(sibling.name))
    except OSError:
        return []


def check_writable(path: Path) -> None:
    """A file can be written at ``path``: checked before the work, without creating it."""
    if path.is_dir():
        raise UsageError(f"{path}: is a directory")
    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX):
            pass
    except OSError as error:
        raise UsageError(f"{path}: cannot write ({error.strerror or error})") from None


def _mode_for(path: Path) -> int:
    """The permissions ``open()`` would give a new file (or the replaced file's own): mkstemp's are 0600."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT back until the block ends (then it is raised again): the renames of a set happen
    together. Python runs signal handlers in the main thread only, so elsewhere nothing is held."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, _frame: arrived.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
        if arrived:
            signal.raise_signal(signal.SIGINT)
