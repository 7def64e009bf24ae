"""The six cases the issue "Analysis you can trust" found wrong, on the scenarios' own captures.

Each capture in tests/data/scenarios was made by ``sockstory run NAME`` (real kernel sockets, or
Scapy talking to the kernel). The tests pin what each endpoint's state is after every frame and
which findings explain it, with the frames they refer to.
"""

from __future__ import annotations

from pathlib import Path

from visualizer.analysis.report import FrameAnalysis
from visualizer.pipeline import analyse_file

SCENARIOS = Path(__file__).resolve().parents[1] / "data" / "scenarios" / "captures"


def frames_of(name: str) -> list[FrameAnalysis]:
    return analyse_file(SCENARIOS / f"{name}.pcap", keep_frames=True).frame_analyses


def states(frames: list[FrameAnalysis], port: int) -> list[str]:
    """The state of the endpoint on ``port`` after each frame (as sender or as receiver)."""
    return [frame.state if frame.record.source_port == port else frame.receiver_state for frame in frames]


def kinds(frame: FrameAnalysis) -> set[str]:
    return {finding.kind for finding in frame.findings}


def finding(frame: FrameAnalysis, kind: str) -> tuple[str, tuple[int, ...]]:
    (found,) = [item for item in frame.findings if item.kind == kind]
    return found.reason, found.refers_to


def test_simultaneous_close_both_ends_pass_closing_and_no_path_is_illegal() -> None:
    frames = frames_of("simultaneous-close")
    client, server = frames[0].record.source_port, 8084
    numbers = [frame.record.number for frame in frames]
    client_fin, server_fin = (frame.record.number for frame in frames if frame.record.tcp_flags & 0x01)
    assert server_fin == client_fin + 1  # the FINs crossed: the server's acknowledges up to the client's FIN only
    # The client's FIN had not reached the server when it sent its own (its ACK excludes it).
    assert finding(frames[client_fin - 1], "not_yet_received")[1] == (server_fin,)
    tail = slice(client_fin - 1, None)
    assert numbers[tail] == [client_fin, server_fin, server_fin + 1, server_fin + 2]
    assert states(frames, server)[tail] == ["ESTABLISHED", "FIN-WAIT-1", "CLOSING", "TIME-WAIT"]
    assert states(frames, client)[tail] == ["FIN-WAIT-1", "CLOSING", "TIME-WAIT", "TIME-WAIT"]
    assert "CLOSE-WAIT" not in states(frames, server) + states(frames, client)


