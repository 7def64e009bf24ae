"""The state diagram is drawn from the analysis's own table, and reads: arrows reach their boxes,
no text overlaps another text, a box or an arrow."""

from __future__ import annotations

import io
import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path as MatplotlibPath
from matplotlib.transforms import Bbox

from visualizer.analysis.states import PASSIVE_OPEN_TRANSITIONS, TRANSITIONS, State, one_segment_transitions
from visualizer.cli import main
from visualizer.render.states import POSITIONS, draw_state_diagram

TOLERANCE = 3.0
"""Pixels at 100 dpi (the "-|>" head's tip vertex sits half a mitred line width short of where its outline ends)."""


@pytest.fixture(scope="module")
def drawn() -> Iterator[Axes]:
    figure = Figure(dpi=100)
    FigureCanvasAgg(figure)
    ax = draw_state_diagram(figure=figure)
    figure.canvas.draw()
    yield ax
    plt.close("all")


def arrows(ax: Axes) -> dict[str, FancyArrowPatch]:
    found = [patch for patch in ax.patches if isinstance(patch, FancyArrowPatch) and "edge " in (patch.get_gid() or "")]
    assert len({patch.get_gid() for patch in found}) == len(found), "an edge drawn twice"
    return {patch.get_gid(): patch for patch in found}


def boxes(ax: Axes) -> dict[str, Bbox]:
    """Box gid -> its extent in pixels."""
    return {
        patch.get_gid(): patch.get_window_extent()
        for patch in ax.patches
        if isinstance(patch, FancyBboxPatch) and patch.get_gid()
    }


def pair(gid: str) -> tuple[State, State]:
    source, target = gid.split(" ", 1)[1].split(">")
    return State(source), State(target)


def test_every_move_of_the_table_is_one_arrow(drawn: Axes) -> None:
    assert set(POSITIONS) == set(State)
    expected = {(state, following) for (state, _), following in TRANSITIONS.items() if following is not state}
    expected |= {(state, following) for (state, _), following in PASSIVE_OPEN_TRANSITIONS.items()}
    expected |= set(one_segment_transitions())
    drawn_pairs = Counter((gid.split(" ")[0], pair(gid)) for gid in arrows(drawn))
    assert {moved for _, moved in drawn_pairs} == expected
    assert max(drawn_pairs.values()) == 1  # one arrow a pair in the diagram, one in the reset panel
    # The ones RFC 9293's Figure 5 has and the diagram once lacked.
    for moved in [
        (State.CLOSED, State.LISTEN),
        (State.TIME_WAIT, State.CLOSED),
        (State.FIN_WAIT_1, State.TIME_WAIT),
        (State.SYN_RECEIVED, State.LISTEN),
        (State.LISTEN, State.CLOSED),
    ]:
        assert ("edge", moved) in drawn_pairs, moved
    texts = {text.get_text() for text in drawn.texts}
    assert {state.value for state in State} <= texts
    assert "timeout 2 MSL" in texts and "passive OPEN" in texts


def distance_to_boundary(point: tuple[float, float], box: Bbox) -> float:
    x, y = point
    inside = box.x0 <= x <= box.x1 and box.y0 <= y <= box.y1
    if inside:
        return -min(x - box.x0, box.x1 - x, y - box.y0, box.y1 - y)
    dx = max(box.x0 - x, 0, x - box.x1)
    dy = max(box.y0 - y, 0, y - box.y1)
    return float((dx * dx + dy * dy) ** 0.5)


def vertices(ax: Axes, arrow: FancyArrowPatch) -> list[tuple[float, float]]:
    """The arrow's outline (line and head) in pixels."""
    path = arrow.get_path()
    assert path.codes is not None
    kept = [index for index, code in enumerate(path.codes) if code != MatplotlibPath.CLOSEPOLY]
    return [(float(x), float(y)) for x, y in ax.transData.transform(path.vertices[kept])]


