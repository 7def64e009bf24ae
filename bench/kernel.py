"""Kernel-event recording benchmark: a bulk transfer's throughput with and without it.

Usage: sudo python bench/kernel.py [--megabytes 30] [--rounds 20]

The ``bulk`` scenario's conditions, made larger so that time can be measured: in a private
network namespace (offloads off, MSS 1000 as in ``sockstory run bulk``), while the sniffer
captures every packet, a client sends ``--megabytes`` to a server that reads to the end. Each
round runs the transfer twice, with the kernel events recorded (as every scenario does by
default) and without, in alternating order; the throughput is the bytes over the time from the
connect to the server's last read. A shared two-CPU machine's throughput varies by 10-20% from
one run to the next, so many short rounds are run and their medians compared. Prints each run
(with the CPU time the recorder process used while it recorded: the rest of the cost is the
kernel's, per event), then the median and the best of each kind, their ratios, the kernel events
recorded and lost, and the packets the capture dropped.

A 30 MB transfer makes about 3 MB of events on the busiest CPU, less than the quarter of its ring
at which the recorder reads while recording (``READ_FILL``): its events are read after the
transfer. ``--megabytes 300`` measures a transfer long enough to be read while it runs.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from visualizer.scenarios import OFFLOADS_OFF  # noqa: E402
from visualizer.scenarios.kernel import BULK_MSS, HOST  # noqa: E402
from visualizer.scenarios.namespace import in_private_namespace, run_command  # noqa: E402
from visualizer.sources.kernel import KernelRecorder  # noqa: E402
from visualizer.sources.live import Sniffer, require_root  # noqa: E402

PORT = 8096


def _transfer(size: int) -> float:
    """Seconds from connect to the server's last byte read."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((HOST, PORT))
    server.listen(1)
    done = threading.Event()

    def serve() -> None:
        connection, _ = server.accept()
        with connection:
            while connection.recv(1 << 20):
                pass
        done.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    payload = bytes(range(256)) * (1 << 12)  # 1 MiB
    started = time.perf_counter()
    with socket.socket() as client:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, BULK_MSS)  # before the SYN, as the scenario
        client.connect((HOST, PORT))
        for _ in range(size // len(payload)):
            client.sendall(payload)
    done.wait(120)
    elapsed = time.perf_counter() - started
    thread.join(5)
    server.close()
    return elapsed


def _run(size: int, kernel: bool, folder: Path) -> dict[str, float]:
    """One transfer in a fresh namespace, captured, with or without the kernel events."""
    run_command(*OFFLOADS_OFF)
    recorder = KernelRecorder(folder / "bulk.kernel.jsonl", pids=[os.getpid()]) if kernel else None
    if recorder is not None:
        recorder.start()
    sniffer = Sniffer("lo")
    sniffer.start()
    try:
        elapsed = _transfer(size)
    finally:
        captured = sniffer.stop(linger=0.2)
        recording = recorder.stop() if recorder is not None else None
    return {
        "seconds": elapsed,
        "megabytes_per_second": size / elapsed / 1e6,
        "frames": len(captured.frames),
        "packet_drops": captured.kernel_drops,
        "events": recording.events_read if recording else 0,
        "lost_events": recording.lost_events if recording else 0,
        "reading_ms": recording.reading_cpu_ns / 1e6 if recording else 0,
        "missing": bool(recording and recording.missing),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=20)
    arguments = parser.parse_args()
    require_root("bench/kernel.py")
    size = arguments.megabytes * (1 << 20)
    results: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as folder:
        print(
            f"{'kernel events':>13} {'MB/s':>8} {'seconds':>8} {'frames':>9} {'drops':>6} {'events':>10} "
            f"{'lost':>5} {'reader ms':>9}"
        )
        for round_number in range(arguments.rounds):
            order = (True, False) if round_number % 2 == 0 else (False, True)
            for kernel in order:
                result = in_private_namespace(lambda kernel=kernel: _run(size, kernel, Path(folder)), name="bench")
                if result["missing"]:
                    raise SystemExit("kernel events could not be recorded here")
                results[kernel].append(result)
                print(
                    f"{'recorded' if kernel else 'off':>13} {result['megabytes_per_second']:8.1f} "
                    f"{result['seconds']:8.3f} {result['frames']:9,.0f} {result['packet_drops']:6.0f} "
                    f"{result['events']:10,.0f} {result['lost_events']:5.0f} {result['reading_ms']:9.1f}"
                )
    on = [result["megabytes_per_second"] for result in results[True]]
    off = [result["megabytes_per_second"] for result in results[False]]
    lost = sum(result["lost_events"] for result in results[True])
    drops = sum(result["packet_drops"] for results_of in results.values() for result in results_of)
    events = statistics.median(result["events"] for result in results[True])
    reading = statistics.median(result["reading_ms"] for result in results[True])
    print(
        f"\nmedian: {statistics.median(on):.1f} MB/s with kernel events, {statistics.median(off):.1f} MB/s without: "
        f"{statistics.median(on) / statistics.median(off):.0%} of the throughput"
        f"\nbest:   {max(on):.1f} MB/s with kernel events, {max(off):.1f} MB/s without: {max(on) / max(off):.0%}"
        f"\n{events:,.0f} kernel events recorded a run (median), {lost:.0f} lost; {drops:.0f} packets dropped"
        f"\nthe recorder process used {reading:.1f} ms of CPU while recording a run (median)"
    )


if __name__ == "__main__":
    main()
