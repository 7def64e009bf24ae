"""Calls against segments: a program's send() calls and the data segments that carried their bytes.

One panel per run (Nagle's algorithm, ``TCP_NODELAY``...), on one time axis (milliseconds since
the run's first send()): each send() call is a tick under the axis' zero, each data segment a stem
as tall as its payload, and a light line joins each call to the segment that carried its bytes, so
a write that waited (Nagle holds a small segment while data is unacknowledged, RFC 896) reads as a
slanted line and a segment that carried several writes as a fan. The peer's ACKs of new data are
small marks along the top. The panel's title says the counts.

Draws what :func:`visualizer.chapters.segments.writes_and_segments` measured; derives nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from matplotlib.lines import Line2D

from visualizer.errors import UsageError
from visualizer.render.compare import RUN_COLOURS
from visualizer.render.ladder import BLACK

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from visualizer.chapters.segments import WritesAndSegments

WIDTH = 10.0
PANEL_HEIGHT = 2.2
CALL_COLOUR = "#555555"
LINK_COLOUR = "#9A9A9A"
ACK_COLOUR = "#777777"
CALL_DEPTH = 0.22
"""How far below zero a call's tick reaches, as a share of the panel's tallest segment."""
LABEL_LEFT_PAST = 0.7
"""A segment's words stand left of it past this share of the time axis (they would leave the figure)."""


def _ms(time_ns: int, origin_ns: int) -> float:
    return (time_ns - origin_ns) / 1e6


def panel_title(run: WritesAndSegments, label: str) -> str:
    writes = f"{run.writes} send() call{'s' if run.writes != 1 else ''} of {run.written:,} bytes"
    segments = f"{len(run.segments)} data segment{'s' if len(run.segments) != 1 else ''}"
    most = f", up to {run.largest} writes in one" if run.largest > 1 else ", one write each"
    return f"{label}: {writes} \u2192 {segments}{most}"


def draw_writes_and_segments(
    runs: Sequence[WritesAndSegments],
    labels: Sequence[str],
    *,
    figure: Figure | None = None,
    title: str = "",
) -> list[Axes]:
    """Draw each run's calls and segments into ``figure`` (a new one when None); the panels' Axes, top first."""
    if not runs or len(labels) != len(runs):
        raise UsageError("draw_writes_and_segments needs one label per run, and a run at least")
    if figure is None:
        import matplotlib.pyplot as plt

        figure = plt.figure()
    figure.set_size_inches(WIDTH, PANEL_HEIGHT * len(runs) + (0.5 if title else 0.2))
    axes: list[Axes] = list(figure.subplots(len(runs), 1, sharex=True, squeeze=False)[:, 0])
    tallest = max(segment.length for run in runs for segment in run.segments)
    depth = tallest * CALL_DEPTH
    latest = max(_ms(segment.time_ns, run.calls[0].time_ns) for run in runs for segment in run.segments)
    for index, (ax, run, label) in enumerate(zip(axes, runs, labels, strict=True)):
        colour = RUN_COLOURS[index % len(RUN_COLOURS)]
        origin = run.calls[0].time_ns
        when = {segment.frame: _ms(segment.time_ns, origin) for segment in run.segments}
        for call in run.calls:
            x = _ms(call.time_ns, origin)
            ax.plot([x, x], [-depth, -depth * 0.35], color=CALL_COLOUR, linewidth=1.0, gid="call")
            for frame in call.frames:
                ax.plot([x, when[frame]], [-depth * 0.35, 0], color=LINK_COLOUR, linewidth=0.6, zorder=1, gid="link")
        for segment, count in zip(run.segments, run.writes_per_segment, strict=True):
            x = when[segment.frame]
            ax.plot(
                [x, x],
                [0, segment.length],
                color=colour,
                linewidth=2.2,
                solid_capstyle="butt",
                marker="o",
                markersize=3.5,
                markevery=[1],
                gid="segment",
            )
            if count > 1:
                fin = ", with the FIN" if segment.fin else ""
                ax.annotate(
                    f"frame {segment.frame}: {count} writes, {segment.length} bytes{fin}",
                    (x, segment.length),
                    xytext=(-4, -2) if x > latest * LABEL_LEFT_PAST else (4, -2),
                    textcoords="offset points",
                    va="top",
                    ha="right" if x > latest * LABEL_LEFT_PAST else "left",
                    fontsize=8,
                    color=BLACK,
                    gid="writes",
                )
        for time_ns in run.acks:
            ax.plot([_ms(time_ns, origin)], [tallest * 1.15], marker="v", markersize=4, color=ACK_COLOUR, gid="ack")
        ax.axhline(0, color=BLACK, linewidth=0.6)
        ax.set_ylim(-depth * 1.15, tallest * 1.25)
        ax.set_yticks([tick for tick in ax.get_yticks() if 0 <= tick <= tallest])
        ax.set_ylabel("bytes in\nthe segment", fontsize=8)
        ax.set_title(panel_title(run, label), fontsize=9, loc="left")
        ax.grid(axis="x", color="#E5E5E5", linewidth=0.6)
        ax.set_axisbelow(True)
    axes[-1].set_xlabel("milliseconds since the run's first send()")
    legend = [
        Line2D([], [], color=CALL_COLOUR, linewidth=1.0, label="send() call (below zero)"),
        Line2D(
            [],
            [],
            color=BLACK,
            linewidth=2.2,
            marker="o",
            markersize=3.5,
            markevery=[1],
            label="data segment (as tall as its payload)",
        ),
        Line2D([], [], color=LINK_COLOUR, linewidth=0.6, label="a call's bytes \u2192 the segment that carried them"),
        Line2D([], [], color=ACK_COLOUR, marker="v", linestyle="", markersize=4, label="the peer's ACK of new data"),
    ]
    axes[0].legend(handles=legend, loc="lower left", bbox_to_anchor=(0, 1.18), ncol=2, fontsize=8, frameon=False)
    if title:
        figure.suptitle(title, x=0.01, ha="left", fontsize=10, fontweight="bold")
    figure.tight_layout()
    return axes
