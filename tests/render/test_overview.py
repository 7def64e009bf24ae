"""The overview of a capture of several conversations, and the sorting of its frames into one ladder each."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import matplotlib.colors
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from tests.packets import ACK, FIN, RST, SYN, Conversation, decode_all, ethernet
from tests.render.test_ladder import overlapping
from visualizer.analysis.analyzer import analyse
from visualizer.cli import main
from visualizer.pipeline import analyse_file
from visualizer.render import export
from visualizer.render.overview import (
    OUTCOME_COLOURS,
    ConversationLadders,
    conversation_endpoints,
    conversation_key,
    conversation_name,
    draw_overview,
    outcome_of,
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


def test_the_default_drawing_of_a_real_capture_of_fifteen_conversations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """web (scenario): draw without --stream writes the overview and one ladder per conversation; the overview
    has one bar per conversation, in its outcome's colour, on the row named by its stream, and no text of it
    overlaps another or leaves the figure."""
    figures: list[Figure] = []
    new_figure = export._new_figure

    def recorded(**options: object) -> Figure:
        figures.append(new_figure(**options))
        return figures[-1]

    monkeypatch.setattr(export, "_new_figure", recorded)
    out = tmp_path / "web.png"
    assert main(["draw", str(SCENARIOS / "web.pcap"), "-o", str(out)], stdout=io.StringIO(), stderr=io.StringIO()) == 0
    conversations = analyse_file(SCENARIOS / "web.pcap").conversations
    keys = [f"{c.protocol}-{c.stream}" for c in conversations]
    assert len(keys) == 15
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(["web.png", *(f"web-{key}.png" for key in keys)])
    assert len(figures) == 16  # the overview and 15 one-page ladders

    def bars(figure: Figure) -> list[Rectangle]:
        return [
            patch
            for ax in figure.axes
            for patch in ax.patches
            if isinstance(patch, Rectangle) and str(patch.get_gid()).startswith("conversation-")
        ]

    (overview,) = [figure for figure in figures if bars(figure)]
    (ax,) = overview.axes
    colours = {bar.get_gid(): matplotlib.colors.to_hex(bar.get_facecolor()) for bar in bars(overview)}
    assert colours == {
        f"conversation-{c.protocol}-{c.stream}": OUTCOME_COLOURS[outcome_of(c)].lower() for c in conversations
    }
    assert Counter(colours.values()) == {
        OUTCOME_COLOURS["complete"].lower(): 10,
        OUTCOME_COLOURS["udp"].lower(): 3,
        OUTCOME_COLOURS["refused"].lower(): 1,
        OUTCOME_COLOURS["reset"].lower(): 1,
    }
    rows = [label.get_text() for label in ax.get_yticklabels()]
    for bar in bars(overview):
        _, protocol, stream = str(bar.get_gid()).split("-")
        assert rows[round(bar.get_y() + bar.get_height() / 2)].startswith(f"{protocol.upper()} {stream} ")
    renderer = FigureCanvasAgg(overview).get_renderer()
    overview.draw(renderer)
    texts = [
        *ax.texts,
        *ax.get_yticklabels(),
        *ax.get_xticklabels(),
        ax.xaxis.label,
        *overview.texts,
        *(text for legend in overview.legends for text in legend.get_texts()),
    ]
    boxes = [(text.get_text(), text.get_window_extent(renderer)) for text in texts if text.get_text().strip()]
    assert len(boxes) > 15 * 2 + 4  # names, notes, title, axis label, legend
    assert overlapping(boxes) == []
    # The names stand in columns: aligned left, the stream padded ("TCP 9 " as wide as "TCP 11").
    assert len({round(label.get_window_extent(renderer).x0) for label in ax.get_yticklabels()}) == 1
    assert len({row.index("→") for row in rows}) == 1  # every client here is 127.0.0.1 with a 5-digit port
    page = overview.bbox
    assert all(page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1 for _, box in boxes)


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
