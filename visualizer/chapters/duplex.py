"""Chapter 3's measurements: can a socket send and receive at once?

A TCP connection is a pair of byte streams, one each way (RFC 9293 s3.1: "full-duplex"). The
``full-duplex`` scenario has both ends write 60,000 bytes at once, each with one thread writing and
one reading; the ``half-close`` scenario has the client shut down its sending side while the server
still sends (RFC 9293 s3.6). What proves it, from what the experiment recorded:

* :func:`full_duplex` (the capture): data segments both ways in the same stretch of time, segments
  that *cross* (one end sends data before it has acknowledged the data the other end already sent:
  each was sent before the other arrived), and ACKs that ride on data segments (piggy-backed: a data
  segment whose ACK field acknowledges new bytes of the peer, RFC 9293 s3.4);
* :func:`call_overlaps` (the kernel's recording): a send() and a recv() of the same socket in
  the kernel at the same time, from two threads: the program itself sends and receives at once;
* :func:`half_close`: the FIN of ``shutdown(SHUT_WR)``, then the peer's data read by the side that
  closed, in FIN-WAIT-2 while the peer is in CLOSE-WAIT.

Pure functions of an :class:`~visualizer.chapters.Experiment`'s data: no IO, no drawing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from visualizer.model import FIN, RST, SYN

if TYPE_CHECKING:
    from visualizer.analysis.kernel import EndpointKernel, KernelStateChange, SocketCall
    from visualizer.analysis.report import FrameAnalysis


@dataclass(frozen=True, slots=True)
class Crossing:
    """Two data segments that crossed: ``later`` was sent before its sender acknowledged ``earlier``."""

    earlier: int
    """A data segment of one end."""
    later: int
    """A data segment of the other end whose ACK field does not cover ``earlier``'s bytes."""
    unacknowledged: int
    """Bytes of the ``earlier`` side that ``later`` leaves unacknowledged (the data in flight towards it)."""


@dataclass(frozen=True, slots=True)
class DirectionCount:
    """One end's segments in a two-way transfer."""

    sender: str
    data_segments: int
    """Every data segment, a retransmission included."""
    data_bytes: int
    """The bytes of the stream the segments carried, each counted once (a byte sent again is not two)."""
    piggybacked: int
    """Data segments whose ACK field acknowledges new bytes of the peer."""
    crossing: int
    """Data segments sent while bytes of the peer were not acknowledged yet."""
    pure_acks: int
    """Segments with no data and no SYN, FIN or RST while data flows: ACKs that did not ride on data."""


@dataclass(frozen=True, slots=True)
class CallOverlap:
    """A send() and a recv() of one socket in the kernel at the same time."""

    endpoint: str
    send: SocketCall
    recv: SocketCall
    start_ns: int
    end_ns: int

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass(frozen=True, slots=True)
class FullDuplex:
    directions: tuple[DirectionCount, DirectionCount]
    """The initiator's (client's) first."""
    both_ways_ns: tuple[int, int] | None
    """When both ends were sending: from the later first data segment to the earlier last one."""
    first_crossing: Crossing | None
    crossing_frames: tuple[int, ...]
    piggybacked_frames: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class HalfClose:
    """One end closed its sending side (FIN) and still received what the other end sent after it."""

    closer: str
    peer: str
    fin: int
    """The closer's FIN."""
    fin_acknowledged: int
    """The peer's first segment that acknowledges the FIN (0: none captured)."""
    peer_fin: int
    """The peer's own FIN, when it is done (0: none captured)."""
    data_after_fin: tuple[int, ...]
    """The peer's data segments after the closer's FIN."""
    bytes_after_fin: int
    closer_states: tuple[str, ...]
    """The closer's state (inferred from the packets) after each of those segments arrived."""
    peer_states: tuple[str, ...]
    """The peer's state when it sent each of them."""
    shutdown: SocketCall | None = None
    """The closer's ``shutdown(SHUT_WR)`` (kernel recording; None without one)."""
    reads_after_shutdown: tuple[SocketCall, ...] = ()
    """The closer's recv() calls after its shutdown that returned bytes."""
    closer_kernel: tuple[KernelStateChange, ...] = ()
    peer_kernel: tuple[KernelStateChange, ...] = ()

    @property
    def bytes_read_after_shutdown(self) -> int:
        return sum(call.result for call in self.reads_after_shutdown)


def _name(address: str, port: int) -> str:
    return f"{address}:{port}"


def _is_pure_ack(frame: FrameAnalysis) -> bool:
    """An ACK alone, while data flows (the handshake's last ACK and the closing ACKs left out)."""
    return frame.phase == "data" and not frame.record.payload_length and not frame.record.tcp_flags & (SYN | FIN | RST)


