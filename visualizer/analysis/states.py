"""The TCP state machine of one endpoint, as seen by a passive observer.

Theory of operation
-------------------
Rule 1: everything that changes an endpoint's state lives in ``TRANSITIONS``.

A capture shows segments, not the endpoints' memory, so sockstory infers each
endpoint's RFC 9293 state (s3.3.2, Figure 5) from what it sends and receives.
Every segment produces events for its sender (``SEND_*``) and its receiver
(``RECEIVE_*``): a SYN, a SYN-ACK, an ACK (or an ACK that covers the peer's
FIN), a FIN, a RST. The table maps ``(state, event)`` to the next state. A pair
missing from the table is not an error: the endpoint keeps its state and the
analysis records an anomaly (``state_anomaly``) naming the pair, because real
captures miss segments, start mid-connection and contain misbehaving stacks.

Assumptions (heuristics of ours, not of the RFC): the capture point sees a
segment when it is both sent and received; a conversation first seen mid-stream
starts with both endpoints ESTABLISHED; the endpoint a SYN goes to is taken as
LISTEN until it answers, and enters SYN-RECEIVED when it sends its SYN-ACK (a
RST instead means the port was closed: LISTEN -> CLOSED).

The state-diagram figure and the tests read this same table.
"""

from __future__ import annotations

from enum import StrEnum


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
    RECEIVE_ACK_OF_FIN = "receive ACK of FIN"
    SEND_FIN = "send FIN"
    RECEIVE_FIN = "receive FIN"
    SEND_RST = "send RST"
    RECEIVE_RST = "receive RST"


S = State
E = Event

# Resets end the connection from any synchronized or half-open state (RFC 9293 s3.10.7.4).
_RESET_CLOSES = {(state, event): S.CLOSED for state in S for event in (E.SEND_RST, E.RECEIVE_RST)}

TRANSITIONS: dict[tuple[State, Event], State] = {
    **_RESET_CLOSES,
    # Opening (RFC 9293 s3.5, Figure 6; simultaneous open, Figure 7).
    (S.CLOSED, E.SEND_SYN): S.SYN_SENT,
    (S.CLOSED, E.RECEIVE_SYN): S.CLOSED,  # a closed port: the answer is a RST (s3.10.7.1)
    # An observer cannot tell a listening endpoint from a closed port until it answers: the
    # SYN-ACK shows it was LISTENing (and is now SYN-RECEIVED), a RST that it was CLOSED.
    (S.LISTEN, E.RECEIVE_SYN): S.LISTEN,
    (S.LISTEN, E.SEND_SYN_ACK): S.SYN_RECEIVED,
    (S.LISTEN, E.SEND_SYN): S.SYN_SENT,
    (S.LISTEN, E.RECEIVE_RST): S.LISTEN,  # s3.10.7.2: a RST in LISTEN is ignored
    (S.SYN_SENT, E.SEND_SYN): S.SYN_SENT,  # retransmitted SYN
    (S.SYN_SENT, E.RECEIVE_SYN_ACK): S.ESTABLISHED,
    (S.SYN_SENT, E.RECEIVE_SYN): S.SYN_RECEIVED,  # simultaneous open
    (S.SYN_SENT, E.SEND_ACK): S.ESTABLISHED,  # the SYN-ACK was not captured
    (S.SYN_RECEIVED, E.RECEIVE_SYN): S.SYN_RECEIVED,  # retransmitted SYN
    (S.SYN_RECEIVED, E.SEND_SYN_ACK): S.SYN_RECEIVED,
    (S.SYN_RECEIVED, E.RECEIVE_SYN_ACK): S.ESTABLISHED,  # simultaneous open completes
    (S.SYN_RECEIVED, E.SEND_ACK): S.SYN_RECEIVED,
    (S.SYN_RECEIVED, E.RECEIVE_ACK): S.ESTABLISHED,
    (S.SYN_RECEIVED, E.SEND_FIN): S.FIN_WAIT_1,
    (S.SYN_RECEIVED, E.RECEIVE_FIN): S.CLOSE_WAIT,
    # Data transfer.
    (S.ESTABLISHED, E.SEND_ACK): S.ESTABLISHED,
    (S.ESTABLISHED, E.RECEIVE_ACK): S.ESTABLISHED,
    (S.ESTABLISHED, E.RECEIVE_SYN_ACK): S.ESTABLISHED,  # retransmitted SYN-ACK
    (S.ESTABLISHED, E.SEND_SYN_ACK): S.ESTABLISHED,  # our ACK of it was lost
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


def next_state(state: State, event: Event) -> State | None:
    """The state after ``event``, or None when the table has no such transition (an anomaly)."""
    return TRANSITIONS.get((state, event))
