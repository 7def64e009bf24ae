"""sockstory record (root): any command in a private namespace, its packets and its kernel events."""

from __future__ import annotations

import io
import itertools
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.scenarios.test_scenarios import host_state
from visualizer.cli import main
from visualizer.pipeline import analyse_file, kernel_story
from visualizer.sources.kernel import load_sidecar

EXAMPLE = "python3 -m http.server 8000 & sleep 1; curl -s localhost:8000 >/dev/null; kill %1"


def leftovers(pattern: str) -> str:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.strip()


@pytest.mark.root
def test_record_runs_a_server_and_a_client_and_tells_both_sides(tmp_path: Path) -> None:
    before = host_state()
    result = subprocess.run(
        [sys.executable, "-m", "visualizer", "record", "-o", str(tmp_path), "--draw", "--", "sh", "-c", EXAMPLE],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert host_state() == before
    assert leftovers("http.server 8000") == ""
    assert sorted(path.name for path in tmp_path.iterdir()) == ["record.kernel.jsonl", "record.pcap", "record.png"]
    report = analyse_file(tmp_path / "record.pcap", keep_frames=True)
    story = kernel_story(tmp_path / "record.pcap", report.frame_analyses)
    assert story is not None and story.lost_events == 0
    server = next(endpoint for endpoint in story.endpoints if endpoint.port == 8000)
    client = next(endpoint for endpoint in story.endpoints if endpoint.port != 8000)
    # curl reads as much as it gets at a time: repeated calls count once here
    assert [name for name, _ in itertools.groupby(call.call for call in client.calls)] == [
        "socket",
        "connect",
        "send",
        "recv",
        "close",
    ]
    assert [name for name, _ in itertools.groupby(call.call for call in server.calls)][:3] == ["accept", "recv", "send"]
    assert [call.call for call in server.listener_calls][:3] == ["socket", "bind", "listen"]
    request = next(call for call in client.calls if call.call == "send")
    served = next(call for call in server.calls if call.call == "recv")
    assert request.result == served.result > 0 and request.sequence == served.sequence
    assert request.process != served.process, "curl and the server are different processes"
    answer = sum(call.result for call in server.calls if call.call == "send")
    assert sum(call.result for call in client.calls if call.call == "recv") == answer
    assert "127.0.0.1:8000 calls: accept() -> " in result.stdout


@pytest.mark.root
def test_record_interrupted_keeps_what_it_recorded_and_leaves_nothing_behind(tmp_path: Path) -> None:
    before = host_state()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "visualizer",
            "record",
            "-o",
            str(tmp_path),
            "--",
            "python3",
            "-m",
            "http.server",
            "8001",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2.0)
    process.send_signal(signal.SIGINT)
    output, error = process.communicate(timeout=30)
    assert process.returncode == 130 and "Traceback" not in error
    assert "stopped by SIGINT" in error and f"wrote {tmp_path / 'record.pcap'}" in output
    time.sleep(0.2)
    assert host_state() == before, "no namespace, mount or tracefs instance may remain"
    assert leftovers("http.server 8001") == "" and leftovers("visualizer record") == ""
    recorded = load_sidecar(tmp_path / "record.pcap")
    assert recorded is not None and recorded.lost_events == 0
    traced = {event.tid for event in recorded.events if event.name.startswith("sys_")}
    listening = [  # by the command's own tasks (another namespace's listen() may be recorded too: see the README)
        event
        for event in recorded.events
        if event.name == "inet_sock_set_state" and event.fields["newstate"] == "LISTEN" and event.tid in traced
    ]
    assert [event.fields["sport"] for event in listening] == [8001], "the server's listen(), recorded till the stop"


@pytest.mark.root
def test_without_tracefs_the_run_says_why_in_one_line_and_keeps_the_packets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("visualizer.sources.kernel.TRACEFS", Path("/nonexistent/tracing"))
    out, err = io.StringIO(), io.StringIO()
    assert main(["run", "story", "--out", str(tmp_path)], stdout=out, stderr=err) == 0
    (line,) = [line for line in err.getvalue().splitlines() if "kernel events" in line]
    assert line == (
        "sockstory: kernel events not recorded: tracefs cannot be mounted: No such file or directory; "
        "the packets alone follow"
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["story.pcap"]
    assert "127.0.0.1:8080 calls" not in out.getvalue()


@pytest.mark.root
def test_tracefs_mounted_for_a_recording_stays_private_to_the_recorder(tmp_path: Path) -> None:
    """Where tracefs is not mounted (a mount namespace of the test's own, without it), a recording
    mounts it for itself only: afterwards the namespace it ran from still has no tracefs."""
    before = host_state()
    script = (
        "umount /sys/kernel/tracing 2>/dev/null; "
        "grep -c ' - tracefs ' /proc/self/mountinfo; "
        f"{sys.executable} -m visualizer run story --out {tmp_path} >/dev/null 2>&1 || exit 9; "
        "grep -c ' - tracefs ' /proc/self/mountinfo; true"
    )
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "0"]  # none before the run, none left by it
    assert (tmp_path / "story.kernel.jsonl").exists()  # the recorder did mount it, in its own namespace
    assert host_state() == before


def test_record_needs_a_command() -> None:
    err = io.StringIO()
    assert main(["record", "-o", "/tmp/never"], stdout=io.StringIO(), stderr=err) == 2
    assert "name the command to run after --" in err.getvalue()
