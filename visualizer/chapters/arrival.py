"""Chapter 5, "How do we know a request arrived?": the measurements that state its answer.

The answer is in the acknowledgements: a receiver's ACK number names the next byte it expects, so
an ACK covers every byte before it (RFC 9293 s3.4). What happens when none comes is the rest of the
chapter: a lost segment repaired by a fast retransmission after duplicate ACKs (RFC 5681 s3.2,
SACK: RFC 2018), a silent peer's data retransmitted with a doubling timeout (RFC 6298 s5.5),
keep-alive probes on an idle connection (RFC 9293 s3.8.4), and the kernel's answers when nothing
listens: a RST for a SYN (RFC 9293 s3.10.7.1), an ICMP port unreachable for a datagram (RFC 1122
s4.1.3.1, RFC 792).

Each function reads an :class:`~visualizer.chapters.Experiment` (the frames' analysis, and the
kernel's events when they were recorded) and returns a small dataclass; nothing here draws or
reads a file, so the tests run them on committed captures too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from visualizer.analysis.kernel import cover, covers
from visualizer.analysis.report import (
    DUPLICATE_ACK,
    FAST_RETRANSMISSION,
    KEEP_ALIVE,
    KEEP_ALIVE_ACK,
    NOT_RECEIVED,
    RETRANSMISSION,
)
from visualizer.analysis.sequence import relative
from visualizer.errors import UsageError
from visualizer.model import ACK, FIN, PROTOCOL_ICMP, RST, SYN, flag_text, parse_tcp_options

if TYPE_CHECKING:
    from visualizer.analysis.report import FrameAnalysis
    from visualizer.chapters import Experiment

DUPACK_THRESHOLD = 3
"""Duplicate ACKs before a fast retransmission (RFC 5681 s3.2)."""
RTO_MIN_NS = 200_000_000
"""Linux's smallest retransmission timeout (``TCP_RTO_MIN``, ``net.ipv4.tcp_rto_min_us``), where RFC 6298
s2.4 says an RTO below 1 s SHOULD be rounded up to 1 s."""
ICMP_DESTINATION_UNREACHABLE = 3
ICMP_PORT_UNREACHABLE = 3
"""RFC 792: type 3, code 3 (port unreachable)."""


def _end(frame: FrameAnalysis) -> int:
    """One past the segment's last relative sequence number (a SYN and a FIN count one)."""
    flags = frame.record.tcp_flags
    return frame.seq + frame.record.payload_length + (1 if flags & (SYN | FIN) else 0)


def covering_ack(frames: list[FrameAnalysis], after: int, sender_is_initiator: bool, end: int) -> FrameAnalysis | None:
    """The first frame of the peer after index ``after`` whose ACK number covers ``end``."""
    for frame in frames[after + 1 :]:
        if frame.from_initiator != sender_is_initiator and frame.record.tcp_flags & ACK and frame.ack >= end:
            return frame
    return None


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """A segment that takes sequence space, and the peer's first ACK that covers it."""

    frame: int
    flags: str
    first: int
    """Its first relative sequence number."""
    end: int
    """One past its last (the ACK number that covers it)."""
    acked_by: int
    """The frame of that ACK (0: none was captured)."""
    ack: int
    """That ACK's (relative) number: ``end`` or more (an ACK covers every byte before its number)."""
    delay_ns: int
    from_initiator: bool


def acknowledgements(experiment: Experiment, stream: int = 0) -> list[Acknowledgement]:
    """Every first transmission of data, SYN or FIN in a TCP stream, with the ACK that covers it.

    A first transmission takes sequence space no earlier captured segment of its sender took (as
    chapter 2 counts them): Wireshark's retransmission label is not the test, as it also names a
    first copy that reordering delayed past its out-of-order time."""
    frames = experiment.frames_of(stream)
    found = []
    sent: dict[bool, list[list[int]]] = {True: [], False: []}  # each sender's sequence space seen
    for index, frame in enumerate(frames):
        record = frame.record
        if not (record.payload_length or record.tcp_flags & (SYN | FIN)) or record.tcp_flags & RST:
            continue
        end = _end(frame)
        seen = sent[frame.from_initiator]
        if covers(seen, frame.seq, end):
            continue
        cover(seen, frame.seq, end)
        covering = covering_ack(frames, index, frame.from_initiator, end)
        found.append(
            Acknowledgement(
                record.number,
                flag_text(record.tcp_flags),
                frame.seq,
                end,
                covering.record.number if covering else 0,
                covering.ack if covering else 0,
                (covering.record.timestamp_ns or 0) - (record.timestamp_ns or 0) if covering else 0,
                frame.from_initiator,
            )
        )
    return found


