"""The ladder with the kernel's side of its capture: state bands from the kernel, the notes where it
differs from the RFC table, the source in the legend, and the Send-Q/Recv-Q strips (artists, not pixels)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from tests.render.test_ladder import overlapping, text_boxes
from visualizer.analysis.kernel import EndpointKernel, KernelStory
from visualizer.analysis.report import FrameAnalysis
from visualizer.pipeline import analyse_file, kernel_story
from visualizer.render.ladder import (
    INFERRED_SOURCE,
    KERNEL_SOURCE,
    SLANT,
    STATE_COLOURS,
    draw_ladder,
    queue_scale,
    row_positions,
    time_points,
    time_y,
)
from visualizer.render.layout import Arrow, LadderLayout, build_ladder

KERNEL = Path(__file__).parent.parent / "data" / "kernel"


def recorded(name: str) -> tuple[list[FrameAnalysis], KernelStory]:
    report = analyse_file(KERNEL / f"{name}.pcap", keep_frames=True)
    story = kernel_story(KERNEL / f"{name}.pcap", report.frame_analyses)
    assert story is not None
    return list(report.frame_analyses), story


def layout_of(name: str, *, kernel: bool = True) -> LadderLayout:
    frames, story = recorded(name)
    return build_ladder(frames, origin_ns=frames[0].record.timestamp_ns, kernel=story if kernel else None)


def drawn(layout: LadderLayout) -> tuple[Figure, Axes]:
    figure = Figure()
    ax = draw_ladder(layout, figure=figure)
    return figure, ax


def participant_of(layout: LadderLayout, endpoint: EndpointKernel) -> int:
    return next(
        index
        for index, participant in enumerate(layout.participants)
        if (participant.address, participant.port) == (endpoint.address, endpoint.port)
    )


def bands(ax: Axes, index: int) -> list[Rectangle]:
    """The state bands along participant ``index``'s lifeline, top to bottom."""
    found = [
        patch
        for patch in ax.patches
        if isinstance(patch, Rectangle) and (patch.get_gid() or "").startswith(f"state-{index}-")
    ]
    return sorted(found, key=lambda patch: patch.get_y())


def legend_texts(ax: Axes) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None
    return [text.get_text() for text in legend.get_texts()]


def strips(figure: Figure) -> list[Axes]:
    """The queue strips: Axes of their own, children of the ladder's."""
    (ax,) = figure.axes
    return list(ax.child_axes)


def strip_line(figure: Figure, index: int, queue: str) -> Line2D:
    (line,) = [
        line for axes in strips(figure) for line in axes.lines if line.get_gid() == f"queue-line-{index}-{queue}"
    ]
    return line


def value_at(line: Line2D, y: float) -> float:
    """The queue a step line shows at ``y`` (strictly inside one of its vertical runs)."""
    values, ys = list(line.get_xdata()), list(line.get_ydata())
    for (x0, y0), (x1, y1) in zip(zip(values, ys), zip(values[1:], ys[1:])):
        if x0 == x1 and y0 < y < y1:
            return float(x0)
    raise AssertionError(f"no vertical run of the strip covers y={y}")


