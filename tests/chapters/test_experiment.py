"""The notebooks' shared experiment: a capture read back the way `sockstory draw` and `narrate` read it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from visualizer import chapters
from visualizer.cli import main
from visualizer.errors import UsageError

CAPTURES = Path(__file__).parent.parent / "data" / "scenarios" / "captures"


def test_a_loaded_capture_tells_the_same_story_as_the_command() -> None:
    experiment = chapters.load(CAPTURES / "loss.pcap")
    out, err = io.StringIO(), io.StringIO()
    assert main(["narrate", str(CAPTURES / "loss.pcap")], stdout=out, stderr=err) == 0
    assert experiment.narration() == out.getvalue()
    assert experiment.kernel is None and experiment.endpoints() == []


def test_the_ladder_holds_one_conversation_and_is_titled_with_its_outcome() -> None:
    experiment = chapters.load(CAPTURES / "web.pcap")
    layout = experiment.ladder(3)
    numbers = {frame.record.number for frame in experiment.frames_of(3)}
    assert layout.frames == len(numbers) and numbers
    assert layout.title.startswith("web: TCP stream 3") and f"({len(numbers)} frames)" in layout.title
    assert experiment.ladder(None).frames == experiment.report.frames


def test_an_unknown_stream_is_named() -> None:
    with pytest.raises(UsageError, match="story.pcap: no UDP stream 0"):
        chapters.load(CAPTURES / "story.pcap").conversation(0, "udp")


def test_the_workspace_is_made_under_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    assert chapters.workspace().parent == tmp_path
