"""Chapter 7: can we control throughput? Three experiments, each a bulk transfer through the kernel.

1. A rate limit on the path (a token-bucket filter, ``tbf``, on the data direction of the
   experiment namespace's ``lo``) at two rates: the steady goodput follows each rate, less the
   headers' share (:data:`GOODPUT_SHARE`), and the frames themselves follow it exactly.
2. The receive buffer, and with it the window the receiver advertises: a small ``SO_RCVBUF``
   against the kernel's autotuned one, with no rate limit. The sender never has more bytes in
   flight than the window (RFC 9293 s3.8.6), so a round trip carries at most one window:
   throughput <= window / RTT (RFC 7323 s1). Loopback's own round trip is CPU time (microseconds),
   so both runs get a path delay (:data:`DELAY_MS`, on the return direction: the capture, at the
   sender's side, sees all of it), and the round-trip time is measured in the capture.
3. The congestion window, from the kernel (``tcp_probe``): slow start from the initial window,
   a loss where the queue in front of a rate limit overflows, ssthresh set to half the window,
   congestion avoidance (RFC 5681 s3.1), in a sawtooth.

Every run pins the congestion control to :data:`CONGESTION_CONTROL` (Reno: RFC 5681's
algorithm), whatever the host's default (a new namespace inherits it; often CUBIC, or BBR,
which sets no ssthresh on a loss).

The run functions (:func:`rate_limit_runs`, :func:`buffer_runs`, :func:`congestion_run`) need
root and do the IO; the measurements (:func:`rate_limit_answer`, :func:`window_answer`,
:func:`congestion_answer`) are pure: frames, the kernel's samples and the measures of
:mod:`visualizer.analysis.throughput` in, small dataclasses out.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from visualizer.analysis.report import FAST_RETRANSMISSION, LOST_SEGMENT, RETRANSMISSION, FrameAnalysis
from visualizer.analysis.throughput import (
    DataDirection,
    Progress,
    Rate,
    RunThroughput,
    ack_round_trips,
    advertised_window,
    compare_runs,
    in_flight,
    progress_of,
    steady_rate,
)
from visualizer.errors import UsageError
from visualizer.model import ACK, PROTOCOL_TCP, parse_tcp_options

if TYPE_CHECKING:
    from visualizer.analysis.kernel import EndpointKernel, KernelStory, ProbeSample
    from visualizer.chapters import Experiment
    from visualizer.scenarios.throughput import ThroughputRun, ThroughputSettings

CONGESTION_CONTROL = "reno"
"""RFC 5681's congestion control, pinned in every run of the chapter."""
RATES = (2_000_000, 8_000_000)
"""Bits per second of the two rate limits of experiment 1."""
RATE_SECONDS = 2.0
"""About how long each rate-limited transfer lasts (it sends rate x seconds)."""
SMALL_BUFFER = 4096
"""The server's ``SO_RCVBUF`` in experiment 2's small run (the other keeps the kernel's autotuning)."""
DELAY_MS = 20
"""Experiment 2's path delay, the round-trip time of both its runs: a round trip across a country
(loopback's own is CPU time, which would make the comparison meaningless)."""
BUFFER_RUN_BYTES = 1_000_000
"""Bytes each run of experiment 2 sends (a few kB per 20 ms round trip: about 7 s for the small window)."""
LOSSY_RATE = 8_000_000
LOSSY_QUEUE_MS = 20
"""Experiment 3's tbf queue: frames that would wait longer than this are dropped (about 13 frames at
:data:`LOSSY_RATE`), so slow start overflows it."""
LOSSY_SECONDS = 2.0
HEADERS = 14 + 20 + 32
"""Bytes of each full frame that are not payload: Ethernet, IPv4, TCP with timestamps (RFC 7323 s3)."""
FULL_FRAME = 1514
GOODPUT_SHARE = (FULL_FRAME - HEADERS) / FULL_FRAME
"""The payload's share of a full frame (1448 of 1514 bytes): a limit metering frames delivers this much goodput."""
RFC6928_INITIAL_WINDOW = 10
"""Segments: the initial congestion window for a 1448-byte MSS (RFC 6928 s2: min(10 MSS, max(2 MSS, 14600)))."""


# -- The runs (root: a namespace, a qdisc, sniffing) ----------------------------------------------


