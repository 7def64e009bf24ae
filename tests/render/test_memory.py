"""Bounded work: size checks before the frames are read, memory that does not follow a stream's length."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from tests.packets import SYN, Conversation
from tests.render.synthetic import write_long_stream, write_pcap
from visualizer import pipeline
from visualizer.cli import main

ROOT = Path(__file__).parent.parent.parent

# VmHWM, not getrusage: Linux carries ru_maxrss over fork and exec, so a child of a large pytest
# process would report the parent's peak. VmHWM is the peak of this process's own memory map.
_PEAK_MEMORY = """
import re, sys
from pathlib import Path
from visualizer.cli import main
code = main(sys.argv[1:])
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
print(code, peak // 1024)
"""


def peak_megabytes(*argv: str) -> tuple[int, int]:
    """Run the command in a fresh interpreter: (exit code, peak resident memory in MB). The files
    drawn here are under 64 MB: analysed in one process (no workers to add up)."""
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_MEMORY, *argv], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    code, megabytes = done.stdout.split()[-2:]
    return int(code), int(megabytes)


@pytest.fixture(scope="module")
def long_stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200,012 frames of one TCP stream (24 MB): enough to see memory follow the stream (the frames
    of a stream once took about 1 KB each: some 300 MB here, 2.1 GB for 1.3M frames)."""
    path = tmp_path_factory.mktemp("long") / "long.pcap"
    write_long_stream(path, 100_000)
    return path


def test_the_time_sequence_graph_of_a_long_stream_takes_bounded_memory(long_stream: Path, tmp_path: Path) -> None:
    target = tmp_path / "tsg.png"
    code, megabytes = peak_megabytes(
        "draw", str(long_stream), "--stream", "0", "--time-sequence", "-q", "-o", str(target)
    )
    assert code == 0 and target.stat().st_size > 10_000
    assert megabytes < 150, f"{megabytes} MB"  # 75 MB to draw a 10-frame capture


def test_the_ladder_of_a_long_stream_takes_bounded_memory(long_stream: Path, tmp_path: Path) -> None:
    target = tmp_path / "ladder.svg"
    code, megabytes = peak_megabytes("draw", str(long_stream), "-q", "--rows-per-page", "1000", "-o", str(target))
    assert code == 0 and "× " in target.read_text()  # folded
    assert megabytes < 150, f"{megabytes} MB"  # 75 MB to draw a 10-frame capture


def many_conversations(path: Path, count: int) -> Path:
    frames = []
    for index in range(count):
        frames += Conversation(client_port=20000 + index).client_sends(index * 0.001, 100, 0, SYN).frames
    return write_pcap(path, frames)


def refuse_frame_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("a per-frame pass started")

    monkeypatch.setattr(pipeline, "select_streams", refuse)
    monkeypatch.setattr(pipeline, "iter_file_analysis", refuse)


def test_too_many_conversations_are_refused_before_any_frame_is_drawn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The conversation count comes from the report; the per-frame pass never starts."""
    capture = many_conversations(tmp_path / "many.pcap", 501)
    refuse_frame_passes(monkeypatch)
    err = io.StringIO()
    assert main(["draw", str(capture), "-o", str(tmp_path / "many.png")], stdout=io.StringIO(), stderr=err) == 2
    assert err.getvalue() == (
        f"sockstory: error: {capture} has 501 conversations: too many to draw (the overview shows at most 500); "
        "choose one with --stream N (see sockstory flows)\n"
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["many.pcap"]


def test_many_conversations_get_their_overview_only_without_a_frame_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More conversations than ladders are drawn for: the overview alone, from the report, and a note saying so."""
    capture = many_conversations(tmp_path / "many.pcap", 41)
    refuse_frame_passes(monkeypatch)
    err = io.StringIO()
    assert main(["draw", str(capture), "-q", "-o", str(tmp_path / "many.png")], stdout=io.StringIO(), stderr=err) == 0
    assert "41 conversations, more than 40: drew the overview only; draw one with --stream N" in err.getvalue()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["many.pcap", "many.png"]
