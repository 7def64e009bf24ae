"""The ladder (sequence) diagram as data: participants and rows, before any drawing.

Computed first, drawn second (the seaborn contract): the matplotlib ladder, the
ASCII ladder and the Mermaid export all read a :class:`LadderLayout`. Standard
library only.

Rows are frames (:class:`Arrow`), frames that cannot be an arrow (:class:`Mark`:
an undecodable frame, or one sent to its own sender), folded runs of routine
frames (:class:`Fold`), idle gaps (:class:`Gap`) and, when the kernel's side of
the capture was recorded, the programs' socket calls (:class:`Call`), merged
with the frames by time (see :func:`_with_calls`).

A frame is *rare*, and always a row of its own, when it opens or closes (SYN,
FIN, a RST unlike the last one in its direction), belongs to the handshake or
the teardown, changes an endpoint's state, is not TCP, is the first data in its
direction, or carries a finding other than the routine ones of a transfer
(:data:`ROUTINE_FINDINGS`: a window-limited segment, a segment out of order (a
bulk transfer's segments, handled on several CPUs, overtake each other), a
duplicate ACK, a zero-window probe and its answer, a keep-alive and its ACK, a
zero window that goes on). A routine finding is rare too the first time it appears in a
direction, and so is the zero window that starts a zero-window episode. Runs of
other frames (routine ones) longer than ``fold_minimum`` fold into one row that
counts them per direction and says what they were ("client → server: 28 data
segments, 27 KB, all window-limited"), so a diagram stays legible at 10 and at
10,000 frames without dropping a label. The frames that a rare row refers to (a
retransmission's original, the duplicate ACKs behind a fast retransmission, the
frame an ignored RST is followed by) are unfolded again.

A socket call is a row of its own on its lifeline's application lane, except a
routine one: a send or recv after the first of its kind on that lifeline,
that returned bytes, made while a folded run went by: the fold counts it
("12 recv() calls, 47 KB"). A call that is not routine and was made in the
middle of a folded run splits it there (when its frames were kept). Calls are
the kernel's (:class:`visualizer.analysis.kernel.SocketCall`): which frames
carried a send's bytes or delivered a recv's is the join's finding; the layout
only quotes the first bytes of a send from the frame that carried them.
"""

from __future__ import annotations

import re
import textwrap
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from visualizer.analysis.report import WINDOW_SCALE_UNKNOWN, Finding, FrameAnalysis, analysis_names
from visualizer.analysis.states import INITIAL_STATES
from visualizer.model import (
    ACK,
    FIN,
    PREVIEW_CHARACTERS,
    PROTOCOL_NUMBERS,
    PSH,
    RST,
    SYN,
    PacketRecord,
    describe_options,
    endpoint_text,
    flag_text,
    parse_tcp_options,
    preview,
)

if TYPE_CHECKING:
    from visualizer.analysis.kernel import KernelStory, SocketCall

FOLD_MINIMUM = 2
"""Runs of routine frames longer than this are folded (a fold of three frames saves two rows)."""
FOLD_KEEP = 0
"""Frames kept visible at each end of a folded run (the first of each kind is a row already)."""
ROUTINE_FINDINGS = frozenset(
    {
        "window_full",
        "out_of_order",
        "duplicate_ack",
        "zero_window",
        "zero_window_probe",
        "zero_window_probe_ack",
        "keep_alive",
        "keep_alive_ack",
    }
)
"""Findings that repeat in a transfer: after their first appearance in a direction, frames that
carry only these fold (a zero window that starts an episode stays a row; its end is a window update)."""
LINKED_DUPLICATE_ACKS = 1
"""Duplicate ACKs behind a fast retransmission that the ladder links and keeps visible: the last
one, which triggered it (its text counts the duplicates: ``dup ACK ×3``; the earlier ones fold)."""
IDLE_SECONDS = 1.0
IDLE_FACTOR = 20.0
"""A pause is an idle gap when it lasts IDLE_SECONDS and IDLE_FACTOR times the median pause."""
IDLE_NS = int(IDLE_SECONDS * 1e9)
PREVIEW_KEPT = PREVIEW_CHARACTERS + 1
"""Payload bytes a folded frame keeps: its preview, and whether there is more."""
FOLD_DETAIL_BUDGET = 50_000
"""Folded frames kept in memory (their payload cut to what a label shows) so that later references
can unfold them; beyond this, folds stay shut. The rest of a folded run is only counted, so a
ladder's memory follows its rows, not its frames."""

KINDS = ("handshake", "data", "ack", "fin", "rst", "retransmission", "udp", "icmp", "icmp_info", "other")
"""Arrow kinds, in legend order; the renderers give each its colour and line style. ``icmp`` is an
ICMP error, ``icmp_info`` an informational message (echo, neighbor discovery...)."""

_ICMP_NAMES = {
    (0, 0): "echo reply",
    (3, 0): "net unreachable",
    (3, 1): "host unreachable",
    (3, 3): "port unreachable",
    (3, 4): "fragmentation needed",
    (3, 13): "administratively prohibited",
    (5, 0): "redirect",
    (5, 1): "redirect",
    (8, 0): "echo request",
    (9, 0): "router advertisement",
    (10, 0): "router solicitation",
    (11, 0): "TTL exceeded",
    (13, 0): "timestamp request",
    (14, 0): "timestamp reply",
}
_ICMPV6_NAMES = {
    (1, 0): "no route",
    (1, 1): "administratively prohibited",
    (1, 3): "address unreachable",
    (1, 4): "port unreachable",
    (2, 0): "too big",
    (3, 0): "hop limit exceeded",
    (3, 1): "fragment reassembly time exceeded",
    (4, 0): "parameter problem",
    (128, 0): "echo request",
    (129, 0): "echo reply",
    (130, 0): "multicast listener query",
    (131, 0): "multicast listener report",
    (132, 0): "multicast listener done",
    (133, 0): "router solicitation",
    (134, 0): "router advertisement",
    (135, 0): "neighbor solicitation",
    (136, 0): "neighbor advertisement",
    (137, 0): "redirect",
    (143, 0): "multicast listener report v2",
}
ICMP_ERROR_TYPES = frozenset({3, 4, 5, 11, 12})
"""ICMPv4 error messages (RFC 792, RFC 1122 s3.2.2); the other types are informational."""
ICMPV6_FIRST_INFORMATIONAL = 128
"""ICMPv6 types below 128 are errors, from 128 informational (RFC 4443 s2.1)."""


def icmp_error(protocol: str, icmp_type: int | None) -> bool:
    """Whether an ICMP or ICMPv6 message of ``icmp_type`` is an error (else informational)."""
    if icmp_type is None:
        return False
    if protocol == "icmpv6":
        return icmp_type < ICMPV6_FIRST_INFORMATIONAL
    return icmp_type in ICMP_ERROR_TYPES