def test_the_state_bands_are_the_kernels_states_at_their_times() -> None:
    layout = layout_of("story")
    _, ax = drawn(layout)
    positions = row_positions(layout)
    assert layout.kernel is not None
    for endpoint in layout.kernel.endpoints:
        index = participant_of(layout, endpoint)
        points = time_points(layout, positions, index)
        drawn_bands = bands(ax, index)
        # From the first row the state the kernel had it in then (the server: LISTEN, its listener's;
        # the client: SYN-SENT, entered by connect() before the SYN was captured), then each change
        # at its time: the client passes FIN-WAIT-2 as the kernel did.
        earlier = [change for change in endpoint.states if change.time_ns < points[0][0]]
        later = endpoint.states[len(earlier) :]
        expected = [earlier[-1].new if earlier else endpoint.states[0].old, *(change.new for change in later)]
        assert [band.get_gid() for band in drawn_bands] == [f"state-{index}-{state}" for state in expected]
        assert [band.get_facecolor()[:3] for band in drawn_bands] == [
            pytest.approx(tuple(int(STATE_COLOURS[state][i : i + 2], 16) / 255 for i in (1, 3, 5)))
            for state in expected
        ]
        for band, change in zip(drawn_bands[1:], later, strict=True):
            y = time_y(points, change.time_ns, beyond=(positions[-1] + 1.0, layout.pause_unit_ns or 1_000_000))
            assert band.get_y() == pytest.approx(y)
        assert drawn_bands[0].get_y() == positions[0]
        assert drawn_bands[-1].get_y() + drawn_bands[-1].get_height() == pytest.approx(positions[-1] + 1.0)
    server = participant_of(layout, next(endpoint for endpoint in layout.kernel.endpoints if endpoint.port == 8080))
    assert bands(ax, server)[0].get_gid() == f"state-{server}-LISTEN"


def test_a_kernel_state_change_sits_between_the_rows_around_it_on_its_lifeline() -> None:
    """The client's close() (FIN-WAIT-1) comes just before its FIN's row; the server's CLOSE-WAIT just
    after the FIN's arrow reaches it (the arrow's tip, SLANT below its row)."""
    layout = layout_of("story")
    _, ax = drawn(layout)
    positions = row_positions(layout)
    rows = {row.frame: (row, y) for row, y in zip(layout.rows, positions) if isinstance(row, Arrow)}
    fin, fin_y = rows[8]
    (fin_wait_1,) = [band for band in bands(ax, fin.source) if band.get_gid().endswith("FIN-WAIT-1")]
    (close_wait,) = [band for band in bands(ax, fin.target) if band.get_gid().endswith("CLOSE-WAIT")]
    assert rows[7][1] < fin_wait_1.get_y() <= fin_y
    assert fin_y + SLANT <= close_wait.get_y() < rows[9][1]


def test_the_legend_says_where_the_states_come_from() -> None:
    _, ax = drawn(layout_of("story"))
    assert KERNEL_SOURCE in legend_texts(ax)
    assert not any(INFERRED_SOURCE in text for text in legend_texts(ax))
    # A crafted client has no socket: its states are inferred, the server's are the kernel's.
    layout = layout_of("craft-bad-checksum")
    _, ax = drawn(layout)
    texts = legend_texts(ax)
    assert f"{KERNEL_SOURCE}: server 127.0.0.1:8080" in texts
    assert any(text.startswith(f"{INFERRED_SOURCE}: client") for text in texts)
    # Without the kernel's side the ladder is drawn as before: no source, no strips.
    _, ax = drawn(layout_of("story", kernel=False))
    assert not any(text.startswith("states:") for text in legend_texts(ax))


def test_the_story_shows_where_the_kernel_passes_fin_wait_2_within_one_segment() -> None:
    layout = layout_of("story")
    _, ax = drawn(layout)
    assert layout.kernel is not None
    (difference,) = layout.kernel.state_differences
    client = participant_of(layout, next(e for e in layout.kernel.endpoints if e.name == difference.endpoint))
    (fin_wait_2,) = [band for band in bands(ax, client) if band.get_gid().endswith("FIN-WAIT-2")]
    notes = [text for text in ax.texts if text.get_gid() == "state-note" and "#9" in text.get_text()]
    (note,) = notes
    assert note.get_text().replace("\n", " ") == "kernel: within #9; RFC table: one step"
    x, y = note.get_position()
    assert x == pytest.approx(fin_wait_2.get_x() + 0.06 - 0.14)  # beside the client's lifeline, left of it
    assert fin_wait_2.get_y() <= y <= fin_wait_2.get_y() + 1.0
    assert fin_wait_2.get_height() > 0
    assert overlapping(text_boxes(ax)) == []


