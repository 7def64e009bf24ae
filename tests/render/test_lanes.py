"""The programs' lanes of a ladder: socket calls as rows, their words, bars and links (artists)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import matplotlib.colors
import matplotlib.pyplot as plt
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from tests.kernel_checks import check_story_ladder
from tests.render.images import svg_titles
from tests.render.test_ladder import arrow_of, ends, overlapping, text_boxes
from tests.render.test_layout import check_accounting
from visualizer.analysis.kernel import KernelStory, SocketCall
from visualizer.pipeline import analyse_file, kernel_story, select_streams
from visualizer.render.export import save_ladder
from visualizer.render.ladder import (
    FOLD_BOTTOM,
    FOLD_TOP,
    LEFT_LIFELINE,
    PHASE_COLOURS,
    RIGHT_LIFELINE,
    SLANT,
    draw_ladder,
)
from visualizer.render.lanes import CALL_MIDDLE
from visualizer.render.layout import Arrow, Call, Fold, LadderLayout, Mark, _quote, build_ladder
from visualizer.render.text import to_ascii, to_mermaid

KERNEL = Path(__file__).parent.parent / "data" / "kernel"


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def recorded(name: str, stream: int = 0, *, fold: bool = True) -> tuple[LadderLayout, KernelStory]:
    path = KERNEL / f"{name}.pcap"
    report, frames = select_streams(path, "tcp", {stream})
    story = kernel_story(path, frames)
    assert story is not None
    return build_ladder(frames, origin_ns=report.first_time_ns, kernel=story, fold=fold), story


def drawn(layout: LadderLayout) -> Axes:
    figure = Figure()
    return draw_ladder(layout, figure=figure)


def expected_calls(story: KernelStory, stream: int = 0) -> dict[str, list[SocketCall]]:
    """Each endpoint's calls a lane shows: its own, and its listener's up to its own last call."""
    calls = {}
    for endpoint in story.of_stream(stream):
        last = max((call.time_ns for call in endpoint.calls), default=None)
        listener = [call for call in endpoint.listener_calls if last is None or call.time_ns <= last]
        if endpoint.calls or listener:
            calls[endpoint.name] = sorted(endpoint.calls + listener, key=lambda call: call.time_ns)
    return calls


def lifeline_of(layout: LadderLayout, ax: Axes, endpoint: str) -> float:
    (index,) = [index for index, participant in enumerate(layout.participants) if participant.endpoint == endpoint]
    arrow = next(row for row in layout.rows if isinstance(row, Arrow) and index in (row.source, row.target))
    (start, _), (end, _) = ends(arrow_of(ax, arrow.frame))
    return start if arrow.source == index else end


def test_each_call_is_written_once_on_its_programs_side_of_its_lifeline() -> None:
    layout, story = recorded("story")
    ax = drawn(layout)
    texts = [text for text in ax.texts if (text.get_gid() or "").startswith("call-")]
    calls = expected_calls(story)
    assert sum(map(len, calls.values())) == len(texts) == 13  # the listener's close comes after
    for endpoint, own in calls.items():
        x = lifeline_of(layout, ax, endpoint)
        side = -1 if endpoint.endswith(":38246") else 1  # the client's lane left of its lifeline
        for call in own:
            words = [text for text in texts if text.get_text().split("\n")[0] == call.text]
            on_its_side = [text for text in words if (text.get_position()[0] - x) * side > 0]
            assert len(on_its_side) == sum(other.text == call.text for other in own), (endpoint, call.text)
    (question,) = [text for text in texts if text.get_text().startswith("send(12)")]
    assert question.get_text() == 'send(12) -> 12\n"tic tac toe?"'  # the bytes of frame 4, quoted


def test_the_recorded_storys_ladder_passes_the_live_runs_check() -> None:
    report = analyse_file(KERNEL / "story.pcap", keep_frames=True)
    story = kernel_story(KERNEL / "story.pcap", report.frame_analyses)
    assert story is not None
    check_story_ladder(report, story)


def test_each_send_and_recv_is_linked_to_the_arrows_of_its_bytes() -> None:
    layout, story = recorded("story")
    ax = drawn(layout)
    links = {line.get_gid(): line for line in ax.lines if (line.get_gid() or "").startswith("call-link-")}
    rows = {index: row for index, row in enumerate(layout.rows) if isinstance(row, Call)}
    pairs = [(index, frame, row.call) for index, row in rows.items() for frame in row.frames]
    assert {(call.call, frame) for own in expected_calls(story).values() for call in own for frame in call.frames} == {
        ("send", 4),
        ("recv", 4),
        ("send", 6),
        ("recv", 6),
        ("recv", 8),  # the server's recv() -> 0 read the client's FIN
    }
    assert sorted(links) == sorted(f"call-link-{index}-{frame}" for index, frame, _ in pairs)
    for index, frame, call in pairs:
        start, tip = ends(arrow_of(ax, frame))
        x, y = links[f"call-link-{index}-{frame}"].get_data()
        # A send's link ends where the arrow leaves its sender; a recv's where it reaches its receiver.
        assert (x[-1], y[-1]) == pytest.approx(start if call == "send" else tip), (call, frame)


def test_a_call_that_spans_other_rows_is_a_bar_from_its_entry_to_its_return() -> None:
    layout, _ = recorded("story")
    ax = drawn(layout)
    bars = {patch.get_gid(): patch for patch in ax.patches if isinstance(patch, Rectangle) and patch.get_gid()}
    dots = {line.get_gid() for line in ax.lines if (line.get_gid() or "").startswith("call-bar-")}
    positions = {row.frame: index for index, row in enumerate(layout.rows) if isinstance(row, Arrow)}
    (accept,) = [index for index, row in enumerate(layout.rows) if isinstance(row, Call) and row.call == "accept"]
    bar = bars[f"call-bar-{accept}"]
    top, bottom = bar.get_y(), bar.get_y() + bar.get_height()
    # accept() entered before frame 4 left and returned after frame 5: the bar spans both arrows.
    assert top < positions[4] and bottom > positions[5] + SLANT
    assert bottom == pytest.approx(accept + CALL_MIDDLE)  # it ends at its words: where it returned
    (socket,) = [
        index for index, row in enumerate(layout.rows) if isinstance(row, Call) and row.text == "socket() -> 9"
    ]
    assert f"call-bar-{socket}" in dots and f"call-bar-{socket}" not in bars  # nothing happened meanwhile


def test_no_text_overlaps_another_with_the_lanes() -> None:
    for name in ("story", "loss", "zero-window", "craft-bad-checksum"):
        ax = drawn(recorded(name)[0])
        assert overlapping(text_boxes(ax)) == [], name


@pytest.mark.parametrize("name", ["story", "loss", "zero-window", "craft-bad-checksum"])
def test_every_call_is_a_row_or_folded_once_and_every_frame_too(name: str) -> None:
    layout, story = recorded(name)
    check_accounting(layout)
    expected = sum(map(len, expected_calls(story).values()))
    rows = [row for row in layout.rows if isinstance(row, Call)]
    folded = [folded for row in layout.rows if isinstance(row, Fold) for folded in row.calls]
    assert sum(row.count for row in rows) + sum(folded.count for folded in folded) == layout.calls == expected
    unfolded, _ = recorded(name, fold=False)
    assert [row.count for row in unfolded.rows if isinstance(row, Call)] == [1] * expected
    assert not any(row.calls for row in unfolded.rows if isinstance(row, Fold))


def test_routine_calls_fold_with_their_frames_and_are_counted_beside_the_fold() -> None:
    layout, story = recorded("zero-window")
    server = next(endpoint for endpoint in story.of_stream(0) if endpoint.port == 8088)
    assert sum(call.call == "recv" for call in server.calls) == 32
    rows = [row for row in layout.rows if isinstance(row, Call) and row.call == "recv"]
    assert len(rows) < 6  # the reads of the drained queue went by with the frames they freed
    ax = drawn(layout)
    folds = [(index, row) for index, row in enumerate(layout.rows) if isinstance(row, Fold) and row.calls]
    assert {layout.participants[folded.participant].role for _, fold in folds for folded in fold.calls} == {
        "client",
        "server",
    }
    texts = [text for text in ax.texts if text.get_gid() is None]
    for index, fold in folds:
        for folded in fold.calls:
            participant = layout.participants[folded.participant]
            x = lifeline_of(layout, ax, participant.endpoint)
            (words,) = [text for text in texts if text.get_text() == folded.text]
            # beside the fold (its y), on its program's lane (the server's right of its lifeline)
            assert (words.get_position()[0] - x) * (1 if participant.role == "server" else -1) > 0
            assert words.get_position()[1] == pytest.approx(index + (FOLD_TOP + FOLD_BOTTOM) / 2)
            assert folded.text.endswith(("KB", "bytes"))
    assert any(folded.text.startswith("19 recv() calls") for _, fold in folds for folded in fold.calls)


def test_small_writes_one_after_another_are_one_row_linked_to_the_segment_that_carried_them() -> None:
    layout, story = recorded("nagle")  # stream 0: Nagle's algorithm holds small writes back
    sends = [(index, row) for index, row in enumerate(layout.rows) if isinstance(row, Call) and row.call == "send"]
    assert [(row.text, row.count) for _, row in sends] == [
        ("send(10) -> 10", 1),
        ("19 × send(10) -> 10", 19),
        ("9 × send(10) -> 10", 9),
    ]
    index, last = sends[-1]
    assert last.frames == (9,) and last.result == 90  # nine writes, one segment (with the FIN)
    ax = drawn(layout)
    links = [line for line in ax.lines if (line.get_gid() or "").startswith(f"call-link-{index}-")]
    (link,) = links
    x, y = link.get_data()
    assert (x[-1], y[-1]) == pytest.approx(ends(arrow_of(ax, 9))[0])
    (words,) = [text for text in ax.texts if text.get_gid() == f"call-{index}"]
    assert words.get_text() == '9 × send(10) -> 10\n"000000021\\n…"'  # the first write's bytes, and more
    client = next(endpoint for endpoint in story.of_stream(0) if endpoint.port != 8091)
    unfolded, _ = recorded("nagle", fold=False)
    rows = [row for row in unfolded.rows if isinstance(row, Call) and row.call == "send"]
    assert len(rows) == sum(call.call == "send" for call in client.calls) == 30  # one went by in a fold


def test_a_listening_sockets_close_says_whose_it_is_and_only_within_the_connections_calls() -> None:
    texts = {
        stream: [row.text for row in recorded("web", stream)[0].rows if isinstance(row, Call)] for stream in range(12)
    }
    # The server closes its listener once, after accepting its last connection (stream 11): only that
    # connection's calls outlast it (a RST ends it); on the other lanes it would come long after.
    assert [stream for stream, words in texts.items() if "close() -> 0 (listening socket)" in words] == [11]
    assert texts[11][-2:] == ["recv(65536) -> -ECONNRESET", "close() -> 0"]
    listeners = [
        stream for stream, words in texts.items() if words[:3] == ["socket() -> 9", "bind() -> 0", "listen() -> 0"]
    ]
    assert listeners == [stream for stream in range(12) if stream != 10]  # stream 10 was refused: no listener
    assert texts[10] == ["socket() -> 11", "connect() -> -EINPROGRESS", "close() -> 0"]


def test_a_calls_row_is_shaded_with_the_frames_it_is_tied_to() -> None:
    layout, _ = recorded("story")
    ax = drawn(layout)

    def shading(text: str) -> str:
        """The phase shading behind a call's words (the first call with these words, in row order)."""
        words = next(
            words for words in ax.texts if (words.get_gid() or "").startswith("call-") and words.get_text() == text
        )
        y = words.get_position()[1]
        phases = [
            phase
            for phase, colour in PHASE_COLOURS.items()
            for patch in ax.patches
            if isinstance(patch, Rectangle)
            and matplotlib.colors.same_color(patch.get_facecolor(), colour)
            and patch.get_y() <= y <= patch.get_y() + patch.get_height()
        ]
        return phases[0] if phases else "none"

    assert shading("listen() -> 0") == "none"  # before any frame
    assert shading("connect() -> -EINPROGRESS") == "handshake"  # its SYN follows
    assert shading('send(12) -> 12\n"tic tac toe?"') == "data"
    assert shading("recv(100) -> 27") == "data"  # woken by the answer, before the FIN
    assert shading("close() -> 0") == "teardown"  # the client's: its FIN follows