def test_every_arrow_leaves_its_source_box_and_its_head_ends_on_its_target_box(drawn: Axes) -> None:
    extents = boxes(drawn)
    for gid, arrow in arrows(drawn).items():
        source, target = pair(gid)
        prefix = "reset " if gid.startswith("reset-edge") else "state "
        source_box = extents[prefix + source.value]
        candidates = [name for name in extents if name.split("#")[0] == prefix + target.value]
        points = vertices(drawn, arrow)
        target_box = min(
            (extents[name] for name in candidates), key=lambda box: min(distance_to_boundary(p, box) for p in points)
        )
        # The line starts on the source box's edge, and no point of the arrow is inside either box.
        assert abs(distance_to_boundary(points[0], source_box)) <= TOLERANCE, (gid, points[0], source_box)
        for point in points:
            assert distance_to_boundary(point, target_box) >= -TOLERANCE, (gid, point, target_box)
            assert distance_to_boundary(point, source_box) >= -TOLERANCE, (gid, point, source_box)
        # The head's tip touches the target box.
        assert min(distance_to_boundary(point, target_box) for point in points) <= TOLERANCE, gid


def test_no_text_overlaps_another_text_or_a_box_and_no_arrow_crosses_a_label(drawn: Axes) -> None:
    canvas = drawn.figure.canvas
    assert isinstance(canvas, FigureCanvasAgg)
    renderer = canvas.get_renderer()
    texts = [text for text in drawn.texts if text.get_text().strip()]
    extents = {id(text): text.get_window_extent(renderer) for text in texts}
    for first, second in itertools.combinations(texts, 2):
        assert not extents[id(first)].overlaps(extents[id(second)]), (first.get_text(), second.get_text())
    box_extents = boxes(drawn)
    for text in texts:
        gid = text.get_gid() or ""
        for name, box in box_extents.items():
            if gid == f"name {name}":
                assert box.contains(*extents[id(text)].get_points().mean(axis=0))
                continue
            assert not extents[id(text)].overlaps(box), (text.get_text(), name)
    labels = [text for text in texts if (text.get_gid() or "").startswith("label")]
    assert len(labels) > 20
    for arrow in arrows(drawn).values():
        points = vertices(drawn, arrow)
        for (ax, ay), (bx, by) in zip(points[:-1], points[1:], strict=False):
            steps = int(max(abs(bx - ax), abs(by - ay))) + 1
            for step in range(steps + 1):
                x, y = ax + (bx - ax) * step / steps, ay + (by - ay) * step / steps
                for label in labels:
                    extent = extents[id(label)]
                    assert not (extent.x0 < x < extent.x1 and extent.y0 < y < extent.y1), (
                        arrow.get_gid(),
                        label.get_text(),
                    )


def test_unseen_events_are_dashed(drawn: Axes) -> None:
    found = arrows(drawn)
    assert found["edge CLOSED>LISTEN"].get_linestyle() != "-"
    assert found["edge TIME-WAIT>CLOSED"].get_linestyle() != "-"
    assert found["edge FIN-WAIT-1>TIME-WAIT"].get_linestyle() == "-"


def test_states_command(tmp_path: Path) -> None:
    target = tmp_path / "states.svg"
    assert main(["states", "-o", str(target)], stdout=io.StringIO(), stderr=io.StringIO()) == 0
    assert "ESTABLISHED" in target.read_text()


def test_the_observer_rules_beside_the_table_are_drawn_from_the_analysis_data(drawn: Axes) -> None:
    from visualizer.analysis.states import INITIAL_STATES, RECEIPT_RULES, RST_RULES

    text = " ".join(text.get_text().replace("\n   ", " ") for text in drawn.texts)
    for first, states in INITIAL_STATES.items():
        assert f"first seen {first}: sender {states.sender}, receiver {states.receiver}" in text
    for confirms, refutes in RECEIPT_RULES.values():
        assert f"confirmed when {confirms}; revised when {refutes}" in text
    for verdict, rule in RST_RULES.items():
        assert f"{verdict}: {rule}" in text
