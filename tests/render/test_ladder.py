"""The matplotlib ladder and time-sequence graph: artists, not pixels."""

from __future__ import annotations

from pathlib import Path

import matplotlib.colors
import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, Patch
from matplotlib.text import Text

from tests.packets import ACK, FIN, PSH, SYN, Conversation
from visualizer.analysis import analyse
from visualizer.pipeline import analyse_file
from visualizer.render.ladder import (
    BREAK_COLOUR,
    REAL_TIME_MAXIMUM_SPACING,
    STYLES,
    draw_ladder,
    ladder_layout,
    pause_height,
    row_positions,
)

ROOT = Path(__file__).parent.parent.parent
STORY = ROOT / "captures" / "story.pcap"
CORPUS = ROOT / "tests" / "data" / "corpus" / "captures"
RETRANSMITS = CORPUS / "zeek-retransmit-fast009.pcap"
SCENARIOS = ROOT / "tests" / "data" / "scenarios" / "captures"


def frame_arrows(ax):  # type: ignore[no-untyped-def]
    return [
        patch
        for patch in ax.patches
        if isinstance(patch, FancyArrowPatch) and (patch.get_gid() or "").startswith("frame-")
    ]


def test_one_arrow_per_frame_with_labels_colours_and_a_legend() -> None:
    report = analyse_file(STORY, keep_frames=True)
    ax = draw_ladder(report, stream=0)
    arrows = frame_arrows(ax)
    assert len(arrows) == 10
    assert [arrow.get_gid() for arrow in arrows] == [f"frame-{number}" for number in range(1, 11)]
    texts = [text.get_text() for text in ax.texts]
    assert 'PSH|ACK seq=1:13 (12) ack=1 win=65536 "tic tac toe?"' in texts
    assert {"SYN-SENT", "ESTABLISHED", "TIME-WAIT", "LAST-ACK", "CLOSED"} <= set(texts)
    assert "client 127.0.0.1:56566" in texts and "server 127.0.0.1:8080" in texts
    colours = {arrow.get_gid(): arrow.get_edgecolor() for arrow in arrows}
    assert colours["frame-4"] != colours["frame-1"] != colours["frame-8"]
    legend = ax.get_legend()
    assert legend is not None
    assert {text.get_text() for text in legend.get_texts()} >= {"data", "pure ACK", "FIN"}


def test_returns_the_axes_it_is_given() -> None:
    figure, ax = plt.subplots()
    assert draw_ladder(analyse_file(STORY, keep_frames=True), ax=ax) is ax
    assert ax.figure is figure


def test_retransmissions_are_drawn_in_their_own_colour_with_events() -> None:
    ax = draw_ladder(analyse_file(RETRANSMITS, keep_frames=True), stream=0)
    retransmission_colour = STYLES["retransmission"].color
    import matplotlib.colors

    red = [
        arrow
        for arrow in frame_arrows(ax)
        if matplotlib.colors.to_hex(arrow.get_edgecolor()) == retransmission_colour.lower()
    ]
    assert len(red) == 3
    texts = " ".join(text.get_text() for text in ax.texts)
    assert "fast retransmission" in texts and "dup ACK ×3" in texts and "s idle" in texts


def test_real_time_mode_spaces_rows_by_time() -> None:
    report = analyse_file(STORY, keep_frames=True)

    def starts(ax) -> dict[int, float]:  # type: ignore[no-untyped-def]
        return {int(arrow.get_gid().split("-")[1]): arrow._posA_posB[0][1] for arrow in frame_arrows(ax)}

    order, real = starts(draw_ladder(report, time="order")), starts(draw_ladder(report, time="real"))
    assert [order[n + 1] - order[n] for n in range(1, 10)] == [1.0] * 9  # one row apart, whatever the time
    gaps = {n + 1: real[n + 1] - real[n] for n in range(1, 10)}
    pauses = {frame.record.number: frame.record.timestamp_ns for frame in report.frame_analyses}
    delta = {n: pauses[n] - pauses[n - 1] for n in gaps}
    longest = max(delta, key=delta.__getitem__)  # the client thinks for 50 ms before closing (frame 8)
    assert longest == 8 and gaps[8] == max(gaps.values()) and gaps[8] >= 2.0
    # A longer pause is never drawn shorter, and microsecond bursts stay a label's height apart.
    by_pause = sorted(gaps, key=delta.__getitem__)
    assert all(gaps[a] <= gaps[b] + 1e-9 for a, b in zip(by_pause, by_pause[1:]))
    assert min(gaps.values()) >= 0.9
    assert gaps[9] < gaps[8]  # 129 µs (frame 9) is drawn shorter than 50 ms


