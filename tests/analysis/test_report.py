"""Stream membership: one rule for the CLI, the ingest module and the ladder; reports between processes."""

from __future__ import annotations

import pickle

from tests.packets import SYN, decode_all, ethernet, ipv4, tcp, udp
from visualizer.analysis import Analyzer
from visualizer.analysis.report import ConversationSummary, Finding, in_stream


def test_a_frame_is_in_its_own_protocols_stream_only() -> None:
    records = decode_all(
        [
            (0, ethernet(ipv4("10.0.0.1", "10.0.0.2", 6, tcp(40000, 80, 1, 0, SYN)))),
            (0.1, ethernet(ipv4("10.0.0.1", "10.0.0.2", 17, udp(5000, 53, b"q")))),
        ]
    )
    segment, datagram = Analyzer().frames(records)
    assert segment.stream == datagram.stream == 0
    assert in_stream(segment, "tcp", 0) and not in_stream(segment, "udp", 0) and not in_stream(segment, "tcp", 1)
    assert in_stream(datagram, "udp", 0) and not in_stream(datagram, "tcp", 0)


def test_an_icmp_error_is_in_the_stream_it_quotes() -> None:
    datagram = ipv4("10.0.0.1", "10.0.0.2", 17, udp(5000, 9, b"x"))
    unreachable = ipv4("10.0.0.2", "10.0.0.1", 1, bytes([3, 3, 0, 0, 0, 0, 0, 0]) + datagram)
    sent, error = Analyzer().frames(decode_all([(0, ethernet(datagram)), (0, ethernet(unreachable))]))
    assert error.protocol == "icmp" and error.stream == sent.stream == 0
    assert in_stream(error, "udp", 0) and not in_stream(error, "tcp", 0)


def test_findings_and_conversations_cross_processes_whole() -> None:
    # Parallel workers pickle their reports: every field, in its place, comes back.
    finding = Finding("retransmission", 9, "tcp", 2, "seq 5 again", (4,), 4)
    conversation = ConversationSummary("tcp", 3, "10.0.0.1", 40000, "10.0.0.2", 80, 7, 1_000, 2_000, 4, 400, 3, 30)
    conversation.outcome, conversation.state_a, conversation.state_b = "reset", "CLOSED", "TIME-WAIT"
    conversation.analysis_counts["retransmission"] = 1
    for item in (finding, conversation):
        copy = pickle.loads(pickle.dumps(item))
        assert copy == item and copy is not item
