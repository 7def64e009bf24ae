"""The Stevens/tcptrace time-sequence graph of one direction of a TCP stream.

x is time since the first frame, y the relative sequence number. Each data
segment is a vertical bar from its first to its last byte (retransmissions in
vermillion); the ACKs coming back draw a step line (what the receiver has), the
advertised window a second one above it (how far the sender may go); SACK
blocks show as short bars between the two, zero windows as crosses. Read the
slope of the segments as throughput and the gap to the window line as headroom.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from visualizer.analysis.report import RETRANSMISSION, FrameAnalysis, Report
from visualizer.analysis.sequence import SEQUENCE_MASK
from visualizer.model import ACK, parse_tcp_options
from visualizer.render.ladder import BLUE, GREEN, GREY, ORANGE, PURPLE, VERMILLION

NAN = float("nan")  # breaks a plotted line between segments
COLUMNS = 1500
"""Time columns a long series is reduced to (the graph is 1,210 pixels wide at 110 dpi): each
keeps the lowest and highest sequence number of its segments, ACKs, windows and SACK blocks, so
the drawing shows every extreme a pixel could; retransmissions and zero windows are all kept."""
DECIMATE_ABOVE = 4 * COLUMNS
"""Series of at most this many points are drawn point for point."""
RETRANSMISSION_MARKER = {
    "marker": "D",
    "markersize": 5,
    "color": VERMILLION,
    "markeredgecolor": "white",
    "markeredgewidth": 0.6,
    "linestyle": "none",
    "zorder": 5,
}
"""Where a segment is shorter than a pixel (a reduced series), a retransmission is a diamond."""


@dataclass(slots=True)
class _Direction:
    """What one direction of a stream sends, as columns of numbers (no frames kept)."""

    frames: int = 0
    base: int | None = None
    """Raw sequence number of relative 0 (for SACK blocks, which carry raw numbers)."""
    data: tuple[array[float], array[int], array[int]] = field(
        default_factory=lambda: (array("d"), array("q"), array("q"))
    )
    """First transmissions: time, first and last byte."""
    retransmissions: tuple[array[float], array[int], array[int]] = field(
        default_factory=lambda: (array("d"), array("q"), array("q"))
    )
    acks: tuple[array[float], array[int], array[int]] = field(
        default_factory=lambda: (array("d"), array("q"), array("q"))
    )
    """ACKs this direction *receives*: time, ACK number, ACK number plus the advertised window."""
    sacks: tuple[array[float], array[int], array[int]] = field(
        default_factory=lambda: (array("d"), array("q"), array("q"))
    )
    zero_windows: tuple[array[float], array[int]] = field(default_factory=lambda: (array("d"), array("q")))


class TimeSequence:
    """Both directions of one TCP stream's time-sequence graph, gathered frame by frame.

    Memory follows the frames as a few numbers each (about 40 bytes), never the frames
    themselves: a million-frame stream fits in some 40 MB, and the drawing reduces it to
    :data:`COLUMNS` time columns.
    """

    def __init__(self, stream: int) -> None:
        self.stream = stream
        self.origin: int | None = None
        self.times: array[float] = array("d")
        """Every frame of the stream (its time since the origin)."""
        self._directions = {True: _Direction(), False: _Direction()}

    @classmethod
    def of(cls, frames: Iterable[FrameAnalysis], stream: int) -> TimeSequence:
        sequence = cls(stream)
        for frame in frames:
            sequence.add(frame)
        return sequence

    def add(self, frame: FrameAnalysis) -> None:
        """Take a frame (frames of other streams only set the origin, if they come first)."""
        record = frame.record
        if self.origin is None and record.timestamp_ns is not None:
            self.origin = record.timestamp_ns
        if frame.protocol != "tcp" or frame.stream != self.stream:
            return
        time = ((record.timestamp_ns or self.origin or 0) - (self.origin or 0)) / 1e9
        self.times.append(time)
        sender = self._directions[frame.from_initiator]
        sender.frames += 1
        if sender.base is None:
            sender.base = (record.seq - frame.seq) & SEQUENCE_MASK
        length = record.payload_length
        if length:
            columns = sender.retransmissions if frame.analysis & RETRANSMISSION else sender.data
            columns[0].append(time)
            columns[1].append(frame.seq)
            columns[2].append(frame.seq + length)
        if not record.tcp_flags & ACK:
            return
        receiver = self._directions[not frame.from_initiator]
        receiver.acks[0].append(time)
        receiver.acks[1].append(frame.ack)
        receiver.acks[2].append(frame.ack + max(frame.window, 0))
        if frame.window == 0:
            receiver.zero_windows[0].append(time)
            receiver.zero_windows[1].append(frame.ack)
        if record.tcp_options and not length:
            blocks = parse_tcp_options(record.tcp_options).sack_blocks
            if blocks:
                base = receiver.base if receiver.base is not None else 0
                for left, right in blocks:
                    receiver.sacks[0].append(time)
                    receiver.sacks[1].append((left - base) & SEQUENCE_MASK)
                    receiver.sacks[2].append((right - base) & SEQUENCE_MASK)

    def direction(self, from_initiator: bool) -> _Direction:
        return self._directions[from_initiator]

    def frames_in(self, from_initiator: bool) -> int:
        """Frames of this direction and the ACKs coming back for it: what its graph draws from."""
        return self._directions[from_initiator].frames + self._directions[not from_initiator].frames


def draw_time_sequence(
    data: Report | Sequence[FrameAnalysis] | TimeSequence,
    *,
    stream: int = 0,
    from_initiator: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """Draw the time-sequence graph of one direction of TCP ``stream``; returns the Axes.

    ``data`` is a :class:`TimeSequence` (its own stream), frame analyses, or a report analysed with
    ``keep_frames=True``. Long series are reduced to :data:`COLUMNS` time columns (see there).
    """
    if isinstance(data, TimeSequence):
        sequence = data
    else:
        sequence = TimeSequence.of(data.frame_analyses if isinstance(data, Report) else data, stream)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(10, 5.5))
    sent = sequence.direction(from_initiator)
    times = numpy.frombuffer(sequence.times, dtype=float) if sequence.times else numpy.empty(0)
    data_times = numpy.concatenate([numpy.frombuffer(sent.data[0]), numpy.frombuffer(sent.retransmissions[0])])
    start, end = _focus_on_the_transfer(ax, data_times, times)
    for columns, colour, width, keep_all in (
        (sent.data, BLUE, 1.6, False),
        (sent.retransmissions, VERMILLION, 2.4, True),
    ):
        if columns[0]:
            xs, lows, highs = _bars(columns, start, end, keep_all)
            ax.plot(
                _broken(xs, xs), _broken(lows, highs), color=colour, linewidth=width, solid_capstyle="butt", zorder=3
            )
    reduced = max(len(sent.data[0]), len(sent.acks[0])) > DECIMATE_ABOVE
    if reduced and sent.retransmissions[0]:
        # At this scale a segment is shorter than a pixel: each retransmission gets a marker.
        xs, lows, highs = _bars(sent.retransmissions, start, end, True)
        ax.plot(xs, (lows + highs) / 2, **RETRANSMISSION_MARKER)  # type: ignore[arg-type]
    acks = sent.acks
    if acks[0]:
        for values, colour, width in ((acks[1], GREEN, 1.3), (acks[2], ORANGE, 1.1)):
            xs, ys = _steps(acks[0], values, start, end)
            ax.step(xs, ys, where="post", color=colour, linewidth=width, zorder=2)
    if sent.sacks[0]:
        xs, lows, highs = _bars(sent.sacks, start, end, False)
        ax.plot(_broken(xs, xs), _broken(lows, highs), color=PURPLE, linewidth=3, alpha=0.7, zorder=4)
    if sent.zero_windows[0]:
        ax.plot(
            numpy.frombuffer(sent.zero_windows[0]),
            numpy.frombuffer(sent.zero_windows[1], dtype=numpy.int64),
            linestyle="none",
            marker="x",
            markersize=8,
            color=VERMILLION,
            zorder=5,
        )
    ax.set_xlabel("time since the first frame (s)")
    ax.set_ylabel("relative sequence number (bytes)")
    direction = "initiator → responder" if from_initiator else "responder → initiator"
    ax.set_title(f"TCP stream {sequence.stream}, {direction}", loc="left", fontsize=11)
    ax.grid(True, color="#DDDDDD", linewidth=0.6)
    present = {
        "data": bool(sent.data[0] or sent.retransmissions[0]),
        "retransmission": bool(sent.retransmissions[0]),
        "ack": bool(acks[0]),
        "sack": bool(sent.sacks[0]),
        "zero": bool(sent.zero_windows[0]),
    }
    retransmission_handle = (
        Line2D([0], [0], label="retransmission", **RETRANSMISSION_MARKER)  # type: ignore[arg-type]
        if reduced
        else Line2D([0], [0], color=VERMILLION, linewidth=2.4, label="retransmission")
    )
    handles = [
        handle
        for key, handle in (
            ("data", Line2D([0], [0], color=BLUE, linewidth=1.6, label="data segment (first to last byte)")),
            ("retransmission", retransmission_handle),
            ("ack", Line2D([0], [0], color=GREEN, linewidth=1.3, label="ACK from the receiver")),
            ("ack", Line2D([0], [0], color=ORANGE, linewidth=1.1, label="ACK + advertised window")),
            ("sack", Line2D([0], [0], color=PURPLE, linewidth=3, alpha=0.7, label="SACK block")),
            ("zero", Line2D([0], [0], color=VERMILLION, marker="x", linestyle="none", label="zero window")),
        )
        if present[key]
    ]
    if handles:
        ax.legend(handles=handles, loc="upper left", fontsize=8, framealpha=0.9)
    if reduced:
        frames = sequence.frames_in(from_initiator)
        ax.set_title(
            f"{frames:,} frames in {COLUMNS:,} time columns (lowest to highest); every retransmission ◆ kept",
            loc="right",
            fontsize=7.5,
            color="#555555",
        )
    if not sent.frames:
        ax.text(0.5, 0.5, "no segments in this direction", transform=ax.transAxes, ha="center", color=GREY)
    return ax


def _columns_of(times: numpy.ndarray, start: float, end: float) -> numpy.ndarray:
    """The time column of each point (points outside [start, end] go to the edge columns)."""
    width = max(end - start, 1e-9) / COLUMNS
    return numpy.clip(((times - start) / width).astype(numpy.int64), 0, COLUMNS - 1)


def _bars(
    columns: tuple[array[float], array[int], array[int]], start: float, end: float, keep_all: bool
) -> tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Vertical bars (time, low, high): every one, or, for a long series, one per time column from
    the lowest to the highest sequence number of the column."""
    times = numpy.frombuffer(columns[0])
    lows = numpy.frombuffer(columns[1], dtype=numpy.int64)
    highs = numpy.frombuffer(columns[2], dtype=numpy.int64)
    if keep_all or len(times) <= DECIMATE_ABOVE:
        return times, lows, highs
    order = numpy.argsort(times, kind="stable")
    times, lows, highs = times[order], lows[order], highs[order]
    column = _columns_of(times, start, end)
    firsts = numpy.flatnonzero(numpy.r_[True, column[1:] != column[:-1]])
    return times[firsts], numpy.minimum.reduceat(lows, firsts), numpy.maximum.reduceat(highs, firsts)


