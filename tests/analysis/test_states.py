"""The RFC 9293 state table: every pair either moves or is an anomaly, and known paths end right."""

from __future__ import annotations

from visualizer.analysis.states import (
    PASSIVE_OPEN_TRANSITIONS,
    TRANSITIONS,
    UNSEEN_EVENTS,
    ConnectionStates,
    Event,
    State,
    next_state,
    one_segment_transitions,
)


def run(state: State, *events: Event) -> State:
    for event in events:
        following = next_state(state, event)
        assert following is not None, f"{state} has no transition for {event}"
        state = following
    return state


def test_every_transition_leads_to_a_state_rfc_9293_reaches_from_there() -> None:
    # The table may keep a state (a segment that changes nothing) or move along an edge of RFC 9293's
    # Figure 5 (with simultaneous open and close, and the RST rules): nothing else.
    rfc_edges = {
        (State.CLOSED, State.LISTEN),  # passive OPEN
        (State.LISTEN, State.CLOSED),  # CLOSE
        (State.SYN_SENT, State.CLOSED),  # CLOSE
        (State.TIME_WAIT, State.CLOSED),  # timeout 2 MSL
        (State.CLOSED, State.SYN_SENT),
        (State.LISTEN, State.SYN_RECEIVED),
        (State.LISTEN, State.SYN_SENT),
        (State.SYN_SENT, State.SYN_RECEIVED),
        (State.SYN_SENT, State.ESTABLISHED),
        (State.SYN_RECEIVED, State.ESTABLISHED),
        (State.SYN_RECEIVED, State.FIN_WAIT_1),
        (State.SYN_RECEIVED, State.CLOSE_WAIT),
        (State.ESTABLISHED, State.FIN_WAIT_1),
        (State.ESTABLISHED, State.CLOSE_WAIT),
        (State.FIN_WAIT_1, State.FIN_WAIT_2),
        (State.FIN_WAIT_1, State.CLOSING),
        (State.FIN_WAIT_2, State.TIME_WAIT),
        (State.CLOSE_WAIT, State.LAST_ACK),
        (State.CLOSING, State.TIME_WAIT),
        (State.LAST_ACK, State.CLOSED),
    }
    for (state, event), following in TRANSITIONS.items():
        if following is state:
            continue
        if event in (Event.SEND_RST, Event.RECEIVE_RST):
            assert following is State.CLOSED, (state, event)
        else:
            assert (state, following) in rfc_edges, (state, event, following)
    # And every edge of the figure is taken by some event.
    assert {(state, following) for (state, _), following in TRANSITIONS.items() if following is not state} >= (
        rfc_edges
    )


def test_active_open_and_active_close() -> None:
    client = run(State.CLOSED, Event.SEND_SYN, Event.RECEIVE_SYN_ACK, Event.SEND_ACK)
    assert client is State.ESTABLISHED
    assert run(client, Event.SEND_FIN, Event.RECEIVE_ACK_OF_FIN, Event.RECEIVE_FIN) is State.TIME_WAIT


def test_passive_open_and_passive_close() -> None:
    server = run(State.LISTEN, Event.RECEIVE_SYN, Event.SEND_SYN_ACK, Event.RECEIVE_ACK_OF_SYN)
    assert server is State.ESTABLISHED
    assert run(server, Event.RECEIVE_FIN, Event.SEND_ACK, Event.SEND_FIN, Event.RECEIVE_ACK_OF_FIN) is State.CLOSED


def test_simultaneous_close_goes_through_closing() -> None:
    assert run(State.ESTABLISHED, Event.SEND_FIN, Event.RECEIVE_FIN) is State.CLOSING
    assert run(State.CLOSING, Event.RECEIVE_ACK_OF_FIN) is State.TIME_WAIT


def test_simultaneous_open() -> None:
    assert run(State.CLOSED, Event.SEND_SYN, Event.RECEIVE_SYN, Event.SEND_SYN_ACK, Event.RECEIVE_SYN_ACK) is (
        State.ESTABLISHED
    )


def test_refused_connection_leaves_the_answering_endpoint_closed() -> None:
    assert run(State.LISTEN, Event.RECEIVE_SYN, Event.SEND_RST) is State.CLOSED


def test_a_reset_closes_every_state_but_listen() -> None:
    for state in State:
        expected = State.LISTEN if state is State.LISTEN else State.CLOSED
        assert next_state(state, Event.RECEIVE_RST) is expected
        assert next_state(state, Event.SEND_RST) is expected
    # RFC 9293 Figure 5 note 1: but SYN-RECEIVED reached from LISTEN returns to LISTEN.
    assert next_state(State.SYN_RECEIVED, Event.RECEIVE_RST, passive=True) is State.LISTEN
    assert next_state(State.SYN_RECEIVED, Event.SEND_RST, passive=True) is State.CLOSED
    assert PASSIVE_OPEN_TRANSITIONS == {(State.SYN_RECEIVED, Event.RECEIVE_RST): State.LISTEN}


