"""Chapter 2: one send() cut into MSS-sized segments, small writes with and without Nagle, UDP datagrams."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from tests.packets import ACK, PSH, SYN, Conversation
from visualizer import chapters
from visualizer.analysis import analyse, analysis_names
from visualizer.chapters import segments
from visualizer.errors import UsageError
from visualizer.render.layout import Arrow, Fold
from visualizer.scenarios.kernel import BULK_BYTES, BULK_MSS, NAGLE_WRITES, UDP_DATAGRAM_SIZES, UDP_DATAGRAMS_MTU

DATA = Path(__file__).parent.parent / "data"
CAPTURES = DATA / "scenarios" / "captures"
TIMESTAMPS = 12  # RFC 7323 s3's option, padded: in every segment of these connections
SENT = BULK_BYTES // 256 * 256  # the scenario sends whole runs of bytes 0..255


def check_bulk(cut: segments.BulkCut) -> None:
    assert cut.mss == BULK_MSS and cut.segment_size == BULK_MSS - TIMESTAMPS == cut.largest
    assert cut.sent == SENT == sum(segment.length for segment in cut.segments)
    assert all(0 < segment.length <= cut.segment_size for segment in cut.segments)
    assert cut.expected == math.ceil(SENT / (BULK_MSS - TIMESTAMPS))
    if not cut.short:  # every segment full but the last: the fewest that can carry the bytes
        assert len(cut.segments) == cut.expected
    else:  # a segment ended early costs at most one more
        assert cut.expected <= len(cut.segments) <= cut.expected + len(cut.short)


def test_the_committed_bulk_capture_is_cut_at_the_mss_less_the_timestamps() -> None:
    cut = segments.bulk_cut(chapters.load(CAPTURES / "bulk.pcap"))
    check_bulk(cut)
    assert cut.send_calls is None  # no kernel recording beside it
    assert f"became {len(cut.segments)} segments" in cut.text() and "of at most 988 bytes" in cut.text()


def test_a_late_first_copy_labelled_a_retransmission_still_counts_once() -> None:
    """Reordered on the way (two CPUs), a first transmission that comes too late for Wireshark's
    out-of-order rule is labelled a retransmission; its bytes were sent once all the same."""
    mss = b"\x02\x04\x03\xe8"  # MSS 1000
    talk = (
        Conversation()
        .client_sends(0.000, 1000, 0, SYN, options=mss)
        .server_sends(0.001, 5000, 1001, SYN | ACK, options=mss)
        .client_sends(0.002, 1001, 5001, ACK)
        .client_sends(0.003, 1101, 5001, PSH | ACK, b"b" * 100)  # bytes 101-200 first
        .client_sends(0.400, 1001, 5001, PSH | ACK, b"a" * 100)  # bytes 1-100, late: "retransmission"
        .client_sends(0.401, 1001, 5001, PSH | ACK, b"a" * 100)  # and a real retransmission of them
    )
    report = analyse(talk.records(), keep_frames=True)
    frames = list(report.frame_analyses)
    assert "retransmission" in analysis_names(frames[4].analysis)
    cut = segments.bulk_cut(chapters.Experiment("reordered", Path("reordered.pcap"), report, frames, None))
    assert [(segment.frame, segment.length) for segment in cut.segments] == [(5, 100), (4, 100)]
    assert cut.sent == 200


def test_a_run_reordered_on_two_cpus_is_cut_and_folded_like_any_other() -> None:
    """A live run where the receiver's per-CPU queues reordered 50 segments (Wireshark: out of order,
    and retransmissions with no earlier copy): each byte counted once, the out-of-order runs folded."""
    experiment = chapters.load(DATA / "chapters" / "bulk-reordered.pcap")
    cut = segments.bulk_cut(experiment)
    assert cut.send_calls == 1
    check_bulk(cut)
    layout = experiment.ladder(0)
    folded = " ".join(line for row in layout.rows if isinstance(row, Fold) for line in row.lines)
    counts = [int(number) for number in re.findall(r"(\d+) out of order", folded)]
    rows = [row for row in layout.rows if isinstance(row, Arrow) and "out_of_order" in row.analysis]
    out_of_order = [frame for frame in experiment.frames if "out_of_order" in analysis_names(frame.analysis)]
    assert len(rows) + sum(counts) == len(out_of_order) > 40 and len(rows) <= 2  # the first a row, the rest counted
    assert len(layout.rows) < 40  # 309 frames: before, 140 rows


def test_nagle_carries_many_writes_in_a_segment_and_no_delay_one_each() -> None:
    experiment = chapters.load(DATA / "kernel" / "nagle.pcap")
    nagle, no_delay = (segments.writes_and_segments(experiment, stream) for stream in (0, 1))
    assert nagle.writes == no_delay.writes == NAGLE_WRITES
    assert nagle.written == no_delay.written == NAGLE_WRITES * 10
    assert len(no_delay.segments) == NAGLE_WRITES and set(no_delay.writes_per_segment) == {1} and no_delay.no_delay
    assert len(nagle.segments) < NAGLE_WRITES and nagle.largest > 1 and not nagle.no_delay
    assert sum(nagle.writes_per_segment) >= NAGLE_WRITES  # every write rode in some segment


def test_writes_need_the_kernel_recording() -> None:
    with pytest.raises(UsageError, match="nagle.pcap: no kernel recording"):
        segments.writes_and_segments(chapters.load(CAPTURES / "nagle.pcap"), 0)


def test_without_a_recording_each_datagram_is_the_frame_that_carried_it() -> None:
    boundaries = segments.datagram_boundaries(chapters.load(CAPTURES / "udp.pcap"))  # the answers: the most bytes
    answers = [b"answer to who is there?", b"answer to and now?"]
    assert [datagram.sent for datagram in boundaries.datagrams] == [len(answer) for answer in answers]
    assert all(datagram.received is None for datagram in boundaries.datagrams) and not boundaries.kept


def check_datagrams(boundaries: segments.DatagramBoundaries) -> None:
    """Each sendto() one datagram, read whole by one recvfrom(); the largest in RFC 791's fragments."""
    assert [datagram.sent for datagram in boundaries.datagrams] == list(UDP_DATAGRAM_SIZES)
    assert [datagram.received for datagram in boundaries.datagrams] == list(UDP_DATAGRAM_SIZES) and boundaries.kept
    assert all(datagram.asked == 65536 for datagram in boundaries.datagrams)
    *whole, large = boundaries.datagrams
    assert all(not datagram.fragments for datagram in whole)
    assert len(large.fragments) + 1 == segments.fragments_needed(UDP_DATAGRAM_SIZES[-1], UDP_DATAGRAMS_MTU) == 3
    assert sum(large.fragment_bytes) == UDP_DATAGRAM_SIZES[-1] + segments.UDP_HEADER_BYTES
    assert all(size % 8 == 0 for size in large.fragment_bytes[:-1])  # RFC 791 s3.1: offsets in 8-byte units
    assert boundaries.mtu == UDP_DATAGRAMS_MTU


