"""A capture of several conversations: one ladder each, and an overview that shows them all.

One ladder with a dozen conversations is unreadable (lifelines crowd, labels shrink,
one endpoint's lifeline carries several sockets' states), so a capture of several is
drawn as one ladder per conversation, and an overview: a timeline of the
conversations, one bar each from its first to its last frame, coloured by its outcome
and named by its stream number (what ``--stream N`` takes). Frames that belong to no
TCP or UDP conversation (ARP, undecodable frames...) get a ladder of their own and a
row of ticks in the overview, so nothing of the capture goes undrawn.

Computed first, drawn second: :class:`ConversationLadders` sorts frames into one
:class:`~visualizer.render.layout.LadderBuilder` each (streaming: memory follows the
rows kept); :func:`draw_overview` takes the report's conversation summaries and
returns the Axes (seaborn's contract: it never shows or saves).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from visualizer.analysis.report import ConversationSummary, FrameAnalysis
from visualizer.model import PROTOCOL_NUMBERS, endpoint_text
from visualizer.render.layout import FOLD_DETAIL_BUDGET, LadderBuilder, LadderLayout, wrap_title

if TYPE_CHECKING:  # matplotlib loads when a figure is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from visualizer.analysis.kernel import KernelStory

ConversationKey = tuple[str, int]
"""("tcp" or "udp", stream number); ("other", 0) for frames of no conversation."""
OTHER: ConversationKey = ("other", 0)

MAXIMUM_LADDERS = 40
"""A capture of more conversations gets its overview only (one ladder each would be a heap of files)."""
MAXIMUM_OVERVIEW = 500
"""The overview draws at most this many conversations (one row each, 0.26 inch)."""

# Okabe-Ito colours, as the ladder's (visualizer.render.ladder).
OUTCOME_COLOURS = {
    "complete": "#009E73",
    "closing": "#56B4E9",
    "half-closed": "#CC79A7",
    "reset": "#D55E00",
    "refused": "#E69F00",
    "unanswered": "#BBBBBB",
    "open": "#0072B2",
    "udp": "#F0E442",
}
OUTCOME_NAMES = {
    "complete": "complete (both closed)",
    "closing": "closing",
    "half-closed": "half-closed",
    "reset": "reset",
    "refused": "refused",
    "unanswered": "unanswered SYN",
    "open": "open at the end",
    "udp": "UDP",
}
ROW_INCHES = 0.26
BOTTOM_INCHES = 0.72
"""Under the bars: the tick labels, the axis label and the legend, one line each."""
LEGEND_COLUMNS = 5
LEGEND_ROW_INCHES = 0.2
WIDTH_INCHES = 13.0
CHARACTER_INCHES = 0.602 * 8 / 72
"""One character of the overview's monospace text (8 pt DejaVu Sans Mono)."""
TITLE_CHARACTER_INCHES = 0.66 * 11 / 72
"""At most one character of the title (11 pt bold DejaVu Sans)."""


def conversation_key(frame: FrameAnalysis) -> ConversationKey:
    """The conversation a frame belongs to; an ICMP error belongs to the flow it quotes (as in Wireshark)."""
    quoted = frame.record.quoted
    transport = quoted.transport if quoted is not None else frame.record.transport
    if frame.stream >= 0:
        for name, number in PROTOCOL_NUMBERS.items():
            if transport == number:
                return (name, frame.stream)
    return OTHER


def outcome_of(conversation: ConversationSummary) -> str:
    """The outcome the overview colours a conversation by: the analysis's, or ``udp``."""
    return conversation.outcome if conversation.protocol == "tcp" and conversation.outcome else conversation.protocol


def conversation_endpoints(conversation: ConversationSummary) -> str:
    """``10.0.0.1:40000 → [2001:db8::2]:80``: client → server."""
    return (
        f"{endpoint_text(conversation.address_a, conversation.port_a)}"
        f" → {endpoint_text(conversation.address_b, conversation.port_b)}"
    )


def conversation_name(conversation: ConversationSummary, *, width: int = 0) -> str:
    """``TCP 3  10.0.0.1:40000 → 10.0.0.2:80``: the stream number to choose, and its endpoints
    (the stream padded to ``width`` characters, so that the endpoints of several rows line up)."""
    stream = f"{conversation.protocol.upper()} {conversation.stream}".ljust(width)
    return f"{stream}  {conversation_endpoints(conversation)}"