@dataclass(slots=True)
class Run:
    """One run of the experiment, read back: the program's side, the capture's and the kernel's."""

    run: ThroughputRun
    experiment: Experiment
    measured: RunThroughput
    """Its measures for the "run vs run" figure (the same time windows as the runs beside it)."""

    @property
    def settings(self) -> ThroughputSettings:
        return self.run.settings

    @property
    def frames(self) -> list[FrameAnalysis]:
        return self.experiment.frames_of(0)


def rate_limit_runs(out: Path, rates: Sequence[int] = RATES, *, seconds: float = RATE_SECONDS) -> list[Run]:
    """Experiment 1: a transfer under each rate limit (tbf queue long enough that nothing is dropped)."""
    from visualizer.scenarios.throughput import ThroughputSettings, format_rate

    settings = [ThroughputSettings(rate=rate, seconds=seconds, congestion_control=CONGESTION_CONTROL) for rate in rates]
    return _run_all([(f"rate limit {format_rate(setting.rate or 0)}", setting) for setting in settings], out)


def buffer_runs(
    out: Path,
    small: int = SMALL_BUFFER,
    *,
    size: int = BUFFER_RUN_BYTES,
    delay_ms: int = DELAY_MS,
) -> list[Run]:
    """Experiment 2: no rate limit, a path delay; the server's ``SO_RCVBUF`` small, then left to the
    kernel's autotuning."""
    from visualizer.scenarios.throughput import ThroughputSettings

    common = {"delay_ms": delay_ms, "congestion_control": CONGESTION_CONTROL}
    return _run_all(
        [
            (f"SO_RCVBUF {small:,}", ThroughputSettings(receive_buffer=small, size=size, **common)),  # type: ignore[arg-type]
            ("SO_RCVBUF default (autotuned)", ThroughputSettings(size=size, **common)),  # type: ignore[arg-type]
        ],
        out,
    )


def congestion_run(
    out: Path, *, rate: int = LOSSY_RATE, queue_ms: int = LOSSY_QUEUE_MS, seconds: float = LOSSY_SECONDS
) -> Run:
    """Experiment 3: a rate limit whose queue is short, so that slow start overflows it."""
    from visualizer.scenarios.throughput import ThroughputSettings, format_rate

    setting = ThroughputSettings(rate=rate, seconds=seconds, latency_ms=queue_ms, congestion_control=CONGESTION_CONTROL)
    return _run_all([(f"rate limit {format_rate(rate)}, {queue_ms} ms queue", setting)], out)[0]


def _run_all(labelled: Sequence[tuple[str, ThroughputSettings]], out: Path) -> list[Run]:
    from visualizer.chapters import load
    from visualizer.scenarios.throughput import run_throughput

    runs = [run_throughput(setting, out) for _, setting in labelled]
    experiments = [load(run.pcap, setting.name) for run, (_, setting) in zip(runs, labelled, strict=True)]
    measured = compare_runs(
        [(label, experiment.frames_of(0)) for (label, _), experiment in zip(labelled, experiments, strict=True)],
        stories=[experiment.kernel for experiment in experiments],
        applications=[application(run) for run in runs],
    )
    return [Run(*each) for each in zip(runs, experiments, measured, strict=True)]


def application(run: ThroughputRun) -> Progress:
    """The receiving program's own count: the bytes it had read after each ``recv``."""
    return progress_of([(run.started_ns, 0), *run.reads])


# -- 1. A rate limit ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateLimitAnswer:
    """One rate-limited run: the configured rate beside what the capture and the program measured."""

    label: str
    configured: int
    """Bits per second of the tbf limit (it meters whole frames)."""
    goodput: Rate
    """Payload acknowledged, in the steady part (10% to 90% of the bytes)."""
    wire: Rate
    """Every byte of the sender's frames, link header included, in its steady part: what tbf meters."""
    read: Rate
    """The bytes the receiving program read, in its steady part."""
    first_frame: int
    last_frame: int
    """The receiver's ACKs that open and close the goodput's steady part."""
    retransmissions: int

    @property
    def expected_goodput(self) -> float:
        """The configured rate times the payload's share of a full frame."""
        return self.configured * GOODPUT_SHARE

    @property
    def share(self) -> float:
        """The steady goodput as a share of the configured rate."""
        return self.goodput.bits_per_second / self.configured


