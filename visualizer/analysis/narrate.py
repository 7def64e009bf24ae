"""One conversation told in plain language, from its analysis (sans-IO, standard library only).

:func:`narrate` takes the per-frame analyses of one TCP or UDP conversation (and the kernel's side of
its endpoints, when kernel events were recorded beside the capture) and returns a :class:`Narration`:
numbered :class:`Sentence` items in time order, each citing the frames that prove it and the RFC
section that applies. Every finding of every frame is told (``Sentence.findings`` lists which; the
tests check that none is left out).

How it is told (choices of ours, not of any RFC):

* **Roles.** The client is the endpoint that sent the first SYN: the first frame's sender, or the
  receiver of a first SYN-ACK when the SYN was not captured (:func:`server_spoke_first`, as the
  ladder names its lifelines). In UDP, the first sender.
* **Routine runs.** Data and ACK segments without findings (``window_full`` aside) and UDP
  datagrams are routine. A run of at most :data:`SHORT_RUN` routine frames in which no endpoint
  sends :data:`SUMMARY_SEGMENTS` data segments is told frame by frame; any other in one sentence:
  per direction, the segments, bytes, sizes and sequence numbers, and the last ACK.
* **Episodes.** Frames that repeat one event are one sentence: the duplicate ACKs of one ACK number
  (with the data sent meanwhile, and a window update among them); the retransmissions of one
  segment; keep-alives and their answers; a zero window from its first advertisement to the window
  update that reopens it (probes and their answers included).
* **Everything else** is a sentence of its own: SYN, FIN, RST, a frame that changes a state, a fast
  retransmission, a loss, a bad checksum, an ICMP error...
* **The kernel's side** (when recorded): the programs' socket calls (consecutive calls of one
  endpoint in one sentence), the drops, retransmissions and resets the kernel counted, the peaks of
  Send-Q and Recv-Q, and how the kernel's own states compare with those inferred from the packets.
  Merged with the packet sentences by time.
"""

from __future__ import annotations

import bisect
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from visualizer.analysis.report import ConversationSummary, Finding, FrameAnalysis
from visualizer.analysis.sequence import relative
from visualizer.analysis.states import INITIAL_STATES
from visualizer.model import (
    ACK,
    FIN,
    PROTOCOL_ICMP,
    PROTOCOL_NUMBERS,
    RST,
    SYN,
    duration_text,
    endpoint_text,
    parse_tcp_options,
    preview,
)

if TYPE_CHECKING:
    from visualizer.analysis.kernel import EndpointKernel, KernelMark, KernelStory, SocketCall

__all__ = ["FINDING_TERMS", "Narration", "Sentence", "narrate", "server_spoke_first"]

SHORT_RUN = 6
"""Routine runs of at most this many frames are told frame by frame; longer ones are summarised."""
SUMMARY_SEGMENTS = 3
"""A run in which one endpoint sends this many data segments is summarised, however short."""
CALLS_LISTED = 6
"""Consecutive calls of one endpoint listed one by one at most; beyond, counted by kind."""
CALLS_TOGETHER_NS = 1_000_000
"""Calls told in one sentence follow each other within this time (one sentence has one time: a
close() 20 ms after a recv() is a sentence of its own, where it happened)."""
WRAP_COLUMNS = 100

# The RFC sections the sentences cite (checked against the RFC texts).
RFC_HANDSHAKE = "RFC 9293 s3.5"
RFC_SIMULTANEOUS_OPEN = "RFC 9293 s3.5, Figure 7"
RFC_CLOSE = "RFC 9293 s3.6"
RFC_HALF_CLOSE = "RFC 9293 s3.6.1"
RFC_RESET = "RFC 9293 s3.5.3"
RFC_RESET_GENERATION = "RFC 9293 s3.5.2"
RFC_NO_LISTENER = "RFC 9293 s3.10.7.1"
RFC_RST_ACCEPTANCE = "RFC 5961 s3.2"
RFC_CHALLENGE_ACK = "RFC 5961 s3.2"
RFC_RETRANSMISSION = "RFC 9293 s3.8.1; RFC 6298 s5"
RFC_RETRANSMITTED = "RFC 9293 s3.8.1"
"""A retransmission whose first transmission was not captured: the cause (a timer, SACK) is unknown."""
RFC_FAST_RETRANSMISSION = "RFC 5681 s3.2"
RFC_DUPLICATE_ACK = "RFC 5681 s3.2"
RFC_SACK = "RFC 2018"
RFC_WINDOW = "RFC 9293 s3.8.6"
RFC_ZERO_WINDOW_PROBE = "RFC 9293 s3.8.6.1"
RFC_KEEP_ALIVE = "RFC 1122 s4.2.3.6; RFC 9293 s3.8.4"
RFC_CHECKSUM = "RFC 9293 s3.1; RFC 1071"
RFC_UDP = "RFC 768"
RFC_ICMP = "RFC 792"
RFC_ICMPV6 = "RFC 4443 s3.1"
RFC_PORT_UNREACHABLE = "RFC 1122 s4.1.3.1"

FINDING_TERMS: dict[str, str] = {
    "retransmission": "retransmission",
    "fast_retransmission": "fast retransmission",
    "spurious_retransmission": "spurious retransmission",
    "duplicate_ack": "duplicate ACK",
    "out_of_order": "out of order",
    "zero_window": "zero window",
    "zero_window_probe": "zero-window probe",
    "zero_window_probe_ack": "answers the probe",
    "keep_alive": "keep-alive",
    "keep_alive_ack": "answers",
    "window_full": "window full",
    "window_update": "window update",
    "lost_segment": "not captured",
    "ack_lost_segment": "acknowledges data that was not captured",
    "reused_ports": "reuses the port pair",
    "state_anomaly": "state table has no transition",
    "challenge_ack": "challenge ACK",
    "rst_accepted": "accept",
    "rst_challenged": "challenge ACK",
    "rst_ignored": "ignores it",
    "injected_rst": "injected",
    "bad_checksum": "checksum is wrong",
    "not_received": "lost",
    "not_yet_received": "had not reached",
    "no_listener": "nothing listens",
    "receipt_undecided": "shows whether",
    "state_assumed": "assumed",
    "simultaneous_open": "simultaneous open",
}
"""The words a sentence uses for each kind of finding it tells (a test looks for them)."""

_ROUTINE_KINDS = frozenset({"window_full"})
_EPISODE_KINDS = frozenset(
    {
        "duplicate_ack",
        "window_update",
        "retransmission",
        "keep_alive",
        "keep_alive_ack",
        "zero_window",
        "zero_window_probe",
        "zero_window_probe_ack",
    }
)
_ICMP_UNREACHABLE = {
    (PROTOCOL_ICMP, 3): "destination unreachable",
    (PROTOCOL_NUMBERS.get("icmpv6", 58), 1): "destination unreachable",
}
_ICMP_CODES = {
    (PROTOCOL_ICMP, 3, 0): "network unreachable",
    (PROTOCOL_ICMP, 3, 1): "host unreachable",
    (PROTOCOL_ICMP, 3, 2): "protocol unreachable",
    (PROTOCOL_ICMP, 3, 3): "port unreachable",
    (PROTOCOL_ICMP, 3, 4): "fragmentation needed",
    (58, 1, 4): "port unreachable",
    (58, 1, 3): "address unreachable",
}


@dataclass(frozen=True, slots=True)
class Sentence:
    """One numbered item of a narration."""

    text: str
    """Plain language, without the citation (:attr:`citation` adds it)."""
    frames: tuple[int, ...] = ()
    """The frames that prove it, in order."""
    rfc: str = ""
    """The RFC sections that apply (``RFC 9293 s3.5``), ``""`` when none does."""
    label: str = ""
    """What the frames are, when one word says it (``SYN``, ``FIN``, ``RST``)."""
    time_ns: int | None = None
    """When it starts, relative to the capture's first frame."""
    findings: tuple[tuple[str, int], ...] = ()
    """The findings it tells: (kind, frame)."""
    kernel: bool = False
    """Told from the kernel events, not from the packets."""

    @property
    def citation(self) -> str:
        """``SYN, frame 1; RFC 9293 s3.5``."""
        head = ", ".join(part for part in (self.label, cite_frames(self.frames)) if part)
        return "; ".join(part for part in (head, self.rfc) if part)


