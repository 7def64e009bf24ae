"""One small hierarchy: every error a user can meet is a SockstoryError, printed as one line."""

from __future__ import annotations

import ast
import inspect
import io
import pickle
from pathlib import Path

import pytest

from visualizer import errors
from visualizer.cli import EXIT_UNREADABLE, main
from visualizer.errors import (
    AnalysisError,
    CaptureFileError,
    CaptureFilterError,
    LiveCaptureError,
    PrivilegeError,
    ScenarioError,
    SockstoryError,
    TracingError,
    UnsafeDestinationError,
    UsageError,
)

PACKAGE = Path(__file__).parent.parent / "visualizer"
EXAMPLES = [
    CaptureFileError("a.pcap", "no such file"),
    UsageError("a.pcap: no TCP stream 4"),
    CaptureFilterError("udp prt 9", "syntax error"),
    PrivilegeError("capture needs root"),
    LiveCaptureError("cannot capture on eth9: No such device"),
    UnsafeDestinationError("refusing 192.0.2.1"),
    ScenarioError("craft-handshake", "no SYN-ACK"),
    AnalysisError("a.pcap: analysis worker failed"),
    TracingError("tracing needs root (CAP_SYS_ADMIN)"),
]


def test_every_error_class_is_a_sockstory_error_and_has_an_example() -> None:
    classes = {value for value in vars(errors).values() if inspect.isclass(value) and issubclass(value, Exception)}
    assert all(issubclass(kind, SockstoryError) for kind in classes)
    assert classes == {type(example) for example in EXAMPLES} | {SockstoryError}


@pytest.mark.parametrize("error", EXAMPLES, ids=lambda error: type(error).__name__)
def test_errors_pickle_as_themselves(error: SockstoryError) -> None:
    """They travel back from a scenario's namespace process and from analysis workers."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error) and "\n" not in str(error)
    assert vars(copy) == vars(error)


def test_messages_name_their_input() -> None:
    assert str(ScenarioError("craft-handshake", "no SYN-ACK")) == "scenario craft-handshake: no SYN-ACK"
    assert str(CaptureFilterError("udp prt 9", "syntax error")) == "bad capture filter 'udp prt 9': syntax error"
    assert isinstance(CaptureFilterError("x", "y"), UsageError)


def _raised_names(source: str) -> list[tuple[int, str]]:
    """(line, name) of every ``raise Name(...)`` / ``raise Name`` in ``source``; bare re-raises are skipped."""
    raised = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(target, ast.Name) and target.id[:1].isupper():
                raised.append((node.lineno, target.id))
    return raised


def _asserts(source: str) -> list[int]:
    return [node.lineno for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Assert)]


def test_the_checks_can_fail() -> None:
    source = "def f(x):\n    assert x\n    raise RuntimeError('no')\n    raise UsageError('ok')\n"
    assert _asserts(source) == [2]
    assert _raised_names(source) == [(3, "RuntimeError"), (4, "UsageError")]


def test_the_package_raises_only_its_own_errors_and_never_asserts() -> None:
    ours = {name for name, value in vars(errors).items() if inspect.isclass(value)}
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        source = path.read_text(encoding="utf-8")
        problems += [f"{name}:{line}: assert" for line in _asserts(source)]
        problems += [f"{name}:{line}: raise {kind}" for line, kind in _raised_names(source) if kind not in ours]
    assert problems == []


def test_a_scenario_error_is_one_line_and_a_non_zero_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    from visualizer.scenarios import runner

    def fail(name: str, out: Path, **options: object) -> None:
        raise ScenarioError(name, "the kernel did not answer the crafted SYN")

    monkeypatch.setattr(runner, "run_scenario", fail)
    err = io.StringIO()
    assert main(["run", "craft-handshake"], stdout=io.StringIO(), stderr=err) == EXIT_UNREADABLE
    assert err.getvalue() == "sockstory: error: scenario craft-handshake: the kernel did not answer the crafted SYN\n"


def test_command_line_names_the_program_as_sudo_can_find_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """sudo searches its own secure_path, not .venv/bin: a path as typed, a bare name resolved, else -m."""
    import shutil
    import sys

    monkeypatch.setattr(sys, "argv", [".venv/bin/sockstory", "run"])
    assert errors.command_line("run loss") == ".venv/bin/sockstory run loss"
    monkeypatch.setattr(sys, "argv", ["sockstory"])
    monkeypatch.setattr(shutil, "which", lambda name: f"/opt/my env/bin/{name}")
    assert errors.command_line("story") == "'/opt/my env/bin/sockstory' story"
    monkeypatch.setattr(sys, "argv", ["/usr/lib/python3/pytest"])
    assert errors.command_line("story") == f"{sys.executable} -m visualizer story"
