"""sockstory: a socket's story told with real packets.

``import visualizer`` stays light: it loads neither Scapy nor matplotlib. The
analysis core (:mod:`visualizer.analysis`) uses only the standard library;
readers live in :mod:`visualizer.sources`, the command line in
:mod:`visualizer.cli`.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "analyse_file"]


def analyse_file(path: str, *, keep_frames: bool = False) -> object:
    """Read and analyse a capture file (see :func:`visualizer.pipeline.analyse_file`)."""
    from visualizer.pipeline import analyse_file as _analyse_file

    return _analyse_file(path, keep_frames=keep_frames)
