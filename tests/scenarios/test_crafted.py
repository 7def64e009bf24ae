"""Crafted scenarios (root): Scapy talks TCP/UDP to the kernel by hand; the kernel's answers are asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scenarios.test_scenarios import check_kernel_side, host_state
from visualizer.analysis.report import analysis_names
from visualizer.errors import UnsafeDestinationError
from visualizer.model import ACK, RST, SYN
from visualizer.pipeline import analyse_file
from visualizer.scenarios import SCENARIOS
from visualizer.scenarios.namespace import in_private_namespace
from visualizer.scenarios.runner import run_scenario
from visualizer.scenarios.safety import check_destination

CRAFTED = [name for name, scenario in SCENARIOS.items() if scenario.crafted]


def test_the_crafted_scenarios_are_registered() -> None:
    assert CRAFTED == [
        "craft-handshake",
        "craft-silent-client",
        "craft-bad-checksum",
        "craft-rst-injection",
        "craft-syn-closed",
        "craft-udp-closed",
        "craft-simultaneous-open",
    ]


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1"])
def test_loopback_destinations_are_allowed(address: str) -> None:
    check_destination(address)


@pytest.mark.parametrize("address", ["192.0.2.1", "10.0.0.1", "8.8.8.8", "::2", "2001:db8::1", "localhost"])
def test_other_destinations_are_refused(address: str) -> None:
    with pytest.raises(UnsafeDestinationError, match="loopback|127.0.0.0/8"):
        check_destination(address)


def _refused_send() -> tuple[str, int]:
    from scapy.layers.inet import IP, UDP

    from visualizer.scenarios.crafted import CraftedPeer
    from visualizer.sources.live import Sniffer

    sniffer = Sniffer("lo")
    sniffer.start()
    peer = CraftedPeer(sniffer)
    try:
        peer.send(IP(src="127.0.0.1", dst="192.0.2.1") / UDP(sport=1, dport=9) / b"never")
        message = "sent!"
    except UnsafeDestinationError as error:
        message = str(error)
    finally:
        peer.close()
    return message, len(sniffer.stop(linger=0.3).frames)


@pytest.mark.root
def test_a_non_loopback_destination_is_refused_before_anything_is_sent() -> None:
    message, captured = in_private_namespace(_refused_send)
    assert "refusing to send a crafted packet to 192.0.2.1" in message
    assert captured == 0


def _tcp(report, flags: int, from_port: int | None = None):  # type: ignore[no-untyped-def]
    return [
        frame
        for frame in report.frame_analyses
        if frame.protocol == "tcp"
        and frame.record.tcp_flags & flags == flags
        and (from_port is None or frame.record.source_port == from_port)
    ]


@pytest.mark.root
@pytest.mark.parametrize("name", CRAFTED)
def test_crafted_scenario(name: str, tmp_path: Path) -> None:
    before = host_state()
    result = run_scenario(name, tmp_path, check_with_tcpdump=True)
    assert host_state() == before, "no nftables table or rule may remain"
    assert result.frames == result.tcpdump_frames
    report = analyse_file(result.pcap, keep_frames=True)
    check_kernel_side(name, result, report)
    seen = result.observations
    if name == "craft-handshake":
        assert _tcp(report, SYN | ACK, 8080), "the kernel's SYN-ACK"
        assert seen["delivered"] == b"tic tac toe?" and seen["answer"] == b"X wins, always. Play again?"
        assert report.conversations[0].outcome == "complete"
    elif name == "craft-silent-client":
        data = [
            frame for frame in report.frame_analyses if frame.record.payload_length and frame.record.source_port == 8080
        ]
        assert len(data) >= 4 and all("retransmission" in analysis_names(frame.analysis) for frame in data[1:])
        times = [frame.record.timestamp_ns for frame in data]
        gaps = [later - earlier for earlier, later in zip(times, times[1:])]
        assert gaps[-1] > 3 * gaps[0], f"exponential back-off: {gaps}"
        assert _tcp(report, RST, 40000)
    elif name == "craft-bad-checksum":
        assert seen == {"acked_bad": False, "acked_good": True, "delivered": b"tic tac toe?"}
        import io

        from visualizer.cli import main

        out = io.StringIO()
        main(["events", "-q", "--format", "jsonl", str(result.pcap)], stdout=out, stderr=io.StringIO())
        import json

        rows = [json.loads(line) for line in out.getvalue().splitlines()]
        data = [row for row in rows if row["len"]]
        assert [row["checksum"] for row in data] == ["bad", "ok"]  # the crafted bad one, then the good one
        kernel = [row["checksum"] for row in rows if row["sport"] == 8080]
        assert kernel and set(kernel) == {"unverified"}  # offloaded partial sums, not bad
    elif name == "craft-rst-injection":
        assert seen == {
            "challenge_after_out_of_window": False,
            "challenge_after_in_window": True,
            "server": "reset",
        }
    elif name == "craft-syn-closed":
        assert seen == {"rst_ack": True}
        assert [frame.record.tcp_flags for frame in report.frame_analyses] == [SYN, RST | ACK]
    elif name == "craft-udp-closed":
        assert seen == {"icmp": (3, 3)}
        assert report.frame_analyses[-1].protocol == "icmp" and report.frame_analyses[-1].stream == 0
    elif name == "craft-simultaneous-open":
        assert seen == {"kernel": "connected"}
        flags = [frame.record.tcp_flags for frame in report.frame_analyses[:4]]
        assert flags == [SYN, SYN, SYN | ACK, SYN | ACK]
        assert "SYN-RECEIVED" in {frame.receiver_state for frame in report.frame_analyses}