def rate_limit_answer(measured: RunThroughput, frames: Sequence[FrameAnalysis], configured: int) -> RateLimitAnswer:
    """What a rate-limited run delivered, against its limit."""
    direction = measured.direction
    acks = _acks(frames, direction)
    first = next(frame for frame in acks if _time(frame) >= measured.steady.start_ns)
    last = next(frame for frame in acks if _time(frame) >= measured.steady.end_ns)
    return RateLimitAnswer(
        label=measured.label,
        configured=configured,
        goodput=measured.steady,
        wire=measured.on_the_wire,
        read=steady_rate(measured.application) if measured.application is not None else Rate(0, 0, 0),
        first_frame=first.record.number,
        last_frame=last.record.number,
        retransmissions=_count(frames, direction, RETRANSMISSION),
    )


# -- 2. The receive buffer and window -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowAnswer:
    """One run of experiment 2: the window the receiver offered, the flight it allowed, the rounds."""

    label: str
    receive_buffer: int | None
    """The ``SO_RCVBUF`` the server set (None: the kernel's autotuning)."""
    largest_window: int
    """The largest window the receiver advertised after the handshake (bytes, scaled)."""
    window_frame: int
    """The first frame advertising it."""
    largest_flight: int
    """The most bytes the sender had sent and not yet had acknowledged, as the capture sees them."""
    segments: int
    """Data segments the sender sent."""
    overshoots: int
    """Of them, those sent beyond the receiver's window (RFC 9293 s3.8.6 forbids it: 0)."""
    full_window: int
    """Of them, those that filled the window (no full segment more fitted): the sender had to stop."""
    rounds: int
    """Windows filled during the goodput's steady part: each is a stop until an ACK reopens the window."""
    full_window_frames: tuple[int, ...]
    """The first few segments of the steady part that filled the window (Wireshark: window full)."""
    goodput: Rate
    window_in_force: int
    """The median window the receiver advertised during the goodput's steady part (bytes)."""
    round_trip_ns: int
    """The median round-trip time the capture saw (an ACK since the segment it acknowledges), 0: none."""

    @property
    def window_bound_in_force(self) -> float:
        """Bits per second: the window in force over the measured round trip, the most the run could
        deliver (RFC 7323 s1); 0 without a round trip."""
        return self.window_in_force * 8e9 / self.round_trip_ns if self.round_trip_ns else 0.0

    @property
    def full_window_share(self) -> float:
        return self.full_window / self.segments if self.segments else 0.0

    @property
    def bytes_per_round(self) -> float:
        """Bytes acknowledged per window filled, in the steady part."""
        return self.goodput.bytes / self.rounds if self.rounds else 0.0

    @property
    def round_seconds(self) -> float:
        """The mean time from filling the window to filling it again, in the steady part."""
        return self.goodput.seconds / self.rounds if self.rounds else 0.0

    @property
    def fewest_round_trips(self) -> int:
        """The fewest round trips that could carry the steady part's bytes with at most the largest flight
        seen in each: what the window costs whatever a round trip lasts (RFC 7323 s1)."""
        return math.ceil(self.goodput.bytes / self.largest_flight) if self.largest_flight else 0

    def window_bound(self, round_trip_seconds: float) -> float:
        """Bits per second: the most the largest window carries over a path of that round-trip time."""
        return self.largest_window * 8 / round_trip_seconds


def window_answer(measured: RunThroughput, frames: Sequence[FrameAnalysis], receive_buffer: int | None) -> WindowAnswer:
    """How the receive window bounded one run: the flight against the window in force at each segment."""
    direction = measured.direction
    windows = advertised_window(frames, direction)[1:]  # the SYN-ACK's window is not scaled yet
    sent = [frame for frame in frames if _from(frame, direction.sender) and frame.record.payload_length]
    flight = in_flight(frames, direction)
    overshoots = 0
    full: list[tuple[int, int]] = []  # (time, frame number) of the segments that filled the window
    index = -1
    for frame, (time_ns, count) in zip(sent, flight, strict=True):
        while index + 1 < len(windows) and windows[index + 1][0] <= time_ns:
            index += 1
        if index < 0:
            continue
        window = windows[index][1]
        overshoots += count > window
        if window - count < direction.segment_size:
            full.append((time_ns, frame.record.number))
    largest = max((size for _, size in windows), default=0)
    steady = [number for time_ns, number in full if measured.steady.start_ns <= time_ns < measured.steady.end_ns]
    first_largest = next((time_ns for time_ns, size in windows if size == largest), 0)
    in_force = [size for time_ns, size in windows if measured.steady.start_ns <= time_ns < measured.steady.end_ns]
    trips = [trip for _, trip in ack_round_trips(frames, direction)]
    return WindowAnswer(
        label=measured.label,
        receive_buffer=receive_buffer,
        largest_window=largest,
        window_frame=next(frame.record.number for frame in _acks(frames, direction) if _time(frame) == first_largest),
        largest_flight=max((count for _, count in flight), default=0),
        segments=len(flight),
        overshoots=overshoots,
        full_window=len(full),
        rounds=len(steady),
        full_window_frames=tuple(steady[:3]),
        goodput=measured.steady,
        window_in_force=round(statistics.median(in_force)) if in_force else largest,
        round_trip_ns=round(statistics.median(trips)) if trips else 0,
    )


