"""The overview of a capture of several conversations, and the sorting of its frames into one ladder each."""

from __future__ import annotations

from pathlib import Path

import matplotlib.colors
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from tests.packets import ACK, FIN, RST, SYN, Conversation, decode_all, ethernet
from visualizer.analysis.analyzer import analyse
from visualizer.pipeline import analyse_file
from visualizer.render.overview import (
    OUTCOME_COLOURS,
    ConversationLadders,
    conversation_endpoints,
    conversation_key,
    conversation_name,
    draw_overview,
)

SCENARIOS = Path(__file__).resolve().parents[1] / "data" / "scenarios" / "captures"


def three_outcomes() -> list[tuple[float, bytes]]:
    """A complete conversation, a refused one and an unanswered SYN, then a frame of no conversation."""
    complete = Conversation(client_port=40000)
    complete.client_sends(0.0, 100, 0, SYN).server_sends(0.001, 500, 101, SYN | ACK).client_sends(0.002, 101, 501, ACK)
    complete.client_sends(0.003, 101, 501, FIN | ACK).server_sends(0.004, 501, 102, FIN | ACK)
    complete.client_sends(0.005, 102, 502, ACK)
    refused = Conversation(client_port=40001, server_port=9).client_sends(0.010, 900, 0, SYN)
    refused.server_sends(0.011, 0, 901, RST | ACK)
    unanswered = Conversation(client_port=40002, server_port=81).client_sends(0.020, 300, 0, SYN)
    arp = (0.030, ethernet(bytes(28), ethertype=0x0806))
    return complete.frames + refused.frames + unanswered.frames + [arp]


def test_one_bar_per_conversation_coloured_by_its_outcome_named_by_its_stream() -> None:
    report = analyse(decode_all(three_outcomes()), keep_frames=True)
    ladders = ConversationLadders(report.conversations, origin_ns=report.first_time_ns).extend(report.frame_analyses)
    figure = Figure()
    ax = draw_overview(
        report.conversations,
        origin_ns=report.first_time_ns,
        other_times=ladders.other_times,
        files={("tcp", 0): "out-tcp-0.png"},
        figure=figure,
    )
    bars = {patch.get_gid(): patch for patch in ax.patches if isinstance(patch, Rectangle) and patch.get_gid()}
    assert sorted(bars) == ["conversation-tcp-0", "conversation-tcp-1", "conversation-tcp-2"]
    colours = {gid: matplotlib.colors.to_hex(bar.get_facecolor()) for gid, bar in bars.items()}
    assert colours == {
        "conversation-tcp-0": OUTCOME_COLOURS["complete"].lower(),
        "conversation-tcp-1": OUTCOME_COLOURS["refused"].lower(),
        "conversation-tcp-2": OUTCOME_COLOURS["unanswered"].lower(),
    }
    # The bars span their conversations' times (a one-frame conversation still shows).
    assert bars["conversation-tcp-0"].get_x() == 0.0
    assert bars["conversation-tcp-0"].get_width() == pytest.approx(0.005)
    assert bars["conversation-tcp-2"].get_width() > 0
    rows = [label.get_text() for label in ax.get_yticklabels()]
    assert rows == [
        "TCP 0  10.0.0.1:40000 → 10.0.0.2:80",
        "TCP 1  10.0.0.1:40001 → 10.0.0.2:9",
        "TCP 2  10.0.0.1:40002 → 10.0.0.2:81",
        "no conversation (1 frames)",
    ]
    notes = [text.get_text() for text in ax.texts]
    assert any(note.strip().startswith("6 frames  complete") and note.endswith("out-tcp-0.png") for note in notes)
    legend = {text.get_text() for text in figure.legends[0].get_texts()}
    assert legend == {"complete (both closed)", "refused", "unanswered SYN", "frame of no conversation"}


def test_frames_go_to_the_ladder_of_their_conversation_and_the_rest_to_their_own() -> None:
    report = analyse(decode_all(three_outcomes()), keep_frames=True)
    ladders = ConversationLadders(report.conversations).extend(report.frame_analyses)
    finished = ladders.finish(lambda conversation, frames: f"{conversation.stream if conversation else '-'}: {frames}")
    assert [(key, layout.title) for key, layout in finished] == [
        (("tcp", 0), "0: 6"),
        (("tcp", 1), "1: 2"),
        (("tcp", 2), "2: 1"),
        (("other", 0), "-: 1"),
    ]


def test_an_icmp_error_belongs_to_the_conversation_it_quotes() -> None:
    frames = analyse_file(SCENARIOS / "udp-closed-port.pcap", keep_frames=True).frame_analyses
    assert [conversation_key(frame) for frame in frames] == [("udp", 0), ("udp", 0)]
    assert frames[1].protocol.startswith("icmp")


CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus" / "captures"


def test_ipv6_endpoints_are_bracketed_and_a_syn_ack_first_conversation_starts_at_its_client() -> None:
    report = analyse_file(CORPUS / "zeek-ipv6-fragmented-dns.pcap", keep_frames=True)
    names = [conversation_name(conversation) for conversation in report.conversations]
    assert names and all(name.count("[") == 2 and "]:" in name for name in names), names
    report = analyse_file(CORPUS / "zeek-ctu-64702-888.pcap", keep_frames=True)
    ladders = ConversationLadders(report.conversations).extend(report.frame_analyses)
    (conversation,) = ladders.oriented_conversations()
    assert conversation_endpoints(conversation) == "192.168.1.108:64702 → 185.33.86.224:888"
    ((_, layout),) = ladders.finish(lambda conversation, frames: conversation_endpoints(conversation))
    assert layout.title == "192.168.1.108:64702 → 185.33.86.224:888"


def test_the_legend_sits_under_the_axis_label_and_the_notes_have_no_blank_columns() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    report = analyse_file(CORPUS / "zeek-ipv6-fragmented-dns.pcap", keep_frames=True)
    ladders = ConversationLadders(report.conversations).extend(report.frame_analyses)
    figure = Figure(dpi=100)
    ax = draw_overview(
        report.conversations, other_times=ladders.other_times, files={("udp", 0): "a.png"}, figure=figure
    )
    canvas = FigureCanvasAgg(figure)
    canvas.draw()  # places the axis label
    renderer = canvas.get_renderer()
    label = ax.xaxis.label.get_window_extent(renderer)
    legend = figure.legends[0].get_window_extent(renderer)
    assert 0 <= label.y0 - legend.y1 <= 12  # pixels: the legend right under the axis label
    assert legend.y0 >= 0
    notes = [text.get_text() for text in ax.texts]
    assert notes == ["2 frames  a.png", "3 frames", "3 frames"]
