"""The matplotlib ladder and time-sequence graph: artists, not pixels."""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib.colors
import matplotlib.pyplot as plt
import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, Patch, Rectangle
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

from tests.packets import ACK, FIN, PSH, SYN, Conversation, decode_all
from tests.render.synthetic import refused_with_an_undecodable_answer, write_pcap
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
from visualizer.render.time_sequence import draw_time_sequence

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


def test_time_sequence_graph_draws_segments_acks_and_a_legend() -> None:
    ax = draw_time_sequence(analyse_file(RETRANSMITS, keep_frames=True), stream=0, from_initiator=False)
    labels = {text.get_text() for text in ax.get_legend().get_texts()}
    assert {"data segment (first to last byte)", "retransmission", "ACK from the receiver"} <= labels
    assert ax.get_xlabel().startswith("time") and ax.get_ylabel().startswith("relative sequence")


# -- several conversations, and the truth on each arrow --------------------------------------------------

SCENARIOS = ROOT / "tests" / "data" / "scenarios" / "captures"


def drawn(name: str, **options: object) -> Axes:
    """The ladder of a scenario's capture (every conversation in one ladder unless ``stream`` is given)."""
    figure = Figure()
    draw_ladder(analyse_file(SCENARIOS / f"{name}.pcap", keep_frames=True), figure=figure, **options)  # type: ignore[arg-type]
    (ax,) = figure.axes
    return ax


def text_boxes(ax: Axes) -> list[tuple[str, Bbox]]:
    """Every text of the ladder with its extent on the canvas, after drawing."""
    renderer = FigureCanvasAgg(ax.figure).get_renderer()
    return [(text.get_text(), text.get_window_extent(renderer)) for text in ax.texts if text.get_text().strip()]


def overlapping(boxes: list[tuple[str, Bbox]]) -> list[tuple[str, str]]:
    found = []
    for (a, first), (b, second) in itertools.combinations(boxes, 2):
        width = min(first.x1, second.x1) - max(first.x0, second.x0)
        height = min(first.y1, second.y1) - max(first.y0, second.y0)
        if width > 1 and height > 1:  # pixels: touching is not overlapping
            found.append((a, b))
    return found


def arrow_of(ax: Axes, frame: int) -> FancyArrowPatch:
    (arrow,) = [patch for patch in frame_arrows(ax) if patch.get_gid() == f"frame-{frame}"]
    return arrow


def ends(arrow: FancyArrowPatch) -> tuple[tuple[float, float], tuple[float, float]]:
    start, end = arrow._posA_posB  # type: ignore[attr-defined]
    return start, end


def lifeline_xs(ax: Axes) -> list[float]:
    """The x of each vertical lifeline (a plotted vertical line), left to right."""
    return sorted(
        {
            line.get_xdata()[0]
            for line in ax.lines
            if len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1]
        }
    )


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("nagle", {}),  # two conversations in one ladder: four lifelines, three-line headers
        ("craft-rst-injection", {}),
        ("loss", {"stream": 0}),
        ("craft-bad-checksum", {}),
        ("craft-simultaneous-open", {}),
    ],
)
def test_no_text_overlaps_another_and_headers_are_complete(name: str, options: dict[str, object]) -> None:
    ax = drawn(name, **options)
    boxes = text_boxes(ax)
    assert overlapping(boxes) == []
    layout = ladder_layout(analyse_file(SCENARIOS / f"{name}.pcap", keep_frames=True), **options)  # type: ignore[arg-type]
    headers = {text.replace("\n", " ").replace(" (stream", " (stream") for text, _ in boxes}
    for participant in layout.participants:
        assert participant.label in headers  # whole: never cut to "client 12"


def test_each_tcp_socket_is_its_own_lifeline_and_clients_stand_left_of_their_servers() -> None:
    """Two connections to one server port: two server sockets (one lifeline each, never TIME-WAIT
    and LISTEN on one), each client left of its server."""
    first = Conversation(client_port=40000).client_sends(0.0, 100, 0, SYN).server_sends(0.001, 500, 101, SYN | ACK)
    second = Conversation(client_port=40001).client_sends(0.002, 900, 0, SYN).server_sends(0.003, 700, 901, SYN | ACK)
    records = decode_all(first.frames + second.frames)
    from visualizer.analysis.analyzer import analyse

    report = analyse(records, keep_frames=True)
    layout = ladder_layout(report)
    assert [participant.label for participant in layout.participants] == [
        "client 10.0.0.1:40000 (stream 0)",
        "server 10.0.0.2:80 (stream 0)",
        "client 10.0.0.1:40001 (stream 1)",
        "server 10.0.0.2:80 (stream 1)",
    ]
    ax = draw_ladder(layout, figure=Figure())
    for arrow in frame_arrows(ax):
        (start, _), (end, _) = ends(arrow)
        row = next(row for row in layout.arrows() if f"frame-{row.frame}" == arrow.get_gid())
        client_x = start if layout.participants[row.source].role == "client" else end
        assert client_x == min(start, end)


