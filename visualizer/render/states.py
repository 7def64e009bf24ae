"""The TCP state diagram, drawn from the same table the analysis uses (analysis/states.py).

Positions follow RFC 9293 s3.3.2, Figure 5: opening at the top, closing below, a second
CLOSED box at the bottom right as in the RFC. Every move between two states that the
analysis's data allows is one arrow, labelled with the events that take it:
:data:`~visualizer.analysis.states.TRANSITIONS` (the calls and the timer no segment shows
dashed), :data:`~visualizer.analysis.states.PASSIVE_OPEN_TRANSITIONS` (note 1) and
:func:`~visualizer.analysis.states.one_segment_transitions` (note 2). The resets that close
every state (note 3) are a panel of their own below, one arrow a state, so that they do not
cross the figure. Transitions that keep a state are summed up in words.

Geometry is computed here, in data units of an equal-aspect axes (one unit is one inch):
every arrow is a polyline cut exactly at the edges of its two boxes (its head touches the
target box), and every label is placed beside its arrow where it collides with no box, no
other label and no arrow (:func:`place_labels`). Artists carry gids for tests: ``state NAME``
(a box; the second CLOSED box is ``state CLOSED#2``, the panel's boxes ``reset NAME`` and
``reset CLOSED``; the name in a box: ``name`` and the box's gid), ``edge FROM>TO`` (an arrow;
``reset-edge FROM>TO`` in the panel) and ``label FROM>TO``.
"""

from __future__ import annotations

import textwrap
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path

from visualizer.analysis.states import (
    INITIAL_STATES,
    PASSIVE_OPEN_TRANSITIONS,
    RECEIPT_RULES,
    RST_RULES,
    TRANSITIONS,
    UNSEEN_EVENTS,
    Event,
    State,
    follow,
    one_segment_transitions,
)
from visualizer.render.ladder import STATE_COLOURS

Point = tuple[float, float]
Rectangle = tuple[float, float, float, float]
"""(left, bottom, right, top)."""
S = State

POSITIONS: dict[State, Point] = {
    S.CLOSED: (6.2, 12.4),
    S.LISTEN: (6.2, 10.4),
    S.SYN_RECEIVED: (1.6, 8.4),
    S.SYN_SENT: (10.8, 8.4),
    S.ESTABLISHED: (6.2, 6.6),
    S.FIN_WAIT_1: (1.6, 4.8),
    S.CLOSE_WAIT: (10.8, 4.8),
    S.CLOSING: (6.2, 3.3),
    S.FIN_WAIT_2: (1.6, 2.3),
    S.LAST_ACK: (10.8, 2.3),
    S.TIME_WAIT: (6.2, 0.6),
}
SECOND_CLOSED: Point = (10.8, 0.6)
"""RFC 9293's figure ends LAST-ACK and TIME-WAIT in a CLOSED box of their own, at the bottom right."""
BOX_HALF_WIDTH, BOX_HALF_HEIGHT = 1.0, 0.3
_RESETS = (Event.SEND_RST, Event.RECEIVE_RST)