@dataclass(slots=True)
class Narration:
    protocol: str
    stream: int
    title: str
    """``TCP stream 0: the client 127.0.0.1:56566 and the server 127.0.0.1:8080 ...``."""
    sentences: list[Sentence] = field(default_factory=list)

    def text(self, *, markdown: bool = False, width: int = WRAP_COLUMNS) -> str:
        """The narration as numbered lines (wrapped to ``width`` columns), or a Markdown list."""
        lines = [f"**{self.title}**" if markdown else self.title, ""]
        for number, sentence in enumerate(self.sentences, 1):
            time = "" if sentence.time_ns is None else f"{sentence.time_ns / 1e9:.6f} s"
            citation = f" ({sentence.citation})." if sentence.citation else "."
            if markdown:
                stamp = f"`{time}` " if time else ""
                lines.append(f"{number}. {stamp}{sentence.text}{citation}")
                continue
            head = f"{number}. [{time}] " if time else f"{number}. "
            lines.extend(
                textwrap.wrap(
                    sentence.text + citation,
                    width=width,
                    initial_indent=head,
                    subsequent_indent=" " * len(head),
                    break_on_hyphens=False,
                    break_long_words=False,
                )
            )
        return "\n".join(lines) + "\n"


def cite_frames(frames: Sequence[int]) -> str:
    """``frame 4``, ``frames 4-13, 15``; many pieces: ``26 frames from 4 to 101`` (never a range that
    would take in frames it does not cite)."""
    if not frames:
        return ""
    numbers = sorted(set(frames))
    if len(numbers) == 1:
        return f"frame {numbers[0]}"
    pieces: list[str] = []
    start = previous = numbers[0]
    for number in [*numbers[1:], -1]:
        if number == previous + 1:
            previous = number
            continue
        pieces.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = number
    if len(pieces) > 8:
        return f"{len(numbers)} frames from {numbers[0]} to {numbers[-1]}"
    return "frames " + ", ".join(pieces)


def server_spoke_first(first: FrameAnalysis) -> bool:
    """Whether a TCP conversation's first captured frame is the server's SYN-ACK (its SYN was not
    captured): the analysis calls that frame's sender the initiator, but it is the server, starting in
    SYN-RECEIVED (``INITIAL_STATES["SYN-ACK"]``). The ladder names its lifelines the same way."""
    return first.protocol == "tcp" and first.from_initiator and first.state == INITIAL_STATES["SYN-ACK"].sender


def _and(items: Sequence[str]) -> str:
    items = [item for item in items if item]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _plural(count: int, word: str, plural: str = "") -> str:
    return f"{count:,} {word if count == 1 else plural or word + 's'}"


Endpoint = tuple[str, int]
EpisodeKey = tuple[str, Endpoint, int]
"""(what repeats, whose episode it is, what it repeats: an original frame or seq, an ACK number, or 0)."""