def test_the_recorded_datagrams_each_came_out_of_one_recvfrom() -> None:
    boundaries = segments.datagram_boundaries(chapters.load(DATA / "kernel" / "udp-datagrams.pcap"))
    check_datagrams(boundaries)
    assert boundaries.text().splitlines()[-1] == (
        "sendto(4,000) -> 3 IP fragments (frames 5, 6, 7: 1,480 + 1,480 + 1,048 bytes of IP payload) "
        "-> recvfrom(65,536) -> 4,000"
    )


def test_fragments_follow_rfc_791() -> None:
    assert segments.fragments_needed(4000, 1500) == 3  # 4,008 bytes in pieces of 1,480
    assert segments.fragments_needed(1472, 1500) == 1 and segments.fragments_needed(1473, 1500) == 2


@pytest.mark.root
def test_one_send_becomes_ceil_n_over_the_segment_size_segments(tmp_path: Path) -> None:
    cut = segments.bulk_cut(chapters.run("bulk", tmp_path))
    assert cut.send_calls == 1  # the kernel saw one send() of every byte
    check_bulk(cut)


@pytest.mark.root
def test_each_recvfrom_returns_exactly_one_datagram(tmp_path: Path) -> None:
    check_datagrams(segments.datagram_boundaries(chapters.run("udp-datagrams", tmp_path)))