@dataclass(frozen=True, slots=True)
class Participant:
    """One lifeline: an endpoint (address and port) and its role in the conversation."""

    address: str
    port: int | None
    role: str
    """``client`` (the initiator; in a capture that starts at the SYN-ACK, the SYN-ACK's receiver),
    ``server``, ``host`` (no port known), or ``injector``: whoever sent
    segments in this endpoint's name that its socket did not send (finding ``injected_rst``)."""
    stream: int | None = None
    """The TCP stream of this socket, set when the ladder shows several: each is its own lifeline
    (an accepted socket is not its listener, nor another connection's socket on the same port)."""

    @property
    def endpoint(self) -> str:
        return endpoint_text(self.address, self.port)

    @property
    def label(self) -> str:
        stream = "" if self.stream is None else f" (stream {self.stream})"
        if self.role == "injector":
            return f"injector (as {self.endpoint}){stream}"
        return f"{self.role} {self.endpoint}{stream}"


@dataclass(frozen=True, slots=True)
class Arrow:
    """One frame: an arrow from its sender's lifeline to its receiver's."""

    frame: int
    time_ns: int | None
    delta_ns: int | None
    """Time since the previous frame drawn or folded (None for the first)."""
    source: int
    target: int
    kind: str
    label: str
    tooltip: str
    events: tuple[str, ...]
    analysis: tuple[str, ...]
    links: tuple[int, ...]
    """Frames this one refers to: the original of a retransmission, the duplicate ACKs behind a fast one."""
    original: int | None
    """For a retransmission, the frame that first sent this sequence number."""
    sender_state: str
    receiver_state: str
    state_changed: tuple[bool, bool]
    """Whether the sender's and the receiver's state changed with this frame."""
    phase: str
    protocol: str
    stream: int
    fate: str = ""
    """What became of the segment, from the analysis's findings: ``""`` delivered (or unknown),
    ``lost`` (never received: lost after the capture point), ``discarded`` (bad checksum),
    ``ignored`` (a RST its receiver did not act on)."""
    event_kinds: tuple[str, ...] = ()
    """The finding kind of each of ``events`` (what colours it)."""
    window_unscaled: bool = False
    """A TCP segment (not a SYN, whose window is never scaled, nor a RST, whose window means nothing)
    whose window scale is unknown (the handshake was not captured): its ``win=`` is the field as sent."""


@dataclass(frozen=True, slots=True)
class Mark:
    """A frame drawn as a marked row, not an arrow: one whose receiver is unknown (undecodable) or
    is its sender. It sits on the lifeline of its best known sender, or spans the ladder
    (``participant`` None) when the sender is unknown or ambiguous (two endpoints share its address)."""

    frame: int
    time_ns: int | None
    delta_ns: int | None
    """Time since the previous frame drawn or folded (None for the first)."""
    participant: int | None
    text: str
    """What the row says: ``undecodable frame: <problem>``, or the frame's label and ``(to itself)``."""
    tooltip: str
    undecodable: bool = True
    """False for a decoded frame sent to its own sender."""


@dataclass(frozen=True, slots=True)
class FoldedCalls:
    """The routine calls of one kind that one lifeline's program made while a fold went by."""

    participant: int
    call: str
    count: int
    data_bytes: int
    """Bytes the calls returned (sent or received)."""

    @property
    def text(self) -> str:
        """``12 recv() calls, 47 KB``."""
        return _count(self.count, f"{self.call}() call") + (f", {_bytes(self.data_bytes)}" if self.data_bytes else "")


@dataclass(frozen=True, slots=True)
class Fold:
    """A run of routine frames shown as one row."""

    first_frame: int
    last_frame: int
    count: int
    data_bytes: int
    start_ns: int | None
    end_ns: int | None
    phase: str
    description: str
    """The whole fold in one line: its frame count, then ``lines`` joined."""
    lines: tuple[str, ...] = ()
    """What was folded, one line per direction: ``client → server: 28 data segments, 27 KB, all
    window-limited``. The numbers of a fold's lines add up to its ``count``."""
    traffic: tuple[tuple[int, int, str], ...] = ()
    """(sender, receiver, what it sent) for each direction: the lines before the lifelines are named."""
    calls: tuple[FoldedCalls, ...] = ()
    """The routine socket calls made while the folded frames went by, per lifeline and kind."""


@dataclass(frozen=True, slots=True)
class Gap:
    """An idle pause, drawn as an axis break."""

    seconds: float
    after_frame: int


LISTENER_CALLS = frozenset({"socket", "bind", "listen", "accept"})
"""The calls a server's lane shows of its listening socket, before the connection's own."""
WAITING_CALLS = frozenset({"recv", "accept"})
"""Calls that wait for the peer: their row stands where they returned (with what came); the others'
where they entered (what the program did: the frames it causes follow)."""


@dataclass(frozen=True, slots=True)
class Call:
    """A socket call of a lifeline's program, a row of its own on the lifeline's application lane."""

    time_ns: int
    """Where its row stands in time: the return of a call that waits for the peer
    (:data:`WAITING_CALLS`), the entry of the others."""
    start_ns: int
    """When it entered the kernel."""
    end_ns: int
    """When it returned."""
    participant: int
    call: str
    """``socket``, ``bind``, ``listen``, ``connect``, ``accept``, ``send``, ``recv``, ``shutdown``, ``close``."""
    text: str
    """``send(12) -> 12``, ``recv(100) -> 27``, ``connect() -> -EINPROGRESS``."""
    result: int
    """Its return value: bytes, a file descriptor, 0, or minus an errno."""
    quote: str
    """The first bytes a send sent, quoted when they are text (``"tic tac toe?"``), from the frame
    that carried them; ``""`` otherwise."""
    frames: tuple[int, ...]
    """A send: the frames that carried its bytes; a recv: the frames that delivered them (or the FIN it
    read as the end of the stream, when it returned 0)."""
    thread: int
    count: int = 1
    """Routine calls one after another shown as this one row (``19 × send(10) -> 10``)."""

    @property
    def tooltip(self) -> str:
        carried = ", ".join(f"#{frame}" for frame in self.frames)
        what = {"send": "its bytes went in", "recv": "its bytes came in" if self.result else "the end came in"}.get(
            self.call, "frames"
        )
        return f"{self.text} {self.quote}".rstrip() + (f" ({what} {carried})" if carried else "")


@dataclass(frozen=True, slots=True)
class Lane:
    """The application lane beside a lifeline: the program whose socket calls it shows."""

    participant: int
    heading: str
    """``client program: pid 3538``; with its threads when another lane's program is the same process."""


Row = Arrow | Mark | Fold | Gap | Call


