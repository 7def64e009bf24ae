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


def test_a_wide_figure_is_stored_at_a_resolution_that_fits_the_page() -> None:
    from IPython.core.pylabtools import print_figure
    from matplotlib.figure import Figure

    from tests.render.images import png_size

    def stored_width(figure: Figure) -> int:
        return png_size(print_figure(figure, "png", bbox_inches="tight"))[0]  # as the notebook stores it

    wide, narrow = Figure(figsize=(22, 4), dpi=chapters.NOTEBOOK_DPI), Figure(figsize=(8, 4), dpi=chapters.NOTEBOOK_DPI)
    for figure in (wide, narrow):
        ax = figure.subplots()
        ax.plot([0, 1], [0, 1])
        ax.set_title("a title as wide as the page " * 3)
    assert stored_width(wide) > 1200
    chapters.fit(wide.axes[0])
    assert abs(stored_width(wide) - chapters.NOTEBOOK_WIDTH) <= 2 and wide.dpi < chapters.NOTEBOOK_DPI
    chapters.fit(narrow.axes[0])
    assert narrow.dpi == chapters.NOTEBOOK_DPI
    tall = Figure(figsize=(14, 32), dpi=chapters.NOTEBOOK_DPI)  # 1008 x 2304 pixels: narrow enough, too many
    tall.subplots().plot([0, 1], [0, 1])
    chapters.fit(tall.axes[0])
    width, height = png_size(print_figure(tall, "png", bbox_inches="tight"))
    assert width * height <= chapters.NOTEBOOK_AREA * 1.01 and tall.dpi < chapters.NOTEBOOK_DPI
