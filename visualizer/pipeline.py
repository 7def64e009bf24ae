"""Glue between the edges and the core: read a capture file and analyse it.

Kept apart from :mod:`visualizer.analysis` so the core never opens a file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from visualizer.analysis import Analyzer, FrameAnalysis, Report
from visualizer.sources import CaptureReader, iter_records

ProgressCallback = Callable[[int, int, int], None]
"""Called now and then with (frames so far, bytes read so far, file size)."""

PROGRESS_EVERY = 1 << 14


def iter_file_analysis(
    path: str | os.PathLike[str],
    *,
    keep_frames: bool = False,
    progress: ProgressCallback | None = None,
) -> tuple[Analyzer, CaptureReader, Iterator[FrameAnalysis]]:
    """Open ``path`` and return the analyzer, the reader and the stream of per-frame results.

    The file is checked at once (a non-capture raises CaptureFileError before any
    frame); frames are read and analysed only as the iterator is consumed. When it
    is exhausted, ``reader.warnings`` holds what went wrong part-way and
    ``analyzer.finish()`` gives the report.
    """
    reader = CaptureReader(path)
    analyzer = Analyzer(source=os.fspath(path), keep_frames=keep_frames)

    def frames() -> Iterator[FrameAnalysis]:
        add = analyzer.add
        if progress is None:
            for record in iter_records(reader):
                yield add(record)
        else:
            count = 0
            for record in iter_records(reader):
                yield add(record)
                count += 1
                if not count % PROGRESS_EVERY:
                    progress(count, reader.bytes_read, reader.size)
            progress(count, reader.size, reader.size)

    return analyzer, reader, frames()


def analyse_file(
    path: str | os.PathLike[str], *, keep_frames: bool = False, progress: ProgressCallback | None = None
) -> Report:
    """Read and analyse a whole capture file; warnings about damage land in the report."""
    analyzer, reader, frames = iter_file_analysis(path, keep_frames=keep_frames, progress=progress)
    for _ in frames:
        pass
    report = analyzer.finish()
    report.warnings.extend(reader.warnings)
    return report