# Routes: the corners an arrow passes between its two boxes (straight from box to box when absent),
# and which box edge it leaves and enters ("right" of CLOSED, "top" of SYN-SENT...).
_ROUTES: dict[tuple[State, State], list[Point]] = {
    (S.CLOSED, S.SYN_SENT): [(11.3, 12.55)],
    (S.SYN_SENT, S.CLOSED): [(10.3, 12.25)],
    (S.SYN_RECEIVED, S.LISTEN): [(1.6, 10.4)],
    (S.SYN_RECEIVED, S.CLOSE_WAIT): [(2.3, 5.4), (8.9, 5.4)],  # under ESTABLISHED, into CLOSE-WAIT's side
    (S.FIN_WAIT_2, S.TIME_WAIT): [(1.6, 0.6)],
}
_START_OFFSETS: dict[tuple[State, State], Point] = {
    # Where the arrow leaves its box, from the box's centre (two arrows between the same boxes).
    (S.CLOSED, S.LISTEN): (-0.4, 0.0),
    (S.LISTEN, S.CLOSED): (0.4, 0.0),
    (S.CLOSED, S.SYN_SENT): (0.0, 0.15),
    (S.SYN_SENT, S.CLOSED): (-0.5, 0.0),
    (S.SYN_RECEIVED, S.CLOSE_WAIT): (0.7, -0.3),
    (S.SYN_RECEIVED, S.FIN_WAIT_1): (-0.3, 0.0),
    (S.FIN_WAIT_1, S.FIN_WAIT_2): (-0.3, 0.0),
    (S.SYN_RECEIVED, S.LISTEN): (0.0, 0.0),
    (S.SYN_SENT, S.SYN_RECEIVED): (0.0, -0.1),
}
_END_OFFSETS: dict[tuple[State, State], Point] = {
    (S.CLOSED, S.LISTEN): (-0.4, 0.0),
    (S.LISTEN, S.CLOSED): (0.4, 0.0),
    (S.CLOSED, S.SYN_SENT): (0.5, 0.0),
    (S.SYN_SENT, S.CLOSED): (0.0, -0.15),
    (S.SYN_RECEIVED, S.CLOSE_WAIT): (-1.0, 0.05),
    (S.SYN_RECEIVED, S.LISTEN): (0.0, 0.0),
    (S.SYN_SENT, S.SYN_RECEIVED): (0.0, -0.1),
    (S.FIN_WAIT_2, S.TIME_WAIT): (0.0, 0.0),
    (S.SYN_RECEIVED, S.FIN_WAIT_1): (-0.3, 0.0),
    (S.FIN_WAIT_1, S.FIN_WAIT_2): (-0.3, 0.0),
}

_LABEL_LEGS = {"SYN-RECEIVED>CLOSE-WAIT": 0}
"""Labels placed on another leg than the longest: this one's long leg runs beside ESTABLISHED's own "receive FIN"."""

EDGE_COLOUR = "#333333"
UNSEEN_COLOUR = "#777777"
RESET_COLOUR = "#B04A2F"
LABEL_SIZE = 8.0
LABEL_GAP = 0.05
"""Space between an arrow and its label, in inches."""


@dataclass(frozen=True, slots=True)
class Edge:
    """One arrow of the diagram: the move between two states and every event that makes it."""

    source: State
    target: State
    events: tuple[Event, ...]
    kind: str
    """``segment`` (what a capture shows), ``unseen`` (a call or the 2 MSL timer: dashed),
    ``passive`` (a RST after a passive OPEN, note 1) or ``one-segment`` (two events of one segment, note 2)."""

    @property
    def label(self) -> str:
        if self.kind == "one-segment":
            via, _, _ = follow(self.source, tuple(self.events[:1]))
            names = " + ".join(event.value.removeprefix("receive ") for event in reversed(self.events))
            return f"receive {names}\n(one segment: via {via.value})"
        if self.kind == "passive":
            return "receive RST\n(after a passive OPEN)"
        return "\nor ".join(event.value for event in self.events)


def diagram_edges() -> list[Edge]:
    """The arrows of the main diagram, from the analysis's own data (resets apart: :func:`reset_edges`)."""
    events: dict[tuple[State, State], list[Event]] = defaultdict(list)
    for (state, event), following in TRANSITIONS.items():
        if following is not state and event not in _RESETS:
            events[(state, following)].append(event)
    edges = []
    for (source, target), taken in events.items():
        seen = any(event not in UNSEEN_EVENTS for event in taken)
        edges.append(Edge(source, target, tuple(taken), "segment" if seen else "unseen"))
    for (state, event), following in PASSIVE_OPEN_TRANSITIONS.items():
        edges.append(Edge(state, following, (event,), "passive"))
    for (source, target), together in one_segment_transitions().items():
        edges.append(Edge(source, target, together, "one-segment"))
    return edges


