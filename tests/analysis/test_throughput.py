"""Throughput, sans-IO: running totals, steady and windowed rates, and the measures of a real capture."""

from __future__ import annotations

from pathlib import Path

import pytest

from visualizer.analysis.throughput import (
    Progress,
    ack_round_trips,
    acknowledged,
    advertised_window,
    compare_runs,
    data_direction,
    in_flight,
    on_the_wire,
    overall_rate,
    progress_of,
    rates_over_time,
    steady_rate,
    window_for,
)
from visualizer.errors import UsageError
from visualizer.model import ACK
from visualizer.pipeline import select_streams

DATA = Path(__file__).parent.parent / "data"
RATE_LIMITED = DATA / "throughput" / "throughput-rate-1mbit.pcap"
DELAYED = DATA / "throughput" / "throughput-rcvbuf-4096-delay-20ms-reno.pcap"
NAGLE = DATA / "scenarios" / "captures" / "nagle.pcap"
MS = 1_000_000


def test_a_running_total_never_goes_back_and_merges_equal_times() -> None:
    progress = progress_of([(0, 0), (10, 100), (10, 150), (20, 120), (30, 400)])
    assert progress.points == ((0, 0), (10, 150), (20, 150), (30, 400))
    assert progress.total == 400
    assert progress.time_reaching(150) == 10 and progress.time_reaching(151) == 30
    assert progress.at(-1) == 0 and progress.at(19) == 150 and progress.at(30) == 400


def test_steady_rate_leaves_out_a_slow_start_and_a_slow_end() -> None:
    # 100 bytes in the first 100 ms (slow), then 1000 bytes per ms for 8 ms, then 100 bytes in 100 ms.
    counts = [(0, 0), (100 * MS, 100)]
    counts += [(100 * MS + index * MS, 100 + index * 1000) for index in range(1, 9)]
    counts += [(208 * MS + 100 * MS, 8200)]
    progress = progress_of(counts)
    steady = steady_rate(progress)
    # 10% of 8200 is reached at 101 ms (1100 bytes), 90% (7380) at 108 ms (8100 bytes): 7000 bytes in 7 ms.
    assert (steady.start_ns, steady.end_ns, steady.bytes) == (101 * MS, 108 * MS, 7000)
    assert steady.per_second == pytest.approx(1_000_000)
    overall = overall_rate(progress)
    assert overall.bytes == 8200 and overall.end_ns == 308 * MS
    assert overall.per_second < steady.per_second / 20
    with pytest.raises(UsageError):
        steady_rate(progress, low=0.9, high=0.1)


def test_rates_over_time_count_what_each_window_gained_and_the_tail_joins_the_last() -> None:
    progress = progress_of([(0, 0), (5 * MS, 500), (15 * MS, 1500), (24 * MS, 2400)])
    rates = rates_over_time(progress, 10 * MS)
    assert [(rate.start_ns, rate.end_ns, rate.bytes) for rate in rates] == [(0, 10 * MS, 500), (10 * MS, 24 * MS, 1900)]
    assert rates[0].per_second == pytest.approx(50_000)
    # a tail of at least half a window stays a window of its own, ending with the transfer
    rates = rates_over_time(progress_of([(0, 0), (16 * MS, 1600)]), 10 * MS)
    assert [(rate.end_ns, rate.bytes) for rate in rates] == [(10 * MS, 0), (16 * MS, 1600)]
    assert rates_over_time(Progress(()), MS) == ()
    with pytest.raises(UsageError):
        rates_over_time(progress, 0)


def test_window_for_picks_a_round_length() -> None:
    assert window_for(3_000 * MS) == 100 * MS
    assert window_for(60 * MS) == 2 * MS
    assert window_for(0) == 100_000


@pytest.fixture(scope="module")
def limited() -> list:  # type: ignore[type-arg]
    return select_streams(RATE_LIMITED, "tcp", [0])[1]


def test_the_capture_s_goodput_is_its_bytes_acknowledged(limited: list) -> None:  # type: ignore[type-arg]
    direction = data_direction(limited)
    assert direction is not None
    assert direction.receiver == ("127.0.0.1", 8093) and direction.payload == 125_000
    assert direction.segment_size == 1448
    progress = acknowledged(limited, direction)
    assert progress.points[0] == (direction.first_data_ns, 0) and progress.total == 125_000
    # the last point is the ACK of the last byte, counted from the records themselves
    last_ack = next(
        frame
        for frame in limited
        if frame.record.source_port == 8093 and frame.record.tcp_flags & ACK and frame.ack >= direction.end
    )
    assert progress.time_reaching(125_000) == last_ack.record.timestamp_ns
    assert all(earlier[1] < later[1] for earlier, later in zip(progress.points, progress.points[1:]))
    overall = overall_rate(progress)
    assert overall.bytes == 125_000
    assert overall.end_ns - overall.start_ns == last_ack.record.timestamp_ns - direction.first_data_ns
    # under a 1 Mbit/s limit on the data's frames, the steady goodput is 1448/1514 of it, within 10%
    assert steady_rate(progress).bits_per_second == pytest.approx(1_000_000 * 1448 / 1514, rel=0.1)


