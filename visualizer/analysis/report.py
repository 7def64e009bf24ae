"""What the analysis returns: per-frame results, conversations, findings.

Plain data (NamedTuples and dataclasses), so renderers, exporters and tests
read it without knowing how it was computed. Standard library only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import NamedTuple

from visualizer.model import PROTOCOL_NUMBERS, PacketRecord

# Analysis flags, named after Wireshark's tcp.analysis.* fields so users can
# cross-check a frame in Wireshark. Bits, so a frame carries several cheaply.
RETRANSMISSION = 1 << 0
FAST_RETRANSMISSION = 1 << 1
SPURIOUS_RETRANSMISSION = 1 << 2
DUPLICATE_ACK = 1 << 3
OUT_OF_ORDER = 1 << 4
ZERO_WINDOW = 1 << 5
ZERO_WINDOW_PROBE = 1 << 6
ZERO_WINDOW_PROBE_ACK = 1 << 7
KEEP_ALIVE = 1 << 8
KEEP_ALIVE_ACK = 1 << 9
WINDOW_FULL = 1 << 10
WINDOW_UPDATE = 1 << 11
LOST_SEGMENT = 1 << 12
ACK_LOST_SEGMENT = 1 << 13
REUSED_PORTS = 1 << 14
STATE_ANOMALY = 1 << 15
"""Not Wireshark's: a segment the RFC 9293 state table has no transition for."""

# Findings of sockstory's own (Wireshark has none of these): explanations, from the RFCs.
CHALLENGE_ACK = 1 << 16
"""An ACK that answers an unacceptable RST or a SYN in a synchronized state (RFC 5961 s3.2, s4.2)."""
RST_ACCEPTED = 1 << 17
"""A RST at the receiver's next expected sequence number: it resets (RFC 5961 s3.2)."""
RST_CHALLENGED = 1 << 18
"""A RST in the receive window but not at RCV.NXT: ignored, answered with a challenge ACK."""
RST_IGNORED = 1 << 19
"""A RST outside the receive window, or one its receiver visibly did not act on."""
INJECTED_RST = 1 << 20
"""A RST whose sender's socket kept sending afterwards: it did not come from that socket."""
BAD_CHECKSUM = 1 << 21
"""A segment with a wrong checksum: its receiver discards it (RFC 9293 s3.1)."""
NOT_RECEIVED = 1 << 22
"""Heuristic of ours: data the receiver never acknowledged before it was sent again, while the
receiver SACKed later data, or acknowledged past the retransmission at once (lost after the capture point)."""
NOT_YET_RECEIVED = 1 << 23
"""A SYN or FIN that a later segment of its receiver shows it had not received (yet)."""
NO_LISTENER = 1 << 24
"""A SYN answered with a RST: nothing listened on that port (RFC 9293 s3.10.7.1)."""
RECEIPT_UNDECIDED = 1 << 25
"""A SYN or FIN whose receipt nothing later in the capture confirms or refutes."""
STATE_ASSUMED = 1 << 26
"""A conversation first seen after its SYN: the endpoints' starting states are assumed."""
SIMULTANEOUS_OPEN = 1 << 27
"""A SYN-ACK sent while the sender's own SYN is out and the peer's SYN has come in (RFC 9293 Figure 7).
Wireshark calls it a retransmission; sockstory does not."""

ANALYSIS_NAMES: tuple[tuple[int, str], ...] = (
    (RETRANSMISSION, "retransmission"),
    (FAST_RETRANSMISSION, "fast_retransmission"),
    (SPURIOUS_RETRANSMISSION, "spurious_retransmission"),
    (DUPLICATE_ACK, "duplicate_ack"),
    (OUT_OF_ORDER, "out_of_order"),
    (ZERO_WINDOW, "zero_window"),
    (ZERO_WINDOW_PROBE, "zero_window_probe"),
    (ZERO_WINDOW_PROBE_ACK, "zero_window_probe_ack"),
    (KEEP_ALIVE, "keep_alive"),
    (KEEP_ALIVE_ACK, "keep_alive_ack"),
    (WINDOW_FULL, "window_full"),
    (WINDOW_UPDATE, "window_update"),
    (LOST_SEGMENT, "lost_segment"),
    (ACK_LOST_SEGMENT, "ack_lost_segment"),
    (REUSED_PORTS, "reused_ports"),
    (STATE_ANOMALY, "state_anomaly"),
    (CHALLENGE_ACK, "challenge_ack"),
    (RST_ACCEPTED, "rst_accepted"),
    (RST_CHALLENGED, "rst_challenged"),
    (RST_IGNORED, "rst_ignored"),
    (INJECTED_RST, "injected_rst"),
    (BAD_CHECKSUM, "bad_checksum"),
    (NOT_RECEIVED, "not_received"),
    (NOT_YET_RECEIVED, "not_yet_received"),
    (NO_LISTENER, "no_listener"),
    (RECEIPT_UNDECIDED, "receipt_undecided"),
    (STATE_ASSUMED, "state_assumed"),
    (SIMULTANEOUS_OPEN, "simultaneous_open"),
)
ANALYSIS_BITS: dict[str, int] = {name: bit for bit, name in ANALYSIS_NAMES}

_names_cache: dict[int, tuple[str, ...]] = {}


def analysis_names(mask: int) -> tuple[str, ...]:
    """The flag names set in ``mask``, in a fixed order."""
    names = _names_cache.get(mask)
    if names is None:
        names = _names_cache[mask] = tuple(name for bit, name in ANALYSIS_NAMES if mask & bit)
    return names


