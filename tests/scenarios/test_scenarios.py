"""Every scenario for real (root): the capture shows its behaviour, equals tcpdump's, leaves nothing behind."""

from __future__ import annotations

import io
import os
import re
import signal
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from tests.kernel_checks import CHECKS, LADDER_CHECKS, check_states
from tests.render.images import pixels, png_size, svg_titles
from visualizer.analysis import Report
from visualizer.analysis.report import analysis_names
from visualizer.cli import main
from visualizer.model import FIN, RST, SYN, parse_tcp_options
from visualizer.pipeline import analyse_file, kernel_story
from visualizer.render.ladder import draw_ladder
from visualizer.render.layout import build_ladder
from visualizer.render.overview import outcome_of
from visualizer.scenarios import SCENARIOS
from visualizer.scenarios.kernel import (
    BULK_MSS,
    ENCODING_RECORD,
    ENCODING_RECORD_FORMAT,
    ENCODING_TEXT,
    NAGLE_WRITES,
    STORY_PORT,
)
from visualizer.scenarios.runner import ScenarioResult, run_scenario
from visualizer.sources.kernel import INSTANCE_PREFIX


def host_state() -> tuple[str, ...]:
    """What a scenario must never change on the host: namespaces, nftables, lo's qdisc, filters, offloads
    and sysctls, network devices, mounts, tracefs instances (looked at through a mount of tracefs in a
    namespace of the test's own)."""

    def read(*command: str) -> str:
        return subprocess.run(command, capture_output=True, text=True).stdout.strip()

    offloads = "\n".join(line for line in read("ethtool", "-k", "lo").splitlines() if "offload" in line)
    instances = "\n".join(
        name
        for name in read(
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null; ls /sys/kernel/tracing/instances",
        ).split()
        if not recording_alive(name)
    )
    mounts = "\n".join(
        sorted(" ".join(line.split()[3:5]) for line in Path("/proc/1/mountinfo").read_text().splitlines())
    )
    return (
        read("ip", "netns", "list"),
        read("nft", "list", "tables"),
        read("tc", "qdisc", "show", "dev", "lo"),
        read("tc", "filter", "show", "dev", "lo", "egress"),
        read("ip", "-o", "link", "show"),
        read("sysctl", "net.ipv4.conf.lo.route_localnet", "net.ipv4.conf.lo.accept_local"),
        offloads,
        instances,
        mounts,
    )


def recording_alive(instance: str) -> bool:
    """Whether ``instance`` is a recorder's (``sockstory-PID-...``) whose process still runs: another
    recording in progress on this machine (a parallel test run), not one a finished run left behind."""
    match = re.fullmatch(rf"{INSTANCE_PREFIX}(\d+)-\w+", instance)
    return match is not None and Path(f"/proc/{match.group(1)}").exists()


def tcp_data(report: Report, *, initiator: bool | None = None, stream: int | None = None) -> list[int]:
    return [
        frame.record.payload_length
        for frame in report.frame_analyses
        if frame.protocol == "tcp"
        and frame.record.payload_length
        and (initiator is None or frame.from_initiator == initiator)
        and (stream is None or frame.stream == stream)
    ]


def first_fin_from_initiator(report: Report) -> bool:
    return next(frame.from_initiator for frame in report.frame_analyses if frame.record.tcp_flags & FIN)


def counts(report: Report) -> dict[str, int]:
    return dict(report.analysis_counts)


def check_story(report: Report) -> None:
    (conversation,) = report.conversations
    assert conversation.outcome == "complete" and conversation.port_b == 8080
    assert b"tic tac toe?" in b"".join(frame.record.payload for frame in report.frame_analyses)
    assert tcp_data(report, initiator=True) and tcp_data(report, initiator=False)


def check_encoding(report: Report) -> None:
    (conversation,) = report.conversations
    assert conversation.outcome == "complete" and conversation.port_b == STORY_PORT
    sent = [frame.record.payload for frame in report.frame_analyses if frame.from_initiator and frame.record.payload]
    assert sent == [ENCODING_TEXT.encode("utf-8"), struct.pack(ENCODING_RECORD_FORMAT, *ENCODING_RECORD)]
    assert len(tcp_data(report, initiator=False)) == 2, "one answer to each"


