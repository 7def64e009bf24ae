"""The application lanes of a ladder: each program's socket calls beside its socket's lifeline.

A lane stands outside its lifeline (the leftmost lifeline's to its left, between the time gutter
and the lifeline; the rightmost's to its right), past the column where the lifeline's state names
are written: the lifeline is the socket, the lane the program that uses it. Each call is a row of
the layout (:class:`~visualizer.render.layout.Call`): its words on the lane, and a bar on the lane
from the moment it entered the kernel to the moment it returned (a dot when that is too short to
see), so that a call that waited (a recv before its data came, an accept before its connection)
reads as one. Light dotted links join a send to the arrows that carried its bytes, and the arrows
that delivered bytes to the recv that read them (what the kernel's join found: ``Call.frames``);
a send's link leaves its bar where the frame left while the call ran (else the bar's nearer end),
a recv's ends where it returned.
Routine calls counted in a fold are said on the lane beside the fold.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from visualizer.render.ladder import (
    FOLD_BOTTOM,
    FOLD_TOP,
    GUTTER_RIGHT,
    SLANT,
    STATE_CHARACTER_WIDTH,
    UNIT_INCHES,
)
from visualizer.render.layout import Arrow, Call, Fold, LadderLayout, Mark, Row

LANE_FONT = 7.5
LANE_CHARACTER_WIDTH = 0.602 * LANE_FONT / 72 / UNIT_INCHES
"""One DejaVu Sans Mono character of a call's words, in x units."""
LANE_HEADING_FONT = 8.0
LANE_HEADING_CHARACTER_WIDTH = 0.62 * LANE_HEADING_FONT / 72 / UNIT_INCHES
"""At most one italic DejaVu Sans character of a lane's heading, in x units."""
LANE_STATE_CHARACTERS = len("ESTABLISHED")
"""The state names' column between a lifeline and its lane is at least this wide (in characters)."""
LANE_TEXT_GAP = 0.12
"""From the lane's line to its words (x units)."""
LANE_MARGIN = 0.15
"""From the time gutter to the left lane's words, and from the right lane's words to the findings."""
CALL_MIDDLE = SLANT / 2
"""A call's words stand this far below its row's y: mid-way, like a frame's marks."""
BAR_WIDTH = 0.1
BAR_MINIMUM = 0.12
"""A call shorter than this (rows) is a dot, not a bar; so is one while which nothing drawn happened."""
LANE_COLOUR = "#9A9A9A"
BAR_COLOUR, BAR_EDGE = "#E8E8E8", "#666666"
CALL_COLOUR = "#1A1A1A"
QUOTE_COLOUR = "#555555"
LINK_COLOUR = "#8C8C8C"
LINK_STYLE = (0, (1, 2))
LINK_WIDTH = 0.8


@dataclass(frozen=True, slots=True)
class LaneGeometry:
    """Where a lifeline's lane is drawn."""

    participant: int
    x: float
    """The lane's line (its bars' middle)."""
    side: int
    """-1: left of its lifeline (words right-aligned toward it), 1: right."""
    width: float
    """Of its widest words (call, quote, fold count or heading), x units."""
    heading: str


def call_words(call: Call) -> str:
    """A call's words on its lane: the call, and the quote of a send's first bytes below it."""
    return call.text + (f"\n{call.quote}" if call.quote else "")


def folded_words(fold: Fold, participant: int) -> str:
    """The routine calls a fold counted for ``participant``'s program, one line each."""
    return "\n".join(folded.text for folded in fold.calls if folded.participant == participant)


def lane_sides(layout: LadderLayout, lifelines: list[float]) -> dict[int, int]:
    """The side of each lane: outward for the leftmost and rightmost lifelines, away from its peers
    for one between them."""
    left, right = min(lifelines), max(lifelines)
    sides: dict[int, int] = {}
    for lane in layout.lanes:
        x = lifelines[lane.participant]
        if x == left:
            sides[lane.participant] = -1
        elif x == right:
            sides[lane.participant] = 1
        else:
            peers = [
                lifelines[row.target if row.source == lane.participant else row.source]
                for row in _arrows_of(layout, lane.participant)
            ]
            sides[lane.participant] = 1 if peers and sum(peers) / len(peers) < x else -1
    return sides


def _arrows_of(layout: LadderLayout, participant: int) -> list[Arrow]:
    return [row for row in layout.rows if isinstance(row, Arrow) and participant in (row.source, row.target)]


def _widths(layout: LadderLayout, sides: dict[int, int]) -> dict[int, float]:
    """The widest words of each lane (x units), its heading's on the left (on the right, the
    heading may reach over the findings' column: no finding stands as high)."""
    widths: dict[int, float] = {}
    for lane in layout.lanes:
        heading = max(len(line) for line in _heading_lines(lane.heading)) * LANE_HEADING_CHARACTER_WIDTH
        widths[lane.participant] = heading if sides[lane.participant] < 0 else 0.0
    for row in layout.rows:
        texts: list[tuple[int, str]] = []
        if isinstance(row, Call):
            texts.append((row.participant, call_words(row)))
        elif isinstance(row, Fold):
            texts.extend((folded.participant, folded.text) for folded in row.calls)
        for participant, text in texts:
            if participant in widths:
                longest = max(len(line) for line in text.split("\n"))
                widths[participant] = max(widths[participant], longest * LANE_CHARACTER_WIDTH)
    return widths


