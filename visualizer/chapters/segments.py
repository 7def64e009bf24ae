"""Chapter 2's measurements: how the bytes of send() calls become TCP segments, and sendto() calls UDP datagrams.

Three answers, each computed from what an experiment recorded (its frames and, when recorded, the
kernel's calls), as small dataclasses the notebook prints and the tests assert:

* :func:`bulk_cut`: one large send() cut into segments of at most the effective segment size,
  the MSS less the TCP options every segment carries (RFC 9293 s3.7.1, RFC 6691);
* :func:`writes_and_segments`: small send() calls and the data segments that carried them, with
  Nagle's algorithm (RFC 896, RFC 9293 s3.7.4) or without it (``TCP_NODELAY``);
* :func:`datagram_boundaries`: each sendto() one datagram (its IP fragments when it is larger than
  the MTU, RFC 791 s2.3), each recvfrom() one datagram (RFC 768).

Standard library only, no IO: the experiment is read already.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from visualizer.analysis.kernel import EndpointKernel, SocketCall, cover, covers, segment_size
from visualizer.analysis.report import FrameAnalysis
from visualizer.errors import UsageError
from visualizer.model import ACK, FIN, SYN, parse_tcp_options

if TYPE_CHECKING:
    from visualizer.chapters import Experiment

UDP_HEADER_BYTES = 8
"""RFC 768: the header a datagram's payload rides behind, in its first IP fragment."""
IPV4_HEADER_BYTES = 20
"""RFC 791 s3.1, without options (Linux sends none on these sockets)."""
ETHERNET_HEADER_BYTES = 14


def _thousands(value: int) -> str:
    return f"{value:,}"


# -- One large send() ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segment:
    frame: int
    length: int
    """Payload bytes."""
    time_ns: int = 0
    """When the capture saw it."""
    fin: bool = False
    """It carried the sender's FIN too (its program had closed: the last bytes go with it)."""


@dataclass(frozen=True, slots=True)
class Write:
    """One send() call that handed bytes to the kernel."""

    time_ns: int
    """When it entered the kernel."""
    length: int
    """The bytes it handed over (its result)."""
    frames: tuple[int, ...]
    """The data segments that carried them (the kernel's join)."""


@dataclass(frozen=True, slots=True)
class BulkCut:
    """The data segments one sender's bytes went out in, and the size that cut them."""

    address: str
    port: int
    """The sender's (the side that sent the most payload)."""
    sent: int
    """Bytes the program handed to the kernel (its send() calls' results; without a kernel
    recording, the bytes of the segments)."""
    send_calls: int | None
    """How many send() calls handed them over (None: no kernel recording)."""
    mss: int
    """The MSS option the connection agreed on (the smaller of the two SYNs')."""
    segment_size: int
    """Payload bytes of a full segment: the MSS less the options every segment carries."""
    segments: tuple[Segment, ...]
    """Every data segment the sender sent once (no retransmission), in sequence order."""

    @property
    def options(self) -> int:
        return self.mss - self.segment_size

    @property
    def expected(self) -> int:
        """``ceil(sent / segment_size)``: the fewest segments that can carry the bytes."""
        return math.ceil(self.sent / self.segment_size)

    @property
    def largest(self) -> int:
        return max(segment.length for segment in self.segments)

    @property
    def short(self) -> tuple[Segment, ...]:
        """The segments before the last that carried less than a full segment."""
        return tuple(segment for segment in self.segments[:-1] if segment.length < self.segment_size)

    def text(self) -> str:
        calls = (
            f"{self.send_calls} send() call{'s' if self.send_calls != 1 else ''} of {_thousands(self.sent)} bytes"
            if self.send_calls is not None
            else f"{_thousands(self.sent)} bytes"
        )
        first, last = self.segments[0], self.segments[-1]
        told = (
            f"{calls} became {len(self.segments)} segments (frames {first.frame} to {last.frame}) "
            f"of at most {self.segment_size} bytes: the MSS of {_thousands(self.mss)} less {self.options} bytes "
            f"of options in every segment. ceil({_thousands(self.sent)} / {self.segment_size}) = {self.expected}."
        )
        if not self.short:
            return told + f" Every segment is full but the last ({last.length} bytes, frame {last.frame})."
        shorts = ", ".join(f"{segment.length} bytes in frame {segment.frame}" for segment in self.short)
        return told + (
            f" Every segment is full but the last ({last.length} bytes, frame {last.frame}) and {len(self.short)} "
            f"mid-stream ({shorts}): the kernel ended a segment early there, and cut the next bytes from that point."
        )