def reset_edges() -> list[tuple[State, State]]:
    """The moves a RST sent or received makes (RFC 9293 s3.10.7, Figure 5 note 3): drawn in their own panel."""
    pairs = {(state, following) for (state, event), following in TRANSITIONS.items() if event in _RESETS}
    return sorted((pair for pair in pairs if pair[0] is not pair[1]), key=lambda pair: list(State).index(pair[0]))


# -- geometry -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Box:
    centre: Point
    half_width: float = BOX_HALF_WIDTH
    half_height: float = BOX_HALF_HEIGHT

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        (x, y), w, h = self.centre, self.half_width, self.half_height
        return x - w, y - h, x + w, y + h

    def contains(self, point: Point) -> bool:
        x0, y0, x1, y1 = self.bounds
        return x0 < point[0] < x1 and y0 < point[1] < y1


def _exit_point(box: Box, inside: Point, outside: Point) -> Point:
    """Where the segment from ``inside`` the box to ``outside`` it crosses the box's edge."""
    x0, y0, x1, y1 = box.bounds
    (ax, ay), (bx, by) = inside, outside
    best = 1.0
    for edge, start, delta in ((x0, ax, bx - ax), (x1, ax, bx - ax), (y0, ay, by - ay), (y1, ay, by - ay)):
        if delta:
            t = (edge - start) / delta
            if 0 <= t < best:
                cx, cy = ax + t * (bx - ax), ay + t * (by - ay)
                if x0 - 1e-9 <= cx <= x1 + 1e-9 and y0 - 1e-9 <= cy <= y1 + 1e-9:
                    best = t
    return ax + best * (bx - ax), ay + best * (by - ay)


def route(
    source: Box, target: Box, corners: Sequence[Point] = (), start: Point = (0, 0), end: Point = (0, 0)
) -> list[Point]:
    """The polyline of an arrow: from the source box's edge through ``corners`` to the target box's
    edge. ``start`` and ``end`` move the points aimed at from the boxes' centres."""
    first = (source.centre[0] + start[0], source.centre[1] + start[1])
    last = (target.centre[0] + end[0], target.centre[1] + end[1])
    points = [first, *corners, last]
    head = _exit_point(source, points[0], points[1])
    tail = _exit_point(target, points[-1], points[-2])
    return [head, *points[1:-1], tail]


def _segments(points: Sequence[Point]) -> list[tuple[Point, Point]]:
    return list(zip(points[:-1], points[1:], strict=False))


def _segment_hits_rectangle(a: Point, b: Point, rectangle: tuple[float, float, float, float]) -> bool:
    """Whether the segment a-b passes through the rectangle's inside (Liang-Barsky clipping)."""
    x0, y0, x1, y1 = rectangle
    (ax, ay), (bx, by) = a, b
    dx, dy = bx - ax, by - ay
    low, high = 0.0, 1.0
    for p, q in ((-dx, ax - x0), (dx, x1 - ax), (-dy, ay - y0), (dy, y1 - ay)):
        if p == 0:
            if q <= 0:
                return False
            continue
        t = q / p
        if p < 0:
            low = max(low, t)
        else:
            high = min(high, t)
        if low >= high:
            return False
    return True


def _overlaps(first: tuple[float, float, float, float], second: tuple[float, float, float, float]) -> bool:
    return first[0] < second[2] and second[0] < first[2] and first[1] < second[3] and second[1] < first[3]


def label_size(text: str, fontsize: float = LABEL_SIZE) -> tuple[float, float]:
    """A generous estimate of a label's size in inches (DejaVu Sans: about 0.56 em a character)."""
    lines = text.split("\n")
    width = max(len(line) for line in lines) * fontsize * 0.56 / 72 + 0.1
    height = len(lines) * fontsize * 1.25 / 72 + 0.08
    return width, height