class _Teller:
    """Tells one conversation's frames; :meth:`sentences` gives the packet sentences."""

    def __init__(self, frames: Sequence[FrameAnalysis], protocol: str, origin_ns: int) -> None:
        self.frames = list(frames)
        self.protocol = protocol
        self.origin_ns = origin_ns
        first = next((frame for frame in self.frames if frame.protocol == protocol), self.frames[0])
        record = first.record
        sender, receiver = (record.source, record.source_port), (record.destination, record.destination_port)
        if protocol == "tcp" and server_spoke_first(first):
            sender, receiver = receiver, sender
        self.client, self.server = sender, receiver
        self.roles = {self.client: "client", self.server: "server"}
        self.states: dict[Endpoint, str] = {}
        if protocol == "tcp":
            flags = record.tcp_flags
            if flags & (SYN | ACK) == SYN:
                initial = INITIAL_STATES["SYN"]
                # LISTEN was an assumption until the answer: a RST shows it was CLOSED all along.
                receiver_start = "CLOSED" if first.receiver_state == "CLOSED" else initial.receiver.value
            elif flags & (SYN | ACK) == SYN | ACK:
                initial = INITIAL_STATES["SYN-ACK"]
                receiver_start = initial.receiver.value
            else:
                initial = INITIAL_STATES["other"]
                receiver_start = initial.receiver.value
            first_sender = (record.source, record.source_port)
            first_receiver = (record.destination, record.destination_port)
            self.states = {first_sender: initial.sender.value, first_receiver: receiver_start}
        self.fin_end: dict[Endpoint, int] = {}
        """Each endpoint's FIN: the sequence number just past it (the ACK that covers it)."""
        self.fin_acknowledged: set[Endpoint] = set()
        self.last_ack: dict[Endpoint, int] = {}
        self.zero_window: set[Endpoint] = set()
        """Endpoints advertising a zero window (until their window update)."""
        self.frame_by_number = {frame.record.number: frame for frame in self.frames}
        self.texts: dict[int, str] = {}
        """Routine frames in words, made when they were seen (they are told when their run ends)."""

    # -- words ----------------------------------------------------------------------------------

    def role(self, endpoint: Endpoint) -> str:
        return self.roles.get(endpoint, endpoint_text(*endpoint))

    def sender(self, frame: FrameAnalysis) -> Endpoint:
        return (frame.record.source, frame.record.source_port)

    def receiver(self, frame: FrameAnalysis) -> Endpoint:
        return (frame.record.destination, frame.record.destination_port)

    def time(self, frame: FrameAnalysis) -> int | None:
        stamp = frame.record.timestamp_ns
        return None if stamp is None else stamp - self.origin_ns

    # -- the pass -------------------------------------------------------------------------------

    def sentences(self) -> list[Sentence]:
        told: list[Sentence] = []
        routine: list[FrameAnalysis] = []
        episode: _Episode | None = None

        def close_routine() -> None:
            if routine:
                told.extend(self._routine(routine))
                routine.clear()

        def close_episode() -> None:
            nonlocal episode
            if episode is not None:
                close_routine()  # the frames before the episode's end, when it did not take them
                told.append(episode.tell(self))
                episode = None

        first = self.frames[0]
        if self.protocol == "tcp" and first.protocol == "tcp" and not first.record.tcp_flags & SYN:
            told.append(
                Sentence(
                    f"The capture starts in the middle of the conversation between the client at "
                    f"{endpoint_text(*self.client)} and the server at {endpoint_text(*self.server)}: its handshake "
                    f"was not captured, so both ends are taken as {self.states.get(self.client, 'ESTABLISHED')}",
                    frames=(first.record.number,),
                    time_ns=self.time(first),
                )
            )
        for frame in self.frames:
            if frame.protocol != self.protocol:  # an ICMP error about the conversation
                close_episode()
                close_routine()
                told.append(self._icmp(frame))
                continue
            if self.protocol == "udp":
                if frame.findings:
                    close_routine()
                    told.append(self._udp_with_findings(frame))
                else:
                    routine.append(frame)
                continue
            key = self._episode_key(frame)
            if key is None:
                kinds = {finding.kind for finding in frame.findings}
                if kinds <= _ROUTINE_KINDS and not self._changes_state(frame) and not self._barrier_flags(frame):
                    self.texts[frame.record.number] = self._segment_text(frame)  # told later, from this state
                    if episode is not None and episode.absorbs:
                        episode.meanwhile.append(frame)
                    else:
                        close_episode()
                        routine.append(frame)
                    self._remember(frame)
                    continue
                close_episode()
                close_routine()
                told.append(self._own(frame))
                self._remember(frame)
                continue
            if episode is None or not episode.takes(key):
                close_episode()
                close_routine()
                episode = _Episode(key)
            episode.add(frame)
            self._remember(frame)
            if key[0] == "zero_window" and "window_update" in _kinds(frame):
                close_episode()  # the window reopened: the episode is over
        close_episode()
        close_routine()
        return told

    def _remember(self, frame: FrameAnalysis) -> None:
        """Track states, ACKs and FINs after ``frame`` (the sentences were made from the state before)."""
        sender, receiver = self.sender(frame), self.receiver(frame)
        if frame.protocol != "tcp":
            return
        if frame.state:
            self.states[sender] = frame.state
        if frame.receiver_state:
            self.states[receiver] = frame.receiver_state
        flags = frame.record.tcp_flags
        if flags & ACK:
            self.last_ack[sender] = max(self.last_ack.get(sender, 0), frame.ack)
            end = self.fin_end.get(receiver)
            if end is not None and frame.ack >= end:
                self.fin_acknowledged.add(receiver)
        if flags & FIN and not flags & RST:
            self.fin_end.setdefault(sender, frame.next_seq)
        kinds = _kinds(frame)
        if "zero_window" in kinds:
            self.zero_window.add(sender)
        if "window_update" in kinds or (frame.window and sender in self.zero_window and "zero_window" not in kinds):
            self.zero_window.discard(sender)

    def _barrier_flags(self, frame: FrameAnalysis) -> bool:
        return bool(frame.record.tcp_flags & (SYN | FIN | RST))

    def _changes_state(self, frame: FrameAnalysis) -> bool:
        if frame.protocol != "tcp":
            return False
        return (frame.state and frame.state != self.states.get(self.sender(frame))) or bool(
            frame.receiver_state and frame.receiver_state != self.states.get(self.receiver(frame))
        )

    def _episode_key(self, frame: FrameAnalysis) -> EpisodeKey | None:
        """The episode a frame belongs to, or None (a sentence of its own, or routine)."""
        kinds = _kinds(frame) - _ROUTINE_KINDS
        if not kinds or not kinds <= _EPISODE_KINDS or self._changes_state(frame):
            return None
        sender, receiver = self.sender(frame), self.receiver(frame)
        if kinds & {"zero_window", "zero_window_probe", "zero_window_probe_ack"} or (
            kinds == {"window_update"} and sender in self.zero_window
        ):
            closed = receiver if kinds == {"zero_window_probe"} else sender
            return ("zero_window", closed, 0)
        if self._barrier_flags(frame):
            if kinds == {"retransmission"}:
                return ("retransmission", sender, _original(frame) or frame.seq)
            return None
        if kinds <= {"keep_alive", "keep_alive_ack"}:
            return ("keep_alive", sender if "keep_alive" in kinds else receiver, 0)
        if kinds == {"retransmission"}:
            return ("retransmission", sender, _original(frame) or frame.seq)
        if kinds == {"duplicate_ack"}:
            return ("duplicate_ack", sender, frame.ack)
        if kinds == {"window_update"}:
            return ("window_update", sender, 0)
        return None

    # -- sentences of one frame -----------------------------------------------------------------

    def _own(self, frame: FrameAnalysis) -> Sentence:
        """A frame told on its own: what it is, every finding on it, and the states it changes."""
        record = frame.record
        flags = record.tcp_flags
        sender, receiver = self.sender(frame), self.receiver(frame)
        who, whom = self.role(sender), self.role(receiver)
        kinds = _kinds(frame)
        rfc: list[str] = []
        parts: list[str] = []
        refers: list[int] = []
        told: set[str] = set()
        label = ""
        again = next(
            (f.original for f in frame.findings if f.kind in ("retransmission", "fast_retransmission") and f.original),
            0,
        )
        if flags & RST:
            label = "RST"
            text, more_rfc, more_refers, told = self._reset(frame)
            parts.append(text)
            rfc.extend(more_rfc)
            refers.extend(more_refers)
        elif flags & SYN and not flags & ACK:
            label = "SYN"
            options = _options_text(record.tcp_options)
            if frame.record.number == self.frames[0].record.number:
                parts.append(
                    f"The {who} at {endpoint_text(*sender)} asks the {whom} at {endpoint_text(*receiver)} "
                    f"to open a connection{options}"
                )
            else:
                parts.append(f"The {who} asks the {whom} to open a connection{options}")
            rfc.append(RFC_HANDSHAKE)
        elif flags & SYN:
            label = "SYN-ACK"
            options = _options_text(record.tcp_options)
            if "simultaneous_open" in kinds:
                finding = _finding(frame, "simultaneous_open")
                peers_syn = finding.refers_to[1] if len(finding.refers_to) > 1 else 0
                parts.append(
                    f"The {who} answers the {whom}'s SYN (frame {peers_syn}) while its own SYN is still out: "
                    f"both ends opened at once, a simultaneous open{options}"
                )
                refers.extend(finding.refers_to)
                told.add("simultaneous_open")
                rfc.append(RFC_SIMULTANEOUS_OPEN)
            elif frame.record.number == self.frames[0].record.number:
                parts.append(
                    f"The capture starts at the {who}'s answer: the {who} at {endpoint_text(*sender)} accepts the "
                    f"connection that the {whom} at {endpoint_text(*receiver)} asked for (its SYN was not captured) "
                    f"and sends its own SYN{options}"
                )
                rfc.append(RFC_HANDSHAKE)
            else:
                parts.append(f"The {who} accepts: it acknowledges the {whom}'s SYN and sends its own{options}")
                rfc.append(RFC_HANDSHAKE)
        elif flags & FIN:
            label = "FIN"
            data = record.payload_length
            what = f"sends its last {_plural(data, 'byte')} and closes its side" if data else "closes its side"
            also = ""
            if (
                receiver in self.fin_end
                and receiver not in self.fin_acknowledged
                and frame.ack >= self.fin_end[receiver]
            ):
                also = f", acknowledging the {whom}'s FIN in the same segment"
            elif self.states.get(sender) == "CLOSE-WAIT":
                what += " in turn"
            elif receiver in self.fin_end and receiver not in self.fin_acknowledged:
                what += " too"
                also = f", before the {whom}'s FIN reaches it: the FINs cross (a simultaneous close)"
            parts.append(f"The {who} {what}: it has nothing more to send{also}")
            rfc.append(RFC_CLOSE)
        elif "challenge_ack" in kinds:
            finding = _finding(frame, "challenge_ack")
            rst = finding.refers_to[0] if finding.refers_to else 0
            parts.append(
                f"The {who} answers the RST{f' (frame {rst})' if rst else ''} with a challenge ACK (ACK {frame.ack}): "
                "it repeats its current numbers, so that a real peer would reset with the right sequence number"
            )
            refers.extend(finding.refers_to)
            told.add("challenge_ack")
            rfc.append(RFC_CHALLENGE_ACK)
        elif again:
            span = f" (seq {frame.seq}-{frame.next_seq - 1})" if record.payload_length else ""
            parts.append(f"The {who} sends {_what(frame)} of frame {again} again{span}")
        else:
            parts.append(self._segment_text(frame))
            if self._acknowledges_fin(frame):
                rfc.append(RFC_CLOSE)
            elif frame.phase == "handshake":
                rfc.append(RFC_HANDSHAKE)
        for finding in frame.findings:
            if finding.kind in told:
                continue
            clause, clause_rfc = self._clause(finding, frame)
            parts.append(clause)
            refers.extend(finding.refers_to)
            if clause_rfc:
                rfc.append(clause_rfc)
        if again and record.payload_length:
            answer = self._next_ack(frame)
            if answer is not None and answer.ack > frame.next_seq:
                parts.append(
                    f"The {whom}'s next ACK (frame {answer.record.number}) jumps to {answer.ack}: with the gap "
                    f"filled, it holds every byte up to {answer.ack - 1}"
                )
                refers.append(answer.record.number)
        states = self._state_text(frame)
        if states:
            parts.append(states)
            if (
                frame.receiver_state == "FIN-WAIT-2"
                and self.states.get(receiver) != "FIN-WAIT-2"
                and not flags & FIN
                and self._sends_after(frame)
            ):
                parts.append(
                    f"The {whom}'s side is closed, the {who}'s still open: the {who} may go on sending (half-close)"
                )
                rfc.append(RFC_HALF_CLOSE)
        text = _sentences(parts)
        return Sentence(
            text,
            frames=_frames(frame.record.number, refers, self.frame_by_number),
            rfc=_unique(rfc),
            label=label,
            time_ns=self.time(frame),
            findings=tuple((finding.kind, frame.record.number) for finding in frame.findings),
        )

    def _next_ack(self, frame: FrameAnalysis) -> FrameAnalysis | None:
        """The receiver's first later segment that acknowledges ``frame``'s data."""
        sender, receiver = self.sender(frame), self.receiver(frame)
        return next(
            (
                other
                for other in self.frames
                if other.record.number > frame.record.number
                and other.protocol == "tcp"
                and self.sender(other) == receiver
                and self.receiver(other) == sender
                and other.record.tcp_flags & ACK
                and other.ack >= frame.next_seq
            ),
            None,
        )

    def _sends_after(self, frame: FrameAnalysis) -> bool:
        """Whether ``frame``'s sender sends data after it (the peer has closed its side: a half-close)."""
        sender = self.sender(frame)
        return any(
            self.sender(other) == sender and other.record.payload_length
            for other in self.frames
            if other.record.number >= frame.record.number
        )

    def _acknowledges_fin(self, frame: FrameAnalysis) -> bool:
        receiver = self.receiver(frame)
        end = self.fin_end.get(receiver)
        return bool(
            frame.record.tcp_flags & ACK
            and end is not None
            and receiver not in self.fin_acknowledged
            and frame.ack >= end
        )

    def _segment_text(self, frame: FrameAnalysis) -> str:
        """A data segment or an ACK, in words (no findings)."""
        record = frame.record
        sender, receiver = self.sender(frame), self.receiver(frame)
        who, whom = self.role(sender), self.role(receiver)
        acknowledged = self._acknowledged_text(frame)
        if record.payload_length:
            quote = preview(record.payload)
            text = f"The {who} sends {_plural(record.payload_length, 'byte')} (seq {frame.seq}-{frame.next_seq - 1})"
            if quote:
                text += f": {quote}"
            if acknowledged:
                text += f", and {acknowledged}"
            return text
        if self._acknowledges_fin(frame):
            return f"The {who} acknowledges the {whom}'s FIN (ACK {frame.ack})"
        if frame.phase == "handshake" and not record.tcp_flags & (SYN | FIN | RST):
            text = f"The {who} acknowledges the {whom}'s SYN (ACK {frame.ack})"
            if frame.state == frame.receiver_state == "ESTABLISHED":
                text += ": the connection is open"
            return text
        if acknowledged:
            return f"The {who} {acknowledged}"
        return f"The {who} sends an ACK (ACK {frame.ack}) that acknowledges nothing new"

    def _acknowledged_text(self, frame: FrameAnalysis) -> str:
        """``acknowledges bytes 1-12 (ACK 13)``, or ``""`` when the ACK number does not advance."""
        if not frame.record.tcp_flags & ACK:
            return ""
        sender = self.sender(frame)
        previous = self.last_ack.get(sender, 1)
        if frame.ack <= previous:
            return ""
        receiver = self.receiver(frame)
        end = frame.ack - 1
        if receiver in self.fin_end and frame.ack >= self.fin_end[receiver]:
            end -= 1  # the FIN takes a sequence number of its own
        if end < previous:
            return f"acknowledges the {self.role(receiver)}'s FIN (ACK {frame.ack})"
        span = f"byte {previous}" if end == previous else f"bytes {previous}-{end}"
        return f"acknowledges {span} (ACK {frame.ack})"

    def _state_text(self, frame: FrameAnalysis) -> str:
        """``The client is now in FIN-WAIT-1 and the server in CLOSE-WAIT`` for the states that change."""
        sender, receiver = self.sender(frame), self.receiver(frame)
        changes = []
        for endpoint, state in ((sender, frame.state), (receiver, frame.receiver_state)):
            if state and state != self.states.get(endpoint):
                changes.append((endpoint, state))
        if not changes:
            return ""
        if len(changes) == 2 and changes[0][1] == changes[1][1]:
            return f"Both ends are now in {changes[0][1]}{_STATE_NOTES.get(changes[0][1], '')}"
        words = []
        for index, (endpoint, state) in enumerate(changes):
            note = _STATE_NOTES.get(state, "")
            listening = " (listening until now)" if self.states.get(endpoint) == "LISTEN" else ""
            words.append(
                f"{'the ' if index else 'The '}{self.role(endpoint)}{listening}{' is now' if not index else ''} "
                f"in {state}{note}"
            )
        return _and(words)

    def _reset(self, frame: FrameAnalysis) -> tuple[str, list[str], list[int], set[str]]:
        """A RST: who sent it, in whose name, and what its receiver did with it."""
        sender, receiver = self.sender(frame), self.receiver(frame)
        who, whom = self.role(sender), self.role(receiver)
        kinds = _kinds(frame)
        told: set[str] = set()
        refers: list[int] = []
        rfc: list[str] = []
        if "no_listener" in kinds:
            finding = _finding(frame, "no_listener")
            syn = finding.refers_to[0] if finding.refers_to else 0
            text = (
                f"Nothing listens on {endpoint_text(*sender)}: the host {sender[0]} answers the SYN"
                f"{f' (frame {syn})' if syn else ''} with a RST, and the connection is refused"
            )
            refers.extend(finding.refers_to)
            told.add("no_listener")
            rfc.append(RFC_NO_LISTENER)
            return text, rfc, refers, told
        if "injected_rst" in kinds:
            finding = _finding(frame, "injected_rst")
            later = finding.refers_to[0] if finding.refers_to else 0
            text = (
                f"A RST reaches the {whom} in the {who}'s name (seq {frame.seq}), but it was injected: the {who}'s "
                f"socket did not send it, as it kept sending afterwards{f' (frame {later})' if later else ''}"
            )
            refers.extend(finding.refers_to)
            told.add("injected_rst")
        elif self.states.get(sender) == "CLOSED":
            text = f"The {who}, which no longer has the connection, answers with a RST (seq {frame.seq})"
            rfc.append(RFC_RESET_GENERATION)
        else:
            text = f"The {who} resets the connection (seq {frame.seq})"
        if {"rst_accepted", "rst_ignored"} <= kinds:
            ignored = _finding(frame, "rst_ignored")
            later = ignored.refers_to[0] if ignored.refers_to else 0
            text += (
                f"; it is at the {whom}'s next expected sequence number, so the {whom} should accept it and drop the "
                f"connection, but the {whom} ignores it: it kept sending afterwards"
                + (f" (frame {later})" if later else "")
            )
            refers.extend(ignored.refers_to)
            told.update(("rst_accepted", "rst_ignored"))
            rfc.extend((RFC_RESET, RFC_RST_ACCEPTANCE))
        elif "rst_accepted" in kinds:
            text += (
                f"; it is exactly at the {whom}'s next expected sequence number, so the {whom} accepts it "
                "and drops the connection"
            )
            told.add("rst_accepted")
            rfc.extend((RFC_RESET, RFC_RST_ACCEPTANCE))
        elif "rst_challenged" in kinds:
            answer = next(
                (
                    other.record.number
                    for other in self.frames
                    if any(f.kind == "challenge_ack" and frame.record.number in f.refers_to for f in other.findings)
                ),
                0,
            )
            text += (
                f"; it is inside the {whom}'s receive window but not at its next expected sequence number: the {whom} "
                f"ignores it and answers with a challenge ACK{f' (frame {answer})' if answer else ''}"
            )
            if answer:
                refers.append(answer)
            told.add("rst_challenged")
            rfc.append(RFC_RST_ACCEPTANCE)
        elif "rst_ignored" in kinds:
            text += f"; it is outside the {whom}'s receive window, so the {whom} ignores it"
            told.add("rst_ignored")
            rfc.append(RFC_RST_ACCEPTANCE)
        else:
            rfc.append(RFC_RESET)
        return text, rfc, refers, told

    def _clause(self, finding: Finding, frame: FrameAnalysis) -> tuple[str, str]:
        """A finding on a frame told on its own, as a sentence (and its RFC section)."""
        kind = finding.kind
        sender, receiver = self.sender(frame), self.receiver(frame)
        who, whom = self.role(sender), self.role(receiver)
        refers = finding.refers_to
        if kind == "fast_retransmission":
            duplicates = [number for number in refers if number != finding.original]
            return (
                f"A fast retransmission: {_plural(len(duplicates), 'duplicate ACK')} told the {who} that the "
                f"{whom} misses it, so it does not wait for its retransmission timer",
                RFC_FAST_RETRANSMISSION,
            )
        if kind == "retransmission":
            if finding.original:
                original = self.frame_by_number.get(finding.original)
                gap = (
                    f", {duration_text(frame.record.timestamp_ns - original.record.timestamp_ns)} after it"
                    if original and original.record.timestamp_ns is not None and frame.record.timestamp_ns is not None
                    else ""
                )
                return f"A retransmission{gap}", RFC_RETRANSMISSION
            reason = finding.reason.removeprefix("retransmission: ").removeprefix("retransmission")
            return f"The analysis marks it a retransmission: {reason.strip(' :')}", RFC_RETRANSMISSION
        if kind == "spurious_retransmission":
            return (
                f"It is a spurious retransmission: the {whom} had already acknowledged these bytes",
                RFC_RETRANSMISSION,
            )
        if kind == "not_received":
            again = refers[0] if refers else 0
            return (
                f"This segment is lost: it never reached the {whom}, which acknowledged nothing of it before it was "
                f"sent again{f' (frame {again})' if again else ''}"
                + (f" and SACKed the data after it (frame {refers[1]})" if len(refers) > 1 else "")
                + "; the capture saw it before the loss",
                "",
            )
        if kind == "bad_checksum":
            again = refers[0] if refers else 0
            return (
                f"Its checksum is wrong: the {whom} discards it without a word"
                + (f", and the {who} sends it again (frame {again})" if again else ""),
                RFC_CHECKSUM,
            )
        if kind == "challenge_ack":
            rst = refers[0] if refers else 0
            return (
                f"It is a challenge ACK: the {who} answers the RST{f' (frame {rst})' if rst else ''} with its "
                "current numbers, so that a real peer can reset with the right sequence number",
                RFC_CHALLENGE_ACK,
            )
        if kind == "duplicate_ack":
            also = " also" if "challenge_ack" in _kinds(frame) else ""
            return f"It is{also} a duplicate ACK of frame {refers[0] if refers else '?'}", RFC_DUPLICATE_ACK
        if kind == "out_of_order":
            return "It arrives out of order: it fills a gap below data sent before it", ""
        if kind == "window_update":
            return f"It is a window update: the {who}'s window is now {frame.window:,} bytes", RFC_WINDOW
        if kind == "window_full":
            return f"It fills the {whom}'s advertised window (window full)", RFC_WINDOW
        if kind == "zero_window":
            return f"The {who} advertises a zero window: the {whom} must stop sending", RFC_WINDOW
        if kind == "zero_window_probe":
            return "It is a zero-window probe", RFC_ZERO_WINDOW_PROBE
        if kind == "zero_window_probe_ack":
            return f"It answers the probe (frame {refers[0] if refers else '?'})", RFC_ZERO_WINDOW_PROBE
        if kind == "keep_alive":
            return "It is a keep-alive", RFC_KEEP_ALIVE
        if kind == "keep_alive_ack":
            return f"It answers the keep-alive (frame {refers[0] if refers else '?'})", RFC_KEEP_ALIVE
        if kind == "not_yet_received":
            later = refers[0] if refers else 0
            if later:
                return f"It had not reached the {whom} yet when the {whom} sent frame {later}", ""
            return f"It had not reached the {whom} yet: {finding.reason}", ""
        if kind == "receipt_undecided":
            return f"Nothing later in the capture shows whether the {whom} received it", ""
        if kind == "simultaneous_open":
            return f"The {who} answers a SYN while its own is out: a simultaneous open", RFC_SIMULTANEOUS_OPEN
        if kind == "state_assumed":
            return f"The capture starts after the SYN: the states are assumed ({finding.reason})", ""
        if kind == "lost_segment":
            return f"A segment of the {who} before this one was not captured", ""
        if kind == "ack_lost_segment":
            return f"The {who} acknowledges data that was not captured", ""
        if kind == "reused_ports":
            return f"The {who} reuses the port pair of an earlier conversation with a new sequence number", ""
        if kind == "state_anomaly":
            return f"The RFC 9293 state table has no transition for it: {finding.reason}", ""
        if kind in ("rst_accepted", "rst_challenged", "rst_ignored", "injected_rst", "no_listener"):
            term = FINDING_TERMS[kind]
            return f"The {whom} {term}: {finding.reason}", RFC_RST_ACCEPTANCE
        return f"{kind.replace('_', ' ')}: {finding.reason}", ""

    # -- runs of routine frames -----------------------------------------------------------------

    def _routine(self, frames: list[FrameAnalysis]) -> list[Sentence]:
        data_by_direction: dict[Endpoint, int] = {}
        for frame in frames:
            if frame.record.payload_length:
                sender = self.sender(frame)
                data_by_direction[sender] = data_by_direction.get(sender, 0) + 1
        if len(frames) <= SHORT_RUN and max(data_by_direction.values(), default=0) < SUMMARY_SEGMENTS:
            if self.protocol == "udp":
                return [self._datagram(frame) for frame in frames]
            # Told one by one: the state (last ACKs) must be that before each frame.
            return self._one_by_one(frames)
        return [self._summary(frames)]

    def _one_by_one(self, frames: list[FrameAnalysis]) -> list[Sentence]:
        told = []
        for frame in frames:
            text = self.texts[frame.record.number]
            rfc = ""
            if _kinds(frame) & {"window_full"}:
                text += f", filling the {self.role(self.receiver(frame))}'s advertised window (window full)"
                rfc = RFC_WINDOW
            told.append(
                Sentence(
                    text,
                    frames=(frame.record.number,),
                    rfc=rfc,
                    time_ns=self.time(frame),
                    findings=tuple((finding.kind, frame.record.number) for finding in frame.findings),
                )
            )
        return told

    def _summary(self, frames: list[FrameAnalysis]) -> Sentence:
        """A long run of routine frames in one sentence, per direction."""
        parts = []
        # The direction that sends data first (an ACK-only direction after it), then in order of appearance.
        order = sorted(
            {self.sender(frame) for frame in frames},
            key=lambda endpoint: min(
                (0 if frame.record.payload_length else 1, frame.record.number)
                for frame in frames
                if self.sender(frame) == endpoint
            ),
        )
        for endpoint in order:
            own = [frame for frame in frames if self.sender(frame) == endpoint]
            parts.append(self._direction_summary(endpoint, own))
        full = [frame.record.number for frame in frames if "window_full" in _kinds(frame)]
        text = "; ".join(part for part in parts if part)
        text = text[0].upper() + text[1:]
        rfc = ""
        if full:
            text += (
                f"; {_plural(len(full), 'segment fills', 'segments fill')} the receiver's advertised window "
                f"(window full: {cite_frames(full)})"
            )
            rfc = RFC_WINDOW
        return Sentence(
            text,
            frames=tuple(frame.record.number for frame in frames),
            rfc=rfc,
            time_ns=self.time(frames[0]),
            findings=tuple((finding.kind, frame.record.number) for frame in frames for finding in frame.findings),
        )

    def _direction_summary(self, endpoint: Endpoint, frames: list[FrameAnalysis]) -> str:
        who = self.role(endpoint)
        if self.protocol == "udp":
            sizes = [frame.record.payload_length for frame in frames]
            return (
                f"the {who} sends {_plural(len(frames), 'datagram')}, {_plural(sum(sizes), 'byte')} "
                f"({_sizes_text(sizes)})"
            )
        data = [frame for frame in frames if frame.record.payload_length]
        acks = [frame for frame in frames if not frame.record.payload_length]
        pieces = []
        if data:
            sizes = [frame.record.payload_length for frame in data]
            first, last = data[0].seq, max(frame.next_seq for frame in data) - 1
            sizes_text = f"{_sizes_text(sizes)}; " if len(data) > 1 else ""
            pieces.append(
                f"the {who} sends {_plural(sum(sizes), 'byte')} in {_plural(len(data), 'segment')} "
                f"({sizes_text}seq {first}-{last})"
            )
        acknowledging = [frame for frame in frames if frame.record.tcp_flags & ACK]
        top = max((frame.ack for frame in acknowledging), default=0)
        if acks and data:
            pieces.append(
                f"and acknowledges up to byte {top - 1} (ACK {top}) in its data segments and "
                f"{_plural(len(acks), 'pure ACK')}"
            )
        elif acks:
            pieces.append(f"the {who} acknowledges up to byte {top - 1} (ACK {top}) in {_plural(len(acks), 'ACK')}")
        elif acknowledging and top > min(frame.ack for frame in acknowledging):
            pieces.append(f"and acknowledges up to byte {top - 1} (ACK {top}) in its data segments")
        return " ".join(pieces)

    # -- episodes -------------------------------------------------------------------------------

    def tell_duplicate_acks(self, episode: _Episode) -> Sentence:
        members = episode.frames
        duplicates = [frame for frame in members if "duplicate_ack" in _kinds(frame)]
        first = duplicates[0] if duplicates else members[0]
        sender, receiver = self.sender(first), self.receiver(first)
        who, whom = self.role(sender), self.role(receiver)
        repeated = _finding(first, "duplicate_ack").refers_to if duplicates else ()
        sacks = [blocks for blocks in (_sack_blocks(frame) for frame in duplicates) if blocks]
        text = (
            f"The {who} keeps acknowledging only up to byte {first.ack - 1}: "
            f"{_plural(len(duplicates), 'duplicate ACK')} ({cite_frames([f.record.number for f in duplicates])}) "
            f"{'repeats' if len(duplicates) == 1 else 'repeat'} its ACK {first.ack}"
            + (f" of frame {repeated[0]}" if repeated else "")
        )
        rfc = [RFC_DUPLICATE_ACK]
        if len(sacks) == 1 or (sacks and sacks[0] == sacks[-1]):
            its = "Its" if len(duplicates) == 1 else "Their"
            text += (
                f". {its} SACK blocks tell the {whom} which bytes after the gap did arrive: {_blocks_text(sacks[0])}"
            )
            rfc.append(RFC_SACK)
        elif sacks:
            text += (
                f". Their SACK blocks tell the {whom} which bytes after the gap did arrive: "
                f"from {_blocks_text(sacks[0])} to {_blocks_text(sacks[-1])}"
            )
            rfc.append(RFC_SACK)
        updates = [frame for frame in members if "window_update" in _kinds(frame)]
        if updates:
            text += (
                f". Between them, {'a window update' if len(updates) == 1 else _plural(len(updates), 'window update')}"
                f" ({cite_frames([f.record.number for f in updates])}) changes only its advertised window, to "
                f"{updates[-1].window:,} bytes"
            )
            rfc.append(RFC_WINDOW)
        text += self._meanwhile(episode)
        return self._episode_sentence(episode, text, rfc)

    def _meanwhile(self, episode: _Episode) -> str:
        if not episode.meanwhile:
            return ""
        numbers = [frame.record.number for frame in episode.meanwhile]
        if len(episode.meanwhile) > 1:
            text = self._summary(episode.meanwhile).text
        else:
            text = self.texts[numbers[0]]
        return f". Meanwhile ({cite_frames(numbers)}) {text[0].lower()}{text[1:]}"

    def tell_retransmissions(self, episode: _Episode) -> Sentence:
        members = episode.frames
        first = members[0]
        sender, receiver = self.sender(first), self.receiver(first)
        who = self.role(sender)
        finding = _finding(first, "retransmission")
        original = self.frame_by_number.get(finding.original) if finding.original else None
        what = _what(first)
        count = "" if len(members) == 1 else f" {_plural(len(members), 'time')}"
        if original is None:  # what made the sender resend is not in the capture: no timer is claimed
            reason = finding.reason.removeprefix("retransmission").lstrip(" :")
            text = f"The {who} sends {what} again{count} (retransmission: {reason})"
            return self._episode_sentence(episode, text, [RFC_RETRANSMITTED])
        times = [frame.record.timestamp_ns for frame in [original, *members]]
        gaps = [b - a for a, b in zip(times, times[1:]) if a is not None and b is not None]
        text = f"The {who} sends {what} of frame {original.record.number} again{count} (retransmission)"
        if gaps:
            text += f", after waiting {_and([duration_text(gap) for gap in gaps])}"
            silent = not any(self.sender(frame) == receiver for frame in self._between(original, members[-1]))
            if silent:
                text += f": no ACK came from the {self.role(receiver)} in between"
            doubling = _doubling_from(gaps)
            if doubling == 0:
                text += ", and each wait doubles the one before: the retransmission timer backs off"
            elif doubling is not None:
                text += (
                    f"; from the {_ORDINALS.get(doubling + 1, str(doubling + 1))} wait on, each doubles the one "
                    "before: the retransmission timer backs off"
                )
        return self._episode_sentence(episode, text, [RFC_RETRANSMISSION], also=(original.record.number,))

    def _between(self, first: FrameAnalysis, last: FrameAnalysis) -> list[FrameAnalysis]:
        return [frame for frame in self.frames if first.record.number < frame.record.number < last.record.number]

    def tell_keep_alives(self, episode: _Episode) -> Sentence:
        members = episode.frames
        probes = [frame for frame in members if "keep_alive" in _kinds(frame)]
        answers = [frame for frame in members if "keep_alive_ack" in _kinds(frame)]
        prober = episode.key[1]
        who = self.role(prober)
        peer = self.server if prober == self.client else self.client
        times = [self.time(frame) for frame in probes]
        when = _and([f"{time / 1e9:.3f} s" for time in times if time is not None])
        text = (
            f"The connection is idle; the {who} checks that the {self.role(peer)} is still there with "
            f"{_plural(len(probes), 'keep-alive')} ({cite_frames([f.record.number for f in probes])}"
            f"{f', at {when}' if when else ''}): segments one byte before its next sequence number"
            f"{f', seq {probes[0].seq}' if probes else ''}, which ask for an ACK"
        )
        if answers:
            answered = "each" if len(answers) == len(probes) else f"{len(answers)} of them"
            text += f"; the {self.role(peer)} answers {answered} ({cite_frames([f.record.number for f in answers])})"
        return self._episode_sentence(episode, text, [RFC_KEEP_ALIVE])

    def tell_zero_window(self, episode: _Episode) -> Sentence:
        members = episode.frames
        closed = episode.key[1]
        owner = self.role(closed)
        peer = self.role(self.server if closed == self.client else self.client)
        zeros = [frame for frame in members if "zero_window" in _kinds(frame)]
        probes = [frame for frame in members if "zero_window_probe" in _kinds(frame)]
        answers = [frame for frame in members if "zero_window_probe_ack" in _kinds(frame)]
        updates = [frame for frame in members if "window_update" in _kinds(frame)]
        sentences = []
        rfc = [RFC_WINDOW]
        if zeros:
            sentences.append(
                f"The {owner}'s receive buffer is full: it advertises a zero window "
                f"({cite_frames([f.record.number for f in zeros])}), and the {peer} must stop sending"
            )
        if probes:
            sentences.append(
                f"The {peer} probes the window with {_plural(len(probes), 'zero-window probe')} "
                f"({cite_frames([f.record.number for f in probes])})"
                + (
                    f", and the {owner} answers the probe{'s' if len(answers) > 1 else ''} with its window "
                    f"({cite_frames([f.record.number for f in answers])})"
                    if answers
                    else ""
                )
            )
            rfc.append(RFC_ZERO_WINDOW_PROBE)
        elif answers:
            sentences.append(
                f"The {owner} answers the probes with its window ({cite_frames([f.record.number for f in answers])})"
            )
            rfc.append(RFC_ZERO_WINDOW_PROBE)
        if updates:
            last = updates[-1]
            gap = ""
            if zeros and zeros[0].record.timestamp_ns is not None and last.record.timestamp_ns is not None:
                gap = f", {duration_text(last.record.timestamp_ns - zeros[0].record.timestamp_ns)} after it closed"
            sentences.append(
                f"Its program reads, and the {owner} reopens its window to {last.window:,} bytes "
                f"(window update, {cite_frames([f.record.number for f in updates])}){gap}"
            )
        text = _sentences(sentences).rstrip(".") + self._meanwhile(episode)
        return self._episode_sentence(episode, text, rfc)

    def tell_window_updates(self, episode: _Episode) -> Sentence:
        members = episode.frames
        who = self.role(self.sender(members[0]))
        text = (
            f"The {who} {'only changes' if len(members) == 1 else 'changes only'} its advertised window, to "
            f"{members[-1].window:,} bytes, without acknowledging anything new "
            f"({_plural(len(members), 'window update')})"
        )
        return self._episode_sentence(episode, text, [RFC_WINDOW])

    def _episode_sentence(
        self, episode: _Episode, text: str, rfc: list[str], *, also: tuple[int, ...] = ()
    ) -> Sentence:
        frames = [*episode.frames, *episode.meanwhile]
        numbers = [frame.record.number for frame in frames]
        return Sentence(
            text,
            frames=tuple(sorted({*numbers, *(n for n in also if n in self.frame_by_number)})),
            rfc=_unique(rfc),
            time_ns=self.time(episode.frames[0]),
            findings=tuple((finding.kind, frame.record.number) for frame in frames for finding in frame.findings),
        )

    # -- UDP and ICMP ---------------------------------------------------------------------------

    def _datagram(self, frame: FrameAnalysis) -> Sentence:
        record = frame.record
        sender, receiver = self.sender(frame), self.receiver(frame)
        first = record.number == self.frames[0].record.number
        who = f"{self.role(sender)} at {endpoint_text(*sender)}" if first else self.role(sender)
        whom = f"{self.role(receiver)} at {endpoint_text(*receiver)}" if first else self.role(receiver)
        quote = preview(record.payload)
        text = f"The {who} sends a {record.payload_length:,}-byte datagram to the {whom}" + (
            f": {quote}" if quote else ""
        )
        return Sentence(text, frames=(record.number,), rfc=RFC_UDP, time_ns=self.time(frame))

    def _udp_with_findings(self, frame: FrameAnalysis) -> Sentence:
        base = self._datagram(frame)
        parts = [base.text]
        rfc = [base.rfc]
        refers: list[int] = []
        for finding in frame.findings:
            clause, clause_rfc = self._clause(finding, frame)
            parts.append(clause)
            refers.extend(finding.refers_to)
            if clause_rfc:
                rfc.append(clause_rfc)
        return Sentence(
            _sentences(parts),
            frames=_frames(frame.record.number, refers, self.frame_by_number),
            rfc=_unique(rfc),
            time_ns=self.time(frame),
            findings=tuple((finding.kind, frame.record.number) for finding in frame.findings),
        )

    def _icmp(self, frame: FrameAnalysis) -> Sentence:
        """An ICMP error about the conversation: which datagram it answers and what it says."""
        record = frame.record
        quoted = record.quoted
        version = PROTOCOL_ICMP if frame.protocol == "icmp" else 58
        kind = _ICMP_UNREACHABLE.get((version, record.icmp_type), f"an ICMP error (type {record.icmp_type})")
        code = _ICMP_CODES.get((version, record.icmp_type, record.icmp_code), f"code {record.icmp_code}")
        rfc = [RFC_ICMP if version == PROTOCOL_ICMP else RFC_ICMPV6]
        refers: list[int] = []
        if quoted is None:
            text = f"The host {record.source} sends an ICMP {kind} ({code})"
        else:
            sender = (quoted.source, quoted.source_port)
            about = [
                other.record.number
                for other in self.frames
                if other.record.number < record.number
                and other.protocol == self.protocol
                and self.sender(other) == sender
                and self.receiver(other) == (quoted.destination, quoted.destination_port)
            ]
            if about:
                refers.append(about[-1])
            transport = "UDP" if self.protocol == "udp" else "TCP"
            text = (
                f"The host {record.source} answers the {self.role(sender)}'s "
                f"{'datagram' if self.protocol == 'udp' else 'segment'}{f' (frame {about[-1]})' if about else ''} "
                f"with an ICMP {kind}, {code} (type {record.icmp_type}, code {record.icmp_code})"
            )
            if code == "port unreachable":
                text += f": nothing listens on {transport} port {quoted.destination_port}, so the datagram is dropped"
                rfc.append(RFC_PORT_UNREACHABLE)
        return Sentence(
            text,
            frames=_frames(record.number, refers, self.frame_by_number),
            rfc=_unique(rfc),
            label="ICMP",
            time_ns=self.time(frame),
            findings=tuple((finding.kind, record.number) for finding in frame.findings),
        )