def _steps(
    times_column: array[float], values_column: array[int], start: float, end: float
) -> tuple[numpy.ndarray, numpy.ndarray]:
    """A step line's points: every one, or, for a long series, per time column its first value, its
    lowest and highest, and its last (so the line still reaches every extreme)."""
    times = numpy.frombuffer(times_column)
    values = numpy.frombuffer(values_column, dtype=numpy.int64)
    if len(times) <= DECIMATE_ABOVE:
        return times, values
    order = numpy.argsort(times, kind="stable")
    times, values = times[order], values[order]
    column = _columns_of(times, start, end)
    firsts = numpy.flatnonzero(numpy.r_[True, column[1:] != column[:-1]])
    lasts = numpy.r_[firsts[1:] - 1, len(times) - 1]
    lowest = numpy.minimum.reduceat(values, firsts)
    highest = numpy.maximum.reduceat(values, firsts)
    xs = numpy.column_stack([times[firsts], times[firsts], times[lasts], times[lasts]]).ravel()
    ys = numpy.column_stack([values[firsts], lowest, highest, values[lasts]]).ravel()
    return xs, ys


def _broken(first: numpy.ndarray, second: numpy.ndarray) -> numpy.ndarray:
    """Pairs of points as one line broken by NaN between pairs: first0, second0, nan, first1..."""
    points = numpy.empty(3 * len(first))
    points[0::3], points[1::3], points[2::3] = first, second, NAN
    return points


def _focus_on_the_transfer(ax: Axes, data_times: numpy.ndarray, all_times: numpy.ndarray) -> tuple[float, float]:
    """Keep the x axis on the data when a long idle tail (keep-alives, a late RST) would squash it.
    Returns the time span the axis shows."""
    if not len(all_times):
        return 0.0, 1.0
    first_time, end = float(all_times.min()), float(all_times.max())
    if not len(data_times):
        return first_time, end
    first, last = float(data_times.min()), float(data_times.max())
    span = max(last - first, 1e-3)
    if end - last > 5 * span:
        ax.set_xlim(first_time - 0.02 * span, last + 0.15 * span)
        later = int(numpy.count_nonzero(all_times > last + 0.15 * span))
        ax.annotate(
            f"{later} later frame{'s' if later != 1 else ''}, up to {end:.1f} s →",
            xy=(1.0, 0.02),
            xycoords="axes fraction",
            ha="right",
            va="bottom",
            fontsize=8,
            color=GREY,
        )
        return first_time, last + 0.15 * span
    return first_time, end
