"""What the kernel's side of a scenario must show: shared by the tests on committed recordings
(tests/data/kernel) and the root tests on live runs."""

from __future__ import annotations

from visualizer.analysis.kernel import KernelStory, inferred_states, kernel_states, zero_window_frames
from visualizer.analysis.report import FAST_RETRANSMISSION, RETRANSMISSION, Report
from visualizer.scenarios.kernel import ANSWER, QUESTION

STORY_PORT = 8080


def check_story(report: Report, story: KernelStory) -> None:
    """connect/send/recv/close with the payloads' byte counts; each send tied to the segments of its bytes."""
    assert story.lost_events == 0
    server = next(endpoint for endpoint in story.endpoints if endpoint.port == STORY_PORT)
    client = next(endpoint for endpoint in story.endpoints if endpoint.port != STORY_PORT)
    assert [call.call for call in client.calls] == ["socket", "connect", "send", "recv", "close"]
    assert [call.call for call in server.calls] == ["accept", "recv", "send", "recv", "close"]
    assert [call.call for call in server.listener_calls] == ["socket", "bind", "listen", "close"]
    frames = {frame.record.number: frame for frame in report.frame_analyses}
    for endpoint, sent, received in ((client, QUESTION, ANSWER), (server, ANSWER, QUESTION)):
        (send,) = [call for call in endpoint.calls if call.call == "send"]
        first_recv = next(call for call in endpoint.calls if call.call == "recv")
        assert send.result == send.size == len(sent)
        assert first_recv.result == len(received)
        assert send.sequence == (1, 1 + len(sent))
        assert b"".join(frames[number].record.payload for number in send.frames) == sent
        assert all(frames[number].record.source_port == endpoint.port for number in send.frames)
        assert b"".join(frames[number].record.payload for number in first_recv.frames) == received
    close = next(call for call in client.calls if call.call == "close")
    fin = next(change for change in client.states if change.kernel_new == "FIN_WAIT1")
    assert close.time_ns <= fin.time_ns <= close.end_ns, "close() sends the FIN: FIN-WAIT-1 within the call"


def check_zero_window(report: Report, story: KernelStory) -> None:
    """The receiver's Recv-Q is full (its peak) while zero windows are on the wire, then drains as it reads."""
    receiver = next(endpoint for endpoint in story.endpoints if endpoint.port == 8088)
    zero_windows = zero_window_frames(report.frame_analyses, receiver)
    assert zero_windows
    peak = max(sample.recv_q for sample in receiver.queues)
    assert peak >= 4096, "at least the buffer the scenario asked for (SO_RCVBUF 4096) was queued"
    for frame in zero_windows:
        at = [sample for sample in receiver.queues if sample.time_ns <= (frame.record.timestamp_ns or 0)][-1]
        assert at.recv_q == peak, f"frame {frame.record.number}: Recv-Q {at.recv_q}, the buffer holds {peak}"
    closed = [probe for probe in receiver.probes if probe.rcv_wnd == 0]
    assert closed, "the kernel's own receive window is 0 at the probes it answers"
    first_read = next(call for call in receiver.calls if call.call == "recv" and call.result > 0)
    assert first_read.time_ns > (zero_windows[-1].record.timestamp_ns or 0)
    after = [sample for sample in receiver.queues if sample.time_ns >= first_read.time_ns]
    assert after[0].cause == "recv" and after[0].recv_q == peak - first_read.result
    assert receiver.queues[-1].recv_q == 0
    sender = next(endpoint for endpoint in story.endpoints if endpoint.port != 8088)
    assert max(sample.send_q for sample in sender.queues) > peak, "the sender's Send-Q holds what the window refused"
    assert sender.queues[-1].send_q == 0