@dataclass(slots=True)
class _Episode:
    key: EpisodeKey
    frames: list[FrameAnalysis] = field(default_factory=list)
    meanwhile: list[FrameAnalysis] = field(default_factory=list)
    """Routine frames of the other direction taken in while the episode lasts."""

    @property
    def absorbs(self) -> bool:
        return self.key[0] in ("duplicate_ack", "zero_window")

    def takes(self, key: EpisodeKey) -> bool:
        if key == self.key:
            return True
        # A window update of the endpoint repeating its ACK belongs to the duplicate ACKs' episode.
        return self.key[0] == "duplicate_ack" and key == ("window_update", self.key[1], 0)

    def add(self, frame: FrameAnalysis) -> None:
        self.frames.append(frame)

    def tell(self, teller: _Teller) -> Sentence:
        kind = self.key[0]
        if kind == "duplicate_ack":
            return teller.tell_duplicate_acks(self)
        if kind == "retransmission":
            return teller.tell_retransmissions(self)
        if kind == "keep_alive":
            return teller.tell_keep_alives(self)
        if kind == "zero_window":
            return teller.tell_zero_window(self)
        return teller.tell_window_updates(self)


_STATE_NOTES = {
    "TIME-WAIT": ", where it waits twice the maximum segment lifetime before forgetting the connection",
}


