"""The throughput experiment for real (root): a rate limit measured, a receive window as the bound, cwnd."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.scenarios.test_scenarios import host_state
from visualizer.analysis.throughput import (
    acknowledged,
    advertised_window,
    data_direction,
    in_flight,
    on_the_wire,
    progress_of,
    steady_rate,
)
from visualizer.cli import main
from visualizer.errors import UsageError
from visualizer.pipeline import kernel_story, measure_runs, select_streams
from visualizer.scenarios.throughput import PORT, ThroughputSettings, parse_rate, run_throughput

RATE = 4_000_000
SMALL_BUFFER = 4096


def test_settings_are_checked_and_named() -> None:
    assert parse_rate("4mbit") == 4_000_000 and parse_rate("500kbit") == 500_000 and parse_rate("1kbps") == 8000
    with pytest.raises(UsageError, match="'4 furlongs'"):
        parse_rate("4 furlongs")
    settings = ThroughputSettings(rate=RATE, receive_buffer=SMALL_BUFFER, seconds=3)
    assert settings.bytes_to_send == 1_500_000 and settings.name == "throughput-rate-4mbit-rcvbuf-4096"
    assert settings.label == "rate 4 Mbit/s, SO_RCVBUF 4096"
    assert settings.queue_ms == 6000  # holds twice the bytes: nothing dropped
    tbf = next(command for command in settings.setup() if "tbf" in command)
    assert tbf[tbf.index("rate") + 1] == "4000000bit" and int(tbf[tbf.index("burst") + 1]) >= 1514
    assert ThroughputSettings().bytes_to_send == 16 * 1024 * 1024 and not any(
        "tc" in command for command in ThroughputSettings().setup()
    )
    with pytest.raises(UsageError, match="more than 30 s"):
        ThroughputSettings(rate=100_000, seconds=60)


@pytest.mark.root
def test_a_rate_limit_is_the_throughput_measured(tmp_path: Path) -> None:
    """4 Mbit/s for 1.5 MB (3 s): the steady part (between 10% and 90% of the bytes acknowledged)
    carries 1448 payload bytes per 1514-byte frame the limit meters: goodput within 10% of the rate,
    from the capture and from the program's reads alike; the sender's frames themselves within 5%."""
    before = host_state()
    run = run_throughput(ThroughputSettings(rate=RATE, seconds=3), tmp_path)
    assert host_state() == before, "no qdisc, offload or namespace may remain"
    assert run.result.kernel_drops == 0 and run.sent == run.read == 1_500_000
    _, frames = select_streams(run.pcap, "tcp", ())
    direction = data_direction(frames)
    assert direction is not None and direction.receiver == ("127.0.0.1", PORT)
    goodput = steady_rate(acknowledged(frames, direction))
    application = steady_rate(progress_of([(run.started_ns, 0), *run.reads]))
    wire = steady_rate(on_the_wire(frames, direction.sender))
    assert goodput.bytes >= 1_000_000 and goodput.seconds > 1.5  # 80% of the bytes: a steady part, not a blip
    assert goodput.bits_per_second == pytest.approx(RATE, rel=0.1)
    assert application.bits_per_second == pytest.approx(RATE, rel=0.1)
    assert wire.bits_per_second == pytest.approx(RATE, rel=0.05)
    # the kernel's side: the sender's congestion window, from tcp_probe as it received the ACKs
    story = kernel_story(run.pcap, frames)
    assert story is not None
    sender = story.endpoint(0, *direction.sender)
    assert sender is not None and len(sender.probes) > 50
    assert all(probe.snd_cwnd >= 1 for probe in sender.probes)
    assert max(probe.snd_cwnd for probe in sender.probes) > 10  # it grew from the initial window (RFC 6928)


@pytest.mark.root
def test_a_small_receive_buffer_bounds_the_flight_and_the_throughput(tmp_path: Path) -> None:
    """No rate limit, a 20 ms path: with SO_RCVBUF 4096 the receiver never advertises more than its
    buffer, the sender never has more in flight than it, and the transfer is slower than with the
    kernel's autotuned buffer, whose flight goes far beyond (bounded by the congestion window instead).
    (On bare loopback a round trip is CPU time: the autotuned flight could stay at 64 KB, CI saw it.)"""
    size = 1024 * 1024
    small = run_throughput(ThroughputSettings(receive_buffer=SMALL_BUFFER, size=size, delay_ms=20), tmp_path)
    large = run_throughput(ThroughputSettings(size=size, delay_ms=20), tmp_path)
    flights, rates = [], []
    for run in (small, large):
        assert run.read == size
        _, frames = select_streams(run.pcap, "tcp", ())
        direction = data_direction(frames)
        assert direction is not None
        windows = advertised_window(frames, direction)
        flight = in_flight(frames, direction)
        for time_ns, count in flight:
            assert count <= [window for window_ns, window in windows if window_ns <= time_ns][-1]
        flights.append(max(count for _, count in flight))
        rates.append(steady_rate(acknowledged(frames, direction)).bits_per_second)
        if run is small:
            assert max(window for _, window in windows[1:]) <= 2 * SMALL_BUFFER  # the kernel doubles SO_RCVBUF
    assert flights[0] <= 2 * SMALL_BUFFER < 10 * 2 * SMALL_BUFFER < flights[1]
    assert rates[0] < rates[1]


@pytest.mark.root
def test_throughput_command_compares_runs_and_draws_them(tmp_path: Path) -> None:
    out = io.StringIO()
    arguments = ["throughput", "--rate", "2mbit", "--rate", "8mbit", "--seconds", "1", "--draw", "--out", str(tmp_path)]
    assert main(arguments, stdout=out, stderr=io.StringIO()) == 0
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == [
        "throughput-rate-2mbit.kernel.jsonl",
        "throughput-rate-2mbit.pcap",
        "throughput-rate-8mbit.kernel.jsonl",
        "throughput-rate-8mbit.pcap",
        "throughput.png",
    ]
    lines = [line for line in out.getvalue().splitlines() if line.startswith("  rate ")]
    assert [line.split(":")[0] for line in lines] == ["  rate 2 Mbit/s", "  rate 8 Mbit/s"]
    assert all("goodput" in line and "cwnd" in line for line in lines)
    measured = measure_runs(
        [("2", tmp_path / "throughput-rate-2mbit.pcap", 0), ("8", tmp_path / "throughput-rate-8mbit.pcap", 0)]
    )
    assert measured[0].steady.bits_per_second < measured[1].steady.bits_per_second
    assert all(run.congestion_window for run in measured)
    err = io.StringIO()
    assert (
        main(["throughput", "--rate", "2mbit", "--rate", "4mbit", "--rcvbuf", "4096", "--rcvbuf", "8192"], stderr=err)
        == 2
    )
    assert err.getvalue().startswith("sockstory: error: throughput: vary --rate or --rcvbuf, not both")


@pytest.mark.root
def test_interrupted_experiment_leaves_nothing_behind(tmp_path: Path) -> None:
    before = host_state()
    process = subprocess.Popen(
        [sys.executable, "-m", "visualizer", "throughput", "--rate", "1mbit", "--seconds", "8", "--out", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3.0)  # mid-transfer
    process.send_signal(signal.SIGINT)
    _, error = process.communicate(timeout=20)
    assert process.returncode != 0 and "Traceback" not in error
    time.sleep(0.2)
    assert host_state() == before, "no namespace, qdisc or offload change may remain"
    leftovers = subprocess.run(["pgrep", "-f", "visualizer throughput"], capture_output=True, text=True)
    assert leftovers.stdout.strip() == ""
