"""Sequence arithmetic across the 2**32 wrap (RFC 1982 serial-number rules), and an analysis that
does not depend on where the initial sequence numbers lie."""

from __future__ import annotations

import struct

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.packets import ACK, FIN, PSH, SYN, Conversation
from visualizer.analysis import analyse, analysis_names, sequence

sequences = st.integers(min_value=0, max_value=sequence.SEQUENCE_MASK)
steps = st.integers(min_value=1, max_value=sequence.HALF_SPACE - 1)


@given(sequences, steps)
def test_a_number_plus_a_step_comes_after_it_even_across_the_wrap(start: int, step: int) -> None:
    later = (start + step) & sequence.SEQUENCE_MASK
    assert sequence.less_than(start, later) and sequence.less_or_equal(start, later)
    assert not sequence.less_than(later, start) and not sequence.less_or_equal(later, start)
    assert sequence.relative(later, start) == step


@given(sequences)
def test_a_number_is_not_before_itself(value: int) -> None:
    assert not sequence.less_than(value, value)
    assert sequence.less_or_equal(value, value)


def test_the_wrap_itself() -> None:
    assert sequence.less_than(sequence.SEQUENCE_MASK, 0)
    assert sequence.relative(5, 0xFFFFFFFE) == 7


SACK_PERMITTED_WS7 = b"\x04\x02\x01\x03\x03\x07"


def sack(left: int, right: int) -> bytes:
    return b"\x01\x01\x05\x0a" + struct.pack("!II", left & 0xFFFFFFFF, right & 0xFFFFFFFF)


def lossy_conversation(client_isn: int, server_isn: int) -> Conversation:
    """Handshake, six 100-byte segments of which the second never arrives (SACKed around), a fast
    retransmission, the ACK of everything, a FIN teardown: every comparison the analysis makes."""
    c, s = client_isn, server_isn

    def cs(value: int) -> int:
        return (c + value) & 0xFFFFFFFF

    def ss(value: int) -> int:
        return (s + value) & 0xFFFFFFFF

    talk = (
        Conversation()
        .client_sends(0.000, c, 0, SYN, options=SACK_PERMITTED_WS7, window=64240)
        .server_sends(0.001, s, cs(1), SYN | ACK, options=SACK_PERMITTED_WS7, window=65160)
        .client_sends(0.002, cs(1), ss(1), ACK, window=502)
    )
    for index in range(6):
        talk.client_sends(0.003 + index * 0.0001, cs(1 + 100 * index), ss(1), PSH | ACK, b"x" * 100, window=502)
    talk.server_sends(0.004, ss(1), cs(101), ACK, window=509)
    for index, end in enumerate((301, 401, 501)):
        talk.server_sends(0.0041 + index * 0.0001, ss(1), cs(101), ACK, window=509, options=sack(cs(201), cs(end)))
    talk.client_sends(0.0045, cs(101), ss(1), PSH | ACK, b"x" * 100, window=502)
    talk.server_sends(0.005, ss(1), cs(601), ACK, window=509)
    # A stale copy of data from before the handshake (an old duplicate, RFC 9293 s3.4): its relative
    # sequence number is "negative", just below 2**32, and it must count as old, not as far ahead.
    talk.client_sends(0.0055, cs(-99), ss(1), PSH | ACK, b"x" * 50, window=502)
    talk.client_sends(0.006, cs(601), ss(1), FIN | ACK, window=502)
    talk.server_sends(0.007, ss(1), cs(602), FIN | ACK, window=509)
    talk.client_sends(0.008, cs(602), ss(2), ACK, window=502)
    return talk


def summary(client_isn: int, server_isn: int) -> list[tuple[object, ...]]:
    report = analyse(lossy_conversation(client_isn, server_isn).records(), keep_frames=True)
    return [
        (
            frame.seq,
            frame.ack,
            frame.next_seq,
            frame.window,
            frame.analysis,
            frame.state,
            frame.receiver_state,
            tuple((finding.kind, finding.refers_to, finding.reason) for finding in frame.findings),
        )
        for frame in report.frame_analyses
    ]


BASELINE = summary(1000, 5000)


def test_the_baseline_exercises_the_analysis() -> None:
    kinds = {finding[0] for row in BASELINE for finding in row[7]}
    assert {"duplicate_ack", "fast_retransmission", "not_received"} <= kinds
    assert BASELINE[-1][5:7] == ("TIME-WAIT", "CLOSED")
    stale = BASELINE[-4]
    assert stale[0] == (1 << 32) - 99  # relative seq "-99"
    names = analysis_names(stale[4])
    assert "spurious_retransmission" in names and "lost_segment" not in names, names


@settings(max_examples=60, deadline=None)
@given(sequences, sequences)
@example(0xFFFFFFFF - 250, 0xFFFFFFFF)  # the client's data wraps in the middle of the loss
@example(0xFFFFFF00, 0xFFFFFFFE)
@example(0, 0x7FFFFFFF)
def test_the_analysis_is_the_same_wherever_the_initial_sequence_numbers_lie(client: int, server: int) -> None:
    assert summary(client, server) == BASELINE
