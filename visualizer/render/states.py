"""The TCP state diagram, drawn from the same table the analysis uses (analysis/states.py).

Positions follow RFC 9293 s3.3.2, Figure 5 (opening at the top, closing below).
Every transition in ``TRANSITIONS`` between two different states is an arrow,
labelled with the events that take it; the resets that close every state, and
the transitions that keep a state, are summed up in a note rather than drawn.
"""

from __future__ import annotations

from collections import defaultdict

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch
from matplotlib.path import Path

from visualizer.analysis.states import INITIAL_STATES, RECEIPT_RULES, RST_RULES, TRANSITIONS, Event, State
from visualizer.render.ladder import STATE_COLOURS

POSITIONS: dict[State, tuple[float, float]] = {
    State.CLOSED: (5.0, 9.5),
    State.LISTEN: (5.0, 8.0),
    State.SYN_RECEIVED: (2.0, 6.5),
    State.SYN_SENT: (8.0, 6.5),
    State.ESTABLISHED: (5.0, 5.0),
    State.FIN_WAIT_1: (2.0, 3.5),
    State.CLOSE_WAIT: (8.0, 3.5),
    State.FIN_WAIT_2: (2.0, 1.5),
    State.CLOSING: (5.0, 2.5),
    State.LAST_ACK: (8.0, 1.5),
    State.TIME_WAIT: (5.0, 0.5),
}
_RESETS = (Event.SEND_RST, Event.RECEIVE_RST)


def drawn_transitions() -> dict[tuple[State, State], list[Event]]:
    """The arrows of the diagram: (from, to) -> events, from the analysis's own table."""
    edges: dict[tuple[State, State], list[Event]] = defaultdict(list)
    for (state, event), following in TRANSITIONS.items():
        if following is not state and event not in _RESETS:
            edges[(state, following)].append(event)
    return dict(edges)


BOX_HALF_WIDTH, BOX_HALF_HEIGHT = 0.75, 0.32
_BENDS = {
    (State.SYN_RECEIVED, State.CLOSE_WAIT): 0.3,  # below ESTABLISHED, not through it
}


def _edge_ends(start: tuple[float, float], end: tuple[float, float]) -> tuple[tuple[float, float], ...]:
    """The segment between two boxes, cut at the boxes' edges (so the arrow heads show)."""
    (x1, y1), (x2, y2) = start, end
    dx, dy = x2 - x1, y2 - y1
    scale = min(BOX_HALF_WIDTH / abs(dx) if dx else 1e9, BOX_HALF_HEIGHT / abs(dy) if dy else 1e9)
    return (x1 + dx * scale, y1 + dy * scale), (x2 - dx * scale, y2 - dy * scale)


def draw_state_diagram(*, ax: Axes | None = None, figure: Figure | None = None) -> Axes:
    """Draw the RFC 9293 state diagram of an endpoint as sockstory infers it; returns the Axes.

    Without ``ax``, into ``figure`` (an empty one, sized here) or a new pyplot figure.
    """
    if ax is None:
        if figure is None:
            import matplotlib.pyplot as plt

            figure = plt.figure()
        figure.set_size_inches(17, 10)
        ax = figure.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(-0.5, 16.0)
    ax.set_ylim(-0.9, 10.4)
    ax.axis("off")
    for state, (x, y) in POSITIONS.items():
        ax.text(
            x,
            y,
            state.value,
            ha="center",
            va="center",
            fontsize=10,
            fontweight="bold",
            zorder=4,
            bbox={
                "boxstyle": "round,pad=0.45",
                "facecolor": "white",
                "edgecolor": STATE_COLOURS.get(state.value, "#777777"),
                "linewidth": 2.2,
            },
        )
    edges = drawn_transitions()
    for (source, target), events in edges.items():
        start, end = _edge_ends(POSITIONS[source], POSITIONS[target])
        bend = 0.2 if (target, source) in edges else 0.1
        bend = _BENDS.get((source, target), bend)
        (x1, y1), (x2, y2) = start, end
        if (source, target) == (State.LAST_ACK, State.CLOSED):
            # Around the right-hand side, as in RFC 9293's figure.
            (x1, y1), (x2, y2) = POSITIONS[source], POSITIONS[target]
            corner = 10.0
            path = Path(
                [(x1 + BOX_HALF_WIDTH, y1), (corner, y1), (corner, y2), (x2 + BOX_HALF_WIDTH, y2)],
                [Path.MOVETO, Path.LINETO, Path.LINETO, Path.LINETO],
            )
            ax.add_patch(
                FancyArrowPatch(
                    path=path, arrowstyle="-|>", mutation_scale=14, color="#444444", linewidth=1.1, zorder=2
                )
            )
            middle_x, middle_y = corner, (y1 + y2) / 2
        else:
            ax.add_patch(
                FancyArrowPatch(
                    start,
                    end,
                    connectionstyle=f"arc3,rad={bend}",
                    arrowstyle="-|>",
                    mutation_scale=14,
                    color="#444444",
                    linewidth=1.1,
                    zorder=2,
                )
            )
            middle_x = (x1 + x2) / 2 + bend * (y2 - y1) / 2
            middle_y = (y1 + y2) / 2 - bend * (x2 - x1) / 2
        ax.text(
            middle_x,
            middle_y,
            "\n".join(event.value for event in events),
            ha="center",
            va="center",
            fontsize=7.5,
            color="#222222",
            zorder=3,
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "#FFFFFFE0", "edgecolor": "none"},
        )
    ax.text(
        -0.3,
        -0.6,
        "Not drawn: a RST sent or received closes every state (LISTEN ignores a received RST); segments that "
        "change nothing keep the state; what no segment shows\n(CLOSED -> LISTEN, a passive open; TIME-WAIT -> "
        "CLOSED after 2 MSL). One segment can take two steps: a FIN that also acknowledges the endpoint's own FIN\n"
        "takes FIN-WAIT-1 -> FIN-WAIT-2 -> TIME-WAIT, drawn on ladders as FIN-WAIT-1 -> TIME-WAIT. Events are what "
        "the endpoint sends or receives, as a capture shows them (visualizer/analysis/states.py).",
        fontsize=8.5,
        color="#444444",
        va="center",
    )
    _draw_observer_rules(ax, x=10.9, y=9.6)
    ax.text(
        -0.3,
        10.2,
        "TCP connection states (RFC 9293 s3.3.2), as sockstory infers them",
        fontsize=12,
        fontweight="bold",
        va="center",
    )
    return ax


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
    import textwrap

    for heading, lines in observer_rules():
        ax.text(x, y, heading, fontsize=9, fontweight="bold", color="#222222", va="top")
        y -= 0.4
        for line in lines:
            wrapped = textwrap.fill(line, 62, subsequent_indent="   ")
            ax.text(x, y, "• " + wrapped, fontsize=7.8, color="#333333", va="top", family="DejaVu Sans")
            y -= 0.17 * (wrapped.count("\n") + 1) + 0.1
        y -= 0.25