def test_on_the_wire_counts_the_sender_s_whole_frames(limited: list) -> None:  # type: ignore[type-arg]
    direction = data_direction(limited)
    assert direction is not None
    wire = on_the_wire(limited, direction.sender)
    sent = [frame.record.original_length for frame in limited if frame.record.source_port == direction.sender[1]]
    assert wire.total == sum(sent) and wire.total > direction.payload
    assert on_the_wire(limited).total == sum(frame.record.original_length for frame in limited)
    assert steady_rate(wire).bits_per_second == pytest.approx(1_000_000, rel=0.1)


def test_bytes_in_flight_never_exceed_the_window_last_advertised(limited: list) -> None:  # type: ignore[type-arg]
    direction = data_direction(limited)
    assert direction is not None
    windows = advertised_window(limited, direction)
    flights = in_flight(limited, direction)
    assert len(flights) == sum(1 for frame in limited if frame.record.payload_length)
    for time_ns, flight in flights:
        latest = [window for window_ns, window in windows if window_ns <= time_ns]
        assert 0 < flight <= latest[-1]


def test_compare_runs_measures_each_stream_on_one_window() -> None:
    _, frames = select_streams(NAGLE, "tcp", ())
    runs = [
        (label, [frame for frame in frames if frame.stream == stream]) for stream, label in enumerate(("on", "off"))
    ]
    measured = compare_runs(runs)
    assert [run.label for run in measured] == ["on", "off"]
    assert [run.acknowledged.total for run in measured] == [300, 300]  # 30 writes of 10 bytes each
    assert len({run.over_time[0].end_ns - run.over_time[0].start_ns for run in measured}) == 1
    assert all(run.origin_ns == frames_[0].record.timestamp_ns for run, (_, frames_) in zip(measured, runs))
    assert all(run.congestion_window == () and run.application is None for run in measured)
    with pytest.raises(UsageError, match="'empty'"):
        compare_runs([("empty", runs[0][1][:3])])


def test_the_congestion_window_of_small_writes_counts_in_the_kernel_s_segment_size() -> None:
    from visualizer.pipeline import measure_runs

    capture = DATA / "kernel" / "nagle.pcap"
    (run,) = measure_runs([("TCP_NODELAY", capture, 1)])
    assert run.direction.segment_size == 10  # every write's 10 bytes: no segment was full
    assert run.congestion_segment_size == 65_483  # loopback's MSS 65,495 less 12 bytes of timestamps
    assert run.congestion_window and all(
        size == cwnd * 65_483
        for (_, size), (_, cwnd) in zip(run.congestion_window_bytes, run.congestion_window, strict=True)
    )


def test_ack_round_trips_time_each_acknowledged_segment_once() -> None:
    """A 20 ms delay on the return path: every ACK the capture times comes 20 ms after its segment
    (plus loopback's microseconds), one sample per window of two segments."""
    _, frames = select_streams(DELAYED, "tcp", ())
    direction = data_direction(frames)
    assert direction is not None
    samples = ack_round_trips(frames, direction)
    assert len(samples) > 30
    assert all(20 * MS <= trip < 22 * MS for _, trip in samples)
    acks = {frame.record.timestamp_ns for frame in frames if frame.record.source_port == 8093}
    assert all(time_ns in acks for time_ns, _ in samples)


def test_ack_round_trips_skip_a_segment_sent_twice() -> None:
    """Karn's rule (RFC 6298 s3): an ACK cannot tell which copy it answers, so a resent segment is not timed."""
    _, frames = select_streams(DELAYED, "tcp", ())
    direction = data_direction(frames)
    assert direction is not None
    index, first = next((index, frame) for index, frame in enumerate(frames) if frame.record.payload_length)
    resent = [*frames[: index + 1], first, *frames[index + 1 :]]  # the first segment sent twice
    timed = {time_ns for time_ns, _ in ack_round_trips(frames, direction)}
    again = {time_ns for time_ns, _ in ack_round_trips(resent, direction)}
    assert again == timed - {min(timed)} and min(timed) not in again