def _heading_lines(heading: str) -> list[str]:
    """``client program`` and its process on a line each."""
    return heading.replace(": ", "\n", 1).split("\n")


def lane_geometry(layout: LadderLayout, lifelines: list[float]) -> tuple[list[LaneGeometry], float]:
    """Each lane's geometry, and how far every lifeline must move right to make room for the left
    lane between the time gutter and its lifeline (0 when it fits)."""
    if not layout.lanes or not lifelines:
        return [], 0.0
    sides = lane_sides(layout, lifelines)
    widths = _widths(layout, sides)
    states = _state_room(layout)
    shift = 0.0
    for lane in layout.lanes:
        if sides[lane.participant] < 0:
            room = LANE_MARGIN + widths[lane.participant] + LANE_TEXT_GAP + states[lane.participant]
            shift = max(shift, GUTTER_RIGHT + room - lifelines[lane.participant])
    lanes = [
        LaneGeometry(
            lane.participant,
            lifelines[lane.participant] + shift + sides[lane.participant] * states[lane.participant],
            sides[lane.participant],
            widths[lane.participant],
            lane.heading,
        )
        for lane in layout.lanes
    ]
    return lanes, shift


def _state_room(layout: LadderLayout) -> dict[int, float]:
    """From each lane's lifeline to its line: the column of the lifeline's state names (at least
    :data:`LANE_STATE_CHARACTERS` wide, whoever writes them there)."""
    longest: dict[int, int] = {lane.participant: LANE_STATE_CHARACTERS for lane in layout.lanes}
    for row in layout.rows:
        if isinstance(row, Arrow) and row.protocol == "tcp":
            for at, state in ((row.source, row.sender_state), (row.target, row.receiver_state)):
                if at in longest:
                    longest[at] = max(longest[at], len(state))
    return {participant: 0.14 + length * STATE_CHARACTER_WIDTH + 0.25 for participant, length in longest.items()}


def lanes_right(lanes: list[LaneGeometry]) -> float:
    """The x where the right lanes' words end (0 without one): the findings start right of it."""
    return max((lane.x + LANE_TEXT_GAP + lane.width + LANE_MARGIN for lane in lanes if lane.side > 0), default=0.0)


def time_to_y(anchors: list[tuple[int, float]], time_ns: int) -> float:
    """The y of a moment between rows: linear in time between the two rows around it (``anchors``:
    (time, y) in time order), the nearest row's beyond the first or the last."""
    at = bisect.bisect_left(anchors, time_ns, key=lambda anchor: anchor[0])
    if at == 0:
        return anchors[0][1]
    if at == len(anchors):
        return anchors[-1][1]
    (before, low), (after, high) = anchors[at - 1], anchors[at]
    return high if after == before else low + (high - low) * (time_ns - before) / (after - before)


def time_anchors(rows: list[Row], positions: list[float]) -> list[tuple[int, float]]:
    """(time, y) of every timed row, in time order: a frame where it leaves its sender, a fold at
    its box's top and bottom, a call at its words."""
    anchors: list[tuple[int, float]] = []
    for row, y in zip(rows, positions):
        if isinstance(row, Arrow) and row.time_ns is not None:
            anchors.append((row.time_ns, y))
        elif isinstance(row, Mark) and row.time_ns is not None:
            anchors.append((row.time_ns, y + SLANT / 2))
        elif isinstance(row, Fold) and row.start_ns is not None and row.end_ns is not None:
            anchors += [(row.start_ns, y + FOLD_TOP), (row.end_ns, y + FOLD_BOTTOM)]
        elif isinstance(row, Call):
            anchors.append((row.time_ns, y + CALL_MIDDLE))
    anchors.sort(key=lambda anchor: anchor[0])
    return anchors