def full_duplex(frames: Sequence[FrameAnalysis]) -> FullDuplex:
    """Crossing segments and piggy-backed ACKs of one TCP conversation's frames (in capture order)."""
    sides = (True, False)
    names = {side: "" for side in sides}
    data_frames: dict[bool, list[FrameAnalysis]] = {side: [] for side in sides}
    highest_ack = {side: 0 for side in sides}
    counts = {side: {"piggybacked": 0, "crossing": 0, "pure_acks": 0} for side in sides}
    crossing: list[int] = []
    piggybacked: list[int] = []
    first: Crossing | None = None
    for frame in frames:
        side, record = frame.from_initiator, frame.record
        names[side] = names[side] or _name(record.source, record.source_port)
        if _is_pure_ack(frame):
            counts[side]["pure_acks"] += 1
        if record.payload_length:
            peer_sent = data_frames[not side]
            peer_high = max((data.next_seq for data in peer_sent), default=0)
            if peer_sent and frame.ack < peer_high:
                counts[side]["crossing"] += 1
                crossing.append(record.number)
                if first is None:
                    earlier = next(data for data in peer_sent if data.next_seq > frame.ack)
                    first = Crossing(earlier.record.number, record.number, peer_high - frame.ack)
            if highest_ack[side] and frame.ack > highest_ack[side]:
                counts[side]["piggybacked"] += 1
                piggybacked.append(record.number)
            data_frames[side].append(frame)
        if record.tcp_flags & SYN == 0:
            highest_ack[side] = max(highest_ack[side], frame.ack)
    directions = tuple(
        DirectionCount(
            names[side],
            len(data_frames[side]),
            _stream_bytes(data_frames[side]),
            **counts[side],
        )
        for side in sides
    )
    spans = [
        (data_frames[side][0].record.timestamp_ns or 0, data_frames[side][-1].record.timestamp_ns or 0)
        for side in sides
        if data_frames[side]
    ]
    both_ways = None
    if len(spans) == 2 and max(start for start, _ in spans) <= min(end for _, end in spans):
        both_ways = (max(start for start, _ in spans), min(end for _, end in spans))
    return FullDuplex(directions, both_ways, first, tuple(crossing), tuple(piggybacked))  # type: ignore[arg-type]


def _stream_bytes(data: Sequence[FrameAnalysis]) -> int:
    """The bytes of the stream that ``data`` (one direction's data segments) carried, each once."""
    covered = 0
    end = None
    for first, stop in sorted((frame.seq, frame.seq + frame.record.payload_length) for frame in data):
        if end is None or first >= end:
            covered += stop - first
            end = stop
        elif stop > end:
            covered += stop - end
            end = stop
    return covered


def call_overlaps(endpoints: Sequence[EndpointKernel]) -> list[CallOverlap]:
    """Every send() and recv() of the same socket that were in the kernel at the same time, the longest
    overlap first (kernel recording: each call from its entry to its return)."""
    overlaps: list[CallOverlap] = []
    for endpoint in endpoints:
        sends = [call for call in endpoint.calls if call.call == "send"]
        receives = [call for call in endpoint.calls if call.call == "recv"]
        for send in sends:
            for recv in receives:
                start, end = max(send.time_ns, recv.time_ns), min(send.end_ns, recv.end_ns)
                if start < end:
                    overlaps.append(CallOverlap(endpoint.name, send, recv, start, end))
    return sorted(overlaps, key=lambda overlap: -overlap.duration_ns)


def half_close(frames: Sequence[FrameAnalysis], endpoints: Sequence[EndpointKernel] = ()) -> HalfClose | None:
    """The first FIN of the conversation and the other end's data after it (None: no FIN, or no data
    after it: then nothing was half-closed). With the kernel's endpoints, the closer's shutdown() and
    the recv() calls that read that data, and both ends' state changes."""
    fin_index = next((index for index, frame in enumerate(frames) if frame.record.tcp_flags & FIN), None)
    if fin_index is None:
        return None
    fin = frames[fin_index]
    closer_side = fin.from_initiator
    later = [frame for frame in frames[fin_index + 1 :] if frame.from_initiator != closer_side]
    peer_fin = next((frame for frame in later if frame.record.tcp_flags & FIN), None)
    after = [
        frame
        for frame in later
        if frame.record.payload_length and (peer_fin is None or frame.record.number <= peer_fin.record.number)
    ]
    if not after:
        return None
    acknowledging = next((frame for frame in later if frame.ack >= fin.next_seq), None)
    closer = _name(fin.record.source, fin.record.source_port)
    peer = _name(fin.record.destination, fin.record.destination_port)
    found = HalfClose(
        closer,
        peer,
        fin.record.number,
        acknowledging.record.number if acknowledging is not None else 0,
        peer_fin.record.number if peer_fin is not None else 0,
        tuple(frame.record.number for frame in after),
        sum(frame.record.payload_length for frame in after),
        tuple(frame.receiver_state for frame in after),
        tuple(frame.state for frame in after),
    )
    closing = next((endpoint for endpoint in endpoints if endpoint.name == closer), None)
    other = next((endpoint for endpoint in endpoints if endpoint.name == peer), None)
    if closing is None:
        return found
    shutdown = next((call for call in closing.calls if call.call == "shutdown" and call.detail == "SHUT_WR"), None)
    reads = tuple(
        call
        for call in closing.calls
        if call.call == "recv" and call.result > 0 and shutdown is not None and call.time_ns > shutdown.end_ns
    )
    return replace(
        found,
        shutdown=shutdown,
        reads_after_shutdown=reads,
        closer_kernel=tuple(closing.states),
        peer_kernel=tuple(other.states) if other is not None else (),
    )


def state_at(changes: Sequence[KernelStateChange], time_ns: int) -> str:
    """The state the kernel had put the socket in at ``time_ns`` (``""`` before its first change)."""
    state = ""
    for change in changes:
        if change.time_ns <= time_ns:
            state = change.new
    return state