_ORDINALS = {2: "second", 3: "third", 4: "fourth", 5: "fifth"}
BACKOFF_FACTOR = 1.8
"""A wait at least this many times the one before counts as doubled (timers are not exact)."""


def _doubling_from(gaps: Sequence[int]) -> int | None:
    """The index from which every wait is at least :data:`BACKOFF_FACTOR` times the one before (at
    least two such steps, or the whole list of three waits or more), or None."""
    for start in range(len(gaps) - 2):
        steps = list(zip(gaps[start:], gaps[start + 1 :]))
        if all(earlier > 0 and later >= BACKOFF_FACTOR * earlier for earlier, later in steps):
            return start
    return None


def _kinds(frame: FrameAnalysis) -> set[str]:
    return {finding.kind for finding in frame.findings}


def _finding(frame: FrameAnalysis, kind: str) -> Finding:
    return next(finding for finding in frame.findings if finding.kind == kind)


def _original(frame: FrameAnalysis) -> int:
    return next((finding.original for finding in frame.findings if finding.kind == "retransmission"), 0)


def _what(frame: FrameAnalysis) -> str:
    flags = frame.record.tcp_flags
    if flags & SYN:
        return "its SYN-ACK" if flags & ACK else "its SYN"
    if frame.record.payload_length:
        bytes_ = _plural(frame.record.payload_length, "byte")
        return f"the {bytes_}" + (" and FIN" if flags & FIN else "")
    if flags & FIN:
        return "its FIN"
    return "the segment"