def place_labels(
    paths: dict[str, list[Point]],
    sizes: dict[str, tuple[float, float]],
    obstacles: Sequence[tuple[float, float, float, float]],
    first_legs: dict[str, int] | None = None,
) -> dict[str, Point]:
    """A centre for each path's label: beside its path, clear of the obstacles (boxes), of the
    labels placed before it and of every path. Candidates run along each leg of the path on both
    sides, the longest leg first (or the one ``first_legs`` names); the first candidate that
    collides with nothing wins (else the one with the fewest collisions)."""
    placed: dict[str, Rectangle] = {}
    every_segment = [segment for points in paths.values() for segment in _segments(points)]

    def collisions(rectangle: Rectangle) -> int:
        return (
            sum(_overlaps(rectangle, obstacle) for obstacle in obstacles)
            + sum(_overlaps(rectangle, other) for other in placed.values())
            + sum(_segment_hits_rectangle(a, b, rectangle) for a, b in every_segment)
        )

    for key, points in paths.items():
        candidates = _candidates(points, sizes[key], (first_legs or {}).get(key))
        best = min(candidates, key=collisions)  # the first of the fewest: for most labels, none
        placed[key] = best
    return {key: ((x0 + x1) / 2, (y0 + y1) / 2) for key, (x0, y0, x1, y1) in placed.items()}


def _candidates(points: list[Point], size: tuple[float, float], first_leg: int | None) -> list[Rectangle]:
    """Where a label may go, in order of preference: along the longest leg of its path (or
    ``first_leg``), at its middle first, on either side, at :data:`LABEL_GAP` from the line."""
    width, height = size
    legs = sorted(_segments(points), key=lambda leg: -((leg[1][0] - leg[0][0]) ** 2 + (leg[1][1] - leg[0][1]) ** 2))
    if first_leg is not None:
        first = _segments(points)[first_leg]
        legs.remove(first)
        legs.insert(0, first)
    rectangles = []
    for (ax, ay), (bx, by) in legs:
        length = ((bx - ax) ** 2 + (by - ay) ** 2) ** 0.5 or 1.0
        nx, ny = -(by - ay) / length, (bx - ax) / length
        distance = LABEL_GAP + abs(nx) * width / 2 + abs(ny) * height / 2
        for fraction in (0.5, 0.35, 0.65, 0.2, 0.8):
            px, py = ax + fraction * (bx - ax), ay + fraction * (by - ay)
            for side in (1, -1):
                cx, cy = px + side * nx * distance, py + side * ny * distance
                rectangles.append((cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2))
    return rectangles


# -- drawing ------------------------------------------------------------------------------------

FIGURE_SIZE = (20.5, 17.0)
BOTTOM = -3.5
"""The lowest data y drawn (the reset panel's CLOSED box sits above it)."""
"""Inches; the axes spans the figure with one data unit per inch (an equal aspect: boxes keep their shape)."""


