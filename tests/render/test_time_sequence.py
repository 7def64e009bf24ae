"""The time-sequence graph, on its artists: one mark per finding, limits that hold the data, units on ticks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import matplotlib.pyplot as plt
import numpy
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from visualizer.analysis.report import ANALYSIS_BITS, FrameAnalysis
from visualizer.model import FIN, RST, SYN
from visualizer.pipeline import analyse_file
from visualizer.render.time_sequence import (
    BYTES,
    GID,
    MARKS,
    SECONDS,
    TimeSequence,
    UnitFormatter,
    draw_time_sequence,
    draw_time_sequence_figure,
)

ROOT = Path(__file__).parent.parent.parent
SCENARIOS = ROOT / "tests" / "data" / "scenarios" / "captures"
CORPUS = ROOT / "tests" / "data" / "corpus" / "captures"
CAPTURES = {
    "story": (SCENARIOS / "story.pcap", 0),
    "loss": (SCENARIOS / "loss.pcap", 0),
    "zero-window": (SCENARIOS / "zero-window.pcap", 0),
    "bulk": (SCENARIOS / "bulk.pcap", 0),
    "keepalive": (SCENARIOS / "keepalive.pcap", 0),
    "silent-client": (SCENARIOS / "craft-silent-client.pcap", 0),
    "rst-injection": (SCENARIOS / "craft-rst-injection.pcap", 0),
    "lossy-bulk": (CORPUS / "zeek-206_example_a.pcap", 1),
    "ssh-dups": (CORPUS / "zeek-ssh-dups.pcap", 0),
}
TIME_TICK = re.compile(r"^-?[\d,]+(\.\d+)? (µs|ms|s)$")
BYTES_TICK = re.compile(r"^-?[\d,]+(\.\d+)? (B|KB|MB)$")


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def stream_frames(name: str) -> list[FrameAnalysis]:
    path, stream = CAPTURES[name]
    report = analyse_file(path, keep_frames=True)
    return [frame for frame in report.frame_analyses if frame.protocol == "tcp" and frame.stream == stream]


def drawn(name: str) -> tuple[Figure, list[Axes], list[FrameAnalysis]]:
    frames = stream_frames(name)
    figure = Figure(figsize=(11, 10), layout="constrained")
    axes = draw_time_sequence_figure(frames, figure=figure, stream=CAPTURES[name][1])
    figure.canvas.draw()  # tick labels exist only once drawn
    return figure, axes, frames


def lines(ax: Axes, kind: str) -> list[Line2D]:
    return [line for line in ax.lines if line.get_gid() == GID + kind]


def mark_count(ax: Axes, kind: str) -> int:
    return sum(len(line.get_xdata()) for line in lines(ax, kind))


def direction_of(ax: Axes) -> bool:
    return "initiator → responder" in ax.get_title(loc="left")


def expected_marks(frames: list[FrameAnalysis], from_initiator: bool) -> dict[str, int]:
    """Per kind of mark, the frames the analysis flagged (or the flags set) that the graph of the
    direction ``from_initiator`` must mark: its own segments, and the ACKs coming back for them."""
    sent = [frame for frame in frames if frame.from_initiator == from_initiator]
    acks = [frame for frame in frames if frame.from_initiator != from_initiator]
    counts = {
        kind: sum(1 for frame in sent if frame.analysis & ANALYSIS_BITS[kind])
        for kind in ("retransmission", "not_received", "zero_window_probe", "keep_alive")
    }
    counts |= {
        kind: sum(1 for frame in acks if frame.analysis & ANALYSIS_BITS[kind])
        for kind in ("duplicate_ack", "zero_window")
    }
    for kind, bit in (("syn", SYN), ("fin", FIN), ("rst", RST)):
        counts[kind] = sum(1 for frame in sent if frame.record.tcp_flags & bit)
    return counts


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_one_mark_per_flagged_frame_in_each_direction(name: str) -> None:
    _, axes, frames = drawn(name)
    assert axes
    for ax in axes:
        expected = expected_marks(frames, direction_of(ax))
        assert {kind: mark_count(ax, kind) for kind in MARKS} == expected


def test_the_lossy_bulk_transfer_shows_every_retransmission_its_cause_and_the_sacks() -> None:
    _, axes, frames = drawn("lossy-bulk")
    download = next(ax for ax in axes if not direction_of(ax))
    retransmitted = [f for f in frames if not f.from_initiator and f.analysis & ANALYSIS_BITS["retransmission"]]
    assert mark_count(download, "retransmission") == len(retransmitted) == 13
    assert mark_count(download, "duplicate_ack") == 80
    assert mark_count(download, "not_received") == 12
    sacks = lines(download, "sack")[0]
    assert numpy.count_nonzero(numpy.isfinite(sacks.get_ydata())) > 0
    # The retransmissions are drawn above the duplicate ACKs that sit on the same sequence numbers.
    assert lines(download, "retransmission")[0].get_zorder() > lines(download, "duplicate_ack")[0].get_zorder()


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_ticks_carry_units_and_no_axis_has_an_offset_text(name: str) -> None:
    _, axes, _ = drawn(name)
    bottom = axes[-1]
    time_labels = [label.get_text() for label in bottom.get_xticklabels() if label.get_text()]
    assert len(time_labels) >= 3 and all(TIME_TICK.match(label) for label in time_labels), time_labels
    for ax in axes:
        byte_labels = [label.get_text() for label in ax.get_yticklabels() if label.get_text()]
        assert len(byte_labels) >= 3 and all(BYTES_TICK.match(label) for label in byte_labels), byte_labels
        assert ax.xaxis.get_offset_text().get_text() == ""
        assert ax.yaxis.get_offset_text().get_text() == ""


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_the_y_limits_hold_every_point_but_the_window_edge(name: str) -> None:
    _, axes, _ = drawn(name)
    for ax in axes:
        low, high = ax.get_ylim()
        for line in ax.lines:
            if line.get_gid() == GID + "window":
                continue
            ys = numpy.asarray(line.get_ydata(), dtype=float)
            ys = ys[numpy.isfinite(ys)]
            assert len(ys) and low <= ys.min() and ys.max() <= high, line.get_gid()


def test_the_graph_is_scaled_to_the_data_not_to_a_large_window() -> None:
    """Bulk: a 200 KB transfer into a 65 KB+ window. The window edge runs far above the last byte:
    the y axis ends near the data (tcptrace would scale to the window line)."""
    _, (ax,), frames = drawn("bulk")
    highest = max(frame.seq + frame.record.payload_length for frame in frames if frame.from_initiator)
    window = lines(ax, "window")[0]
    assert max(window.get_ydata()) > 1.2 * highest
    assert ax.get_ylim()[1] < 1.1 * highest


def test_the_window_edge_is_in_the_legend_only_where_it_shows() -> None:
    _, (ax,), _ = drawn("zero-window")
    assert "ACK + advertised window (how far the sender may go)" in legend_labels(ax)
    _, axes, _ = drawn("story")
    for ax in axes:
        assert not any(label.startswith("ACK + advertised window") for label in legend_labels(ax))
        assert "the window never limited the sender" in ax.get_legend().get_title().get_text()


def legend_labels(ax: Axes) -> list[str]:
    return [text.get_text() for text in ax.get_legend().get_texts()]


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_the_legend_names_every_kind_drawn_and_nothing_else(name: str) -> None:
    _, axes, _ = drawn(name)
    for ax in axes:
        low_x, high_x = ax.get_xlim()
        low_y, high_y = ax.get_ylim()
        shown = set()
        for line in ax.lines:
            xs = numpy.asarray(line.get_xdata(), dtype=float)
            ys = numpy.asarray(line.get_ydata(), dtype=float)
            if line.get_gid() == GID + "window":  # a step reaches until the next point
                xs = numpy.r_[xs[1:], numpy.inf]
            inside = (xs >= low_x) & (ys >= low_y) & (ys <= high_y)
            if numpy.any(inside):
                shown.add(line.get_label())
        labels = legend_labels(ax)
        assert len(labels) == len(set(labels))
        assert set(labels) == shown


def test_a_direction_without_data_gets_no_panel_and_the_figure_says_so() -> None:
    figure, axes, _ = drawn("bulk")
    assert len(axes) == 1 and direction_of(axes[0])
    assert "sends no data" in figure.get_suptitle()
    figure, axes, _ = drawn("story")
    assert [direction_of(ax) for ax in axes] == [True, False]
    assert figure.get_suptitle() == ""


def test_both_directions_share_one_time_range() -> None:
    _, (upper, lower), _ = drawn("lossy-bulk")
    assert upper.get_xlim() == lower.get_xlim()
    first = min(min(line.get_xdata()) for ax in (upper, lower) for line in ax.lines if len(line.get_xdata()))
    assert upper.get_xlim()[0] <= first


def test_a_long_idle_pause_is_shortened_and_labelled_but_a_timer_s_is_not() -> None:
    """The story's client closes 20 ms after a 0.4 ms exchange: the pause becomes a band that says
    its length. The silent client's retransmission timeouts (doubling) keep their real lengths."""
    _, axes, _ = drawn("story")
    for ax in axes:
        bands = [patch for patch in ax.patches if patch.get_gid() == GID + "pause"]
        assert len(bands) == 1
        assert any(re.fullmatch(r"20\.\d ms pause, shortened", text.get_text()) for text in ax.texts)
        assert ax.get_xscale() == "function"
    _, axes, _ = drawn("silent-client")
    assert all(not ax.patches and ax.get_xscale() == "linear" for ax in axes)


