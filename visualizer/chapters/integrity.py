"""Chapter 6, "How does a segment keep its integrity?": the measurements that state its answer.

Two guards. The checksum (RFC 9293 s3.1): the ones' complement of the ones' complement sum of the
16-bit words of a pseudo-header (addresses, protocol, TCP length), the TCP header and the payload
(RFC 1071); a receiver that finds the sum wrong discards the segment, and no ACK covers it. And the
sequence numbers: a segment, a RST above all, counts only where it falls in the receive window
(RFC 9293 s3.10.7.4; RFC 5961 s3: a RST outside the window is dropped, one inside it but not at
RCV.NXT gets a challenge ACK, only one exactly at RCV.NXT resets).

:func:`checksum_working` works a checksum out by hand from a frame's bytes (:func:`checksum_of` from a
frame of an :class:`~visualizer.chapters.Experiment`, which reads them from its capture); the others
read an Experiment's analysis and kernel events and return small dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from visualizer.analysis.report import (
    BAD_CHECKSUM,
    CHALLENGE_ACK,
    RETRANSMISSION,
    RST_ACCEPTED,
    RST_CHALLENGED,
    RST_IGNORED,
)
from visualizer.chapters.arrival import covering_ack
from visualizer.errors import UsageError
from visualizer.model import ACK, PROTOCOL_TCP, RST
from visualizer.sources.checksum import ones_complement_sum, words

if TYPE_CHECKING:
    from visualizer.chapters import Experiment

TCP_CHECKSUM_OFFSET = 16
"""The checksum field's offset in the TCP header (RFC 9293 s3.1)."""
TCP_HEADER_WORDS = (
    "source port",
    "destination port",
    "seq (high)",
    "seq (low)",
    "ack (high)",
    "ack (low)",
    "data offset, flags",
    "window",
    "checksum (as zero)",
    "urgent pointer",
)
"""The 16-bit words of a TCP header without options (RFC 9293 s3.1, Figure 1)."""


@dataclass(frozen=True, slots=True)
class Word:
    """One 16-bit word of the sum, and where it comes from."""

    part: str
    """``pseudo-header``, ``TCP header`` or ``payload``."""
    what: str
    value: int


@dataclass(frozen=True, slots=True)
class ChecksumWorking:
    """A TCP checksum worked out by hand (RFC 9293 s3.1, RFC 1071 s4.1)."""

    words: tuple[Word, ...]
    """Every word summed, in order (the checksum field counted as zero)."""
    total: int
    """Their plain sum, before folding the carries back in."""
    folded: int
    """The 16-bit ones' complement sum: the carries added back until none is left."""
    checksum: int
    """Its ones' complement (``ffff - folded``): what the field must hold."""
    stored: int
    """What the field holds."""
    pseudo_sum: int
    """The ones' complement sum of the pseudo-header alone."""

    @property
    def verdict(self) -> str:
        """``ok``; ``partial`` when the field holds only the pseudo-header's sum (the kernel left the
        rest to checksum offload, which loopback never does); ``bad`` otherwise."""
        if self.stored == self.checksum:
            return "ok"
        return "partial" if self.stored == self.pseudo_sum else "bad"

    def part(self, name: str) -> tuple[Word, ...]:
        return tuple(word for word in self.words if word.part == name)