def check_half_close(report: Report) -> None:
    frames = report.frame_analyses
    fin = next(index for index, frame in enumerate(frames) if frame.record.tcp_flags & FIN)
    assert frames[fin].from_initiator
    assert any(frame.record.payload_length and not frame.from_initiator for frame in frames[fin + 1 :])


def check_loss(report: Report) -> None:
    assert counts(report).get("retransmission", 0) >= 1 and counts(report).get("duplicate_ack", 0) >= 3
    assert any(parse_tcp_options(frame.record.tcp_options).sack_blocks for frame in report.frame_analyses)


def check_udp_closed_port(report: Report) -> None:
    icmp = [frame for frame in report.frame_analyses if frame.protocol == "icmp"]
    assert len(icmp) == 1 and (icmp[0].record.icmp_type, icmp[0].record.icmp_code) == (3, 3)
    assert icmp[0].stream == 0 and icmp[0].record.quoted is not None and icmp[0].record.quoted.destination_port == 5354


def check_web(report: Report) -> None:
    """15 conversations: 10 complete (5 closed first by each side), 1 refused, 1 reset by the client, 3 UDP
    exchanges; the requests sent at once interleave."""
    outcomes = Counter(outcome_of(conversation) for conversation in report.conversations)
    assert outcomes == {"complete": 10, "refused": 1, "reset": 1, "udp": 3}, outcomes
    assert all(c.frames_a_to_b == c.frames_b_to_a == 1 for c in report.conversations if c.protocol == "udp")
    first_fins: dict[int, bool] = {}
    for frame in report.frame_analyses:
        if frame.protocol == "tcp" and frame.record.tcp_flags & FIN:
            first_fins.setdefault(frame.stream, frame.from_initiator)
    assert Counter(first_fins.values()) == {True: 5, False: 5}, "the client closes first in 5, the server in 5"
    (reset,) = [c.stream for c in report.conversations if c.outcome == "reset"]
    assert any(
        f.stream == reset and f.protocol == "tcp" and f.record.tcp_flags & RST and f.from_initiator
        for f in report.frame_analyses
    )
    streams = [frame.stream for frame in report.frame_analyses if frame.protocol == "tcp"]
    assert streams != sorted(streams), "conversations sent at once interleave"


EXPECTATIONS: dict[str, Callable[[Report], None]] = {
    "story": check_story,
    "close-client-first": lambda report: (
        (report.conversations[0].outcome == "complete" and first_fin_from_initiator(report))
        or pytest.fail("the client should close first")
    ),
    "close-server-first": lambda report: (
        (report.conversations[0].outcome == "complete" and not first_fin_from_initiator(report))
        or pytest.fail("the server should close first")
    ),
    "half-close": check_half_close,
    "simultaneous-close": lambda report: (
        {
            frame.record.source_port if side == 0 else frame.record.destination_port
            for frame in report.frame_analyses
            for side, state in enumerate((frame.state, frame.receiver_state))
            if state == "CLOSING"
        }
        == {report.conversations[0].port_a, report.conversations[0].port_b}
        or pytest.fail("both endpoints should pass through CLOSING")
    ),
    "refused": lambda report: (
        (
            [frame.record.tcp_flags & (SYN | RST) for frame in report.frame_analyses] == [SYN, RST]
            and report.conversations[0].outcome == "refused"
        )
        or pytest.fail("expected SYN then RST|ACK")
    ),
    "abort": lambda report: (
        (
            report.conversations[0].outcome == "reset"
            and any(frame.record.tcp_flags & RST and frame.from_initiator for frame in report.frame_analyses)
        )
        or pytest.fail("expected a RST from the client")
    ),
    "udp": lambda report: (
        ([(c.protocol, c.frames_a_to_b, c.frames_b_to_a) for c in report.conversations] == [("udp", 2, 2)])
        or pytest.fail("expected two UDP requests and two responses")
    ),
    "udp-closed-port": check_udp_closed_port,
    "bulk": lambda report: (
        (max(tcp_data(report)) <= BULK_MSS and len(tcp_data(report)) >= 150 and sum(tcp_data(report)) == 199_936)
        or pytest.fail("expected MSS-sized segments")
    ),
    "full-duplex": lambda report: (
        (len(tcp_data(report, initiator=True)) >= 30 and len(tcp_data(report, initiator=False)) >= 30)
        or pytest.fail("expected data both ways")
    ),
    "zero-window": lambda report: (
        (all(counts(report).get(name, 0) >= 1 for name in ("zero_window", "zero_window_probe", "window_update")))
        or pytest.fail(f"expected zero window, probes and an update: {counts(report)}")
    ),
    "loss": check_loss,
    "keepalive": lambda report: (
        (counts(report).get("keep_alive", 0) >= 2 and counts(report).get("keep_alive_ack", 0) >= 1)
        or pytest.fail(f"expected keep-alives and their ACKs: {counts(report)}")
    ),
    "nagle": lambda report: (
        (
            len(tcp_data(report, initiator=True, stream=0)) < NAGLE_WRITES
            and len(tcp_data(report, initiator=True, stream=1)) == NAGLE_WRITES
        )
        or pytest.fail("Nagle should coalesce the small writes and TCP_NODELAY should not")
    ),
    "web": check_web,
    "encoding": check_encoding,
    "udp-datagrams": lambda report: (
        (
            [(c.protocol, c.frames_a_to_b, c.frames_b_to_a) for c in report.conversations] == [("udp", 5, 0)]
            and sum(frame.record.fragment for frame in report.frame_analyses) == 2
        )
        or pytest.fail("expected five datagrams one way, the last in three IP fragments")
    ),
}
CHECKED_WITH_TCPDUMP = {"story", "bulk", "loss", "full-duplex", "udp-closed-port", "zero-window"}


