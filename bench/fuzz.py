"""Fuzz the reading commands with mutated captures: no traceback, no hang, bounded memory, one answer.

Usage:
    .venv/bin/python bench/fuzz.py --cases 20000 --seed N [--jobs 2] [--save DIR]

Each case mutates one committed capture (bit flips, header fields, truncations,
spliced blocks, link types) and runs one command (flows, events, draw as txt, png
or svg, anatomy) through ``visualizer.cli.main`` in a forked child, on the
small-file, bulk and parallel reading paths (see tests/fuzz/harness.py). Prints
a summary; exits 1 when a case failed, after writing each failing capture to
``--save`` (default: a new folder in /tmp) with the command that fails on it.
A failing capture worth keeping goes to tests/data/fuzz/, where
tests/fuzz/test_fuzz.py runs it on every command and path.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fuzz.harness import Result, cases, preload, run_case  # noqa: E402


def run_shard(seed: int, count: int, shard: int, shards: int, save: Path) -> list[Result]:
    preload()
    results = []
    with tempfile.TemporaryDirectory(prefix="sockstory-fuzz-") as folder:
        for case in cases(seed, count):
            if case.number % shards != shard:
                continue
            result = run_case(case, Path(folder))
            results.append(result)
            if result.failure:
                save.mkdir(parents=True, exist_ok=True)
                suffix = ".pcapng" if case.data[:4] == b"\x0a\x0d\x0d\x0a" else ".pcap"
                (save / f"seed{seed}-case{case.number}-{result.failure}{suffix}").write_bytes(case.data)
                (save / f"seed{seed}-case{case.number}-{result.failure}.txt").write_text(
                    f"command: {case.command}\nframe: {case.frame}\nfrom: {case.seed}\n"
                    f"mutations: {'; '.join(case.mutations)}\n\n{result.detail}\n"
                )
            for path in Path(folder).iterdir():  # keep the scratch folder small
                if path.is_file():
                    path.unlink()
    return results


def summary(results: list[Result], seconds: float) -> str:
    failures = Counter(result.failure for result in results if result.failure)
    commands = Counter(result.command for result in results)
    codes = Counter(code for result in results for code in result.exit_codes)
    peak = max((result.peak_bytes for result in results), default=0)
    slowest = max(results, key=lambda result: result.seconds, default=None)
    lines = [
        f"cases: {len(results):,} ({sum(result.runs for result in results):,} command runs) in {seconds:.0f} s",
        "commands: " + ", ".join(f"{name} {count:,}" for name, count in sorted(commands.items())),
        "exit codes: " + ", ".join(f"{code}: {count:,}" for code, count in sorted(codes.items())),
        f"tracebacks: {failures['traceback']}, hangs: {failures['hang']}, "
        f"path disagreements: {failures['disagreement']}, over the memory bound: {failures['memory']}",
        f"peak memory per case: {peak / 2**20:.0f} MB at most",
    ]
    if slowest is not None:
        lines.append(f"slowest case: {slowest.seconds:.1f} s (case {slowest.case}, {slowest.command})")
    for result in results:
        if result.failure:
            first = result.detail.strip().splitlines()[-1] if result.detail.strip() else ""
            lines.append(f"  case {result.case} {result.command}: {result.failure}: {first}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1000, help="number of cases (default 1000)")
    parser.add_argument("--seed", type=int, default=1, help="the campaign's seed (default 1)")
    parser.add_argument("--jobs", type=int, default=1, help="processes running cases at once (default 1)")
    parser.add_argument("--save", type=Path, help="folder for failing captures (default: a new one in /tmp)")
    parser.add_argument("--shard", help=argparse.SUPPRESS)  # "j/J": run cases j, j+J, ... and print JSON
    arguments = parser.parse_args()
    save = arguments.save or Path(tempfile.mkdtemp(prefix="sockstory-fuzz-failures-"))
    started = time.monotonic()
    if arguments.shard:
        shard, shards = (int(part) for part in arguments.shard.split("/"))
        results = run_shard(arguments.seed, arguments.cases, shard, shards, save)
        print(json.dumps([result.__dict__ for result in results]))
        return 0
    if arguments.jobs <= 1:
        results = run_shard(arguments.seed, arguments.cases, 0, 1, save)
    else:
        command = [sys.executable, __file__, "--cases", str(arguments.cases), "--seed", str(arguments.seed)]
        processes = [
            subprocess.Popen(
                [*command, "--save", str(save), "--shard", f"{shard}/{arguments.jobs}"],
                stdout=subprocess.PIPE,
                text=True,
            )
            for shard in range(arguments.jobs)
        ]
        results = []
        for process in processes:
            output, _ = process.communicate()
            results += [Result(**{**item, "exit_codes": tuple(item["exit_codes"])}) for item in json.loads(output)]
        results.sort(key=lambda result: result.case)
    print(summary(results, time.monotonic() - started))
    failed = any(result.failure for result in results)
    if failed:
        print(f"failing captures and their commands: {save}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
