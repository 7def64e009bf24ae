"""The Stevens/tcptrace time-sequence graph of a TCP stream, one panel per direction that sends data.

x is time since the first frame, y the relative sequence number. Each data segment is a vertical
bar from its first to its last byte; the ACKs coming back draw a step line (what the receiver has),
and the receiver's window edge (ACK + advertised window) a second one above it (how far the sender
may go). Read the slope of the segments as throughput and the gap to the window edge as headroom.

The graph is scaled to what was sent and acknowledged: the window edge is clipped to that range
(tcptrace scales to it, and a large window then flattens the transfer into a line), and a note says
so when it lies above the whole graph. What the analysis found is drawn as marks, each kind once in
the legend: retransmissions, segments their receiver never got, duplicate ACKs, SACK blocks, zero
windows, zero-window probes, keep-alives, SYN, FIN and RST. The marks come from the analysis flags
(:mod:`visualizer.analysis.report`); this module derives none of them.

When the kernel's events were recorded beside the capture (a :class:`~visualizer.analysis.kernel.KernelStory`),
strips under each direction's graph share its time axis: the sender's congestion window and ssthresh
(``tcp_probe`` of the sender, which samples them as each ACK arrives), with the retransmissions marked
as on the graph; and the receiver's window, the kernel's ``rcv_wnd`` beside the window its segments
advertised on the wire. A direction whose endpoints have no ``tcp_probe`` sample gets no strip.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy
from matplotlib.axes import Axes
from matplotlib.legend_handler import HandlerTuple
from matplotlib.lines import Line2D
from matplotlib.ticker import Formatter, Locator, MaxNLocator
from matplotlib.transforms import ScaledTranslation

from visualizer.analysis.narrate import server_spoke_first
from visualizer.analysis.report import (
    BAD_CHECKSUM,
    CHALLENGE_ACK,
    DUPLICATE_ACK,
    KEEP_ALIVE,
    NOT_RECEIVED,
    RETRANSMISSION,
    WINDOW_SCALE_UNKNOWN,
    ZERO_WINDOW,
    ZERO_WINDOW_PROBE,
    FrameAnalysis,
    Report,
)
from visualizer.analysis.sequence import SEQUENCE_MASK
from visualizer.model import ACK, FIN, RST, SYN, parse_tcp_options
from visualizer.render.ladder import BLACK, BLUE, GREEN, GREY, ORANGE, PURPLE, SKY, VERMILLION

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from visualizer.analysis.kernel import EndpointKernel, KernelStory, ProbeSample

NAN = float("nan")  # breaks a plotted line between segments
COLUMNS = 1500
"""Time columns a long series is reduced to (the graph is 1,210 pixels wide at 110 dpi): each
keeps the lowest and highest sequence number of its segments, ACKs, windows and SACK blocks, so
the drawing shows every extreme a pixel could; marks (retransmissions, SYN...) are all kept."""
DECIMATE_ABOVE = 4 * COLUMNS
"""Series of at most this many points are drawn point for point."""
IDLE_SHARE = 2 / 3
"""A pause is drawn shortened only if it takes more than this share of the stream's time (at least
twice all the rest) and lasts :data:`MINIMUM_PAUSE` (see :meth:`TimeSequence.time_axis`)."""
MINIMUM_PAUSE = 1e-3
"""Seconds: a shorter pause is never shortened (377 µs of a 614 µs exchange is part of its story)."""
MINIMUM_FRAMES_TO_SHORTEN = 4
"""Between two or three frames (a SYN and its RST) a pause is all there is: it keeps its length."""
SHORTENED_SHARE = 0.05
"""The share of the time axis a shortened pause's band takes."""
PAUSE_MARGIN_SHARE = 0.025
"""The share of the time axis kept at real scale on each side of a band, so that the frames before
and after a pause (and their marks) stand clear of its edges."""
EDGE_MARGIN_SHARE = 0.03
"""The share of the time axis left before the first frame and after the last, so that marks there
are drawn whole."""
Y_MARGIN_SHARE = 0.07
"""The share of the sequence range left below the lowest point and above the highest, so that marks
there are drawn whole, clear of the frame."""
TICK_SPACING_SHARE = 0.1
"""Time ticks closer than this share of the axis are dropped (labels such as ``20.78 ms`` would overlap)."""
MAXIMUM_TICK_DECIMALS = 3
"""A tick label has at most this many decimals: ticks sit on round values."""
FAR_BYTES = 65_535
"""Marks within this many bytes (or the data's span, if larger) of the data set the y range; farther
ones are pinned to its edge with their number (see :func:`_near`)."""
WINDOW_UNKNOWN = "No window edge: the window scale is unknown\n(the handshake that sets it was not captured)."
WINDOW_ABOVE = "The window edge (ACK + advertised window) is above\nthe graph: the window never limited the sender."
"""Said in the legend when the window edge never comes down into the graph."""
FAN_OUT_POINTS = 10.0
"""How far (points) a mark moves off each kind of mark it would hide (see :func:`_fan_out`)."""
TITLE_LINE = 120
"""Characters of a panel title that fit on one line above the 11-inch graph."""
LEADER_COLOUR = "#333333"
PAUSE_LABEL_ZORDER = 1.6
"""Above the grid (drawn at 1.5, under the lines): a grid line along the label would hide a stroke of
a letter (the rotated "d" of "shortened" read "shortenec"), below the data."""
"""The line from a mark moved off another (see :func:`_fan_out`) to its true place."""
NEAR_X, NEAR_Y = 0.012, 0.03
"""Marks closer than these shares of the axes' width and height would hide each other (about 13 pixels)."""
GID = "time-sequence-"
"""Prefix of every artist's gid: ``time-sequence-data``, ``time-sequence-retransmission``..."""
MAIN_INCHES, STRIP_INCHES = 4.5, 1.7
"""Height of one direction's graph and of one kernel strip under it."""
KERNEL = "kernel: tcp_probe"
WIRE = "on the wire"
"""Where a strip's line comes from, said in its legend."""


class MarkStyle(NamedTuple):
    """How one kind of mark looks, and its legend label."""

    label: str
    marker: str
    color: str
    size: float
    filled: bool = True


