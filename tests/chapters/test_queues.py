"""Chapter 4: the receive window closes when Recv-Q holds what the buffer allows; the sender probes,
keeps its bytes in Send-Q, and its blocking send() returns only once the window has reopened."""

from __future__ import annotations

from pathlib import Path

import pytest

from visualizer import chapters
from visualizer.chapters import Experiment
from visualizer.chapters.queues import receive_buffer_memory, zero_window
from visualizer.scenarios.kernel import ZERO_WINDOW_BUFFER, ZERO_WINDOW_WRITE

DATA = Path(__file__).parent.parent / "data"


def check_zero_window(experiment: Experiment) -> None:
    frames = {frame.record.number: frame for frame in experiment.frames_of(0)}
    measured = zero_window(experiment.frames_of(0), experiment.endpoints())
    assert measured is not None and measured.zero_windows
    # the buffer: Linux doubles SO_RCVBUF; its first window is half of that memory, the size asked for
    assert measured.first_window == ZERO_WINDOW_BUFFER
    # Recv-Q reaches what the window accounting let in, exactly, while the window is zero: the
    # receiver took every byte its windows offered and no more; that is less than the memory reserved
    # (the rest pays for the buffers holding the bytes) and, on a kernel that measures the payload's
    # share of that memory (scaling_ratio, as this project's), more than the SO_RCVBUF asked for
    assert set(measured.recv_q_at_zero) == {measured.offered} == {measured.recv_q_peak}
    assert all(frames[number].window == 0 for number in measured.zero_windows)
    assert ZERO_WINDOW_BUFFER <= measured.offered < receive_buffer_memory(ZERO_WINDOW_BUFFER)
    # probes while the window is zero, and the receiver's kernel says its window is zero at each
    assert measured.probes and measured.probes_while_closed
    assert set(measured.kernel_rcv_wnd_at_probes) == {0}
    # the window update reopens it; the sender held the refused bytes meanwhile
    assert measured.update > max(measured.zero_windows) and measured.update_window > 0
    assert measured.send_q_while_closed > measured.offered
    # the blocked send(): entered before the window closed, returned only after the update
    send = measured.blocked_send
    assert send is not None and send.result == send.size == ZERO_WINDOW_WRITE
    assert send.time_ns < measured.closed_ns[0] and send.end_ns > (frames[measured.update].record.timestamp_ns or 0)


def test_the_recorded_zero_window() -> None:
    check_zero_window(chapters.load(DATA / "chapters" / "zero-window.pcap"))


def test_a_program_that_waits_in_poll_has_no_send_blocked_across_the_zero_window() -> None:
    """An older recording: Python's socket timeout made the writer wait in poll() between short sends."""
    measured = zero_window(*_frames_and_endpoints(DATA / "kernel" / "zero-window.pcap"))
    assert measured is not None and measured.blocked_send is None
    assert set(measured.recv_q_at_zero) == {measured.offered}


def test_no_zero_window_no_episode() -> None:
    assert zero_window(*_frames_and_endpoints(DATA / "kernel" / "story.pcap")) is None
    without_recording = chapters.load(DATA / "scenarios" / "captures" / "zero-window.pcap")
    assert zero_window(without_recording.frames_of(0), without_recording.endpoints()) is None


def _frames_and_endpoints(pcap: Path) -> tuple[list, list]:  # type: ignore[type-arg]
    experiment = chapters.load(pcap)
    return experiment.frames_of(0), experiment.endpoints()


@pytest.mark.root
def test_zero_window_for_real(tmp_path: Path) -> None:
    check_zero_window(chapters.run("zero-window", tmp_path))
