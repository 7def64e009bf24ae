"""Ingest benchmark: sockstory's read + analyse speed and memory beside tshark and Scapy, in one run.

Usage: python bench/ingest.py [--capture FILE | --profile chatty|web] [--packets N] [--repeat R]
                              [--scapy-sample N] [--compare REV]

Without --capture it writes a synthetic capture of --packets packets (default
1,000,000) of the --profile workload (bench/synthetic.py: ``chatty``, the default,
is many short conversations, the costliest mix per packet for sockstory; ``web`` is
HTTPS-like downloads) into a temporary folder. Then it times, best of --repeat runs
each, on a warm page cache:

* sockstory: ``python -m visualizer flows -q FILE`` (read, decode, the full
  Wireshark-style TCP/UDP analysis, the conversation table);
* tshark: ``tshark -r FILE -q -z conv,tcp`` (when tshark is installed; says so when not);
* Scapy: ``PcapReader`` dissecting the first --scapy-sample packets (Scapy is far
  slower, so its rate is measured on a sample and the full time extrapolated);
* with --compare REV: the same sockstory command from git revision REV (extracted
  with ``git archive`` into the temporary folder), to compare two versions on one
  machine in one run.

The timed commands take turns (one run of each, --repeat times), so that a change
in the machine's load while the benchmark runs weighs on all of them alike.

Peak memory is the largest sum of the resident sizes of the command's processes,
sampled every 10 ms (sockstory uses one process per CPU on large files).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synthetic import PROFILES  # noqa: E402


def _tree_rss_kb(root: int) -> int:
    """Resident memory of a process and all its descendants, in kB.

    Reads only the tree's own /proc entries (its children from ``task/*/children``): a walk
    of every process took 4 ms of CPU per sample, a quarter of a CPU at one sample every
    10 ms, taken from the measured command when it keeps every CPU busy.
    """
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/statm") as statm:
                total += int(statm.read().split()[1]) * _PAGE_KB
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as children:
                    stack.extend(int(child) for child in children.read().split())
        except (OSError, ValueError):  # the process ended meanwhile
            continue
    return total


_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def measure(command: list[str], folder: Path | None = None) -> tuple[float, int]:
    """Wall time in seconds and peak resident memory (kB, summed over the process tree)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=folder)
    peak = 0
    while process.poll() is None:
        peak = max(peak, _tree_rss_kb(process.pid))
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    if process.returncode != 0:
        error = process.stderr.read().decode(errors="replace") if process.stderr else ""
        raise SystemExit(f"{command[0]} failed ({process.returncode}): {error.strip()[-500:]}")
    return elapsed, peak


def best_of_each(commands: list[tuple[list[str], Path | None]], repeat: int) -> list[tuple[float, int]]:
    """Best time and largest peak memory of each (command, working folder), running them in turns."""
    runs: list[list[tuple[float, int]]] = [[] for _ in commands]
    for _ in range(repeat):
        for index, (command, folder) in enumerate(commands):
            runs[index].append(measure(command, folder))
    return [(min(run[0] for run in done), max(run[1] for run in done)) for done in runs]


def extract_revision(revision: str, folder: Path) -> Path:
    """The source tree of git revision ``revision`` of this repository, extracted under ``folder``."""
    target = folder / f"sockstory-{revision}"
    target.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(Path(__file__).resolve().parent.parent), "archive", revision],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise SystemExit(f"--compare {revision}: {archive.stderr.decode(errors='replace').strip()}")
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def count_packets(path: Path) -> int:
    from visualizer.sources import CaptureReader

    reader = CaptureReader(path)
    if reader.format == "pcap":
        return sum(len(chunk.offsets) for chunk in reader.pcap_chunks())
    return sum(1 for _ in reader)