MARKS: dict[str, MarkStyle] = {
    "retransmission": MarkStyle("retransmission", "D", VERMILLION, 7),
    "not_received": MarkStyle("segment its receiver never got", "x", VERMILLION, 9),
    "duplicate_ack": MarkStyle("duplicate ACK", "o", GREEN, 4.5, filled=False),
    "zero_window": MarkStyle("zero window advertised", "v", ORANGE, 8),
    "zero_window_probe": MarkStyle("zero-window probe", "^", SKY, 8),
    "keep_alive": MarkStyle("keep-alive", "P", GREY, 8),
    "syn": MarkStyle("SYN", ">", BLACK, 7),
    "fin": MarkStyle("FIN", "s", BLACK, 6),
    "rst": MarkStyle("RST", "X", BLACK, 9),
    "challenge_ack": MarkStyle("challenge ACK (RFC 5961)", "*", PURPLE, 11),
    "bad_checksum": MarkStyle("bad checksum: discarded by its receiver", "h", VERMILLION, 9, filled=False),
}
"""The marks, in legend order. Marks sit on the sequence number they are about: a segment's first
byte (its middle for a retransmitted or lost one), a FIN's own number, an ACK's number."""
SENDER_FLAGS = (
    (RETRANSMISSION, "retransmission"),
    (NOT_RECEIVED, "not_received"),
    (ZERO_WINDOW_PROBE, "zero_window_probe"),
    (KEEP_ALIVE, "keep_alive"),
    (BAD_CHECKSUM, "bad_checksum"),
)
"""Analysis flags drawn on the graph of the direction whose segment carries them."""
TIMER_MARKS = ("retransmission", "zero_window_probe", "keep_alive")
"""Segments a timer sends: the pause before them is never shortened."""
RECEIVER_FLAGS = ((DUPLICATE_ACK, "duplicate_ack"), (ZERO_WINDOW, "zero_window"), (CHALLENGE_ACK, "challenge_ack"))
"""Analysis flags of ACKs, drawn on the graph of the direction they acknowledge, on the ACK line."""
MIDDLE_MARKS = ("retransmission", "not_received", "bad_checksum")
"""Marks of a whole segment, drawn at its middle byte (on its bar)."""


def _columns() -> tuple[array[float], array[int], array[int]]:
    return array("d"), array("q"), array("q")


@dataclass(slots=True)
class _Direction:
    """What one direction of a stream sends, as columns of numbers (no frames kept)."""

    frames: int = 0
    payload_bytes: int = 0
    """Payload of the first transmissions."""
    retransmitted_bytes: int = 0
    name: str = ""
    """Its sender and receiver, ``10.0.0.1:40000 → 10.0.0.2:80``."""
    address: str = ""
    port: int = 0
    """Its sender's."""
    base: int | None = None
    """Raw sequence number of relative 0 (for SACK blocks, which carry raw numbers)."""
    data: tuple[array[float], array[int], array[int]] = field(default_factory=_columns)
    """First transmissions: time, first and last byte."""
    retransmissions: tuple[array[float], array[int], array[int]] = field(default_factory=_columns)
    acks: tuple[array[float], array[int]] = field(default_factory=lambda: (array("d"), array("q")))
    """ACKs this direction *receives*: time, ACK number."""
    edges: tuple[array[float], array[int]] = field(default_factory=lambda: (array("d"), array("q")))
    """The window edge, ACK number plus the advertised window, of the ACKs it receives whose window
    means something (as :attr:`windows`): time, sequence number."""
    sacks: tuple[array[float], array[int], array[int]] = field(default_factory=_columns)
    windows: tuple[array[float], array[int]] = field(default_factory=lambda: (array("d"), array("q")))
    """The windows advertised to this direction (time, bytes after scaling): the ACKs it receives, less
    RSTs (whose window means nothing) and those whose window scale the capture did not show."""
    marks: dict[str, tuple[array[float], array[int]]] = field(default_factory=dict)
    """Marks drawn on this direction's graph, by kind of :data:`MARKS`: time, sequence number."""

    def mark(self, kind: str, time: float, seq: int) -> None:
        columns = self.marks.get(kind)
        if columns is None:
            columns = self.marks[kind] = (array("d"), array("q"))
        columns[0].append(time)
        columns[1].append(seq)