def test_real_time_keeps_an_rto_doubling_visible() -> None:
    """The kernel retransmits after 205 ms, 208 ms, 428 ms, 836 ms, then is reset after 1.52 s: each
    pause is drawn taller than a shorter one (a log scale: a doubling adds the same height)."""
    report = analyse_file(SCENARIOS / "craft-silent-client.pcap", keep_frames=True)
    ax = draw_ladder(report, time="real")
    y = {int(arrow.get_gid().split("-")[1]): arrow._posA_posB[0][1] for arrow in frame_arrows(ax)}
    times = {frame.record.number: frame.record.timestamp_ns for frame in report.frame_analyses}
    pauses = sorted((times[n] - times[n - 1], y[n] - y[n - 1]) for n in range(7, 12))
    assert [round(pause / 1e6) for pause, _ in pauses] == [205, 208, 428, 836, 1524]
    heights = [height for _, height in pauses]
    assert all(shorter < longer for shorter, longer in zip(heights, heights[1:])), heights
    assert heights[2] - heights[1] == pytest.approx(heights[3] - heights[2], abs=0.1)  # 428 → 836: ×2


def test_a_pause_cut_short_gets_a_break_mark_and_its_duration() -> None:
    """Bursts a microsecond apart, then 3 s of silence: more than 20 doublings, so the pause is cut
    short at the maximum height, broken on every lifeline, and says how long it was."""
    talk = Conversation().client_sends(0, 100, 0, SYN).server_sends(0.000001, 500, 101, SYN | ACK)
    talk.client_sends(0.000002, 101, 501, ACK)
    for step in range(6):
        talk.client_sends(0.000003 + step * 0.000001, 101 + step, 501, PSH | ACK, b"x")
    talk.client_sends(3.000009, 107, 501, FIN | ACK)
    report = analyse(talk.records(), keep_frames=True)
    layout = ladder_layout(report, fold=False)
    assert pause_height(3_000_000_000, layout.pause_unit_ns) == (REAL_TIME_MAXIMUM_SPACING, True)
    positions = row_positions(layout, "real")
    y = {getattr(row, "frame", None): at for row, at in zip(layout.rows, positions)}
    assert y[10] - y[9] == pytest.approx(REAL_TIME_MAXIMUM_SPACING)
    ax = draw_ladder(layout, time="real")
    breaks = [line for line in ax.lines if matplotlib.colors.to_hex(line.get_color()) == BREAK_COLOUR.lower()]
    texts = {text.get_text(): text for text in ax.texts}
    assert "3.0 s idle" in texts and y[9] < texts["3.0 s idle"].get_position()[1] < y[10]
    assert len(breaks) == 2 + 2 * 2  # two lifelines, and a double slash across each
    # Keep-alives a second apart are idle gaps drawn to scale: named, not broken.
    ax = draw_ladder(analyse_file(SCENARIOS / "keepalive.pcap", keep_frames=True), time="real")
    lines = [line for line in ax.lines if matplotlib.colors.to_hex(line.get_color()) == BREAK_COLOUR.lower()]
    assert [text.get_text() for text in ax.texts].count("1.0 s idle") == 3 and len(lines) == 2
    assert "time cut short" not in [text.get_text() for text in ax.get_legend().get_texts()]


