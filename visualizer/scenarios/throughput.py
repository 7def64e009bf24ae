"""The throughput experiment: one bulk transfer through the kernel on loopback, under chosen settings.

A client sends a known number of bytes to a server in the experiment's private network
namespace (:func:`visualizer.scenarios.runner.run_defined`: the namespace, its ``lo``
settings and qdiscs vanish with it, also on an error or Ctrl-C), while every packet is
sniffed once and the kernel's events are recorded beside the capture. The settings:

* ``rate``: a token-bucket filter on the namespace's ``lo`` (``tc qdisc ... tbf rate R burst B
  latency L``) for the frames to the server (an htb root and a u32 filter on the port sort them;
  the ACKs coming back pass unlimited, as on a path whose return direction is free). It meters
  whole frames, link header included: the goodput is the rate less the headers' share
  (1448 of 1514 bytes: 95.6%).
* ``receive_buffer``: the server's ``SO_RCVBUF`` (the kernel doubles it for its bookkeeping;
  the window it advertises is bounded by it).
* ``congestion_control``: the namespace's ``net.ipv4.tcp_congestion_control`` (``reno``,
  ``cubic``, ``bbr``...); by default the host's, which a new namespace inherits. ``reno`` is
  RFC 5681's algorithm (slow start, ssthresh = half the flight on a loss, congestion avoidance);
  ``bbr`` paces to a model of the path and sets no ssthresh on a loss.
* ``delay_ms``: a propagation delay on the path's return direction, the server's segments held
  that long before they reach the client (:mod:`visualizer.scenarios.delay`: an eBPF filter and a
  delay line, since this kernel has no netem); the round-trip time is the delay, and the capture,
  taken where the client sends, sees all of it between a segment and its ACK.
* The path: the namespace's ``lo`` gets an Ethernet-like MTU (1500) and its offloads off, so
  every segment on the wire is at most one MSS, as on a real link (the qdisc then meters
  the frames the capture shows).

The server reads as fast as it can and notes, after each ``recv``, the time and the bytes it has
read so far: the application's view of the throughput, beside the capture's (bytes acknowledged,
:mod:`visualizer.analysis.throughput`) and the kernel's (its congestion window, ``tcp_probe``).

Loopback only, inside the namespace; a run lasts about ``seconds`` (the size is the rate times it).
"""

from __future__ import annotations

import math
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from visualizer.errors import UsageError
from visualizer.scenarios import OFFLOADS_OFF, Scenario
from visualizer.scenarios.delay import LONGEST_DELAY_MS, delayed
from visualizer.scenarios.kernel import TIMEOUT, connect, finish, listen, serve
from visualizer.scenarios.runner import ScenarioResult, run_defined
from visualizer.sources.live import require_root

PORT = 8093
MTU = 1500
"""The namespace's ``lo`` MTU during the experiment: Ethernet's, so segments are at most 1448 bytes
of payload with timestamps (RFC 7323), and the rate limit meters frames of at most 1514 bytes."""
FRAME_OVERHEAD = 14
"""The link header the loopback device adds to each IP packet (Ethernet's, on ``lo``)."""
CHUNK = 65536
"""Bytes per ``send`` and most bytes per ``recv``."""
DEFAULT_SECONDS = 3.0
UNLIMITED_SIZE = 16 * 1024 * 1024
"""Bytes sent when no rate limits the path (it then takes a fraction of a second)."""
UNSHAPED = "100gbit"
"""The rate of the htb classes that only sort frames (far above what loopback carries here)."""
LONGEST_RUN = 30.0
"""Seconds: settings that would make a run longer than this are refused."""
QUEUE_SHARE = 2.0
"""The default tbf queue holds this many times the bytes sent: the rate limit alone shapes the
transfer, nothing is dropped (a shorter ``latency_ms`` makes a queue that overflows: losses,
retransmissions, and the congestion window cut)."""

_UNITS = {"bit": 1, "kbit": 1000, "mbit": 1000**2, "gbit": 1000**3, "bps": 8, "kbps": 8000, "mbps": 8 * 1000**2}


