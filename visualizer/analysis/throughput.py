"""Throughput: bytes delivered over time, from a capture's acknowledgements or a program's reads.

Sans-IO: frames (or any counts with times) in, rates out; time is in the data, never read
from a clock. One shape serves every view: a :class:`Progress` is a running total of bytes
with the time each total was reached.

* :func:`acknowledged` -- the capture's view of one TCP stream: the bytes of its data
  direction that the receiver has acknowledged (its cumulative ACK, RFC 9293 s3.4), over
  time. Its rate is the goodput: payload delivered in order, not counting headers,
  retransmissions or ACKs.
* :func:`on_the_wire` -- every byte of the stream's frames, both directions, link headers
  included: what a rate limit on the path (a qdisc) meters.
* A program's own progress (the bytes it has read after each ``recv``) is a Progress too.

Rates: :func:`overall_rate` (from the first count to the last), :func:`steady_rate` (between
the times a tenth and nine tenths of the bytes were reached: the transfer's start -- the
handshake, slow start, a full token bucket -- and its end are left out, a heuristic of ours),
and :func:`rates_over_time` (in windows of a chosen length). :func:`compare_runs` prepares the
"run vs run" figure (:mod:`visualizer.render.compare`): each run's progress, rates and, when
the kernel's events were recorded, the sender's congestion window (``tcp_probe``) and the
receiver's advertised window.

Relative sequence numbers are used as they are: a transfer of 4 GiB or more wraps them.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from visualizer.analysis.report import FrameAnalysis
from visualizer.errors import UsageError
from visualizer.model import ACK, PROTOCOL_TCP

if TYPE_CHECKING:
    from visualizer.analysis.kernel import KernelStory

STEADY_FROM = 0.1
STEADY_TO = 0.9
"""The share of the bytes between which a transfer is taken as steady (see :func:`steady_rate`)."""


@dataclass(frozen=True, slots=True)
class Progress:
    """A running total of bytes: ``points`` are (time in ns, bytes so far), in time order, never decreasing."""

    points: tuple[tuple[int, int], ...]

    @property
    def total(self) -> int:
        return self.points[-1][1] if self.points else 0

    def time_reaching(self, count: float) -> int:
        """The first time the total reached ``count`` bytes (the last point's time when it never did)."""
        index = bisect.bisect_left(self.points, count, key=lambda point: point[1])
        return self.points[min(index, len(self.points) - 1)][0]

    def at(self, time_ns: int) -> int:
        """The total at ``time_ns``: that of the last point at or before it (0 before the first)."""
        index = bisect.bisect_right(self.points, time_ns, key=lambda point: point[0])
        return self.points[index - 1][1] if index else 0


def progress_of(counts: Sequence[tuple[int, int]]) -> Progress:
    """A Progress from (time, total) pairs in time order; a total lower than an earlier one is held
    at the earlier (a running total never goes back)."""
    points: list[tuple[int, int]] = []
    highest = 0
    for time_ns, total in counts:
        highest = max(highest, total)
        if points and points[-1][0] == time_ns:
            points[-1] = (time_ns, highest)
        else:
            points.append((time_ns, highest))
    return Progress(tuple(points))


@dataclass(frozen=True, slots=True)
class DataDirection:
    """The direction of a TCP stream that carries its data (the one with the most payload bytes)."""

    sender: tuple[str, int]
    receiver: tuple[str, int]
    first_byte: int
    """Relative sequence number of its first payload byte."""
    end: int
    """Relative sequence number just after its last payload byte (a FIN not counted)."""
    segment_size: int
    """The largest payload of one of its segments (its effective MSS on this path)."""
    first_data_ns: int
    """When its first payload byte was sent."""

    @property
    def payload(self) -> int:
        return self.end - self.first_byte


def data_direction(frames: Sequence[FrameAnalysis]) -> DataDirection | None:
    """The data direction of the TCP frames of one stream; None when no frame carries payload."""
    payload: dict[tuple[str, int, str, int], int] = {}
    for frame in frames:
        record = frame.record
        if record.transport == PROTOCOL_TCP and record.payload_length:
            key = (record.source, record.source_port, record.destination, record.destination_port)
            payload[key] = payload.get(key, 0) + record.payload_length
    if not payload:
        return None
    source, source_port, destination, destination_port = max(payload, key=lambda key: payload[key])
    own = [
        frame
        for frame in frames
        if frame.record.transport == PROTOCOL_TCP
        and frame.record.payload_length
        and (frame.record.source, frame.record.source_port) == (source, source_port)
        and (frame.record.destination, frame.record.destination_port) == (destination, destination_port)
    ]
    return DataDirection(
        sender=(source, source_port),
        receiver=(destination, destination_port),
        first_byte=min(frame.seq for frame in own),
        end=max(frame.seq + frame.record.payload_length for frame in own),
        segment_size=max(frame.record.payload_length for frame in own),
        first_data_ns=min(_time(frame) for frame in own),
    )


def acknowledged(frames: Sequence[FrameAnalysis], direction: DataDirection | None = None) -> Progress:
    """The bytes of the data direction acknowledged over time (the goodput's running total).

    Starts at (the first data segment's time, 0); each ACK from the receiver that acknowledges
    more adds a point. An ACK of the FIN counts no byte more.
    """
    direction = direction or data_direction(frames)
    if direction is None:
        return Progress(())
    counts = [(direction.first_data_ns, 0)]
    for frame in frames:
        record = frame.record
        if (
            record.transport == PROTOCOL_TCP
            and record.tcp_flags & ACK
            and (record.source, record.source_port) == direction.receiver
            and (record.destination, record.destination_port) == direction.sender
        ):
            count = min(max(frame.ack - direction.first_byte, 0), direction.payload)
            if count > counts[-1][1]:
                counts.append((_time(frame), count))
    return progress_of(counts)


def on_the_wire(frames: Sequence[FrameAnalysis], sender: tuple[str, int] | None = None) -> Progress:
    """Every byte of the frames (of those ``sender`` sent, when given), link header included, over
    time: what a qdisc on the path meters."""
    counts = []
    total = 0
    for frame in frames:
        if sender is not None and (frame.record.source, frame.record.source_port) != sender:
            continue
        total += frame.record.original_length
        counts.append((_time(frame), total))
    return progress_of(counts)


def advertised_window(frames: Sequence[FrameAnalysis], direction: DataDirection) -> tuple[tuple[int, int], ...]:
    """The receiver's advertised window (scaled, bytes) on each of its segments: (time, window)."""
    return tuple(
        (_time(frame), frame.window)
        for frame in frames
        if frame.record.transport == PROTOCOL_TCP
        and (frame.record.source, frame.record.source_port) == direction.receiver
        and frame.window >= 0
    )


def in_flight(frames: Sequence[FrameAnalysis], direction: DataDirection) -> tuple[tuple[int, int], ...]:
    """Bytes sent but not yet acknowledged, after each of the data direction's frames: (time, bytes)."""
    highest = direction.first_byte
    acked = direction.first_byte
    points = []
    for frame, data in _segments(frames, direction):
        if data:
            highest = max(highest, min(frame.seq + frame.record.payload_length, direction.end))
            points.append((_time(frame), highest - acked))
        else:
            acked = max(acked, min(frame.ack, direction.end))
    return tuple(points)


def _segments(frames: Sequence[FrameAnalysis], direction: DataDirection) -> Iterator[tuple[FrameAnalysis, bool]]:
    """The direction's data segments (True) and the receiver's ACKs (False), in capture order."""
    for frame in frames:
        record = frame.record
        if record.transport != PROTOCOL_TCP:
            continue
        if (record.source, record.source_port) == direction.sender and record.payload_length:
            yield frame, True
        elif (record.source, record.source_port) == direction.receiver and record.tcp_flags & ACK:
            yield frame, False


def ack_round_trips(frames: Sequence[FrameAnalysis], direction: DataDirection) -> tuple[tuple[int, int], ...]:
    """Round-trip times seen in the capture: (time of an ACK, ns since the segment it acknowledges was sent).

    Wireshark's ``tcp.analysis.ack_rtt``: an ACK that acknowledges new data up to the end of a data
    segment times that segment. A segment sent more than once is not timed (Karn's rule, RFC 6298 s3:
    the ACK cannot tell which copy it answers). Measured where the capture is: a delay on the path
    between the sender and the capture point is not in it.
    """
    sent: dict[int, int] = {}  # end of a segment (relative seq) -> when it was first sent
    again: set[int] = set()
    acked = direction.first_byte
    samples = []
    for frame, data in _segments(frames, direction):
        if data:
            end = frame.seq + frame.record.payload_length
            if end in sent:
                again.add(end)
            else:
                sent[end] = _time(frame)
        elif frame.ack > acked:
            acked = frame.ack
            if acked in sent and acked not in again:
                samples.append((_time(frame), _time(frame) - sent[acked]))
    return tuple(samples)


@dataclass(frozen=True, slots=True)
class Rate:
    """Bytes per second over a span of time."""

    bytes: int
    start_ns: int
    end_ns: int

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9

    @property
    def per_second(self) -> float:
        """Bytes per second (0 for an empty span)."""
        return self.bytes / self.seconds if self.end_ns > self.start_ns else 0.0

    @property
    def bits_per_second(self) -> float:
        return self.per_second * 8


def overall_rate(progress: Progress) -> Rate:
    """The rate from the first point to the time the total was reached."""
    if not progress.points:
        return Rate(0, 0, 0)
    start, base = progress.points[0]
    return Rate(progress.total - base, start, progress.time_reaching(progress.total))


def steady_rate(progress: Progress, *, low: float = STEADY_FROM, high: float = STEADY_TO) -> Rate:
    """The rate between the times the total first reached ``low`` and ``high`` of its final value.

    Leaves out the start (handshake, slow start, a token bucket's first burst) and the end (the
    last window draining, the close), a heuristic of ours; the shares are of bytes, not time, so
    no clock reading decides what is steady.
    """
    if not 0 <= low < high <= 1:
        raise UsageError(f"steady share {low}..{high}: need 0 <= low < high <= 1")
    if not progress.points:
        return Rate(0, 0, 0)
    base = progress.points[0][1]
    span = progress.total - base
    start = progress.time_reaching(base + low * span)
    end = progress.time_reaching(base + high * span)
    return Rate(progress.at(end) - progress.at(start), start, end)


def rates_over_time(progress: Progress, window_ns: int, *, origin_ns: int | None = None) -> tuple[Rate, ...]:
    """The rate in consecutive windows of ``window_ns`` from ``origin_ns`` (default: the first point)
    to the last point; the bytes of a window are those the total gained in it. The last window ends
    at the last point (a tail shorter than half a window is part of the window before it)."""
    if window_ns <= 0:
        raise UsageError(f"window {window_ns} ns: must be positive")
    if not progress.points:
        return ()
    origin = progress.points[0][0] if origin_ns is None else origin_ns
    last = progress.points[-1][0]
    count = max(1, math.ceil((last - origin) / window_ns))
    if count > 1 and last - (origin + (count - 1) * window_ns) < window_ns / 2:
        count -= 1  # a short tail joins the window before it (a few bytes over a short time say little)
    rates = []
    previous = progress.at(origin)
    for index in range(count):
        start = origin + index * window_ns
        end = last if index == count - 1 else start + window_ns  # the last ends with the transfer
        total = progress.at(end)
        rates.append(Rate(total - previous, start, end))
        previous = total
    return tuple(rates)


NICE_WINDOWS_NS = tuple(int(base * 10**exponent) for exponent in range(5, 10) for base in (1, 2, 5))  # 100 us .. 5 s


def window_for(duration_ns: int, windows: int = 40) -> int:
    """A round window length (1, 2 or 5 times a power of ten, in ns) giving about ``windows`` windows."""
    wanted = max(duration_ns, 1) / windows
    return next((window for window in NICE_WINDOWS_NS if window >= wanted), NICE_WINDOWS_NS[-1])


@dataclass(frozen=True, slots=True)
class RunThroughput:
    """One run of a "run vs run" comparison, as the figure draws it."""

    label: str
    origin_ns: int
    """Time zero of this run: its first frame (each run is drawn from its own start)."""
    direction: DataDirection
    acknowledged: Progress
    overall: Rate
    steady: Rate
    over_time: tuple[Rate, ...]
    on_the_wire: Rate
    """The steady rate of every byte of the data sender's frames, headers included (what a rate limit meters)."""
    receive_window: tuple[tuple[int, int], ...]
    """The receiver's advertised window: (time, bytes)."""
    congestion_window: tuple[tuple[int, int], ...] = ()
    """The sender's congestion window as its kernel reported it (``tcp_probe``): (time, segments)."""
    application: Progress | None = None
    """The receiving program's own count of the bytes it read, when it kept one."""

    congestion_segment_size: int | None = None
    """The bytes of one segment as the sender's congestion window counts them (its kernel's
    ``mss_cache``, :attr:`visualizer.analysis.kernel.EndpointKernel.segment_size`); None: unknown."""

    @property
    def congestion_window_bytes(self) -> tuple[tuple[int, int], ...]:
        """The congestion window in bytes: segments times the segment size the kernel counts them in, else
        the largest payload seen (which is that size only when the sender filled its segments: small
        writes, as with Nagle's algorithm off, fill none)."""
        size = self.congestion_segment_size or self.direction.segment_size
        return tuple((time_ns, cwnd * size) for time_ns, cwnd in self.congestion_window)


def congestion_window(story: KernelStory | None, direction: DataDirection, stream: int) -> tuple[tuple[int, int], ...]:
    """The data sender's congestion window from its kernel's ``tcp_probe`` samples: (time, segments)."""
    if story is None:
        return ()
    endpoint = story.endpoint(stream, *direction.sender)
    if endpoint is None:
        return ()
    return tuple((probe.time_ns, probe.snd_cwnd) for probe in endpoint.probes)


def _kernel_segment_size(story: KernelStory | None, direction: DataDirection, stream: int) -> int | None:
    endpoint = story.endpoint(stream, *direction.sender) if story is not None else None
    return endpoint.segment_size if endpoint is not None else None


def compare_runs(
    runs: Sequence[tuple[str, Sequence[FrameAnalysis]]],
    *,
    stories: Sequence[KernelStory | None] | None = None,
    applications: Sequence[Progress | None] | None = None,
    window_ns: int | None = None,
) -> list[RunThroughput]:
    """Each run (a label and the frames of one TCP stream) measured for the "run vs run" figure.

    ``stories`` are the runs' kernel stories (for the congestion window), ``applications`` the
    receiving programs' own progress; ``window_ns`` the length of the windows of the rate over
    time, one for all runs so they compare (default: about 40 windows over the longest run).
    A run whose frames carry no payload raises UsageError naming it.
    """
    measured = []
    for label, frames in runs:
        direction = data_direction(frames)
        if direction is None:
            raise UsageError(f"run {label!r}: no TCP payload in its frames")
        measured.append((label, frames, direction, acknowledged(frames, direction)))
    if window_ns is None:
        longest = max((progress.points[-1][0] - _time(frames[0]) for _, frames, _, progress in measured), default=0)
        window_ns = window_for(longest)
    results = []
    for index, (label, frames, direction, progress) in enumerate(measured):
        origin = _time(frames[0])
        story = stories[index] if stories is not None else None
        results.append(
            RunThroughput(
                label=label,
                origin_ns=origin,
                direction=direction,
                acknowledged=progress,
                overall=overall_rate(progress),
                steady=steady_rate(progress),
                over_time=rates_over_time(progress, window_ns, origin_ns=origin),
                on_the_wire=steady_rate(on_the_wire(frames, direction.sender)),
                receive_window=advertised_window(frames, direction),
                congestion_window=congestion_window(story, direction, frames[0].stream),
                congestion_segment_size=_kernel_segment_size(story, direction, frames[0].stream),
                application=applications[index] if applications is not None else None,
            )
        )
    return results


def _time(frame: FrameAnalysis) -> int:
    return frame.record.timestamp_ns or 0
