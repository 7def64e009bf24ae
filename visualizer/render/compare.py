"""The "run vs run" figure: the same experiment under two or more settings, on one time axis.

Each run is a :class:`visualizer.analysis.throughput.RunThroughput` (made by
:func:`visualizer.analysis.throughput.compare_runs` from a label and the frames of one TCP
stream), drawn from its own first frame at time zero, in its own colour, in up to three panels
that share the time axis:

1. the bytes acknowledged over time (the goodput's running total; dotted: the bytes the
   receiving program had read, when it counted them), the legend naming each run with its
   measured steady rate;
2. the throughput in windows of one length for every run (a dotted line: a rate limit, when a run
   had one);
3. when a run has them, the sender's congestion window from its kernel (``tcp_probe``, in bytes)
   and the receiver's advertised window (dashed), on a logarithmic scale when they span more than
   :data:`LOG_SPAN` times: these bound the bytes
   in flight, and the smaller of them is the one that holds the sender back.

Works for any runs: chapter 7's rate limits and receive buffers, chapter 2's Nagle on and off
(the two streams of the ``nagle`` scenario). Draws what the analysis measured; derives nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from visualizer.analysis.throughput import RunThroughput
from visualizer.errors import UsageError
from visualizer.render.ladder import BLACK, BLUE, GREEN, ORANGE, PURPLE, SKY, VERMILLION

if TYPE_CHECKING:
    from pathlib import Path

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

RUN_COLOURS = (BLUE, VERMILLION, GREEN, ORANGE, PURPLE, SKY, BLACK)
"""Okabe-Ito colours, one per run, in order (a run past the seventh takes the first again)."""
LOG_SPAN = 20
"""Windows spanning this factor or more are drawn on a logarithmic scale (a 4 kB window beside a
4 MB one); narrower ones on a linear scale from 0."""
WIDTH = 11.0
PANEL_HEIGHT = 2.6
"""Inches per panel; the title and the legend above them take one more."""

_BYTE_PREFIXES = ((1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1.0, "bytes"))
_RATE_PREFIXES = ((1e9, "Gbit/s"), (1e6, "Mbit/s"), (1e3, "kbit/s"), (1.0, "bit/s"))


def _scale(largest: float, prefixes: tuple[tuple[float, str], ...]) -> tuple[float, str]:
    """The largest prefix that the values reach (so an axis reads 1.5 MB, not 1500000)."""
    return next(((size, name) for size, name in prefixes if largest >= size), prefixes[-1])


def run_label(run: RunThroughput) -> str:
    """A run's legend entry: its label and its measured rate (steady part, acknowledged bytes)."""
    return f"{run.label}: {_rate_text(run.steady.bits_per_second)}"


def _rate_text(bits_per_second: float) -> str:
    size, unit = _scale(bits_per_second, _RATE_PREFIXES)
    return f"{bits_per_second / size:.3g} {unit}"


