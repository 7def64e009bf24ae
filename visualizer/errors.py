"""The exception hierarchy: mistakes of the caller, never observations.

What a capture *contains* (retransmissions, malformed frames, a file cut short)
is reported as data in the analysis. Exceptions are for requests that cannot be
served at all: a missing file, a file that is not a capture, an unknown stream,
a filter that does not compile, a live command without root. Every message names
the input that caused it, so the CLI can print it as one line.

    SockstoryError                  exit code 1 unless said otherwise
    ├── CaptureFileError            a capture file cannot be opened or read at all
    ├── UsageError                  a bad request (exit code 2)
    │   └── CaptureFilterError      a BPF filter expression that does not compile
    ├── PrivilegeError              a live command without root
    ├── LiveCaptureError            an interface that cannot be sniffed
    ├── UnsafeDestinationError      a crafted packet addressed outside loopback
    ├── ScenarioError               a scenario whose kernel did not behave as expected
    ├── TracingError                kernel events cannot be recorded here (no root, no tracefs...)
    └── AnalysisError               the analysis of a file stopped (a worker process failed)

Errors carry their inputs as attributes and pickle (they travel from a scenario's
namespace process or an analysis worker back to the caller).
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

    def __reduce__(self) -> tuple[type[CaptureFileError], tuple[str, str]]:
        return (type(self), (self.path, self.problem))


class UsageError(SockstoryError):
    """A request that names something that does not exist (a stream, a format)."""


class CaptureFilterError(UsageError):
    """A BPF filter expression (tcpdump syntax) that libpcap cannot compile."""

    def __init__(self, expression: str, problem: str) -> None:
        super().__init__(f"bad capture filter {expression!r}: {problem}")
        self.expression = expression
        self.problem = problem

    def __reduce__(self) -> tuple[type[CaptureFilterError], tuple[str, str]]:
        return (type(self), (self.expression, self.problem))


class PrivilegeError(SockstoryError):
    """A live command without the privileges it needs."""


def command_line(arguments: str) -> str:
    """``PROGRAM ARGUMENTS`` as it works from here, for the messages and help that show a command.

    After ``./scripts/bootstrap.sh`` the program is ``.venv/bin/sockstory``, on no PATH, and sudo
    looks a bare name up in its own ``secure_path`` anyway: ``sudo sockstory`` finds nothing. So the
    program is named as it was started (``.venv/bin/sockstory`` works from the same folder, also
    after ``sudo``; a bare name is resolved on the PATH), or as this interpreter running
    ``-m visualizer``.
    """
    import os
    import shlex
    import shutil
    import sys

    program = sys.argv[0] if sys.argv else ""
    if os.path.basename(program) == "sockstory":
        words = [program if os.sep in program else shutil.which(program) or program]
    else:
        words = [sys.executable, "-m", "visualizer"]
    return " ".join(shlex.quote(word) for word in words) + " " + arguments


class LiveCaptureError(SockstoryError):
    """An interface that cannot be sniffed (it does not exist, or the capture broke)."""


class UnsafeDestinationError(SockstoryError):
    """A crafted packet addressed outside loopback."""


class ScenarioError(SockstoryError):
    """A scenario whose kernel did not behave as expected (an answer that never came)."""

    def __init__(self, scenario: str, problem: str) -> None:
        super().__init__(f"scenario {scenario}: {problem}")
        self.scenario = scenario
        self.problem = problem

    def __reduce__(self) -> tuple[type[ScenarioError], tuple[str, str]]:
        return (type(self), (self.scenario, self.problem))


class TracingError(SockstoryError):
    """Kernel events cannot be recorded here; the message says why in one line (the packets go on alone)."""


class AnalysisError(SockstoryError):
    """The analysis of a file could not finish (a worker process failed); names the file."""