# -- 3. The congestion window ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reduction:
    """A loss the sender's congestion control answered: ssthresh set, the window cut."""

    time_ns: int
    frame: int
    """The received frame after whose processing the kernel first reported the new ssthresh (``tcp_probe``
    samples a socket before it processes a segment). What set it may be that frame (duplicate ACKs,
    SACK), a drop in the sender's own qdisc as it sent (Linux then reduces at once: its CWR state) or a
    timer: the samples do not say which."""
    ack: int
    """That frame's relative ACK number: the receiver still lacked the byte it names (-1: no such frame)."""
    sack_blocks: int
    """The SACK blocks (RFC 2018) that frame carried: what the receiver had beyond the gap."""
    cwnd_before: int
    """Segments: the congestion window at the sample before."""
    ssthresh: int
    """Segments: the new slow-start threshold."""


@dataclass(frozen=True, slots=True)
class Avoidance:
    """A stretch of congestion avoidance: from the end of a loss's recovery (the data in flight when it
    was detected all acknowledged) to the next reduction."""

    start_ns: int
    end_ns: int
    cwnd_from: int
    cwnd_to: int
    acknowledged: int
    """Bytes the ACKs of the stretch acknowledged."""
    smoothed_rtt_us: float
    """The median of the sender's smoothed round-trip time over the stretch."""

    @property
    def round_trips(self) -> float:
        return (self.end_ns - self.start_ns) / 1e3 / self.smoothed_rtt_us if self.smoothed_rtt_us else 0.0


@dataclass(frozen=True, slots=True)
class CongestionAnswer:
    """The sender's congestion window over one run, from its kernel's ``tcp_probe`` samples."""

    initial_window: int
    """Segments: the congestion window at the first sample (RFC 6928: 10)."""
    slow_start_peak: int
    """Segments: the largest congestion window before the first reduction."""
    slow_start_ns: int
    """From the first sample to the first reduction."""
    first_gap_frame: int
    """The first data segment after a gap: a segment before it never reached the capture (the tbf queue,
    ahead of the capture point, dropped it); 0 when none."""
    first_retransmission_frame: int
    """The first frame the capture marks as a retransmission (0 when none)."""
    reductions: tuple[Reduction, ...]
    avoidance: tuple[Avoidance, ...]
    retransmissions: int
    fast_retransmissions: int
    segment_size: int
    goodput: Rate


