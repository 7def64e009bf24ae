"""Chapter 5, "How do we know a request arrived?": its measurements on committed recordings, and
its answer asserted on experiments run for real (root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from visualizer import chapters
from visualizer.chapters import arrival
from visualizer.errors import UsageError

DATA = Path(__file__).parent.parent / "data"
KERNEL = DATA / "kernel"
CAPTURES = DATA / "scenarios" / "captures"


def check_loss(repair: arrival.LossRecovery) -> None:
    """The dropped segment's bytes were sent again after at least three duplicate ACKs, then acknowledged."""
    assert repair.drop_reason == "NETFILTER_DROP"  # the receiving kernel's own record of that frame
    assert len(repair.duplicate_acks) >= arrival.DUPACK_THRESHOLD  # RFC 5681 s3.2
    assert all(repair.lost < number < repair.retransmission for number in repair.duplicate_acks)
    assert repair.fast and repair.kernel_retransmission
    # RFC 2018: the SACK block starts where the hole ends (what arrived after it)
    assert repair.sack_blocks and repair.sack_blocks[0][0] == repair.end
    assert repair.acked_by > repair.retransmission and repair.ack >= repair.end
    assert repair.released == repair.ack - repair.first  # the bytes behind the hole, readable at once


def check_backoff(waits: arrival.Backoff) -> None:
    """RFC 6298 s5.5: the timeout doubles; a wait is its timeout plus the timer's lateness, never less."""
    assert len(waits.retransmissions) >= 3
    assert all(gap >= floor for gap, floor in zip(waits.gaps_ns, waits.floors_ns())), waits.gaps_ns
    assert all(shorter < longer for shorter, longer in zip(waits.gaps_ns, waits.gaps_ns[1:]))
    assert waits.counted_by_kernel == waits.retransmissions


def check_keepalives(probes: list[arrival.KeepAlive]) -> None:
    assert len(probes) >= 2
    for probe in probes:
        assert probe.seq == probe.expected - 1  # one byte before the next expected (RFC 9293 s3.8.4)
        assert probe.answer > probe.probe and probe.answer_ack == probe.expected
        assert probe.drop_reason == "TCP_OLD_SEQUENCE"


def check_refusal(answer: arrival.Refusal) -> None:
    # RFC 9293 s3.10.7.1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>, the SYN counting one
    assert answer.reset_flags == "RST|ACK" and answer.reset_seq == 0
    assert answer.reset_ack == (answer.syn_seq + 1) & 0xFFFFFFFF
    assert answer.reset_sent_by_kernel and answer.reset_received_by_kernel


def test_every_segment_of_the_story_is_acknowledged_by_the_next_ack_of_its_peer() -> None:
    sent = arrival.acknowledgements(chapters.load(KERNEL / "story.pcap"))
    assert [(item.frame, item.flags, item.first, item.end, item.acked_by) for item in sent] == [
        (1, "SYN", 0, 1, 2),
        (2, "SYN|ACK", 0, 1, 3),
        (4, "PSH|ACK", 1, 13, 5),
        (6, "PSH|ACK", 1, 28, 7),
        (8, "FIN|ACK", 13, 14, 9),
        (9, "FIN|ACK", 28, 29, 10),
    ]
    assert all(item.ack >= item.end and item.delay_ns > 0 for item in sent)


def test_data_nobody_acknowledges_has_no_ack_and_its_retransmissions_are_not_listed() -> None:
    sent = arrival.acknowledgements(chapters.load(KERNEL / "craft-silent-client.pcap"))
    answer = [item for item in sent if item.flags == "PSH|ACK" and not item.from_initiator]
    assert [(item.frame, item.acked_by, item.ack) for item in answer] == [(6, 0, 0)]


def test_the_lost_segment_is_the_one_the_kernel_dropped_and_it_is_repaired() -> None:
    repair = arrival.loss_recovery(chapters.load(KERNEL / "loss.pcap"))
    check_loss(repair)
    assert (repair.lost, repair.first, repair.end, repair.retransmission) == (14, 4941, 5929, 49)


def test_without_a_recording_the_lost_segment_is_the_one_the_analysis_finds_not_received() -> None:
    repair = arrival.loss_recovery(chapters.load(CAPTURES / "loss.pcap"))
    assert (repair.lost, repair.retransmission, repair.drop_reason, repair.released) == (14, 43, "", -1)
    assert not repair.kernel_retransmission and repair.fast


def test_a_capture_without_a_loss_says_so() -> None:
    with pytest.raises(UsageError, match="story.pcap: no lost segment"):
        arrival.loss_recovery(chapters.load(KERNEL / "story.pcap"))


def test_the_silent_peer_s_timeout_doubles() -> None:
    waits = arrival.backoff(chapters.load(KERNEL / "craft-silent-client.pcap"))
    check_backoff(waits)
    assert (waits.original, waits.retransmissions) == (6, (7, 8, 9, 10))
    assert all(1.9 < ratio < 2.1 for ratio in waits.ratios), waits.ratios


def test_a_tail_loss_probe_first_breaks_the_doubling_and_the_check_says_so() -> None:
    """The older capture was made with Linux's tail loss probe on: 205, 208, 428, 836 ms. The probe
    comes at about the first timeout, so the second wait is no double of the first."""
    waits = arrival.backoff(chapters.load(CAPTURES / "craft-silent-client.pcap"))
    assert [round(gap / 1e6) for gap in waits.gaps_ns] == [205, 208, 428, 836]
    with pytest.raises(AssertionError):
        check_backoff(waits)


def test_keepalive_probes_are_old_bytes_answered_and_dropped() -> None:
    probes = arrival.keepalives(chapters.load(KERNEL / "keepalive.pcap"))
    check_keepalives(probes)
    assert [probe.probe for probe in probes] == [6, 8, 10]
    assert all(900_000_000 < probe.idle_ns < 1_500_000_000 for probe in probes)  # TCP_KEEPIDLE, TCP_KEEPINTVL: 1 s


def test_a_syn_to_a_closed_port_gets_a_reset_that_acknowledges_it() -> None:
    check_refusal(arrival.refusal(chapters.load(KERNEL / "refused.pcap")))


def test_a_datagram_to_a_closed_port_gets_an_icmp_port_unreachable_quoting_it() -> None:
    error = arrival.port_unreachable(chapters.load(CAPTURES / "udp-closed-port.pcap"))
    assert (error.datagram, error.icmp, error.icmp_type, error.icmp_code) == (1, 2, 3, 3)
    assert error.quoted_ports[1] == error.destination_port == 5354


@pytest.mark.root
def test_the_chapter_s_answer_on_experiments_run_for_real(tmp_path: Path) -> None:
    check_loss(arrival.loss_recovery(chapters.run("loss", tmp_path)))
    check_backoff(arrival.backoff(chapters.run("craft-silent-client", tmp_path)))
    check_keepalives(arrival.keepalives(chapters.run("keepalive", tmp_path)))
    check_refusal(arrival.refusal(chapters.run("refused", tmp_path)))
    error = arrival.port_unreachable(chapters.run("udp-closed-port", tmp_path))
    assert (error.icmp_type, error.icmp_code, error.quoted_ports[1]) == (3, 3, 5354)
    story = arrival.acknowledgements(chapters.run("story", tmp_path))
    assert len(story) == 6 and all(item.acked_by and item.ack >= item.end for item in story)