SCAPY_SAMPLE = """
import sys, time
from scapy.utils import PcapReader
limit = int(sys.argv[2])
start = time.perf_counter()
count = 0
for packet in PcapReader(sys.argv[1]):
    count += 1
    if count >= limit:
        break
print(count, time.perf_counter() - start)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--capture", type=Path, help="measure this capture instead of a synthetic one")
    parser.add_argument("--packets", type=int, default=1_000_000, help="packets in the synthetic capture")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="chatty", help="synthetic workload")
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool; the best is kept (default 3)")
    parser.add_argument("--scapy-sample", type=int, default=50_000, help="packets Scapy dissects (default 50000)")
    parser.add_argument("--compare", metavar="REV", help="also time sockstory as of this git revision")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sockstory-bench-") as folder:
        capture = arguments.capture
        if capture is None:
            capture = Path(folder) / f"synthetic-{arguments.profile}.pcap"
            print(f"writing a synthetic '{arguments.profile}' capture of {arguments.packets:,} packets ...", flush=True)
            PROFILES[arguments.profile](capture, arguments.packets)
        packets = count_packets(capture)
        size_mb = capture.stat().st_size / 1e6
        print(f"capture: {capture} ({packets:,} packets, {size_mb:.0f} MB); CPUs: {len(os.sched_getaffinity(0))}")
        with capture.open("rb") as handle:  # warm the page cache so every tool reads from memory
            while handle.read(1 << 24):
                pass

        rows: list[tuple[str, float, int, str]] = []
        here = Path(__file__).resolve().parent.parent
        flows = [sys.executable, "-m", "visualizer", "flows", "-q", str(capture.resolve())]
        commands: list[tuple[list[str], Path | None]] = [(flows, here)]
        tshark = shutil.which("tshark")
        if tshark:
            commands.append(([tshark, "-r", str(capture), "-q", "-z", "conv,tcp"], None))
        else:
            print("tshark is not installed (Debian package 'tshark'): no tshark comparison")
        if arguments.compare:
            commands.append((flows, extract_revision(arguments.compare, Path(folder))))
        results = best_of_each(commands, arguments.repeat)
        ours_seconds, ours_peak = results[0]
        rows.append(("sockstory flows (read + full analysis)", ours_seconds, ours_peak, "measured"))
        tshark_seconds = None
        if tshark:
            tshark_seconds, tshark_peak = results[1]
            rows.append(("tshark -q -z conv,tcp", tshark_seconds, tshark_peak, "measured"))
        if arguments.compare:
            rows.append((f"sockstory flows as of {arguments.compare}", *results[-1], "measured"))

        sample = min(arguments.scapy_sample, packets)
        result = subprocess.run(
            [sys.executable, "-c", SCAPY_SAMPLE, str(capture), str(sample)], capture_output=True, text=True, check=True
        )
        counted, scapy_sample_seconds = result.stdout.split()
        scapy_rate = int(counted) / float(scapy_sample_seconds)
        scapy_seconds = packets / scapy_rate
        rows.append((f"scapy PcapReader ({int(counted):,}-packet sample)", scapy_seconds, 0, "extrapolated"))

        print(f"\nbest of {arguments.repeat} runs; peak RSS summed over each command's processes\n")
        print(f"{'tool':44s} {'seconds':>9s} {'packets/s':>12s} {'peak RSS':>10s}")
        for name, seconds, peak, how in rows:
            memory = f"{peak / 1024:.0f} MB" if peak else "-"
            print(f"{name:44s} {seconds:9.2f} {packets / seconds:12,.0f} {memory:>10s}  {how}")
        ours_rate = packets / ours_seconds
        print()
        if tshark_seconds is not None:
            print(f"sockstory / tshark packets per second: {ours_rate / (packets / tshark_seconds):.2f}x")
            if arguments.compare:
                print(f"{arguments.compare} / tshark packets per second: {tshark_seconds / results[-1][0]:.2f}x")
        print(f"sockstory / scapy packets per second:  {ours_rate / scapy_rate:.1f}x")
        if arguments.compare:
            print(f"sockstory / {arguments.compare} packets per second: {results[-1][0] / ours_seconds:.2f}x")
        print(f"sockstory peak RSS: {ours_peak / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
