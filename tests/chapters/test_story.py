"""Chapter 0, a socket's story: each call matched to its segments, both ends' kernel states against RFC 9293's,
both closes; on the committed recording, and on a run made now (root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from visualizer import chapters
from visualizer.chapters import story
from visualizer.chapters.story import ACTIVE_PATH, PASSIVE_PATH
from visualizer.model import FIN, SYN
from visualizer.scenarios.kernel import ANSWER, QUESTION

DATA = Path(__file__).parent.parent / "data"
RECORDED = DATA / "kernel" / "story.pcap"


@pytest.fixture(scope="module")
def recorded() -> chapters.Experiment:
    return chapters.load(RECORDED, "story")


def effect(effects: list[story.CallEffect], side: str, text: str) -> story.CallEffect:
    (found,) = [e for e in effects if e.side == side and e.call.text == text]
    return found


def check_the_story(experiment: chapters.Experiment) -> None:
    """What holds for every run of the scenario: each call's segments, the RFC's state paths, who closes first."""
    frames = {frame.record.number: frame.record for frame in experiment.frames}
    effects = story.calls_and_segments(experiment)
    question = effect(effects, "client", f"send({len(QUESTION)}) -> {len(QUESTION)}")
    answer = effect(effects, "client", f"recv(100) -> {len(ANSWER)}")
    (carried,) = question.frames
    assert frames[carried].payload == QUESTION and frames[carried].source_port != 8080
    (delivered,) = answer.frames
    assert frames[delivered].payload == ANSWER and frames[delivered].source_port == 8080
    assert effect(effects, "server", f"recv(100) -> {len(QUESTION)}").frames == (carried,)
    (syn,) = effect(effects, "client", "connect() -> -EINPROGRESS").frames
    assert frames[syn].tcp_flags & SYN and syn == 1
    closes = story.closes(experiment)
    assert [(close.side, close.first, close.last_state) for close in closes] == [
        ("client", True, "TIME-WAIT"),
        ("server", False, "CLOSED"),
    ]
    client, server = closes
    assert frames[client.fin].tcp_flags & FIN and frames[client.fin].source_port != 8080
    assert frames[server.fin].tcp_flags & FIN and frames[server.fin].source_port == 8080
    assert client.fin < client.acked_by and frames[client.acked_by].source_port == 8080
    end_of_stream = effect(effects, "server", "recv(65536) -> 0")
    assert end_of_stream.frames == (client.fin,)  # recv() returned 0 for the client's FIN
    paths = story.state_paths(experiment)
    assert [(path.side, path.kernel) for path in paths] == [("client", ACTIVE_PATH), ("server", PASSIVE_PATH)]
    assert all(path.equals_rfc and path.every_step_in_the_table for path in paths)


def test_the_recorded_story_is_told_call_by_call(recorded: chapters.Experiment) -> None:
    check_the_story(recorded)
    effects = story.calls_and_segments(recorded)
    assert [(e.side, e.call.text, e.frames) for e in effects] == [
        ("client", "connect() -> -EINPROGRESS", (1,)),
        ("client", "send(12) -> 12", (4,)),
        ("server", "accept() -> 11", (3,)),
        ("server", "recv(100) -> 12", (4,)),
        ("server", "send(27) -> 27", (6,)),
        ("client", "recv(100) -> 27", (6,)),
        ("client", "close() -> 0", (8,)),
        ("server", "recv(65536) -> 0", (8,)),
        ("server", "close() -> 0", (9,)),
    ]
    assert effect(effects, "client", "send(12) -> 12").what == "12 bytes (seq 1-12)"


def test_each_kernel_step_is_named_by_rfc_9293_figure_5(recorded: chapters.Experiment) -> None:
    client, server = story.state_paths(recorded)
    assert [step.arrow for step in client.steps] == [
        "active OPEN / snd SYN",
        "rcv SYN,ACK / snd ACK",
        "CLOSE / snd FIN",
        "rcv ACK of FIN",
        "rcv FIN / snd ACK",
    ]
    # the FIN+ACK of frame 9 takes the kernel through FIN-WAIT-2 within the frame: said, and tied to it
    passing = client.steps[3]
    assert (passing.new, passing.frame) == ("FIN-WAIT-2", 9) and "within #9" in passing.note
    assert [step.frame for step in server.steps] == [3, 3, 8, 8, 10]


def test_a_path_off_the_rfc_is_told_apart() -> None:
    assert story.in_table("FIN-WAIT-1", "CLOSING") and not story.in_table("CLOSED", "ESTABLISHED")
    odd = story.StatePath("client", "a", ("CLOSED", "SYN-SENT", "CLOSED"), (), ACTIVE_PATH)
    assert not odd.equals_rfc


def test_without_a_kernel_recording_there_are_no_calls_to_match() -> None:
    experiment = chapters.load(DATA / "scenarios" / "captures" / "story.pcap")
    assert story.calls_and_segments(experiment) == [] and story.state_paths(experiment) == []
    assert story.closes(experiment) == []


@pytest.mark.root
def test_a_run_made_now_tells_the_same_story(tmp_path: Path) -> None:
    experiment = chapters.run("story", tmp_path)
    assert experiment.kernel is not None and experiment.kernel.lost_events == 0
    check_the_story(experiment)
