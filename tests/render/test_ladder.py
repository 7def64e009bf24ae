"""The matplotlib ladder and time-sequence graph: artists, not pixels."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch

from visualizer.pipeline import analyse_file
from visualizer.render.ladder import STYLES, draw_ladder
from visualizer.render.time_sequence import draw_time_sequence

ROOT = Path(__file__).parent.parent.parent
STORY = ROOT / "captures" / "story.pcap"
RETRANSMITS = ROOT / "tests" / "data" / "corpus" / "captures" / "zeek-retransmit-fast009.pcap"


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
    assert all(gaps[a] <= gaps[b] for a, b in zip(by_pause, by_pause[1:]))
    assert min(gaps.values()) >= 0.9


def test_time_sequence_graph_draws_segments_acks_and_a_legend() -> None:
    ax = draw_time_sequence(analyse_file(RETRANSMITS, keep_frames=True), stream=0, from_initiator=False)
    labels = {text.get_text() for text in ax.get_legend().get_texts()}
    assert {"data segment (first to last byte)", "retransmission", "ACK from the receiver"} <= labels
    assert ax.get_xlabel().startswith("time") and ax.get_ylabel().startswith("relative sequence")