class TimeSequence:
    """Both directions of one TCP stream's time-sequence graph, gathered frame by frame.

    Memory follows the frames as a few numbers each (about 50 bytes), never the frames
    themselves: a million-frame stream fits in some 50 MB, and the drawing reduces it to
    :data:`COLUMNS` time columns.
    """

    def __init__(self, stream: int) -> None:
        self.stream = stream
        self.origin: int | None = None
        self.times: array[float] = array("d")
        """Every frame of the stream (its time since the origin)."""
        self.server_first = False
        """Whether the stream's first captured frame is the server's SYN-ACK (its SYN was not captured):
        the analysis calls that frame's sender the initiator; the graph names it as the ladder does."""
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
        if not self.times:
            self.server_first = server_spoke_first(frame)
        self.times.append(time)
        sender = self._directions[frame.from_initiator]
        receiver = self._directions[not frame.from_initiator]
        sender.frames += 1
        if sender.base is None:
            sender.base = (record.seq - frame.seq) & SEQUENCE_MASK
            sender.name = (
                f"{_endpoint(record.source, record.source_port)} → "
                f"{_endpoint(record.destination, record.destination_port)}"
            )
            sender.address, sender.port = record.source, record.source_port
        length = record.payload_length
        flags = record.tcp_flags
        analysis = frame.analysis
        if length:
            if analysis & RETRANSMISSION:
                columns = sender.retransmissions
                sender.retransmitted_bytes += length
            else:
                columns = sender.data
                sender.payload_bytes += length
            columns[0].append(time)
            columns[1].append(frame.seq)
            columns[2].append(frame.seq + length)
        if analysis:
            middle = frame.seq + length // 2
            for bit, kind in SENDER_FLAGS:
                if analysis & bit:
                    sender.mark(kind, time, middle if kind in MIDDLE_MARKS else frame.seq)
            for bit, kind in RECEIVER_FLAGS:
                if analysis & bit:
                    receiver.mark(kind, time, frame.ack)
        if flags & (SYN | FIN | RST):
            for bit, kind, seq in ((SYN, "syn", frame.seq), (FIN, "fin", frame.seq + length), (RST, "rst", frame.seq)):
                if flags & bit:
                    sender.mark(kind, time, seq)
        if not flags & ACK:
            return
        receiver.acks[0].append(time)
        receiver.acks[1].append(frame.ack)
        if not flags & RST and frame.window_scale != WINDOW_SCALE_UNKNOWN:
            receiver.windows[0].append(time)
            receiver.windows[1].append(frame.window)
            receiver.edges[0].append(time)
            receiver.edges[1].append(frame.ack + max(frame.window, 0))
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

    def role(self, from_initiator: bool) -> str:
        """The direction's roles, the client's being the initiator's (the ladder's left lifeline): in a
        stream whose SYN was not captured, the analysis' initiator (the first to send) is the server."""
        from_client = from_initiator != self.server_first
        return "initiator → responder" if from_client else "responder → initiator"

    def frames_in(self, from_initiator: bool) -> int:
        """Frames of this direction and the ACKs coming back for it: what its graph draws from."""
        return self._directions[from_initiator].frames + self._directions[not from_initiator].frames

    def carries_data(self) -> bool:
        """Whether either direction sends a byte of data: without, the graph would be empty axes."""
        return any(direction.payload_bytes or direction.retransmitted_bytes for direction in self._directions.values())

    def directions_to_draw(self) -> list[bool]:
        """The directions (``from_initiator``) that send data; both that send anything when neither does."""
        # The client's direction first (the upper graph), as on the ladder.
        sides = (not self.server_first, self.server_first)
        sending = [side for side in sides if self._directions[side].payload_bytes]
        sending = sending or [side for side in sides if self._directions[side].retransmitted_bytes]
        return sending or [side for side in sides if self._directions[side].frames] or [sides[0]]

    def time_axis(self) -> TimeAxis:
        """The time range both directions' graphs show, with the pauses drawn shortened: a pause
        that takes more than :data:`IDLE_SHARE` of the stream's time and lasts :data:`MINIMUM_PAUSE`
        (a client that closes long after its answer) is cut to a band that says how long it was (there
        is one such pause at most). A pause that a timer ended (before a
        retransmission, a zero-window probe or a keep-alive) stays at its length: its length is the story."""
        if not self.times:
            return TimeAxis(0.0, 1.0, ())
        times = numpy.unique(numpy.frombuffer(self.times))
        start, end = float(times[0]), float(times[-1])
        timed = numpy.unique(
            numpy.concatenate(
                [
                    numpy.frombuffer(direction.marks[kind][0])
                    for direction in self._directions.values()
                    for kind in TIMER_MARKS
                    if kind in direction.marks
                ]
                or [numpy.empty(0)]
            )
        )
        if len(times) < MINIMUM_FRAMES_TO_SHORTEN:
            return TimeAxis(start, end, ())
        pauses = numpy.diff(times)
        gaps = tuple(
            (float(times[index]), float(times[index + 1]))
            for index in numpy.flatnonzero((pauses > IDLE_SHARE * (end - start)) & (pauses >= MINIMUM_PAUSE))
            if not numpy.isin(times[index + 1], timed)
        )
        return TimeAxis(start, end, gaps)


def draw_time_sequence(
    data: Report | Sequence[FrameAnalysis] | TimeSequence,
    *,
    stream: int = 0,
    from_initiator: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """Draw the time-sequence graph of one direction of TCP ``stream``; returns the Axes.

    ``data`` is a :class:`TimeSequence` (its own stream), frame analyses, or a report analysed with
    ``keep_frames=True``. The time axis spans the whole stream (both directions), so the graphs of
    the two directions line up. Long series are reduced to :data:`COLUMNS` time columns (see there).
    """
    sequence = _sequence_of(data, stream)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(11, 5.5))
    sent = sequence.direction(from_initiator)
    time_axis = sequence.time_axis()
    start, end = time_axis.start, time_axis.end
    reduced = max(len(sent.data[0]), len(sent.acks[0])) > DECIMATE_ABOVE
    drawn: dict[str, Any] = {}
    lows: list[numpy.ndarray] = []
    highs: list[numpy.ndarray] = []
    if sent.data[0]:
        xs, low, high = _bars(sent.data, start, end, keep_all=False)
        drawn["data"] = _draw_bars(ax, "data", xs, low, high, "data segment (first to last byte)", BLUE, 1.6)
        lows.append(low)
        highs.append(high)
    if sent.retransmissions[0]:
        xs, low, high = _bars(sent.retransmissions, start, end, keep_all=True)
        _draw_bars(ax, "retransmitted-bytes", xs, low, high, "retransmission", VERMILLION, 2.4)
        lows.append(low)
        highs.append(high)
    acks = sent.acks
    window_edge = None
    if acks[0]:
        xs, ys = _held_to(end, *_steps(acks[0], acks[1], start, end))
        drawn["ack"] = ax.step(
            xs, ys, where="post", color=GREEN, linewidth=1.3, zorder=2, label="ACK from the receiver", gid=GID + "ack"
        )[0]
        lows.append(ys)
        highs.append(ys)
    edges = sent.edges
    if edges[0]:
        edge_xs, edge_ys = _held_to(end, *_steps(edges[0], edges[1], start, end))
        window_edge = ax.step(
            edge_xs,
            edge_ys,
            where="post",
            color=ORANGE,
            linewidth=1.1,
            zorder=2,
            label="ACK + advertised window (how far the sender may go)",
            gid=GID + "window",
        )[0]
    if sent.sacks[0]:
        xs, low, high = _bars(sent.sacks, start, end, keep_all=False)
        drawn["sack"] = _draw_bars(ax, "sack", xs, low, high, "SACK block", PURPLE, 3.5, zorder=4, alpha=0.75)
        lows.append(low)
        highs.append(high)
    marks = {
        kind: (numpy.frombuffer(times), numpy.frombuffer(values, dtype=numpy.int64))
        for kind, (times, values) in sent.marks.items()
    }
    near = _near(lows, highs)
    for _, ys in marks.values():
        lows.append(ys[(ys >= near[0]) & (ys <= near[1])])
    extent = _extent(lows, highs)
    bottom, top = _padded(*extent, Y_MARGIN_SHARE, 1.0) if extent else (-1.0, 1.0)
    placed: list[tuple[str, float, float]] = []
    for kind, style in MARKS.items():
        if kind not in marks:
            continue
        xs, ys = marks[kind]
        if extent and not numpy.all((ys >= near[0]) & (ys <= near[1])):
            ys = _pin_far_marks(ax, style.label, xs, ys, near, extent)
        offsets = _fan_out(time_axis, (bottom, top), xs, ys, placed, kind)
        for offset in sorted(set(offsets)):
            chosen = numpy.array([each == offset for each in offsets])
            artist = ax.plot(
                xs[chosen],
                ys[chosen],
                linestyle="none",
                marker=style.marker,
                markersize=style.size,
                color=style.color,
                markerfacecolor=style.color if style.filled else "white",
                markeredgecolor="white" if style.filled and style.marker not in "xX" else style.color,
                markeredgewidth=0.7 if style.filled and style.marker not in "x" else 1.6,
                zorder=7 if kind == "retransmission" else 6,
                label=style.label,
                gid=GID + kind,
            )[0]
            if offset:
                artist.set_transform(ax.transData + ScaledTranslation(0, offset / 72, ax.figure.dpi_scale_trans))
                for x, y in zip(xs[chosen].tolist(), ys[chosen].tolist()):
                    # A moved mark keeps a leader to its true place: its sequence number is where the leader ends.
                    ax.annotate(
                        "",
                        xy=(x, y),
                        xytext=(0, offset),
                        textcoords="offset points",
                        arrowprops={
                            "arrowstyle": "-",
                            "color": LEADER_COLOUR,
                            "linewidth": 0.8,
                            "shrinkA": style.size / 2,
                            "shrinkB": 0,
                        },
                        zorder=8,
                        gid=GID + "leader",
                    )
            drawn.setdefault(kind, artist)
    ax.set_ylim(bottom, top)
    time_axis.apply(ax)
    window_note = ""
    if window_edge is not None:
        if _shows(ax, window_edge, step=True):
            drawn["window"] = window_edge
        elif min(numpy.frombuffer(edges[1], dtype=numpy.int64)) > top:
            window_note = WINDOW_ABOVE
    elif acks[0]:
        window_note = WINDOW_UNKNOWN
    _label_axes(ax, sequence, sent, from_initiator, floor=0.0 if extent is None or extent[0] >= 0 else None)
    shown = [
        (kind, artist)
        for kind, artist in sorted(drawn.items(), key=lambda item: LEGEND_ORDER.index(item[0]))
        if _shows(ax, artist)
    ]
    if shown or window_note:
        legend = ax.legend(
            [_legend_handle(ax, kind, artist) for kind, artist in shown],
            [artist.get_label() for _, artist in shown],
            handler_map={tuple: HandlerTuple(ndivide=None, pad=0)},
            loc="best",
            fontsize=8,
            framealpha=0.9,
            title=window_note or None,
            title_fontsize=8,
            alignment="left",
        )
        legend.get_title().set_color(ORANGE)
    if reduced:
        ax.set_title(
            f"{sequence.frames_in(from_initiator):,} frames in {COLUMNS:,} time columns (lowest to highest); "
            "every mark kept",
            loc="right",
            fontsize=7.5,
            color="#555555",
        )
    if not sent.frames:
        ax.text(0.5, 0.5, "no segments in this direction", transform=ax.transAxes, ha="center", color=GREY)
    return ax