def _options_text(raw: bytes) -> str:
    """``, offering MSS 65495, window scaling ×128 and SACK`` (RFC 9293 s3.7.1, RFC 7323, RFC 2018)."""
    if not raw:
        return ""
    options = parse_tcp_options(raw)
    offered = []
    if options.mss is not None:
        offered.append(f"a maximum segment size of {options.mss:,} bytes")
    if options.window_scale is not None:
        offered.append(f"window scaling ×{1 << min(options.window_scale, 14)}")
    if options.sack_permitted:
        offered.append("SACK")
    if options.timestamp is not None:
        offered.append("timestamps")
    return f", offering {_and(offered)}" if offered else ""


def _sack_blocks(frame: FrameAnalysis) -> list[tuple[int, int]]:
    """A segment's SACK blocks in relative numbers (the peer's sequence numbers, relative like ``ack``)."""
    record = frame.record
    if not record.tcp_options:
        return []
    blocks = parse_tcp_options(record.tcp_options).sack_blocks
    base = (record.ack - frame.ack) & 0xFFFFFFFF  # the peer's initial sequence number (relative 0)
    return [(relative(left, base), relative(right, base)) for left, right in blocks]


def _blocks_text(blocks: list[tuple[int, int]]) -> str:
    return ", ".join(f"{left}-{right}" for left, right in blocks)