def _data_segments(frames: Sequence[FrameAnalysis], address: str, port: int) -> tuple[Segment, ...]:
    """The segments with payload that ``address``:``port`` sent, each once, in sequence order.

    A segment is a first transmission when some of its bytes were not in an earlier captured segment
    (relative sequence numbers). Wireshark's retransmission label is not the test: a segment that the
    receiver's per-CPU queues delayed past its peers, later than the time Wireshark allows out-of-order
    segments, is labelled a retransmission although no earlier copy of it was captured.
    """
    sent = [
        frame
        for frame in frames
        if frame.record.payload_length and (frame.record.source, frame.record.source_port) == (address, port)
    ]
    covered: list[list[int]] = []  # the [start, end) ranges already seen, sorted and merged
    first: list[FrameAnalysis] = []
    for frame in sent:
        start, end = frame.seq, frame.seq + frame.record.payload_length
        if not covers(covered, start, end):
            first.append(frame)
            cover(covered, start, end)
    return tuple(
        Segment(
            frame.record.number,
            frame.record.payload_length,
            frame.record.timestamp_ns or 0,
            bool(frame.record.tcp_flags & FIN),
        )
        for frame in sorted(first, key=_seq)
    )


def _seq(frame: FrameAnalysis) -> int:
    return frame.seq


def _sender(frames: Sequence[FrameAnalysis]) -> tuple[str, int, str, int]:
    """(address, port, peer address, peer port) of the side that sent the most payload."""
    totals: dict[tuple[str, int, str, int], int] = {}
    for frame in frames:
        record = frame.record
        key = (record.source, record.source_port, record.destination, record.destination_port)
        totals[key] = totals.get(key, 0) + record.payload_length
    return max(totals, key=lambda key: totals[key])


def _sends(experiment: Experiment, stream: int, address: str, port: int) -> list[SocketCall] | None:
    """The send() calls that handed bytes to the kernel (None without a kernel recording)."""
    if experiment.kernel is None:
        return None
    endpoint = experiment.kernel.endpoint(stream, address, port)
    if endpoint is None:
        return None
    return [call for call in endpoint.calls if call.call == "send" and call.result > 0]


def bulk_cut(experiment: Experiment, stream: int = 0) -> BulkCut:
    """How the sender of TCP ``stream`` (the side that sent the most) had its bytes cut into segments.

    The effective segment size is what both sides of the capture say: the agreed MSS less the
    timestamp option when both SYNs carried it (:func:`visualizer.analysis.kernel.segment_size`,
    Linux's ``mss_cache``); the test checks it is the largest segment's payload.
    """
    frames = experiment.frames_of(stream, "tcp")
    address, port, peer, peer_port = _sender(frames)
    size = segment_size(EndpointKernel(stream, address, port, peer, peer_port), frames)
    syns = [parse_tcp_options(frame.record.tcp_options).mss for frame in frames if frame.record.tcp_flags & SYN]
    if size is None or None in syns or not syns:
        raise UsageError(f"{experiment.pcap.name}: TCP stream {stream} has no SYNs with an MSS option")
    segments = _data_segments(frames, address, port)
    calls = _sends(experiment, stream, address, port)
    sent = sum(call.result for call in calls) if calls is not None else sum(segment.length for segment in segments)
    mss = min(mss for mss in syns if mss is not None)
    return BulkCut(address, port, sent, len(calls) if calls is not None else None, mss, size, segments)


