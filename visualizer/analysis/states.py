"""The TCP state machine of both endpoints of a conversation, as a passive observer infers it.

Theory of operation
-------------------
Rule 1: everything that changes an endpoint's state lives in this module: the
table of transitions, the states a conversation starts in, when a received
segment counts as received (and when that inference is revised), which RSTs a
receiver acts on, and the outcome of a conversation. The analyzer only reports
what each segment is; the state-diagram figure and the tests read the same data.

A capture shows segments, not the endpoints' memory. Every segment produces
events for its sender (``SEND_*``) and its receiver (``RECEIVE_*``), and
:data:`TRANSITIONS` maps ``(state, event)`` to the next state (RFC 9293 s3.3.2,
Figure 5; simultaneous open, Figure 7; simultaneous close, Figure 13; the RST
rules of s3.10.7). A pair missing from the table leaves the state as it is and
becomes a ``state_anomaly`` finding naming the pair. The table holds all of
Figure 5, also the calls and the timer no segment shows (:data:`UNSEEN_EVENTS`:
passive OPEN, CLOSE, the 2 MSL timeout), which the analysis never takes; the
figure's notes are data too: an endpoint in SYN-RECEIVED after a passive OPEN
returns to LISTEN on a RST (:data:`PASSIVE_OPEN_TRANSITIONS`, note 1), and one
segment can bring two events (:data:`ONE_SEGMENT_EVENTS`: a FIN with the ACK of
the receiver's own FIN takes FIN-WAIT-1 to TIME-WAIT, note 2).

Sending is certain; receiving is an inference. Seeing a segment does not prove
its receiver got it (it may be dropped after the capture point, or cross the
receiver's own segment in flight), so every received event that changes a state
is *tentative* until the receiver's own next segment settles it
(:data:`RECEIPT_RULES`): an ACK that covers a SYN or FIN confirms it, one that
excludes it refutes it; an endpoint that sends its SYN or FIN again had not got
the ACK of it; an endpoint that keeps sending after a RST had not been reset by
it. A refuted event is taken out and the endpoint's states since then are
computed again, so every frame in between shows the revised state and no path
ever takes a transition the table does not have. A refuted SYN or FIN is still
owed: it counts as received at the next copy of it, or at the first segment of
the receiver that acknowledges it. The only send that can be refuted is a RST:
an endpoint that keeps sending after "its" RST did not send it (an injected
RST). What is still tentative when the capture ends stays as inferred; a SYN or
FIN whose receipt nothing in the capture confirms is reported as undecided.

Assumptions (heuristics of ours, not of the RFC), see :data:`INITIAL_STATES`: a
conversation first seen with a SYN starts with its sender CLOSED and its
receiver assumed LISTEN until it answers (a SYN-ACK confirms it; a RST shows
that nothing listened: CLOSED all along; a SYN of its own shows crossing SYNs);
one first seen with a SYN-ACK starts in SYN-RECEIVED and SYN-SENT; one first
seen mid-stream starts with both endpoints ESTABLISHED (said in a finding).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from types import SimpleNamespace
from typing import Any, NamedTuple

from visualizer.analysis.sequence import less_or_equal, less_than

SYN_FLAG, ACK_FLAG, FIN_FLAG, RST_FLAG = 0x002, 0x010, 0x001, 0x004  # RFC 9293 s3.1 (as in visualizer.model)


class State(StrEnum):
    """RFC 9293 s3.3.2 connection states."""

    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"


class Event(StrEnum):
    """What an endpoint does or receives, from one segment."""

    SEND_SYN = "send SYN"
    RECEIVE_SYN = "receive SYN"
    SEND_SYN_ACK = "send SYN-ACK"
    RECEIVE_SYN_ACK = "receive SYN-ACK"
    SEND_ACK = "send ACK"
    RECEIVE_ACK = "receive ACK"
    RECEIVE_ACK_OF_SYN = "receive ACK of SYN"
    RECEIVE_ACK_OF_FIN = "receive ACK of FIN"
    SEND_FIN = "send FIN"
    RECEIVE_FIN = "receive FIN"
    SEND_RST = "send RST"
    RECEIVE_RST = "receive RST"
    # What no segment shows: the application's calls and a timer (RFC 9293 s3.10, Figure 5). The table
    # has their transitions so that it holds the whole figure; the analysis of a capture never takes them.
    PASSIVE_OPEN = "passive OPEN"
    CLOSE = "CLOSE"
    TIMEOUT_2MSL = "timeout 2 MSL"


S = State
E = Event
# Plain namespaces of the same members for the per-segment code: an Enum class attribute costs a
# slow lookup (about 80 ns on CPython 3.11) where a plain attribute costs a dict lookup.
_S = SimpleNamespace(**{state.name: state for state in State})
_E = SimpleNamespace(**{event.name: event for event in Event})

SYNCHRONIZED = frozenset({S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT, S.CLOSING, S.LAST_ACK, S.TIME_WAIT})
"""RFC 9293 s3.3.2: the states after the handshake."""

# RFC 9293 s3.10.7.1: a CLOSED endpoint discards whatever arrives (and answers with a RST).
_CLOSED_DISCARDS: dict[tuple[State, Event], State] = {
    (S.CLOSED, event): S.CLOSED
    for event in (E.RECEIVE_SYN, E.RECEIVE_SYN_ACK, E.RECEIVE_ACK, E.RECEIVE_FIN, E.RECEIVE_RST, E.SEND_RST)
}
# s3.10.7.4: an acceptable RST ends the connection from any synchronized or half-open state; one
# sent by the endpoint ends it too (an abort, s3.10.4). LISTEN ignores a RST (s3.10.7.2).
_RESETS_CLOSE: dict[tuple[State, Event], State] = {
    (state, event): S.CLOSED
    for state in S
    if state not in (S.CLOSED, S.LISTEN)
    for event in (E.SEND_RST, E.RECEIVE_RST)
}

UNSEEN_EVENTS = frozenset({E.PASSIVE_OPEN, E.CLOSE, E.TIMEOUT_2MSL})
"""Events no segment shows (calls and timers): in the table for RFC 9293 Figure 5, never inferred."""

TRANSITIONS: dict[tuple[State, Event], State] = {
    **_CLOSED_DISCARDS,
    **_RESETS_CLOSE,
    # RFC 9293 Figure 5: the calls and the timer no segment shows.
    (S.CLOSED, E.PASSIVE_OPEN): S.LISTEN,
    (S.LISTEN, E.CLOSE): S.CLOSED,
    (S.SYN_SENT, E.CLOSE): S.CLOSED,
    (S.TIME_WAIT, E.TIMEOUT_2MSL): S.CLOSED,
    # s3.10.7.2: a listener ignores a RST, answers any ACK with a RST and drops a FIN (it has an ACK).
    (S.LISTEN, E.RECEIVE_RST): S.LISTEN,
    (S.LISTEN, E.SEND_RST): S.LISTEN,
    (S.LISTEN, E.RECEIVE_ACK): S.LISTEN,
    (S.LISTEN, E.RECEIVE_SYN_ACK): S.LISTEN,
    (S.LISTEN, E.RECEIVE_FIN): S.LISTEN,
    # Opening (RFC 9293 s3.5, Figure 6; simultaneous open, Figure 7).
    (S.CLOSED, E.SEND_SYN): S.SYN_SENT,
    (S.LISTEN, E.RECEIVE_SYN): S.SYN_RECEIVED,
    (S.LISTEN, E.SEND_SYN): S.SYN_SENT,
    (S.SYN_SENT, E.SEND_SYN): S.SYN_SENT,  # retransmitted SYN
    (S.SYN_SENT, E.RECEIVE_SYN_ACK): S.ESTABLISHED,
    (S.SYN_SENT, E.RECEIVE_SYN): S.SYN_RECEIVED,  # simultaneous open
    (S.SYN_SENT, E.RECEIVE_ACK): S.SYN_SENT,  # an ACK without SYN: not acceptable, ignored (s3.10.7.3)
    (S.SYN_SENT, E.SEND_ACK): S.ESTABLISHED,  # observer's rule: the SYN-ACK it answers was not captured
    (S.SYN_RECEIVED, E.RECEIVE_SYN): S.SYN_RECEIVED,  # retransmitted SYN
    (S.SYN_RECEIVED, E.SEND_SYN_ACK): S.SYN_RECEIVED,
    (S.SYN_RECEIVED, E.RECEIVE_SYN_ACK): S.ESTABLISHED,  # simultaneous open completes
    (S.SYN_RECEIVED, E.SEND_ACK): S.SYN_RECEIVED,
    (S.SYN_RECEIVED, E.RECEIVE_ACK): S.SYN_RECEIVED,  # an ACK that does not cover our SYN
    (S.SYN_RECEIVED, E.RECEIVE_ACK_OF_SYN): S.ESTABLISHED,
    (S.SYN_RECEIVED, E.SEND_FIN): S.FIN_WAIT_1,
    (S.SYN_RECEIVED, E.RECEIVE_FIN): S.CLOSE_WAIT,
    # Data transfer.
    (S.ESTABLISHED, E.SEND_ACK): S.ESTABLISHED,
    (S.ESTABLISHED, E.RECEIVE_ACK): S.ESTABLISHED,
    (S.ESTABLISHED, E.RECEIVE_ACK_OF_SYN): S.ESTABLISHED,
    (S.ESTABLISHED, E.RECEIVE_SYN): S.ESTABLISHED,  # retransmitted SYN, or a challenge ACK (RFC 5961 s4.2)
    (S.ESTABLISHED, E.RECEIVE_SYN_ACK): S.ESTABLISHED,  # retransmitted SYN-ACK: ACKed again
    (S.ESTABLISHED, E.SEND_SYN_ACK): S.ESTABLISHED,  # our ACK of the SYN was lost: the SYN-ACK again
    (S.ESTABLISHED, E.SEND_FIN): S.FIN_WAIT_1,
    (S.ESTABLISHED, E.RECEIVE_FIN): S.CLOSE_WAIT,
    # Closing (RFC 9293 s3.6, Figures 12 and 13).
    (S.FIN_WAIT_1, E.SEND_ACK): S.FIN_WAIT_1,
    (S.FIN_WAIT_1, E.RECEIVE_ACK): S.FIN_WAIT_1,
    (S.FIN_WAIT_1, E.SEND_FIN): S.FIN_WAIT_1,  # retransmitted FIN
    (S.FIN_WAIT_1, E.RECEIVE_ACK_OF_FIN): S.FIN_WAIT_2,
    (S.FIN_WAIT_1, E.RECEIVE_FIN): S.CLOSING,  # simultaneous close
    (S.FIN_WAIT_2, E.SEND_ACK): S.FIN_WAIT_2,
    (S.FIN_WAIT_2, E.RECEIVE_ACK): S.FIN_WAIT_2,
    (S.FIN_WAIT_2, E.RECEIVE_ACK_OF_FIN): S.FIN_WAIT_2,
    (S.FIN_WAIT_2, E.RECEIVE_FIN): S.TIME_WAIT,
    (S.CLOSE_WAIT, E.SEND_ACK): S.CLOSE_WAIT,
    (S.CLOSE_WAIT, E.RECEIVE_ACK): S.CLOSE_WAIT,
    (S.CLOSE_WAIT, E.RECEIVE_FIN): S.CLOSE_WAIT,  # retransmitted FIN
    (S.CLOSE_WAIT, E.SEND_FIN): S.LAST_ACK,
    (S.CLOSING, E.SEND_ACK): S.CLOSING,
    (S.CLOSING, E.RECEIVE_ACK): S.CLOSING,
    (S.CLOSING, E.RECEIVE_FIN): S.CLOSING,
    (S.CLOSING, E.SEND_FIN): S.CLOSING,
    (S.CLOSING, E.RECEIVE_ACK_OF_FIN): S.TIME_WAIT,
    (S.LAST_ACK, E.SEND_ACK): S.LAST_ACK,
    (S.LAST_ACK, E.RECEIVE_ACK): S.LAST_ACK,
    (S.LAST_ACK, E.SEND_FIN): S.LAST_ACK,
    (S.LAST_ACK, E.RECEIVE_FIN): S.LAST_ACK,
    (S.LAST_ACK, E.RECEIVE_ACK_OF_FIN): S.CLOSED,
    (S.TIME_WAIT, E.SEND_ACK): S.TIME_WAIT,  # re-ACKs a retransmitted FIN (s3.6)
    (S.TIME_WAIT, E.RECEIVE_ACK): S.TIME_WAIT,
    (S.TIME_WAIT, E.RECEIVE_FIN): S.TIME_WAIT,
    (S.TIME_WAIT, E.RECEIVE_ACK_OF_FIN): S.TIME_WAIT,
}


PASSIVE_OPEN_TRANSITIONS: dict[tuple[State, Event], State] = {
    (S.SYN_RECEIVED, E.RECEIVE_RST): S.LISTEN,
}
"""Transitions that replace those of :data:`TRANSITIONS` for an endpoint that reached SYN-RECEIVED from
LISTEN (a passive OPEN): a RST it accepts returns it to LISTEN; one that came from SYN-SENT (a
simultaneous open) closes (RFC 9293 s3.10.7.4, Figure 5 note 1)."""

ONE_SEGMENT_EVENTS: tuple[tuple[Event, ...], ...] = (
    (E.RECEIVE_ACK_OF_FIN, E.RECEIVE_FIN),
    (E.RECEIVE_ACK_OF_SYN, E.RECEIVE_FIN),
)
"""Events one segment brings its receiver together, applied in this order (as
:meth:`ConnectionStates.segment` does): a FIN that also acknowledges the receiver's own FIN takes
FIN-WAIT-1 -> FIN-WAIT-2 -> TIME-WAIT at once (RFC 9293 s3.10.7.4, Figure 5 note 2)."""


def next_state(state: State, event: Event, *, passive: bool = False) -> State | None:
    """The state after ``event``, or None when the table has no such transition (an anomaly).
    ``passive``: the endpoint reached SYN-RECEIVED from LISTEN (:data:`PASSIVE_OPEN_TRANSITIONS`)."""
    return (passive and PASSIVE_OPEN_TRANSITIONS.get((state, event))) or TRANSITIONS.get((state, event))


def follow(
    state: State, events: tuple[Event, ...], passive: bool = False
) -> tuple[State, tuple[State, Event] | None, bool]:
    """The state after ``events`` in turn, the last (state, event) pair the table has no
    transition for (an anomaly: the state is kept) or None, and whether the endpoint is in
    SYN-RECEIVED after a passive OPEN (``passive``: it was before ``events``)."""
    key = (state, events, passive)
    found = _FOLLOWED.get(key)
    if found is None:
        anomaly = None
        for event in events:
            following = (passive and PASSIVE_OPEN_TRANSITIONS.get((state, event))) or TRANSITIONS.get((state, event))
            if following is None:
                anomaly = (state, event)
                continue
            if following is not state:
                passive = following is _S.SYN_RECEIVED and state is _S.LISTEN
            state = following
        found = _FOLLOWED[key] = (state, anomaly, passive)
    return found


_FOLLOWED: dict[tuple[State, tuple[Event, ...], bool], tuple[State, tuple[State, Event] | None, bool]] = {}
"""What :func:`follow` found (a cache: the tables are fixed, and the event sequences are few)."""


def one_segment_transitions() -> dict[tuple[State, State], tuple[Event, ...]]:
    """Moves one segment makes through two transitions of the table (:data:`ONE_SEGMENT_EVENTS`)
    between states that no single event joins: (from, to) -> the events."""
    single = {(state, following) for (state, _), following in TRANSITIONS.items()}
    moves: dict[tuple[State, State], tuple[Event, ...]] = {}
    for events in ONE_SEGMENT_EVENTS:
        for state in State:
            following, anomaly, _ = follow(state, events)
            if anomaly is None and following is not state and (state, following) not in single:
                moves[(state, following)] = events
    return moves


class InitialStates(NamedTuple):
    """The endpoints' states *before* the first segment seen of a conversation."""

    sender: State
    receiver: State
    assumption: str
    """What is assumed rather than seen (reported as a finding), or ``""``."""