def oriented(conversation: ConversationSummary, responder_first: Collection[int]) -> ConversationSummary:
    """The conversation with its client as ``a``: the summary names the first frame's sender ``a``,
    the server when the capture starts at its SYN-ACK (``LadderBuilder.responder_first``)."""
    if conversation.protocol != "tcp" or conversation.stream not in responder_first:
        return conversation
    c = conversation
    return replace(
        c,
        address_a=c.address_b,
        port_a=c.port_b,
        address_b=c.address_a,
        port_b=c.port_a,
        frames_a_to_b=c.frames_b_to_a,
        bytes_a_to_b=c.bytes_b_to_a,
        frames_b_to_a=c.frames_a_to_b,
        bytes_b_to_a=c.bytes_a_to_b,
        state_a=c.state_b,
        state_b=c.state_a,
    )


def _notes(rows: Sequence[tuple[int, str, str | None]]) -> list[str]:
    """Beside each row: its frames, its outcome and where its ladder is, in columns as wide as
    their widest entry (no blank column for outcomes that no row has)."""
    counts = max((len(str(frames)) for frames, _, _ in rows), default=1)
    outcomes = max((len(outcome) for _, outcome, _ in rows), default=0)
    notes = []
    for frames, outcome, where in rows:
        note = f"{frames:>{counts}} frames" + (f"  {outcome:<{outcomes}}" if outcomes else "")
        notes.append((note + (f"  {where}" if where else "")).rstrip())
    return notes


@dataclass(slots=True)
class ConversationLadders:
    """Frames sorted into one ladder per conversation (and one for frames of no conversation)."""

    conversations: Sequence[ConversationSummary]
    fold: bool = True
    origin_ns: int | None = None
    kernel: KernelStory | None = None
    """The kernel's side of the capture, when it was recorded: every ladder gets it."""
    builders: dict[ConversationKey, LadderBuilder] = field(default_factory=dict)
    other_times: list[int] = field(default_factory=list)
    """The times of the frames of no conversation (the overview's row of ticks)."""

    def add(self, frame: FrameAnalysis) -> None:
        key = conversation_key(frame)
        builder = self.builders.get(key)
        if builder is None:
            # The ladders share the memory one ladder may keep for folded frames.
            budget = FOLD_DETAIL_BUDGET // (len(self.conversations) + 1)
            builder = self.builders[key] = LadderBuilder(
                fold=self.fold, origin_ns=self.origin_ns, detail_budget=budget, kernel=self.kernel
            )
        builder.add(frame)
        if key == OTHER and frame.record.timestamp_ns is not None:
            self.other_times.append(frame.record.timestamp_ns)

    def extend(self, frames: Iterable[FrameAnalysis]) -> ConversationLadders:
        for frame in frames:
            self.add(frame)
        return self

    def finish(
        self, title: Callable[[ConversationSummary | None, int], str]
    ) -> list[tuple[ConversationKey, LadderLayout]]:
        """The ladders in the order of the conversations (frames of none last), each titled by
        ``title(conversation or None, frames drawn)``."""
        summaries = {(c.protocol, c.stream): c for c in self.conversations}
        keys = [key for key in summaries if key in self.builders]
        keys += [key for key in self.builders if key not in summaries]
        ladders = []
        for key in keys:
            builder = self.builders[key]
            layout = builder.finish()
            if layout.rows:
                summary = summaries.get(key)
                if summary is not None:
                    summary = oriented(summary, builder.responder_first)
                layout.title = title(summary, layout.frames)
                ladders.append((key, layout))
        return ladders

    def oriented_conversations(self) -> list[ConversationSummary]:
        """The conversations, each with its client as ``a`` (see :func:`oriented`)."""
        first = {key[1] for key, builder in self.builders.items() if key[0] == "tcp" and builder.responder_first}
        return [oriented(conversation, first) for conversation in self.conversations]


