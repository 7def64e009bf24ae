"""The time-sequence graph, on its artists: one mark per finding, limits that hold the data, units on ticks."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy
import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from tests.packets import ACK, PSH, Conversation
from tests.render.synthetic import missing_syn_ack_then_reset, write_pcap
from visualizer.analysis.kernel import KernelStory, ProbeSample
from visualizer.analysis.report import ANALYSIS_BITS, FrameAnalysis
from visualizer.cli import main
from visualizer.model import FIN, RST, SYN
from visualizer.pipeline import analyse_file, kernel_story
from visualizer.render.ladder import ladder_layout
from visualizer.render.time_sequence import (
    BYTES,
    GID,
    MARKS,
    SECONDS,
    STRIP_INCHES,
    TimeSequence,
    UnitFormatter,
    draw_time_sequence,
    draw_time_sequence_figure,
    figure_height,
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
    "bad-checksum": (SCENARIOS / "craft-bad-checksum.pcap", 0),
    "close-client-first": (SCENARIOS / "close-client-first.pcap", 0),
    "close-server-first": (SCENARIOS / "close-server-first.pcap", 0),
    "abort": (SCENARIOS / "abort.pcap", 0),
    "pptp": (CORPUS / "tcpdump-pptp.pcap", 0),
    "loopback": (CORPUS / "gopacket-test_loopback.pcap", 0),
    "fast009": (CORPUS / "zeek-retransmit-fast009.pcap", 0),
    "empty-sack": (CORPUS / "sv-tcp-empty-sack-tcp-opt.pcap", 0),
    "ctu": (CORPUS / "zeek-ctu-64702-888.pcap", 0),
    "ldap-gap": (CORPUS / "zeek-ldap-gap-data-missing.pcapng", 0),
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
    figure = Figure(figsize=(11, 10), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)  # what savefig draws with: text extents are measured
    axes = draw_time_sequence_figure(frames, figure=figure, stream=CAPTURES[name][1])
    figure.canvas.draw()  # tick labels exist only once drawn
    return figure, axes, frames


def lines(ax: Axes, kind: str) -> list[Line2D]:
    return [line for line in ax.lines if line.get_gid() == GID + kind]


def mark_count(ax: Axes, kind: str) -> int:
    return sum(len(line.get_xdata()) for line in lines(ax, kind))


def direction_of(ax: Axes, frames: list[FrameAnalysis] | None = None) -> bool:
    """Whether ``ax`` graphs the analysis' initiator's direction: by its title's roles, or, given the
    stream's ``frames``, by the sender the title names (a stream whose SYN was not captured has the
    server as the analysis' initiator: the graph calls it the responder, as the ladder does)."""
    title = ax.get_title(loc="left")
    if frames is None:
        return "initiator → responder" in title
    named = {frame.from_initiator for frame in frames if f": {_sender_of(frame)} → " in title.replace(":\n", ": ")}
    assert len(named) == 1, title
    return named.pop()


def _sender_of(frame: FrameAnalysis) -> str:
    address = frame.record.source
    return f"[{address}]:{frame.record.source_port}" if ":" in address else f"{address}:{frame.record.source_port}"


def expected_marks(frames: list[FrameAnalysis], from_initiator: bool) -> dict[str, int]:
    """Per kind of mark, the frames the analysis flagged (or the flags set) that the graph of the
    direction ``from_initiator`` must mark: its own segments, and the ACKs coming back for them."""
    sent = [frame for frame in frames if frame.from_initiator == from_initiator]
    acks = [frame for frame in frames if frame.from_initiator != from_initiator]
    counts = {
        kind: sum(1 for frame in sent if frame.analysis & ANALYSIS_BITS[kind])
        for kind in ("retransmission", "not_received", "zero_window_probe", "keep_alive", "bad_checksum")
    }
    counts |= {
        kind: sum(1 for frame in acks if frame.analysis & ANALYSIS_BITS[kind])
        for kind in ("duplicate_ack", "zero_window", "challenge_ack")
    }
    for kind, bit in (("syn", SYN), ("fin", FIN), ("rst", RST)):
        counts[kind] = sum(1 for frame in sent if frame.record.tcp_flags & bit)
    return counts


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_one_mark_per_flagged_frame_in_each_direction(name: str) -> None:
    _, axes, frames = drawn(name)
    assert axes
    for ax in axes:
        expected = expected_marks(frames, direction_of(ax, frames))
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