INITIAL_STATES: dict[str, InitialStates] = {
    "SYN": InitialStates(S.CLOSED, S.LISTEN, "LISTEN until it answers"),  # tentative: RECEIPT_RULES["listen"]
    "SYN-ACK": InitialStates(S.SYN_RECEIVED, S.SYN_SENT, "the SYN was not captured"),
    "other": InitialStates(S.ESTABLISHED, S.ESTABLISHED, "first seen mid-stream: both endpoints taken as ESTABLISHED"),
}
"""First segment seen (SYN, SYN-ACK, anything else) -> the states the endpoints start in."""

RECEIPT_RULES: dict[str, tuple[str, str]] = {
    "listen": (
        "it answers with a SYN-ACK",
        "it answers with a RST (nothing listened: CLOSED all along) or sends a SYN of its own (crossing SYNs)",
    ),
    "syn": ("the receiver's next ACK covers it", "that ACK excludes it, or the receiver sends its own SYN again"),
    "synack": ("the receiver acknowledges it", "the receiver sends its own SYN again (it took a SYN, not this)"),
    "fin": ("the receiver's next ACK covers it", "that ACK excludes it (received later: at a copy, or that ACK)"),
    "ack": ("the endpoint sends anything but that FIN", "it sends its FIN again"),
    "rst": ("the receiver sends nothing more, or only RSTs", "it keeps sending other segments"),
    "send_rst": ("its sender sends nothing more, or only RSTs", "it keeps sending other segments (injected)"),
}
"""Tentative inference -> (what confirms it, what refutes it), applied to the endpoint's next segment."""


