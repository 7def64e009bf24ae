"""The ladder (sequence) diagram with matplotlib, seaborn style: ``draw_ladder(...) -> Axes``.

Lifelines for each endpoint (initiator left), one arrow per frame labelled in
Stevens notation with relative numbers, colours and line styles by meaning
(Okabe-Ito palette, safe for colour-blind readers), expert events in a column
on the right with arcs back to the frames they refer to, each endpoint's
RFC 9293 state on its lifeline (the kernel's own, when it was recorded beside the
capture, with notes where it differs from the RFC table), phases shaded, a time gutter on the
left, and with the kernel's record, each socket's Send-Q and Recv-Q in strips right of the rows.
Nothing here shows or saves a figure; the CLI and the notebooks do.
"""

from __future__ import annotations

import bisect
import math
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.legend_handler import HandlerBase
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, Patch, Rectangle
from matplotlib.text import Text
from matplotlib.transforms import Transform

from visualizer.analysis.report import FrameAnalysis, Report, in_stream
from visualizer.model import duration_text
from visualizer.render.layout import (
    WAITING_CALLS,
    Arrow,
    Call,
    Fold,
    Gap,
    LadderLayout,
    Mark,
    Participant,
    Row,
    build_ladder,
    finding_name,
    linked_frames,
    pause_unit,
    wrap_title,
)

if TYPE_CHECKING:
    from visualizer.analysis.kernel import EndpointKernel, KernelStateChange

# Okabe-Ito colours (Okabe & Ito 2008), distinguishable with every common colour-vision deficiency.
BLACK, ORANGE, SKY, GREEN, YELLOW, BLUE, VERMILLION, PURPLE = (
    "#000000",
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
)
GREY = "#7F7F7F"


class Style(NamedTuple):
    """How an arrow of one kind looks."""

    color: str
    linestyle: Literal["-", ":"] | tuple[float, tuple[float, ...]]
    linewidth: float
    head: str
    """A matplotlib arrow style: "-|>" a filled head, "-[" the bar that marks a reset."""


STYLES: dict[str, Style] = {
    "handshake": Style(BLUE, "-", 1.4, "-|>"),
    "data": Style(GREEN, "-", 1.8, "-|>"),
    "ack": Style(GREY, (0, (4, 3)), 0.9, "-|>"),
    "fin": Style(PURPLE, "-", 1.6, "-|>"),
    "rst": Style(BLACK, "-", 2.0, "-["),
    "retransmission": Style(VERMILLION, "-", 1.8, "-|>"),
    "udp": Style(SKY, (0, (6, 2, 1, 2)), 1.6, "-|>"),
    "icmp": Style(ORANGE, (0, (1, 2)), 1.8, "-|>"),
    "icmp_info": Style(SKY, (0, (1, 2)), 1.6, "-|>"),
    "other": Style(GREY, ":", 1.0, "-|>"),
}
KIND_NAMES = {
    "handshake": "handshake (SYN, SYN-ACK, ACK)",
    "data": "data",
    "ack": "pure ACK",
    "fin": "FIN",
    "rst": "RST",
    "retransmission": "retransmission",
    "udp": "UDP datagram",
    "icmp": "ICMP error",
    "icmp_info": "ICMP informational (echo, neighbor discovery...)",
    "other": "other",
}
PHASE_COLOURS = {"handshake": "#E5F0FA", "data": "#FFFFFF", "teardown": "#F6E8F1", "reset": "#FBE6DC"}
PHASE_NAMES = {"handshake": "handshake", "data": "data transfer", "teardown": "teardown", "reset": "reset"}
STATE_COLOURS = {
    "LISTEN": "#DDDDDD",
    "SYN-SENT": SKY,
    "SYN-RECEIVED": SKY,
    "ESTABLISHED": GREEN,
    "FIN-WAIT-1": PURPLE,
    "FIN-WAIT-2": PURPLE,
    "CLOSE-WAIT": ORANGE,
    "CLOSING": PURPLE,
    "LAST-ACK": ORANGE,
    "TIME-WAIT": YELLOW,
    "CLOSED": "#BBBBBB",
}
OTHER_EVENT_COLOUR = "#555555"
_FINDING_GROUPS = {
    VERMILLION: (
        "retransmission",
        "fast_retransmission",
        "spurious_retransmission",
        "not_received",
        "not_yet_received",
        "lost_segment",
        "ack_lost_segment",
        "bad_checksum",
        "state_anomaly",
        "undecoded",
    ),
    ORANGE: ("duplicate_ack", "out_of_order"),
    BLUE: ("rst_accepted", "rst_ignored", "rst_challenged", "challenge_ack", "injected_rst", "no_listener"),
    PURPLE: (
        "zero_window",
        "zero_window_probe",
        "zero_window_probe_ack",
        "window_full",
        "window_update",
        "keep_alive",
        "keep_alive_ack",
    ),
}
EVENT_COLOURS = {kind: colour for colour, kinds in _FINDING_GROUPS.items() for kind in kinds}
"""One colour per finding kind, wherever it appears (loss and errors, duplicate ACKs and order, RST
handling, window and keep-alive); the others (states assumed, ports reused...) in dark grey."""
LEGEND_FINDINGS = 4
"""Findings named in one legend entry; more are "…"."""


def event_colour(kind: str) -> str:
    """The colour of a finding of ``kind``, in every row."""
    return EVENT_COLOURS.get(kind, OTHER_EVENT_COLOUR)


ROW_HEIGHT_INCHES = 0.36
WIDTH_INCHES = 13.0
GUTTER_RIGHT = 1.45
LEFT_LIFELINE = 2.45
RIGHT_LIFELINE = 7.45
EVENT_COLUMN = 8.75
RIGHT_EDGE = 12.6
SLANT = 0.55
"""How far (in rows) an arrow drops between sender and receiver: a segment takes time to arrive."""
UNIT_INCHES = WIDTH_INCHES / RIGHT_EDGE
"""One x unit of the ladder, in inches: a wider ladder is a wider figure, never smaller text."""
LABEL_FONT = 8.0
CHARACTER_WIDTH = 0.602 * LABEL_FONT / 72 / UNIT_INCHES
"""The advance of one DejaVu Sans Mono character of an arrow's label (0.602 em), in x units."""
HEADER_FONT = 9.5
HEADER_CHARACTER_WIDTH = 0.66 * HEADER_FONT / 72 / UNIT_INCHES
"""At most the width of one bold DejaVu Sans character of a lifeline's header, in x units."""
MINIMUM_SPACING = 3.0
"""Lifelines are at least this far apart (x units): room for a 42-character label and a header."""
REAL_TIME_MINIMUM_SPACING = 0.95
REAL_TIME_ROWS_PER_DOUBLING = 0.3
REAL_TIME_MAXIMUM_SPACING = 7.0
"""In real-time mode a pause as short as the ladder's shortest ones (its ``pause_unit_ns``) is a
label's height (the minimum); each doubling beyond it adds REAL_TIME_ROWS_PER_DOUBLING rows (an RTO
that doubles climbs by equal steps, 12 pixels at 110 dpi; microseconds and seconds share a page),
up to the maximum, some 20 doublings on: a longer pause is cut short there, with a break mark and
its duration."""
WIN_RULE = "win= the advertised window (scaled), on every segment; payload quoted only when it is text"
"""What the legend says about the labels (one rule for every segment, whatever is folded or paged)."""
WIN_RULE_UNSCALED = (
    f"{WIN_RULE}\n(where the handshake was not captured, its scale is unknown: win= is the field as sent)"
)
"""The rule when a segment's window scale is unknown."""


def column_order(layout: LadderLayout) -> list[int]:
    """The participants from left to right: each client left of its server (the first to send is
    leftmost), an injector just beside the lifeline it sends to, so that its arrows cross no other;
    participants only seen in marks last."""
    order: list[int] = []
    for row in layout.rows:
        if not isinstance(row, Arrow):
            continue
        roles = (layout.participants[row.source].role, layout.participants[row.target].role)
        left, right = (
            (row.target, row.source) if roles[1] == "client" or roles[0] == "server" else (row.source, row.target)
        )
        if left in order and right not in order:
            order.append(right)
        elif right in order and left not in order:
            order.insert(order.index(right), left)
        elif left not in order:
            order += [left, right] if left != right else [left]
    return order + [index for index in range(len(layout.participants)) if index not in order]


def _header_lines(participant: Participant, spacing: float) -> str:
    """A lifeline's header on one line when it fits between its neighbours, else role and endpoint apart."""
    label = participant.label
    if len(label) * HEADER_CHARACTER_WIDTH + 0.5 <= spacing:
        return label
    return label.replace(" ", "\n", 1).replace(" (stream", "\n(stream")


