"""A propagation delay without netem (root): the server's segments held on their way back, then nothing left."""

from __future__ import annotations

import socket
import time

import pytest

from tests.scenarios.test_scenarios import host_state
from visualizer.errors import SockstoryError, UsageError
from visualizer.scenarios.delay import DelayLine
from visualizer.scenarios.namespace import in_private_namespace
from visualizer.scenarios.throughput import ThroughputSettings

PORT = 8093


def test_a_delay_is_a_setting_with_its_own_name() -> None:
    settings = ThroughputSettings(receive_buffer=4096, delay_ms=20)
    assert settings.name == "throughput-rcvbuf-4096-delay-20ms" and settings.label == "SO_RCVBUF 4096, RTT +20 ms"
    with pytest.raises(UsageError, match="delay 0 ms"):
        ThroughputSettings(delay_ms=0)
    with pytest.raises(SockstoryError, match="delay 5000 ms"):
        DelayLine(5000, PORT)


def _connect_times() -> tuple[float, float, float, float]:
    """Median seconds a connect takes (a SYN, the server's SYN-ACK): before, with a 20 ms delay on the
    server's port, on another port meanwhile, and after the delay line is gone."""
    servers = {port: socket.create_server(("127.0.0.1", port)) for port in (PORT, PORT + 1)}

    def connect_time(port: int) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                times.append(time.perf_counter() - started)
            servers[port].accept()[0].close()
        return sorted(times)[2]

    before = connect_time(PORT)
    with DelayLine(20, PORT):
        delayed, other = connect_time(PORT), connect_time(PORT + 1)
    return before, delayed, other, connect_time(PORT)


@pytest.mark.root
def test_the_server_s_segments_are_held_and_nothing_remains() -> None:
    host = host_state()
    before, delayed, other, after = in_private_namespace(_connect_times)
    assert 0.020 <= delayed < 0.030  # the SYN-ACK held 20 ms: the handshake's round trip
    assert max(before, other, after) < 0.005  # other ports pass, and the filter goes with the line
    assert host_state() == host
