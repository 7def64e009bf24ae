"""Capture benchmark: packets sent vs captured, and kernel drops, for sockstory and tcpdump at once.

Usage: sudo python bench/capture.py [--rates 10000,50000,100000,150000] [--seconds 2]

In a private network namespace (made for the run and gone after it), a sender
paces 64-byte UDP datagrams to 127.0.0.1 at each rate while sockstory's sniffer
(its own process) and tcpdump capture ``lo`` at the same time. Each packet
should be captured exactly once. Prints, per rate: sent, captured by each, and
the kernel's drop counters.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from visualizer.scenarios.namespace import die_with_parent, in_private_namespace  # noqa: E402
from visualizer.sources.live import Sniffer, require_root  # noqa: E402

PORT = 9999


def _our_sniffer(ready: int, results: int) -> None:
    """The sniffer process: capture until SIGTERM, then report (frames, kernel drops)."""
    die_with_parent()
    sniffer = Sniffer("lo")
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    sniffer.start()
    os.write(ready, b"1")
    while not stop:
        time.sleep(0.05)
    result = sniffer.stop(linger=0.0)
    frames = sum(1 for _, data in result.frames if len(data) >= 38 and data[36:38] == PORT.to_bytes(2, "big"))
    os.write(results, f"{frames} {result.kernel_drops}".encode())


def _send(rate: int, seconds: float) -> int:
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    payload = b"p" * 36
    total = int(rate * seconds)
    sent = 0
    start = time.perf_counter()
    send = sender.sendto
    target = ("127.0.0.1", PORT)
    while sent < total:
        due = min(total, int((time.perf_counter() - start) * rate) + 1)
        while sent < due:
            send(payload, target)
            sent += 1
    return sent


def measure(rates: list[int], seconds: float) -> list[tuple[int, int, int, int, int, int]]:
    rows = []
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a listener, so no ICMP errors come back
    sink.bind(("127.0.0.1", PORT))
    for rate in rates:
        tcpdump = subprocess.Popen(
            ["tcpdump", "-i", "lo", "-n", "-B", "32768", "-w", "/dev/null", f"udp dst port {PORT}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=die_with_parent,
        )
        assert tcpdump.stderr is not None
        tcpdump.stderr.readline()
        ready_read, ready_write = os.pipe()
        results_read, results_write = os.pipe()
        child = os.fork()
        if child == 0:
            try:
                _our_sniffer(ready_write, results_write)
            finally:
                os._exit(0)
        os.read(ready_read, 1)
        time.sleep(0.2)
        sent = _send(rate, seconds)
        time.sleep(0.5)
        os.kill(child, signal.SIGTERM)
        ours, our_drops = map(int, os.read(results_read, 100).split())
        os.waitpid(child, 0)
        tcpdump.send_signal(signal.SIGINT)
        _, report = tcpdump.communicate(timeout=10)
        captured = int(re.search(r"(\d+) packets? captured", report).group(1))  # type: ignore[union-attr]
        dropped = int(re.search(r"(\d+) packets? dropped by kernel", report).group(1))  # type: ignore[union-attr]
        rows.append((rate, sent, ours, our_drops, captured, dropped))
        for descriptor in (ready_read, ready_write, results_read, results_write):
            os.close(descriptor)
    sink.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="10000,50000,100000,150000", help="packets per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per rate (default 2)")
    arguments = parser.parse_args()
    require_root("bench/capture.py")
    rates = [int(rate) for rate in arguments.rates.split(",")]
    rows = in_private_namespace(lambda: measure(rates, arguments.seconds))
    header = f"{'rate/s':>8} {'sent':>8} {'sockstory':>10} {'drops':>6} {'tcpdump':>8} {'drops':>6}"
    print(header + "  lost (ours, tcpdump)")
    for rate, sent, ours, our_drops, captured, dropped in rows:
        counts = f"{rate:8,} {sent:8,} {ours:10,} {our_drops:6,} {captured:8,} {dropped:6,}"
        print(f"{counts}  {sent - ours}, {sent - captured}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