def test_a_lost_segment_ends_half_way_with_a_cross() -> None:
    """loss: #14 was dropped on arrival (finding not_received): its arrow stops half-way, headless, at a cross."""
    ax = drawn("loss", stream=0)
    (start_x, start_y), (end_x, end_y) = ends(arrow_of(ax, 14))
    client, server = lifeline_xs(ax)
    assert end_x == pytest.approx((client + server) / 2)
    assert type(arrow_of(ax, 14).get_arrowstyle()).__name__ == "Curve"  # no head: it never arrived
    (cross,) = [line for line in ax.lines if line.get_gid() == "fate-14"]
    assert cross.get_marker() == "x"
    assert (cross.get_xdata()[0], cross.get_ydata()[0]) == pytest.approx((end_x, end_y))
    # Every other arrow reaches its receiver's lifeline.
    for arrow in frame_arrows(ax):
        if arrow.get_gid() != "frame-14":
            assert ends(arrow)[1][0] in (client, server)


def test_a_bad_checksum_an_ignored_rst_and_a_challenge_ack_are_stamped_on_their_arrows() -> None:
    def stamps(ax: Axes) -> dict[str, str]:
        return {text.get_gid(): text.get_text() for text in ax.texts if (text.get_gid() or "").startswith("stamp-")}

    assert stamps(drawn("craft-bad-checksum")) == {"stamp-4": "bad checksum"}
    assert stamps(drawn("craft-rst-injection")) == {
        "stamp-6": "ignored",
        "stamp-7": "challenged",
        "stamp-8": "challenge ACK",
    }


def test_injected_rsts_come_from_an_injector_lifeline_beside_their_receiver() -> None:
    """craft-rst-injection: #6, #7, #9 were sent in the client's name by Scapy (finding injected_rst)."""
    ax = drawn("craft-rst-injection")
    client, injector, server = lifeline_xs(ax)
    texts = [text.get_text() for text in ax.texts]
    assert "injector (as 127.0.0.1:42338)" in texts
    for frame in (6, 7, 9):
        (start_x, _), (end_x, _) = ends(arrow_of(ax, frame))
        assert (start_x, end_x) == (injector, server)
    for frame in (1, 3, 4, 10):
        assert ends(arrow_of(ax, frame))[0][0] == client
    # The injector is no socket: no state is named on its lifeline.
    renderer = FigureCanvasAgg(ax.figure).get_renderer()
    injector_x = ax.transData.transform((injector, 0))[0]
    states = [text for text in ax.texts if text.get_text() in ("ESTABLISHED", "CLOSED", "FIN-WAIT-1")]
    assert all(
        not text.get_window_extent(renderer).x0 < injector_x < text.get_window_extent(renderer).x1 for text in states
    )


def test_labels_never_hide_their_own_arrow() -> None:
    """Along each arrow, no point falls inside its own label's extent (the label sits above it)."""
    for name in ("loss", "craft-rst-injection", "story"):
        ax = drawn(name, stream=0) if name == "loss" else drawn(name)
        renderer = FigureCanvasAgg(ax.figure).get_renderer()
        labels = {
            text.get_gid(): text.get_window_extent(renderer)
            for text in ax.texts
            if (text.get_gid() or "").startswith("label-")
        }
        for arrow in frame_arrows(ax):
            (x0, y0), (x1, y1) = ends(arrow)
            box = labels[arrow.get_gid().replace("frame-", "label-")]
            for step in range(101):
                x, y = ax.transData.transform((x0 + (x1 - x0) * step / 100, y0 + (y1 - y0) * step / 100))
                assert not (box.x0 < x < box.x1 and box.y0 < y < box.y1), (name, arrow.get_gid())