LEGEND_ORDER = ["data", "ack", "window", "sack", *MARKS]


def draw_time_sequence_figure(
    data: Report | Sequence[FrameAnalysis] | TimeSequence,
    *,
    figure: Figure,
    stream: int = 0,
    kernel: KernelStory | None = None,
) -> list[Axes]:
    """Draw the graphs of the directions that send data into ``figure``, one above the other on one
    time axis; a direction that sends none (only ACKs, SYN, FIN) gets no panel, and the figure says so.
    With ``kernel`` (the kernel's events recorded beside the capture), each graph has under it the
    strips its endpoints' ``tcp_probe`` samples give (see :func:`kernel_strips`), on the same time axis.
    Returns every Axes, top to bottom, from the initiator's side."""
    sequence = _sequence_of(data, stream)
    sides = sequence.directions_to_draw()
    sent = [sequence.direction(side).payload_bytes for side in sides]
    strips = {side: kernel_strips(sequence, side, kernel) for side in sides}
    # A direction that sends far less (a request before a download) gets a lower panel.
    ratios: list[float] = []
    for side, sent_bytes in zip(sides, sent):
        ratios.append(3.0 if sent_bytes * 10 >= max(sent) else 1.6)
        ratios += [3.0 * STRIP_INCHES / MAIN_INCHES] * strips[side].drawn()
    axes = list(
        figure.subplots(len(ratios), 1, sharex=True, squeeze=False, gridspec_kw={"height_ratios": ratios})[:, 0]
    )
    remaining = iter(axes)
    time_axis = sequence.time_axis()
    for side in sides:
        draw_time_sequence(sequence, from_initiator=side, ax=next(remaining))
        chosen = strips[side]
        if chosen.sender is not None:
            draw_congestion_window(sequence, chosen.sender, from_initiator=side, ax=next(remaining))
        if chosen.receiver is not None:
            draw_receive_window(sequence, chosen.receiver, from_initiator=side, ax=next(remaining))
    if len(axes) > len(sides):  # one time axis, labelled once, at the bottom
        for ax in axes[:-1]:
            ax.set_xlabel("")
        axes[-1].set_xlabel("time since the first frame")
        for ax in axes:
            if ax.get_gid() == GID + "strip":
                time_axis.apply(ax, label_bands=False)
    left_out = [side for side in (True, False) if side not in sides]
    for side in left_out:
        direction = sequence.direction(side)
        if direction.frames:
            what = _sent_without_data(direction)
            figure.suptitle(
                f"{direction.name} ({sequence.role(side)}) sends no data ({what}): no graph of its own; "
                "its ACKs are the ACK line below",
                x=0.01,
                ha="left",
                fontsize=8.5,
                color="#555555",
            )
    return axes


class KernelStrips(NamedTuple):
    """The endpoints whose ``tcp_probe`` samples one direction's strips draw (None: no strip)."""

    sender: EndpointKernel | None
    """Its congestion window strip: the sender's samples."""
    receiver: EndpointKernel | None
    """Its receive window strip: the receiver's samples."""

    def drawn(self) -> int:
        """How many strips: 0, 1 or 2."""
        return (self.sender is not None) + (self.receiver is not None)