def _sizes_text(sizes: list[int]) -> str:
    """``988 bytes each, the last 720``; a few segments of different sizes one by one (``10, 180 and
    10 bytes``: how Nagle's algorithm coalesced them shows); else the range."""
    distinct = sorted(set(sizes))
    if 1 < len(distinct) and len(sizes) <= 5:
        return f"{_and([f'{size:,}' for size in sizes])} bytes"
    if len(distinct) == 1:
        return f"{distinct[0]:,} bytes each" if len(sizes) > 1 else f"{distinct[0]:,} bytes"
    if len(set(sizes[:-1])) == 1:
        return f"{sizes[0]:,} bytes each, the last {sizes[-1]:,}"
    return f"{distinct[0]:,} to {distinct[-1]:,} bytes"


def _sentences(parts: Iterable[str]) -> str:
    """Clauses joined as sentences (each starts with a capital, the last has no full stop: the citation
    follows it)."""
    cleaned = [part.strip().rstrip(".") for part in parts if part]
    return ". ".join(part[0].upper() + part[1:] for part in cleaned if part)


def _unique(items: Iterable[str]) -> str:
    seen: list[str] = []
    for item in items:
        for piece in item.split("; "):
            if piece and piece not in seen:
                seen.append(piece)
    return "; ".join(seen)


def _frames(number: int, refers: Iterable[int], known: dict[int, FrameAnalysis]) -> tuple[int, ...]:
    """A frame and the frames it refers to that belong to the conversation, in order."""
    return tuple(sorted({number, *(n for n in refers if n in known)}))


# -- the kernel's side -----------------------------------------------------------------------------