KERNEL = [name for name, scenario in SCENARIOS.items() if not scenario.crafted]


def test_every_scenario_has_an_expectation() -> None:
    assert set(EXPECTATIONS) == set(KERNEL)
    assert len(KERNEL) == 18


@pytest.mark.root
@pytest.mark.parametrize("name", KERNEL)
def test_scenario_shows_its_behaviour_and_leaves_nothing_behind(name: str, tmp_path: Path) -> None:
    before = host_state()
    result = run_scenario(name, tmp_path, check_with_tcpdump=name in CHECKED_WITH_TCPDUMP)
    assert host_state() == before
    assert result.kernel_drops == 0
    if name in CHECKED_WITH_TCPDUMP:
        assert result.frames == result.tcpdump_frames, "each packet exactly once, as tcpdump saw it"
    report = analyse_file(result.pcap, keep_frames=True)
    assert report.frames == result.frames
    assert not any("state_anomaly" in analysis_names(frame.analysis) for frame in report.frame_analyses)
    EXPECTATIONS[name](report)
    check_kernel_side(name, result, report)


def check_kernel_side(name: str, result: ScenarioResult, report: Report) -> None:
    """The kernel events recorded beside the capture: none lost, states as inferred (or explained)."""
    assert result.kernel is not None and result.kernel.missing == "" and result.kernel.lost_events == 0
    story = kernel_story(result.pcap, report.frame_analyses)
    assert story is not None and story.lost_events == 0
    check_states(report, story)
    if name in CHECKS:
        CHECKS[name](report, story)
    if name in LADDER_CHECKS:
        LADDER_CHECKS[name](report, story)


@pytest.mark.root
def test_story_command_writes_a_pcap_and_a_diagram(tmp_path: Path) -> None:
    out = io.StringIO()
    assert main(["story", "--out", str(tmp_path)], stdout=out, stderr=io.StringIO()) == 0
    report = analyse_file(tmp_path / "story.pcap", keep_frames=True)
    assert report.frames >= 10
    lines = out.getvalue().splitlines()
    assert lines[0] == f"sockstory: wrote {tmp_path / 'story.pcap'} ({report.frames} frames, 0 dropped by the kernel)"
    assert lines[1].startswith(f"sockstory: wrote {tmp_path / 'story.kernel.jsonl'} (") and ", 0 lost, " in lines[1]
    assert lines[2] == f"sockstory: wrote {tmp_path / 'story.png'}"
    assert any(line.strip().startswith("127.0.0.1:8080 calls: accept() -> ") for line in lines)
    assert "complete" in out.getvalue()
    # The PNG is the ladder of the saved capture with its kernel's side (the programs' lanes, the
    # states, the queue strips), titled as the CLI titles it, at 110 dpi.
    kernel = kernel_story(tmp_path / "story.pcap", report.frame_analyses)
    assert kernel is not None
    layout = build_ladder(report.frame_analyses, origin_ns=report.first_time_ns, kernel=kernel)
    assert layout.lanes
    layout.title = f"story, captured live ({report.frames} frames): {SCENARIOS['story'].description}"
    figure = Figure()
    draw_ladder(layout, figure=figure)
    assert png_size((tmp_path / "story.png").read_bytes()) == pixels(figure, 110)


