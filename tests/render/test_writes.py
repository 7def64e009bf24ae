"""Calls against segments, tested on its artists: a tick per send(), a stem per segment, a link per byte run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from visualizer import chapters
from visualizer.chapters.segments import WritesAndSegments, writes_and_segments
from visualizer.errors import UsageError
from visualizer.render.compare import RUN_COLOURS
from visualizer.render.writes import draw_writes_and_segments

NAGLE = Path(__file__).parent.parent / "data" / "kernel" / "nagle.pcap"


@pytest.fixture(autouse=True)
def _close() -> Iterator[None]:
    yield
    plt.close("all")


def _runs() -> list[WritesAndSegments]:
    experiment = chapters.load(NAGLE)
    return [writes_and_segments(experiment, stream) for stream in (0, 1)]


def _lines(ax: Axes, gid: str) -> list[Line2D]:
    return [line for line in ax.get_lines() if line.get_gid() == gid]


def test_each_call_each_segment_and_each_link_is_drawn_once_per_run() -> None:
    runs = _runs()
    axes = draw_writes_and_segments(runs, ["Nagle", "no delay"], figure=Figure())
    assert len(axes) == 2 and axes[0].get_shared_x_axes().joined(axes[0], axes[1])
    for index, (ax, run) in enumerate(zip(axes, runs, strict=True)):
        assert len(_lines(ax, "call")) == run.writes == 30
        stems = _lines(ax, "segment")
        assert [max(line.get_ydata()) for line in stems] == [segment.length for segment in run.segments]
        assert {to_hex(line.get_color()).upper() for line in stems} == {RUN_COLOURS[index]}
        assert len(_lines(ax, "link")) == sum(len(write.frames) for write in run.calls)
        assert all(min(line.get_ydata()) < 0 for line in _lines(ax, "call"))  # calls under the zero line
        assert len(_lines(ax, "ack")) == len(run.acks)
    nagle_words = [text.get_text() for text in axes[0].texts if text.get_gid() == "writes"]
    assert nagle_words == [  # only the segments that carried several writes are named
        f"frame {segment.frame}: {count} writes, {segment.length} bytes" + (", with the FIN" if segment.fin else "")
        for segment, count in zip(runs[0].segments, runs[0].writes_per_segment, strict=True)
        if count > 1
    ]
    assert len(nagle_words) == 2 and nagle_words[-1].endswith("with the FIN")
    assert not [text for text in axes[1].texts if text.get_gid() == "writes"]
    assert "30 send() calls of 300 bytes \u2192 4 data segments" in axes[0].get_title(loc="left")
    assert "30 data segments, one write each" in axes[1].get_title(loc="left")


def test_a_write_s_link_ends_at_the_segment_that_carried_it() -> None:
    runs = _runs()
    (ax,) = draw_writes_and_segments(runs[:1], ["Nagle"], figure=Figure())
    stem_x = {line.get_xdata()[0] for line in _lines(ax, "segment")}
    assert {line.get_xdata()[1] for line in _lines(ax, "link")} <= stem_x
    call_x = sorted(line.get_xdata()[0] for line in _lines(ax, "call"))
    assert call_x[0] == 0 and call_x == sorted(line.get_xdata()[0] for line in _lines(ax, "link"))


def test_labels_must_name_every_run() -> None:
    with pytest.raises(UsageError, match="one label per run"):
        draw_writes_and_segments(_runs(), ["only one"], figure=Figure())