def kernel_strips(sequence: TimeSequence, from_initiator: bool, kernel: KernelStory | None) -> KernelStrips:
    """The strips of one direction's graph: none without a kernel story, and none for an endpoint
    without ``tcp_probe`` samples (an empty strip would say nothing, or say wrongly that it was zero)."""
    direction = sequence.direction(from_initiator)
    if kernel is None or not direction.address:
        return KernelStrips(None, None)
    sender, receiver = kernel.sender_and_receiver(sequence.stream, direction.address, direction.port)
    return KernelStrips(
        sender if sender is not None and sender.probes else None,
        receiver if receiver is not None and receiver.probes else None,
    )


def figure_height(sequence: TimeSequence, kernel: KernelStory | None = None) -> float:
    """Inches: 5.5 for one direction's graph, 10 for two, and :data:`STRIP_INCHES` for each kernel strip."""
    sides = sequence.directions_to_draw()
    strips = sum(kernel_strips(sequence, side, kernel).drawn() for side in sides)
    return 1.0 + MAIN_INCHES * len(sides) + STRIP_INCHES * strips


def _probe_times(sequence: TimeSequence, probes: Sequence[ProbeSample]) -> numpy.ndarray:
    """Seconds since the graph's first frame (the probes are on the capture's clock)."""
    origin = sequence.origin or 0
    return (numpy.array([probe.time_ns for probe in probes], dtype=numpy.int64) - origin) / 1e9


def draw_congestion_window(sequence: TimeSequence, sender: EndpointKernel, *, from_initiator: bool, ax: Axes) -> Axes:
    """The sender's congestion window (segments; bytes on the right when its segment size is known)
    and ssthresh where it is set, from its ``tcp_probe`` samples, with the retransmissions of the
    graph above marked on it. ``tcp_probe`` samples a socket as a segment arrives, before processing
    it: each value held since just after the sample before, so the line steps at the samples ("pre")."""
    probes = sender.probes
    times = _probe_times(sequence, probes)
    windows = numpy.array([probe.snd_cwnd for probe in probes], dtype=float)
    thresholds = numpy.array([probe.ssthresh if probe.ssthresh_set else NAN for probe in probes], dtype=float)
    who = f"{_endpoint(sender.address, sender.port)}'s"
    drawn: list[Line2D] = [
        ax.plot(
            times,
            windows,
            drawstyle="steps-pre",
            color=BLUE,
            linewidth=1.4,
            marker=".",
            markersize=3,
            zorder=3,
            label=f"{who} cwnd ({KERNEL})",
            gid=GID + "cwnd",
        )[0]
    ]
    set_at = numpy.flatnonzero(numpy.isfinite(thresholds))
    if len(set_at):
        label = f"ssthresh ({KERNEL})"
        if set_at[0] > 0:
            label = f"ssthresh, set from {format_seconds(float(times[set_at[0]]))} ({KERNEL})"
        drawn.append(
            ax.plot(
                times,
                thresholds,
                drawstyle="steps-pre",
                color=PURPLE,
                linewidth=1.2,
                linestyle="--",
                marker=".",
                markersize=3,
                zorder=2,
                label=label,
                gid=GID + "ssthresh",
            )[0]
        )
    else:
        drawn.append(Line2D([], [], color=PURPLE, linestyle="--", label=f"ssthresh: not set (infinite) ({KERNEL})"))
    retransmitted = sequence.direction(from_initiator).marks.get("retransmission")
    if retransmitted is not None:
        xs = numpy.frombuffer(retransmitted[0])
        # on the line: the value each retransmission was sent under (the next sample's, as drawn)
        at = numpy.clip(numpy.searchsorted(times, xs, side="left"), 0, len(times) - 1)
        drawn.append(_strip_marks(ax, "retransmission", xs, windows[at], GID + "cwnd-retransmission"))
    highest = max(float(windows.max()), float(numpy.nanmax(thresholds)) if len(set_at) else 0.0)
    ax.set_ylim(0, highest * (1 + 2 * Y_MARGIN_SHARE) + 1)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    ax.set_ylabel("cwnd\n(segments)")
    if sender.segment_size:
        size = sender.segment_size

        def to_bytes(segments: Any) -> Any:
            return segments * size

        def to_segments(octets: Any) -> Any:
            return octets / size

        right = ax.secondary_yaxis("right", functions=(to_bytes, to_segments))
        right.yaxis.set_major_formatter(UnitFormatter(BYTES))
        right.set_ylabel(f"bytes\n(× {size:,} B segments)", fontsize=8)
    _strip_look(ax, drawn)
    return ax


def draw_receive_window(sequence: TimeSequence, receiver: EndpointKernel, *, from_initiator: bool, ax: Axes) -> Axes:
    """The receiver's window: the kernel's ``rcv_wnd`` at its ``tcp_probe`` samples, beside the window its
    segments advertised on the wire (after scaling: a step at each segment), in bytes; zero windows
    marked as on the graph above. ``rcv_wnd`` is the window the receiver last advertised, seen as each
    segment arrives: it changes when the receiver next sends, which no sample shows, so the samples are
    points, not a line (a line would open a window before the wire did)."""
    direction = sequence.direction(from_initiator)
    times = _probe_times(sequence, receiver.probes)
    windows = numpy.array([probe.rcv_wnd for probe in receiver.probes], dtype=float)
    who = f"{_endpoint(receiver.address, receiver.port)}'s"
    drawn: list[Line2D] = []
    highest = float(windows.max())
    if direction.windows[0]:
        start, end = sequence.time_axis()[:2]
        xs, ys = _steps(direction.windows[0], direction.windows[1], start, end)
        highest = max(highest, float(ys.max()))
        drawn.append(
            ax.step(
                xs,
                ys,
                where="post",
                color=ORANGE,
                linewidth=2.6,
                alpha=0.55,
                zorder=2,
                label=f"window {_endpoint(receiver.address, receiver.port)} advertised ({WIRE}, scaled)",
                gid=GID + "advertised-window",
            )[0]
        )
    drawn.append(
        ax.plot(
            times,
            windows,
            linestyle="none",
            color=BLACK,
            marker="o",
            markersize=3,
            zorder=3,
            label=f"{who} rcv_wnd ({KERNEL}: as each segment arrived)",
            gid=GID + "rcv-wnd",
        )[0]
    )
    zero = direction.marks.get("zero_window")
    if zero is not None:
        xs = numpy.frombuffer(zero[0])
        drawn.append(_strip_marks(ax, "zero_window", xs, numpy.zeros(len(xs)), GID + "window-zero"))
    ax.set_ylim(0, highest * (1 + 2 * Y_MARGIN_SHARE) + 1)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10], integer=True))
    ax.yaxis.set_major_formatter(UnitFormatter(BYTES))
    ax.set_ylabel("receive\nwindow")
    _strip_look(ax, drawn)
    return ax


