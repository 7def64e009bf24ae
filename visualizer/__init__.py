"""sockstory: a socket's story told with real packets.

``import visualizer`` stays light: it loads neither Scapy nor matplotlib (nor
NumPy). The analysis core (:mod:`visualizer.analysis`) uses only the standard
library; readers live in :mod:`visualizer.sources`, live capture and scenarios
in :mod:`visualizer.scenarios`, figures in :mod:`visualizer.render`, the
command line in :mod:`visualizer.cli`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from os import PathLike

    from visualizer.analysis.report import Report

__version__ = "0.1.0"

__all__ = ["__version__", "analyse_file"]


def analyse_file(path: str | PathLike[str], *, keep_frames: bool = False) -> Report:
    """Read and analyse a capture file (see :func:`visualizer.pipeline.analyse_file`)."""
    from visualizer.pipeline import analyse_file as _analyse_file

    return _analyse_file(path, keep_frames=keep_frames)