def checksum_working(frame: bytes, link_type: int = 1) -> ChecksumWorking:
    """The checksum of the IPv4 TCP segment in ``frame`` (a captured frame's bytes), word by word."""
    from visualizer.sources.link import decode_link

    version, start, problem = decode_link(frame, link_type, [])
    packet = frame[start:]
    if version != 4 or problem or len(packet) < 20 or packet[9] != PROTOCOL_TCP:
        raise UsageError(f"not an IPv4 TCP segment{': ' + problem if problem else ''}")
    header_length = (packet[0] & 0x0F) * 4
    segment = packet[header_length : int.from_bytes(packet[2:4], "big")]
    tcp_header = (segment[12] >> 4) * 4
    source, destination = packet[12:16], packet[16:20]
    pseudo = [
        Word("pseudo-header", "source address (first half)", int.from_bytes(source[:2], "big")),
        Word("pseudo-header", "source address (second half)", int.from_bytes(source[2:], "big")),
        Word("pseudo-header", "destination address (first half)", int.from_bytes(destination[:2], "big")),
        Word("pseudo-header", "destination address (second half)", int.from_bytes(destination[2:], "big")),
        Word("pseudo-header", "zero, protocol (6)", PROTOCOL_TCP),
        Word("pseudo-header", "TCP length (header + payload)", len(segment)),
    ]
    names = TCP_HEADER_WORDS
    header = [
        Word("TCP header", names[index] if index < len(names) else f"options (word {index - len(names) + 1})", value)
        for index, value in enumerate(words(segment[:tcp_header]))
    ]
    header[TCP_CHECKSUM_OFFSET // 2] = Word("TCP header", "checksum (as zero)", 0)
    payload = [
        Word("payload", f"bytes {2 * i + 1}-{2 * i + 2}", value) for i, value in enumerate(words(segment[tcp_header:]))
    ]
    summed = (*pseudo, *header, *payload)
    total = sum(word.value for word in summed)
    folded = ones_complement_sum(b"", total)
    return ChecksumWorking(
        summed,
        total,
        folded,
        0xFFFF - folded,
        int.from_bytes(segment[TCP_CHECKSUM_OFFSET : TCP_CHECKSUM_OFFSET + 2], "big"),
        ones_complement_sum(b"", sum(word.value for word in pseudo)),
    )


def checksum_of(experiment: Experiment, number: int) -> ChecksumWorking:
    """The checksum of frame ``number`` of the experiment's capture, worked out by hand."""
    raw = experiment.raw_frame(number)
    return checksum_working(raw.data, raw.link_type)


@dataclass(frozen=True, slots=True)
class DiscardedTwin:
    """A segment with a wrong checksum, and the same segment sent again with the right one."""

    bad: int
    checksum_verdict: str
    """The decoder's verdict on the bad one (``bad``)."""
    drop_reason: str
    """The receiving kernel's reason for dropping that frame (``TCP_CSUM``); "" unrecorded."""
    acks_before_twin: tuple[int, ...]
    """The receiver's first ACK, between the bad one and its twin, that covers its bytes (none)."""
    twin: int
    twin_verdict: str
    acked_by: int
    """The receiver's first ACK that covers the twin's bytes."""
    ack: int
    end: int
    """One past the segment's last relative sequence number (the ACK number that covers it)."""


def discarded_twin(experiment: Experiment, stream: int = 0) -> DiscardedTwin:
    frames = experiment.frames_of(stream)
    index = next(i for i, frame in enumerate(frames) if frame.analysis & BAD_CHECKSUM)
    bad = frames[index]
    end = bad.seq + bad.record.payload_length
    twin_index = next(
        i
        for i, frame in enumerate(frames)
        if i > index
        and frame.from_initiator == bad.from_initiator
        and frame.analysis & RETRANSMISSION
        and frame.seq == bad.seq
    )
    twin = frames[twin_index]
    early = covering_ack(frames[: twin_index + 1], index, bad.from_initiator, end)
    acked = covering_ack(frames, twin_index, bad.from_initiator, end)
    drops = experiment.kernel_marks("drop", stream)
    return DiscardedTwin(
        bad.record.number,
        bad.record.checksum,
        drops.get(bad.record.number, ""),
        (early.record.number,) if early else (),
        twin.record.number,
        twin.record.checksum,
        acked.record.number if acked else 0,
        acked.ack if acked else 0,
        end,
    )


@dataclass(frozen=True, slots=True)
class ResetTest:
    """One RST against the receiver's window, and what the receiver did."""

    frame: int
    seq: int
    """The RST's relative sequence number."""
    expected: int
    """RCV.NXT: the receiver's last ACK number before it."""
    window: int
    """The receiver's last advertised window (scaled): RCV.NXT to RCV.NXT + window - 1 is acceptable."""
    verdict: str
    """The analysis' reading: ``ignored`` (outside the window), ``challenged``, ``accepted``."""
    challenge_ack: int
    """The receiver's challenge ACK (0: none)."""
    kernel: str
    """The receiving kernel's own record for the frame: a drop's reason (``TCP_INVALID_SEQUENCE``,
    ``TCP_RESET``) or ``reset_received``; "" unrecorded."""

    @property
    def offset(self) -> int:
        """How far past RCV.NXT it lands (0: exactly there)."""
        return self.seq - self.expected


_VERDICTS = ((RST_IGNORED, "ignored"), (RST_CHALLENGED, "challenged"), (RST_ACCEPTED, "accepted"))


def reset_tests(experiment: Experiment, stream: int = 0) -> list[ResetTest]:
    """Every RST that was injected into a stream (the analysis' ``injected_rst``), in order."""
    frames = experiment.frames_of(stream)
    drops = experiment.kernel_marks("drop", stream)
    resets = experiment.kernel_marks("reset_received", stream)
    found = []
    for index, frame in enumerate(frames):
        if not frame.record.tcp_flags & RST or not any(f.kind == "injected_rst" for f in frame.findings):
            continue
        before = [f for f in frames[:index] if f.from_initiator != frame.from_initiator and f.record.tcp_flags & ACK]
        number = frame.record.number
        challenge = next(
            (
                later.record.number
                for later in frames[index + 1 :]
                if later.analysis & CHALLENGE_ACK and any(number in f.refers_to for f in later.findings)
            ),
            0,
        )
        kernel = drops.get(number) or ("reset_received" if number in resets else "")
        found.append(
            ResetTest(
                number,
                frame.seq,
                before[-1].ack if before else 0,
                before[-1].window if before else 0,
                next((name for bit, name in _VERDICTS if frame.analysis & bit), ""),
                challenge,
                kernel,
            )
        )
    return found