def test_the_strips_step_through_the_analysis_queue_samples() -> None:
    layout = layout_of("story")
    figure, ax = drawn(layout)
    assert [strip.get_gid() for strip in strips(figure)] == [
        "queue-0-send",
        "queue-0-recv",
        "queue-1-send",
        "queue-1-recv",
    ]
    positions = row_positions(layout)
    assert layout.kernel is not None
    for endpoint in layout.kernel.endpoints:
        index = participant_of(layout, endpoint)
        points = time_points(layout, positions, index)
        for queue in ("send", "recv"):
            samples = [(s.time_ns, s.send_q if queue == "send" else s.recv_q) for s in endpoint.queues]
            line = strip_line(figure, index, queue)
            # Each sample's value holds from its time's y until the next sample's.
            expected: list[tuple[float, float]] = []
            for time, value in samples:
                y = time_y(points, time, beyond=(positions[-1] + 1.0, layout.pause_unit_ns or 1_000_000))
                assert y is not None
                if expected and expected[-1][0] == y:
                    expected[-1] = (y, value)
                else:
                    expected.append((y, value))
            values, ys = list(line.get_xdata()), list(line.get_ydata())
            assert values[0] == 0 and ys[0] == positions[0]  # empty before the first change: zero
            assert ys[-1] == positions[-1] + 1.0
            steps = [(y, value) for (y, value) in zip(ys[1::2], values[2::2])]
            assert steps == expected
            strip = line.axes
            assert strip is not None and strip.get_xlim() == (0, queue_scale(max(value for _, value in samples)))
            assert strip.get_ylim() == ax.get_ylim()  # the ladder's rows
    assert figure.get_size_inches()[0] > drawn(layout_of("story", kernel=False))[0].get_size_inches()[0] + 3


def test_zero_window_the_receivers_recv_q_fills_while_zero_windows_are_on_the_wire_and_drains() -> None:
    layout = layout_of("zero-window")
    figure, _ = drawn(layout)
    positions = row_positions(layout)
    assert layout.kernel is not None
    server = next(endpoint for endpoint in layout.kernel.endpoints if endpoint.port == 8088)
    index = participant_of(layout, server)
    line = strip_line(figure, index, "recv")
    peak = max(sample.recv_q for sample in server.queues)
    assert max(line.get_xdata()) == peak
    zero_rows = [
        y
        for row, y in zip(layout.rows, positions)
        if isinstance(row, Arrow) and row.source == index and "zero_window" in row.event_kinds
    ]
    assert len(zero_rows) >= 2
    for y in zero_rows:  # each zero window goes out with the receive queue full
        assert value_at(line, y + 0.1) == peak
    # After the window update the reader has read: the queue drains.
    update = next(
        y
        for row, y in zip(layout.rows, positions)
        if isinstance(row, Arrow) and row.source == index and "window_update" in row.event_kinds
    )
    assert value_at(line, update + 0.9) < peak / 2
    assert value_at(line, zero_rows[0] - 3.0) < peak
    _, ax = drawn(layout)
    assert overlapping(text_boxes(ax)) == []  # the notes beside the lifelines, the strips' headers