def test_the_table_holds_the_calls_and_the_timer_of_figure_5() -> None:
    assert next_state(State.CLOSED, Event.PASSIVE_OPEN) is State.LISTEN
    assert next_state(State.LISTEN, Event.CLOSE) is State.CLOSED
    assert next_state(State.SYN_SENT, Event.CLOSE) is State.CLOSED
    assert next_state(State.TIME_WAIT, Event.TIMEOUT_2MSL) is State.CLOSED
    assert {event for (_, event) in TRANSITIONS} >= UNSEEN_EVENTS


def test_a_listener_drops_what_is_not_a_syn() -> None:
    for event in (Event.RECEIVE_ACK, Event.RECEIVE_SYN_ACK, Event.RECEIVE_FIN, Event.RECEIVE_RST):
        assert next_state(State.LISTEN, event) is State.LISTEN


SYN, FIN, RST, ACK = 0x02, 0x01, 0x04, 0x10


def drive(*segments: tuple[int, int, int, int, int]) -> list[list[object]]:
    """(sender, flags, seq, ack, end) in relative numbers -> the states after each frame, as finally inferred."""
    findings: list[tuple[str, int]] = []
    states = ConnectionStates(
        segments[0][1],
        1,
        (("client", 1), ("server", 2)),
        lambda kind, frame, reason, refers: findings.append((kind, frame)),
    )
    marks = [
        states.segment(
            sender,
            number,
            flags,
            seq,
            ack,
            end,
            0,
            receiver_acked=None,
            receiver_window=65535,
            sender_sent_end=None,
        )
        for number, (sender, flags, seq, ack, end) in enumerate(segments, start=1)
    ]
    states.close()
    assert not [kind for kind, _ in findings if kind == "state_anomaly"], findings
    return marks


def test_a_rst_returns_syn_received_to_listen_after_a_passive_open_only() -> None:
    # Client SYN, server SYN-ACK, client RST: the server came from LISTEN and goes back to it.
    marks = drive((0, SYN, 0, 0, 1), (1, SYN | ACK, 0, 1, 1), (0, RST, 1, 0, 1))
    assert [mark[1:] for mark in marks] == [
        [State.SYN_SENT, State.SYN_RECEIVED],
        [State.SYN_RECEIVED, State.ESTABLISHED],
        [State.CLOSED, State.LISTEN],
    ]
    # Simultaneous open: the second endpoint sent its own SYN first (SYN-SENT -> SYN-RECEIVED): a RST closes it.
    marks = drive((0, SYN, 0, 0, 1), (1, SYN, 0, 0, 1), (1, SYN | ACK, 0, 1, 1), (0, RST, 1, 0, 1))
    assert marks[2][1] is State.SYN_RECEIVED
    assert marks[-1][2] is State.CLOSED


def test_one_segment_with_fin_and_the_ack_of_our_fin_takes_fin_wait_1_to_time_wait() -> None:
    assert one_segment_transitions() == {
        (State.FIN_WAIT_1, State.TIME_WAIT): (Event.RECEIVE_ACK_OF_FIN, Event.RECEIVE_FIN)
    }
    marks = drive(
        (0, SYN, 0, 0, 1),
        (1, SYN | ACK, 0, 1, 1),
        (0, ACK, 1, 1, 1),
        (0, FIN | ACK, 1, 1, 2),
        (1, FIN | ACK, 1, 2, 2),  # the server's FIN acknowledges the client's
        (0, ACK, 2, 2, 2),
    )
    assert marks[3][1] is State.FIN_WAIT_1
    assert marks[4][1:] == [State.LAST_ACK, State.TIME_WAIT]


def test_data_after_close_is_an_anomaly() -> None:
    assert next_state(State.CLOSED, Event.SEND_ACK) is None


def test_an_undecided_history_is_settled_as_it_stands_beyond_its_bound() -> None:
    """A SYN sent again and again to a peer that never answers keeps the peer's LISTEN tentative:
    its history must not grow with every copy (MAXIMUM_HISTORY bounds it)."""
    from visualizer.analysis.states import MAXIMUM_HISTORY

    states = ConnectionStates(SYN, 1, (("client", 1), ("server", 2)), lambda *finding: None)
    for number in range(1, MAXIMUM_HISTORY + 500):
        states.segment(0, number, SYN, 0, 0, 1, 0, None, None, None)
    assert all(len(endpoint.entries) <= MAXIMUM_HISTORY for endpoint in states.endpoints)