# -- RFC 5961: which RSTs a receiver acts on ----------------------------------------------------

RST_ACCEPTED, RST_CHALLENGED, RST_IGNORED = "accepted", "challenged", "ignored"
RST_RULES: dict[str, str] = {
    RST_ACCEPTED: "at RCV.NXT (in SYN-SENT: acknowledging the SYN): the receiver resets",
    RST_CHALLENGED: "elsewhere in the receive window: ignored, answered with a challenge ACK",
    RST_IGNORED: "outside the window, or to LISTEN or CLOSED: dropped",
}
"""What :func:`rst_verdict` decides, in words (RFC 5961 s3.2, RFC 9293 s3.10.7)."""


def rst_verdict(
    receiver_state: State,
    seq: int,
    ack: int | None,
    *,
    receiver_acked: int | None,
    receiver_window: int | None,
    sender_sent_end: int | None,
) -> str:
    """What the receiver of a RST does with it (RFC 9293 s3.10.7, RFC 5961 s3.2).

    Sequence numbers are relative (the sender's ISN is 0). In SYN-SENT a RST counts only
    if it acknowledges the SYN (s3.10.7.3); LISTEN and CLOSED ignore it. Elsewhere only a
    RST at RCV.NXT resets; one elsewhere in the receive window earns a challenge ACK; one
    outside it is dropped. The observer knows RCV.NXT only between the receiver's last ACK
    (``receiver_acked``) and what the sender has sent (``sender_sent_end``): a RST anywhere
    in that range counts as at RCV.NXT.
    """
    if receiver_state is _S.SYN_SENT:
        return RST_ACCEPTED if ack == 1 else RST_IGNORED
    if receiver_state in (_S.LISTEN, _S.CLOSED):
        return RST_IGNORED
    if receiver_acked is None:
        return RST_ACCEPTED
    low = receiver_acked
    high = sender_sent_end if sender_sent_end is not None and less_or_equal(low, sender_sent_end) else low
    if less_or_equal(low, seq) and less_or_equal(seq, high):
        return RST_ACCEPTED
    if receiver_window and less_than(low, seq) and less_than(seq, (high + receiver_window) & 0xFFFFFFFF):
        return RST_CHALLENGED
    return RST_IGNORED