# -- Small send() calls, with and without Nagle --------------------------------------------------


@dataclass(frozen=True, slots=True)
class WritesAndSegments:
    """The small writes of one connection's client and the data segments that carried them."""

    stream: int
    calls: tuple[Write, ...]
    """The send() calls that handed bytes to the kernel, in time order."""
    segments: tuple[Segment, ...]
    writes_per_segment: tuple[int, ...]
    """For each segment, how many send() calls' bytes it carried (from the kernel's join)."""
    acks: tuple[int, ...] = ()
    """When the peer's ACKs of new data arrived (capture time): with Nagle, what lets the next segment go."""

    @property
    def writes(self) -> int:
        return len(self.calls)

    @property
    def written(self) -> int:
        return sum(call.length for call in self.calls)

    @property
    def no_delay(self) -> bool:
        """Every write left in a segment of its own, as with TCP_NODELAY."""
        return len(self.segments) == self.writes and all(count == 1 for count in self.writes_per_segment)

    @property
    def largest(self) -> int:
        return max(self.writes_per_segment)

    def text(self) -> str:
        name = "TCP_NODELAY" if self.no_delay else "Nagle's algorithm"
        return (
            f"stream {self.stream} ({name}): {self.writes} send() calls of {_thousands(self.written)} bytes in "
            f"{len(self.segments)} data segments (frames {self.segments[0].frame} to {self.segments[-1].frame}); "
            f"up to {self.largest} write{'s' if self.largest != 1 else ''} in one segment"
        )


def writes_and_segments(experiment: Experiment, stream: int) -> WritesAndSegments:
    """The client's send() calls in TCP ``stream`` and the data segments that carried their bytes.

    Needs the kernel's recording (the calls); a capture without one is a UsageError naming it.
    """
    frames = experiment.frames_of(stream, "tcp")
    address, port, _, _ = _sender(frames)
    calls = _sends(experiment, stream, address, port)
    if calls is None:
        raise UsageError(f"{experiment.pcap.name}: no kernel recording of the calls of TCP stream {stream}")
    segments = _data_segments(frames, address, port)
    carried = {segment.frame for segment in segments}
    writes = tuple(
        Write(call.time_ns, call.result, tuple(frame for frame in call.frames if frame in carried)) for call in calls
    )
    per_segment = tuple(sum(1 for write in writes if segment.frame in write.frames) for segment in segments)
    acks = []
    highest = -1
    for frame in frames:
        record = frame.record
        if (record.source, record.source_port) != (address, port) and record.tcp_flags & ACK and frame.ack > highest:
            if highest >= 0:
                acks.append(record.timestamp_ns or 0)
            highest = frame.ack
    return WritesAndSegments(stream, writes, segments, per_segment, tuple(acks))


# -- UDP: one sendto(), one datagram, one recvfrom() ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Datagram:
    """One sendto() and what became of it: its frame(s) on the wire and the recvfrom() that read it."""

    sent: int
    """Bytes the sendto() asked to send (and the kernel took: its result)."""
    frame: int
    """The frame that carried it whole (for a fragmented datagram, the last fragment's, which
    completes it: the reassembled datagram's UDP header and payload are shown there)."""
    payload: int
    """The UDP payload the capture decoded."""
    fragments: tuple[int, ...]
    """The frames of its IP fragments, in order (empty when it went whole); their IP payload bytes below."""
    fragment_bytes: tuple[int, ...]
    received: int | None
    """What the recvfrom() that read it returned (None: no kernel recording, or never read)."""
    asked: int | None
    """The buffer that recvfrom() offered."""