@dataclass(frozen=True, slots=True)
class LossRecovery:
    """One lost segment and how TCP repaired it."""

    lost: int
    """The frame that did not arrive (captured before the receiver's input rule dropped it)."""
    first: int
    end: int
    """Its bytes: relative sequence numbers ``first`` to ``end - 1``."""
    drop_reason: str
    """The receiving kernel's reason for dropping that very frame (``NETFILTER_DROP``); "" unrecorded."""
    duplicate_acks: tuple[int, ...]
    """The receiver's duplicate ACKs (ACK number ``first``) between the loss and the retransmission."""
    sack_blocks: tuple[tuple[int, int], ...]
    """The SACK blocks of the last of them (relative [left, right) edges: what arrived after the hole)."""
    retransmission: int
    fast: bool
    """Sent on duplicate ACKs (Wireshark's fast_retransmission), not on the timeout."""
    kernel_retransmission: bool
    """The sender's kernel counted a retransmission on that frame (``tcp_retransmit_skb``)."""
    acked_by: int
    """The first ACK after the retransmission that covers the lost bytes."""
    ack: int
    delay_ns: int
    """From the lost frame to its retransmission."""
    released: int
    """How much the receiver's Recv-Q grew when the retransmission arrived: the bytes that had waited
    behind the hole, readable all at once (-1: no kernel recording)."""


def loss_recovery(experiment: Experiment, stream: int = 0) -> LossRecovery:
    """The segment the kernel dropped on arrival (or, without a recording, the one the analysis
    finds not received), its duplicate ACKs, its retransmission and the ACK that covers it."""
    frames = experiment.frames_of(stream)
    index_of = {frame.record.number: index for index, frame in enumerate(frames)}
    drops = {
        frame: reason
        for frame, reason in experiment.kernel_marks("drop", stream).items()
        if frame in index_of and frames[index_of[frame]].record.payload_length
    }
    lost_index = next(
        (
            index
            for index, frame in enumerate(frames)
            if frame.record.number in drops or (not drops and frame.analysis & NOT_RECEIVED)
        ),
        None,
    )
    if lost_index is None:
        raise UsageError(f"{experiment.pcap.name}: no lost segment in TCP stream {stream}")
    lost = frames[lost_index]
    end = _end(lost)
    again = next(
        index
        for index, frame in enumerate(frames)
        if index > lost_index
        and frame.from_initiator == lost.from_initiator
        and frame.analysis & RETRANSMISSION
        and frame.seq <= lost.seq < _end(frame)
    )
    retransmission = frames[again]
    duplicates = [
        frame
        for frame in frames[lost_index + 1 : again]
        if frame.from_initiator != lost.from_initiator and frame.analysis & DUPLICATE_ACK and frame.ack == lost.seq
    ]
    base = (lost.record.seq - lost.seq) & 0xFFFFFFFF  # the sender's ISN: relative = raw - base
    blocks: tuple[tuple[int, int], ...] = ()
    if duplicates:
        raw = parse_tcp_options(duplicates[-1].record.tcp_options).sack_blocks
        blocks = tuple((relative(left, base), relative(right, base)) for left, right in raw)
    covering = covering_ack(frames, again, lost.from_initiator, end)
    counted = experiment.kernel_marks("retransmission", stream)
    return LossRecovery(
        lost.record.number,
        lost.seq,
        end,
        drops.get(lost.record.number, ""),
        tuple(frame.record.number for frame in duplicates),
        blocks,
        retransmission.record.number,
        bool(retransmission.analysis & FAST_RETRANSMISSION),
        retransmission.record.number in counted,
        covering.record.number if covering else 0,
        covering.ack if covering else 0,
        (retransmission.record.timestamp_ns or 0) - (lost.record.timestamp_ns or 0),
        _released(experiment, stream, retransmission),
    )


def _released(experiment: Experiment, stream: int, arrival: FrameAnalysis) -> int:
    """The step of the receiver's Recv-Q at frame ``arrival`` (-1 without its queues)."""
    record = arrival.record
    for endpoint in experiment.endpoints(stream):
        if (endpoint.address, endpoint.port) != (record.destination, record.destination_port):
            continue
        previous = 0
        for sample in endpoint.queues:
            if sample.frame == record.number and sample.cause == "data":
                return sample.recv_q - previous
            previous = sample.recv_q
    return -1


@dataclass(frozen=True, slots=True)
class Backoff:
    """A segment sent again and again to a peer that never acknowledges it."""

    original: int
    retransmissions: tuple[int, ...]
    gaps_ns: tuple[int, ...]
    """The waits: from the original to the first retransmission, then between retransmissions."""
    counted_by_kernel: tuple[int, ...]
    """The retransmissions the sender's kernel counted (``tcp_retransmit_skb``), by frame."""

    @property
    def ratios(self) -> tuple[float, ...]:
        """Each wait over the one before (the timeout doubles: about 2, a timer fires late, never early)."""
        return tuple(later / earlier for earlier, later in zip(self.gaps_ns, self.gaps_ns[1:]))

    def floors_ns(self, minimum_ns: int = RTO_MIN_NS) -> tuple[int, ...]:
        """The least each wait can be when the timeout starts at ``minimum_ns`` and doubles each time."""
        return tuple(minimum_ns << k for k in range(len(self.gaps_ns)))