def _lifeline_x(layout: LadderLayout) -> list[float]:
    """Each participant's x (by participant index): from LEFT_LIFELINE, at least MINIMUM_SPACING apart
    and as far as two-line headers need; two lifelines span the standard width."""
    order = column_order(layout)
    count = len(order)
    if count <= 1:
        return [LEFT_LIFELINE] * max(1, len(layout.participants))
    widest = max(
        max(len(line) for line in _header_lines(participant, 0.0).split("\n")) for participant in layout.participants
    )
    step = max((RIGHT_LIFELINE - LEFT_LIFELINE) / (count - 1), MINIMUM_SPACING, widest * HEADER_CHARACTER_WIDTH + 0.5)
    gaps = [step] * (count - 1)
    column = {index: position for position, index in enumerate(order)}
    # Each arrow's label, whole, between its two lifelines (as far as two lifelines of the standard
    # width would give it): the gaps it spans widen evenly, the narrowest arrows first.
    needs: dict[tuple[int, int], float] = {}
    for row in layout.rows:
        if isinstance(row, Arrow) and row.source != row.target:
            ends = sorted((column[row.source], column[row.target]))
            stamps = sum(len(text) * STAMP_CHARACTER_WIDTH + 0.2 for text, _ in _stamps(row))
            need = min(len(row.label) * CHARACTER_WIDTH + stamps + 0.4, RIGHT_LIFELINE - LEFT_LIFELINE)
            needs[(ends[0], ends[1])] = max(needs.get((ends[0], ends[1]), 0.0), need)
    for (left, right), need in sorted(needs.items(), key=lambda item: item[0][1] - item[0][0]):
        short = need - sum(gaps[left:right])
        if short > 0:
            for gap in range(left, right):
                gaps[gap] += short / (right - left)
    positions = [0.0] * len(layout.participants)
    for index in order:
        positions[index] = LEFT_LIFELINE + sum(gaps[: column[index]])
    return positions


def _duration(nanoseconds: int) -> str:
    """The time since the previous row: "+12 µs"; "-41 µs" when the capture is out of time order;
    "+0" for the same timestamp ("+0 ns" claimed a nanosecond clock of a microsecond capture)."""
    if nanoseconds == 0:
        return "+0"
    sign, value = ("+", nanoseconds) if nanoseconds >= 0 else ("-", -nanoseconds)
    return f"{sign}{duration_text(value)}"