def test_a_stream_without_data_is_refused_with_one_line_naming_file_and_stream(tmp_path: Path) -> None:
    """SYN and RST only: a time-sequence graph would be empty axes (and a legend of lines not drawn)."""
    target = tmp_path / "refused.png"
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["draw", str(SCENARIOS / "refused.pcap"), "--time-sequence", "--stream", "0", "-o", str(target)],
        stdout=out,
        stderr=err,
    )
    assert code == 2 and not target.exists()
    lines = err.getvalue().strip().splitlines()
    assert lines == [
        "sockstory: error: stream 0 of refused.pcap carries no data: a time-sequence graph would be empty; "
        "draw its ladder"
    ]
    report = analyse_file(SCENARIOS / "craft-syn-closed.pcap", keep_frames=True)
    assert not TimeSequence.of(report.frame_analyses, 0).carries_data()
    assert TimeSequence.of(stream_frames("story"), 0).carries_data()


def tick_labels(figure: Figure, ax: Axes) -> list[Text]:
    return [label for label in ax.get_xticklabels() if label.get_text() and label.get_visible()]


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_time_tick_labels_never_overlap_and_have_at_most_three_decimals(name: str) -> None:
    """Ticks around a shortened pause once piled up ("20.77 20.78 20.79 ms") or read "20.631257 ms"."""
    figure, axes, _ = drawn(name)
    renderer = figure.canvas.get_renderer()
    labels = tick_labels(figure, axes[-1])
    boxes = sorted((label.get_window_extent(renderer) for label in labels), key=lambda box: box.x0)
    for left, right in zip(boxes, boxes[1:]):
        assert left.x1 <= right.x0, [label.get_text() for label in labels]
    for label in labels:
        number = label.get_text().split()[0]
        assert len(number.partition(".")[2]) <= 3, label.get_text()


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_tick_labels_are_exact_for_their_values(name: str) -> None:
    """0.25 KB once read "0.2 KB": each label, times its unit, is its tick's value."""
    _, axes, _ = drawn(name)
    units = {"µs": 1e-6, "ms": 1e-3, "s": 1.0, "B": 1.0, "KB": 1e3, "MB": 1e6}
    for ax in axes:
        for labels, ticks in ((ax.get_xticklabels(), ax.get_xticks()), (ax.get_yticklabels(), ax.get_yticks())):
            for label, tick in zip(labels, ticks):
                if label.get_text():
                    number, unit = label.get_text().replace(",", "").split()
                    assert float(number) * units[unit] == pytest.approx(tick, rel=1e-9, abs=1e-12), label.get_text()


def test_a_short_pause_keeps_its_length() -> None:
    """close-client-first: 377 µs between the answer and the FIN, in a 614 µs exchange: not a pause to cut."""
    _, axes, _ = drawn("close-client-first")
    assert all(not ax.patches and ax.get_xscale() == "linear" for ax in axes)


@pytest.mark.parametrize("name", ["story", "close-server-first", "abort", "rst-injection", "pptp", "loopback"])
def test_marks_stand_clear_of_the_pause_bands(name: str) -> None:
    figure, axes, _ = drawn(name)
    renderer = figure.canvas.get_renderer()
    for ax in axes:
        bands = [patch.get_window_extent(renderer) for patch in ax.patches if patch.get_gid() == GID + "pause"]
        assert bands
        for box in mark_boxes(ax):
            for band in bands:
                assert box.x1 < band.x0 or box.x0 > band.x1, (name, box, band)


def mark_boxes(ax: Axes) -> list[Bbox]:
    """The display extent of every mark (marker size and edge included, offsets applied)."""
    scale = ax.figure.dpi / 72
    boxes = []
    for line in ax.lines:
        if line.get_gid().removeprefix(GID) not in MARKS:
            continue
        half = (line.get_markersize() + line.get_markeredgewidth()) * scale / 2
        xy = numpy.column_stack([line.get_xdata(), line.get_ydata()]).astype(float)
        for x, y in line.get_transform().transform(xy):
            boxes.append(Bbox([[x - half, y - half], [x + half, y + half]]))
    return boxes


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_every_mark_is_drawn_whole_inside_the_axes_clear_of_the_frame(name: str) -> None:
    """The RST at the end of the silent client (3.2 s) sat on the right spine."""
    _, axes, _ = drawn(name)
    for ax in axes:
        area = ax.get_window_extent().padded(-CLEARANCE)
        for box in mark_boxes(ax):
            assert area.x0 <= box.x0 and box.x1 <= area.x1 and area.y0 <= box.y0 and box.y1 <= area.y1, (name, box)