def congestion_answer(measured: RunThroughput, frames: Sequence[FrameAnalysis], story: KernelStory) -> CongestionAnswer:
    """Slow start, the reductions and the congestion avoidance of the data sender's congestion window."""
    direction = measured.direction
    sender = story.endpoint(frames[0].stream, *direction.sender)
    probes: Sequence[ProbeSample] = sender.probes if sender is not None else ()
    if not probes:
        raise UsageError(f"run {measured.label!r}: no tcp_probe sample of the sender {direction.sender}")
    acks = {frame.record.number: frame for frame in _acks(frames, direction)}
    reductions: list[Reduction] = []
    recovery_points: list[int] = []
    for before, probe in zip(probes, probes[1:]):
        if probe.ssthresh_set and (not before.ssthresh_set or probe.ssthresh < before.ssthresh):
            frame = acks.get(before.frame)
            ack, blocks = (
                (frame.ack, len(parse_tcp_options(frame.record.tcp_options).sack_blocks)) if frame else (-1, 0)
            )
            reductions.append(Reduction(before.time_ns, before.frame, ack, blocks, before.snd_cwnd, probe.ssthresh))
            recovery_points.append(before.snd_nxt)  # recovery ends when this is acknowledged (RFC 6582 s3.2)
    first_cut = reductions[0].time_ns if reductions else probes[-1].time_ns + 1
    avoidance = []
    for index, (reduction, recovered) in enumerate(zip(reductions, recovery_points, strict=True)):
        end = reductions[index + 1].time_ns if index + 1 < len(reductions) else probes[-1].time_ns + 1
        stretch = [probe for probe in probes if reduction.time_ns < probe.time_ns < end and probe.snd_una >= recovered]
        if len(stretch) >= 2:
            avoidance.append(
                Avoidance(
                    start_ns=stretch[0].time_ns,
                    end_ns=stretch[-1].time_ns,
                    cwnd_from=stretch[0].snd_cwnd,
                    cwnd_to=stretch[-1].snd_cwnd,
                    acknowledged=stretch[-1].snd_una - stretch[0].snd_una,
                    smoothed_rtt_us=statistics.median(probe.srtt_us for probe in stretch),
                )
            )
    retransmitted = [frame for frame in frames if frame.analysis & RETRANSMISSION and _from(frame, direction.sender)]
    return CongestionAnswer(
        initial_window=probes[0].snd_cwnd,
        slow_start_peak=max(probe.snd_cwnd for probe in probes if probe.time_ns <= first_cut),
        slow_start_ns=first_cut - probes[0].time_ns if reductions else 0,
        first_gap_frame=next(
            (
                frame.record.number
                for frame in frames
                if frame.analysis & LOST_SEGMENT and _from(frame, direction.sender)
            ),
            0,
        ),
        first_retransmission_frame=retransmitted[0].record.number if retransmitted else 0,
        reductions=tuple(reductions),
        avoidance=tuple(avoidance),
        retransmissions=len(retransmitted),
        fast_retransmissions=_count(frames, direction, FAST_RETRANSMISSION),
        segment_size=direction.segment_size,
        goodput=measured.steady,
    )


# -- Helpers --------------------------------------------------------------------------------------


def _time(frame: FrameAnalysis) -> int:
    return frame.record.timestamp_ns or 0


def _from(frame: FrameAnalysis, endpoint: tuple[str, int]) -> bool:
    return (frame.record.source, frame.record.source_port) == endpoint


def _acks(frames: Sequence[FrameAnalysis], direction: DataDirection) -> list[FrameAnalysis]:
    """The receiver's TCP segments carrying an ACK, in frame order."""
    return [
        frame
        for frame in frames
        if frame.record.transport == PROTOCOL_TCP and frame.record.tcp_flags & ACK and _from(frame, direction.receiver)
    ]


def _count(frames: Sequence[FrameAnalysis], direction: DataDirection, flag: int) -> int:
    return sum(1 for frame in frames if frame.analysis & flag and _from(frame, direction.sender))


def _median_srtt(sender: EndpointKernel | None) -> float:
    if sender is None or not sender.probes:
        return 0.0
    return float(statistics.median(probe.srtt_us for probe in sender.probes))


def narration_between(experiment: Experiment, first_frame: int, last_frame: int) -> str:
    """The paragraphs of the experiment's narration (``sockstory narrate``) from the time of ``first_frame``
    to that of ``last_frame``: a long transfer's story, cut to one moment (the programs' calls included)."""
    times = {frame.record.number: frame.record.timestamp_ns or 0 for frame in experiment.frames}
    origin = experiment.report.first_time_ns or 0
    start, end = ((times[number] - origin) / 1e9 for number in (first_frame, last_frame))
    return narration_excerpt(experiment.narration(), start, end)


NARRATION_TIME_STEP = 1e-6
"""The narration writes times in microseconds."""


def narration_excerpt(text: str, start: float, end: float) -> str:
    """The numbered paragraphs of a narration whose time (``[0.037207 s]``, seconds since the first
    frame) lies from ``start`` to ``end`` (a microsecond's rounding either side)."""
    kept = []
    for paragraph in re.split(r"\n(?=\d+\. )", text)[1:]:  # the first is the headline
        time = re.match(r"\d+\. \[(-?\d+(?:\.\d+)?) s\]", paragraph)
        if time is not None and start - NARRATION_TIME_STEP <= float(time.group(1)) <= end + NARRATION_TIME_STEP:
            kept.append(paragraph)
    return "\n".join(kept)
