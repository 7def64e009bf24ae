"""Live capture: the filter holds from the first frame on; a bad filter is one line and writes nothing."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from visualizer.cli import EXIT_USAGE, main
from visualizer.errors import CaptureFilterError, UsageError
from visualizer.scenarios.namespace import in_private_namespace
from visualizer.sources.live import BPF_RET_K, DROP_ALL, Sniffer, compile_filter

ROOT = Path(__file__).parent.parent.parent
WANTED_PORT = 9998
OTHER_PORT = 9997


def test_the_drop_all_filter_is_one_return_zero_instruction() -> None:
    assert len(DROP_ALL) == 1
    instruction = DROP_ALL._instructions[0]
    assert (instruction.code, instruction.jt, instruction.jf, instruction.k) == (BPF_RET_K, 0, 0, 0)


def test_a_filter_compiles_without_root_or_interface() -> None:
    compiled = compile_filter(f"udp port {WANTED_PORT}")
    assert len(compiled) > 1
    assert compiled.expression == f"udp port {WANTED_PORT}"


@pytest.mark.parametrize(
    ("expression", "reason"), [("udp prt 9998", "syntax error"), ("tcp port 99999", "illegal port number")]
)
def test_a_bad_filter_is_a_usage_error_naming_the_expression(expression: str, reason: str) -> None:
    with pytest.raises(CaptureFilterError) as caught:
        Sniffer("lo", bpf=expression)
    assert isinstance(caught.value, UsageError)
    assert repr(expression) in str(caught.value) and reason in str(caught.value)


def test_capture_with_a_bad_filter_prints_one_line_and_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "never.pcap"
    err = io.StringIO()
    assert main(["capture", "--filter", "udp prt 9998", "-o", str(target)], stdout=io.StringIO(), stderr=err) == 2
    (line,) = err.getvalue().splitlines()
    assert line == "sockstory: error: bad capture filter 'udp prt 9998': can't parse filter expression: syntax error"
    assert list(tmp_path.iterdir()) == []


def test_capture_command_with_a_bad_filter_has_no_traceback(tmp_path: Path) -> None:
    target = tmp_path / "never.pcap"
    process = subprocess.run(
        [sys.executable, "-m", "visualizer", "capture", "--filter", "port", "--duration", "1", "-o", str(target)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert process.returncode == EXIT_USAGE
    assert "Traceback" not in process.stderr
    (line,) = process.stderr.splitlines()
    assert line.startswith("sockstory: error: bad capture filter 'port': ")
    assert process.stdout == ""
    assert list(tmp_path.iterdir()) == []


def _ports_seen_while_other_traffic_flows(starts: int) -> list[list[int]]:
    """In a private namespace: UDP to OTHER_PORT without pause; start a sniffer filtered on WANTED_PORT
    ``starts`` times, send two datagrams to WANTED_PORT each time; the UDP ports of every frame captured."""
    stop = threading.Event()
    other_sent = [0]

    def flood() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            while not stop.is_set():
                sender.sendto(b"other", ("127.0.0.1", OTHER_PORT))
                other_sent[0] += 1

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    seen: list[list[int]] = []
    try:
        while other_sent[0] < 1000:  # the flood is flowing before the first sniffer starts
            pass
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for _ in range(starts):
                sniffer = Sniffer("lo", bpf=f"udp port {WANTED_PORT}")
                sniffer.start()
                sender.sendto(b"ping", ("127.0.0.1", WANTED_PORT))
                sender.sendto(b"ping", ("127.0.0.1", WANTED_PORT))
                result = sniffer.stop(linger=0.05)
                ports = []
                for _, data in result.frames:
                    header = (data[14] & 0x0F) * 4  # Ethernet (lo), then IPv4 without options
                    ports.append(int.from_bytes(data[14 + header + 2 : 14 + header + 4], "big"))
                seen.append(ports)
    finally:
        stop.set()
        thread.join()
    return seen


@pytest.mark.root
def test_no_frame_of_another_port_is_captured_while_the_sniffer_starts() -> None:
    """The race of a filter attached after the socket receives (libpcap's drop-all, drain, filter fixes it)."""
    seen = in_private_namespace(lambda: _ports_seen_while_other_traffic_flows(starts=20))
    assert len(seen) == 20
    assert all(ports == [WANTED_PORT, WANTED_PORT] for ports in seen), seen