@pytest.mark.root
def test_run_with_draw_writes_the_pcap_and_the_diagram(tmp_path: Path) -> None:
    out = io.StringIO()
    assert main(["run", "refused", "--draw", "--format", "svg", "--out", str(tmp_path)], stdout=out) == 0
    report = analyse_file(tmp_path / "refused.pcap", keep_frames=True)
    titles = svg_titles((tmp_path / "refused.svg").read_text())
    frames = [title for title in titles if title.startswith("frame ")]
    assert [title.split(":")[0] for title in frames] == [
        f"frame {frame.record.number}" for frame in report.frame_analyses
    ]
    assert "RST" in frames[-1]
    # and the client program's calls on its lane: the refused connect() is all it did
    program = [title.split(" -> ")[0] for title in titles if not title.startswith("frame ")]
    assert program == ["socket()", "connect()", "close()"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["refused.kernel.jsonl", "refused.pcap", "refused.svg"]
    # --no-kernel: the packets alone, and no sidecar of an earlier run left beside them
    assert main(["run", "refused", "--no-kernel", "--out", str(tmp_path)], stdout=io.StringIO()) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["refused.pcap", "refused.svg"]
    conversation, calls = out.getvalue().splitlines()[-2:]  # the conversation, then its client's calls
    assert conversation.endswith(", 2 frames, refused; no_listener 1")
    assert calls.strip().startswith("127.0.0.1:") and "calls: socket() -> " in calls
    assert calls.endswith(", connect() -> -EINPROGRESS, close() -> 0")


@pytest.mark.root
@pytest.mark.parametrize("name", ["keepalive", "craft-silent-client"])
def test_interrupted_scenario_leaves_nothing_behind(name: str, tmp_path: Path) -> None:
    before = host_state()
    process = subprocess.Popen(
        [sys.executable, "-m", "visualizer", "run", name, "--out", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2.0)  # mid-run: both scenarios last more than 3 s
    process.send_signal(signal.SIGINT)
    _, error = process.communicate(timeout=20)
    assert process.returncode != 0 and "Traceback" not in error
    time.sleep(0.2)
    assert host_state() == before, "no namespace, nftables table or rule, qdisc or offload change may remain"
    leftovers = subprocess.run(["pgrep", "-f", f"visualizer run {name}"], capture_output=True, text=True)
    assert leftovers.stdout.strip() == ""
    assert list(tmp_path.glob("*.kernel.jsonl*")) == [] and list(tmp_path.glob(".*.part")) == []


def test_live_commands_without_root_stop_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """The line says how to retry with sudo in a way that works: sudo does not search .venv/bin."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(sys, "argv", [".venv/bin/sockstory"])
    for argv, retry in (
        (["story"], "story"),
        (["run", "loss"], "run loss"),
        (["capture", "-o", "/tmp/never.pcap"], "capture"),
    ):
        err = io.StringIO()
        assert main(argv, stdout=io.StringIO(), stderr=err) == 1
        (line,) = err.getvalue().splitlines()
        assert "needs root" in line and f"'sudo .venv/bin/sockstory {retry}'" in line


@pytest.mark.root
def test_capture_command_keeps_each_loopback_packet_once_with_a_bpf_filter(tmp_path: Path) -> None:
    target = tmp_path / "mine.pcap"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "visualizer",
            "capture",
            "--filter",
            "udp port 9998",
            "--duration",
            "2",
            "-o",
            str(target),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for index in range(5):
            sender.sendto(b"ping %d" % index, ("127.0.0.1", 9998))
            sender.sendto(b"other", ("127.0.0.1", 9997))  # filtered out
    output, error = process.communicate(timeout=20)
    assert process.returncode == 0, error
    report = analyse_file(target, keep_frames=True)
    ports = [frame.record.destination_port for frame in report.frame_analyses if frame.protocol == "udp"]
    assert ports == [9998] * 5
    assert "wrote" in output