# -- The inference of both endpoints' states --------------------------------------------------


Mark = list[Any]
"""The states after one frame as the inference stands, revised while the frame is held:
``[frame, sender's state, receiver's state]`` (a list: one is made for every frame the
state machine sees)."""


class _Entry:
    """One frame in an endpoint's history: its events, and the tentative ones among them."""

    __slots__ = ("mark", "side", "events", "anomaly")

    def __init__(self, mark: Mark, side: int, events: tuple[Event, ...]) -> None:
        self.mark = mark
        self.side = side  # 0: the endpoint sent the frame; 1: it is the frame's receiver
        self.events = events
        self.anomaly: tuple[State, Event] | None = None


class _Tentative:
    __slots__ = ("kind", "entry", "event", "end", "frame")

    def __init__(self, kind: str, entry: _Entry, event: Event | None, end: int, frame: int) -> None:
        self.kind = kind
        self.entry = entry
        self.event = event
        self.end = end  # for a SYN or FIN: the sequence number that acknowledges it
        self.frame = frame


Note = Callable[[str, int, str, tuple[int, ...]], None]
"""Records a finding: (kind, frame, reason, frames it refers to)."""


class _Endpoint:
    __slots__ = (
        "state",
        "base",
        "passive",
        "base_passive",
        "entries",
        "tentatives",
        "owed",
        "syn_end",
        "fin_end",
        "where",
        "challenge_owed",
    )

    def __init__(self, state: State, where: tuple[str, int]) -> None:
        self.state = state
        self.base = state
        self.passive = self.base_passive = False  # in SYN-RECEIVED after a passive OPEN (and at base)
        self.entries: list[_Entry] = []
        self.tentatives: list[_Tentative] = []
        self.owed: dict[str, tuple[int, int]] = {}  # "syn"/"fin" of the peer not received yet: (end, frame)
        self.syn_end: int | None = None  # what acknowledges this endpoint's SYN / FIN
        self.fin_end: int | None = None
        self.where = where  # (address, port)
        self.challenge_owed = 0  # frame of a RST or SYN that a challenge ACK should answer

    @property
    def name(self) -> str:
        """The endpoint as findings name it (made only when one does: most conversations have none)."""
        return endpoint_name(*self.where)