def test_crafted_simultaneous_open_both_ends_pass_syn_received_and_no_syn_ack_is_a_retransmission() -> None:
    frames = frames_of("craft-simultaneous-open")
    kernel, crafted = 40001, 40000
    assert states(frames, kernel)[:5] == ["SYN-SENT", "SYN-RECEIVED", "SYN-RECEIVED", "ESTABLISHED", "ESTABLISHED"]
    assert states(frames, crafted)[:5] == ["CLOSED", "SYN-SENT", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED"]
    for synack in frames[2:4]:
        assert "simultaneous_open" in kinds(synack) and "retransmission" not in kinds(synack)
    assert finding(frames[2], "simultaneous_open")[1] == (1, 2)  # its own SYN, the peer's SYN
    # The kernel's SYN #1 crossed the crafted SYN #2: the crafted end had not received it.
    assert "not_yet_received" in kinds(frames[0])
    # Nor the kernel's SYN-ACK #3 when it sent its own SYN-ACK #4 (it stays SYN-SENT at #3): said, not silent.
    reason, refers = finding(frames[2], "not_yet_received")
    assert refers == (4,) and "still SYN-SENT" in reason


def test_refused_nothing_listened() -> None:
    syn, rst = frames_of("refused")
    assert syn.receiver_state == "CLOSED" and rst.state == "CLOSED"  # never LISTEN
    reason, refers = finding(rst, "no_listener")
    assert refers == (1,) and "nothing listened" in reason


def test_rst_injection_each_rst_judged_and_the_live_client_not_closed() -> None:
    frames = frames_of("craft-rst-injection")
    client, server = frames[0].record.source_port, 8093
    out_of_window, in_window, challenge, exact, fin = frames[5:10]
    assert (
        "rst_ignored" in kinds(out_of_window)
        and "outside the receive window" in finding(out_of_window, "rst_ignored")[0]
    )
    assert "rst_challenged" in kinds(in_window)
    assert finding(challenge, "challenge_ack")[1] == (7,) and "duplicate_ack" in kinds(challenge)
    assert "rst_accepted" in kinds(exact)
    for rst in (out_of_window, in_window, exact):
        assert finding(rst, "injected_rst")[1] == (10,)  # the client's socket sends FIN #10 afterwards
    assert states(frames, client)[5:] == ["ESTABLISHED"] * 4 + ["FIN-WAIT-1", "CLOSED"]
    assert states(frames, server)[5:] == ["ESTABLISHED", "ESTABLISHED", "ESTABLISHED", "CLOSED", "CLOSED", "CLOSED"]
    assert "state_anomaly" not in {kind for frame in frames for kind in kinds(frame)}


def test_loss_the_dropped_segment_is_not_received_and_the_fast_retransmission_counts_its_dup_acks() -> None:
    frames = frames_of("loss")
    by_number = {frame.record.number: frame for frame in frames}
    (fast,) = [frame for frame in frames if "fast_retransmission" in kinds(frame)]
    reason, refers = finding(fast, "fast_retransmission")
    original, duplicates = refers[0], refers[1:]
    assert by_number[original].seq == fast.seq and by_number[original].record.payload_length
    dup_acks = [
        frame.record.number
        for frame in frames
        if "duplicate_ack" in kinds(frame) and frame.record.number < fast.record.number
    ]
    assert list(duplicates) == dup_acks
    assert f"of #{original} after {len(duplicates)} duplicate ACKs" in reason
    # The dropped segment: never acknowledged before it was sent again, while later data was SACKed.
    reason, refers = finding(by_number[original], "not_received")
    assert refers[0] == fast.record.number and refers[1] in duplicates
    # Every duplicate ACK names its SACK blocks, relative like the rest.
    for number in duplicates:
        text, _ = finding(by_number[number], "duplicate_ack")
        assert "; SACK " in text
    first = by_number[duplicates[0]]
    (block,) = finding(first, "duplicate_ack")[0].split("; SACK ")[1].split(", ")
    left, right = (int(edge) for edge in block.split("-"))
    assert left == by_number[original].seq + by_number[original].record.payload_length and right > left


def test_bad_checksum_the_segment_is_discarded_and_its_twin_is_acknowledged() -> None:
    frames = frames_of("craft-bad-checksum")
    bad, good, ack = frames[3:6]
    assert bad.record.checksum == "bad" and good.record.checksum == "ok"
    reason, refers = finding(bad, "bad_checksum")
    assert refers == (5,) and "discarded" in reason
    assert finding(good, "retransmission")[1] == (4,)
    assert ack.ack == good.seq + good.record.payload_length


def test_a_capture_with_checksum_offload_has_no_discarded_segments() -> None:
    # Every frame of this third-party capture has a "bad" checksum (offload at the capture point),
    # yet each was acknowledged: nothing was discarded, and the states are the usual ones.
    corpus = Path(__file__).resolve().parents[1] / "data" / "corpus" / "captures"
    report = analyse_file(corpus / "zeek-retransmit-fast009.pcap", keep_frames=True)
    assert {frame.record.checksum for frame in report.frame_analyses[:5]} == {"bad"}
    assert report.analysis_counts["bad_checksum"] == 0 and report.analysis_counts["state_anomaly"] == 0
    assert report.frame_analyses[2].state == "ESTABLISHED"


def test_an_undecodable_frame_is_a_finding_in_both_the_report_and_the_per_frame_analysis(tmp_path: Path) -> None:
    """Frame 2 of the refused capture with its IPv4 version/length byte broken (0x45 -> 0x40)."""
    data = bytearray((SCENARIOS / "refused.pcap").read_bytes())
    first_length = int.from_bytes(data[24 + 8 : 24 + 12], "little")
    second_ip = 24 + 16 + first_length + 16 + 14
    assert data[second_ip] == 0x45
    data[second_ip] = 0x40
    broken = tmp_path / "broken.pcap"
    broken.write_bytes(bytes(data))
    report = analyse_file(broken, keep_frames=True)
    (undecoded,) = [finding for finding in report.findings if finding.kind == "undecoded"]
    assert undecoded.frame == 2 and "IPv4" in undecoded.reason
    assert report.undecoded_frames == 1
    assert [finding.kind for finding in report.frame_analyses[1].findings] == ["undecoded"]
    assert analyse_file(broken).undecoded_frames == 1  # the report-only path says the same
    # The SYN is left unanswered in what could be read.
    assert report.conversations[0].outcome == "unanswered"