def draw_overview(
    conversations: Sequence[ConversationSummary],
    *,
    origin_ns: int | None = None,
    other_times: Sequence[int] = (),
    title: str = "",
    files: dict[ConversationKey, str] | None = None,
    ax: Axes | None = None,
    figure: Figure | None = None,
) -> Axes:
    """Draw the conversations as a timeline, one bar each, coloured by outcome; returns the Axes.

    ``origin_ns`` is the capture's first frame time (the x axis counts seconds from it);
    ``other_times`` the times of frames of no conversation (a row of ticks); ``files`` the
    name of each conversation's own figure, written beside its row. Without ``ax``, the drawing
    goes into ``figure`` (sized here) or a new pyplot figure.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import ScalarFormatter

    conversations = sorted(conversations, key=lambda c: (c.first_time_ns, c.first_frame))
    rows = len(conversations) + (1 if other_times else 0)
    stream_width = max((len(f"{c.protocol} {c.stream}") for c in conversations), default=0)
    labels = [conversation_name(c, width=stream_width) for c in conversations]
    if other_times:
        labels.append(f"no conversation ({len(other_times)} frames)")
    rows_notes = [
        (c.frames, c.outcome or ("" if c.protocol == "udp" else "-"), (files or {}).get((c.protocol, c.stream)))
        for c in conversations
    ]
    if other_times:
        rows_notes.append((len(other_times), "", (files or {}).get(OTHER)))
    notes = _notes(rows_notes)
    if origin_ns is None:
        times = [c.first_time_ns for c in conversations] + list(other_times)
        origin_ns = min(times) if times else 0
    made = ax is None
    title_lines = wrap_title(title, int(WIDTH_INCHES / TITLE_CHARACTER_INCHES)) if title else []
    title = "\n".join(title_lines)
    entries = len({outcome_of(c) for c in conversations}) + (1 if other_times else 0)
    bottom = BOTTOM_INCHES + LEGEND_ROW_INCHES * max(0, math.ceil(entries / LEGEND_COLUMNS) - 1)
    height = bottom + 0.6 + 0.2 * max(1, len(title_lines)) + ROW_INCHES * max(rows, 1)
    if ax is None:
        if figure is None:
            import matplotlib.pyplot as plt

            figure = plt.figure()
        # Room on the left for the conversations' names, on the right for their notes (monospace).
        left = 0.25 + CHARACTER_INCHES * max(map(len, labels), default=10)
        right = 0.3 + CHARACTER_INCHES * max(map(len, notes), default=10)
        width = max(WIDTH_INCHES, left + right + 5.0)
        figure.set_size_inches(width, height)
        top = 0.3 + 0.2 * max(1, len(title_lines))
        ax = figure.add_axes((left / width, bottom / height, 1 - (left + right) / width, 1 - (bottom + top) / height))
    starts = [(c.first_time_ns - origin_ns) / 1e9 for c in conversations]
    ends = [(max(c.last_time_ns, c.first_time_ns) - origin_ns) / 1e9 for c in conversations]
    other = [(time - origin_ns) / 1e9 for time in other_times]
    last = max(ends + other + [0.0])
    span = last or 1.0
    minimum = span / 250  # a one-frame conversation is still a visible bar
    outcomes: list[str] = []
    for row, (conversation, start, end) in enumerate(zip(conversations, starts, ends)):
        outcome = outcome_of(conversation)
        if outcome not in outcomes:
            outcomes.append(outcome)
        ax.barh(
            row,
            max(end - start, minimum),
            left=start,
            height=0.62,
            color=OUTCOME_COLOURS.get(outcome, "#7F7F7F"),
            edgecolor="#444444",
            linewidth=0.6,
            gid=f"conversation-{conversation.protocol}-{conversation.stream}",
        )
    if other_times:
        ax.plot(other, [len(conversations)] * len(other), linestyle="none", marker="|", markersize=9, color="#444444")
    ax.set_yticks(range(rows), labels, fontsize=8, family="DejaVu Sans Mono")
    # Aligned left (monospace): the streams, addresses and ports of all rows stand in columns.
    ax.tick_params(axis="y", pad=CHARACTER_INCHES * 72 * max(map(len, labels), default=0) + 2)
    for label in ax.get_yticklabels():
        label.set_horizontalalignment("left")
    ax.set_ylim(rows - 0.4, -0.6)
    ax.set_xlim(-span * 0.01, span * 1.01)
    formatter = ScalarFormatter(useOffset=False)
    formatter.set_scientific(False)
    ax.xaxis.set_major_formatter(formatter)
    ax.set_xlabel("seconds since the first frame of the capture", fontsize=9)
    ax.grid(axis="x", color="#DDDDDD", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    # Beside each row: its frames, its outcome and where its ladder is.
    transform = ax.get_yaxis_transform()
    for row, note in enumerate(notes):
        ax.text(1.02, row, note, transform=transform, va="center", ha="left", fontsize=8, family="DejaVu Sans Mono")
    handles: list[Patch | Line2D] = [
        Patch(facecolor=OUTCOME_COLOURS.get(name, "#7F7F7F"), edgecolor="#444444", label=OUTCOME_NAMES.get(name, name))
        for name in OUTCOME_COLOURS
        if name in outcomes
    ]
    if other_times:
        handles.append(
            Line2D(
                [0], [0], linestyle="none", marker="|", markersize=9, color="#444444", label="frame of no conversation"
            )
        )
    legend = {"handles": handles, "ncol": min(len(handles), LEGEND_COLUMNS), "fontsize": 8, "frameon": False}
    if made:
        # Below the axis label, across the figure; the title above, from the figure's left edge.
        ax.figure.legend(loc="lower center", bbox_to_anchor=(0.5, 0.0), **legend)
        if title:
            ax.figure.text(0.01, 1 - 0.12 / height, title, ha="left", va="top", fontsize=11, fontweight="bold")
    else:
        ax.legend(loc="best", **legend)
        if title:
            ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    return ax
