"""The ladder layout: participants, labels, events and links, folding, gaps, pages."""

from __future__ import annotations

import re
from pathlib import Path

from tests.packets import ACK, FIN, PSH, RST, SYN, Conversation, decode_all
from visualizer.analysis import analyse
from visualizer.analysis.report import analysis_names
from visualizer.pipeline import analyse_file
from visualizer.render.export import ROWS_PER_PAGE
from visualizer.render.layout import (
    Arrow,
    Fold,
    Gap,
    LadderLayout,
    Mark,
    build_ladder,
    linked_frames,
    preview,
    wrap_title,
)

CAPTURES = Path(__file__).parent.parent.parent / "captures"
CORPUS = Path(__file__).parent.parent / "data" / "corpus" / "captures"
SCENARIO_CAPTURES = Path(__file__).parent.parent / "data" / "scenarios" / "captures"


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
    assert arrows[3].label == 'PSH|ACK seq=1:13 (12) ack=1 win=65536 "tic tac toe?"'
    assert all(" win=" in arrow.label for arrow in arrows)  # one rule: the window on every segment
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


def fold_numbers(fold: Fold) -> int:
    """The frames a fold's text says it holds: the sum of its counts ("28 data segments, 27 KB": 28)."""
    counts = re.findall(
        r"(\d+) (?:data segments?|ACKs?|dup ACKs?|zero-window probes?|probe answers?|keep-alive"
        r"(?: ACK)?s?|identical RSTs?)\b",
        " ".join(fold.lines),
    )
    return sum(int(count) for count in counts)


def check_accounting(layout: LadderLayout) -> list[Fold]:
    """Every frame is a row or folded, once; every fold's text counts exactly its frames."""
    folds = [row for row in layout.rows if isinstance(row, Fold)]
    shown = [row.frame for row in layout.rows if isinstance(row, (Arrow, Mark))]
    assert len(shown) == len(set(shown))
    assert len(shown) + sum(fold.count for fold in folds) == layout.frames
    for fold in folds:
        assert fold_numbers(fold) == fold.count, fold.lines
        assert fold.description.startswith(f"× {fold.count} frames (")
    return folds


def test_long_routine_runs_fold_per_direction_and_events_stay() -> None:
    talk = steady_transfer()
    talk.client_sends(0.5, 101, 501, ACK, b"x" * 100)  # a retransmission at the end
    layout = layout_of(talk)
    folds = check_accounting(layout)
    assert len(folds) == 1 and folds[0].count == 79
    assert folds[0].lines == ("client → server: 39 data segments, 3900 bytes", "server → client: 40 ACKs")
    assert [arrow.frame for arrow in layout.arrows()] == [1, 2, 3, 4, 84]  # the first data is a row
    last = layout.arrows()[-1]
    assert last.kind == "retransmission" and last.original == 4
    assert layout.frames == 84
    unfolded = layout_of(talk, fold=False)
    assert len(unfolded.arrows()) == 84


def test_a_comb_of_identical_rsts_folds_after_its_first() -> None:
    talk = Conversation().client_sends(0, 100, 0, SYN).server_sends(0.01, 500, 101, SYN | ACK)
    talk.client_sends(0.02, 101, 501, ACK).client_sends(0.03, 101, 501, PSH | ACK, b"hello")
    for index in range(40):
        talk.server_sends(0.04 + index * 0.001, 501, 0, RST)
    layout = layout_of(talk)
    (fold,) = check_accounting(layout)
    # The RST that resets, and the first one ignored after it, are rows: the 38 more like it fold.
    assert [arrow.events for arrow in layout.arrows()[-2:]] == [
        ("RST accepted: reset",),
        ("RST ignored: outside the window",),
    ]
    assert fold.lines == ("server → client: 38 identical RSTs (RST seq=1 win=1000, ignored)",)