def draw_run_comparison(
    runs: Sequence[RunThroughput], *, figure: Figure | None = None, title: str = "", limits: Sequence[float | None] = ()
) -> list[Axes]:
    """Draw the runs into ``figure`` (a new one when None); returns the panels' Axes, top first.

    ``limits`` are the runs' rate limits in bits per second (None: none), drawn dotted in the
    throughput panel. The panels share one time axis: seconds since each run's first frame.
    """
    if not runs:
        raise UsageError("no run to draw")
    windows = any(run.congestion_window or run.receive_window for run in runs)
    count = 3 if windows else 2
    if figure is None:
        from matplotlib.figure import Figure

        figure = Figure(figsize=(WIDTH, figure_height(runs)), layout="constrained")
    axes = list(figure.subplots(count, 1, sharex=True, squeeze=False)[:, 0])
    progress_axes, rate_axes = axes[0], axes[1]
    colours = [RUN_COLOURS[index % len(RUN_COLOURS)] for index in range(len(runs))]

    byte_size, byte_unit = _scale(max(run.acknowledged.total for run in runs), _BYTE_PREFIXES)
    for run, colour in zip(runs, colours, strict=True):
        times, totals = _steps(run.acknowledged.points, run.origin_ns)
        progress_axes.plot(
            times, [total / byte_size for total in totals], drawstyle="steps-post", color=colour, label=run_label(run)
        )
        if run.application is not None:
            times, totals = _steps(run.application.points, run.origin_ns)
            progress_axes.plot(
                times,
                [total / byte_size for total in totals],
                drawstyle="steps-post",
                color=colour,
                linestyle=":",
                linewidth=2.2,
                gid="application",
            )
    progress_axes.set_ylabel(f"acknowledged ({byte_unit})")
    progress_axes.set_ylim(bottom=0)

    fastest = max(max((rate.bits_per_second for rate in run.over_time), default=0.0) for run in runs)
    known_limits = [limit for limit in limits if limit is not None]
    rate_size, rate_unit = _scale(max([fastest, *known_limits]), _RATE_PREFIXES)
    for index, (run, colour) in enumerate(zip(runs, colours, strict=True)):
        times = [(rate.start_ns - run.origin_ns) / 1e9 for rate in run.over_time]
        values = [rate.bits_per_second / rate_size for rate in run.over_time]
        if run.over_time:  # the last window's value held to its end
            times.append((run.over_time[-1].end_ns - run.origin_ns) / 1e9)
            values.append(values[-1])
        rate_axes.plot(times, values, drawstyle="steps-post", color=colour)
        limit = limits[index] if index < len(limits) else None
        if limit is not None:
            rate_axes.axhline(limit / rate_size, color=colour, linestyle=":", linewidth=1.2, gid="limit")
    window_ms = _window_seconds(runs) * 1000
    rate_axes.set_ylabel(f"throughput ({rate_unit})\nper {window_ms:g} ms")
    rate_axes.set_ylim(bottom=0)

    if windows:
        window_axes = axes[2]
        for run, colour in zip(runs, colours, strict=True):
            if run.congestion_window:
                times, sizes = _steps(run.congestion_window_bytes, run.origin_ns)
                window_axes.plot(times, sizes, drawstyle="steps-post", color=colour, linewidth=1.8, gid="congestion")
            if run.receive_window:
                times, sizes = _steps(run.receive_window, run.origin_ns)
                window_axes.plot(
                    times, sizes, drawstyle="steps-post", color=colour, linestyle="--", linewidth=1.1, gid="receive"
                )
        sizes = [size for run in runs for _, size in (*run.congestion_window_bytes, *run.receive_window) if size > 0]
        if sizes and max(sizes) >= LOG_SPAN * min(sizes):
            window_axes.set_yscale("log")
            # within two decades a tick per decade leaves one label or none: label 1, 2 and 5 of each
            few_decades = max(sizes) < 100 * min(sizes)
            window_axes.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if few_decades else (1.0,)))
            window_axes.yaxis.set_minor_formatter(NullFormatter())
        else:
            window_axes.set_ylim(bottom=0)
        window_axes.yaxis.set_major_formatter(FuncFormatter(_bytes_tick))
        window_axes.set_ylabel("window (bytes)")

    for ax in axes:
        ax.grid(True, color="#DDDDDD", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.spines[["top", "right"]].set_visible(False)
    axes[-1].set_xlabel("time since the run's first frame (s)")
    axes[-1].set_xlim(left=0)
    progress_axes.legend(
        handles=_legend_handles(runs, colours, windows),
        loc="lower left",
        bbox_to_anchor=(0, 1.02),
        ncols=2,
        frameon=False,
        fontsize="small",
    )
    if title:
        figure.suptitle(title, x=0.01, ha="left", fontsize="medium")
    return axes


def _legend_handles(runs: Sequence[RunThroughput], colours: list[str], windows: bool) -> list[Line2D]:
    """One entry per run (its colour, setting and rate), then what each line style means."""
    handles = [Line2D([], [], color=colour, linewidth=2.5, label=run_label(run)) for run, colour in zip(runs, colours)]
    styles: list[tuple[Literal["-", ":", "--"], str]] = [("-", "solid: acknowledged (from the capture)")]
    if any(run.application is not None for run in runs):
        styles.append((":", "dotted: read by the receiving program"))
    if windows:
        congestion = "; solid: congestion window (kernel)" if any(run.congestion_window for run in runs) else ""
        styles.append(("--", f"window panel, dashed: receive window{congestion}"))
    handles += [Line2D([], [], color="#555555", linestyle=style, label=text) for style, text in styles]
    return handles


def figure_height(runs: Sequence[RunThroughput]) -> float:
    panels = 3 if any(run.congestion_window or run.receive_window for run in runs) else 2
    legend_rows = (len(runs) + 3 + 1) // 2
    return PANEL_HEIGHT * panels + 0.6 + 0.22 * legend_rows


def save_run_comparison(
    runs: Sequence[RunThroughput], path: Path, *, title: str = "", limits: Sequence[float | None] = ()
) -> Path:
    """Draw the runs and save the figure atomically (.png, .svg or .pdf); returns the path."""
    from visualizer.render.export import save_figure

    def draw(*, figure: Figure) -> Axes:
        figure.set_size_inches(WIDTH, figure_height(runs))
        figure.set_layout_engine("constrained")
        return draw_run_comparison(runs, figure=figure, title=title, limits=limits)[0]

    return save_figure(draw, path)


def _steps(points: Sequence[tuple[int, int]], origin_ns: int) -> tuple[list[float], list[int]]:
    return [(time_ns - origin_ns) / 1e9 for time_ns, _ in points], [value for _, value in points]


def _window_seconds(runs: Sequence[RunThroughput]) -> float:
    first = next((run.over_time[0] for run in runs if run.over_time), None)
    return first.seconds if first is not None else 0.0


def _bytes_tick(value: float, _position: object) -> str:
    size, unit = _scale(value, _BYTE_PREFIXES)
    return f"{value / size:g} {unit}" if unit != "bytes" else f"{value:g}"