def _strip_marks(ax: Axes, kind: str, xs: numpy.ndarray, ys: numpy.ndarray, gid: str) -> Line2D:
    """Marks of the graph above (:data:`MARKS`), drawn on a strip the same way (not clipped: a zero
    window sits on the strip's edge)."""
    style = MARKS[kind]
    return ax.plot(
        xs,
        ys,
        linestyle="none",
        marker=style.marker,
        markersize=style.size,
        color=style.color,
        markeredgecolor="white",
        markeredgewidth=0.7,
        zorder=5,
        clip_on=False,
        label=f"{style.label} ({WIRE})",
        gid=gid,
    )[0]


def _strip_look(ax: Axes, drawn: list[Line2D]) -> None:
    ax.set_gid(GID + "strip")
    ax.grid(True, color="#DDDDDD", linewidth=0.6)
    ax.legend(handles=drawn, loc="best", fontsize=7.5, framealpha=0.9, ncols=min(len(drawn), 2))


def _sequence_of(data: Report | Sequence[FrameAnalysis] | TimeSequence, stream: int) -> TimeSequence:
    if isinstance(data, TimeSequence):
        return data
    return TimeSequence.of(data.frame_analyses if isinstance(data, Report) else data, stream)


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _sent_without_data(direction: _Direction) -> str:
    kinds = [MARKS[kind].label for kind in ("syn", "fin", "rst") if kind in direction.marks]
    frames = f"{direction.frames:,} segment{'s' if direction.frames != 1 else ''}"
    return frames + (f": ACKs, {', '.join(kinds)}" if kinds else ", ACKs only")


def _label_axes(
    ax: Axes, sequence: TimeSequence, sent: _Direction, from_initiator: bool, *, floor: float | None
) -> None:
    """Titles and axes; the sequence axis has no tick below ``floor`` (0 when nothing drawn is below
    the ISN: "-1 B" under a keep-alive's 5 bytes named a sequence number no segment has)."""
    ax.set_xlabel("time since the first frame")
    ax.set_ylabel("relative sequence number")
    steps = [1, 2, 5, 10]  # not 2.5: it needs 2 decimals
    ax.yaxis.set_major_locator(_FlooredLocator(floor, nbins="auto", steps=steps, integer=True))
    ax.yaxis.set_major_formatter(UnitFormatter(BYTES))
    title = f"TCP stream {sequence.stream}, {sequence.role(from_initiator)}"
    if sent.name:
        title += f": {sent.name}, {format_bytes(sent.payload_bytes)} of data"
        retransmissions = len(sent.marks.get("retransmission", ((),))[0])
        if retransmissions:
            title += f", {retransmissions:,} retransmission{'s' if retransmissions != 1 else ''}"
            if sent.retransmitted_bytes:
                title += f" ({format_bytes(sent.retransmitted_bytes)})"
    if len(title) > TITLE_LINE:  # IPv6 endpoints: the sender and receiver go to a second line
        title = title.replace(": ", ":\n", 1)
    ax.set_title(title, loc="left", fontsize=10.5)
    ax.grid(True, color="#DDDDDD", linewidth=0.6)


def _draw_bars(
    ax: Axes,
    kind: str,
    xs: numpy.ndarray,
    lows: numpy.ndarray,
    highs: numpy.ndarray,
    label: str,
    colour: str,
    width: float,
    *,
    zorder: float = 3,
    alpha: float = 1.0,
) -> Line2D:
    """Vertical bars as one line broken by NaN (one artist for any number of bars)."""
    return ax.plot(
        _broken(xs, xs),
        _broken(lows, highs),
        color=colour,
        linewidth=width,
        solid_capstyle="butt",
        alpha=alpha,
        zorder=zorder,
        label=label,
        gid=GID + kind,
    )[0]


def _legend_handle(ax: Axes, kind: str, artist: Line2D) -> Line2D | tuple[Line2D, ...]:
    """The artist itself; for a retransmission, its bar and its diamond together."""
    if kind != "retransmission":
        return artist
    bars = [line for line in ax.lines if line.get_gid() == GID + "retransmitted-bytes"]
    return (*bars, artist)


def _shows(ax: Axes, artist: Line2D, *, step: bool = False) -> bool:
    """Whether some point of ``artist`` (a step line: some of its steps) lies inside the axes' limits;
    a line of one point (the single ACK of a refused connection) draws nothing."""
    xs = numpy.asarray(artist.get_xdata(), dtype=float)
    ys = numpy.asarray(artist.get_ydata(), dtype=float)
    if artist.get_linestyle() != "None" and numpy.count_nonzero(numpy.isfinite(ys)) < 2:
        return False
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    inside_y = (ys >= y0) & (ys <= y1)
    if step:
        ends = numpy.r_[xs[1:], numpy.inf]  # a step lasts until the next point
        return bool(numpy.any(inside_y & (ends >= x0) & (xs <= x1)))
    return bool(numpy.any(inside_y & (xs >= x0) & (xs <= x1)))


def _extent(lows: list[numpy.ndarray], highs: list[numpy.ndarray]) -> tuple[float, float] | None:
    """The lowest and highest finite value (None when there is none)."""
    finite = [values[numpy.isfinite(values)] for values in (*lows, *highs)]
    finite = [values for values in finite if len(values)]
    if not finite:
        return None
    return float(min(values.min() for values in finite)), float(max(values.max() for values in finite))


def _near(lows: list[numpy.ndarray], highs: list[numpy.ndarray]) -> tuple[float, float]:
    """Where a mark may lie and still set the y range: within the span of the segments and ACKs
    (at least :data:`FAR_BYTES`) of them. A RST injected a billion bytes away is far."""
    extent = _extent(lows, highs)
    if extent is None:
        return -math.inf, math.inf
    reach = max(extent[1] - extent[0], FAR_BYTES)
    return extent[0] - reach, extent[1] + reach


