"""The exception hierarchy: mistakes of the caller, never observations.

What a capture *contains* (retransmissions, malformed frames, a file cut short)
is reported as data in the analysis. Exceptions are for requests that cannot be
served at all: a missing file, a file that is not a capture, an unknown stream.
Every message names the input that caused it, so the CLI can print it as one
line.
"""

from __future__ import annotations


class SockstoryError(Exception):
    """Base class of every error sockstory raises on purpose."""


class CaptureFileError(SockstoryError):
    """A capture file cannot be opened or read at all."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class UsageError(SockstoryError):
    """A request that names something that does not exist (a stream, a format)."""