def endpoint_name(address: str, port: int) -> str:
    """address:port, or [address]:port for IPv6."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _receive_ack(
    receiver: _Endpoint, ack: int, end: int
) -> tuple[tuple[Event, ...], tuple[tuple[str, Event, int], ...]]:
    """What an ACK means to its receiver: of its FIN (tentative: refuted if it sends its FIN
    again), of its SYN, or neither. (The ACK of a SYN needs no such care: an endpoint that sends
    its SYN-ACK again in ESTABLISHED takes a transition of the table.)"""
    if receiver.fin_end is not None and ack == receiver.fin_end:
        return (_E.RECEIVE_ACK_OF_FIN,), (("ack", _E.RECEIVE_ACK_OF_FIN, end),)
    if receiver.state is _S.SYN_RECEIVED and less_or_equal(receiver.syn_end or 1, ack):
        return (_E.RECEIVE_ACK_OF_SYN,), ()
    return (_E.RECEIVE_ACK,), ()


def _sent_events(flags: int) -> tuple[Event, ...]:
    """What sending a segment with these flags does to its sender (a RST only resets)."""
    if flags & RST_FLAG:
        return (_E.SEND_RST,)
    if flags & SYN_FLAG:
        return (_E.SEND_SYN_ACK if flags & ACK_FLAG else _E.SEND_SYN,)
    return (_E.SEND_ACK, _E.SEND_FIN) if flags & FIN_FLAG else (_E.SEND_ACK,)


_SYN_FIN_RST = SYN_FLAG | FIN_FLAG | RST_FLAG
_SENT_EVENTS = {
    flags: _sent_events(flags)
    for flags in range((_SYN_FIN_RST | ACK_FLAG) + 1)
    if not flags & ~(_SYN_FIN_RST | ACK_FLAG)
}
"""The flags that matter (SYN, ACK, FIN, RST) -> the sender's events (computed once)."""


MAXIMUM_HISTORY = 4096
"""An endpoint's undecided history is settled as it stands beyond this many frames (bounded memory)."""