def test_dup_acks_carry_their_sack_blocks_and_a_fast_retransmission_links_its_original_and_trigger() -> None:
    ax = drawn("loss", stream=0)
    label = {text.get_gid(): text.get_text() for text in ax.texts}
    assert label["label-19"] == "ACK seq=1 ack=4941 win=70656 SACK 5929-6917"
    assert label["label-42"].endswith("SACK 5929-19761")
    links = sorted(
        int(patch.get_gid().split("-")[2]) for patch in ax.patches if (patch.get_gid() or "").startswith("link-43-")
    )
    linked = [14, 19, 21, 22, 27, 28, 29, 30, 37, 38, 39, 40, 41, 42]  # the original and all 13 dup ACKs
    shown = {int(arrow.get_gid().split("-")[1]) for arrow in frame_arrows(ax)}
    assert [frame for frame in linked if frame in shown] == [14, 19, 42]  # the others are folded
    assert links == [14, 42]  # the original and the last dup ACK; the text counts them all
    assert "fast retransmission of #14 after 13 dup ACKs" in [text.get_text() for text in ax.texts]


def test_two_findings_on_one_row_are_separated_and_a_lone_one_still_says_what_it_means() -> None:
    ax = drawn("craft-rst-injection")
    texts = [text.get_text() for text in ax.texts]
    # Each finding its own text (in its own colour), the second on the next line.
    first, second = [text for text in ax.texts if text.get_gid() in ("event-6-rst_ignored", "event-6-injected_rst")]
    assert (first.get_text(), second.get_text()) == (
        "RST ignored: outside the window;",
        "injected (its socket still sends #10)",
    )
    renderer = FigureCanvasAgg(ax.figure).get_renderer()
    assert second.get_window_extent(renderer).y1 <= first.get_window_extent(renderer).y0 + 1
    # #10: Wireshark's retransmission with no first sending captured: no arc, but words that say so.
    assert "retransmission: first sending not captured" in texts
    assert not [patch for patch in ax.patches if (patch.get_gid() or "").startswith("link-10-")]


def test_an_undecodable_frame_of_unknown_sender_is_a_narrow_mark(tmp_path: Path) -> None:
    capture = write_pcap(tmp_path / "broken.pcap", refused_with_an_undecodable_answer())
    ax = draw_ladder(analyse_file(capture, keep_frames=True), figure=Figure())
    (mark,) = [text for text in ax.texts if text.get_gid() == "frame-2"]
    renderer = FigureCanvasAgg(ax.figure).get_renderer()
    box = mark.get_window_extent(renderer)
    client, server = (ax.transData.transform((x, 0))[0] for x in lifeline_xs(ax))
    assert client < box.x0 and box.x1 < server  # between the lifelines, not across them
    assert not [patch for patch in ax.patches if isinstance(patch, Rectangle) and patch.get_gid() == "frame-2"]


def test_twelve_conversations_in_one_ladder_keep_every_header_and_label_whole() -> None:
    """Twelve connections to one server port, chosen together (--stream ...): 24 lifelines, each header
    whole, no text over another, every arrow's flag names in its label."""
    frames = []
    for index in range(12):
        talk = Conversation(client_port=41000 + index)
        start = index * 0.01
        talk.client_sends(start, 100, 0, SYN).server_sends(start + 0.001, 500, 101, SYN | ACK)
        talk.client_sends(start + 0.002, 101, 501, ACK, b"GET / HTTP/1.1\r\n")
        frames += talk.frames
    from visualizer.analysis.analyzer import analyse

    layout = ladder_layout(analyse(decode_all(frames), keep_frames=True))
    assert len(layout.participants) == 24
    ax = draw_ladder(layout, figure=Figure())
    boxes = text_boxes(ax)
    assert overlapping(boxes) == []
    headers = {text.replace("\n", " ") for text, _ in boxes}
    assert {participant.label for participant in layout.participants} <= headers
    labels = [text.get_text() for text in ax.texts if (text.get_gid() or "").startswith("label-")]
    assert len(labels) == 36 and all(label.split()[0] in ("SYN", "SYN|ACK", "PSH|ACK", "ACK") for label in labels)


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


def test_a_frame_earlier_than_the_previous_row_shows_a_negative_pause() -> None:
    from visualizer.render.ladder import _duration

    assert [_duration(value) for value in (250, 41_000, -41_000, -2_500_000_000)] == [
        "+250 ns",
        "+41 µs",
        "-41 µs",
        "-2.50 s",
    ]


def crossing_borders(ax: Axes) -> list[tuple[str, str]]:
    """Texts whose extent crosses a fold box's border (inside and outside it at once)."""
    renderer = FigureCanvasAgg(ax.figure).get_renderer()
    boxes = [patch for patch in ax.patches if (patch.get_gid() or "").startswith("fold-")]
    found = []
    for patch in boxes:
        outer = patch.get_window_extent(renderer)
        for text, extent in text_boxes(ax):
            inside = extent.x0 >= outer.x0 and extent.x1 <= outer.x1 and extent.y0 >= outer.y0 and extent.y1 <= outer.y1
            meets = extent.x1 > outer.x0 and extent.x0 < outer.x1 and extent.y1 > outer.y0 and extent.y0 < outer.y1
            if meets and not inside:
                found.append((patch.get_gid(), text))
    return found