def backoff(experiment: Experiment, stream: int = 0) -> Backoff:
    """The most retransmitted segment of a stream and the waits between its transmissions."""
    frames = experiment.frames_of(stream)
    sent_again: dict[int, list[FrameAnalysis]] = {}
    for frame in frames:
        for finding in frame.findings:
            if finding.kind == "retransmission" and finding.original:
                sent_again.setdefault(finding.original, []).append(frame)
    if not sent_again:
        raise UsageError(f"{experiment.pcap.name}: no retransmission in TCP stream {stream}")
    original, again = max(sent_again.items(), key=lambda item: len(item[1]))
    by_number = {frame.record.number: frame for frame in frames}
    times = [by_number[original].record.timestamp_ns or 0] + [frame.record.timestamp_ns or 0 for frame in again]
    counted = experiment.kernel_marks("retransmission", stream)
    numbers = tuple(frame.record.number for frame in again)
    return Backoff(
        original,
        numbers,
        tuple(later - earlier for earlier, later in zip(times, times[1:])),
        tuple(number for number in numbers if number in counted),
    )


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """One keep-alive probe and its answer."""

    probe: int
    seq: int
    """The probe's relative sequence number: one before the next the peer expects."""
    expected: int
    """The next sequence number the peer had acknowledged (the probe's ``seq + 1``)."""
    idle_ns: int
    """Since the frame before it on the connection: the idle time (first probe) or the interval."""
    answer: int
    """The peer's ACK (0: none captured)."""
    answer_ack: int
    drop_reason: str
    """Why the peer's kernel dropped the probe after answering it (``TCP_OLD_SEQUENCE``); "" unrecorded."""


def keepalives(experiment: Experiment, stream: int = 0) -> list[KeepAlive]:
    frames = experiment.frames_of(stream)
    drops = experiment.kernel_marks("drop", stream)
    found = []
    for index, frame in enumerate(frames):
        if not frame.analysis & KEEP_ALIVE or index == 0:
            continue
        answer = next(
            (
                later
                for later in frames[index + 1 :]
                if later.analysis & KEEP_ALIVE_ACK and any(frame.record.number in f.refers_to for f in later.findings)
            ),
            None,
        )
        expected = max(
            f.ack for f in frames[:index] if f.from_initiator != frame.from_initiator and f.record.tcp_flags & ACK
        )
        found.append(
            KeepAlive(
                frame.record.number,
                frame.seq,
                expected,
                (frame.record.timestamp_ns or 0) - (frames[index - 1].record.timestamp_ns or 0),
                answer.record.number if answer else 0,
                answer.ack if answer else 0,
                drops.get(frame.record.number, ""),
            )
        )
    return found


@dataclass(frozen=True, slots=True)
class Refusal:
    """A SYN to a port where nothing listens, and the kernel's RST."""

    syn: int
    syn_seq: int
    """The SYN's raw sequence number."""
    reset: int
    reset_flags: str
    reset_seq: int
    reset_ack: int
    """The RST's raw numbers: RFC 9293 s3.10.7.1 sends <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>."""
    reset_sent_by_kernel: bool
    """The listener-less side's kernel counted a reset sent (``tcp_send_reset``) for that frame."""
    reset_received_by_kernel: bool
    """The client's kernel counted it received (``tcp_receive_reset``): its connect() fails."""


def refusal(experiment: Experiment, stream: int = 0) -> Refusal:
    frames = experiment.frames_of(stream)
    syn = next(frame for frame in frames if frame.record.tcp_flags & (SYN | ACK) == SYN)
    reset = next(frame for frame in frames if frame.record.tcp_flags & RST)
    number = reset.record.number
    return Refusal(
        syn.record.number,
        syn.record.seq,
        number,
        flag_text(reset.record.tcp_flags),
        reset.record.seq,
        reset.record.ack,
        number in experiment.kernel_marks("reset_sent", stream),
        number in experiment.kernel_marks("reset_received", stream),
    )


@dataclass(frozen=True, slots=True)
class PortUnreachable:
    """A datagram to a port where nothing listens, and the ICMP error about it."""

    datagram: int
    destination_port: int
    icmp: int
    icmp_type: int
    icmp_code: int
    quoted_ports: tuple[int, int]
    """The source and destination ports of the datagram the error quotes (RFC 792: its first 8 bytes)."""
    delay_ns: int


def port_unreachable(experiment: Experiment, stream: int = 0) -> PortUnreachable:
    frames = experiment.frames_of(stream, "udp")
    datagram = next(frame for frame in frames if frame.record.transport != PROTOCOL_ICMP)
    error = next(
        frame
        for frame in frames
        if frame.record.transport == PROTOCOL_ICMP and frame.record.icmp_type == ICMP_DESTINATION_UNREACHABLE
    )
    quoted = error.record.quoted
    return PortUnreachable(
        datagram.record.number,
        datagram.record.destination_port,
        error.record.number,
        error.record.icmp_type,
        error.record.icmp_code,
        (quoted.source_port, quoted.destination_port) if quoted else (0, 0),
        (error.record.timestamp_ns or 0) - (datagram.record.timestamp_ns or 0),
    )