@dataclass(frozen=True, slots=True)
class DatagramBoundaries:
    datagrams: tuple[Datagram, ...]
    mtu: int | None
    """The largest IP packet in the capture, when a datagram was fragmented (the link's MTU then)."""

    @property
    def kept(self) -> bool:
        """Every recvfrom() returned exactly the bytes of one sendto(), in order."""
        return all(datagram.received == datagram.sent == datagram.payload for datagram in self.datagrams)

    def text(self) -> str:
        lines = []
        for datagram in self.datagrams:
            read = (
                f"recvfrom({_thousands(datagram.asked or 0)}) -> {_thousands(datagram.received)}"
                if datagram.received is not None
                else "not read"
            )
            wire = (
                f"{len(datagram.fragments) + 1} IP fragments (frames "
                f"{', '.join(str(number) for number in (*datagram.fragments, datagram.frame))}: "
                f"{' + '.join(_thousands(size) for size in datagram.fragment_bytes)} bytes of IP payload)"
                if datagram.fragments
                else f"frame {datagram.frame}"
            )
            lines.append(f"sendto({_thousands(datagram.sent)}) -> {wire} -> {read}")
        return "\n".join(lines)


def _ip_payload(frame: FrameAnalysis) -> int:
    """The IP payload bytes of a fragment's frame (Ethernet, IPv4 without options: loopback's)."""
    return frame.record.original_length - ETHERNET_HEADER_BYTES - IPV4_HEADER_BYTES


def fragments_needed(payload: int, mtu: int) -> int:
    """RFC 791 s2.3: fragments of a UDP datagram over a link of ``mtu`` (data in multiples of 8 bytes)."""
    per_fragment = (mtu - IPV4_HEADER_BYTES) // 8 * 8
    return math.ceil((payload + UDP_HEADER_BYTES) / per_fragment)


def datagram_boundaries(experiment: Experiment, stream: int = 0) -> DatagramBoundaries:
    """Each datagram of UDP ``stream``'s sender, its fragments, and the recvfrom() that read it.

    The sendto() and recvfrom() calls come from the kernel's recording (``KernelStory.datagram_calls``:
    UDP tracepoints carry no addresses, so they are matched to the datagrams in order, which holds
    for one sender and one receiver on loopback, where nothing reorders). A fragment is tied to the
    datagram whose frame completes it next between the same addresses (the record carries no IP
    identification: our heuristic, true for one sender).
    """
    frames = experiment.frames_of(stream, "udp")
    address, port, peer, peer_port = _sender(frames)
    whole = [frame for frame in frames if (frame.record.source, frame.record.source_port) == (address, port)]
    pending: list[FrameAnalysis] = []
    by_frame: dict[int, list[FrameAnalysis]] = {}
    for frame in experiment.frames:
        record = frame.record
        if record.fragment and (record.source, record.destination) == (address, peer):
            pending.append(frame)
        elif frame in whole:
            by_frame[record.number], pending = pending, []
    sends: list[SocketCall] = []
    receives: list[SocketCall] = []
    if experiment.kernel is not None:
        calls = experiment.kernel.datagram_calls
        sends = [call for call in calls if call.call == "send" and call.result >= 0]
        receives = [call for call in calls if call.call == "recv" and call.result >= 0]
    datagrams = []
    largest = 0
    for index, frame in enumerate(whole):
        fragments = by_frame.get(frame.record.number, [])
        sizes = tuple(_ip_payload(item) for item in (*fragments, frame)) if fragments else ()
        if fragments:
            largest = max(largest, *(item.record.original_length - ETHERNET_HEADER_BYTES for item in fragments))
        send = sends[index] if index < len(sends) else None
        receive = receives[index] if index < len(receives) else None
        datagrams.append(
            Datagram(
                sent=send.result if send is not None else frame.record.payload_length,
                frame=frame.record.number,
                payload=frame.record.payload_length,
                fragments=tuple(item.record.number for item in fragments),
                fragment_bytes=sizes,
                received=receive.result if receive is not None else None,
                asked=receive.size if receive is not None else None,
            )
        )
    return DatagramBoundaries(tuple(datagrams), largest or None)