@pytest.mark.parametrize("capture", ["full-duplex", "zero-window", "nagle"])
def test_no_text_touches_a_fold_box_border(capture: str) -> None:
    report = analyse_file(SCENARIOS / f"{capture}.pcap", keep_frames=True)
    ax = draw_ladder(report, stream=0)
    assert any((patch.get_gid() or "").startswith("fold-") for patch in ax.patches)
    assert crossing_borders(ax) == []
    plt.close("all")


def test_a_capture_that_starts_at_the_syn_ack_names_its_sender_the_server() -> None:
    # Frame 1 is 185.33.86.224:888's SYN-ACK: the analysis starts it in SYN-RECEIVED, a server.
    report = analyse_file(CORPUS / "zeek-ctu-64702-888.pcap", keep_frames=True)
    layout = ladder_layout(report, stream=0)
    roles = {participant.port: participant.role for participant in layout.participants}
    assert roles == {888: "server", 64702: "client"}
    ax = draw_ladder(layout)
    (first,) = [patch for patch in frame_arrows(ax) if patch.get_gid() == "frame-1"]
    (start, _), (end, _) = ends(first)
    assert start > end  # from the server, on the right, to the client
    plt.close("all")


def test_a_title_never_breaks_inside_a_parenthesis() -> None:
    report = analyse_file(STORY, keep_frames=True)
    for length in range(80, 125, 2):  # the heading wraps at 87 or 119 characters: "(2" ends a line
        title = "x" * (length - 12) + " and (2 frames)"
        ax = draw_ladder(ladder_layout(report, stream=0), title=title)
        heading = max(ax.texts, key=lambda text: text.get_fontsize()).get_text()
        assert "(2 frames)" in heading, heading
        plt.close("all")


def event_texts(ax: Axes) -> list[Text]:
    return [text for text in ax.texts if (text.get_gid() or "").startswith("event-")]


def test_a_finding_has_one_colour_in_every_row_and_the_legend_names_the_findings_drawn() -> None:
    ax = draw_ladder(analyse_file(SCENARIOS / "craft-rst-injection.pcap", keep_frames=True), stream=0)
    colours: dict[str, set[str]] = {}
    for text in event_texts(ax):
        kind = text.get_gid().split("-", 2)[2]
        colours.setdefault(kind, set()).add(matplotlib.colors.to_hex(text.get_color()))
    assert {"rst_accepted", "injected_rst", "retransmission"} <= set(colours)
    assert all(len(found) == 1 for found in colours.values()), colours
    assert colours["rst_accepted"] != colours["retransmission"]
    plt.close("all")
    ax = draw_ladder(analyse_file(SCENARIOS / "refused.pcap", keep_frames=True), stream=0)
    legend = ax.get_legend()
    assert legend is not None
    findings = [text.get_text() for text in legend.get_texts() if text.get_text().startswith("finding")]
    assert findings == ["finding: no listener"]
    plt.close("all")


def test_a_rst_found_ignored_later_is_drawn_ignored_only() -> None:
    # Frame 7: the analysis finds the RST accepted, then ignored when its receiver sends #8 (and keeps
    # the receiver ESTABLISHED): the row says ignored, and nothing of a reset.
    ax = draw_ladder(analyse_file(CORPUS / "zeek-get-to-ssh-server.pcap", keep_frames=True), stream=0)
    words = " ".join(text.get_text() for text in event_texts(ax) if text.get_gid().startswith("event-7-"))
    assert "RST ignored: #8 follows" in words and "accepted" not in words
    assert any(line.get_gid() == "fate-7" for line in ax.lines)
    plt.close("all")


def test_findings_start_right_of_the_last_lifelines_state_names() -> None:
    ax = draw_ladder(analyse_file(SCENARIOS / "refused.pcap", keep_frames=True), stream=0)
    boxes = dict(text_boxes(ax))
    finding = boxes["no listener: refused"]
    state = max((box for text, box in text_boxes(ax) if text == "CLOSED"), key=lambda box: box.x1)
    assert 0 < finding.x0 - state.x1 < 40  # pixels: beside the state names, not a column further
    plt.close("all")