def test_one_direction_can_be_drawn_on_its_own_axes() -> None:
    frames = stream_frames("loss")
    ax = draw_time_sequence(TimeSequence.of(frames, 0), from_initiator=True)
    assert ax.get_title(loc="left").startswith("TCP stream 0, initiator → responder: 127.0.0.1:")
    assert mark_count(ax, "retransmission") == 1 and mark_count(ax, "not_received") == 1


@pytest.mark.parametrize(
    ("unit", "ticks", "labels"),
    [
        (SECONDS, [0.0, 0.0002, 0.0004], ["0 µs", "200 µs", "400 µs"]),
        (SECONDS, [0.0, 0.0005, 0.001, 0.0015], ["0.0 ms", "0.5 ms", "1.0 ms", "1.5 ms"]),
        (SECONDS, [0.0, 5.0, 10.0], ["0 s", "5 s", "10 s"]),
        (BYTES, [0, 5, 10], ["0 B", "5 B", "10 B"]),
        (BYTES, [0, 500, 1000, 1500], ["0.0 KB", "0.5 KB", "1.0 KB", "1.5 KB"]),
        (BYTES, [0, 1_000_000, 2_000_000], ["0 MB", "1 MB", "2 MB"]),
    ],
)
def test_tick_labels_use_one_prefix_per_axis(unit: object, ticks: list[float], labels: list[str]) -> None:
    formatter = UnitFormatter(unit)  # type: ignore[arg-type]
    assert formatter.format_ticks(ticks) == labels
    assert formatter.get_offset() == ""


def test_a_mark_far_from_the_data_is_pinned_to_the_edge_with_its_number() -> None:
    """An out-of-window RST a billion bytes away would squash 5 bytes of data into one line: it is
    drawn at the top of the range, labelled with its sequence number, and counted like the others."""
    _, (ax,), frames = drawn("rst-injection")
    far = [frame.seq for frame in frames if frame.record.tcp_flags & RST and frame.seq > 1_000_000]
    assert far == [1_073_741_830]
    assert ax.get_ylim()[1] < 200
    labels = [text.get_text() for text in ax.texts if text.get_gid() == GID + "far-mark"]
    assert labels == ["RST at seq 1,073,741,830 ↑"]
    assert max(lines(ax, "rst")[0].get_ydata()) <= ax.get_ylim()[1]