def _fan_out(
    time_axis: TimeAxis,
    y_range: tuple[float, float],
    xs: numpy.ndarray,
    ys: numpy.ndarray,
    placed: list[tuple[str, float, float]],
    kind: str,
) -> list[float]:
    """Vertical offsets (points) that keep marks off the marks of other kinds placed before them: a
    FIN, its retransmission's diamond and a RST in the same millisecond would hide each other. Each
    mark that lands on earlier ones moves :data:`FAN_OUT_POINTS` per kind of mark under it (not per
    mark: a duplicate ACK among a burst of forty retransmissions moves one step, not forty, which
    would draw it far from its sequence number), downwards near the top of the graph, with a leader
    line back to its true place. ``placed`` (kind and axes fractions) grows by these marks."""
    real, drawn = time_axis.knots()
    low, high = (float(numpy.interp(edge, real, drawn)) for edge in time_axis.limits())
    fractions_x = (numpy.interp(xs, real, drawn) - low) / max(high - low, 1e-12)
    fractions_y = (ys - y_range[0]) / max(y_range[1] - y_range[0], 1e-12)
    offsets = []
    mine: list[tuple[str, float, float]] = []
    for x, y in zip(fractions_x.tolist(), fractions_y.tolist()):
        under = {other for other, other_x, other_y in placed if abs(other_x - x) < NEAR_X and abs(other_y - y) < NEAR_Y}
        offsets.append(len(under) * FAN_OUT_POINTS * (-1 if y > 0.7 else 1))
        mine.append((kind, x, y))
    placed += mine
    return offsets


def _pin_far_marks(
    ax: Axes,
    label: str,
    xs: numpy.ndarray,
    ys: numpy.ndarray,
    near: tuple[float, float],
    extent: tuple[float, float],
) -> numpy.ndarray:
    """Far marks drawn at the edge of the range they are off, each labelled with its sequence number."""
    pinned: numpy.ndarray = numpy.clip(ys, *extent).astype(float)
    for x, y, at in zip(xs, ys, pinned):
        if near[0] <= y <= near[1]:
            continue
        above = y > near[1]
        ax.annotate(
            f"{label} at seq {int(y):,} {'↑' if above else '↓'}",
            xy=(x, at),
            xytext=(-6, -4 if above else 4),
            textcoords="offset points",
            ha="right",
            va="top" if above else "bottom",
            fontsize=8,
            color="#333333",
            gid=GID + "far-mark",
        )
    return pinned


def _padded(low: float, high: float, fraction: float, least: float) -> tuple[float, float]:
    margin = max((high - low) * fraction, least)
    return low - margin, high + margin


class TimeAxis(NamedTuple):
    """A time axis from ``start`` to ``end`` (seconds) on which each of ``gaps`` (from, to: the
    frames around a pause) is drawn as a grey band :data:`SHORTENED_SHARE` of the axis wide that says
    how long the pause lasted; :data:`PAUSE_MARGIN_SHARE` of the axis on each side of a band stays at
    real scale, so the frames around it are not drawn on its edges."""

    start: float
    end: float
    gaps: tuple[tuple[float, float], ...]

    def drawn_width(self) -> float:
        """The width of the axis from ``start`` to ``end`` once the pauses are shortened (seconds)."""
        kept = (self.end - self.start) - sum(to - since for since, to in self.gaps)
        return max(kept, 1e-9) / (1 - (SHORTENED_SHARE + 2 * PAUSE_MARGIN_SHARE) * len(self.gaps))

    def bands(self) -> list[tuple[float, float]]:
        """The real times each band covers: its pause less a margin at each end."""
        margin = PAUSE_MARGIN_SHARE * self.drawn_width()
        return [(since + min(margin, (to - since) / 4), to - min(margin, (to - since) / 4)) for since, to in self.gaps]

    def knots(self) -> tuple[numpy.ndarray, numpy.ndarray]:
        """Real times and where they are drawn; linear between knots, slope 1 beyond the ends."""
        width = SHORTENED_SHARE * self.drawn_width()
        real, drawn = [self.start - 1e9, self.start], [self.start - 1e9, self.start]
        for since, to in self.bands():
            drawn.append(drawn[-1] + since - real[-1])
            real.append(since)
            drawn.append(drawn[-1] + width)
            real.append(to)
        drawn += [drawn[-1] + self.end - real[-1], drawn[-1] + self.end - real[-1] + 1e9]
        real += [self.end, self.end + 1e9]
        return numpy.array(real), numpy.array(drawn)

    def limits(self) -> tuple[float, float]:
        """The axis' limits: :data:`EDGE_MARGIN_SHARE` of it before the first frame and after the last."""
        margin = max(self.drawn_width() * EDGE_MARGIN_SHARE, 1e-6)  # slope 1 outside
        return self.start - margin, self.end + margin

    def apply(self, ax: Axes, *, label_bands: bool = True) -> None:
        """Set the axis' limits, its scale (when there are gaps), ticks with units, and the bands (with
        the pause's length written in each, unless ``label_bands`` is False: a strip under the graph)."""
        real, drawn = self.knots()
        if self.gaps:
            ax.set_xscale(
                "function",
                functions=(lambda t: numpy.interp(t, real, drawn), lambda d: numpy.interp(d, drawn, real)),
            )
            ax.xaxis.set_major_locator(_SegmentLocator(self))
        ax.xaxis.set_major_formatter(UnitFormatter(SECONDS))
        ax.set_xlim(*self.limits())
        for (since, to), (left, right) in zip(self.gaps, self.bands()):
            ax.axvspan(left, right, color="#EEEEEE", zorder=0.5, gid=GID + "pause")
            if not label_bands:
                continue
            ax.text(
                (left + right) / 2,
                0.5,
                f"{format_seconds(to - since)} pause, shortened",
                transform=ax.get_xaxis_transform(),
                rotation=90,
                ha="center",
                va="center",
                fontsize=8,
                color="#555555",
                zorder=PAUSE_LABEL_ZORDER,
            )


class _FlooredLocator(MaxNLocator):
    """:class:`MaxNLocator`'s ticks, none below ``floor`` (None: every tick)."""

    def __init__(self, floor: float | None, **options: Any) -> None:
        super().__init__(**options)
        self.floor = floor

    def tick_values(self, vmin: float, vmax: float) -> list[float]:
        ticks = [float(tick) for tick in super().tick_values(vmin, vmax)]
        return ticks if self.floor is None else [tick for tick in ticks if tick >= self.floor]