def test_neighbor_discovery_is_named_and_not_drawn_as_an_icmp_error() -> None:
    report = analyse_file(CORPUS / "zeek-ipv6-http-atomic-frag.pcap", keep_frames=True)
    icmp = [frame for frame in report.frame_analyses if frame.protocol == "icmpv6"]
    ax = draw_ladder(ladder_layout(icmp))
    labels = {text.get_text() for text in ax.texts if (text.get_gid() or "").startswith("label-")}
    assert labels == {"ICMPv6 neighbor advertisement (type 136)", "ICMPv6 neighbor solicitation (type 135)"}
    error = matplotlib.colors.to_hex(STYLES["icmp"].color)
    assert all(matplotlib.colors.to_hex(arrow.get_edgecolor()) != error for arrow in frame_arrows(ax))
    legend = ax.get_legend()
    assert legend is not None
    assert "ICMP error" not in {text.get_text() for text in legend.get_texts()}
    plt.close("all")


def test_lifelines_are_far_enough_apart_for_whole_labels_and_a_fold_spans_its_own() -> None:
    # tcpdump-pptp: a TCP control connection and GRE between the same hosts (two host lifelines more).
    report = analyse_file(CORPUS / "tcpdump-pptp.pcap", keep_frames=True)
    layout = ladder_layout(report)
    ax = draw_ladder(layout)
    drawn = {text.get_gid(): text.get_text() for text in ax.texts if (text.get_gid() or "").startswith("label-")}
    assert drawn == {f"label-{arrow.frame}": arrow.label for arrow in layout.arrows()}
    (box,) = [patch for patch in ax.patches if (patch.get_gid() or "").startswith("fold-")]
    xs = lifeline_xs(ax)
    assert len(xs) == 4
    assert (box.get_x(), box.get_x() + box.get_width()) == pytest.approx((xs[0], xs[1]))
    plt.close("all")


@pytest.mark.parametrize(
    "capture",
    [CORPUS / "zeek-retransmit-fast009.pcap", SCENARIOS / "craft-silent-client.pcap", CORPUS / "zeek-ssh-dups.pcap"],
)
def test_every_arc_ends_at_words_on_its_frames_row_and_no_two_arcs_share_an_end(capture: Path) -> None:
    layout = ladder_layout(analyse_file(capture, keep_frames=True), stream=0).paginate(100)[0]
    ax = draw_ladder(layout)
    words = [
        text.get_position()
        for text in ax.texts
        if (text.get_gid() or "").startswith(("event-", "referred-")) and not isinstance(text, Annotation)
    ]
    arcs = [patch for patch in ax.patches if (patch.get_gid() or "").startswith("link-")]
    assert arcs
    ends_at = []
    for arc in arcs:
        (_, _), (x, y) = ends(arc)
        assert any(abs(x - wx) < 0.2 and abs(y - wy) < 0.3 for wx, wy in words), arc.get_gid()
        ends_at.append((round(x, 3), round(y, 3)))
    assert len(set(ends_at)) == len(ends_at)
    plt.close("all")


def test_a_frame_at_its_predecessor_s_timestamp_is_plus_zero_not_zero_nanoseconds() -> None:
    """The CTU capture stamps frames to the microsecond; #2 has #1's timestamp. "+0 ns" claimed a
    nanosecond clock: the gutter says "+0"; other deltas keep their unit."""
    figure = Figure()
    draw_ladder(analyse_file(CORPUS / "zeek-ctu-64702-888.pcap", keep_frames=True), figure=figure)
    (ax,) = figure.axes
    deltas = [text.get_text() for text in ax.texts if text.get_text()[:1] in "+-" and text.get_fontsize() == 6.5]
    assert "+0" in deltas and not any(delta.endswith(" ns") and delta.startswith("+0") for delta in deltas)
    assert "+716 µs" in deltas


def test_the_window_rule_says_win_is_the_field_as_sent_where_the_scale_is_unknown() -> None:
    """The gopacket capture starts mid-stream: its "win=10473" is the field as sent (the scale is set
    by a handshake that was not captured), which the legend's "(scaled)" contradicted. The CTU
    capture's client, whose SYN was not captured, too; the story, with its handshake, not."""

    def rule(path: Path) -> str:
        figure = Figure()
        draw_ladder(analyse_file(path, keep_frames=True), figure=figure, stream=0)
        (ax,) = figure.axes
        return ax.get_legend().get_title().get_text()

    for path in (CORPUS / "gopacket-test_loopback.pcap", CORPUS / "zeek-ctu-64702-888.pcap"):
        assert "its scale is unknown: win= is the field as sent" in rule(path)
    for path in (STORY, ROOT / "captures" / "refused.pcap"):  # a refused SYN's RST: its window means nothing
        assert rule(path).startswith("win= the advertised window (scaled)") and "unknown" not in rule(path)