def _kernel_sentences(
    endpoints: Sequence[EndpointKernel],
    story: KernelStory,
    stream: int,
    roles: dict[Endpoint, str],
    origin_ns: int,
    conversation_frames: set[int],
    packets: Sequence[int],
) -> list[Sentence]:
    """The calls, kernel marks and queue peaks of a TCP conversation's endpoints, in time order
    (``packets``: when the packet sentences start, on the capture's clock)."""
    told: list[tuple[int, int, Sentence]] = []

    def role(endpoint: EndpointKernel) -> str:
        return roles.get((endpoint.address, endpoint.port), endpoint.name)

    def own(frames: Iterable[int]) -> tuple[int, ...]:
        return tuple(sorted({frame for frame in frames if frame in conversation_frames}))

    for endpoint in endpoints:
        who = role(endpoint)
        calls = sorted([*endpoint.listener_calls, *endpoint.calls], key=lambda call: call.time_ns)
        for group in _consecutive(calls, endpoint, endpoints, packets):
            frames = own(frame for call in group for frame in call.frames)
            told.append(
                (
                    group[0].time_ns,
                    0,
                    Sentence(
                        f"The {who}'s program calls {_calls_text(group, endpoint.listener_calls)}",
                        frames=frames,
                        time_ns=group[0].time_ns - origin_ns,
                        kernel=True,
                    ),
                )
            )
        for mark in endpoint.marks:
            frame = own((mark.frame,)) if mark.frame else ()
            told.append((mark.time_ns, 1, _mark_sentence(who, mark, frame, origin_ns)))
        if endpoint.queues:
            send_peak = max(endpoint.queues, key=lambda sample: sample.send_q)
            recv_peak = max(endpoint.queues, key=lambda sample: sample.recv_q)
            if send_peak.send_q:
                told.append(
                    (
                        send_peak.time_ns,
                        2,
                        Sentence(
                            f"The {who}'s Send-Q (bytes its program wrote that the peer has not acknowledged yet) "
                            f"peaks at {send_peak.send_q:,} bytes",
                            frames=own((send_peak.frame,)),
                            time_ns=send_peak.time_ns - origin_ns,
                            kernel=True,
                        ),
                    )
                )
            if recv_peak.recv_q:
                told.append(
                    (
                        recv_peak.time_ns,
                        2,
                        Sentence(
                            f"The {who}'s Recv-Q (bytes received in order that its program has not read yet) "
                            f"peaks at {recv_peak.recv_q:,} bytes",
                            frames=own((recv_peak.frame,)),
                            time_ns=recv_peak.time_ns - origin_ns,
                            kernel=True,
                        ),
                    )
                )
    states = [change for endpoint in endpoints for change in endpoint.states]
    if states:
        last = max(change.time_ns for change in states)
        differences = [difference for difference in story.state_differences if difference.stream == stream]
        frames = own(change.frame for change in states if change.frame)
        if not differences:
            text = "The kernel's own state changes of both ends agree with the states inferred from the packets"
        else:
            names = {endpoint.name: role(endpoint) for endpoint in endpoints}
            text = "The kernel's own states agree with those inferred from the packets, except " + _and(
                [
                    f"for the {names.get(difference.endpoint, difference.endpoint)}: inferred "
                    f"{' → '.join(difference.inferred)}, kernel {' → '.join(difference.kernel)} "
                    f"({difference.explanation.rstrip('.').replace('(', '[').replace(')', ']')})"
                    for difference in differences
                ]
            )
        told.append((last, 3, Sentence(text, frames=frames, time_ns=last - origin_ns, kernel=True)))
    told.sort(key=lambda item: (item[0], item[1]))
    return [sentence for _, _, sentence in told]


def _consecutive(
    calls: list[SocketCall], endpoint: EndpointKernel, endpoints: Sequence[EndpointKernel], packets: Sequence[int]
) -> list[list[SocketCall]]:
    """The calls of one endpoint in groups that would follow each other in the narration: no call of
    another endpoint and no packet sentence (``packets``: when they start) comes between them, and each
    starts within :data:`CALLS_TOGETHER_NS` of the previous one's return."""
    others = sorted(
        [
            *packets,
            *(
                call.time_ns
                for other in endpoints
                if other is not endpoint
                for call in [*other.listener_calls, *other.calls]
            ),
        ]
    )
    groups: list[list[SocketCall]] = []
    for call in calls:
        if groups and call.time_ns - groups[-1][-1].end_ns <= CALLS_TOGETHER_NS:
            start = bisect.bisect_right(others, groups[-1][-1].time_ns)
            if start == len(others) or others[start] > call.time_ns:
                groups[-1].append(call)
                continue
        groups.append([call])
    return groups


def _calls_text(calls: list[SocketCall], listener: Sequence[SocketCall]) -> str:
    if len(calls) == 1:
        return _call_text(calls[0], listener, mapping=False)
    if len(calls) <= CALLS_LISTED:
        mapping = sum(bool(call.frames) for call in calls) > 1  # else the citation says it
        return _and([_call_text(call, listener, mapping=mapping) for call in calls])
    counts: dict[str, list[SocketCall]] = {}
    for call in calls:
        counts.setdefault(call.call, []).append(call)
    return _and(
        [
            f"{name}() {_plural(len(group), 'time')}"
            + (f" ({sum(max(call.result, 0) for call in group):,} bytes)" if name in ("send", "recv") else "")
            for name, group in counts.items()
        ]
    )


def _call_text(call: SocketCall, listener: Sequence[SocketCall], *, mapping: bool = True) -> str:
    """``recv(65536) -> 0 (the end of the stream: the peer closed its side)``, ``send(12) -> 12``;
    with ``mapping``, the frames of a send or recv in words (``carried by frame 4``)."""
    text = call.text
    if call.call == "recv" and call.result == 0:
        return f"{text} (the end of the stream: the peer closed its side)"
    if call.call == "connect" and call.result < 0 and call.detail == "EINPROGRESS":
        return f"{text} (the SYN is on its way; the program waits)"
    if call.call == "send" and 0 <= call.result < call.size:
        return f"{text} (a partial send: the kernel took {call.result:,} of its {call.size:,} bytes)"
    if call.call == "close" and call in listener:
        return f"{text} (the listening socket)"
    if mapping and call.call == "send" and call.frames:
        return f"{text} (carried by {cite_frames(call.frames)})"
    if mapping and call.call == "recv" and call.frames:
        return f"{text} (delivered by {cite_frames(call.frames)})"
    return text


def _mark_sentence(who: str, mark: KernelMark, frames: tuple[int, ...], origin_ns: int) -> Sentence:
    kind = mark.kind
    reason = f" ({mark.reason})" if mark.reason else ""
    if kind == "drop":
        what = f"frame {mark.frame}" if frames else "a packet the capture did not see"
        text = f"The {who}'s kernel drops {what} as it arrives{reason}"
    elif kind == "retransmission":
        text = f"The {who}'s kernel counts a retransmission{reason}"
    elif kind == "reset_sent":
        unseen = "" if frames else ", which the capture did not see"
        text = f"The {who}'s kernel sends a reset{reason}{unseen}"
    elif kind == "reset_received":
        text = f"The {who}'s kernel receives a reset{reason}"
    else:
        text = f"The {who}'s kernel records {kind.replace('_', ' ')}{reason}"
    return Sentence(text, frames=frames, time_ns=mark.time_ns - origin_ns, kernel=True)


# -- the entry point -------------------------------------------------------------------------------


def narrate(
    frames: Sequence[FrameAnalysis],
    conversation: ConversationSummary,
    *,
    origin_ns: int | None = None,
    kernel: KernelStory | None = None,
) -> Narration:
    """Tell ``conversation`` from ``frames`` (its frames' analyses in frame order; an ICMP error about
    it included, frames of other conversations ignored).

    ``origin_ns``: the time the narration counts from (the capture's first frame; default the
    conversation's first). ``kernel``: the kernel's side of the capture, when it was recorded.
    """
    from visualizer.analysis.report import in_stream

    own = [frame for frame in frames if in_stream(frame, conversation.protocol, conversation.stream)]
    origin = conversation.first_time_ns if origin_ns is None else origin_ns
    protocol = conversation.protocol
    if not own:
        return Narration(protocol, conversation.stream, f"{protocol.upper()} stream {conversation.stream}: no frames")
    teller = _Teller(own, protocol, origin)
    sentences = teller.sentences()
    if kernel is not None and protocol == "tcp":
        endpoints = kernel.of_stream(conversation.stream)
        if endpoints:
            extra = _kernel_sentences(
                endpoints,
                kernel,
                conversation.stream,
                teller.roles,
                origin,
                {frame.record.number for frame in own},
                [sentence.time_ns + origin for sentence in sentences if sentence.time_ns is not None],
            )
            sentences = _merge(sentences, extra)
    client, server = teller.client, teller.server
    count = len(own)
    duration = (own[-1].record.timestamp_ns or 0) - (own[0].record.timestamp_ns or 0)
    outcome = f", {conversation.outcome}" if conversation.outcome else ""
    title = (
        f"{protocol.upper()} stream {conversation.stream}: the client {endpoint_text(*client)} and the server "
        f"{endpoint_text(*server)}, {_plural(count, 'frame')} in {duration / 1e9:.6f} s{outcome}"
    )
    return Narration(protocol, conversation.stream, title, sentences)


def _merge(packets: list[Sentence], kernel: list[Sentence]) -> list[Sentence]:
    """Both lists in time order (a kernel sentence goes before the packet sentence it precedes)."""
    merged: list[Sentence] = []
    index = 0
    for sentence in packets:
        while (
            index < len(kernel)
            and sentence.time_ns is not None
            and kernel[index].time_ns is not None
            and kernel[index].time_ns < sentence.time_ns  # type: ignore[operator]
        ):
            merged.append(kernel[index])
            index += 1
        merged.append(sentence)
    merged.extend(kernel[index:])
    return merged