def draw_lanes(
    ax: Axes,
    layout: LadderLayout,
    lanes: list[LaneGeometry],
    positions: list[float],
    lifelines: list[float],
    *,
    top: float,
    bottom: float,
) -> bool:
    """Each lane's heading and line, its calls (words and bars), the calls folded beside each fold,
    and the links between sends or recvs and their frames' arrows. Returns whether a link was drawn."""
    by_participant = {lane.participant: lane for lane in lanes}
    for lane in lanes:
        ax.plot([lane.x, lane.x], [top + 0.5, bottom], color=LANE_COLOUR, linewidth=0.8, zorder=1)
        ax.text(
            lane.x - lane.side * 0.1,
            top,
            "\n".join(_heading_lines(lane.heading)),
            ha="right" if lane.side < 0 else "left",
            va="center",
            fontsize=LANE_HEADING_FONT,
            style="italic",
            color="#333333",
            linespacing=1.1,
            zorder=5,
            gid=f"lane-{lane.participant}",
        )
    anchors = time_anchors(layout.rows, positions)
    arrows = {row.frame: (row, y) for row, y in zip(layout.rows, positions) if isinstance(row, Arrow)}
    folds = [(row, y) for row, y in zip(layout.rows, positions) if isinstance(row, Fold)]
    linked = False
    for index, (row, y) in enumerate(zip(layout.rows, positions)):
        if isinstance(row, Fold):
            for participant in {folded.participant for folded in row.calls} & by_participant.keys():
                lane = by_participant[participant]
                _words(ax, lane, y + (FOLD_TOP + FOLD_BOTTOM) / 2, folded_words(row, participant), italic=True)
        if not isinstance(row, Call) or row.participant not in by_participant:
            continue
        lane = by_participant[row.participant]
        middle = y + CALL_MIDDLE
        start, end = time_to_y(anchors, row.start_ns), time_to_y(anchors, row.end_ns)
        start, end = min(start, middle), max(end, middle)
        if _spans_a_row(anchors, row) and end - start >= BAR_MINIMUM:
            bar = Rectangle(
                (lane.x - BAR_WIDTH / 2, start),
                BAR_WIDTH,
                end - start,
                facecolor=BAR_COLOUR,
                edgecolor=BAR_EDGE,
                linewidth=0.8,
                zorder=3,
            )
            bar.set_gid(f"call-bar-{index}")
            ax.add_patch(bar)
        else:
            ax.plot([lane.x], [middle], marker="o", markersize=3.5, color=BAR_EDGE, zorder=3, gid=f"call-bar-{index}")
            start = end = middle
        _words(ax, lane, middle, call_words(row), gid=f"call-{index}")
        linked |= _links(ax, row, index, lane, (start, end), arrows, folds, lifelines)
    return linked


def _spans_a_row(anchors: list[tuple[int, float]], call: Call) -> bool:
    """Whether something drawn happened while the call ran (a frame went by, another call was made):
    only then does its bar say something (between two rows, a row's height is no duration)."""
    at = bisect.bisect_right(anchors, call.start_ns, key=lambda anchor: anchor[0])
    return at < len(anchors) and anchors[at][0] < call.end_ns


def _words(ax: Axes, lane: LaneGeometry, y: float, text: str, *, italic: bool = False, gid: str | None = None) -> None:
    ax.text(
        lane.x + lane.side * LANE_TEXT_GAP,
        y,
        text,
        ha="right" if lane.side < 0 else "left",
        va="center",
        fontsize=LANE_FONT,
        family="DejaVu Sans" if italic else "DejaVu Sans Mono",
        style="italic" if italic else "normal",
        color=QUOTE_COLOUR if italic else CALL_COLOUR,
        linespacing=1.3,
        zorder=4,
        gid=gid,
    )


def _links(
    ax: Axes,
    call: Call,
    index: int,
    lane: LaneGeometry,
    span: tuple[float, float],
    arrows: dict[int, tuple[Arrow, float]],
    folds: list[tuple[Fold, float]],
    lifelines: list[float],
) -> bool:
    """The links of one call: to each drawn arrow among its frames (a send's from where the arrow
    leaves its lifeline, a recv's from where it arrives), and once to each fold that holds some. A
    send's link leaves its bar where the frame left (or the bar's nearer end); a recv's ends at its
    words, where it returned with the bytes."""
    ends: list[tuple[str, float, float]] = []
    in_folds: set[int] = set()
    for frame in call.frames:
        if frame in arrows:
            arrow, y = arrows[frame]
            sent = call.call == "send"
            x = lifelines[arrow.source if sent else arrow.target]
            ends.append((f"call-link-{index}-{frame}", x, y if sent else y + SLANT))
            continue
        for number, (fold, y) in enumerate(folds):
            if fold.first_frame <= frame <= fold.last_frame and number not in in_folds:
                in_folds.add(number)
                middle = y + (FOLD_TOP + FOLD_BOTTOM) / 2
                ends.append((f"call-link-{index}-fold-{fold.first_frame}", lifelines[call.participant], middle))
    edge = lane.x - lane.side * BAR_WIDTH / 2  # the bar's side toward the lifeline
    for gid, x, y in ends:
        ax.plot(
            [edge, x],
            [min(max(y, span[0]), span[1]) if call.call == "send" else span[1], y],
            color=LINK_COLOUR,
            linestyle=LINK_STYLE,
            linewidth=LINK_WIDTH,
            zorder=1.5,
            gid=gid,
        )
    return bool(ends)


def lane_legend(layout: LadderLayout, *, linked: bool) -> list[Patch | Line2D]:
    """The legend's entries for the lanes: a call's bar, and the links when any was drawn."""
    if not layout.lanes:
        return []
    handles: list[Patch | Line2D] = [
        Patch(facecolor=BAR_COLOUR, edgecolor=BAR_EDGE, label="socket call: from its entry to its return (kernel)")
    ]
    if linked:
        handles.append(
            Line2D(
                [0],
                [0],
                color=LINK_COLOUR,
                linestyle=LINK_STYLE,
                linewidth=LINK_WIDTH,
                label="send → the segments of its bytes; segments → the recv that read them",
            )
        )
    return handles