CLEARANCE = 10
"""Pixels (at 110 dpi) between a mark and the axes' frame."""


@pytest.mark.parametrize("name", ["rst-injection", "ctu", "empty-sack", "bad-checksum"])
def test_marks_of_different_kinds_do_not_hide_each_other(name: str) -> None:
    """rst-injection: the FIN, its retransmission diamond and the RST fall in the same millisecond."""
    _, axes, _ = drawn(name)
    for ax in axes:
        centres = [
            (line.get_gid(), point)
            for line in ax.lines
            if line.get_gid().removeprefix(GID) in MARKS
            for point in line.get_transform().transform(
                numpy.column_stack([line.get_xdata(), line.get_ydata()]).astype(float)
            )
        ]
        for index, (kind, point) in enumerate(centres):
            for other, other_point in centres[index + 1 :]:
                if kind != other:
                    assert numpy.hypot(*(point - other_point)) >= 8, (kind, other)


@pytest.mark.parametrize("name", ["rst-injection", "ctu", "empty-sack"])
def test_a_mark_moved_off_another_has_a_leader_to_its_true_place(name: str) -> None:
    """A probe moved 10 points above the zero window it shares a place with read as 5 KB higher."""
    _, axes, _ = drawn(name)
    moved = 0
    for ax in axes:
        leaders = {
            tuple(numpy.round(ax.transData.transform(text.xy), 3))
            for text in ax.texts
            if text.get_gid() == GID + "leader"
        }
        for line in ax.lines:
            if line.get_gid().removeprefix(GID) not in MARKS or line.get_transform() == ax.transData:
                continue
            for x, y in numpy.column_stack([line.get_xdata(), line.get_ydata()]).astype(float):
                moved += 1
                assert tuple(numpy.round(ax.transData.transform((x, y)), 3)) in leaders, (name, line.get_gid(), x, y)
    assert moved


def test_findings_of_the_rfcs_are_marked_challenge_ack_and_bad_checksum() -> None:
    _, (ax,), _ = drawn("rst-injection")
    assert mark_count(ax, "challenge_ack") == 1
    assert MARKS["challenge_ack"].label in legend_labels(ax)
    _, (ax,), frames = drawn("bad-checksum")
    bad = [frame for frame in frames if frame.analysis & ANALYSIS_BITS["bad_checksum"]]
    assert [frame.record.payload_length for frame in bad] == [12]
    (line,) = lines(ax, "bad_checksum")
    assert list(line.get_ydata()) == [bad[0].seq + 6]  # the middle of the discarded segment
    assert MARKS["bad_checksum"].label in legend_labels(ax)


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_titles_are_never_cut(name: str) -> None:
    """An IPv6 sender and receiver made the title run off the figure ("647 B of data, 1 r")."""
    figure, axes, _ = drawn(name)
    renderer = figure.canvas.get_renderer()
    width = figure.bbox.x1
    for ax in axes:
        assert ax.title.get_window_extent(renderer).x1 <= width
        assert ax._left_title.get_window_extent(renderer).x1 <= width


def test_the_legend_of_a_graph_drawn_anyway_lists_no_line_it_did_not_draw() -> None:
    """The library still draws a stream without data if asked: its one ACK is not a line."""
    report = analyse_file(SCENARIOS / "refused.pcap", keep_frames=True)
    ax = draw_time_sequence(TimeSequence.of(report.frame_analyses, 0), from_initiator=True)
    labels = legend_labels(ax)
    assert "ACK from the receiver" not in labels
    assert not any(label.startswith("ACK + advertised window") for label in labels)
    assert labels == ["SYN"]


# -- the kernel's strips ----------------------------------------------------------------------

KERNEL_DATA = ROOT / "tests" / "data" / "kernel"


