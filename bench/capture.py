"""Capture benchmark: packets sent vs captured, and kernel drops, for sockstory and tcpdump at once.

Usage: .venv/bin/python bench/capture.py [--rates 10000,50000,100000,150000,200000,300000] [--seconds 2]
as root (as a user, put sudo first: sudo searches its own secure_path, not .venv/bin).

In a private network namespace (made for the run and gone after it), a sender
paces 64-byte UDP datagrams to 127.0.0.1 at each rate while ``sockstory capture``
(the command, streaming to a file in a temporary folder) and tcpdump capture
``lo`` at the same time, both filtered on the port. Each packet should be
captured exactly once. Prints, per rate: the rate asked for and the rate the
sender reached, packets sent, frames in sockstory's file and tcpdump's count, and
each one's kernel drops (for sockstory also the frames a stop left unread in its ring).
"""

from __future__ import annotations

import argparse
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from visualizer.scenarios.namespace import die_with_parent, in_private_namespace  # noqa: E402
from visualizer.sources import CaptureReader  # noqa: E402
from visualizer.sources.live import require_root  # noqa: E402

PORT = 9999
FILTER = f"udp dst port {PORT}"


def _ours(folder: Path) -> tuple[subprocess.Popen[str], Path]:
    """``sockstory capture`` in its own process, once it says it captures."""
    target = folder / "ours.pcap"
    process = subprocess.Popen(
        [sys.executable, "-m", "visualizer", "capture", "--filter", FILTER, "--duration", "3600", "-o", str(target)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        preexec_fn=die_with_parent,
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    if not line.startswith("sockstory: capturing"):
        process.kill()
        raise SystemExit(f"sockstory capture did not start: {line}{process.communicate()[1]}")
    return process, target


def _send(rate: int, seconds: float) -> int:
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.connect(("127.0.0.1", PORT))  # send() without an address each time: the fastest Python can go
    payload = b"p" * 36
    total = int(rate * seconds)
    sent = 0
    start = time.perf_counter()
    send = sender.send
    while sent < total:
        due = min(total, int((time.perf_counter() - start) * rate) + 1)
        while sent < due:
            send(payload)
            sent += 1
    sender.close()
    return sent


def measure(rates: list[int], seconds: float) -> list[tuple[int, float, int, int, int, int, int, int]]:
    rows = []
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a listener, so no ICMP errors come back
    sink.bind(("127.0.0.1", PORT))
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
    with tempfile.TemporaryDirectory(prefix="sockstory-bench-") as folder:
        for rate in rates:
            tcpdump = subprocess.Popen(
                ["tcpdump", "-i", "lo", "-n", "-B", "32768", "-w", "/dev/null", FILTER],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                preexec_fn=die_with_parent,
            )
            assert tcpdump.stderr is not None
            tcpdump.stderr.readline()
            ours, target = _ours(Path(folder))
            time.sleep(0.2)
            started = time.perf_counter()
            sent = _send(rate, seconds)
            achieved = sent / (time.perf_counter() - started)
            time.sleep(0.5)
            ours.send_signal(signal.SIGINT)
            _, messages = ours.communicate(timeout=30)
            our_drops = re.search(r"the kernel dropped (\d+) packets", messages)
            unread = re.search(r"(\d+) frames were still in the ring", messages)
            with CaptureReader(target) as reader:
                frames = sum(1 for _ in reader)
            target.unlink()
            tcpdump.send_signal(signal.SIGINT)
            _, report = tcpdump.communicate(timeout=10)
            captured = int(re.search(r"(\d+) packets? captured", report).group(1))  # type: ignore[union-attr]
            dropped = int(re.search(r"(\d+) packets? dropped by kernel", report).group(1))  # type: ignore[union-attr]
            drops = int(our_drops.group(1)) if our_drops else 0
            left = int(unread.group(1)) if unread else 0
            rows.append((rate, achieved, sent, frames, drops, left, captured, dropped))
    sink.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--rates", default="10000,50000,100000,150000,200000,300000", help="packets per second, comma-separated"
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per rate (default 2)")
    arguments = parser.parse_args()
    require_root("bench/capture.py")
    rates = [int(rate) for rate in arguments.rates.split(",")]
    rows = in_private_namespace(lambda: measure(rates, arguments.seconds))
    columns = f"{'sent':>8} {'sockstory':>10} {'drops':>6} {'unread':>6} {'tcpdump':>8} {'drops':>6}"
    print(f"{'rate/s':>8} {'reached/s':>9} {columns}")
    for rate, achieved, sent, ours, our_drops, left, captured, dropped in rows:
        counts = f"{sent:8,} {ours:10,} {our_drops:6,} {left:6,} {captured:8,} {dropped:6,}"
        print(f"{rate:8,} {achieved:9,.0f} {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