def test_a_lossy_bulk_transfer_folds_to_its_losses_and_their_causes() -> None:
    """672 frames, 14 retransmissions: each stays a row, with the segment it repeats (lost, crossed) and
    the duplicate ACK that triggered a fast one; everything else folds, counted per direction."""
    report = analyse_file(CORPUS / "zeek-206_example_a.pcap", keep_frames=True)
    layout = build_ladder(report.frame_analyses, origin_ns=report.first_time_ns)
    folds = check_accounting(layout)
    assert layout.frames == 672 and len(layout.rows) <= 120  # before: 6 pages of 60 rows
    stream = build_ladder([frame for frame in report.frame_analyses if frame.stream == 1 and frame.protocol == "tcp"])
    assert len(stream.paginate(ROWS_PER_PAGE)) == 1  # the default drawing: one ladder per conversation, one page
    rows = {arrow.frame: arrow for arrow in layout.arrows()}
    retransmissions = [frame for frame in report.frame_analyses if "retransmission" in analysis_names(frame.analysis)]
    assert len(retransmissions) == 14
    for frame in retransmissions:
        arrow = rows[frame.record.number]
        assert arrow.original in rows
        if "fast_retransmission" in arrow.analysis:
            trigger = rows[linked_frames(arrow)[-1]]
            assert trigger.kind == "ack" and trigger.events[0].startswith("dup ACK ×")
    assert sum("dup ACK" in " ".join(fold.lines) for fold in folds) >= 10  # the other duplicates, folded


def test_zero_window_probes_and_window_limited_runs_fold_around_the_zero_window() -> None:
    report = analyse_file(SCENARIO_CAPTURES / "zero-window.pcap", keep_frames=True)
    layout = build_ladder(report.frame_analyses, origin_ns=report.first_time_ns)
    folds = check_accounting(layout)
    assert len(layout.rows) < 30 and layout.frames == 168
    assert any("window-limited" in line for fold in folds for line in fold.lines)
    events = [event for arrow in layout.arrows() for event in arrow.events]
    for kind in ("zero window", "zero-window probe", "window update", "window full"):
        assert kind in events, kind


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
    assert preview(bytes(range(200, 230))) == ""  # binary: no preview
    assert preview(b"GET / HTTP/1.1\r\n\x00\x01") == ""  # not all text
    assert preview(b"a" * 40).endswith('…"')
    assert preview(b"") == ""


def test_an_original_inside_a_fold_is_unfolded_when_a_retransmission_refers_to_it() -> None:
    talk = steady_transfer()
    talk.client_sends(0.5, 101 + 20 * 100, 501, ACK, b"x" * 100)  # repeats the segment of frame 44
    layout = layout_of(talk)
    retransmission = layout.arrows()[-1]
    assert retransmission.original == 44
    assert 44 in [arrow.frame for arrow in layout.arrows()]
    folds = check_accounting(layout)
    assert len(folds) == 2 and sum(fold.count for fold in folds) == 78


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


def test_wrap_title_keeps_a_short_parenthesis_on_one_line() -> None:
    title = "UDP stream 0: [2001:db8:1::1]:53 → [2001:db8:1::2]:5353 (2 frames)"
    for width in range(20, len(title)):
        assert any("(2 frames)" in line for line in wrap_title(title, width)), width
    assert wrap_title("a (" + "b " * 30 + ")", 20)  # one longer than a line still wraps


def test_pages_are_even_and_no_page_is_a_leftover() -> None:
    """The SSH capture with every frame four times has 302 rows: at 100 a page it made three full pages
    and a fourth of 2 rows. As many pages, as even as can be; every row kept, in order."""
    report = analyse_file(CORPUS / "zeek-ssh-dups.pcap", keep_frames=True)
    layout = build_ladder(report.frame_analyses, origin_ns=report.first_time_ns)
    assert len(layout.rows) == 302
    pages = layout.paginate(ROWS_PER_PAGE)
    assert [len(page.rows) for page in pages] == [76, 76, 75, 75]
    assert [row for page in pages for row in page.rows] == list(layout.rows)
    assert [len(page.rows) for page in layout.paginate(151)] == [151, 151]


def test_a_frame_of_no_conversation_says_what_it_is_not_data() -> None:
    """The PPTP capture's GRE packet (#16) and the IPv6 DNS answer's fragments (#4, #6, #7) were
    labelled "data" (their last decoded layer): the label says what was decoded of them."""
    labels = {}
    for name in ("tcpdump-pptp.pcap", "zeek-ipv6-fragmented-dns.pcap"):
        report = analyse_file(CORPUS / name, keep_frames=True)
        layout = build_ladder(report.frame_analyses, origin_ns=report.first_time_ns, fold=False)
        labels[name] = {arrow.frame: arrow.label for arrow in layout.arrows() if arrow.kind == "other"}
    assert labels["tcpdump-pptp.pcap"] == {16: "IPv4 packet of a protocol not decoded"}
    fragments = labels["zeek-ipv6-fragmented-dns.pcap"]
    assert sorted(fragments) == [4, 6, 7]
    assert set(fragments.values()) == {"IPv6 fragment"}