def check_loss(report: Report, story: KernelStory) -> None:
    """The kernel's retransmissions are the capture's retransmission frames, one to one; the dropped
    segment has its drop reason and is the one sent again."""
    sender = next(endpoint for endpoint in story.endpoints if endpoint.port != 8089)
    receiver = next(endpoint for endpoint in story.endpoints if endpoint.port == 8089)
    captured = sorted(
        frame.record.number
        for frame in report.frame_analyses
        if frame.analysis & (RETRANSMISSION | FAST_RETRANSMISSION) and frame.record.source_port == sender.port
    )
    kernel = sorted(mark.frame for mark in sender.marks_of("retransmission"))
    assert captured and kernel == captured
    (drop,) = receiver.marks_of("drop")
    assert drop.reason == "NETFILTER_DROP" and drop.frame
    frames = {frame.record.number: frame for frame in report.frame_analyses}
    originals = {finding.original for number in captured for finding in frames[number].findings if finding.original}
    assert drop.frame in originals, "the dropped segment is the one retransmitted"


def check_bad_checksum(report: Report, story: KernelStory) -> None:
    """The kernel's checksum drop is the frame the capture marks bad."""
    bad = [frame.record.number for frame in report.frame_analyses if frame.record.checksum == "bad"]
    # story.drops holds every drop of the machine while recording (other namespaces' too): the ones
    # tied to this capture's frames are the scenario's
    drops = [mark.frame for mark in story.drops if mark.reason == "TCP_CSUM" and mark.frame]
    assert bad and drops == bad


def check_states(report: Report, story: KernelStory) -> None:
    """Inferred states equal the kernel's for every endpoint with a socket, or the difference is explained."""
    for endpoint in story.endpoints:
        if endpoint.states:
            assert kernel_states(endpoint) and inferred_states(endpoint, report.frame_analyses)
    unexplained = [difference for difference in story.state_differences if difference.explanation == "unexplained"]
    assert unexplained == []


CHECKS = {
    "story": check_story,
    "zero-window": check_zero_window,
    "loss": check_loss,
    "craft-bad-checksum": check_bad_checksum,
}


def check_story_ladder(report: Report, story: KernelStory) -> None:
    """The story's ladder: every call on its program's lane, once; each send linked to the arrows of
    the segments that carried its bytes, each recv to the arrows that delivered them."""
    from matplotlib.figure import Figure

    from visualizer.render.ladder import draw_ladder
    from visualizer.render.layout import Call, build_ladder

    layout = build_ladder(report.frame_analyses, origin_ns=report.first_time_ns, kernel=story)
    ax = draw_ladder(layout, figure=Figure())
    calls = [(index, row) for index, row in enumerate(layout.rows) if isinstance(row, Call)]
    own = sum(len(endpoint.calls) for endpoint in story.endpoints)
    listener = sum(call.call != "close" for endpoint in story.endpoints for call in endpoint.listener_calls)
    assert sum(row.count for _, row in calls) == layout.calls == own + listener
    words = {text.get_gid(): text.get_text() for text in ax.texts if (text.get_gid() or "").startswith("call-")}
    assert [words[f"call-{index}"].split("\n")[0] for index, _ in calls] == [row.text for _, row in calls]
    arrows = {patch.get_gid(): patch._posA_posB for patch in ax.patches if (patch.get_gid() or "").startswith("frame-")}  # type: ignore[attr-defined]
    links = {line.get_gid(): line.get_data() for line in ax.lines if (line.get_gid() or "").startswith("call-link-")}
    linked = [(index, row) for index, row in calls if row.call in ("send", "recv") and row.frames]
    assert {row.call for _, row in linked} == {"send", "recv"}
    for index, row in linked:
        for frame in row.frames:
            start, tip = arrows[f"frame-{frame}"]
            x, y = links[f"call-link-{index}-{frame}"]
            assert (x[-1], y[-1]) == (start if row.call == "send" else tip), (row.text, frame)
    assert len(links) == sum(len(row.frames) for _, row in linked)


LADDER_CHECKS = {"story": check_story_ladder}
"""Checks of a scenario's ladder drawn with its kernel's side (on live runs and on the recordings)."""