@dataclass(slots=True)
class LadderLayout:
    """Everything a ladder shows, in drawing order."""

    participants: list[Participant]
    rows: list[Row]
    title: str = ""
    origin_ns: int | None = None
    """Time of the first frame of the capture: gutter times count from it."""
    page: int = 0
    pages: int = 1
    frames: int = 0
    """Frames represented (drawn or folded)."""
    pause_unit_ns: int = 0
    """The pause that real time draws a label's height apart (:func:`pause_unit`), of the whole
    ladder (0: none), so that every page of it spaces rows by time on the same scale."""
    kernel: KernelStory | None = None
    """The kernel's side of the capture (calls, kernel states, queues) when it was recorded beside
    it (``NAME.kernel.jsonl``); None for a capture of packets alone."""
    lanes: tuple[Lane, ...] = ()
    """The lifelines whose program's calls were recorded (their :class:`Call` rows and folded calls)."""
    calls: int = 0
    """Socket calls represented (rows of their own or folded)."""

    def arrows(self) -> list[Arrow]:
        return [row for row in self.rows if isinstance(row, Arrow)]

    def paginate(self, rows_per_page: int) -> list[LadderLayout]:
        """Split into as few pages of at most ``rows_per_page`` rows as hold them all, as even as can be
        (302 rows at 100 a page: 76, 76, 75, 75; not 100, 100, 100 and a page of 2)."""
        if rows_per_page <= 0 or len(self.rows) <= rows_per_page:
            return [self]
        count = -(-len(self.rows) // rows_per_page)
        size, longer = divmod(len(self.rows), count)
        bounds = [index * size + min(index, longer) for index in range(count + 1)]
        chunks = [self.rows[start:stop] for start, stop in zip(bounds, bounds[1:])]
        return [replace(self, rows=rows, page=index, pages=len(chunks)) for index, rows in enumerate(chunks)]


@dataclass(slots=True)
class _Direction:
    """What the builder remembers of one direction of a stream, to tell rare frames from routine ones."""

    last_window: int = -1
    seen_data: bool = False
    seen: set[str] = field(default_factory=set)
    """Routine findings already shown in this direction."""
    last_rst: tuple[int, int, int, int, int] | None = None
    """(flags, seq, ack, window, analysis) of the last RST: an identical one after it is routine."""


_KEEP_TOGETHER = re.compile(r"\([^()]*\)")


def wrap_title(text: str, width: int) -> list[str]:
    """``text`` wrapped to ``width`` characters, never inside a short parenthesis ("(2 frames)"
    stays on one line; one longer than a line may break)."""
    joined = _KEEP_TOGETHER.sub(lambda group: group[0].replace(" ", "\0") if len(group[0]) < width else group[0], text)
    return [line.replace("\0", " ") for line in textwrap.wrap(joined, width)]


def _other_label(record: PacketRecord) -> str:
    """A frame of no TCP or UDP conversation: what it is, as far as it was decoded. Its last layer
    alone said "data" of a GRE packet (an IP protocol not decoded) and of an IPv6 fragment."""
    layer = record.layers.rsplit(":", 1)[-1] if record.layers else ""
    ip = {4: "IPv4", 6: "IPv6"}.get(record.network, "")
    if ip and record.fragment:
        return f"{ip} fragment"  # the datagram is drawn whole at its last fragment, if it completes
    if ip and layer == "data":
        return f"{ip} packet of a protocol not decoded"
    return layer or "frame"


def _tcp_label(frame: FrameAnalysis) -> str:
    """Stevens notation: flags, seq (and its range and length), ack, and the advertised window on
    every segment (the legend says so)."""
    record = frame.record
    flags = record.tcp_flags
    names = flag_text(flags) or "none"
    if flags & (ACK | PSH) == ACK and not flags & (SYN | FIN | RST) and record.payload_length == 0:
        names = "ACK"
    length = record.payload_length
    parts = [names]
    if length:
        parts.append(f"seq={frame.seq}:{frame.seq + length} ({length})")
    else:
        parts.append(f"seq={frame.seq}")
    if flags & ACK:
        parts.append(f"ack={frame.ack}")
    parts.append(f"win={frame.window}")
    if flags & SYN and record.tcp_options:
        options = describe_options(parse_tcp_options(record.tcp_options))
        if options:
            parts.append(f"<{options}>")
    sack = _sack_text(frame)
    if sack:
        parts.append(sack)
    text = preview(record.payload)
    if text:
        parts.append(text)
    return " ".join(parts)


def _sack_text(frame: FrameAnalysis) -> str:
    """A duplicate ACK's SACK blocks in relative numbers, as the analysis gives them ("SACK 5929-6917")."""
    for finding in frame.findings:
        if finding.kind == "duplicate_ack":
            blocks = finding.reason.partition("; SACK ")[2]
            if blocks:
                return f"SACK {blocks}"
    return ""


def _injected(frame: FrameAnalysis) -> bool:
    """Whether the analysis found that the frame's sender socket did not send it (finding injected_rst)."""
    return any(finding.kind == "injected_rst" for finding in frame.findings)


def _kind(frame: FrameAnalysis) -> str:
    record = frame.record
    if frame.protocol == "tcp":
        flags = record.tcp_flags
        if "retransmission" in analysis_names(frame.analysis):
            return "retransmission"
        if flags & RST:
            return "rst"
        if flags & SYN:
            return "handshake"
        if flags & FIN:
            return "fin"
        if record.payload_length:
            return "data"
        return "handshake" if frame.phase == "handshake" else "ack"
    if frame.protocol == "udp":
        return "udp"
    if frame.protocol in ("icmp", "icmpv6"):
        return "icmp" if icmp_error(frame.protocol, record.icmp_type) else "icmp_info"
    return "other"


_LINKED_KINDS = frozenset({"retransmission", "fast_retransmission", "spurious_retransmission", "challenge_ack"})
"""Findings whose referred frames the ladder links with arcs (the others say them in words)."""
_FATES = {"not_received": "lost", "bad_checksum": "discarded", "rst_ignored": "ignored", "rst_challenged": "ignored"}


def _event_text(finding: Finding, frame: FrameAnalysis) -> str:
    """A finding as the few words a ladder row has room for (the tooltip keeps the full reason)."""
    kind, refers = finding.kind, finding.refers_to
    of = f" of #{finding.original}" if finding.original else ""
    if kind == "fast_retransmission":
        duplicates = len(refers) - (1 if finding.original else 0)
        return f"fast retransmission{of} after {duplicates} dup ACKs"
    if kind in ("retransmission", "spurious_retransmission"):
        # With no original captured there is nothing to link back to: the words say so.
        return f"{kind.replace('_', ' ')}{of or ': first sending not captured'}"
    if kind == "duplicate_ack":
        return f"dup ACK ×{frame.duplicate_ack_number}"  # its SACK blocks are on the arrow
    if kind == "challenge_ack":
        return f"challenge ACK to #{refers[0]}" if refers else "challenge ACK"
    if kind == "not_received" and refers:
        return f"not received: sent again as #{refers[0]}"
    if kind == "rst_ignored" and refers:
        return f"RST ignored: #{refers[0]} follows"
    if kind == "injected_rst" and refers:
        return f"injected (its socket still sends #{refers[0]})"
    if kind == "undecoded":
        return "undecoded: " + finding.reason
    return _EVENT_TEXTS.get(kind, kind.replace("_", " "))


_SUPERSEDED = {
    "retransmission": frozenset({"fast_retransmission", "spurious_retransmission"}),
    # A RST found accepted, then ignored when its receiver kept sending: the analysis keeps both
    # findings, but its receiver state (not reset) follows the later one; the row says that one.
    "rst_accepted": frozenset({"rst_ignored"}),
}
"""Findings a row leaves unsaid when the frame also has a more precise (or later) one."""


def _event_texts(frame: FrameAnalysis) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The row's findings as words, and the kind of each (its colour)."""
    kinds = {finding.kind for finding in frame.findings}
    texts: list[str] = []
    of_kind: list[str] = []
    for finding in frame.findings:
        if kinds & _SUPERSEDED.get(finding.kind, frozenset()):
            continue
        text = _event_text(finding, frame)
        if text and text not in texts:
            texts.append(text)
            of_kind.append(finding.kind)
    return tuple(texts), tuple(of_kind)


_EVENT_TEXTS = {
    "out_of_order": "out of order",
    "zero_window": "zero window",
    "zero_window_probe": "zero-window probe",
    "zero_window_probe_ack": "probe answered",
    "keep_alive": "keep-alive",
    "keep_alive_ack": "keep-alive ACK",
    "window_full": "window full",
    "window_update": "window update",
    "lost_segment": "previous segment not captured",
    "ack_lost_segment": "ACKs unseen data",
    "reused_ports": "port numbers reused",
    "state_anomaly": "unexpected in this state",
    "rst_accepted": "RST accepted: reset",
    "rst_challenged": "RST in the window: challenged",
    "rst_ignored": "RST ignored: outside the window",
    "injected_rst": "injected RST",
    "bad_checksum": "bad checksum: discarded",
    "not_received": "not received",
    "not_yet_received": "not received yet",
    "no_listener": "no listener: refused",
    "receipt_undecided": "receipt not confirmed",
    "state_assumed": "states assumed (seen mid-stream)",
    "simultaneous_open": "simultaneous open",
}


_FINDING_NAMES = {"duplicate_ack": "dup ACK", "challenge_ack": "challenge ACK", "lost_segment": "segment not captured"}


def finding_name(kind: str) -> str:
    """A finding's kind in the words of its rows, without their detail ("RST accepted", "keep-alive")."""
    return _FINDING_NAMES.get(kind) or _EVENT_TEXTS.get(kind, kind.replace("_", " ")).split(":")[0]


class LadderBuilder:
    """Builds a :class:`LadderLayout` from per-frame analyses, streaming (memory follows the rows kept)."""

    def __init__(
        self,
        *,
        fold: bool = True,
        fold_minimum: int = FOLD_MINIMUM,
        fold_keep: int = FOLD_KEEP,
        origin_ns: int | None = None,
        title: str = "",
        detail_budget: int = FOLD_DETAIL_BUDGET,
        kernel: KernelStory | None = None,
    ) -> None:
        """``detail_budget``: folded frames kept to unfold later (ladders built side by side share one);
        ``kernel``: the kernel's side of the capture, when it was recorded."""
        self.fold = fold
        self.kernel = kernel
        self.fold_minimum = max(fold_minimum, 2 * fold_keep + 1)
        self.fold_keep = fold_keep
        self.origin_ns = origin_ns
        self.title = title
        self.participants: list[Participant] = []
        self._index: dict[tuple[str, int | None, int | None, bool], int] = {}
        """(address, port, TCP stream or None, injector) -> participant."""
        self._rows: list[Row] = []
        self._run: list[FrameAnalysis] = []
        """Routine frames waiting: a run too short to fold yet."""
        self._middle: _Tally | None = None
        """The middle of a run being folded (its first ``fold_keep`` frames are rows already)."""
        self._tail: deque[FrameAnalysis] = deque()
        """The last ``fold_keep`` frames of a run being folded."""
        self._directions: dict[tuple[str, int, bool], _Direction] = {}
        self._states: dict[tuple[str, int | None, int], str] = {}
        """Each TCP socket's state as drawn: (address, port, stream) -> state."""
        self._last_time: int | None = None
        self._frames = 0
        self._fold_frames: dict[int, list[FrameAnalysis]] = {}
        self._detail_budget = detail_budget
        self._referred: set[int] = set()
        """Frames that rows refer to (linked or named in an event text): never left folded."""
        self._pauses: list[int] = []
        self._previous_time: int | None = None
        self.responder_first: set[int] = set()
        """TCP streams whose first frame is the responder's SYN-ACK (the SYN was not captured): the
        analysis calls its sender the initiator (the first to send), but it is the server: the
        analysis starts it in SYN-RECEIVED (``INITIAL_STATES["SYN-ACK"]``), its peer in SYN-SENT."""
        self._streams_seen: set[int] = set()
        self._quoted: dict[int, list[int]] = {}
        """Frames that carried the first bytes of a send -> the sequence numbers of those first bytes."""
        self._quotes: dict[tuple[int, int], bytes] = {}
        """(frame, a send's first sequence number) -> the bytes from there that a quote shows."""
        if kernel is not None:
            for endpoint in kernel.endpoints:
                for call in endpoint.calls:
                    if call.call == "send" and call.sequence is not None and call.frames:
                        # The first frame carried its first byte (a retransmission carries it again, later).
                        self._quoted.setdefault(call.frames[0], []).append(call.sequence[0])

    # -- participants ---------------------------------------------------------------------------

    def _participant(self, address: str, port: int | None, role: str, stream: int | None = None) -> int:
        key = (address, port, stream, role == "injector")
        index = self._index.get(key)
        if index is None:
            index = self._index[key] = len(self.participants)
            self.participants.append(Participant(address, port, role, stream))
        return index

    def _ends(self, frame: FrameAnalysis) -> tuple[int, int]:
        record = frame.record
        if frame.protocol in ("tcp", "udp"):
            # A TCP lifeline is one socket: one stream's endpoint. A UDP socket serves every peer.
            stream = frame.stream if frame.protocol == "tcp" else None
            if frame.from_initiator != (stream in self.responder_first):
                source = self._participant(record.source, record.source_port, "client", stream)
                target = self._participant(record.destination, record.destination_port, "server", stream)
            else:
                target = self._participant(record.destination, record.destination_port, "client", stream)
                source = self._participant(record.source, record.source_port, "server", stream)
            if _injected(frame):
                # Sent in the endpoint's name, not by its socket: drawn from its own lifeline.
                source = self._participant(record.source, record.source_port, "injector", stream)
            return source, target
        quoted = record.quoted
        if quoted is not None and quoted.source_port:
            # An ICMP error goes back from the quoted destination to the quoted sender.
            stream = frame.stream if quoted.transport == PROTOCOL_NUMBERS["tcp"] else None
            target = self._participant(quoted.source, quoted.source_port, "client", stream)
            source = self._participant(quoted.destination, quoted.destination_port, "server", stream)
            return source, target
        return (
            self._participant(record.source or "?", None, "host"),
            self._participant(record.destination or "?", None, "host"),
        )

    def _name(self, index: int) -> str:
        """A lifeline in a fold's text: its role, with its port when another lifeline has the same role."""
        participant = self.participants[index]
        if sum(other.role == participant.role for other in self.participants) == 1:
            return participant.role
        return (
            f"{participant.role} :{participant.port}"
            if participant.port
            else f"{participant.role} {participant.address}"
        )

    # -- frames ---------------------------------------------------------------------------------

    def add(self, frame: FrameAnalysis) -> None:
        self._frames += 1
        if frame.record.number in self._quoted:
            self._keep_quotes(frame)
        if frame.protocol == "tcp" and frame.stream not in self._streams_seen:
            self._streams_seen.add(frame.stream)
            if frame.from_initiator and frame.state == INITIAL_STATES["SYN-ACK"].sender:
                self.responder_first.add(frame.stream)
        time = frame.record.timestamp_ns
        # A frame after an idle pause starts a new row: a fold never hides an idle gap.
        after_idle = time is not None and self._previous_time is not None and time - self._previous_time >= IDLE_NS
        if time is not None:
            self._previous_time = time
        if self._rare(frame) or after_idle:
            self._flush_run()
            self._rows.append(self._row(frame))
            self._referred.update(_mentioned(frame))
        elif self._middle is not None:
            self._tail.append(frame)
            if len(self._tail) > self.fold_keep:
                self._to_middle(self._middle, self._tail.popleft())
        else:
            self._run.append(frame)
            if not self.fold:
                self._flush_run()
            elif len(self._run) > self.fold_minimum:
                self._start_fold()

    def _rare(self, frame: FrameAnalysis) -> bool:
        """Whether ``frame`` is a row of its own (see the module's docstring); remembers, per
        direction, what a later frame is compared with."""
        if frame.protocol != "tcp":
            return True
        record = frame.record
        flags = record.tcp_flags
        names = analysis_names(frame.analysis)
        direction = self._direction(frame)
        if flags & RST:
            # The first of a comb of RSTs is a row; one identical to it (findings included) is routine.
            rst = (flags, frame.seq, frame.ack, frame.window, frame.analysis)
            rare = rst != direction.last_rst
            direction.last_rst = rst
        else:
            rare = (
                not ROUTINE_FINDINGS.issuperset(names)
                or not direction.seen.issuperset(names)
                or ("zero_window" in names and direction.last_window != 0)  # a zero window starts
                or (record.payload_length > 0 and not direction.seen_data)
            )
        rare = rare or frame.phase not in ("data", "teardown") or bool(flags & (SYN | FIN))
        direction.last_window = frame.window
        direction.seen_data = direction.seen_data or record.payload_length > 0
        direction.seen.update(names)
        if rare:
            return True
        key = (record.source, record.source_port, frame.stream)
        peer = (record.destination, record.destination_port, frame.stream)
        return self._states.get(key) != frame.state or self._states.get(peer) != frame.receiver_state

    def _direction(self, frame: FrameAnalysis) -> _Direction:
        key = (frame.protocol, frame.stream, frame.from_initiator)
        direction = self._directions.get(key)
        if direction is None:
            direction = self._directions[key] = _Direction()
        return direction

    def _row(self, frame: FrameAnalysis) -> Arrow | Mark:
        """A rare frame's row: its arrow, or a mark when it has no distinct receiver."""
        record = frame.record
        if record.problem and frame.protocol not in ("tcp", "udp", "icmp", "icmpv6"):
            # Decoding stopped before the transport header: no receiver to point at (RFC-wise the
            # frame is not a segment at all). Marked on its sender's lifeline if we know it.
            return self._mark(frame, self._known_sender(record), f"undecodable frame: {record.problem}")
        source, target = self._ends(frame)
        arrow = self._arrow(frame, source, target)
        if source == target:  # an arrow would have no length (and no side to point to)
            text = f"{arrow.label} (to itself)"
            return Mark(arrow.frame, arrow.time_ns, arrow.delta_ns, source, text, arrow.tooltip, undecodable=False)
        return arrow

    def _known_sender(self, record: PacketRecord) -> int | None:
        """The lifeline of an undecodable frame's sender: its endpoint's, the only one at its address,
        or a new host lifeline; None when the address is unknown or shared by several lifelines."""
        if not record.source:
            return None
        same = [
            (port, index)
            for (address, port, _, injector), index in self._index.items()
            if address == record.source and not injector
        ]
        exact = [index for port, index in same if record.source_port and port == record.source_port]
        if len(exact) == 1:
            return exact[0]
        if len(same) > 1:
            return None
        return same[0][1] if same else self._participant(record.source, None, "host")

    def _mark(self, frame: FrameAnalysis, participant: int | None, text: str) -> Mark:
        record = frame.record
        if participant is None and record.source:
            text = text.replace("frame", f"frame from {record.source}", 1)
        tooltip = f"frame {record.number}: {text}"
        if record.layers:
            tooltip += f" (decoded: {record.layers.replace(':', ', ')})"
        return Mark(record.number, record.timestamp_ns, self._delta(record.timestamp_ns), participant, text, tooltip)

    def _delta(self, time: int | None) -> int | None:
        """Time since the previous row's frame; remembers ``time`` for the next."""
        delta = None if time is None or self._last_time is None else time - self._last_time
        if time is not None:
            self._last_time = time
        if delta:
            self._pauses.append(delta)
        return delta

    def _arrow(self, frame: FrameAnalysis, source: int, target: int, *, track: bool = True) -> Arrow:
        """The arrow of ``frame``; with ``track`` False (a frame unfolded after the fact), no time or
        state is followed: its pause is set by :func:`_with_deltas`, its states did not change."""
        record = frame.record
        time = record.timestamp_ns
        delta = self._delta(time) if track else None
        links, original, fate = _references(frame)
        changed = (False, False)
        if frame.protocol == "tcp":
            label = _tcp_label(frame)
            if track:
                sender = (record.source, record.source_port, frame.stream)
                receiver = (record.destination, record.destination_port, frame.stream)
                changed = (
                    self._states.get(sender) != frame.state,
                    self._states.get(receiver) != frame.receiver_state,
                )
                if self.participants[source].role == "injector":
                    changed = (False, changed[1])  # the injector has no state: its sender is not a socket
                self._states[sender] = frame.state
                self._states[receiver] = frame.receiver_state
        elif frame.protocol == "udp":
            label = f"UDP {record.payload_length} bytes {preview(record.payload)}".rstrip()
        elif frame.protocol in ("icmp", "icmpv6"):
            names_table = _ICMP_NAMES if frame.protocol == "icmp" else _ICMPV6_NAMES
            name = names_table.get((record.icmp_type, record.icmp_code), "")
            protocol = "ICMP" if frame.protocol == "icmp" else "ICMPv6"
            code = f"type {record.icmp_type}" + (f" code {record.icmp_code}" if record.icmp_code else "")
            label = f"{protocol} {name} ({code})" if name else f"{protocol} {code}"
        else:
            label = _other_label(record)
        events, event_kinds = _event_texts(frame)
        tooltip = f"frame {record.number}: {label}"
        if frame.findings:
            tooltip += " [" + "; ".join(finding.reason or finding.kind for finding in frame.findings) + "]"
        if frame.protocol == "tcp":
            tooltip += f" — sender {frame.state}, receiver {frame.receiver_state}"
        return Arrow(
            record.number,
            time,
            delta,
            source,
            target,
            _kind(frame),
            label,
            tooltip,
            events,
            analysis_names(frame.analysis),
            links,
            original,
            frame.state,
            frame.receiver_state,
            changed,
            frame.phase,
            frame.protocol,
            frame.stream,
            fate,
            event_kinds,
            frame.protocol == "tcp"
            and not record.tcp_flags & (SYN | RST)
            and frame.window_scale == WINDOW_SCALE_UNKNOWN,
        )

    def _start_fold(self) -> None:
        """The run is long enough to fold: its first frames become rows, the rest stream through."""
        run, self._run = self._run, []
        keep = self.fold_keep
        for frame in run[:keep]:
            self._rows.append(self._row(frame))
        middle = self._middle = _Tally(run[keep].record.number, run[keep].record.timestamp_ns, run[keep].phase, [])
        for frame in run[keep : len(run) - keep]:
            self._to_middle(middle, frame)
        self._tail.extend(run[len(run) - keep :])

    def _to_middle(self, middle: _Tally, frame: FrameAnalysis) -> None:
        middle.add(frame, self._ends(frame))
        if middle.details is not None:
            if self._detail_budget > 0:
                # Kept so that a frame referred to later (the original of a retransmission) can be shown.
                self._detail_budget -= 1
                record = frame.record
                middle.details.append(frame._replace(record=record._replace(payload=record.payload[:PREVIEW_KEPT])))
            else:
                self._detail_budget += len(middle.details)
                middle.details = None

    def _flush_run(self) -> None:
        middle, self._middle = self._middle, None
        if middle is not None:
            if middle.last_time is not None:
                self._last_time = middle.last_time
            fold = middle.fold()
            self._rows.append(fold)
            if middle.details is not None:
                self._fold_frames[fold.first_frame] = middle.details
            while self._tail:
                self._rows.append(self._row(self._tail.popleft()))
            return
        run, self._run = self._run, []
        for frame in run:
            self._rows.append(self._row(frame))

    def _keep_quotes(self, frame: FrameAnalysis) -> None:
        """The first bytes of each send whose first byte ``frame`` carried (its payload is not kept)."""
        payload = frame.record.payload
        for first in self._quoted[frame.record.number]:
            offset = first - frame.seq
            if 0 <= offset < len(payload):
                self._quotes.setdefault((frame.record.number, first), payload[offset : offset + CALL_QUOTE_KEPT])

    def finish(self) -> LadderLayout:
        self._flush_run()
        calls, lanes = self._calls()
        rare = _rare_calls(calls)
        splits = sorted(call.time_ns for call, is_rare in zip(calls, rare) if is_rare)
        rows = self._reveal_referred_frames(self._rows, splits)
        if rows is not self._rows:
            rows = _with_deltas(rows)
        if calls:
            rows = _with_calls(rows, calls, rare, self.fold_minimum if self.fold else len(calls))
        unit = pause_unit(self._pauses)
        rows = [self._named(row) if isinstance(row, Fold) else row for row in rows]
        participants = self.participants
        if len({participant.stream for participant in participants if participant.stream is not None}) < 2:
            # One TCP stream: its lifelines need no stream number.
            participants = [replace(participant, stream=None) for participant in participants]
        return LadderLayout(
            participants,
            _with_gaps(rows),
            self.title,
            self.origin_ns,
            frames=self._frames,
            pause_unit_ns=unit,
            kernel=self.kernel,
            lanes=lanes,
            calls=len(calls),
        )

    def _calls(self) -> tuple[list[Call], tuple[Lane, ...]]:
        """Each TCP lifeline's calls from the kernel's side, in time order, and its lane. A listening
        socket's calls are its accepted connection's (socket, bind, listen, accept) up to that
        connection's last call: the listener's close after it belongs to the program's other work."""
        kernel = self.kernel
        if kernel is None:
            return [], ()
        calls: list[Call] = []
        threads: dict[int, tuple[set[int], set[int]]] = {}
        for (address, port, stream, injector), index in self._index.items():
            endpoint = None if injector or stream is None or port is None else kernel.endpoint(stream, address, port)
            if endpoint is None:
                continue
            last = max((call.time_ns for call in endpoint.calls), default=None)
            listener = [call for call in endpoint.listener_calls if last is None or call.time_ns <= last]
            own = sorted(endpoint.calls + listener, key=lambda call: call.time_ns)
            if own:
                calls.extend(self._call(call, index, listening=call in listener) for call in own)
                threads[index] = ({call.process for call in own}, {call.thread for call in own})
        lanes = []
        for index, (processes, used) in sorted(threads.items()):
            shared = any(processes & other for at, (other, _) in threads.items() if at != index)
            heading = f"{self.participants[index].role} program: " + _numbered("pid", processes)
            lanes.append(Lane(index, heading + (", " + _numbered("thread", used) if shared else "")))
        calls.sort(key=lambda call: call.time_ns)
        return calls, tuple(lanes)

    def _call(self, call: SocketCall, participant: int, *, listening: bool = False) -> Call:
        """The row of ``call``; a listening socket's call other than the ones only a listener makes
        (socket, bind, listen, accept) says so: ``close() -> 0 (listening socket)``."""
        text = call.text + (" (listening socket)" if listening and call.call not in LISTENER_CALLS else "")
        quote = ""
        if call.call == "send" and call.sequence is not None:
            first, end = call.sequence
            shown = self._quotes.get((call.frames[0], first), b"") if call.frames else b""
            quote = _quote(shown, end - first)
        return Call(
            call.end_ns if call.call in WAITING_CALLS else call.time_ns,
            call.time_ns,
            call.end_ns,
            participant,
            call.call,
            text,
            call.result,
            quote,
            call.frames,
            call.thread,
        )

    def _named(self, fold: Fold) -> Fold:
        """The fold with its lines: each direction named after the lifelines of the whole ladder (a
        role alone, or with its port when two lifelines share it)."""
        lines = tuple(f"{self._name(source)} → {self._name(target)}: {what}" for source, target, what in fold.traffic)
        return replace(fold, lines=lines, description=f"× {fold.count} frames ({'; '.join(lines)})")

    def _reveal_referred_frames(self, rows: list[Row], splits: Sequence[int] = ()) -> list[Row]:
        """Unfold the frames that rows refer to (a retransmission's original), splitting their folds;
        split folds at the times in ``splits`` too (calls that are rows of their own)."""
        referred = self._referred
        if not (referred or splits) or not self._fold_frames:
            return rows
        result: list[Row] = []
        for row in rows:
            frames = self._fold_frames.get(row.first_frame) if isinstance(row, Fold) else None
            cuts = _inside(row, splits) if isinstance(row, Fold) and frames is not None else []
            if frames is None or not (cuts or any(frame.record.number in referred for frame in frames)):
                result.append(row)
                continue
            group: list[FrameAnalysis] = []
            for frame in frames:
                time = frame.record.timestamp_ns
                while cuts and time is not None and time > cuts[0]:
                    cuts.pop(0)
                    result.extend(self._group_rows(group))
                    group = []
                if frame.record.number in referred:
                    result.extend(self._group_rows(group))
                    group = []
                    result.append(self._arrow(frame, *self._ends(frame), track=False))
                else:
                    group.append(frame)
            result.extend(self._group_rows(group))
        return result

    def _group_rows(self, group: list[FrameAnalysis]) -> list[Row]:
        if len(group) > self.fold_minimum:
            first = group[0]
            tally = _Tally(first.record.number, first.record.timestamp_ns, first.phase, None)
            for frame in group:
                tally.add(frame, self._ends(frame))
            return [tally.fold()]
        return [self._arrow(frame, *self._ends(frame), track=False) for frame in group]


CALL_QUOTE_CHARACTERS = 16
CALL_QUOTE_KEPT = CALL_QUOTE_CHARACTERS + 1
"""A send's first bytes quoted on its lane (its arrows quote more)."""


def _quote(shown: bytes, total: int) -> str:
    """The first bytes of a send (``shown``: from where it starts in its frame; ``total``: how many
    it sent), quoted when they are text; ``…`` when it sent more than is shown."""
    sample = shown[: min(total, CALL_QUOTE_CHARACTERS)]
    text = preview(sample, CALL_QUOTE_CHARACTERS)
    if text and total > len(sample) and not text.endswith('…"'):
        text = text[:-1] + '…"'
    return text


def _numbered(noun: str, numbers: set[int]) -> str:
    """``pid 3538``, ``threads 3538, 3544``."""
    return (noun if len(numbers) == 1 else noun + "s") + " " + ", ".join(map(str, sorted(numbers)))


def _inside(row: Fold, times: Sequence[int]) -> list[int]:
    """The times in ``times`` (sorted) strictly between the fold's first and last frames."""
    if row.start_ns is None or row.end_ns is None:
        return []
    start, end = row.start_ns, row.end_ns
    return [time for time in times if start < time < end]


ROUTINE_ERRORS = frozenset({-11})
"""-EAGAIN (errno 11 on Linux): a non-blocking socket had nothing to read (or no room to write) yet;
a program that polls makes many such calls, as routine as its reads."""


def _rare_calls(calls: list[Call]) -> list[bool]:
    """Whether each call (in time order) is a row of its own wherever it falls: every call but a send
    or recv that returned bytes (or -EAGAIN) after the first of its kind on its lifeline."""
    seen: set[tuple[int, str]] = set()
    rare = []
    for call in calls:
        key = (call.participant, call.call)
        returned = call.result > 0 or call.result in ROUTINE_ERRORS
        routine = call.call in ("send", "recv") and key in seen and returned
        seen.add(key)
        rare.append(not routine)
    return rare


def _with_calls(rows: list[Row], calls: list[Call], rare: list[bool], run_minimum: int) -> list[Row]:
    """``calls`` (in time order) merged with the frames' rows by time: a routine call made while a
    fold went by is counted in the fold; more than ``run_minimum`` routine calls of one lifeline and
    kind one after another are one row (:func:`_call_run`); the others are rows."""
    result: list[Row] = []
    run: list[Call] = []
    """Routine calls of one lifeline and kind, one after another."""

    def flush() -> None:
        result.extend([_call_run(run)] if len(run) > run_minimum else run)
        run.clear()

    def add(call: Call, is_rare: bool) -> None:
        if run and (is_rare or (call.participant, call.call) != (run[0].participant, run[0].call)):
            flush()
        if is_rare:
            result.append(call)
        else:
            run.append(call)

    waiting = deque(zip(calls, rare))
    for row in rows:
        start = row.start_ns if isinstance(row, Fold) else row.time_ns if isinstance(row, (Arrow, Mark)) else None
        while start is not None and waiting and waiting[0][0].time_ns < start:
            add(*waiting.popleft())
        after: list[Call] = []
        if isinstance(row, Fold) and row.end_ns is not None:
            folded: list[Call] = []
            while waiting and waiting[0][0].time_ns < row.end_ns:
                call, is_rare = waiting.popleft()
                # A rare call in a fold whose frames were not kept (it could not be split): after it.
                (after if is_rare else folded).append(call)
            if folded:
                row = replace(row, calls=_folded_calls(folded))
        flush()
        result.append(row)
        result.extend(after)
    for call, is_rare in waiting:
        add(call, is_rare)
    flush()
    return result


def _call_run(run: list[Call]) -> Call:
    """Routine calls one after another as one row: ``19 × send(10) -> 10`` when they were alike, else
    ``19 send() calls, 190 bytes``; linked to all their frames, quoting the first one's bytes."""
    first, last = run[0], run[-1]
    total = sum(max(call.result, 0) for call in run)
    alike = all(call.text == first.text for call in run)
    text = f"{len(run)} × {first.text}" if alike else f"{_count(len(run), first.call + '() call')}, {_bytes(total)}"
    frames = tuple(dict.fromkeys(frame for call in run for frame in call.frames))
    quote = first.quote[:-1] + '…"' if first.quote and not first.quote.endswith('…"') else first.quote
    return replace(first, end_ns=last.end_ns, text=text, result=total, quote=quote, frames=frames, count=len(run))


def _folded_calls(calls: list[Call]) -> tuple[FoldedCalls, ...]:
    """Routine calls counted per lifeline and kind, in the order they first appear."""
    tally: dict[tuple[int, str], tuple[int, int]] = {}
    for call in calls:
        count, data = tally.get((call.participant, call.call), (0, 0))
        tally[(call.participant, call.call)] = (count + 1, data + max(call.result, 0))
    return tuple(FoldedCalls(participant, name, count, data) for (participant, name), (count, data) in tally.items())


def linked_frames(arrow: Arrow) -> tuple[int, ...]:
    """The frames an arrow's arcs go back to: a retransmission's original, and the last
    :data:`LINKED_DUPLICATE_ACKS` duplicate ACKs behind a fast retransmission (or the RST a challenge
    ACK answers)."""
    return _linked(arrow.links, arrow.original)


def _linked(links: tuple[int, ...], original: int | None) -> tuple[int, ...]:
    behind = [frame for frame in links if frame != original]
    return (*([original] if original is not None else []), *behind[-LINKED_DUPLICATE_ACKS:])


def _mentioned(frame: FrameAnalysis) -> tuple[int, ...]:
    """The frames a rare frame's row links to or names in its event text: they stay visible."""
    links, original, _ = _references(frame)
    named = tuple(
        finding.refers_to[0] for finding in frame.findings if finding.kind in _NAMING_KINDS and finding.refers_to
    )
    return _linked(links, original) + named


_NAMING_KINDS = frozenset({"not_received", "rst_ignored", "injected_rst", "challenge_ack"})
"""Findings whose event text names a frame (``not received: sent again as #12``)."""


def _references(frame: FrameAnalysis) -> tuple[tuple[int, ...], int | None, str]:
    """The frames a row links to, a retransmission's original, and the segment's fate: all from its findings."""
    links: list[int] = []
    original = None
    fate = ""
    for finding in frame.findings:
        if finding.kind in _LINKED_KINDS and finding.refers_to:
            if finding.original and original is None:
                original = finding.original
            links.extend(frame for frame in finding.refers_to if frame not in links)
        fate = fate or _FATES.get(finding.kind, "")
    return tuple(links), original, fate


@dataclass(slots=True)
class _Traffic:
    """The folded frames of one direction, by what they were (each frame counted once)."""

    resets: int = 0
    probes: int = 0
    keep_alives: int = 0
    segments: int = 0
    data_bytes: int = 0
    window_limited: int = 0
    out_of_order: int = 0
    probe_answers: int = 0
    keep_alive_acks: int = 0
    duplicate_acks: int = 0
    acks: int = 0
    zero_window_acks: int = 0
    reset_label: str = ""

    def add(self, frame: FrameAnalysis) -> None:
        record = frame.record
        analysis = frame.analysis
        names = analysis_names(analysis) if analysis else ()
        if record.tcp_flags & RST:
            self.resets += 1
            if not self.reset_label:
                self.reset_label = _tcp_label(frame) + (", ignored" if "rst_ignored" in names else "")
        elif "zero_window_probe" in names:
            self.probes += 1
        elif "keep_alive" in names:
            self.keep_alives += 1
        elif record.payload_length:
            self.segments += 1
            self.data_bytes += record.payload_length
            self.window_limited += "window_full" in names
            self.out_of_order += "out_of_order" in names
        elif "zero_window_probe_ack" in names:
            self.probe_answers += 1
        elif "keep_alive_ack" in names:
            self.keep_alive_acks += 1
        elif "duplicate_ack" in names:
            self.duplicate_acks += 1
        else:
            self.acks += 1
            self.zero_window_acks += frame.window == 0

    def text(self) -> str:
        parts = []
        if self.segments:
            limited = self.window_limited
            which = "all" if limited == self.segments else str(limited)
            parts.append(
                f"{_count(self.segments, 'data segment')}, {_bytes(self.data_bytes)}"
                + (f", {which} window-limited" if limited else "")
                + (f", {self.out_of_order} out of order" if self.out_of_order else "")
            )
        if self.resets:
            parts.append(f"{_count(self.resets, 'identical RST')} ({self.reset_label})")
        for number, noun in (
            (self.probes, "zero-window probe"),
            (self.keep_alives, "keep-alive"),
            (self.probe_answers, "probe answer"),
            (self.keep_alive_acks, "keep-alive ACK"),
            (self.duplicate_acks, "dup ACK"),
        ):
            if number:
                parts.append(_count(number, noun))
        if self.acks:
            zero = self.zero_window_acks
            which = "all" if zero == self.acks else str(zero)
            parts.append(_count(self.acks, "ACK") + (f", {which} win=0" if zero else ""))
        return ", ".join(parts)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


@dataclass(slots=True)
class _Tally:
    """A run of folded frames, counted per direction as they go by."""

    first_frame: int
    start_ns: int | None
    phase: str
    details: list[FrameAnalysis] | None
    """The frames themselves while the detail budget lasts (None: too many, the fold stays shut)."""
    last_frame: int = 0
    last_time: int | None = None
    count: int = 0
    data_bytes: int = 0
    directions: dict[tuple[int, int], _Traffic] = field(default_factory=dict)

    def add(self, frame: FrameAnalysis, ends: tuple[int, int]) -> None:
        record = frame.record
        self.last_frame, self.last_time = record.number, record.timestamp_ns
        self.count += 1
        self.data_bytes += record.payload_length
        traffic = self.directions.get(ends)
        if traffic is None:
            traffic = self.directions[ends] = _Traffic()
        traffic.add(frame)

    def fold(self) -> Fold:
        """The fold, its lines still unnamed (:meth:`LadderBuilder.finish` names them, once every
        lifeline is known)."""
        traffic = tuple(
            (source, target, self.directions[(source, target)].text()) for source, target in sorted(self.directions)
        )
        return Fold(
            self.first_frame,
            self.last_frame,
            self.count,
            self.data_bytes,
            self.start_ns,
            self.last_time,
            self.phase,
            f"× {self.count} frames",
            traffic=traffic,
        )


def _bytes(count: int) -> str:
    if count >= 10_000_000:
        return f"{count / 1e6:.0f} MB"
    if count >= 10_000:
        return f"{count / 1e3:.0f} KB"
    return f"{count} bytes"


PAUSE_UNIT_FLOOR_NS = 1_000
"""Pauses under a microsecond are capture-clock noise: the unit is never shorter."""


def pause_unit(pauses: list[int]) -> int:
    """The short pause of a ladder: its 10th percentile (a burst), at least :data:`PAUSE_UNIT_FLOOR_NS`.
    Not the median: where most pauses are the story (an RTO doubling), they must be longer than it."""
    if not pauses:
        return 0
    return max(sorted(pauses)[len(pauses) // 10], PAUSE_UNIT_FLOOR_NS)


def _with_deltas(rows: list[Row]) -> list[Row]:
    """Each frame row's pause since the row before it (a fold ends at its last frame), after folds were split."""
    result: list[Row] = []
    last: int | None = None
    for row in rows:
        if isinstance(row, (Arrow, Mark)):
            if row.time_ns is not None:
                delta = None if last is None else row.time_ns - last
                if delta != row.delta_ns:
                    row = replace(row, delta_ns=delta)
                last = row.time_ns
        elif isinstance(row, Fold) and row.end_ns is not None:
            last = row.end_ns
        result.append(row)
    return result


def _with_gaps(rows: list[Row]) -> list[Row]:
    """Insert idle gaps where a pause is long against the others (axis breaks)."""
    pauses = sorted(row.delta_ns for row in rows if isinstance(row, (Arrow, Mark)) and row.delta_ns)
    if not pauses:
        return rows
    median = pauses[len(pauses) // 2]
    threshold = max(IDLE_NS, IDLE_FACTOR * median)
    result: list[Row] = []
    previous_frame = 0
    call_time: int | None = None
    """The time of the last call row since the last frame row: a pause runs from there."""
    for row in rows:
        pause: int | None = None
        if isinstance(row, Call):
            last = call_time if call_time is not None else _last_time(result)
            pause = None if last is None else row.time_ns - last
            call_time = row.time_ns
        elif isinstance(row, (Arrow, Mark)):
            pause = row.delta_ns if call_time is None or row.time_ns is None else row.time_ns - call_time
        if pause is not None and pause >= threshold:
            result.append(Gap(pause / 1e9, previous_frame))
        result.append(row)
        if isinstance(row, (Arrow, Mark, Fold)):
            call_time = None
            previous_frame = row.frame if isinstance(row, (Arrow, Mark)) else row.last_frame
    return result


def _last_time(rows: list[Row]) -> int | None:
    """The time of the last frame row of ``rows`` (a fold's last frame)."""
    for row in reversed(rows):
        if isinstance(row, (Arrow, Mark)) and row.time_ns is not None:
            return row.time_ns
        if isinstance(row, Fold) and row.end_ns is not None:
            return row.end_ns
    return None


def build_ladder(
    frames: Iterable[FrameAnalysis],
    *,
    fold: bool = True,
    origin_ns: int | None = None,
    title: str = "",
    kernel: KernelStory | None = None,
) -> LadderLayout:
    """The ladder layout of ``frames`` (already selected: one stream, several, a UDP exchange...),
    with ``kernel``, the kernel's side of the capture, when it was recorded."""
    builder = LadderBuilder(fold=fold, origin_ns=origin_ns, title=title, kernel=kernel)
    for frame in frames:
        builder.add(frame)
    return builder.finish()
