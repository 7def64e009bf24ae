"""bench/gallery.py: one command draws every figure into a folder whose index captions each image it wrote."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.packets import ACK, FIN, SYN, Conversation
from tests.render.images import png_size
from tests.render.synthetic import write_pcap
from visualizer.cli import main

ROOT = Path(__file__).parent.parent
SCENARIOS = ROOT / "tests" / "data" / "scenarios" / "captures"
IMAGE = re.compile(r"^!\[([^\]]+)\]\(([^)]+)\)$", re.MULTILINE)


def gallery(out: Path, *captures: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(ROOT / "bench" / "gallery.py"), "-o", str(out), "--jobs", "1", *map(str, captures)]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_the_index_captions_every_image_written_and_each_is_a_figure(tmp_path: Path) -> None:
    out = tmp_path / "gallery"
    run = gallery(out, SCENARIOS / "story.pcap", SCENARIOS / "udp-closed-port.pcap")
    assert run.returncode == 0, run.stderr
    index = (out / "index.md").read_text()
    listed = [name for _, name in IMAGE.findall(index)]
    assert sorted(listed) == sorted(path.name for path in out.glob("*.png"))
    assert len(listed) == len(set(listed))
    assert f"gallery: {len(listed)} images" in run.stdout
    for name in listed:
        data = (out / name).read_bytes()
        width, height = png_size(data)
        assert 300 <= width <= 4000 and 200 <= height <= 6000, (name, width, height)
        assert len(data) > 10_000, name  # drawn, not an empty canvas
    captions = dict((name, alt) for alt, name in IMAGE.findall(index))
    # a TCP capture gets its ladder and its time-sequence graph, a UDP one its ladder alone
    assert captions["scenarios-story.png"] == "story.pcap: ladder"
    assert captions["scenarios-story-time-sequence.png"] == "story.pcap: time-sequence graph of TCP stream 0"
    assert captions["scenarios-udp-closed-port.png"] == "udp-closed-port.pcap: ladder"
    assert not any(name.startswith("scenarios-udp-closed-port-time") for name in listed)
    assert captions["anatomy-story-1.png"] == "story.pcap, frame 1: anatomy"
    assert captions["tcp-states.png"] == "TCP state diagram: state diagram"
    # each figure says how to draw it again
    assert "`sockstory draw tests/data/scenarios/captures/story.pcap -o scenarios-story.png`" in index
    assert "`sockstory states -o tcp-states.png`" in index


def test_a_figure_that_cannot_be_drawn_is_listed_with_its_error_and_the_rest_is_drawn(tmp_path: Path) -> None:
    out = tmp_path / "gallery"
    broken = tmp_path / "broken.pcap"
    broken.write_bytes(b"not a capture at all, just text")
    run = gallery(out, broken, SCENARIOS / "refused.pcap")
    assert run.returncode == 1
    index = (out / "index.md").read_text()
    assert f"*not drawn: {broken}: not a pcap or pcapng file" in index
    assert "broken.pcap" in run.stderr and "Traceback" not in run.stderr
    assert {"scenarios-refused.png", "tcp-states.png"} <= {name for _, name in IMAGE.findall(index)}
    # a stream without data has no time-sequence graph: said, not a failure
    assert "*not drawn: stream 0 of refused.pcap carries no data" in index


def test_a_capture_the_default_ladder_refuses_is_drawn_by_its_busiest_conversation(tmp_path: Path) -> None:
    """Twelve conversations: the index says whether draw refused the default, exactly when it does."""
    frames = []
    for number in range(12):
        talk = Conversation(client_port=40000 + number)
        start = number * 0.01
        talk.client_sends(start, 0, 0, SYN).server_sends(start + 0.001, 0, 1, SYN | ACK)
        talk.client_sends(start + 0.002, 1, 1, ACK, b"x" * (number + 1))
        talk.client_sends(start + 0.003, 2 + number, 1, FIN | ACK).server_sends(start + 0.004, 1, 3 + number, FIN | ACK)
        frames += talk.frames
    capture = write_pcap(tmp_path / "twelve.pcap", sorted(frames))
    refused = main(["draw", str(capture), "-o", str(tmp_path / "plain.png")]) == 2
    out = tmp_path / "gallery"
    run = gallery(out, capture)
    assert run.returncode == 0, run.stderr
    index = (out / "index.md").read_text()
    ladders = [(alt, name) for alt, name in IMAGE.findall(index) if alt.startswith("twelve.pcap: ladder")]
    assert ladders and all((out / name).stat().st_size > 10_000 for _, name in ladders)
    assert ("the default was refused: " in index) == refused
    if refused:  # the busiest conversation instead: the last one, with the most bytes and frames
        assert ladders == [("twelve.pcap: ladder of TCP stream 11", "twelve.png")]
        assert "`sockstory draw " in index and "-o twelve.png --stream 11 --protocol tcp`" in index


def test_each_image_of_a_several_conversation_draw_is_captioned_by_what_it_is() -> None:
    sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))
    try:
        from gallery import _part  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    images = ["web.png", "web-tcp-0.png", "web-udp-1.png", "web-other.png", "web-tcp-3-2.png"]
    assert [_part(images, image) for image in images] == [
        "overview of the conversations",
        "TCP stream 0",
        "UDP stream 1",
        "frames of no conversation",
        "TCP stream 3, page 2",
    ]
    assert [_part(["z-1.png", "z-2.png"], image) for image in ("z-1.png", "z-2.png")] == ["page 1", "page 2"]
    assert _part(["one.png"], "one.png") == ""
