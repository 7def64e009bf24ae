"""The RFC 9293 state table: every pair either moves or is an anomaly, and known paths end right."""

from __future__ import annotations

import itertools

from visualizer.analysis.states import TRANSITIONS, Event, State, next_state


def run(state: State, *events: Event) -> State:
    for event in events:
        following = next_state(state, event)
        assert following is not None, f"{state} has no transition for {event}"
        state = following
    return state


def test_every_state_event_pair_either_transitions_to_a_state_or_is_an_anomaly() -> None:
    anomalies = 0
    for state, event in itertools.product(State, Event):
        following = next_state(state, event)
        if following is None:
            anomalies += 1
        else:
            assert isinstance(following, State)
    assert anomalies == len(State) * len(Event) - len(TRANSITIONS)
    assert all(key[0] in State and key[1] in Event for key in TRANSITIONS)


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
