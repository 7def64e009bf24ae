"""The Stevens/tcptrace time-sequence graph of one direction of a TCP stream.

x is time since the first frame, y the relative sequence number. Each data
segment is a vertical bar from its first to its last byte (retransmissions in
vermillion); the ACKs coming back draw a step line (what the receiver has), the
advertised window a second one above it (how far the sender may go); SACK
blocks show as short bars between the two, zero windows as crosses. Read the
slope of the segments as throughput and the gap to the window line as headroom.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from visualizer.analysis.report import FrameAnalysis, Report, analysis_names
from visualizer.analysis.sequence import SEQUENCE_MASK
from visualizer.model import ACK, parse_tcp_options
from visualizer.render.ladder import BLUE, GREEN, GREY, ORANGE, PURPLE, VERMILLION

NAN = float("nan")  # breaks a plotted line between segments


def draw_time_sequence(
    data: Report | Sequence[FrameAnalysis],
    *,
    stream: int = 0,
    from_initiator: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """Draw the time-sequence graph of one direction of TCP ``stream``; returns the Axes."""
    frames = data.frame_analyses if isinstance(data, Report) else data
    chosen = [frame for frame in frames if frame.protocol == "tcp" and frame.stream == stream]
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(10, 5.5))
    origin = next((frame.record.timestamp_ns for frame in frames if frame.record.timestamp_ns is not None), 0) or 0
    sent = [frame for frame in chosen if frame.from_initiator == from_initiator]
    back = [frame for frame in chosen if frame.from_initiator != from_initiator]
    base = next(((frame.record.seq - frame.seq) & SEQUENCE_MASK for frame in sent), 0)

    def seconds(frame: FrameAnalysis) -> float:
        return ((frame.record.timestamp_ns or origin) - origin) / 1e9

    for retransmitted, colour, width in ((False, BLUE, 1.6), (True, VERMILLION, 2.4)):
        xs: list[float] = []
        ys: list[float] = []
        for frame in sent:
            length = frame.record.payload_length
            if not length or ("retransmission" in analysis_names(frame.analysis)) != retransmitted:
                continue
            time = seconds(frame)
            xs += [time, time, NAN]
            ys += [frame.seq, frame.seq + length, NAN]
        if xs:
            ax.plot(xs, ys, color=colour, linewidth=width, solid_capstyle="butt", zorder=3)
    acked = [(seconds(frame), frame.ack) for frame in back if frame.record.tcp_flags & ACK]
    if acked:
        ax.step(
            [time for time, _ in acked], [ack for _, ack in acked], where="post", color=GREEN, linewidth=1.3, zorder=2
        )
        windows = [(seconds(frame), frame.ack + max(frame.window, 0)) for frame in back if frame.record.tcp_flags & ACK]
        ax.step(
            [time for time, _ in windows],
            [edge for _, edge in windows],
            where="post",
            color=ORANGE,
            linewidth=1.1,
            zorder=2,
        )
    sack_x: list[float] = []
    sack_y: list[float] = []
    zero_x, zero_y = [], []
    for frame in back:
        if frame.record.tcp_options and frame.record.payload_length == 0:
            for left, right in parse_tcp_options(frame.record.tcp_options).sack_blocks:
                time = seconds(frame)
                sack_x += [time, time, NAN]
                sack_y += [(left - base) & SEQUENCE_MASK, (right - base) & SEQUENCE_MASK, NAN]
        if frame.window == 0 and frame.record.tcp_flags & ACK:
            zero_x.append(seconds(frame))
            zero_y.append(frame.ack)
    if sack_x:
        ax.plot(sack_x, sack_y, color=PURPLE, linewidth=3, alpha=0.7, zorder=4)
    if zero_x:
        ax.plot(zero_x, zero_y, linestyle="none", marker="x", markersize=8, color=VERMILLION, zorder=5)
    _focus_on_the_transfer(
        ax, [seconds(frame) for frame in sent if frame.record.payload_length], [seconds(frame) for frame in chosen]
    )
    ax.set_xlabel("time since the first frame (s)")
    ax.set_ylabel("relative sequence number (bytes)")
    direction = "initiator → responder" if from_initiator else "responder → initiator"
    ax.set_title(f"TCP stream {stream}, {direction}", loc="left", fontsize=11)
    ax.grid(True, color="#DDDDDD", linewidth=0.6)
    present = {
        "data": any(frame.record.payload_length for frame in sent),
        "retransmission": any("retransmission" in analysis_names(frame.analysis) for frame in sent),
        "ack": bool(acked),
        "sack": bool(sack_x),
        "zero": bool(zero_x),
    }
    handles = [
        handle
        for key, handle in (
            ("data", Line2D([0], [0], color=BLUE, linewidth=1.6, label="data segment (first to last byte)")),
            ("retransmission", Line2D([0], [0], color=VERMILLION, linewidth=2.4, label="retransmission")),
            ("ack", Line2D([0], [0], color=GREEN, linewidth=1.3, label="ACK from the receiver")),
            ("ack", Line2D([0], [0], color=ORANGE, linewidth=1.1, label="ACK + advertised window")),
            ("sack", Line2D([0], [0], color=PURPLE, linewidth=3, alpha=0.7, label="SACK block")),
            ("zero", Line2D([0], [0], color=VERMILLION, marker="x", linestyle="none", label="zero window")),
        )
        if present[key]
    ]
    if handles:
        ax.legend(handles=handles, loc="upper left", fontsize=8, framealpha=0.9)
    if not sent:
        ax.text(0.5, 0.5, "no segments in this direction", transform=ax.transAxes, ha="center", color=GREY)
    return ax


def _focus_on_the_transfer(ax: Axes, data_times: list[float], all_times: list[float]) -> None:
    """Keep the x axis on the data when a long idle tail (keep-alives, a late RST) would squash it."""
    if not data_times or not all_times:
        return
    first, last = min(data_times), max(data_times)
    span = max(last - first, 1e-3)
    end = max(all_times)
    if end - last > 5 * span:
        ax.set_xlim(min(all_times) - 0.02 * span, last + 0.15 * span)
        later = sum(1 for time in all_times if time > last + 0.15 * span)
        ax.annotate(
            f"{later} later frame{'s' if later != 1 else ''}, up to {end:.1f} s →",
            xy=(1.0, 0.02),
            xycoords="axes fraction",
            ha="right",
            va="bottom",
            fontsize=8,
            color=GREY,
        )
