"""The join of kernel events and frames, on recordings made by the scenarios (tests/data/kernel)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.kernel_checks import CHECKS, check_states
from visualizer.analysis.kernel import (
    INFINITE_SSTHRESH,
    KernelStateChange,
    ProbeSample,
    compare_states,
    join_kernel,
    segment_size,
)
from visualizer.model import FIN, SYN
from visualizer.pipeline import analyse_file, kernel_story
from visualizer.sources.kernel import load_sidecar

DATA = Path(__file__).parent.parent / "data" / "kernel"


def story_of(name: str):  # type: ignore[no-untyped-def]
    report = analyse_file(DATA / f"{name}.pcap", keep_frames=True)
    story = kernel_story(DATA / f"{name}.pcap", report.frame_analyses)
    assert story is not None
    return report, story


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_recorded_scenario_shows_its_kernel_side(name: str) -> None:
    report, story = story_of(name)
    CHECKS[name](report, story)
    check_states(report, story)


def test_a_check_fails_when_the_kernel_says_otherwise() -> None:
    report, story = story_of("loss")
    sender = next(endpoint for endpoint in story.endpoints if endpoint.port != 8089)
    sender.marks = [mark for mark in sender.marks if mark.kind != "retransmission"]
    with pytest.raises(AssertionError):
        CHECKS["loss"](report, story)


def test_the_story_calls_read_as_the_program_made_them() -> None:
    _, story = story_of("story")
    client = next(endpoint for endpoint in story.endpoints if endpoint.port != 8080)
    assert [call.text for call in client.calls] == [
        f"socket() -> {client.calls[0].result}",
        "connect() -> -EINPROGRESS",  # Python's socket with a timeout connects without blocking, then polls
        "send(12) -> 12",
        "recv(100) -> 27",
        "close() -> 0",
    ]
    assert all(call.end_ns >= call.time_ns for call in client.calls)


def test_a_fin_held_in_the_shapers_queue_explains_closing_that_the_capture_cannot_show() -> None:
    """full-duplex (20 Mbit/s shapers): the client's close() queued its FIN behind its data in the qdisc;
    the server's FIN arrived first, so its kernel went FIN-WAIT-1 -> CLOSING, while the capture saw the
    client's FIN only after the server's (CI failed on this run as "unexplained")."""
    _, story = story_of("full-duplex-queued-fin")
    (difference,) = story.state_differences
    assert difference.kernel == ("SYN-SENT", "ESTABLISHED", "FIN-WAIT-1", "CLOSING", "TIME-WAIT")
    assert "CLOSING" not in difference.inferred
    assert difference.explanation.startswith("its FIN waited in a queue below the capture point")


def test_a_recv_that_returns_0_read_the_peers_fin() -> None:
    report, story = story_of("story")
    server = next(endpoint for endpoint in story.endpoints if endpoint.port == 8080)
    (end,) = [call for call in server.calls if call.call == "recv" and call.result == 0]
    fin = next(frame for frame in report.frame_analyses if frame.record.tcp_flags & FIN)
    assert end.frames == (fin.record.number,) and fin.record.destination_port == 8080
    client = next(endpoint for endpoint in story.endpoints if endpoint.port != 8080)
    assert not [call for call in client.calls if call.call == "recv" and call.result == 0]  # it never read the end


def test_the_kernel_passes_fin_wait_2_within_one_segment_and_that_is_explained() -> None:
    report, story = story_of("story")
    (difference,) = story.state_differences
    assert "FIN-WAIT-2" in difference.kernel and "FIN-WAIT-2" not in difference.inferred
    assert "processes one segment" in difference.explanation
    # A kernel state change of its own, in its own time, is not explained away.
    client = next(endpoint for endpoint in story.endpoints if endpoint.name == difference.endpoint)
    fin_wait_2 = next(index for index, change in enumerate(client.states) if change.new == "FIN-WAIT-2")
    client.states[fin_wait_2] = replace(client.states[fin_wait_2], frame=client.states[fin_wait_2].frame - 1)
    (again,) = compare_states(story, report.frame_analyses)
    assert again.explanation == "unexplained"


def test_a_state_change_follows_a_frame_of_its_own_conversation() -> None:
    """In the web run another conversation's frame was captured between the client's FIN-WAIT-2 and
    TIME-WAIT (both made by the server's one FIN+ACK): tied to any frame, the passing through
    FIN-WAIT-2 looked like a state of its own."""
    report, story = story_of("web")
    streams = {frame.record.number: frame.stream for frame in report.frame_analyses}
    changes = [(endpoint, change) for endpoint in story.endpoints for change in endpoint.states if change.frame]
    assert len({endpoint.stream for endpoint, _ in changes}) == 15 - 3  # every TCP conversation (3 are UDP)
    assert all(streams[change.frame] == endpoint.stream for endpoint, change in changes)
    assert story.state_differences
    assert all("processes one segment" in difference.explanation for difference in story.state_differences)


def test_events_of_other_sockets_of_the_machine_are_left_out() -> None:
    report = analyse_file(DATA / "story.pcap", keep_frames=True)
    recorded = load_sidecar(DATA / "story.pcap")
    assert recorded is not None
    stranger = [
        event._replace(fields={**event.fields, "sk": 999, "sport": 1234, "dport": 4321})
        for event in recorded.events
        if event.name == "inet_sock_set_state"
    ]
    story = join_kernel(report.frame_analyses, [*recorded.events, *stranger])
    assert sorted(len(endpoint.states) for endpoint in story.endpoints) == [5, 5]


def test_time_wait_is_the_hand_over_not_a_reset() -> None:
    _, story = story_of("story")
    client = next(endpoint for endpoint in story.endpoints if endpoint.port != 8080)
    last: KernelStateChange = client.states[-1]
    assert (last.kernel_old, last.kernel_new, last.new) == ("FIN_WAIT2", "CLOSE", "TIME-WAIT")
    server = next(endpoint for endpoint in story.endpoints if endpoint.port == 8080)
    assert (server.states[-1].kernel_new, server.states[-1].new) == ("CLOSE", "CLOSED")


def test_without_a_sidecar_there_is_no_kernel_story(tmp_path: Path) -> None:
    capture = tmp_path / "alone.pcap"
    capture.write_bytes((DATA / "story.pcap").read_bytes())
    report = analyse_file(capture, keep_frames=True)
    assert kernel_story(capture, report.frame_analyses) is None


def test_the_segment_size_is_the_smaller_mss_less_the_timestamps_as_the_kernel_counts_it() -> None:
    # loss: the client's TCP_MAXSEG 1000 in its SYN, the server's 65495; both SYNs carry timestamps
    report, story = story_of("loss")
    assert [endpoint.segment_size for endpoint in story.endpoints] == [1000 - 12, 1000 - 12]
    # what the sender put in its full segments on the wire (offloads off in the scenario)
    sent = [frame.record.payload_length for frame in report.frame_analyses if frame.record.destination_port == 8089]
    assert max(sent) == 988


def test_the_segment_size_without_timestamps_is_the_smaller_mss() -> None:
    # craft-bad-checksum: Scapy's SYN announces MSS 1460 and no timestamps
    _, story = story_of("craft-bad-checksum")
    assert {endpoint.segment_size for endpoint in story.endpoints} == {1460}


def test_no_segment_size_without_both_syns() -> None:
    report, story = story_of("loss")
    endpoint = story.endpoints[0]
    own = [frame for frame in report.frame_analyses if frame.protocol == "tcp" and frame.stream == endpoint.stream]
    assert segment_size(endpoint, own) == 988
    assert segment_size(endpoint, [frame for frame in own if not frame.record.tcp_flags & SYN]) is None
    one_syn = [frame for frame in own if not (frame.record.tcp_flags & SYN and frame.record.source_port == 8089)]
    assert segment_size(endpoint, one_syn) is None


def test_ssthresh_is_set_below_the_kernel_s_infinite_value_only() -> None:
    def probe(ssthresh: int) -> ProbeSample:
        return ProbeSample(0, 0, 10, ssthresh, 20, 65535, 65535, 1, 1)

    assert not probe(INFINITE_SSTHRESH).ssthresh_set
    assert not probe(0xFFFFFFFF).ssthresh_set
    assert probe(INFINITE_SSTHRESH - 1).ssthresh_set
    assert probe(7).ssthresh_set
    # zero-window: the sender's ssthresh is infinite until the transfer resumes, then 200
    _, story = story_of("zero-window")
    sender, _ = story.sender_and_receiver(0, "127.0.0.1", 54158)
    assert sender is not None
    flags = [probe.ssthresh_set for probe in sender.probes]
    first = flags.index(True)
    assert 0 < first and all(flags[first:]) and not any(flags[:first])
    assert {probe.ssthresh for probe in sender.probes[first:]} == {200}


def test_the_sender_and_receiver_of_a_direction_are_its_two_endpoints() -> None:
    _, story = story_of("loss")
    sender, receiver = story.sender_and_receiver(0, "127.0.0.1", 35754)
    assert sender is not None and receiver is not None
    assert (sender.port, receiver.port) == (35754, 8089)
    assert story.sender_and_receiver(0, "127.0.0.1", 8089)[1] is sender
    assert story.sender_and_receiver(0, "127.0.0.1", 1) == (None, None)
    assert story.sender_and_receiver(1, "127.0.0.1", 35754) == (None, None)
    # the sender's samples carry its growing cwnd (it receives the ACKs), the receiver's a constant one
    assert max(probe.snd_cwnd for probe in sender.probes) > 10
    assert {probe.snd_cwnd for probe in receiver.probes} == {10}


def test_a_socket_closed_in_fin_wait_2_waits_there_in_a_time_wait_socket_until_the_fin() -> None:
    """zero-window: the client's close() came first; the server's ACK of its FIN (#165) put it in
    FIN-WAIT-2, and the kernel handed the closed socket to a time-wait socket at once (the tracepoint
    says FIN_WAIT2 -> CLOSE), before the server's FIN (#166): not TIME-WAIT yet."""
    report, story = story_of("zero-window")
    client = next(endpoint for endpoint in story.endpoints if endpoint.port != 8088)
    last = client.states[-1]
    assert (last.kernel_old, last.kernel_new, last.new, last.frame) == ("FIN_WAIT2", "CLOSE", "FIN-WAIT-2", 165)
    assert last.note == "kernel: a time-wait socket from here (untraced); RFC table: TIME-WAIT at #166"
    (difference,) = story.state_differences
    assert difference.endpoint == client.name and difference.inferred[-1] == "TIME-WAIT"
    assert "time-wait socket" in difference.explanation
    # With the peer's FIN before the hand-over (the story), it is TIME-WAIT.
    _, story = story_of("story")
    client = next(endpoint for endpoint in story.endpoints if endpoint.port != 8080)
    assert client.states[-1].new == "TIME-WAIT"


def test_the_kernels_states_carry_notes_where_they_differ_from_the_rfc_table() -> None:
    _, story = story_of("story")
    notes = {(endpoint.port, change.new): change.note for endpoint in story.endpoints for change in endpoint.states}
    written = {key: note for key, note in notes.items() if note}
    client_port = next(endpoint.port for endpoint in story.endpoints if endpoint.port != 8080)
    assert written == {
        # the accepted socket is made at the handshake's ACK, from a request socket no tracepoint reports
        (8080, "SYN-RECEIVED"): "kernel: within #3; RFC table: from #1",
        # the server's FIN+ACK: its ACK (FIN-WAIT-2), then its FIN (TIME-WAIT)
        (client_port, "FIN-WAIT-2"): "kernel: within #9; RFC table: one step",
    }


def test_the_calls_on_udp_sockets_are_kept_apart_from_every_tcp_endpoint() -> None:
    _, story = story_of("web")
    datagram = [call.text for call in story.datagram_calls if call.call in ("send", "recv")]
    assert datagram == ["send(34) -> 34", "recv(512) -> 34", "send(50) -> 50", "recv(512) -> 50"] * 3  # 3 DNS lookups
    tcp = {(call.process, call.fd, call.time_ns) for endpoint in story.endpoints for call in endpoint.calls}
    assert not tcp & {(call.process, call.fd, call.time_ns) for call in story.datagram_calls}
    assert story_of("story")[1].datagram_calls == []  # a TCP-only run has none


RECORDINGS = sorted(
    path for path in DATA.parent.glob("*/*.pcap") if path.with_name(path.stem + ".kernel.jsonl").exists()
)


@pytest.mark.parametrize("pcap", RECORDINGS, ids=lambda path: path.stem)
def test_drops_are_tied_to_the_same_frames_without_every_packets_arrival(pcap: Path) -> None:
    """These recordings hold every packet's arrival (``netif_receive_skb``), which the recorder no
    longer records (it cost a bulk transfer a tenth of its throughput): tied by the events of TCP and
    by time instead, every drop gets the frame (or no frame) that the arrivals gave it."""
    recorded = load_sidecar(pcap)
    assert recorded is not None
    frames = analyse_file(pcap, keep_frames=True).frame_analyses
    without = [event for event in recorded.events if event.name != "netif_receive_skb"]
    assert len(without) < len(recorded.events)  # the arrivals were there

    def drops(events):  # type: ignore[no-untyped-def]
        story = join_kernel(frames, events, alignment_error_ns=recorded.alignment_error_ns)
        return [(mark.reason, mark.frame) for mark in story.drops]

    assert drops(without) == drops(recorded.events)


def test_a_drop_before_tcp_is_not_the_segment_tcp_took_in_from_the_same_memory() -> None:
    """loss: the firewall's drop of frame 14 (NETFILTER_DROP) reuses the memory of a segment TCP took
    in a moment before; it is frame 14's drop all the same, not that segment's."""
    recorded = load_sidecar(DATA / "loss.pcap")
    assert recorded is not None
    frames = analyse_file(DATA / "loss.pcap", keep_frames=True).frame_analyses
    events = [event for event in recorded.events if event.name != "netif_receive_skb"]
    (drop,) = [event for event in events if event.name == "kfree_skb" and event.fields["reason"] == "NETFILTER_DROP"]
    probe = next(event for event in reversed(events) if event.name == "tcp_probe" and event.time_ns < drop.time_ns)
    moved = probe._replace(fields={**probe.fields, "skb": drop.fields["skb"]}, cpu=drop.cpu)
    events = sorted([*(moved if event is probe else event for event in events)], key=lambda event: event.time_ns)
    story = join_kernel(frames, events, alignment_error_ns=recorded.alignment_error_ns)
    assert [(mark.reason, mark.frame) for mark in story.drops] == [("NETFILTER_DROP", 14)]