@dataclass(frozen=True, slots=True)
class Finding:
    """Something the analysis observed: data, never an exception."""

    kind: str
    frame: int
    protocol: str
    """``tcp`` or ``udp`` when the frame belongs to a stream, else ``""``."""
    stream: int
    reason: str
    refers_to: tuple[int, ...] = ()
    """The frames this finding is about besides its own: a retransmission's original, the duplicate
    ACKs behind a fast retransmission, the RST a challenge ACK answers..."""
    original: int = 0
    """For a retransmission: the frame that first sent its sequence number (also in ``refers_to``);
    0 when that frame was not captured."""

    def __reduce__(self) -> tuple[type[Finding], tuple[object, ...]]:
        # Pickled as its fields in order (reports cross from parallel workers): three times
        # faster both ways than the default of slotted dataclasses.
        return Finding, _FINDING_FIELDS(self)


_FINDING_FIELDS = attrgetter(*(item.name for item in fields(Finding)))


WINDOW_SCALE_UNKNOWN = -1
"""``FrameAnalysis.window_scale`` when the handshake that sets it was not captured (Wireshark's -1)."""


class FrameAnalysis(NamedTuple):
    """The analysis of one frame. Fields that do not apply hold -1 or ``""``."""

    record: PacketRecord
    protocol: str
    """``tcp``, ``udp``, ``icmp``, ``icmpv6``, ``ip`` (no transport decoded) or ``other``."""
    stream: int
    """Wireshark's tcp.stream / udp.stream; for an ICMP error, the stream it quotes."""
    seq: int
    """Relative sequence number (Wireshark's tcp.seq)."""
    ack: int
    """Relative acknowledgement number (tcp.ack); the raw field when the ACK flag is clear."""
    next_seq: int
    window: int
    """The advertised window after scaling (tcp.window_size)."""
    window_scale: int
    """Wireshark's tcp.window_size_scalefactor: the multiplier, WINDOW_SCALE_UNKNOWN (-1: the handshake
    that sets it was not captured), -2 no scaling."""
    analysis: int
    """Bit set of analysis flags; :func:`analysis_names` names them."""
    duplicate_ack_number: int
    state: str
    """The sender's TCP state after this frame."""
    receiver_state: str
    phase: str
    """``handshake``, ``data`` or ``teardown`` for TCP; ``""`` otherwise."""
    from_initiator: bool
    """Sent by the conversation's initiator (the first frame's sender, or the SYN's)."""
    findings: tuple[Finding, ...] = ()
    """What the analysis says about this frame, each with its reason and the frames it refers to."""


def in_stream(frame: FrameAnalysis, protocol: str, stream: int) -> bool:
    """Whether ``frame`` belongs to stream ``stream`` of ``protocol`` (``tcp`` or ``udp``).

    An ICMP error belongs to the stream of the flow it quotes, as in Wireshark.
    """
    if frame.stream != stream:
        return False
    quoted = frame.record.quoted
    return (quoted.transport if quoted is not None else frame.record.transport) == PROTOCOL_NUMBERS[protocol]


@dataclass(slots=True)
class ConversationSummary:
    """One TCP or UDP conversation, like a row of ``tshark -z conv``."""

    protocol: str
    stream: int
    address_a: str
    port_a: int
    address_b: str
    port_b: int
    first_frame: int
    first_time_ns: int
    last_time_ns: int = 0
    frames_a_to_b: int = 0
    bytes_a_to_b: int = 0
    frames_b_to_a: int = 0
    bytes_b_to_a: int = 0
    outcome: str = ""
    """TCP only: complete, reset, refused, unanswered, half-closed, open."""
    state_a: str = ""
    state_b: str = ""
    analysis_counts: dict[str, int] = field(default_factory=dict)
    """Findings by kind (a plain dict: a Counter per conversation costs 2% of the analysis)."""

    @property
    def frames(self) -> int:
        return self.frames_a_to_b + self.frames_b_to_a

    @property
    def bytes(self) -> int:
        return self.bytes_a_to_b + self.bytes_b_to_a

    @property
    def duration_ns(self) -> int:
        return self.last_time_ns - self.first_time_ns

    def __reduce__(self) -> tuple[type[ConversationSummary], tuple[object, ...]]:
        return ConversationSummary, _CONVERSATION_FIELDS(self)  # as Finding.__reduce__


_CONVERSATION_FIELDS = attrgetter(*(item.name for item in fields(ConversationSummary)))


@dataclass(slots=True)
class Report:
    """The analysis of a whole capture."""

    source: str = ""
    frames: int = 0
    first_frame: int = 0
    """Number of the first frame analysed (1 unless a worker saw only part of the file)."""
    first_time_ns: int | None = None
    conversations: list[ConversationSummary] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    analysis_counts: Counter[str] = field(default_factory=Counter)
    undecoded_frames: int = 0
    frame_analyses: list[FrameAnalysis] = field(default_factory=list)
    """Filled only when the caller asks to keep frames (a ladder needs them; a 1M-frame summary does not)."""

    def tcp_conversations(self) -> list[ConversationSummary]:
        return [conversation for conversation in self.conversations if conversation.protocol == "tcp"]

    def udp_conversations(self) -> list[ConversationSummary]:
        return [conversation for conversation in self.conversations if conversation.protocol == "udp"]

    def stream(self, protocol: str, number: int) -> ConversationSummary | None:
        for conversation in self.conversations:
            if conversation.protocol == protocol and conversation.stream == number:
                return conversation
        return None
