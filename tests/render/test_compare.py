"""The run-vs-run figure, tested on its artists: one line per run, legend = settings, one time axis."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from visualizer.analysis.throughput import Progress, RunThroughput, compare_runs
from visualizer.errors import UsageError
from visualizer.pipeline import select_streams
from visualizer.render.compare import RUN_COLOURS, draw_run_comparison, save_run_comparison

DATA = Path(__file__).parent.parent / "data"
NAGLE = DATA / "scenarios" / "captures" / "nagle.pcap"
RATE_LIMITED = DATA / "throughput" / "throughput-rate-1mbit.pcap"


def _runs() -> list[RunThroughput]:
    _, frames = select_streams(NAGLE, "tcp", ())
    _, limited = select_streams(RATE_LIMITED, "tcp", ())
    nagle = [frame for frame in frames if frame.stream == 0]
    read = Progress(((limited[0].record.timestamp_ns or 0, 0), (limited[-1].record.timestamp_ns or 0, 125_000)))
    return compare_runs([("Nagle on", nagle), ("rate 1 Mbit/s", limited)], applications=[None, read])


def test_one_line_per_run_in_each_panel_on_one_time_axis() -> None:
    runs = _runs()
    figure = Figure()
    axes = draw_run_comparison(runs, figure=figure, limits=[None, 1_000_000])
    assert len(axes) == 3  # the frames give the receive window: the window panel is drawn
    progress, rates, windows = axes
    solid = [line for line in progress.get_lines() if line.get_linestyle() == "-"]
    assert [to_hex(line.get_color()).upper() for line in solid] == [RUN_COLOURS[0], RUN_COLOURS[1]]
    # each run from its own first frame: time 0 to its last acknowledgement, in seconds
    for line, run in zip(solid, runs):
        assert line.get_xdata()[0] == pytest.approx((run.acknowledged.points[0][0] - run.origin_ns) / 1e9)
        assert line.get_xdata()[-1] == pytest.approx((run.acknowledged.points[-1][0] - run.origin_ns) / 1e9)
        assert line.get_ydata()[-1] * 1000 == pytest.approx(run.acknowledged.total)  # kB
    assert progress.get_ylabel() == "acknowledged (kB)"
    # the application's count only where a run has one
    assert [to_hex(line.get_color()).upper() for line in progress.get_lines() if line.get_gid() == "application"] == [
        RUN_COLOURS[1]
    ]
    assert len([line for line in rates.get_lines() if line.get_gid() != "limit"]) == 2
    limits = [line for line in rates.get_lines() if line.get_gid() == "limit"]
    assert len(limits) == 1 and limits[0].get_ydata()[0] == pytest.approx(1.0)  # Mbit/s
    assert rates.get_ylabel().startswith("throughput (Mbit/s)")
    assert len([line for line in windows.get_lines() if line.get_gid() == "receive"]) == 2
    assert windows.get_yscale() == "linear" and windows.get_ylim()[0] == 0  # 64 kB to 173 kB: little span
    assert all(ax.get_shared_x_axes().joined(axes[0], ax) for ax in axes)
    assert axes[0].get_xlim() == axes[2].get_xlim() and axes[2].get_xlim()[0] == 0


def test_the_legend_names_each_setting_with_its_measured_rate() -> None:
    runs = _runs()
    axes = draw_run_comparison(runs, figure=Figure())
    texts = [text.get_text() for text in axes[0].get_legend().get_texts()]
    assert texts[0].startswith("Nagle on: ") and texts[1] == "rate 1 Mbit/s: 929 kbit/s"
    assert texts[2:] == [
        "solid: acknowledged (from the capture)",
        "dotted: read by the receiving program",
        "window panel, dashed: receive window",  # no kernel events beside these captures: no cwnd
    ]


def test_saved_figure_is_sized_for_its_panels(tmp_path: Path) -> None:
    from tests.render.images import png_size

    path = save_run_comparison(_runs(), tmp_path / "runs.png", title="two runs")
    width, height = png_size(path.read_bytes())
    assert (width, height) == (1210, int(110 * (2.6 * 3 + 0.6 + 0.22 * 3)))  # Agg truncates
    with pytest.raises(UsageError):
        draw_run_comparison([], figure=Figure())


def test_windows_that_span_orders_of_magnitude_are_drawn_on_a_log_scale() -> None:
    first, second = _runs()
    small = replace(first, receive_window=((first.origin_ns, 2896),))  # SO_RCVBUF 4096's window
    windows = draw_run_comparison([small, second], figure=Figure())[2]
    assert windows.get_yscale() == "log"
    assert windows.get_ylim()[0] < 2896 < 173_056 < windows.get_ylim()[1]
