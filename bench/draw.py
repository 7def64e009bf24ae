"""Drawing benchmark: ``sockstory draw`` of one stream of a large capture against ``sockstory flows``.

Usage: python bench/draw.py [--capture FILE] [--packets N] [--profile chatty|web] [--repeat R]

Writes (or takes) the capture, picks its busiest TCP stream, and times, best of
--repeat runs, ``sockstory flows -q FILE`` and ``sockstory draw FILE --stream N -o
OUT.svg``; prints the ratio of the two times and the size of the SVG (folding and
paging keep it small however long the stream).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import PROFILES  # noqa: E402


def best_of(command: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--capture", type=Path)
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="chatty")
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sockstory-draw-") as folder:
        capture = arguments.capture
        if capture is None:
            capture = Path(folder) / f"synthetic-{arguments.profile}.pcap"
            print(f"writing a synthetic '{arguments.profile}' capture of {arguments.packets:,} packets ...", flush=True)
            PROFILES[arguments.profile](capture, arguments.packets)
        flows = subprocess.run(
            [sys.executable, "-m", "visualizer", "flows", "-q", "--format", "json", str(capture)],
            check=True,
            capture_output=True,
            text=True,
        )
        tcp = [row for row in json.loads(flows.stdout) if row["protocol"] == "tcp"]
        busiest = max(tcp, key=lambda row: row["frames"])
        stream = busiest["stream"]
        print(f"capture: {capture}; busiest TCP stream {stream} ({busiest['frames']:,} frames)")
        output = Path(folder) / "ladder.svg"
        flows_seconds = best_of([sys.executable, "-m", "visualizer", "flows", "-q", str(capture)], arguments.repeat)
        draw_seconds = best_of(
            [
                sys.executable,
                "-m",
                "visualizer",
                "draw",
                "-q",
                str(capture),
                "--stream",
                str(stream),
                "-o",
                str(output),
            ],
            arguments.repeat,
        )
        pages = sorted(Path(folder).glob("ladder*.svg"))
        size = sum(page.stat().st_size for page in pages)
        print(f"\nbest of {arguments.repeat} runs")
        print(f"sockstory flows:                  {flows_seconds:6.2f} s")
        drawn = f"{len(pages)} page(s), {size / 1e6:.2f} MB"
        print(f"sockstory draw --stream {stream} (SVG): {draw_seconds:6.2f} s  ({drawn})")
        print(f"draw / flows: {draw_seconds / flows_seconds:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
