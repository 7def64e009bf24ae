"""Chapter 6, "How does a segment keep its integrity?": the checksum by hand, the discarded segment
and its acknowledged twin, RST acceptance (RFC 5961), on committed recordings and run for real (root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from visualizer import chapters
from visualizer.chapters import integrity
from visualizer.errors import UsageError
from visualizer.sources.checksum import ones_complement_sum

DATA = Path(__file__).parent.parent / "data"
KERNEL = DATA / "kernel"
CAPTURES = DATA / "scenarios" / "captures"


def check_twin(twin: integrity.DiscardedTwin) -> None:
    assert twin.checksum_verdict == "bad" and twin.drop_reason == "TCP_CSUM"  # the kernel's own drop
    assert twin.acks_before_twin == ()  # never ACKed
    assert twin.twin_verdict == "ok" and twin.acked_by > twin.twin and twin.ack == twin.end


def check_resets(tests: list[integrity.ResetTest]) -> None:
    """RFC 5961 s3.2, with the kernel's own record of each RST."""
    assert [(test.verdict, test.kernel) for test in tests] == [
        ("ignored", "TCP_INVALID_SEQUENCE"),
        ("challenged", "TCP_RESET"),
        ("accepted", "reset_received"),
    ]
    outside, inside, exact = tests
    assert outside.offset >= outside.window and not outside.challenge_ack
    assert 0 < inside.offset < inside.window and inside.challenge_ack > inside.frame
    assert exact.offset == 0 and not exact.challenge_ack


def test_the_checksum_by_hand_is_the_one_in_the_field() -> None:
    working = integrity.checksum_of(chapters.load(KERNEL / "craft-bad-checksum.pcap"), 5)
    assert [len(working.part(part)) for part in ("pseudo-header", "TCP header", "payload")] == [6, 10, 6]
    assert working.part("TCP header")[8] == integrity.Word("TCP header", "checksum (as zero)", 0)
    assert working.total == sum(word.value for word in working.words)
    assert working.folded == (working.total & 0xFFFF) + (working.total >> 16) and working.folded <= 0xFFFF
    assert working.checksum == 0xFFFF - working.folded == working.stored and working.verdict == "ok"
    # the receiver's check: the sum with the field in it is all ones (RFC 1071 s1)
    assert ones_complement_sum(b"", working.folded + working.stored) == 0xFFFF


def test_the_bad_segment_needs_the_checksum_of_its_twin() -> None:
    bad = integrity.checksum_of(chapters.load(KERNEL / "craft-bad-checksum.pcap"), 4)
    good = integrity.checksum_of(chapters.load(KERNEL / "craft-bad-checksum.pcap"), 5)
    assert bad.stored == 0xBAD0 and bad.verdict == "bad"
    assert bad.checksum == good.checksum == good.stored  # the same bytes


def test_a_loopback_segment_of_the_kernel_holds_the_pseudo_header_sum() -> None:
    working = integrity.checksum_of(chapters.load(KERNEL / "story.pcap"), 4)
    # 127.0.0.1 twice, protocol 6, 44 bytes of TCP: 7f00 + 0001 + 7f00 + 0001 + 0006 + 002c
    assert working.pseudo_sum == working.stored == 0xFE34 and working.verdict == "partial"
    assert working.checksum != working.stored


def test_an_odd_payload_is_padded_with_a_zero_byte() -> None:
    header = bytes.fromhex("4500002a00010000400600007f0000017f000001")  # IPv4, 42 bytes: 20 + 20 + 2
    segment = bytes.fromhex("9c401f90000003e9000000005010faf000000000") + b"a!"
    working = integrity.checksum_working(header + segment, link_type=101)  # raw IP
    assert working.part("payload") == (integrity.Word("payload", "bytes 1-2", 0x6121),)
    odd = integrity.checksum_working(header[:3] + b"\x29" + header[4:] + segment[:-1], link_type=101)
    assert odd.part("payload") == (integrity.Word("payload", "bytes 1-2", 0x6100),)


def test_what_is_not_ipv4_tcp_is_refused_and_a_missing_frame_is_named() -> None:
    with pytest.raises(UsageError, match="not an IPv4 TCP segment"):
        integrity.checksum_of(chapters.load(CAPTURES / "udp-closed-port.pcap"), 1)
    with pytest.raises(UsageError, match="story.pcap: no frame 99"):
        integrity.checksum_of(chapters.load(KERNEL / "story.pcap"), 99)


def test_the_bad_segment_is_dropped_by_the_kernel_and_its_twin_acknowledged() -> None:
    twin = integrity.discarded_twin(chapters.load(KERNEL / "craft-bad-checksum.pcap"))
    check_twin(twin)
    assert (twin.bad, twin.twin, twin.acked_by, twin.end) == (4, 5, 6, 13)


def test_without_a_recording_the_drop_is_not_claimed() -> None:
    twin = integrity.discarded_twin(chapters.load(CAPTURES / "craft-bad-checksum.pcap"))
    assert twin.drop_reason == "" and twin.checksum_verdict == "bad"
    with pytest.raises(AssertionError):
        check_twin(twin)


def test_injected_resets_are_judged_by_their_place_in_the_window() -> None:
    tests = integrity.reset_tests(chapters.load(KERNEL / "craft-rst-injection.pcap"))
    check_resets(tests)
    assert [(test.frame, test.offset) for test in tests] == [(6, 1 << 30), (7, 100), (9, 0)]


@pytest.mark.root
def test_the_chapter_s_answer_on_experiments_run_for_real(tmp_path: Path) -> None:
    crafted = chapters.run("craft-bad-checksum", tmp_path)
    twin = integrity.discarded_twin(crafted)
    check_twin(twin)
    bad, good = integrity.checksum_of(crafted, twin.bad), integrity.checksum_of(crafted, twin.twin)
    assert (bad.verdict, good.verdict) == ("bad", "ok") and bad.checksum == good.stored
    story = chapters.run("story", tmp_path)
    kernel = [frame.record.number for frame in story.frames_of(0)]
    assert {integrity.checksum_of(story, number).verdict for number in kernel} == {"partial"}
    check_resets(integrity.reset_tests(chapters.run("craft-rst-injection", tmp_path)))