NEUTRAL = {"#ffffff", "#000000", "#444444", "#111111", "#222222", "#333333", "#555555", "#777777", "#f2f2f2"}
"""Background, lifelines and text greys: not meanings, so not in the legend (black text included;
a black RST arrow is a patch, and counted)."""


def _hex(colour: object) -> str | None:
    rgba = matplotlib.colors.to_rgba(colour)  # type: ignore[arg-type]
    return None if rgba[3] == 0 else matplotlib.colors.to_hex(rgba, keep_alpha=False)


def drawn_colours(ax) -> set[str]:  # type: ignore[no-untyped-def]
    """Every colour the axes' artists show: patches (fill and edge), lines and markers, coloured text."""
    colours: set[str | None] = set()
    for patch in ax.patches:
        colours.add(_hex(patch.get_edgecolor()))
        if not isinstance(patch, FancyArrowPatch):
            colours.add(_hex(patch.get_facecolor()))
    for line in ax.lines:
        colours |= {_hex(line.get_color()), _hex(line.get_markerfacecolor())}
    for text in ax.texts:
        colours.add(_hex(text.get_color()))
        box = text.get_bbox_patch()
        if box is not None:
            colours |= {_hex(box.get_edgecolor()), _hex(box.get_facecolor())}
    return {colour for colour in colours if colour is not None} - NEUTRAL


def legend_colours(ax) -> set[str]:  # type: ignore[no-untyped-def]
    legend = ax.get_legend()
    colours: set[str | None] = set()
    for handle in legend.legend_handles:
        if isinstance(handle, Line2D):
            colours |= {_hex(handle.get_color()), _hex(handle.get_markerfacecolor())}
        elif isinstance(handle, FancyArrowPatch):
            colours.add(_hex(handle.get_edgecolor()))
        elif isinstance(handle, Patch):
            colours |= {_hex(handle.get_facecolor()), _hex(handle.get_edgecolor())}
    colours |= {_hex(text.get_color()) for text in legend.get_texts()}
    return {colour for colour in colours if colour is not None} - NEUTRAL


@pytest.mark.parametrize(
    "capture",
    [
        ROOT / "captures" / "story.pcap",
        SCENARIOS / "loss.pcap",
        SCENARIOS / "zero-window.pcap",
        SCENARIOS / "craft-silent-client.pcap",
        SCENARIOS / "craft-rst-injection.pcap",
        SCENARIOS / "udp-closed-port.pcap",
        CORPUS / "zeek-206_example_a.pcap",
    ],
    ids=lambda path: path.stem,
)
def test_the_legend_shows_every_colour_drawn_and_no_other(capture: Path) -> None:
    """Arrows, arcs, crosses, folds, breaks, phases, state bands and findings: the legend's colours are
    the colours of the artists on the axes, no more, no fewer."""
    layout = ladder_layout(analyse_file(capture, keep_frames=True)).paginate(60)[0]
    for time in ("order", "real"):
        ax = draw_ladder(layout, time=time, figure=Figure())
        drawn = drawn_colours(ax)
        assert len(drawn) >= 2
        assert legend_colours(ax) == drawn
    plt.close("all")


def test_the_figure_is_cropped_to_what_it_draws() -> None:
    """No empty band at the right (the event column is as wide as its longest finding) or under the
    legend: the outermost text ends within 0.2 inch of the figure's edge."""
    for capture in (SCENARIOS / "keepalive.pcap", SCENARIOS / "loss.pcap", ROOT / "captures" / "udp.pcap"):
        figure = Figure()
        ax = draw_ladder(analyse_file(capture, keep_frames=True), figure=figure)
        renderer = figure._get_renderer()  # type: ignore[attr-defined]
        width, height = figure.get_size_inches() * figure.dpi
        texts: list[Text] = [text for text in ax.texts if text.get_text()]
        right = max(text.get_window_extent(renderer).x1 for text in texts)
        bottom = ax.get_legend().get_window_extent(renderer).y0
        assert width - 0.2 * figure.dpi < right <= width + 1, capture.name
        assert 0 <= bottom < 0.2 * figure.dpi, capture.name