def test_each_page_has_strips_of_its_own_rows() -> None:
    layout = layout_of("zero-window")
    pages = layout.paginate((len(layout.rows) + 1) // 2)
    assert len(pages) == 2
    figure, _ = drawn(pages[1])
    positions = row_positions(pages[1])
    assert layout.kernel is not None
    client = next(endpoint for endpoint in layout.kernel.endpoints if endpoint.port != 8088)
    index = participant_of(pages[1], client)
    line = strip_line(figure, index, "send")
    assert list(line.get_ydata())[0] == positions[0] and list(line.get_ydata())[-1] == positions[-1] + 1.0
    first = next(row for row in pages[1].rows if isinstance(row, Arrow))
    before = [sample.send_q for sample in client.queues if sample.time_ns <= (first.time_ns or 0)]
    assert before[-1] > 0 and list(line.get_xdata())[0] == before[-1]  # the page starts with the queue as it was


def test_no_strips_and_no_extra_width_without_the_kernels_side() -> None:
    figure, ax = drawn(layout_of("story", kernel=False))
    assert strips(figure) == []
    assert not any((text.get_gid() or "").startswith("queue") for text in ax.texts)
    # A recorded story whose endpoints had no socket (all crafted): no strips either.
    layout = layout_of("story")
    assert layout.kernel is not None
    hollow = dataclasses.replace(
        layout, kernel=KernelStory([dataclasses.replace(e, sockets=[], states=[]) for e in layout.kernel.endpoints])
    )
    figure, ax = drawn(hollow)
    assert strips(figure) == []
    assert INFERRED_SOURCE in legend_texts(ax)


def test_time_y_interpolates_between_the_rows_and_leaves_later_times_to_the_next_page() -> None:
    points = [(100, 0.0), (200, 1.0), (200, 1.55), (400, 2.0)]
    assert time_y(points, 150) == pytest.approx(0.5)
    assert time_y(points, 300) == pytest.approx(1.55 + 0.45 / 2)  # from the arrow's tip on
    assert time_y(points, 50) == 0.0  # before the first row: at it
    assert time_y(points, 400) == 2.0
    assert time_y(points, 500) is None  # after the last row: another page's
    assert time_y(points, 500, beyond=(3.0, 100)) == pytest.approx(2.5)  # the last page: half-way one unit on
    assert time_y(points, 10_000, beyond=(3.0, 100)) < 3.0


def test_a_queue_change_after_the_last_row_ends_the_last_page_only() -> None:
    layout = layout_of("story")
    assert layout.kernel is not None
    client = next(endpoint for endpoint in layout.kernel.endpoints if endpoint.port != 8080)
    last = max(getattr(row, "time_ns", 0) or 0 for row in layout.rows)  # frames' and calls' rows
    client.queues.append(dataclasses.replace(client.queues[-1], time_ns=last + 1_000_000, recv_q=5))
    index = participant_of(layout, client)
    figure, _ = drawn(layout)
    assert list(strip_line(figure, index, "recv").get_xdata())[-1] == 5
    first, second = layout.paginate((len(layout.rows) + 1) // 2)
    figure, _ = drawn(first)
    assert 5 not in list(strip_line(figure, index, "recv").get_xdata())
    figure, _ = drawn(second)
    assert list(strip_line(figure, index, "recv").get_xdata())[-1] == 5


def test_a_call_between_two_phases_does_not_open_a_phase_again() -> None:
    """accept() returns after the handshake, after the client's send() call's row (a data row): its row
    belongs with the data transfer, not to a second handshake band (seen in a throughput run)."""
    from matplotlib.colors import to_rgba

    from visualizer.render.ladder import PHASE_COLOURS

    pcap = KERNEL.parent / "throughput" / "throughput-rate-1mbit-queue-100ms-reno.pcap"
    report = analyse_file(pcap, keep_frames=True)
    story = kernel_story(pcap, report.frame_analyses)
    frames = [frame for frame in report.frame_analyses if frame.stream == 0 and frame.protocol == "tcp"]
    layout = build_ladder(frames, origin_ns=report.first_time_ns, kernel=story)
    ax = draw_ladder(layout)
    try:
        shaded = [
            patch.get_facecolor() for patch in ax.patches if isinstance(patch, Rectangle) and patch.get_zorder() == 0
        ]
        handshake = to_rgba(PHASE_COLOURS["handshake"])
        assert [colour for colour in shaded if colour == handshake] == [handshake]
    finally:
        ax.get_figure(root=True).clear()  # type: ignore[union-attr]