def test_the_calls_stand_between_the_frames_in_time_order() -> None:
    layout, _ = recorded("story")
    sequence = [
        row.text if isinstance(row, Call) else f"#{row.frame}"
        for row in layout.rows
        if isinstance(row, (Call, Arrow, Mark))
    ]
    assert sequence[sequence.index("connect() -> -EINPROGRESS") + 1] == "#1"  # the SYN follows connect()
    assert sequence.index("send(12) -> 12") + 1 == sequence.index("#4")
    assert sequence.index("#6") < sequence.index("recv(100) -> 27")  # a recv stands where it returned
    assert sequence.index("close() -> 0") + 1 == sequence.index("#8")  # the client's close, then its FIN


def test_a_ladder_without_the_kernels_side_is_drawn_as_before() -> None:
    path = KERNEL / "story.pcap"
    report, frames = select_streams(path, "tcp", {0})
    layout = build_ladder(frames, origin_ns=report.first_time_ns)
    assert layout.lanes == () and layout.calls == 0
    assert not any(isinstance(row, Call) for row in layout.rows)
    ax = drawn(layout)
    assert [gid for gid in (artist.get_gid() or "" for artist in [*ax.texts, *ax.lines]) if "call" in gid] == []
    (start, _), (end, _) = ends(arrow_of(ax, 1))
    assert (start, end) == (LEFT_LIFELINE, RIGHT_LIFELINE)
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert not any("call" in text or "recv" in text for text in legend)
    with_calls = drawn(recorded("story")[0])
    legend = [text.get_text() for text in with_calls.get_legend().get_texts()]
    assert any("socket call" in text for text in legend) and any("recv that read them" in text for text in legend)


