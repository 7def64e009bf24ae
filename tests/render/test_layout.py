"""The ladder layout: participants, labels, events and links, folding, gaps, pages."""

from __future__ import annotations

from pathlib import Path

from tests.packets import ACK, FIN, PSH, SYN, Conversation, decode_all
from visualizer.analysis import analyse
from visualizer.pipeline import analyse_file
from visualizer.render.layout import Fold, Gap, Mark, build_ladder, preview

CAPTURES = Path(__file__).parent.parent.parent / "captures"


def layout_of(talk: Conversation, **options: object):  # type: ignore[no-untyped-def]
    report = analyse(talk.records(), keep_frames=True)
    return build_ladder(report.frame_analyses, origin_ns=report.first_time_ns, **options)  # type: ignore[arg-type]


def steady_transfer() -> Conversation:
    """A handshake, then 40 data segments of 100 bytes, each ACKed: 83 frames, nothing eventful after #4."""
    talk = Conversation().client_sends(0, 100, 0, SYN).server_sends(0.01, 500, 101, SYN | ACK)
    talk.client_sends(0.02, 101, 501, ACK)
    sequence = 101
    for step in range(40):
        talk.client_sends(0.03 + step * 0.01, sequence, 501, ACK, b"x" * 100)
        sequence += 100
        talk.server_sends(0.035 + step * 0.01, 501, sequence, ACK)
    return talk


def test_story_labels_in_stevens_notation() -> None:
    report = analyse_file(CAPTURES / "story.pcap", keep_frames=True)
    layout = build_ladder(report.frame_analyses, origin_ns=report.first_time_ns)
    assert [participant.label for participant in layout.participants] == [
        "client 127.0.0.1:56566",
        "server 127.0.0.1:8080",
    ]
    arrows = layout.arrows()
    assert len(arrows) == 10
    assert arrows[0].label.startswith("SYN seq=0 win=65495 <mss 65495")
    assert arrows[3].label == 'PSH|ACK seq=1:13 (12) ack=1 "tic tac toe?"'
    assert [arrow.kind for arrow in arrows] == [
        "handshake",
        "handshake",
        "handshake",
        "data",
        "ack",
        "data",
        "ack",
        "fin",
        "fin",
        "ack",
    ]
    assert (arrows[0].source, arrows[0].target) == (0, 1) and (arrows[1].source, arrows[1].target) == (1, 0)
    assert arrows[7].sender_state == "FIN-WAIT-1" and arrows[7].state_changed == (True, True)


def test_retransmission_links_back_to_its_original() -> None:
    talk = Conversation().client_sends(0, 100, 0, SYN).server_sends(0.01, 500, 101, SYN | ACK)
    talk.client_sends(0.02, 101, 501, ACK).client_sends(0.03, 101, 501, PSH | ACK, b"hello")
    talk.client_sends(0.5, 101, 501, PSH | ACK, b"hello")
    arrow = layout_of(talk).arrows()[-1]
    assert arrow.kind == "retransmission" and arrow.original == 4 and arrow.links == (4,)
    assert arrow.events == ("retransmission of #4",)


def test_long_uneventful_runs_fold_and_events_stay() -> None:
    talk = steady_transfer()
    talk.client_sends(0.5, 101, 501, ACK, b"x" * 100)  # a retransmission at the end
    layout = layout_of(talk)
    folds = [row for row in layout.rows if isinstance(row, Fold)]
    assert len(folds) == 1 and folds[0].count > 60
    assert folds[0].description == "× 75 frames: 37 data segments (3700 bytes), 38 ACKs"
    last = layout.arrows()[-1]
    assert last.kind == "retransmission" and last.original == 4
    assert any(arrow.frame == 4 for arrow in layout.arrows())
    assert layout.frames == 84
    unfolded = layout_of(talk, fold=False)
    assert len(unfolded.arrows()) == 84


def test_idle_pauses_become_gaps_and_pages_keep_every_row() -> None:
    talk = Conversation().client_sends(0, 100, 0, SYN).server_sends(0.01, 500, 101, SYN | ACK)
    talk.client_sends(0.02, 101, 501, ACK).client_sends(30.0, 101, 501, FIN | ACK)
    layout = layout_of(talk)
    gaps = [row for row in layout.rows if isinstance(row, Gap)]
    assert len(gaps) == 1 and round(gaps[0].seconds) == 30
    pages = layout.paginate(2)
    assert [page.page for page in pages] == [0, 1, 2] and all(page.pages == 3 for page in pages)
    assert sum(len(page.rows) for page in pages) == len(layout.rows)


def test_udp_and_icmp_error_arrows() -> None:
    report = analyse_file(CAPTURES / "udp.pcap", keep_frames=True)
    layout = build_ladder(report.frame_analyses)
    arrows = layout.arrows()
    assert [arrow.kind for arrow in arrows] == ["udp"] * 5 + ["icmp"]
    assert arrows[0].label == 'UDP 6 bytes "ping 1"'
    icmp = arrows[-1]
    assert icmp.label == "ICMP port unreachable (type 3 code 3)"
    assert (icmp.source, icmp.target) == (arrows[4].target, arrows[4].source)


def test_payload_preview_escapes_and_truncates() -> None:
    assert preview(b"tic tac toe?") == '"tic tac toe?"'
    assert preview(b"line\r\n") == '"line\\r\\n"'
    assert preview(bytes(range(200, 230))).startswith("0xc8c9")
    assert preview(b"a" * 40).endswith('…"')
    assert preview(b"") == ""


def test_an_original_inside_a_fold_is_unfolded_when_a_retransmission_refers_to_it() -> None:
    talk = steady_transfer()
    talk.client_sends(0.5, 101 + 20 * 100, 501, ACK, b"x" * 100)  # repeats the segment of frame 44
    layout = layout_of(talk)
    retransmission = layout.arrows()[-1]
    assert retransmission.original == 44
    assert 44 in [arrow.frame for arrow in layout.arrows()]
    folds = [row for row in layout.rows if isinstance(row, Fold)]
    assert len(folds) == 2 and sum(fold.count for fold in folds) == 74


def test_an_undecodable_frame_is_a_mark_on_its_senders_lifeline_never_a_self_arrow() -> None:
    """A frame whose TCP header is cut short still names its sender's address: its mark sits on that
    lifeline. One whose IPv4 header is broken names nobody: its mark spans the ladder. No lifeline is
    invented for either, and no arrow goes from an endpoint to itself."""
    talk = Conversation().client_sends(0, 100, 0, SYN)
    first = talk.frames[0][1]
    cut = first[: 14 + 20 + 10]  # IPv4 intact, 10 bytes of TCP header
    broken = first[:14] + b"\x40" + first[15:]  # version 4, header length 0
    report = analyse(decode_all([(0.0, first), (0.1, cut), (0.2, broken)]), keep_frames=True)
    layout = build_ladder(report.frame_analyses, origin_ns=report.first_time_ns)
    assert [participant.label for participant in layout.participants] == ["client 10.0.0.1:40000", "server 10.0.0.2:80"]
    assert all(arrow.source != arrow.target for arrow in layout.arrows())
    marks = [row for row in layout.rows if isinstance(row, Mark)]
    assert [(mark.frame, mark.participant, mark.text) for mark in marks] == [
        (2, 0, "undecodable frame: TCP header cut short"),
        (3, None, "undecodable frame: bad IPv4 header"),
    ]
    assert marks[1].delta_ns == 100_000_000 and "frame 3" in marks[1].tooltip