def draw_state_diagram(*, ax: Axes | None = None, figure: Figure | None = None) -> Axes:
    """Draw the RFC 9293 state diagram of an endpoint as sockstory infers it; returns the Axes.

    Without ``ax``, into ``figure`` (an empty one, sized here) or a new pyplot figure.
    """
    if ax is None:
        if figure is None:
            import matplotlib.pyplot as plt

            figure = plt.figure()
        figure.set_size_inches(*FIGURE_SIZE)
        ax = figure.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(-0.7, FIGURE_SIZE[0] - 0.7)
    ax.set_ylim(BOTTOM, FIGURE_SIZE[1] + BOTTOM)
    ax.axis("off")

    boxes = {state: Box(centre) for state, centre in POSITIONS.items()}
    for state, box in boxes.items():
        _draw_box(ax, box, state, gid=f"state {state.value}")
    second_closed = Box(SECOND_CLOSED)
    _draw_box(ax, second_closed, S.CLOSED, gid="state CLOSED#2")

    edges = diagram_edges()
    paths: dict[str, list[Point]] = {}
    for edge in edges:
        pair = (edge.source, edge.target)
        target = (
            second_closed
            if edge.target is S.CLOSED and edge.source in (S.LAST_ACK, S.TIME_WAIT)
            else boxes[edge.target]
        )
        paths[f"{edge.source.value}>{edge.target.value}"] = route(
            boxes[edge.source],
            target,
            _ROUTES.get(pair, ()),
            _START_OFFSETS.get(pair, (0.0, 0.0)),
            _END_OFFSETS.get(pair, (0.0, 0.0)),
        )
    labels = {f"{edge.source.value}>{edge.target.value}": edge.label for edge in edges}
    sizes = {key: label_size(text) for key, text in labels.items()}
    obstacles = [box.bounds for box in [*boxes.values(), second_closed]]
    centres = place_labels(paths, sizes, obstacles, _LABEL_LEGS)
    for edge in edges:
        key = f"{edge.source.value}>{edge.target.value}"
        unseen = edge.kind == "unseen"
        _draw_arrow(ax, paths[key], colour=UNSEEN_COLOUR if unseen else EDGE_COLOUR, dashed=unseen, gid=f"edge {key}")
        ax.text(
            *centres[key],
            labels[key],
            ha="center",
            va="center",
            fontsize=LABEL_SIZE,
            color=UNSEEN_COLOUR if unseen else "#222222",
            style="italic" if unseen else "normal",
            linespacing=1.1,
            zorder=3,
            gid=f"label {key}",
        )
    _draw_resets(ax, top=-0.6)
    _draw_legend(ax, x=13.6, y=-0.4)
    _draw_observer_rules(ax, x=13.6, y=12.7)
    ax.text(
        -0.5,
        FIGURE_SIZE[1] + BOTTOM - 0.45,
        "TCP connection states (RFC 9293 s3.3.2, Figure 5), as sockstory infers them from a capture",
        fontsize=13,
        fontweight="bold",
        va="center",
    )
    return ax


def _draw_box(ax: Axes, box: Box, state: State, *, gid: str, fontsize: float = 10) -> None:
    x0, y0, x1, y1 = box.bounds
    ax.add_patch(
        FancyBboxPatch(
            (x0, y0),
            x1 - x0,
            y1 - y0,
            boxstyle="round,pad=0,rounding_size=0.08",
            facecolor="white",
            edgecolor=STATE_COLOURS.get(state.value, "#777777"),
            linewidth=2.2,
            zorder=4,
            gid=gid,
        )
    )
    ax.text(
        *box.centre,
        state.value,
        ha="center",
        va="center",
        fontsize=fontsize,
        fontweight="bold",
        zorder=5,
        gid=f"name {gid}",
    )


def _draw_arrow(ax: Axes, points: list[Point], *, colour: str, dashed: bool, gid: str, width: float = 1.2) -> None:
    codes = [Path.MOVETO] + [Path.LINETO] * (len(points) - 1)
    ax.add_patch(
        FancyArrowPatch(
            path=Path(points, codes),
            arrowstyle="-|>,head_length=0.5,head_width=0.22",
            mutation_scale=18,
            color=colour,
            linewidth=width,
            linestyle=(0, (4, 3)) if dashed else "-",
            joinstyle="miter",
            zorder=2,
            gid=gid,
        )
    )


def _draw_resets(ax: Axes, *, top: float) -> None:
    """Every state a RST closes, in a row, each with its arrow into one CLOSED box below."""
    pairs = reset_edges()
    sources = [source for source, _ in pairs]
    width = 1.32
    gap = 0.1
    left = 0.0
    ax.text(
        -0.5,
        top,
        "Resets (RFC 9293 s3.10.7, Figure 5 note 3): a RST sent or received (and accepted: RFC 5961 s3.2) "
        "closes every state but LISTEN and CLOSED",
        fontsize=10,
        fontweight="bold",
        va="center",
        color=RESET_COLOUR,
    )
    target = Box((6.2, top - 2.0), BOX_HALF_WIDTH, BOX_HALF_HEIGHT)
    _draw_box(ax, target, S.CLOSED, gid="reset CLOSED")
    x0, _, x1, _ = target.bounds
    for index, (source, following) in enumerate(pairs):
        box = Box((left + width / 2 + index * (width + gap), top - 0.8), width / 2, 0.25)
        _draw_box(ax, box, source, gid=f"reset {source.value}", fontsize=7.5)
        end = (x0 + 0.15 + index * (x1 - x0 - 0.3) / max(1, len(sources) - 1), target.bounds[3])
        start = (box.centre[0], box.bounds[1])
        _draw_arrow(
            ax,
            [start, end],
            colour=RESET_COLOUR,
            dashed=False,
            gid=f"reset-edge {source.value}>{following.value}",
            width=1.0,
        )
    ax.text(
        target.bounds[2] + 0.25,
        target.centre[1],
        "send RST, or receive an acceptable RST\n(SYN-RECEIVED after a passive OPEN: back to LISTEN, above)",
        fontsize=LABEL_SIZE,
        color=RESET_COLOUR,
        va="center",
        gid="label resets",
    )