def test_text_ladders_say_the_calls_too() -> None:
    layout, _ = recorded("story")
    lines = to_ascii(layout).splitlines()
    at = next(number for number, line in enumerate(lines) if line.startswith("#4 "))
    assert lines[at - 1].endswith('client program: send(12) -> 12 "tic tac toe?"')
    assert lines[at - 1].split("|")[0].strip() == ""  # no frame number, no time: a call's row
    mermaid = to_mermaid(layout)
    assert "Note left of P0: connect() -#gt; -EINPROGRESS" in mermaid
    assert "Note right of P1: accept() -#gt; 11" in mermaid


def test_a_calls_words_say_its_frames_on_hover_in_svg(tmp_path: Path) -> None:
    layout, _ = recorded("story")
    (written,) = save_ladder(layout, tmp_path / "story.svg", file_format="svg")
    titles = svg_titles(written.read_text())
    assert 'send(12) -> 12 "tic tac toe?" (its bytes went in #4)' in titles
    assert "recv(100) -> 27 (its bytes came in #6)" in titles


def test_a_send_quotes_its_own_bytes_only() -> None:
    assert _quote(b"000000001\n000000002\n", 10) == '"000000001\\n"'
    assert _quote(b"X wins, always. Play again?", 27) == '"X wins, always. …"'
    assert _quote(b"\x00\x01binary", 8) == ""
    assert _quote(b"tic", 12) == '"tic…"'  # its first frame carried 3 of its 12 bytes
