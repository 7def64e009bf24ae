"""Chapter 3: a socket sends and receives at once (full duplex), and goes on receiving after its FIN."""

from __future__ import annotations

from pathlib import Path

import pytest

from visualizer import chapters
from visualizer.chapters import Experiment
from visualizer.chapters.duplex import call_overlaps, full_duplex, half_close, state_at

DATA = Path(__file__).parent.parent / "data"
RECORDED = DATA / "chapters"
CAPTURES = DATA / "scenarios" / "captures"
PAYLOAD = 60_000  # each end of the full-duplex scenario writes this much


def check_full_duplex(experiment: Experiment, *, piggybacked: bool = True) -> None:
    """Crossing segments and overlapping calls (always, on this path); with ``piggybacked``, at least
    one data segment carrying a new acknowledgement (how many depends on when each end's kernel gets
    to process what it received: on a busy machine, a live run may have none)."""
    frames = experiment.frames_of(0)
    measured = full_duplex(frames)
    client, server = measured.directions
    assert (client.data_bytes, server.data_bytes) == (PAYLOAD, PAYLOAD)
    assert measured.both_ways_ns is not None and measured.both_ways_ns[1] > measured.both_ways_ns[0]
    # each end sent data before acknowledging data the other end had already sent: the segments crossed
    assert client.crossing and server.crossing
    crossing = measured.first_crossing
    assert crossing is not None
    by_number = {frame.record.number: frame for frame in frames}
    earlier, later = by_number[crossing.earlier], by_number[crossing.later]
    assert earlier.from_initiator != later.from_initiator and earlier.record.number < later.record.number
    assert earlier.record.payload_length and later.record.payload_length
    assert later.ack < earlier.next_seq, "the later segment does not acknowledge the earlier one's bytes"
    # ACKs ride on data: data segments that acknowledge bytes of the peer that no ACK had acknowledged yet
    assert client.piggybacked + server.piggybacked == len(measured.piggybacked_frames) >= piggybacked
    for number in measured.piggybacked_frames:
        frame = by_number[number]
        assert frame.record.payload_length
        before = [f.ack for f in frames if f.from_initiator == frame.from_initiator and f.record.number < number]
        assert frame.ack > max(before)
    # the strongest proof: a send() and a recv() of one socket in the kernel at the same time, two threads
    overlaps = call_overlaps(experiment.endpoints())
    assert overlaps, "no socket had a send() and a recv() in progress at once"
    for overlap in overlaps:
        assert overlap.send.thread != overlap.recv.thread
        assert overlap.send.time_ns < overlap.recv.end_ns and overlap.recv.time_ns < overlap.send.end_ns
    # each writer's send() took in all its bytes at once, while its socket went on receiving
    sends = [call for endpoint in experiment.endpoints() for call in endpoint.calls if call.call == "send"]
    assert sorted(call.result for call in sends) == [PAYLOAD, PAYLOAD]
    assert {overlap.send for overlap in overlaps} <= set(sends)


def check_half_close(experiment: Experiment) -> None:
    measured = half_close(experiment.frames_of(0), experiment.endpoints())
    assert measured is not None
    frames = {frame.record.number: frame for frame in experiment.frames_of(0)}
    assert measured.fin < measured.fin_acknowledged <= measured.data_after_fin[-1] < measured.peer_fin
    assert all(frames[number].record.payload_length for number in measured.data_after_fin)
    assert set(measured.closer_states) == {"FIN-WAIT-2"} and set(measured.peer_states) == {"CLOSE-WAIT"}
    # the kernel's side: shutdown(SHUT_WR) sent the FIN, and the closer read every byte sent after it
    assert measured.shutdown is not None
    fin = frames[measured.fin].record.timestamp_ns or 0
    assert measured.shutdown.time_ns <= fin <= measured.shutdown.end_ns
    assert measured.bytes_read_after_shutdown == measured.bytes_after_fin > 0
    for number in measured.data_after_fin:
        arrived = frames[number].record.timestamp_ns or 0
        assert state_at(measured.peer_kernel, arrived) == "CLOSE-WAIT"
        assert state_at(measured.closer_kernel, arrived) in ("FIN-WAIT-1", "FIN-WAIT-2")
    last = frames[measured.data_after_fin[-1]].record.timestamp_ns or 0
    assert state_at(measured.closer_kernel, last) == "FIN-WAIT-2"


def test_the_recorded_full_duplex_run_crosses_piggybacks_and_overlaps_its_calls() -> None:
    check_full_duplex(chapters.load(RECORDED / "full-duplex.pcap"))


def test_a_segment_sent_again_is_one_more_segment_but_not_more_bytes() -> None:
    frames = chapters.load(RECORDED / "full-duplex.pcap").frames_of(0)
    sent_again = next(frame for frame in frames if frame.record.payload_length and frame.from_initiator)
    client, _ = full_duplex([*frames, sent_again]).directions  # as if the first data segment went twice
    before, _ = full_duplex(frames).directions
    assert (client.data_segments, client.data_bytes) == (before.data_segments + 1, PAYLOAD)


def test_the_recorded_half_close_reads_after_its_fin() -> None:
    check_half_close(chapters.load(RECORDED / "half-close.pcap"))


def test_a_one_way_transfer_has_nothing_crossing_and_nothing_half_closed() -> None:
    bulk = chapters.load(CAPTURES / "bulk.pcap")
    measured = full_duplex(bulk.frames_of(0))
    assert measured.first_crossing is None and measured.crossing_frames == () and measured.both_ways_ns is None
    assert measured.directions[1].data_segments == 0 and measured.directions[1].pure_acks > 0
    assert half_close(bulk.frames_of(0)) is None  # the FIN came when the data was done


def test_data_both_ways_one_after_the_other_is_not_crossing() -> None:
    """An older run of the scenario (both writers started apart): the client's 60 KB went first, then the server's."""
    experiment = chapters.load(CAPTURES / "full-duplex.pcap")
    measured = full_duplex(experiment.frames_of(0))
    assert all(direction.data_segments > 30 for direction in measured.directions)
    assert measured.first_crossing is None and measured.both_ways_ns is None
    assert call_overlaps(experiment.endpoints()) == []  # no recording: no calls


def test_a_half_close_without_a_recording_has_no_calls() -> None:
    measured = half_close(chapters.load(CAPTURES / "half-close.pcap").frames_of(0))
    assert measured is not None and measured.data_after_fin and measured.shutdown is None
    assert measured.reads_after_shutdown == ()


@pytest.mark.root
def test_full_duplex_for_real(tmp_path: Path) -> None:
    check_full_duplex(chapters.run("full-duplex", tmp_path), piggybacked=False)


@pytest.mark.root
def test_half_close_for_real(tmp_path: Path) -> None:
    check_half_close(chapters.run("half-close", tmp_path))