class ConnectionStates:
    """Both endpoints of one TCP conversation: feed each segment, read the states back.

    Endpoint 0 sent the first segment seen. ``segment`` returns the frame's :class:`Mark`,
    whose states may still be revised (by later segments) until :attr:`settled` is true
    again; ``note`` receives the findings (some about earlier frames).
    """

    __slots__ = ("endpoints", "note", "refused", "rst_seen", "synack_seen", "syn_seen", "settled")

    def __init__(
        self, first_flags: int, number: int, endpoints: tuple[tuple[str, int], tuple[str, int]], note: Note
    ) -> None:
        if first_flags & (SYN_FLAG | ACK_FLAG) == SYN_FLAG:
            initial = INITIAL_STATES["SYN"]
        elif first_flags & (SYN_FLAG | ACK_FLAG) == SYN_FLAG | ACK_FLAG:
            initial = INITIAL_STATES["SYN-ACK"]
        else:
            initial = INITIAL_STATES["other"]
        self.endpoints = (_Endpoint(initial.sender, endpoints[0]), _Endpoint(initial.receiver, endpoints[1]))
        self.note = note
        self.refused = False
        self.rst_seen = self.synack_seen = self.syn_seen = False
        self.settled = False
        """Both ESTABLISHED with nothing left to revise: plain segments change nothing (set by :meth:`segment`)."""
        if initial.assumption and initial.receiver is not _S.LISTEN:  # LISTEN is settled by the answer
            note("state_assumed", number, initial.assumption, ())
        if initial.receiver is _S.LISTEN:
            receiver = self.endpoints[1]
            mark: Mark = [number, initial.sender, initial.receiver]
            entry = _Entry(mark, 1, ())
            receiver.entries.append(entry)
            receiver.tentatives.append(_Tentative("listen", entry, None, 0, number))

    def states(self, sender: int) -> tuple[State, State]:
        return self.endpoints[sender].state, self.endpoints[1 - sender].state

    # -- one segment ------------------------------------------------------------------------

    def segment(
        self,
        sender_index: int,
        number: int,
        flags: int,
        seq: int,
        ack: int,
        end: int,
        length: int,
        receiver_acked: int | None,
        receiver_window: int | None,
        sender_sent_end: int | None,
    ) -> Mark:
        """Apply one segment (relative numbers; ``end`` counts SYN and FIN); returns its mark.

        ``receiver_acked``, ``receiver_window`` and ``sender_sent_end`` (what the receiver
        last acknowledged and advertised, what the sender had sent before) place a RST
        (:func:`rst_verdict`). Sets :attr:`settled`.
        """
        sender, receiver = self.endpoints[sender_index], self.endpoints[1 - sender_index]
        mark: Mark = [number, sender.state, receiver.state]
        has_ack = flags & ACK_FLAG

        # 1. What the sender's segment says about what it received before.
        if sender.tentatives:
            self._settle_receipts(sender, number, flags, seq, ack, end, has_ack)
        if sender.challenge_owed:
            if not flags & _SYN_FIN_RST and not length and has_ack:
                self.note(
                    "challenge_ack",
                    number,
                    f"answers #{sender.challenge_owed} with a challenge ACK (RFC 5961 s3.2, s4.2)",
                    (sender.challenge_owed,),
                )
            sender.challenge_owed = 0

        # 2. The sender's own events (certain, but for a RST).
        sent = _SENT_EVENTS[flags & (_SYN_FIN_RST | ACK_FLAG)]
        if sender.owed and has_ack:
            sent = self._owed_events(sender, ack) + sent
        if not flags & RST_FLAG:
            if flags & SYN_FLAG:
                sender.syn_end = end
            elif flags & FIN_FLAG:
                sender.fin_end = end
        state, anomaly, sender.passive = follow(sender.state, sent, sender.passive)
        if flags & RST_FLAG or sender.tentatives:  # part of a history that may be replayed
            sent_entry = _Entry(mark, 0, sent)
            sent_entry.anomaly = anomaly
            sender.entries.append(sent_entry)
            if flags & RST_FLAG:
                sender.tentatives.append(_Tentative("send_rst", sent_entry, _E.SEND_RST, end, number))
        else:
            if anomaly is not None:
                self._anomaly(sender, number, *anomaly)
            sender.base, sender.base_passive = state, sender.passive
        sender.state = mark[1] = state

        # 3. The receiver's events, tentative when they change its state.
        before = receiver.state
        if flags & RST_FLAG:
            received, tentative = self._receive_rst(
                receiver, number, seq, ack if has_ack else None, receiver_acked, receiver_window, sender_sent_end, end
            )
        elif flags & (SYN_FLAG | FIN_FLAG):
            received, tentative = self._receive_syn_fin(receiver, number, flags, ack, end)
        elif has_ack:
            received, tentative = _receive_ack(receiver, ack, end)
        else:
            received, tentative = (), ()
        after, anomaly, receiver.passive = follow(before, received, receiver.passive)
        if tentative and before is not _S.CLOSED:
            # An ACK that changes nothing, or a segment to a closed port: nothing to confirm.
            kept = [item for item in tentative if not (item[0] == "ack" and after is before)]
        else:
            kept = None
        if kept or receiver.tentatives:  # part of a history that may be replayed
            received_entry = _Entry(mark, 1, received)
            received_entry.anomaly = anomaly
            receiver.entries.append(received_entry)
            if kept:
                for kind, event, event_end in kept:
                    receiver.tentatives.append(_Tentative(kind, received_entry, event, event_end, number))
        else:
            if anomaly is not None:
                self._anomaly(receiver, number, *anomaly)
            receiver.base, receiver.base_passive = after, receiver.passive
        receiver.state = mark[2] = after
        if sender.entries:
            self._commit_if_settled(sender)
        if receiver.entries:
            self._commit_if_settled(receiver)
        self.settled = (
            after is _S.ESTABLISHED
            and sender.state is _S.ESTABLISHED
            and not sender.tentatives
            and not receiver.tentatives
            and not sender.challenge_owed
            and not receiver.challenge_owed
        )
        return mark

    @staticmethod
    def _owed_events(sender: _Endpoint, ack: int) -> tuple[Event, ...]:
        """The peer's SYN or FIN that the sender had not received, received before this ACK of it."""
        events: tuple[Event, ...] = ()
        for kind, event in (("syn", _E.RECEIVE_SYN), ("fin", _E.RECEIVE_FIN)):
            owed = sender.owed.get(kind)
            if owed is not None and less_or_equal(owed[0], ack):
                del sender.owed[kind]
                events += (event,)
        return events

    def _receive_rst(
        self,
        receiver: _Endpoint,
        number: int,
        seq: int,
        ack: int | None,
        receiver_acked: int | None,
        receiver_window: int | None,
        sender_sent_end: int | None,
        end: int,
    ) -> tuple[tuple[Event, ...], tuple[tuple[str, Event, int], ...]]:
        verdict = rst_verdict(
            receiver.state,
            seq,
            ack,
            receiver_acked=receiver_acked,
            receiver_window=receiver_window,
            sender_sent_end=sender_sent_end,
        )
        if verdict == RST_ACCEPTED:
            self.rst_seen = True
            if receiver.state in SYNCHRONIZED:
                self.note("rst_accepted", number, "at the receiver's next expected sequence number: it resets", ())
            elif receiver.state is _S.SYN_SENT:
                self.refused = True  # RFC 9293 s3.10.7.3: "connection reset" in SYN-SENT
            return (_E.RECEIVE_RST,), (("rst", _E.RECEIVE_RST, end),)
        if verdict == RST_CHALLENGED:
            receiver.challenge_owed = number
            self.note(
                "rst_challenged",
                number,
                "in the receive window but not at its next expected sequence number: "
                "ignored, answered with a challenge ACK (RFC 5961 s3.2)",
                (),
            )
        else:
            self.note("rst_ignored", number, "outside the receive window: the receiver ignores it (RFC 5961 s3.2)", ())
        return (), ()

    def _receive_syn_fin(
        self, receiver: _Endpoint, number: int, flags: int, ack: int, end: int
    ) -> tuple[tuple[Event, ...], tuple[tuple[str, Event, int], ...]]:
        received: tuple[Event, ...] = ()
        tentative: tuple[tuple[str, Event, int], ...] = ()
        has_ack = flags & ACK_FLAG
        if flags & SYN_FLAG:
            if has_ack:
                self.synack_seen = True
            else:
                self.syn_seen = True
            if receiver.state in SYNCHRONIZED and not has_ack and "syn" not in receiver.owed:
                receiver.challenge_owed = number  # RFC 5961 s4.2: a SYN in a synchronized state
            event = _E.RECEIVE_SYN_ACK if has_ack else _E.RECEIVE_SYN
            received, tentative = (event,), (("synack" if has_ack else "syn", event, end),)
            receiver.owed.pop("syn", None)  # this copy may be the one that arrives
        elif has_ack:
            received, tentative = _receive_ack(receiver, ack, end)
        if flags & FIN_FLAG:
            received += (_E.RECEIVE_FIN,)
            tentative += (("fin", _E.RECEIVE_FIN, end),)
            receiver.owed.pop("fin", None)
        return received, tentative

    def _anomaly(self, endpoint: _Endpoint, frame: int, state: State, event: Event) -> None:
        self.note(
            "state_anomaly",
            frame,
            f"{endpoint.name} in {state} cannot {event} (no RFC 9293 transition): state kept",
            (),
        )

    def _settle_receipts(
        self, endpoint: _Endpoint, number: int, flags: int, seq: int, ack: int, end: int, has_ack: int
    ) -> None:
        """Confirm or refute what ``endpoint`` was taken to have received, from the segment it sends now."""
        if not endpoint.tentatives:
            return
        resends_syn = bool(flags & SYN_FLAG) and seq == 0
        resends_fin = bool(flags & FIN_FLAG) and endpoint.fin_end is not None and end == endpoint.fin_end
        refuted: list[_Tentative] = []
        kept: list[_Tentative] = []
        for item in endpoint.tentatives:
            if item.kind == "listen":
                if has_ack and not flags & RST_FLAG:
                    continue  # it was listening (its SYN-ACK, or an ACK after a SYN-ACK not captured)
                if flags & RST_FLAG or flags & SYN_FLAG:
                    refuted.append(item)
                    continue
            elif item.kind == "synack":
                if resends_syn:
                    refuted.append(item)  # it had not taken the SYN-ACK as the answer to its SYN
                    continue
                if has_ack and not flags & RST_FLAG:
                    continue
            elif item.kind in ("syn", "fin"):
                if has_ack:
                    if less_or_equal(item.end, ack):
                        continue  # confirmed
                    refuted.append(item)
                    continue
                if item.kind == "syn" and flags & SYN_FLAG:
                    refuted.append(item)
                    continue
            elif item.kind == "ack":
                if resends_syn or resends_fin:
                    refuted.append(item)
                    continue
                if not flags & RST_FLAG:
                    continue
            elif item.kind in ("rst", "send_rst"):
                if not flags & RST_FLAG:
                    refuted.append(item)
                    continue
            kept.append(item)
        endpoint.tentatives = kept
        if not refuted:
            return
        for item in refuted:
            if item.kind == "listen":
                endpoint.base, endpoint.base_passive = _S.CLOSED, False
                if flags & RST_FLAG:
                    self.note(
                        "no_listener",
                        number,
                        f"nothing listened on {endpoint.name}: the SYN (#{item.frame}) is answered with a RST "
                        "(RFC 9293 s3.10.7.1)",
                        (item.frame,),
                    )
            elif item.event is not None:
                events = item.entry.events
                at = events.index(item.event)
                item.entry.events = events[:at] + events[at + 1 :]
                if item.kind == "synack" and has_ack and less_or_equal(item.end, ack):
                    # It had the SYN, and answers it as in a simultaneous open (RFC 9293 Figure 7):
                    # the SYN-ACK had not reached it yet, or it would have sent a plain ACK.
                    endpoint.owed["syn"] = (item.end, item.frame)
                    self.note(
                        "not_yet_received",
                        item.frame,
                        f"not received (yet) when {endpoint.name} sent #{number}, which answers the SYN with a "
                        "SYN-ACK of its own as in a simultaneous open (RFC 9293 Figure 7): it was still SYN-SENT",
                        (number,),
                    )
                elif item.kind in ("syn", "synack", "fin"):
                    endpoint.owed["fin" if item.kind == "fin" else "syn"] = (item.end, item.frame)
                    if item.kind == "synack":
                        why = "sending its own SYN again"
                    elif has_ack:
                        why = f"acknowledging only up to {ack}"
                    else:
                        why = "a SYN of its own, acknowledging nothing (the SYNs crossed)"
                    self.note(
                        "not_yet_received",
                        item.frame,
                        f"not received (yet) when {endpoint.name} sent #{number}, {why}",
                        (number,),
                    )
                elif item.kind == "rst":
                    self.note(
                        "rst_ignored",
                        item.frame,
                        f"{endpoint.name} kept sending (#{number}): the RST did not reset it",
                        (number,),
                    )
                elif item.kind == "send_rst":
                    self.note(
                        "injected_rst",
                        item.frame,
                        f"{endpoint.name} kept sending (#{number}): this RST did not come from its socket",
                        (number,),
                    )
        self._replay(endpoint)

    @staticmethod
    def _apply(endpoint: _Endpoint, entry: _Entry) -> None:
        state, entry.anomaly, endpoint.passive = follow(endpoint.state, entry.events, endpoint.passive)
        endpoint.state = state
        entry.mark[1 + entry.side] = state

    def _replay(self, endpoint: _Endpoint) -> None:
        """Compute the endpoint's states again from its base, after a revision."""
        endpoint.state, endpoint.passive = endpoint.base, endpoint.base_passive
        for entry in endpoint.entries:
            entry.anomaly = None
            self._apply(endpoint, entry)

    def _commit_if_settled(self, endpoint: _Endpoint, force: bool = False) -> None:
        """Once nothing is tentative any more (or the history reached :data:`MAXIMUM_HISTORY`), the
        history is final: report its anomalies, forget it."""
        if endpoint.tentatives and not force and len(endpoint.entries) < MAXIMUM_HISTORY:
            return
        for entry in endpoint.entries:
            if entry.anomaly is not None:
                self._anomaly(endpoint, entry.mark[0], *entry.anomaly)
        endpoint.entries = []
        endpoint.tentatives = []
        endpoint.base, endpoint.base_passive = endpoint.state, endpoint.passive

    def hold_from(self) -> int | None:
        """The earliest frame whose states may still be revised, or None."""
        frames: list[int] = [e.entries[0].mark[0] for e in self.endpoints if e.tentatives and e.entries]
        return min(frames) if frames else None

    def close(self) -> None:
        """The capture has ended: what is still tentative stays as inferred; say which receipts nothing confirmed."""
        for endpoint in self.endpoints:
            said: set[str] = set()
            for item in endpoint.tentatives:
                if item.kind in said or item.kind == "syn" and "listen" in said:
                    continue  # a copy (retransmission) of a SYN or FIN already reported; the unanswered SYN
                said.add(item.kind)
                if item.kind in ("syn", "synack", "fin"):
                    name = {"syn": "SYN", "synack": "SYN-ACK", "fin": "FIN"}[item.kind]
                    self.note(
                        "receipt_undecided",
                        item.frame,
                        f"no later segment of {endpoint.name} shows whether it received this {name}",
                        (),
                    )
                elif item.kind == "listen":
                    self.note(
                        "receipt_undecided",
                        item.frame,
                        f"{endpoint.name} never answers: whether anything listened is unknown",
                        (),
                    )
            self._commit_if_settled(endpoint, force=True)

    def outcome(self) -> str:
        """complete, closing, half-closed, reset, refused, unanswered or open."""
        first, second = self.endpoints
        if self.refused:
            return "refused"
        if self.rst_seen:
            return "reset"
        closed = (_S.TIME_WAIT, _S.CLOSED)
        if first.fin_end is not None and second.fin_end is not None:
            return "complete" if first.state in closed or second.state in closed else "closing"
        if first.fin_end is not None or second.fin_end is not None:
            return "half-closed"
        if self.syn_seen and not self.synack_seen:
            return "unanswered"
        return "open"


__all__ = [
    "INITIAL_STATES",
    "ONE_SEGMENT_EVENTS",
    "PASSIVE_OPEN_TRANSITIONS",
    "RECEIPT_RULES",
    "RST_RULES",
    "SYNCHRONIZED",
    "TRANSITIONS",
    "UNSEEN_EVENTS",
    "ConnectionStates",
    "Event",
    "InitialStates",
    "Mark",
    "State",
    "next_state",
    "one_segment_transitions",
    "rst_verdict",
]