def _shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, but never inside its first word (an arrow's flag names)."""
    limit = max(limit, len(text.split(" ", 1)[0]) + 1)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def ladder_layout(
    data: Report | Sequence[FrameAnalysis] | LadderLayout,
    *,
    stream: int | None = None,
    protocol: str = "tcp",
    fold: bool = True,
) -> LadderLayout:
    """Accept a layout, frame analyses, or a report whose frames were kept; select ``stream`` if given."""
    if isinstance(data, LadderLayout):
        return data
    origin = None
    if isinstance(data, Report):
        frames: Sequence[FrameAnalysis] = data.frame_analyses
        origin = data.first_time_ns
    else:
        frames = data
    if stream is not None:
        frames = [frame for frame in frames if in_stream(frame, protocol, stream)]
    if origin is None and frames:
        origin = frames[0].record.timestamp_ns
    return build_ladder(frames, fold=fold, origin_ns=origin)


def row_positions(layout: LadderLayout, time: str = "order") -> list[float]:
    """The y of each row: one row apart ("order"), or spaced by time ("real"): a longer pause is never
    drawn shorter (log-scaled, so that microseconds and seconds share a page; see
    :data:`REAL_TIME_MAXIMUM_SPACING` for the pauses cut short)."""
    return _positions(layout, time)[0]


def pause_height(pause_ns: int, unit_ns: int) -> tuple[float, bool]:
    """The rows a pause takes in real time, and whether it was cut short (clamped)."""
    if unit_ns <= 0 or pause_ns <= unit_ns:
        return REAL_TIME_MINIMUM_SPACING, False
    height = REAL_TIME_MINIMUM_SPACING + REAL_TIME_ROWS_PER_DOUBLING * math.log2(pause_ns / unit_ns)
    return min(height, REAL_TIME_MAXIMUM_SPACING), height > REAL_TIME_MAXIMUM_SPACING


class Pause(NamedTuple):
    """A pause that real time marks: an idle gap, or one cut short (clamped) at the maximum height."""

    y: float
    text: str
    broken: bool
    """Cut short: drawn with a break on every lifeline. An idle gap drawn to scale is only named."""


def _positions(layout: LadderLayout, time: str) -> tuple[list[float], list[Pause]]:
    """Row positions, and in real time the pauses to mark (idle gaps, pauses cut short)."""
    rows = layout.rows
    if time == "order" or not rows:
        return [float(index) for index in range(len(rows))], []
    unit = layout.pause_unit_ns
    if not unit:  # a layout made by hand: the unit of its own rows
        unit = pause_unit([row.delta_ns for row in rows if isinstance(row, (Arrow, Mark)) and row.delta_ns])
    positions: list[float] = []
    breaks: list[Pause] = []
    y = 0.0
    last: int | None = None
    gap: tuple[int, Gap] | None = None
    for index, row in enumerate(rows):
        if isinstance(row, Gap):
            positions.append(y)  # placed when the frame after it is (the pause spans both)
            gap = (index, row)
            continue
        start = row.start_ns if isinstance(row, Fold) else row.time_ns
        if positions and last is not None and start is not None:
            height, clamped = pause_height(start - last, unit)
            # A break mark half-way between the arrow above (it ends SLANT lower) and the label below.
            middle = y + height / 2 - 0.08
            if gap is not None:
                positions[gap[0]] = middle
                breaks.append(Pause(middle, _idle_text(gap[1]), clamped))
            elif clamped:
                breaks.append(Pause(middle, _duration(start - last).lstrip("+"), True))
            y += height
        elif positions:
            y += 1.0
        gap = None
        positions.append(y)
        end = row.end_ns if isinstance(row, Fold) else row.time_ns
        last = end if end is not None else last
    return positions, breaks


def draw_ladder(
    data: Report | Sequence[FrameAnalysis] | LadderLayout,
    *,
    ax: Axes | None = None,
    stream: int | None = None,
    protocol: str = "tcp",
    time: str = "order",
    title: str | None = None,
    figure: Figure | None = None,
) -> Axes:
    """Draw a ladder diagram and return its Axes (a new figure when ``ax`` is None).

    ``data`` is a :class:`LadderLayout` (one page of it), frame analyses, or a
    report analysed with ``keep_frames=True``; ``stream`` picks one TCP (or, with
    ``protocol="udp"``, UDP) stream. ``time`` is ``"order"`` (one row per frame),
    ``"real"`` (rows spaced by time, idle gaps cut short) or ``"auto"``. Without ``ax``, the
    drawing goes into ``figure`` (an empty one, sized here: saving needs no pyplot) or a new
    pyplot figure.
    """
    from visualizer.render.lanes import draw_lanes, lane_geometry, lane_legend, lanes_right

    layout = ladder_layout(data, stream=stream, protocol=protocol)
    if time == "auto":
        time = "real" if _evenly_spaced(layout) else "order"
    positions, breaks = _positions(layout, time)
    has_events = any(isinstance(row, Arrow) and row.events for row in layout.rows)
    lifelines = _lifeline_x(layout)
    lanes, shift = lane_geometry(layout, lifelines)  # the programs' lanes: room on either side
    lifelines = [x + shift for x in lifelines]
    widening = max(lifelines) - RIGHT_LIFELINE if len(lifelines) > 1 else 0.0
    event_column = _event_column(layout, lifelines)
    right_edge = (RIGHT_EDGE if has_events else RIGHT_LIFELINE + 1.75) + widening
    if lanes:
        beyond = max(0.0, lanes_right(lanes) - event_column)
        event_column += beyond
        right_edge = max(right_edge + beyond, lanes_right(lanes) + 0.3)
    columns = queue_columns(layout, lifelines)
    panel = _panel_width(columns)
    heading = title if title is not None else layout.title
    if layout.pages > 1:
        heading = f"{heading}  (page {layout.page + 1} of {layout.pages})".strip()
    heading_lines = wrap_title(heading, max(40, int(right_edge * 9.5))) if heading else []
    heading = "\n".join(heading_lines)
    spacing = _spacing(lifelines)
    header_rows = max((_header_lines(p, spacing).count("\n") + 1 for p in layout.participants), default=1)
    header_drop = 0.45 * (header_rows - 1)
    top = -2.5 - 0.55 * max(0, len(heading_lines) - 1) - header_drop if heading else -1.6 - header_drop
    bottom = (positions[-1] if positions else 0) + 1.2
    fitted = ax is None
    rows_inches = 0.0
    if ax is None:
        rows_inches = ROW_HEIGHT_INCHES * (bottom - top)
        legend_inches = 0.75  # until the legend is drawn and measured (_fit_figure)
        width = WIDTH_INCHES * (right_edge + panel) / RIGHT_EDGE
        if figure is None:
            import matplotlib.pyplot as plt

            figure = plt.figure()
        figure.set_size_inches(width, rows_inches + legend_inches)
        ax = figure.add_axes(
            (0.0, legend_inches / (rows_inches + legend_inches), 1.0, rows_inches / (rows_inches + legend_inches))
        )
    ax.set_xlim(0, right_edge + panel)
    ax.set_ylim(bottom, top)
    ax.axis("off")
    header_y = (-1.55 - header_drop / 2) if heading else top
    _draw_lifelines(ax, layout, lifelines, header_y, bottom)
    linked = draw_lanes(ax, layout, lanes, positions, lifelines, top=header_y, bottom=bottom)
    frame_y: dict[int, float] = {}
    for row, y in zip(layout.rows, positions):
        if isinstance(row, Arrow):
            _draw_arrow(ax, row, y, lifelines, layout.origin_ns, event_column)
            frame_y[row.frame] = y
        elif isinstance(row, Mark):
            _draw_mark(ax, row, y, lifelines, layout.origin_ns)
        elif isinstance(row, Fold):
            _draw_fold(ax, row, y, lifelines)
        elif isinstance(row, Gap) and time == "order":  # in real time, gaps are among the pauses marked below
            _draw_break(ax, y, lifelines, _idle_text(row))
    for pause in breaks:
        _draw_break(ax, pause.y, lifelines, pause.text, broken=pause.broken)
    links = _draw_links(ax, layout, positions, frame_y, event_column)
    states = _draw_states(ax, layout, positions, lifelines, event_column if has_events else right_edge + 2.0)
    if time == "order":
        has_breaks = any(isinstance(row, Gap) for row in layout.rows)
    else:
        has_breaks = any(pause.broken for pause in breaks)
    _draw_legend(
        ax,
        layout,
        links=links,
        states=states,
        has_breaks=has_breaks,
        queues=bool(columns),
        lanes=lane_legend(layout, linked=linked),
    )
    if heading:
        ax.text(0.08, top + 0.15, heading, ha="left", va="top", fontsize=11, fontweight="bold")
    panel_x = right_edge
    if fitted:
        panel_x = _fit_figure(ax, lifelines, rows_inches, panel)
    # After the crop: with queue strips, the phases end where the ladder does.
    _draw_phases(ax, layout, positions, panel_x if columns else right_edge)
    if columns:
        draw_queues(ax, layout, positions, columns, x=panel_x + QUEUE_MARGIN, header_y=header_y)
    return ax


QUEUE_COLUMN = 0.6
QUEUE_GAP = 0.15
QUEUE_ENDPOINT_GAP = 0.4
QUEUE_MARGIN = 0.3
"""The queue strips, in x units: each column's width, the gap between an endpoint's two columns,
between endpoints, and between the ladder and the panel."""
QUEUE_HEADER_FONT = 7.5
QUEUE_COLOURS = {"send": BLUE, "recv": ORANGE}
QUEUE_NAMES = {"send": "Send-Q", "recv": "Recv-Q"}
QUEUE_MEANINGS = {
    "send": "Send-Q: bytes written, not yet acknowledged",
    "recv": "Recv-Q: bytes received in order, not yet read",
}
QUEUE_MINIMUM_SCALE = 16
"""Bytes: the scale of a queue that stays (nearly) empty."""


class QueueColumn(NamedTuple):
    """One strip: a queue of one endpoint over the ladder's rows."""

    participant: int
    queue: Literal["send", "recv"]
    samples: list[tuple[int, int]]
    """(time, bytes) after every change (the analysis' :class:`QueueSample`); empty before the first."""
    scale: int
    """Bytes at the strip's full width (of the whole ladder: every page of it reads the same)."""


def queue_scale(largest: int) -> int:
    """The strip's full scale: the smallest power of two of bytes (16 B, 32 B... 64 KiB, 1 MiB) that
    holds ``largest``, at least :data:`QUEUE_MINIMUM_SCALE`: a scale that reads as a round number."""
    scale = QUEUE_MINIMUM_SCALE
    while scale < largest:
        scale *= 2
    return scale


def byte_text(count: int) -> str:
    """``32 B``, ``64 KiB``, ``1.5 MiB``: bytes in binary units, as a scale reads them."""
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            value = count / size
            return f"{value:.0f} {unit}" if value == int(value) or value >= 10 else f"{value:.1f} {unit}"
    return f"{count} B"


def queue_columns(layout: LadderLayout, lifelines: Sequence[float]) -> list[QueueColumn]:
    """A Send-Q and a Recv-Q strip for each lifeline that is a socket the kernel recorded (left to
    right as the lifelines stand); none without the kernel's side of the capture."""
    columns: list[QueueColumn] = []
    endpoints = kernel_endpoints(layout)
    for index in sorted(endpoints, key=lambda index: lifelines[index]):
        endpoint = endpoints[index]
        if not endpoint.sockets:  # frames sent in its name by no socket (crafted): no queues
            continue
        for queue in ("send", "recv"):
            samples = [
                (sample.time_ns, sample.send_q if queue == "send" else sample.recv_q) for sample in endpoint.queues
            ]
            scale = queue_scale(max((value for _, value in samples), default=0))
            columns.append(QueueColumn(index, queue, samples, scale))
    return columns


def _panel_width(columns: Sequence[QueueColumn]) -> float:
    if not columns:
        return 0.0
    endpoints = len({column.participant for column in columns})
    return (
        QUEUE_MARGIN
        + len(columns) * QUEUE_COLUMN
        + (len(columns) - endpoints) * QUEUE_GAP
        + (endpoints - 1) * QUEUE_ENDPOINT_GAP
        + 0.15
    )


def queue_steps(
    layout: LadderLayout, positions: Sequence[float], column: QueueColumn
) -> tuple[list[float], list[float]]:
    """The strip's step line as (bytes, y): each value held from its change's y (:func:`time_y` on its
    endpoint's lifeline) to the next, from the page's first row (the value then; 0 before the first
    change: an empty queue) to its end."""
    points = time_points(layout, positions, column.participant)
    top, end = positions[0], positions[-1] + 1.0
    if not points:
        return [0.0, 0.0], [top, end]
    beyond = (end, layout.pause_unit_ns or 1_000_000) if layout.page == layout.pages - 1 else None
    values: list[float] = [0.0]
    ys: list[float] = [top]
    for time, value in column.samples:
        y = top if time < points[0][0] else time_y(points, time, beyond=beyond)
        if y is None:
            break
        if y <= ys[-1]:  # at the same y (or before the page): the latest value holds there
            values[-1] = value
            if len(values) > 1 and y == ys[-2]:
                values[-2] = value
            continue
        values += [values[-1], value]
        ys += [y, y]
    return [*values, values[-1]], [*ys, end]


def draw_queues(
    ax: Axes,
    layout: LadderLayout,
    positions: Sequence[float],
    columns: Sequence[QueueColumn],
    *,
    x: float,
    header_y: float,
) -> list[Axes]:
    """The Send-Q and Recv-Q strips from ``x`` (the ladder's x units) rightward, each its own Axes on the
    ladder's y (rows), a step line over a light fill from 0 at its left edge to its scale at its right
    edge; a header per endpoint (like its lifeline's) and per strip (the queue, its scale). Returns the
    strips' Axes."""
    from matplotlib.transforms import blended_transform_factory

    strips: list[Axes] = []
    placement = blended_transform_factory(ax.transData, ax.transAxes)
    top, end = positions[0] - 0.45, positions[-1] + 1.0
    previous: int | None = None
    spacing = (2 * QUEUE_COLUMN + QUEUE_GAP) * HEADER_FONT / QUEUE_HEADER_FONT
    for column in columns:
        if previous is not None:
            x += QUEUE_GAP if column.participant == previous else QUEUE_ENDPOINT_GAP
        if column.participant != previous:
            _draw_header(
                ax,
                x + QUEUE_COLUMN + QUEUE_GAP / 2,
                header_y,
                layout.participants[column.participant],
                spacing,
                fontsize=QUEUE_HEADER_FONT,
                pad=0.3,
                gid=f"queue-header-{column.participant}",
            )
        previous = column.participant
        strip = ax.inset_axes((x, 0.0, QUEUE_COLUMN, 1.0), transform=placement, sharey=ax)
        strip.set_xlim(0, column.scale)
        strip.axis("off")
        strip.set_gid(f"queue-{column.participant}-{column.queue}")
        colour = QUEUE_COLOURS[column.queue]
        strip.add_patch(
            Rectangle((0, top), column.scale, end - top, facecolor="#FAFAFA", edgecolor="#BBBBBB", linewidth=0.6)
        )
        for row, y in zip(layout.rows, positions):  # faint lines: the rows, read across from the ladder
            if isinstance(row, (Arrow, Mark, Fold)):
                strip.plot([0, column.scale], [y, y], color="#E4E4E4", linewidth=0.5, zorder=1)
        values, ys = queue_steps(layout, positions, column)
        strip.fill_betweenx(ys, 0, values, color=colour, alpha=0.3, linewidth=0)
        strip.plot(
            values, ys, color=colour, linewidth=1.3, zorder=3, gid=f"queue-line-{column.participant}-{column.queue}"
        )
        strip.text(
            column.scale / 2,
            top - 0.08,
            QUEUE_NAMES[column.queue],
            ha="center",
            va="bottom",
            fontsize=7.5,
            fontweight="bold",
            color=colour,
        )
        strip.text(
            column.scale / 2,
            (top + positions[0]) / 2,
            f"0–{byte_text(column.scale)}",
            ha="center",
            va="center",
            fontsize=6.5,
            color="#444444",
            gid=f"queue-scale-{column.participant}-{column.queue}",
        )
        peak = max(values)
        if peak > 0:
            at = ys[values.index(peak)]
            strip.text(
                column.scale * 0.04,
                at - 0.05,
                f"{peak:,.0f}",
                ha="left",
                va="bottom",
                fontsize=6.5,
                color=colour,
                fontweight="bold",
                zorder=4,
                gid=f"queue-peak-{column.participant}-{column.queue}",
                bbox={"boxstyle": "square,pad=0.05", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
            )
        strips.append(strip)
        x += QUEUE_COLUMN
    return strips


STATE_FONT = 7.0
STATE_CHARACTER_WIDTH = 0.66 * STATE_FONT / 72 / UNIT_INCHES
"""At most one bold DejaVu Sans character of a state's name on a lifeline, in x units."""
LINK_ROOM = 0.45
"""Room left of the event column for its arcs to bow into (x units)."""


def _event_column(layout: LadderLayout, lifelines: list[float]) -> float:
    """The x of the findings: right of the rightmost lifeline's state names (the longest drawn), and
    of the arcs' bow when there are arcs; never farther than the standard column."""
    right = max(lifelines) if lifelines else RIGHT_LIFELINE
    index = lifelines.index(right) if lifelines else -1
    names = [
        state
        for row in layout.rows
        if isinstance(row, Arrow) and row.protocol == "tcp"
        for state, at in ((row.sender_state, row.source), (row.receiver_state, row.target))
        if at == index
    ]
    states = 0.14 + max(map(len, names), default=0) * STATE_CHARACTER_WIDTH + 0.25
    arcs = LINK_ROOM if any(isinstance(row, Arrow) and linked_frames(row) for row in layout.rows) else 0.0
    return right + min(EVENT_COLUMN - RIGHT_LIFELINE, max(states + arcs, 0.6))


def _spacing(lifelines: list[float]) -> float:
    """The smallest distance between two lifelines (a wide default for one)."""
    distinct = sorted(set(lifelines))
    return min((b - a for a, b in zip(distinct, distinct[1:])), default=RIGHT_LIFELINE - LEFT_LIFELINE)


def _evenly_spaced(layout: LadderLayout) -> bool:
    deltas = sorted(row.delta_ns for row in layout.rows if isinstance(row, (Arrow, Mark)) and row.delta_ns)
    if len(deltas) < 3:
        return False
    return deltas[0] >= 0.5 * deltas[len(deltas) // 2]


def _phase_spans(layout: LadderLayout, positions: list[float]) -> list[tuple[str, float, float, int]]:
    """(phase, first y, last y, rows) for each run of rows in one phase; a RST's row is "reset"; a
    call's row takes the phase of the frames it is tied to (:func:`_call_phases`)."""
    phases = [_row_phase(row) for row in layout.rows]
    for index, phase in _call_phases(layout.rows, phases):
        phases[index] = phase
    spans: list[tuple[str, float, float, int]] = []
    for phase, y in zip(phases, positions):
        if spans and spans[-1][0] == phase:
            spans[-1] = (phase, spans[-1][1], y, spans[-1][3] + 1)
        else:
            spans.append((phase, y, y, 1))
    return [span for span in spans if span[0] in PHASE_COLOURS]


def _row_phase(row: Row) -> str:
    if isinstance(row, Arrow) and row.kind == "rst":
        return "reset"
    return row.phase if isinstance(row, (Arrow, Fold)) else "data"


def _call_phases(rows: Sequence[Row], phases: list[str]) -> list[tuple[int, str]]:
    """The phase of each call's row: a call that waits for the peer (recv, accept) belongs with the
    row before it (the frames before it woke it; a call just before it has its phase already), the
    others with the frames after it (they cause them: close(), then its FIN), either with the only
    ones there are; socket, bind and listen before the first frame are unshaded. So a phase is never
    opened again by a call between its rows and the next phase's."""
    framed = [index for index, row in enumerate(rows) if isinstance(row, (Arrow, Fold))]
    resolved = list(phases)
    result = []
    for index, row in enumerate(rows):
        if not isinstance(row, Call):
            continue
        at = bisect.bisect_left(framed, index)
        before, after = framed[max(0, at - 1) : at], framed[at : at + 1]
        if not before and row.call in ("socket", "bind", "listen"):
            resolved[index] = "setup"
        elif row.call in WAITING_CALLS and before:
            resolved[index] = resolved[index - 1]  # the frame before it, or the call after that frame
        else:
            chosen = after or before
            resolved[index] = phases[chosen[0]] if chosen else "data"
        result.append((index, resolved[index]))
    return result


def _draw_phases(ax: Axes, layout: LadderLayout, positions: list[float], right_edge: float) -> None:
    spans = _phase_spans(layout, positions)
    for phase, start, end, rows in spans:
        ax.add_patch(
            Rectangle(
                (0, start - 0.45),
                right_edge,
                end - start + 1.0,
                facecolor=PHASE_COLOURS[phase],
                edgecolor="none",
                zorder=0,
            )
        )
        if rows >= 3 and (phase != "data" or len(spans) > 1):
            ax.text(
                0.1,
                (start + end) / 2 + 0.25,
                PHASE_NAMES[phase],
                fontsize=7.5,
                style="italic",
                color="#555555",
                va="center",
                ha="center",
                rotation=90,
                zorder=1,
            )


def _draw_lifelines(ax: Axes, layout: LadderLayout, lifelines: list[float], top: float, bottom: float) -> None:
    """A lifeline and its header per participant; an injector's dashed and framed in vermillion (it is
    not a socket: it sends in another endpoint's name)."""
    spacing = _spacing(lifelines)
    for participant, x in zip(layout.participants, lifelines):
        injector = participant.role == "injector"
        ax.plot(
            [x, x],
            [top + 0.5, bottom],
            color=VERMILLION if injector else "#444444",
            linewidth=1.0,
            linestyle=(0, (4, 3)) if injector else "-",
            zorder=1,
        )
        _draw_header(ax, x, top, participant, spacing)
    ax.text(
        GUTTER_RIGHT - 0.05,
        top + 1.0,
        "frame, seconds\nsince start",
        ha="right",
        va="center",
        fontsize=7.5,
        color="#444444",
    )


def _draw_header(
    ax: Axes,
    x: float,
    y: float,
    participant: Participant,
    spacing: float,
    *,
    fontsize: float = HEADER_FONT,
    pad: float = 0.35,
    gid: str | None = None,
) -> None:
    """A participant's header, boxed, centred at (x, y): on one line when it fits ``spacing``; an
    injector's framed in vermillion."""
    injector = participant.role == "injector"
    ax.text(
        x,
        y,
        _header_lines(participant, spacing),
        ha="center",
        va="center",
        fontsize=fontsize,
        fontweight="bold",
        linespacing=1.1,
        zorder=5,
        gid=gid,
        bbox={
            "boxstyle": f"round,pad={pad}",
            "facecolor": "#FBE6DC" if injector else "#F2F2F2",
            "edgecolor": VERMILLION if injector else "#444444",
        },
    )


STAMPS = {
    "bad_checksum": ("bad checksum", VERMILLION),
    "rst_ignored": ("ignored", ORANGE),
    "rst_challenged": ("challenged", ORANGE),
    "challenge_ack": ("challenge ACK", ORANGE),
}
"""Findings stamped on their arrow, beside its label (the event column gives the reason)."""
LOST_AT = 0.5
"""A segment lost after the capture point ends this far along its way, with a cross."""


def _stamps(row: Arrow) -> list[tuple[str, str]]:
    return [STAMPS[name] for name in row.analysis if name in STAMPS]


def _draw_arrow(
    ax: Axes, row: Arrow, y: float, lifelines: list[float], origin: int | None, event_column: float = EVENT_COLUMN
) -> None:
    style = STYLES.get(row.kind, STYLES["other"])
    start, end = lifelines[row.source], lifelines[row.target]
    # A segment lost after the capture point stops half-way; one its receiver threw away
    # (bad checksum, an ignored RST) reaches it and is crossed out there.
    tip_x, tip_y = end, y + SLANT
    if row.fate == "lost":
        tip_x, tip_y = start + (end - start) * LOST_AT, y + SLANT * LOST_AT
    if row.fate:
        cross_x = tip_x - (0.12 if end > start else -0.12) * (row.fate != "lost")
        ax.plot(
            [cross_x],
            [tip_y],
            marker="x",
            markersize=9,
            markeredgewidth=2.2,
            color=VERMILLION,
            zorder=5,
            gid=f"fate-{row.frame}",
        )
    patch = FancyArrowPatch(
        (start, y),
        (tip_x, tip_y),
        arrowstyle="-" if row.fate == "lost" else style.head,
        mutation_scale=11,
        color=style.color,
        linestyle=style.linestyle,
        linewidth=style.linewidth,
        shrinkA=0,
        shrinkB=0,
        zorder=3,
    )
    patch.set_gid(f"frame-{row.frame}")
    patch.set_label(f"frame {row.frame}")
    ax.add_patch(patch)
    _draw_label(ax, row, y, start, end)
    _draw_gutter(ax, row, y, origin)
    if row.events:
        _draw_events(ax, row, event_column, y + SLANT / 2)


STAMP_FONT = 7.0
STAMP_CHARACTER_WIDTH = 0.66 * STAMP_FONT / 72 / UNIT_INCHES


def _draw_label(ax: Axes, row: Arrow, y: float, start: float, end: float) -> None:
    """The arrow's label (and its stamps, toward the receiver) above the arrow, never over it: the
    group is centred, then raised until its bottom clears the arrow across its whole width."""
    span = abs(end - start)
    stamps = _stamps(row)
    stamp_widths = [len(text) * STAMP_CHARACTER_WIDTH + 0.2 for text, _ in stamps]
    room = span - 0.3 - sum(stamp_widths)
    label = _shorten(row.label, int(room / CHARACTER_WIDTH))
    width = len(label) * CHARACTER_WIDTH + sum(stamp_widths)
    middle = (start + end) / 2
    # Along the arrow, its highest point under the group is at the group's sender-side edge.
    along = max(0.0, min(1.0, 0.5 - width / (2 * span))) if span else 0.0
    bottom = y + SLANT * along - 0.04
    direction = 1.0 if end >= start else -1.0
    label_x = middle - direction * sum(stamp_widths) / 2
    ax.text(
        label_x,
        bottom,
        label,
        ha="center",
        va="bottom",
        fontsize=LABEL_FONT,
        family="DejaVu Sans Mono",
        color="#111111",
        zorder=4,
        gid=f"label-{row.frame}",
        bbox={"boxstyle": "square,pad=0.05", "facecolor": "white", "edgecolor": "none", "alpha": 0.75},
    )
    x = label_x + direction * len(label) * CHARACTER_WIDTH / 2
    for (text, colour), stamp_width in zip(stamps, stamp_widths):
        ax.text(
            x + direction * stamp_width / 2,
            bottom,
            text,
            ha="center",
            va="bottom",
            fontsize=STAMP_FONT,
            fontweight="bold",
            color=colour,
            zorder=4,
            gid=f"stamp-{row.frame}",
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": colour, "linewidth": 0.9},
        )
        x += direction * stamp_width


def _gutter_seconds(seconds: float) -> str:
    """Seconds to the microsecond, as Wireshark shows them; in scientific notation when that would
    not fit the gutter (a frame stamped years before the first, in a damaged capture)."""
    text = f"{seconds:.6f}"
    return text if len(text) <= 13 else f"{seconds:.4e}"


def _draw_gutter(ax: Axes, row: Arrow | Mark, y: float, origin: int | None) -> None:
    """The frame number, the time since the start and since the previous frame, left of the lifelines."""
    if row.time_ns is not None and origin is not None:
        ax.text(
            GUTTER_RIGHT - 0.05,
            y + 0.05,
            _gutter_seconds((row.time_ns - origin) / 1e9),
            ha="right",
            va="center",
            fontsize=7.5,
            family="DejaVu Sans Mono",
            color="#222222",
        )
        if row.delta_ns is not None:
            ax.text(
                GUTTER_RIGHT - 0.05,
                y + 0.42,
                _duration(row.delta_ns),
                ha="right",
                va="center",
                fontsize=6.5,
                color="#777777",
            )
    ax.text(0.3, y + 0.05, f"#{row.frame}", ha="left", va="center", fontsize=7, color="#777777")


def _window_rule(layout: LadderLayout) -> str | None:
    """What ``win=`` means, when a TCP segment is drawn: the scaled window, or the field as sent for the
    segments of a stream whose handshake was not captured (the gopacket capture's first GET said
    "win=10473" under "scaled")."""
    arrows = [row for row in layout.rows if isinstance(row, Arrow) and row.protocol == "tcp"]
    if not arrows:
        return None
    return WIN_RULE_UNSCALED if any(arrow.window_unscaled for arrow in arrows) else WIN_RULE


MARK_STYLE = {"marker": "X", "markersize": 9, "color": VERMILLION, "markeredgecolor": "white", "markeredgewidth": 0.8}
"""An undecodable frame: a vermillion cross on its sender's lifeline."""
SELF_MARK_STYLE = {"marker": "o", "markersize": 7, "color": GREY, "markeredgecolor": "white", "markeredgewidth": 0.8}
"""A frame sent to its own sender: a grey dot on its lifeline."""


def _draw_mark(ax: Axes, row: Mark, y: float, lifelines: list[float], origin: int | None) -> None:
    """A frame that is not an arrow: a cross on its sender's lifeline with its text beside it, or,
    sender unknown, its text in a narrow dashed box between the lifelines (it belongs to none)."""
    middle = y + SLANT / 2
    if row.participant is None:
        left, right = (min(lifelines), max(lifelines)) if len(set(lifelines)) > 1 else (LEFT_LIFELINE, RIGHT_LIFELINE)
        ax.text(
            (left + right) / 2,
            middle,
            row.text,
            ha="center",
            va="center",
            fontsize=8.5,
            color="#222222",
            zorder=4,
            gid=f"frame-{row.frame}",
            bbox={
                "boxstyle": "round,pad=0.3",
                "facecolor": "#FBE6DC",
                "edgecolor": VERMILLION,
                "linestyle": (0, (3, 2)),
                "linewidth": 1.0,
            },
        )
    else:
        x = lifelines[row.participant]
        style = MARK_STYLE if row.undecodable else SELF_MARK_STYLE
        ax.plot([x], [middle], linestyle="none", zorder=5, gid=f"frame-{row.frame}", **style)  # type: ignore[arg-type]
        right_side = x < max(lifelines) or len(set(lifelines)) == 1
        ax.text(
            x + (0.18 if right_side else -0.18),
            middle,
            row.text,
            ha="left" if right_side else "right",
            va="center",
            fontsize=8,
            color="#222222",
            zorder=4,
            bbox={
                "boxstyle": "round,pad=0.2",
                "facecolor": "#FBE6DC" if row.undecodable else "white",
                "edgecolor": style["color"],
                "linewidth": 0.8,
            },
        )
    _draw_gutter(ax, row, y, origin)


FATE_NAMES = {
    "lost": "lost after the capture point",
    "discarded": "discarded (bad checksum)",
    "ignored": "ignored by its receiver",
}
EVENT_CHARACTERS = 46
"""What fits on one line of the event column; longer lists of findings wrap."""


def _event_lines(row: Arrow) -> list[list[tuple[str, str]]]:
    """The row's findings as lines of (text, kind), separated by "; " and wrapped between findings
    (never inside one) to the column's width; a wrapped line keeps its ";" so that two findings
    never read as one sentence."""
    kinds = row.event_kinds or ("",) * len(row.events)
    lines: list[list[tuple[str, str]]] = []
    width = 0
    for event, kind in zip(row.events, kinds):
        if lines and width + 2 + len(event) <= EVENT_CHARACTERS:
            lines[-1].append(("; " + event, kind))
            width += 2 + len(event)
        else:
            if lines:
                text, last = lines[-1][-1]
                lines[-1][-1] = (text + ";", last)
            lines.append([(event, kind)])
            width = len(event)
    return lines


EVENT_FONT = 8.0
EVENT_LINE = EVENT_FONT * 1.2 / 72 / ROW_HEIGHT_INCHES
"""One line of the event column, in rows."""


def _draw_events(ax: Axes, row: Arrow, x: float, middle: float) -> None:
    """The row's findings in the event column, each in its kind's colour: a text each, placed after
    the one before it on its line (matplotlib measures them), the lines centred on ``middle``."""
    lines = _event_lines(row)
    first_y = middle - EVENT_LINE * (len(lines) - 1) / 2
    for number, line in enumerate(lines):
        previous: Text | None = None
        for text, kind in line:
            style: dict[str, Any] = {
                "fontsize": EVENT_FONT,
                "color": event_colour(kind),
                "fontweight": "bold",
                "zorder": 4,
            }
            if previous is None:
                previous = ax.text(x, first_y + number * EVENT_LINE, text, ha="left", va="center", **style)
            else:
                previous = ax.annotate(
                    text, xy=(1, 0.5), xycoords=previous, ha="left", va="center", annotation_clip=False, **style
                )
            previous.set_gid(f"event-{row.frame}-{kind}")


FOLD_COLOUR, FOLD_EDGE = "#F4F4F4", "#AAAAAA"
FOLD_TOP, FOLD_BOTTOM = -0.36, 0.5
"""The fold box from its row's y (rows apart): below the arrow above it (which ends SLANT lower),
above the label of the row after it (that label rises some 0.4 row above its arrow)."""


def _draw_fold(ax: Axes, row: Fold, y: float, lifelines: list[float]) -> None:
    """A folded run: a dashed box across the lifelines that says, per direction, what it holds."""
    ends = [lifelines[index] for source, target, _ in row.traffic for index in (source, target)] or lifelines
    left, right = (min(ends), max(ends)) if len(set(ends)) > 1 else (LEFT_LIFELINE, RIGHT_LIFELINE)
    box = Rectangle(
        (left, y + FOLD_TOP),
        right - left,
        FOLD_BOTTOM - FOLD_TOP,
        facecolor=FOLD_COLOUR,
        edgecolor=FOLD_EDGE,
        linestyle=(0, (2, 2)),
        zorder=2,
    )
    box.set_gid(f"fold-{row.first_frame}")
    ax.add_patch(box)
    lines = list(row.lines) or [row.description]
    if len(lines) > 2:  # three lifelines or more: two lines still, the directions run on
        half = (len(lines) + 1) // 2
        lines = ["; ".join(lines[:half]), "; ".join(lines[half:])]
    ax.text(
        (left + right) / 2,
        y + (FOLD_TOP + FOLD_BOTTOM) / 2,
        "\n".join(lines),
        ha="center",
        va="center",
        fontsize=7.5,
        style="italic",
        color="#333333",
        linespacing=1.1,
        zorder=4,
    )
    # The gutter: the frames folded (first–last) on the frame line, how many on the pause line.
    ax.text(0.3, y + 0.05, f"#{row.first_frame}–{row.last_frame}", ha="left", va="center", fontsize=7, color="#777777")
    ax.text(
        GUTTER_RIGHT - 0.05, y + 0.42, f"× {row.count} frames", ha="right", va="center", fontsize=6.5, color="#222222"
    )


BREAK_COLOUR = "#444444"


def _draw_break(ax: Axes, y: float, lifelines: list[float], text: str, *, broken: bool = True) -> None:
    """An axis break on every lifeline (time cut short there) and what was cut; only the text when the
    pause is drawn to scale (``broken`` False)."""
    for x in lifelines if broken else ():
        ax.add_patch(Rectangle((x - 0.12, y + 0.05), 0.24, 0.4, facecolor="white", edgecolor="none", zorder=2))
        ax.plot([x - 0.12, x + 0.12], [y + 0.05, y - 0.05], color=BREAK_COLOUR, linewidth=1, zorder=3)
        ax.plot([x - 0.12, x + 0.12], [y + 0.45, y + 0.35], color=BREAK_COLOUR, linewidth=1, zorder=3)
    left, right = (lifelines[0], lifelines[-1]) if len(lifelines) > 1 else (LEFT_LIFELINE, RIGHT_LIFELINE)
    ax.text(
        (left + right) / 2,
        y + 0.25,
        text,
        ha="center",
        va="center",
        fontsize=8.5,
        style="italic",
        color="#333333",
        zorder=4,
    )


def _idle_text(row: Gap) -> str:
    return f"{row.seconds:.1f} s idle"


LINK_BOW_INCHES = 0.6
"""How far at most an arc in the event column bows out to the left."""


REFERRERS_NAMED = 3
"""Rows named in the note of a referred row without findings ("sent again as #7, #8, #9 and 1 more")."""


def _draw_links(
    ax: Axes,
    layout: LadderLayout,
    positions: list[float],
    frame_y: dict[int, float],
    event_column: float = EVENT_COLUMN,
) -> set[str]:
    """Arcs in the event column from a retransmission to its original (vermillion), and from a fast
    one to the duplicate ACK that triggered it (orange; its text counts them all): see
    :func:`~visualizer.render.layout.linked_frames`. An arc ends at its frame's row, at its findings or, when it
    has none, at a note that names the rows referring to it; a frame referred to by several rows
    gets one arc, from the nearest (the others' texts name it), so that arcs never braid. Returns
    the colours drawn."""
    with_events = {row.frame for row in layout.rows if isinstance(row, Arrow) and row.events}
    referrers: dict[int, list[tuple[int, bool]]] = {}
    arcs: list[tuple[Arrow, float, int, float]] = []
    for row, y in zip(layout.rows, positions):
        if not isinstance(row, Arrow) or not row.links:
            continue
        # The original and the last duplicate ACK (the trigger; the text counts the others).
        for linked in (linked for linked in linked_frames(row) if linked in frame_y and linked != row.frame):
            referred = referrers.setdefault(linked, [])
            referred.append((row.frame, linked == row.original))
            if len(referred) == 1:
                arcs.append((row, y, linked, frame_y[linked]))
    drawn: set[str] = set()
    for row, y, linked, target in arcs:
        colour = ORIGINAL_LINK if linked == row.original else TRIGGER_LINK
        drawn.add(colour)
        # Short arcs bow by 0.3 of their length, long ones at most LINK_BOW_INCHES (they would
        # otherwise reach back over the lifelines).
        bow = min(0.3, 2 * LINK_BOW_INCHES / max(1e-9, abs(y - target) * ROW_HEIGHT_INCHES))
        ax.add_patch(
            FancyArrowPatch(
                (event_column - 0.12, y + SLANT / 2),
                (event_column - 0.12, target + SLANT / 2),
                connectionstyle=f"arc3,rad={-bow:.3f}",
                arrowstyle="-|>",
                mutation_scale=8,
                color=colour,
                linestyle=LINK_STYLE,
                linewidth=1.0,
                zorder=2,
                gid=f"link-{row.frame}-{linked}",
            )
        )
    for linked, referred in referrers.items():
        if linked not in with_events:
            ax.text(
                event_column,
                frame_y[linked] + SLANT / 2,
                _referrers_note(referred),
                ha="left",
                va="center",
                fontsize=7.5,
                style="italic",
                color="#555555",
                zorder=4,
                gid=f"referred-{linked}",
            )
    return drawn


def _referrers_note(referred: list[tuple[int, bool]]) -> str:
    """What a row without findings says of the rows that refer to it: ``sent again as #7, #8``."""
    frames = [f"#{frame}" for frame, _ in referred]
    named = ", ".join(frames[:REFERRERS_NAMED]) + (
        f" and {len(frames) - REFERRERS_NAMED} more" if len(frames) > REFERRERS_NAMED else ""
    )
    return ("sent again as " if all(original for _, original in referred) else "referred to by ") + named


ORIGINAL_LINK, TRIGGER_LINK = VERMILLION, ORANGE
LINK_STYLE = (0, (2, 2))


STATE_LABEL_HEIGHT = 0.42
"""A state's name on a lifeline, in rows: a kernel state's name that would overlap the one above it
on its lifeline goes down by the difference (a leader line ties it to where the state begins)."""
NOTE_FONT = 6.0
NOTE_LINE = NOTE_FONT * 1.25 / 72 / ROW_HEIGHT_INCHES
"""One line of a note under a state's name (where the kernel differs from the RFC table), in rows."""
KERNEL_SOURCE = "states: from the kernel (inet_sock_set_state)"
INFERRED_SOURCE = "states: inferred from the packets"


class StateSegment(NamedTuple):
    """One state of an endpoint along its lifeline, from ``start`` to ``end`` (rows' y)."""

    state: str
    start: float
    end: float
    note: str = ""
    """Where the kernel's record differs from the RFC table's (from the analysis): drawn under the name."""
    named: bool = True
    """False where the state goes on in another socket (a time-wait socket): its note alone is drawn."""


def time_points(layout: LadderLayout, positions: Sequence[float], participant: int) -> list[tuple[int, float]]:
    """Where the rows that carry a time meet ``participant``'s lifeline, as (time, y): a frame at its
    row's y, SLANT lower where it arrives at ``participant`` (its arrow's tip), a fold from its first
    frame's time at its top to its last's at its bottom, any other row with a ``time_ns`` at its y.
    Kept while both grow, so that :func:`time_y` is monotone (a capture out of time order skips)."""
    points: list[tuple[int, float]] = []
    for row, y in zip(layout.rows, positions):
        if isinstance(row, Fold):
            pairs = [(row.start_ns, y + FOLD_TOP), (row.end_ns, y + FOLD_BOTTOM)]
        elif isinstance(row, Arrow):
            arrives = row.target == participant and row.source != participant
            pairs = [(row.time_ns, y + SLANT if arrives else y)]
        elif isinstance(row, Mark):
            pairs = [(row.time_ns, y + SLANT / 2)]
        else:
            pairs = [(getattr(row, "time_ns", None), y)]
        for time, at in pairs:
            if time is not None and (not points or (time >= points[-1][0] and at >= points[-1][1])):
                points.append((time, at))
    return points


def time_y(
    points: Sequence[tuple[int, float]], time_ns: int, *, beyond: tuple[float, int] | None = None
) -> float | None:
    """The y of ``time_ns`` on a lifeline whose rows meet it at ``points`` (:func:`time_points`):
    linear between the two points around it, the first point's y before them. After the last point,
    None (it belongs to a later page) unless ``beyond`` = (the ladder's end, a pause unit) is given:
    then between the last point and the end, half-way one unit later."""
    if not points:
        return None
    index = bisect.bisect_right(points, time_ns, key=lambda point: point[0])
    if index == 0:
        return points[0][1]
    before_time, before_y = points[index - 1]
    if index == len(points):
        if time_ns == before_time:
            return before_y
        if beyond is None:
            return None
        end, unit = beyond
        late = time_ns - before_time
        return before_y + (end - before_y) * late / (late + max(unit, 1))
    after_time, after_y = points[index]
    if after_time == before_time:
        return before_y
    return before_y + (after_y - before_y) * (time_ns - before_time) / (after_time - before_time)


def kernel_endpoints(layout: LadderLayout) -> dict[int, EndpointKernel]:
    """The kernel's record of each lifeline that is a socket of the capture (by participant index),
    when the ladder carries the kernel's side of its capture; an injector is no socket."""
    story = layout.kernel
    if story is None:
        return {}
    streams = {row.stream for row in layout.rows if isinstance(row, Arrow) and row.protocol == "tcp"}
    found: dict[int, EndpointKernel] = {}
    for index, participant in enumerate(layout.participants):
        if participant.role == "injector" or participant.port is None:
            continue
        candidates = [
            endpoint
            for endpoint in story.endpoints
            if (endpoint.address, endpoint.port) == (participant.address, participant.port)
            and (
                endpoint.stream == participant.stream if participant.stream is not None else endpoint.stream in streams
            )
        ]
        if len(candidates) == 1:
            found[index] = candidates[0]
    return found


def kernel_segments(
    layout: LadderLayout, positions: Sequence[float], participant: int, changes: Sequence[KernelStateChange]
) -> list[StateSegment]:
    """The states of ``participant`` on this page of the ladder, from the kernel's ``changes`` placed at
    their times (:func:`time_y`): from the page's first row (in the state the kernel had it in then:
    LISTEN for an accepted socket, whose state before its first change is its listener's) to its end.
    Changes after the page's last row are the next page's; on the last page they come before its end."""
    points = time_points(layout, positions, participant)
    if not points or not changes:
        return []
    top, end = positions[0], positions[-1] + 1.0
    last_page = layout.page == layout.pages - 1
    beyond = (end, layout.pause_unit_ns or 1_000_000) if last_page else None
    segments = [StateSegment(changes[0].old, top, end)]
    for change in changes:
        y = top if change.time_ns < points[0][0] else time_y(points, change.time_ns, beyond=beyond)
        if y is None:
            break
        current = segments[-1]
        if change.new == current.state:
            if change.note:  # the same state, by another socket (a time-wait socket): only said
                segments.append(StateSegment(change.new, y, end, change.note, named=False))
                segments[-2] = current._replace(end=y)
            continue
        if y <= current.start:  # at the page's first row (or before it): the state there
            segments[-1] = StateSegment(change.new, current.start, end, change.note)
        else:
            segments[-1] = current._replace(end=y)
            segments.append(StateSegment(change.new, y, end, change.note))
    return segments


def _inferred_segments(
    layout: LadderLayout, positions: Sequence[float], skip: set[int]
) -> dict[int, list[StateSegment]]:
    """Each TCP endpoint's states as the analysis inferred them from the packets, changed at the rows
    that changed them (at the sender's end of a frame, or its arrow's tip at the receiver)."""
    segments: dict[int, list[StateSegment]] = {}
    last_y = positions[-1] + 1.0 if positions else 0.0
    for row, y in zip(layout.rows, positions):
        if not isinstance(row, Arrow) or row.protocol != "tcp":
            continue
        for index, state, changed, at in (
            (row.source, row.sender_state, row.state_changed[0], y),
            (row.target, row.receiver_state, row.state_changed[1], y + SLANT),
        ):
            if index in skip or (not changed and index in segments):
                continue
            known = segments.setdefault(index, [])
            if known:
                if known[-1].state == state:
                    continue
                known[-1] = known[-1]._replace(end=at)
            known.append(StateSegment(state, at, last_y))
    return segments


class DrawnStates(NamedTuple):
    states: list[str]
    """The states drawn, in order of appearance."""
    kernel: list[int]
    """Participants whose states came from the kernel."""
    inferred: list[int]
    """Participants whose states were inferred from the packets."""


def _draw_states(
    ax: Axes, layout: LadderLayout, positions: list[float], lifelines: list[float], right: float
) -> DrawnStates:
    """Each endpoint's state as a coloured band along its lifeline, named where it changes, on the
    side away from its peers (where no arrow's label is): the kernel's states where they were recorded
    (:func:`kernel_segments`, with the analysis' notes where they differ from the RFC table), else the
    states inferred from the packets. An injector is no socket: it has no state."""
    peers: dict[int, set[float]] = {}
    for row in layout.rows:
        if isinstance(row, Arrow):
            peers.setdefault(row.source, set()).add(lifelines[row.target])
            peers.setdefault(row.target, set()).add(lifelines[row.source])
    injectors = {index for index, participant in enumerate(layout.participants) if participant.role == "injector"}
    kernel = {
        index: segments
        for index, endpoint in kernel_endpoints(layout).items()
        if (segments := kernel_segments(layout, positions, index, endpoint.states))
    }
    inferred = _inferred_segments(layout, positions, injectors | set(kernel))
    for index, segments in [*inferred.items(), *kernel.items()]:
        x = lifelines[index]
        others = peers.get(index) or {x}
        left = sum(others) / len(others) > x
        if left:
            room = x - max([GUTTER_RIGHT - 0.03, *(other + 0.2 for other in lifelines if other < x)])
        else:
            room = min([right, *(other - 0.2 for other in lifelines if other > x)]) - x
        free = -math.inf
        for segment in segments:
            ax.add_patch(
                Rectangle(
                    (x - 0.06, segment.start),
                    0.12,
                    segment.end - segment.start,
                    facecolor=STATE_COLOURS.get(segment.state, GREY),
                    edgecolor="none",
                    alpha=0.9,
                    zorder=2,
                    gid=f"state-{index}-{segment.state}",
                )
            )
            label_y = segment.start if index not in kernel else max(segment.start, free)
            free = _draw_state_label(ax, x, segment, label_y, left=left, room=room)
    ordered = sorted(
        (segment for segments in [*inferred.values(), *kernel.values()] for segment in segments),
        key=lambda segment: segment.start,
    )
    drawn = list(dict.fromkeys(segment.state for segment in ordered))
    return DrawnStates(drawn, sorted(kernel), sorted(inferred))


NOTE_CHARACTER_WIDTH = 0.51 * NOTE_FONT / 72 / UNIT_INCHES
"""About one italic DejaVu Sans character of a note, in x units (notes wrap to the room they have)."""


def note_lines(note: str, room: float) -> list[str]:
    """A state's note in lines that fit ``room`` (x units): each of its "; "-separated parts on lines
    of its own, wrapped between words."""
    width = max(12, int((room - 0.14) / NOTE_CHARACTER_WIDTH))
    parts = note.split("; ")
    lines: list[str] = []
    for number, part in enumerate(parts):
        wrapped = textwrap.wrap(part + (";" if number < len(parts) - 1 else ""), width, break_on_hyphens=False) or [
            part
        ]
        lines.extend(wrapped)
    return lines


def _draw_state_label(ax: Axes, x: float, segment: StateSegment, y: float, *, left: bool, room: float) -> float:
    """A state's name beside its lifeline at ``y`` (tied to where the state begins when it had to go
    lower), its note under it, wrapped to the ``room`` that side has; a state that goes on in another
    socket gets its note alone, at a tick across the band. Returns the y below which the next name is
    free to go."""
    side = -1.0 if left else 1.0
    colour = STATE_COLOURS.get(segment.state, GREY)
    if y - segment.start > 0.05:
        ax.plot([x + side * 0.06, x + side * 0.14], [segment.start, y], color=colour, linewidth=1.0, zorder=5)
    beside: dict[str, Any] = {"ha": "right" if left else "left", "color": "#333333", "zorder": 5}
    if segment.named:
        box = {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": colour, "linewidth": 1.2}
        name = ax.text(x + side * 0.14, y, segment.state, va="center", fontsize=STATE_FONT, bbox=box, **beside)
        name.set_fontweight("bold")
        name.set_gid(f"state-label-{segment.state}")
        below = y + STATE_LABEL_HEIGHT / 2 + 0.04
    else:
        ax.plot([x - 0.12, x + 0.12], [segment.start, segment.start], color="#333333", linewidth=1.2, zorder=5)
        below = y - NOTE_LINE / 2
    if not segment.note:
        return y + STATE_LABEL_HEIGHT
    lines = note_lines(segment.note, room)
    box = {"boxstyle": "square,pad=0.05", "facecolor": "white", "edgecolor": "none", "alpha": 0.85}
    note = ax.text(x + side * 0.14, below, "\n".join(lines), va="top", fontsize=NOTE_FONT, bbox=box, **beside)
    note.set_fontstyle("italic")
    note.set_linespacing(1.1)
    note.set_gid("state-note")
    return below + NOTE_LINE * len(lines) + 0.25


def _state_sources(layout: LadderLayout, states: DrawnStates) -> list[str]:
    """Where the state bands come from, for the legend, when the kernel's side of the capture was
    recorded: the kernel, the packets, or each for the lifelines it drew (a capture of packets alone
    draws inferred states and says nothing more, as before)."""
    if layout.kernel is None or not (states.kernel or states.inferred):
        return []
    if not states.inferred:
        return [KERNEL_SOURCE]
    if not states.kernel:
        return [INFERRED_SOURCE]

    def named(indexes: list[int]) -> str:
        return ", ".join(layout.participants[index].label for index in indexes)

    return [f"{KERNEL_SOURCE}: {named(states.kernel)}", f"{INFERRED_SOURCE}: {named(states.inferred)}"]


class _ArrowHandler(HandlerBase):
    """Legend samples drawn like the arrows they name (a RST's end bar, a dashed arc's head)."""

    def create_artists(  # type: ignore[override]
        self,
        legend: Legend,
        orig_handle: FancyArrowPatch,
        xdescent: float,
        ydescent: float,
        width: float,
        height: float,
        fontsize: float,
        trans: Transform,
    ) -> list[Artist]:
        y = height / 2 - ydescent
        sample = FancyArrowPatch(
            (-xdescent, y),
            (width - xdescent, y),
            arrowstyle=orig_handle.get_arrowstyle(),
            connectionstyle=orig_handle.get_connectionstyle(),
            mutation_scale=orig_handle.get_mutation_scale(),
            color=orig_handle.get_edgecolor(),
            linestyle=orig_handle.get_linestyle(),
            linewidth=orig_handle.get_linewidth(),
            shrinkA=0,
            shrinkB=0,
            transform=trans,
        )
        return [sample]


def _arrow_sample(
    colour: str,
    linestyle: tuple[float, tuple[float, ...]] | str,
    linewidth: float,
    head: str,
    label: str,
    *,
    scale: float = 11,
    connection: str = "arc3",
) -> FancyArrowPatch:
    """A legend handle for an arrow drawn with these settings (drawn by :class:`_ArrowHandler`)."""
    sample = FancyArrowPatch(
        (0, 0),
        (1, 0),
        arrowstyle=head,
        connectionstyle=connection,
        mutation_scale=scale,
        color=colour,
        linestyle=linestyle,
        linewidth=linewidth,
    )
    sample.set_label(label)
    return sample


def _draw_legend(
    ax: Axes,
    layout: LadderLayout,
    *,
    links: set[str],
    states: DrawnStates,
    has_breaks: bool,
    queues: bool = False,
    lanes: Sequence[Artist] = (),
) -> None:
    """One entry for each thing drawn, nothing else: arrow kinds (with their heads), the arcs, the
    segments' fates, marks, folds, breaks, phases, state bands and where they come from (when the
    kernel's side of the capture was recorded), the queue strips, the colours of findings, and the
    entries of the programs' lanes (``lanes``). Its title states the label rule."""
    kinds = {row.kind for row in layout.rows if isinstance(row, Arrow)}
    handles: list[Artist] = [
        # A RST's end bar at its drawn size would reach into the next legend entry: a smaller one.
        _arrow_sample(
            style.color,
            style.linestyle,
            style.linewidth,
            style.head,
            KIND_NAMES[kind],
            scale=7 if kind == "rst" else 11,
        )
        for kind, style in STYLES.items()
        if kind in kinds
    ]
    for colour, text in ((ORIGINAL_LINK, "refers back to the original"), (TRIGGER_LINK, "refers back to its trigger")):
        if colour in links:
            handles.append(_arrow_sample(colour, LINK_STYLE, 1.0, "-|>", text, scale=8, connection="arc3,rad=-0.3"))
    handles.extend(lanes)
    fates = {row.fate for row in layout.rows if isinstance(row, Arrow) and row.fate}
    for fate, text in FATE_NAMES.items():
        if fate in fates:
            handles.append(
                Line2D([0], [0], color=VERMILLION, marker="x", markeredgewidth=2, linestyle="none", label=text)
            )
    marks = [row for row in layout.rows if isinstance(row, Mark)]
    if any(row.participant is not None and row.undecodable for row in marks):
        handles.append(Line2D([0], [0], linestyle="none", label="undecodable frame", **MARK_STYLE))  # type: ignore[arg-type]
    if any(not row.undecodable for row in marks):
        handles.append(Line2D([0], [0], linestyle="none", label="sent to itself", **SELF_MARK_STYLE))  # type: ignore[arg-type]
    if any(row.participant is None for row in marks):
        handles.append(
            Patch(
                facecolor="#FBE6DC",
                edgecolor=VERMILLION,
                linestyle=(0, (3, 2)),
                label="undecodable frame, sender unknown",
            )
        )
    if any(isinstance(row, Fold) for row in layout.rows):
        handles.append(Patch(facecolor=FOLD_COLOUR, edgecolor=FOLD_EDGE, linestyle=(0, (2, 2)), label="folded frames"))
    if has_breaks:
        handles.append(
            Line2D([0], [0], color=BREAK_COLOUR, marker="$//$", markersize=9, linestyle="none", label="time cut short")
        )
    phases = {span[0] for span in _phase_spans(layout, [float(index) for index in range(len(layout.rows))])}
    for phase in ("handshake", "teardown", "reset"):
        if phase in phases:
            handles.append(Patch(facecolor=PHASE_COLOURS[phase], edgecolor="none", label=f"{phase} phase"))
    by_colour: dict[str, list[str]] = {}
    for state in states.states:
        by_colour.setdefault(STATE_COLOURS.get(state, GREY), []).append(state)
    for colour, names in by_colour.items():
        handles.append(Patch(facecolor=colour, edgecolor="none", alpha=0.9, label="state " + ", ".join(names)))
    for text in _state_sources(layout, states):
        handles.append(Patch(facecolor="white", edgecolor="#333333", linewidth=0.8, label=text))
    if queues:
        for queue, text in QUEUE_MEANINGS.items():
            handles.append(
                Patch(facecolor=QUEUE_COLOURS[queue], edgecolor=QUEUE_COLOURS[queue], alpha=0.45, label=text)
            )
    findings: dict[str, list[str]] = {}
    for row in layout.rows:
        if isinstance(row, Arrow):
            for kind in row.event_kinds:
                names = findings.setdefault(event_colour(kind), [])
                name = finding_name(kind)
                if name not in names:
                    names.append(name)
    tints: dict[str, str] = {}
    for colour in [*_FINDING_GROUPS, OTHER_EVENT_COLOUR]:
        drawn = findings.get(colour, [])
        if drawn:
            more = ", …" if len(drawn) > LEGEND_FINDINGS else ""
            text = "finding: " + ", ".join(drawn[:LEGEND_FINDINGS]) + more
            tints[text] = colour
            handles.append(Patch(facecolor="none", edgecolor="none", label=text))
    if not handles:
        handles.append(Line2D([0], [0], color=GREY, label="no frames"))
    legend = ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=min(4, len(handles)),
        fontsize=8,
        frameon=False,
        handlelength=3,
        title=_window_rule(layout),
        title_fontsize=8,
        handler_map={FancyArrowPatch: _ArrowHandler()},
    )
    for entry in legend.get_texts():
        tint = tints.get(entry.get_text())
        if tint is not None:  # a finding's colour is the colour of its words
            entry.set_color(tint)
            entry.set_fontweight("bold")


def _fit_figure(ax: Axes, lifelines: list[float], rows_inches: float, panel: float = 0.0) -> float:
    """Crop the figure we made to what was drawn: the right edge to the rightmost text (an event
    column with short findings leaves no empty band) and the queue strips' ``panel`` beyond it, the
    bottom to the legend's measured height. Returns where the panel begins (x units)."""
    figure = ax.get_figure()
    left, right = ax.get_xlim()
    if not isinstance(figure, Figure):  # drawn into a subfigure: its parent's size is not ours to set
        return right - panel
    width, _ = figure.get_size_inches()
    to_data = ax.transData.inverted()
    rightmost = lifelines[-1] + 0.6 if lifelines else RIGHT_LIFELINE
    renderer = figure._get_renderer()  # type: ignore[attr-defined]  # one, for every measure
    for text in ax.texts:
        if text.get_text():
            box = text.get_window_extent(renderer)
            rightmost = max(rightmost, to_data.transform((box.x1, box.y1))[0])
    legend = ax.get_legend()
    legend_box = legend.get_window_extent(renderer) if legend is not None else None
    dpi = figure.dpi
    inches_per_unit = width / (right - left)
    margin = 0.15 / inches_per_unit
    content = min(right - panel, rightmost + margin)
    new_right = content + panel
    if legend_box is not None:
        new_right = max(new_right, min(right, left + legend_box.width / dpi / inches_per_unit + margin))
    new_width = (new_right - left) * inches_per_unit
    legend_inches = (legend_box.height / dpi if legend_box is not None else 0.0) + 0.12
    height = rows_inches + legend_inches
    figure.set_size_inches(new_width, height)
    ax.set_xlim(left, new_right)
    ax.set_position((0.0, legend_inches / height, 1.0, rows_inches / height))
    return float(content)