def _draw_legend(ax: Axes, *, x: float, y: float) -> None:
    """The line styles, and what the diagram leaves out, in words."""
    ax.text(x, y, "How to read it", fontsize=10, fontweight="bold", color="#222222", va="top")
    samples = [
        (EDGE_COLOUR, False, "what a segment shows (sent or received)"),
        (UNSEEN_COLOUR, True, "a call or a timer: no segment shows it"),
        (RESET_COLOUR, False, "a RST"),
    ]
    for index, (colour, dashed, text) in enumerate(samples):
        row = y - 0.45 - index * 0.32
        _draw_arrow(ax, [(x, row), (x + 0.8, row)], colour=colour, dashed=dashed, gid=f"legend {index}")
        ax.text(x + 1.0, row, text, fontsize=8.5, va="center", color="#333333")
    notes = (
        "Not drawn: segments that change nothing keep the state (a retransmission, an ACK in "
        "ESTABLISHED). A segment that brings two events takes two steps. Events are what the endpoint sends "
        "or receives as a capture shows them (visualizer/analysis/states.py). RFC 9293 allows TIME-WAIT after "
        "sending a RST (note 3); Linux closes, as drawn."
    )
    ax.text(
        x,
        y - 0.45 - len(samples) * 0.32,
        textwrap.fill(notes, 78),
        fontsize=8,
        color="#444444",
        va="top",
        linespacing=1.25,
    )


_RECEIPT_NAMES = {
    "listen": "the first SYN's receiver LISTENs",
    "syn": "a SYN was received",
    "synack": "a SYN-ACK was received",
    "fin": "a FIN was received",
    "ack": "the ACK of an endpoint's FIN was received",
    "rst": "a RST was received",
    "send_rst": "a RST came from its sender",
}


def observer_rules() -> list[tuple[str, list[str]]]:
    """The observer's rules beside the table, in words, from the analysis's own data (states.py)."""
    starts = [
        f"first seen {first}: sender {states.sender}, receiver {states.receiver}"
        + (f" ({states.assumption})" if states.assumption else "")
        for first, states in INITIAL_STATES.items()
    ]
    receipts = [
        f"{_RECEIPT_NAMES[kind]}: confirmed when {confirms}; revised when {refutes}"
        for kind, (confirms, refutes) in RECEIPT_RULES.items()
    ]
    resets = [f"{verdict}: {rule}" for verdict, rule in RST_RULES.items()]
    return [
        ("Where a conversation starts (before its first segment)", starts),
        ("Seen is not received: each receipt is tentative", receipts),
        ("A RST (RFC 5961 s3.2, RFC 9293 s3.10.7) is", resets),
    ]


def _draw_observer_rules(ax: Axes, *, x: float, y: float) -> None:
    for heading, lines in observer_rules():
        ax.text(x, y, heading, fontsize=10, fontweight="bold", color="#222222", va="top")
        y -= 0.36
        for line in lines:
            wrapped = textwrap.fill(line, 74, subsequent_indent="   ", break_on_hyphens=False)
            ax.text(x, y, "• " + wrapped, fontsize=8.3, color="#333333", va="top", linespacing=1.2)
            y -= 0.16 * (wrapped.count("\n") + 1) + 0.1
        y -= 0.22
