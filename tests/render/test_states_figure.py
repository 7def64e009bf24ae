"""The state diagram is drawn from the analysis's own table."""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.patches import FancyArrowPatch

from visualizer.analysis.states import TRANSITIONS, Event, State
from visualizer.cli import main
from visualizer.render.states import POSITIONS, draw_state_diagram, drawn_transitions


def test_every_state_is_placed_and_every_transition_between_states_is_drawn() -> None:
    assert set(POSITIONS) == set(State)
    expected = {
        (state, following)
        for (state, event), following in TRANSITIONS.items()
        if following is not state and event not in (Event.SEND_RST, Event.RECEIVE_RST)
    }
    assert set(drawn_transitions()) == expected
    ax = draw_state_diagram()
    arrows = [patch for patch in ax.patches if isinstance(patch, FancyArrowPatch)]
    assert len(arrows) == len(expected)
    texts = {text.get_text() for text in ax.texts}
    assert {state.value for state in State} <= texts


def test_states_command(tmp_path: Path) -> None:
    target = tmp_path / "states.svg"
    assert main(["states", "-o", str(target)], stdout=io.StringIO(), stderr=io.StringIO()) == 0
    assert "ESTABLISHED" in target.read_text()


def test_the_observer_rules_beside_the_table_are_drawn_from_the_analysis_data() -> None:
    from visualizer.analysis.states import INITIAL_STATES, RECEIPT_RULES, RST_RULES

    ax = draw_state_diagram()
    drawn = " ".join(text.get_text().replace("\n   ", " ") for text in ax.texts)
    for first, states in INITIAL_STATES.items():
        assert f"first seen {first}: sender {states.sender}, receiver {states.receiver}" in drawn
    for confirms, refutes in RECEIPT_RULES.values():
        assert f"confirmed when {confirms}; revised when {refutes}" in drawn
    for verdict, rule in RST_RULES.items():
        assert f"{verdict}: {rule}" in drawn