def parse_rate(text: str) -> int:
    """A rate as tc writes it (``4mbit``, ``500kbit``, ``1gbit``, ``64kbps``; kilo is 1000) in bits per second."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", text.lower())
    if match is None or match.group(2) not in _UNITS or float(match.group(1)) <= 0:
        raise UsageError(f"rate {text!r}: write it as tc does, e.g. 4mbit, 500kbit, 1gbit or 64kbps")
    return round(float(match.group(1)) * _UNITS[match.group(2)])


def format_rate(bits_per_second: float) -> str:
    """``4 Mbit/s``, ``512 kbit/s``, ``1.5 Gbit/s``: three significant figures at most."""
    for unit, size in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bits_per_second >= size:
            return f"{bits_per_second / size:.3g} {unit}"
    return f"{bits_per_second:.3g} bit/s"


@dataclass(frozen=True, slots=True)
class ThroughputSettings:
    """What one run of the experiment sets; the rest is the kernel's default."""

    rate: int | None = None
    """Bits per second of the tbf rate limit on the path; None: no limit."""
    receive_buffer: int | None = None
    """The server's ``SO_RCVBUF`` in bytes (the kernel doubles it); None: the kernel's autotuning."""
    seconds: float = DEFAULT_SECONDS
    """About how long the transfer lasts under a rate limit: it sends rate / 8 * seconds bytes."""
    size: int | None = None
    """Bytes to send; None: rate / 8 * seconds under a limit, :data:`UNLIMITED_SIZE` without."""
    burst: int | None = None
    """tbf's bucket in bytes; None: a few full frames, and at least 10 ms at the rate."""
    latency_ms: int | None = None
    """tbf's queue, as the longest time a frame may wait in it; None: long enough to hold twice the
    bytes sent (:data:`QUEUE_SHARE`), so no frame is dropped."""
    congestion_control: str | None = None
    """The congestion control algorithm of the namespace's sockets (its ``tcp_congestion_control``
    sysctl); None: the host's default."""
    delay_ms: int | None = None
    """Milliseconds the server's segments are held on their way back (the round-trip time); None: none."""

    def __post_init__(self) -> None:
        if self.congestion_control is not None and not re.fullmatch(r"[a-z][a-z0-9_]*", self.congestion_control):
            raise UsageError(f"congestion control {self.congestion_control!r}: a kernel algorithm's name, e.g. reno")
        if self.rate is not None and self.rate < 8000:
            raise UsageError(f"rate {self.rate} bit/s: at least 8kbit, or a run would take minutes")
        if self.receive_buffer is not None and not 1024 <= self.receive_buffer <= 1 << 30:
            raise UsageError(f"receive buffer {self.receive_buffer}: between 1024 bytes and 1 GiB")
        if self.delay_ms is not None and not 0 < self.delay_ms <= LONGEST_DELAY_MS:
            raise UsageError(f"delay {self.delay_ms} ms: more than 0 and at most {LONGEST_DELAY_MS} ms")
        if self.size is not None and self.size <= 0:
            raise UsageError(f"size {self.size}: a positive number of bytes")
        if self.rate is not None and self.bytes_to_send * 8 / self.rate > LONGEST_RUN:
            raise UsageError(
                f"{self.bytes_to_send} bytes at {format_rate(self.rate)} take more than {LONGEST_RUN:.0f} s: "
                "send fewer bytes or raise the rate"
            )

    @property
    def bytes_to_send(self) -> int:
        if self.size is not None:
            return self.size
        if self.rate is None:
            return UNLIMITED_SIZE
        return max(CHUNK, round(self.rate / 8 * self.seconds))

    @property
    def bucket(self) -> int:
        """tbf's burst in bytes: the one given, else 4 full frames and at least 10 ms at the rate."""
        if self.burst is not None:
            return self.burst
        return max(4 * (MTU + FRAME_OVERHEAD), (self.rate or 0) // 800)

    @property
    def label(self) -> str:
        """The settings as a short line: ``rate 4 Mbit/s, SO_RCVBUF 8192``; ``no limit`` when nothing is set."""
        parts = []
        if self.rate is not None:
            parts.append(f"rate {format_rate(self.rate)}")
        if self.receive_buffer is not None:
            parts.append(f"SO_RCVBUF {self.receive_buffer}")
        if self.delay_ms is not None:
            parts.append(f"RTT +{self.delay_ms} ms")
        if self.congestion_control is not None:
            parts.append(self.congestion_control)
        return ", ".join(parts) or "no limit, default buffers"

    @property
    def name(self) -> str:
        """A file name stem: ``throughput-rate-4mbit-rcvbuf-8192``, ``throughput-rate-8mbit-queue-20ms-reno``."""
        parts = ["throughput"]
        if self.rate is not None:
            parts.append(f"rate-{_rate_stem(self.rate)}")
        if self.receive_buffer is not None:
            parts.append(f"rcvbuf-{self.receive_buffer}")
        if self.rate is not None and self.latency_ms is not None:
            parts.append(f"queue-{self.latency_ms}ms")
        if self.delay_ms is not None:
            parts.append(f"delay-{self.delay_ms}ms")
        if self.congestion_control is not None:
            parts.append(self.congestion_control)
        return "-".join(parts)

    @property
    def queue_ms(self) -> int:
        """tbf's latency in milliseconds: the one given, else the time :data:`QUEUE_SHARE` times the bytes take."""
        if self.latency_ms is not None:
            return self.latency_ms
        return math.ceil(QUEUE_SHARE * self.bytes_to_send * 8 / (self.rate or 1) * 1000)

    def setup(self) -> tuple[tuple[str, ...], ...]:
        """The commands that prepare the namespace's ``lo`` (run there, vanishing with it)."""
        commands: list[tuple[str, ...]] = [("ip", "link", "set", "lo", "mtu", str(MTU)), OFFLOADS_OFF]
        if self.congestion_control is not None:  # the namespace's own sysctl: it vanishes with it
            commands.append(("sysctl", "-q", "-w", f"net.ipv4.tcp_congestion_control={self.congestion_control}"))
        if self.rate is not None:
            # htb only sorts: the data (to the server's port) into class 1:1, whose tbf limits the rate;
            # everything else (the ACKs) into 1:2, unlimited, as on a path whose return direction is free.
            tc = ("tc",)
            commands += [
                (*tc, "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "2"),
                (*tc, "class", "add", "dev", "lo", "parent", "1:", "classid", "1:1", "htb", "rate", UNSHAPED),
                (*tc, "class", "add", "dev", "lo", "parent", "1:", "classid", "1:2", "htb", "rate", UNSHAPED),
                (*tc, "qdisc", "add", "dev", "lo", "parent", "1:1", "handle", "10:", "tbf", "rate", f"{self.rate}bit")
                + ("burst", str(self.bucket), "latency", f"{self.queue_ms}ms"),
                (*tc, "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1", "u32")
                + ("match", "ip", "dport", str(PORT), "0xffff", "flowid", "1:1"),
            ]
        return tuple(commands)


def _rate_stem(bits_per_second: int) -> str:
    for unit, size in (("gbit", 1000**3), ("mbit", 1000**2), ("kbit", 1000)):
        if bits_per_second % size == 0:
            return f"{bits_per_second // size}{unit}"
    return f"{bits_per_second}bit"


@dataclass(slots=True)
class ThroughputRun:
    """One run: its settings, its capture (and kernel events), and what the programs saw."""

    settings: ThroughputSettings
    result: ScenarioResult
    sent: int
    """Bytes the client handed to ``send``."""
    started_ns: int
    """When the client began to send (CLOCK_REALTIME, the capture's clock)."""
    reads: list[tuple[int, int]] = field(default_factory=list)
    """After each of the server's ``recv`` calls: (time, bytes read so far)."""

    @property
    def pcap(self) -> Path:
        return self.result.pcap

    @property
    def read(self) -> int:
        """Bytes the server read."""
        return self.reads[-1][1] if self.reads else 0


def transfer(settings: ThroughputSettings) -> dict[str, object]:
    """The run itself, inside the namespace: the client sends, the server reads and notes its progress."""
    size = settings.bytes_to_send
    reads: list[tuple[int, int]] = []
    all_read = threading.Event()

    def server(connection: socket.socket) -> None:
        total = 0
        while chunk := connection.recv(CHUNK):
            total += len(chunk)
            reads.append((time.time_ns(), total))
            if total >= size:
                all_read.set()

    thread = serve(listen(PORT, receive_buffer=settings.receive_buffer), server)
    block = bytes(range(256)) * (CHUNK // 256)
    sent = 0
    with connect(PORT) as client:
        started = time.time_ns()
        while sent < size:
            count = min(CHUNK, size - sent)
            client.sendall(block[:count])
            sent += count
        # Close only once everything was read: a closed socket leaves ESTABLISHED (FIN-WAIT-1) with
        # its last bytes still queued, and the kernel's tcp_probe samples only established sockets,
        # so the sender's congestion window would go unseen for the end of the transfer.
        all_read.wait(TIMEOUT)
    finish(thread)
    return {"sent": sent, "started_ns": started, "reads": reads}


def run_throughput(
    settings: ThroughputSettings, out: Path, *, name: str | None = None, kernel: bool = True
) -> ThroughputRun:
    """Run the experiment once under ``settings``: ``out/NAME.pcap`` and ``out/NAME.kernel.jsonl``.

    NAME is ``settings.name`` unless given. Needs root (a network namespace, a qdisc, sniffing).
    """
    require_root("throughput")

    def run() -> dict[str, object]:
        with delayed(settings.delay_ms, PORT):
            return transfer(settings)

    run.__doc__ = f"A bulk transfer of {settings.bytes_to_send} bytes; {settings.label}."
    result = run_defined(Scenario(name or settings.name, run, settings.setup()), out, kernel=kernel)
    observed = result.observations
    reads = [(int(time_ns), int(total)) for time_ns, total in observed["reads"]]  # type: ignore[attr-defined]
    return ThroughputRun(settings, result, int(observed["sent"]), int(observed["started_ns"]), reads)  # type: ignore[call-overload]
