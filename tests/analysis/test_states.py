"""The RFC 9293 state table: every pair either moves or is an anomaly, and known paths end right."""

from __future__ import annotations

from visualizer.analysis.states import TRANSITIONS, Event, State, next_state


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


def test_data_after_close_is_an_anomaly() -> None:
    assert next_state(State.CLOSED, Event.SEND_ACK) is None