class _SegmentLocator(Locator):
    """Ticks on a time axis with shortened pauses: on round values within each stretch between bands
    (the roundest one of each first), never two closer than :data:`TICK_SPACING_SHARE` of the axis
    and never with more than :data:`MAXIMUM_TICK_DECIMALS` decimals."""

    def __init__(self, time_axis: TimeAxis) -> None:
        self.time_axis = time_axis

    def __call__(self) -> list[float]:
        axis = self.time_axis
        real, drawn = axis.knots()
        low, high = axis.limits()
        total = float(numpy.interp(high, real, drawn) - numpy.interp(low, real, drawn))
        bounds = [low, *(edge for band in axis.bands() for edge in band), high]
        candidates: list[tuple[int, float]] = []
        for since, to in zip(bounds[0::2], bounds[1::2]):
            candidates.append((0, _roundest(since, to)))
            share = float(numpy.interp(to, real, drawn) - numpy.interp(since, real, drawn)) / max(total, 1e-12)
            bins = max(1, round(9 * share))
            candidates += [
                (1, float(tick))
                for tick in MaxNLocator(nbins=bins, steps=[1, 2, 2.5, 5, 10]).tick_values(since, to)
                if since <= tick <= to
            ]
        prefix = _prefix_for(SECONDS, [high])[0][1]
        ticks: list[float] = []
        for _, tick in sorted(candidates):
            if _decimals_of([tick / prefix]) > MAXIMUM_TICK_DECIMALS:
                continue
            at = float(numpy.interp(tick, real, drawn))
            if all(abs(at - float(numpy.interp(other, real, drawn))) >= TICK_SPACING_SHARE * total for other in ticks):
                ticks.append(tick)
        return sorted(ticks)


def _roundest(low: float, high: float) -> float:
    """The value in [low, high] with the fewest decimals (the middle, if none has fewer than 12)."""
    for decimals in range(-12, 12):
        step = 10.0**-decimals
        candidate = math.ceil(low / step - 1e-9) * step
        if candidate <= high:
            return round(candidate, max(decimals, 0))
    return (low + high) / 2


class Unit(NamedTuple):
    """Prefixes of one unit, largest first: (name, size)."""

    base: str
    prefixes: tuple[tuple[str, float], ...]


SECONDS = Unit("s", (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)))
BYTES = Unit("B", (("MB", 1e6), ("KB", 1e3), ("B", 1.0)))


class UnitFormatter(Formatter):
    """Tick labels with their unit, one prefix for the whole axis (``0 ms``, ``0.5 ms``, ``1 ms``;
    ``200 KB``): never a separate offset or ``1e6`` text."""

    def __init__(self, unit: Unit) -> None:
        self.unit = unit
        self._prefix = unit.prefixes[-1]
        self._decimals = 0

    def set_locs(self, locs: list[float]) -> None:
        super().set_locs(locs)
        self._prefix, self._decimals = _prefix_for(self.unit, list(locs))

    def __call__(self, x: float, pos: int | None = None) -> str:
        name, size = self._prefix
        value = x / size
        if abs(value) < 0.5 * 10**-self._decimals:
            value = 0.0  # no "-0"
        return f"{value:,.{self._decimals}f} {name}"

    def format_data(self, value: float) -> str:
        name, size = _prefix_for(self.unit, [value])[0]
        return f"{value / size:,.6g} {name}"

    def get_offset(self) -> str:
        return ""


def _prefix_for(unit: Unit, values: list[float]) -> tuple[tuple[str, float], int]:
    """The largest prefix that keeps the largest value at 1 or more, and the decimals that write
    each value exactly."""
    largest = max((abs(value) for value in values), default=0.0)
    prefix = next(((name, size) for name, size in unit.prefixes if largest >= size), unit.prefixes[-1])
    decimals = _decimals_of([value / prefix[1] for value in values])
    if prefix[1] == 1.0 and unit is BYTES:
        decimals = 0  # bytes are whole
    return prefix, decimals


def _decimals_of(values: list[float]) -> int:
    """The fewest decimals (at most 6) that write each value exactly: 0.25 needs 2, never "0.2"."""
    for decimals in range(7):
        tolerance = 1e-6 * 10.0**-decimals
        if all(abs(value - round(value, decimals)) <= tolerance * max(1.0, abs(value)) for value in values):
            return decimals
    return 6


def format_seconds(value: float) -> str:
    """``1.52 s``, ``832 ms``, ``129 µs``: three significant digits."""
    name, size = _prefix_for(SECONDS, [value])[0]
    return f"{value / size:.3g} {name}"


def format_bytes(value: float) -> str:
    """``1,448 B``, ``27.3 KB``, ``1.05 MB``."""
    name, size = _prefix_for(BYTES, [value])[0]
    return f"{value:,.0f} B" if size == 1.0 else f"{value / size:.3g} {name}"


def _columns_of(times: numpy.ndarray, start: float, end: float) -> numpy.ndarray:
    """The time column of each point (points outside [start, end] go to the edge columns)."""
    width = max(end - start, 1e-9) / COLUMNS
    return numpy.clip(((times - start) / width).astype(numpy.int64), 0, COLUMNS - 1)


def _bars(
    columns: tuple[array[float], array[int], array[int]], start: float, end: float, *, keep_all: bool
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


def _held_to(end: float, xs: numpy.ndarray, ys: numpy.ndarray) -> tuple[numpy.ndarray, numpy.ndarray]:
    """A step line that holds its last value until ``end`` (the stream's last frame): the receiver's
    cumulative ACK stands until it sends another. Without, a receiver that never acknowledges again
    (the silent client) had its ACK line stop at its last ACK, hidden under the first data segment."""
    if not len(xs) or xs[-1] >= end:
        return xs, ys
    return numpy.r_[xs, end], numpy.r_[ys, ys[-1]]


def _broken(first: numpy.ndarray, second: numpy.ndarray) -> numpy.ndarray:
    """Pairs of points as one line broken by NaN between pairs: first0, second0, nan, first1..."""
    points = numpy.empty(3 * len(first))
    points[0::3], points[1::3], points[2::3] = first, second, NAN
    return points