def kernel_drawn(
    name: str, *, stream: int = 0, story: KernelStory | None = None
) -> tuple[list[Axes], TimeSequence, KernelStory]:
    """The figure of a recording of tests/data/kernel, with its kernel story (or ``story``)."""
    report = analyse_file(KERNEL_DATA / f"{name}.pcap", keep_frames=True)
    if story is None:
        story = kernel_story(KERNEL_DATA / f"{name}.pcap", report.frame_analyses)
    assert story is not None
    sequence = TimeSequence.of(report.frame_analyses, stream)
    figure = Figure(figsize=(11, figure_height(sequence, story)), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    axes = draw_time_sequence_figure(sequence, figure=figure, kernel=story)
    figure.canvas.draw()
    return axes, sequence, story


def strip(axes: list[Axes], kind: str) -> Axes:
    (found,) = [ax for ax in axes if lines(ax, kind)]
    return found


def seconds(sequence: TimeSequence, probes: list[ProbeSample]) -> list[float]:
    assert sequence.origin is not None
    return [(probe.time_ns - sequence.origin) / 1e9 for probe in probes]


def test_the_congestion_strip_draws_the_sender_s_cwnd_at_its_samples() -> None:
    axes, sequence, story = kernel_drawn("loss")
    sender, _ = story.sender_and_receiver(0, "127.0.0.1", 35754)  # the client sends the data
    assert sender is not None
    (line,) = lines(strip(axes, "cwnd"), "cwnd")
    assert list(line.get_xdata()) == pytest.approx(seconds(sequence, sender.probes))
    assert list(line.get_ydata()) == [probe.snd_cwnd for probe in sender.probes]
    assert max(line.get_ydata()) == 33  # not the receiver's, which stays at its initial 10
    assert line.get_drawstyle() == "steps-pre"  # a sample is taken before its ACK changes cwnd


def test_the_infinite_ssthresh_is_never_drawn_and_the_legend_says_it_is_not_set() -> None:
    axes, _, _ = kernel_drawn("loss")  # no loss ever set the sender's ssthresh
    ax = strip(axes, "cwnd")
    assert not lines(ax, "ssthresh")
    assert ax.get_ylim()[1] < 100
    assert any("ssthresh: not set" in label for label in legend_labels(ax))


def test_ssthresh_is_drawn_where_it_is_set_only() -> None:
    axes, sequence, story = kernel_drawn("zero-window")
    sender, _ = story.sender_and_receiver(0, "127.0.0.1", 54158)
    assert sender is not None
    (line,) = lines(strip(axes, "cwnd"), "ssthresh")
    ys = numpy.asarray(line.get_ydata(), dtype=float)
    expected = [probe.ssthresh if probe.ssthresh < 0x7FFFFFFF else numpy.nan for probe in sender.probes]
    numpy.testing.assert_array_equal(ys, numpy.array(expected, dtype=float))
    assert numpy.isnan(ys[0]) and numpy.nanmax(ys) == 200
    assert list(line.get_xdata()) == pytest.approx(seconds(sequence, sender.probes))


def test_the_congestion_strip_has_bytes_on_the_right_at_the_segment_size() -> None:
    axes, _, story = kernel_drawn("loss")
    ax = strip(axes, "cwnd")
    (right,) = ax.child_axes
    size = story.endpoints[0].segment_size
    assert size == 988
    low, high = ax.get_ylim()
    assert right.get_ylim() == pytest.approx((low * size, high * size))
    assert "988 B" in right.get_ylabel()
    assert "segments" in ax.get_ylabel()


def test_the_retransmissions_are_marked_on_the_strip_where_the_graph_marks_them() -> None:
    axes, _, _ = kernel_drawn("loss")
    main = next(ax for ax in axes if lines(ax, "retransmission"))
    ax = strip(axes, "cwnd")
    (marks,) = lines(ax, "cwnd-retransmission")
    graph_times = numpy.concatenate([line.get_xdata() for line in lines(main, "retransmission")])
    assert sorted(marks.get_xdata()) == pytest.approx(sorted(graph_times))
    assert len(marks.get_xdata()) == 1
    assert marks.get_marker() == MARKS["retransmission"].marker
    assert marks.get_color() == MARKS["retransmission"].color
    (cwnd,) = lines(ax, "cwnd")  # on the line: the value it was sent under
    assert marks.get_ydata()[0] in set(cwnd.get_ydata())


def test_the_receive_strip_puts_the_kernel_s_rcv_wnd_beside_the_wire_s_window() -> None:
    axes, sequence, story = kernel_drawn("zero-window")
    _, receiver = story.sender_and_receiver(0, "127.0.0.1", 54158)
    assert receiver is not None and receiver.port == 8088
    ax = strip(axes, "rcv-wnd")
    (kernel,) = lines(ax, "rcv-wnd")
    assert list(kernel.get_xdata()) == pytest.approx(seconds(sequence, receiver.probes))
    assert list(kernel.get_ydata()) == [probe.rcv_wnd for probe in receiver.probes]
    assert kernel.get_linestyle() == "None"  # samples, not a line that would open the window early
    assert 0 in set(kernel.get_ydata())
    (wire,) = lines(ax, "advertised-window")
    report = analyse_file(KERNEL_DATA / "zero-window.pcap", keep_frames=True)
    advertised = [
        frame
        for frame in report.frame_analyses
        if frame.protocol == "tcp" and frame.record.source_port == 8088 and not frame.record.tcp_flags & RST
    ]
    assert list(wire.get_ydata()) == [frame.window for frame in advertised]
    assert wire.get_xdata()[0] == pytest.approx(
        ((advertised[0].record.timestamp_ns or 0) - (sequence.origin or 0)) / 1e9
    )
    tcp = [frame for frame in report.frame_analyses if frame.protocol == "tcp"]
    assert mark_count(ax, "window-zero") == expected_marks(tcp, True)["zero_window"] == 2
    labels = legend_labels(ax)
    assert any("kernel: tcp_probe" in label and "rcv_wnd" in label for label in labels)
    assert any("on the wire" in label and "advertised" in label for label in labels)
    assert ax.yaxis.get_major_formatter().unit is BYTES


def test_the_strips_share_the_graph_s_time_axis_pauses_included() -> None:
    axes, sequence, _ = kernel_drawn("loss")  # a 299 ms pause, drawn shortened
    assert len(axes) == 3 and sequence.time_axis().gaps
    limits = {ax.get_xlim() for ax in axes}
    assert len(limits) == 1
    assert all(axes[0].get_shared_x_axes().joined(axes[0], ax) for ax in axes[1:])  # zoomed together
    times = numpy.array([0.0, 0.0005, 0.1, 0.3])
    drawn = [ax.transData.transform(numpy.column_stack([times, numpy.zeros(4)]))[:, 0] for ax in axes]
    for other in drawn[1:]:
        numpy.testing.assert_allclose(other, drawn[0])
    strips = axes[1:]
    assert all(any(patch.get_gid() == GID + "pause" for patch in ax.patches) for ax in strips)
    assert [ax.get_xlabel() for ax in axes] == ["", "", "time since the first frame"]


def test_no_strip_without_the_kernel_s_samples() -> None:
    frames = stream_frames("loss")
    figure = Figure(figsize=(11, 6))
    assert len(draw_time_sequence_figure(frames, figure=figure)) == 1  # no sidecar: as before
    _, _, story = kernel_drawn("loss")
    for endpoint in story.endpoints:
        endpoint.probes = []
    axes, sequence, _ = kernel_drawn("loss", story=story)
    assert len(axes) == 1 and figure_height(sequence, story) == figure_height(sequence)


def test_a_crafted_sender_has_no_congestion_strip_its_kernel_receiver_has_its_window() -> None:
    # craft-bad-checksum: Scapy sends the data (no kernel socket, no samples); the kernel receives it
    axes, _, _ = kernel_drawn("craft-bad-checksum")
    assert len(axes) == 2
    assert not any(lines(ax, "cwnd") for ax in axes)
    assert lines(axes[1], "rcv-wnd")


def test_the_figure_grows_by_a_strip_s_height_for_each_strip() -> None:
    axes, sequence, story = kernel_drawn("story")  # both directions send data: two graphs, four strips
    assert len(axes) == 6
    assert figure_height(sequence, story) == pytest.approx(figure_height(sequence) + 4 * STRIP_INCHES)
    assert [bool(lines(ax, "cwnd")) for ax in axes] == [False, True, False, False, True, False]


def test_draw_gives_the_time_sequence_graph_its_kernel_strips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import visualizer.render.time_sequence as time_sequence

    drawn: list[list[Axes]] = []
    original = time_sequence.draw_time_sequence_figure

    def spy(*arguments: Any, **options: Any) -> list[Axes]:
        drawn.append(original(*arguments, **options))
        return drawn[-1]

    monkeypatch.setattr(time_sequence, "draw_time_sequence_figure", spy)
    damaged = tmp_path / "damaged" / "loss.pcap"
    damaged.parent.mkdir()
    damaged.write_bytes((KERNEL_DATA / "loss.pcap").read_bytes())
    damaged.with_name("loss.kernel.jsonl").write_text('{"broken\n')
    err = io.StringIO()
    for capture in (KERNEL_DATA / "loss.pcap", SCENARIOS / "loss.pcap", damaged):  # beside its sidecar; alone
        out = tmp_path / f"{capture.parent.name}.png"
        argv = ["draw", str(capture), "--stream", "0", "--time-sequence", "-o", str(out), "--quiet"]
        assert main(argv, stdout=io.StringIO(), stderr=err) == 0
    recorded, alone, unreadable = drawn
    assert [bool(lines(ax, "cwnd")) for ax in recorded] == [False, True, False]
    assert [bool(lines(ax, "rcv-wnd")) for ax in recorded] == [False, False, True]
    assert len(alone) == len(unreadable) == 1
    (warning,) = [line for line in err.getvalue().splitlines() if "warning" in line]
    assert "loss.kernel.jsonl" in warning and "packets alone" in warning


def test_the_strip_s_wire_window_leaves_out_resets_and_windows_of_unknown_scale(tmp_path: Path) -> None:
    # a capture that starts mid-stream (no SYN: the window scale is unknown), then a reset
    talk = Conversation()
    talk.client_sends(0.0, 1001, 5001, ACK | PSH, b"hello").server_sends(0.1, 5001, 1006, ACK)
    talk.server_sends(0.2, 5001, 1006, RST | ACK)
    mid_stream = TimeSequence.of(
        analyse_file(write_pcap(tmp_path / "mid.pcap", talk.frames), keep_frames=True).frame_analyses, 0
    )
    assert len(mid_stream.direction(True).acks[0]) == 2 and not mid_stream.direction(True).windows[0]
    # a known scale (no scaling: the client's SYN has no window-scale option); its reset left out
    frames = missing_syn_ack_then_reset(reset_by_client=False)
    known = TimeSequence.of(
        analyse_file(write_pcap(tmp_path / "reset.pcap", frames), keep_frames=True).frame_analyses, 0
    )
    assert list(known.direction(True).acks[0]) == [0.3, 0.5]
    assert list(known.direction(True).windows[0]) == [0.3]
    assert list(known.direction(True).windows[1]) == [1000]


def test_a_mark_moves_one_step_per_kind_of_mark_under_it_not_per_mark() -> None:
    """A duplicate ACK among forty retransmissions (a lossy bulk transfer) moved 400 points off its
    sequence number; a FIN on a retransmission and a duplicate ACK still moves clear of both."""
    from visualizer.render.time_sequence import FAN_OUT_POINTS, _fan_out

    sequence = TimeSequence.of(analyse_file(SCENARIOS / "loss.pcap", keep_frames=True).frame_analyses, 0)
    time_axis = sequence.time_axis()
    start = time_axis.limits()[0]
    placed: list[tuple[str, float, float]] = []
    here = numpy.full(40, start), numpy.full(40, 50.0)
    assert _fan_out(time_axis, (0.0, 100.0), *here, placed, "retransmission") == [0.0] * 40  # the same kind: no move
    one = numpy.array([start]), numpy.array([50.0])
    assert _fan_out(time_axis, (0.0, 100.0), *one, placed, "duplicate_ack") == [FAN_OUT_POINTS]
    assert _fan_out(time_axis, (0.0, 100.0), *one, placed, "fin") == [2 * FAN_OUT_POINTS]
    assert _fan_out(time_axis, (0.0, 100.0), *one, placed, "rst") == [3 * FAN_OUT_POINTS]


def test_a_pause_s_label_is_drawn_above_the_grid_and_under_the_data() -> None:
    """A grid line along the rotated label hid the stroke of its "d" ("shortenec" in the README's
    graph): the label goes above the grid (drawn with its axis), under the segments and ACKs."""
    _, axes, _ = drawn("fast009")
    for ax in axes:
        (label,) = [text for text in ax.texts if text.get_text().endswith("pause, shortened")]
        assert ax.yaxis.get_zorder() < label.get_zorder() and ax.xaxis.get_zorder() < label.get_zorder()
        assert all(label.get_zorder() < line.get_zorder() for line in lines(ax, "data") + lines(ax, "ack"))


@pytest.mark.parametrize("name", ["ctu", "fast009"])
def test_the_roles_are_the_ladder_s_when_the_syn_was_not_captured(name: str) -> None:
    """The CTU capture starts at the server's SYN-ACK: the analysis calls its sender (the first to
    send) the initiator, the ladder calls it the server. The graph names the server the responder,
    as the ladder does, and draws the client's direction on top; a capture with its SYN is unchanged."""
    _, axes, frames = drawn(name)
    client = next(p for p in ladder_layout(frames).participants if p.role == "client")
    client_name = f"{client.address}:{client.port}"
    for ax in axes:
        title = ax.get_title(loc="left")
        from_client = f": {client_name} → " in title
        assert ("initiator → responder" in title) == from_client, title
    figure = axes[0].figure
    notes = [text.get_text() for text in figure.texts]
    if name == "ctu":
        assert len(axes) == 1 and "responder → initiator" in axes[0].get_title(loc="left")
        assert any(
            note.startswith(f"{client_name} → ") and "(initiator → responder) sends no data" in note for note in notes
        )
    else:
        assert "initiator → responder" in axes[0].get_title(loc="left")


def test_the_ack_line_holds_its_last_value_to_the_stream_s_end() -> None:
    """The silent client acknowledges the server's 27 bytes never: its ACK line stays at 1 until the
    RST 3.2 s later (it stopped at its last ACK, 1.4 ms in, hidden under the data segment, while the
    legend listed it). The window edge holds with it."""
    _, axes, frames = drawn("silent-client")
    end = (
        max(frame.record.timestamp_ns for frame in frames) / 1e9
        - min(frame.record.timestamp_ns for frame in frames) / 1e9
    )
    download = next(ax for ax in axes if not direction_of(ax))
    (ack,) = lines(download, "ack")
    (edge,) = lines(download, "window")
    assert ack.get_xdata()[-1] == pytest.approx(end) and ack.get_ydata()[-1] == 1
    assert edge.get_xdata()[-1] == pytest.approx(end)
    assert numpy.ptp(ack.get_xdata()) > 0.9 * (end - ack.get_xdata()[0])


def test_no_sequence_tick_below_zero_unless_something_drawn_is() -> None:
    """The keep-alive graph (5 bytes) was padded down to a "-1 B" tick: no segment has a sequence
    number before the ISN, so no tick says one; the range below 0 stays (the SYN's mark needs it)."""
    _, axes, _ = drawn("keepalive")
    (ax,) = axes
    ticks = [tick for tick in ax.get_yticks() if ax.get_ylim()[0] <= tick <= ax.get_ylim()[1]]
    assert ax.get_ylim()[0] < 0 and min(ticks) == 0
    labels = [text.get_text() for text in ax.get_yticklabels() if text.get_text()]
    assert "0 B" in labels and not any(label.startswith("-") for label in labels)


def test_no_window_edge_where_the_window_scale_is_unknown() -> None:
    """The gopacket capture starts mid-stream: its windows are the fields as sent, of an unknown scale.
    Their edge was drawn 10 KB above the ACKs (the raw 10,473), under data the sender was allowed to
    send: no edge, and the legend says why. A capture with its handshake keeps its edge or its note."""
    _, axes, frames = drawn("loopback")
    assert all(frame.window_scale == -1 for frame in frames)
    for ax in axes:
        assert not lines(ax, "window")
        assert ax.get_legend().get_title().get_text().startswith("No window edge: the window scale is unknown")
    _, axes, _ = drawn("lossy-bulk")
    download = next(ax for ax in axes if not direction_of(ax))
    assert lines(download, "window") and "ACK + advertised window (how far the sender may go)" in legend_labels(
        download
    )
