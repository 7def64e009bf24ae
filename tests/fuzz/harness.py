"""Fuzzing the reading commands: mutated captures through ``visualizer.cli.main``, on every reading path.

A *case* is one mutated capture and one command (``flows``, ``events``, ``draw`` as
txt, png or svg, ``anatomy``). The command runs in-process through
``main([...], stdout=..., stderr=...)`` on the small-file path and, for the commands
whose result may depend on it, also on the bulk path (NumPy read buffers) and the
parallel path (worker processes), by lowering ``visualizer.pipeline``'s thresholds
to 0. Each case runs in a forked child process with a time limit. A case fails on:

* ``traceback``: an exception escaping ``main``, or an exit code outside {0, 1, 2, 3};
* ``hang``: no result within the time limit;
* ``memory``: a peak resident set (the child and the workers it forks) above the bound;
* ``disagreement``: another exit code, stdout or stderr on the bulk or parallel path
  than on the small-file path.

Mutations of the committed captures: bit flips, overwritten header fields (pcap file
and record headers, pcapng block lengths and packet blocks, interface link types,
IPv4/TCP/UDP header fields), truncations, spliced, repeated, dropped or swapped
records and blocks, link-type changes. Everything is drawn from one seeded
``random.Random``, so a seed and a case number give the same bytes on every machine.

``bench/fuzz.py`` is the command line; ``tests/fuzz/test_fuzz.py`` runs a small
seeded budget and every regression file in ``tests/data/fuzz``.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import random
import re
import resource
import select
import signal
import struct
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
SEED_FOLDERS = (
    ROOT / "captures",
    ROOT / "tests" / "data" / "corpus" / "captures",
    ROOT / "tests" / "data" / "scenarios" / "captures",
)
REGRESSIONS = ROOT / "tests" / "data" / "fuzz"

READING_PATHS = ("small", "bulk", "parallel")
EXIT_CODES = frozenset({0, 1, 2, 3})
MEMORY_LIMIT_BYTES = 300 * 1024 * 1024
"""Peak resident set allowed per case (the child process and its workers, each counted alone)."""
SEED_BYTES = 64 * 1024
"""Larger seed captures are cut to about this many bytes (at a record boundary) before mutation."""

COMMANDS: dict[str, tuple[tuple[str, ...], float, float]] = {
    # name: (arguments after FILE, weight, time limit in seconds)
    "flows": (("flows", "{file}"), 30, 20),
    "events": (("events", "{file}", "--format", "jsonl"), 25, 20),
    "draw-txt": (("draw", "{file}", "-o", "{out}/ladder.txt"), 25, 30),
    "draw-png": (("draw", "{file}", "-o", "{out}/ladder.png"), 3, 60),
    "draw-svg": (("draw", "{file}", "-o", "{out}/ladder.svg"), 3, 60),
    "anatomy": (("anatomy", "{file}", "--frame", "{frame}", "-o", "{out}/frame.png"), 4, 60),
}
"""Draw is slow (matplotlib): txt mostly, a sample of png and svg, every path for txt."""
PATHS_OF = {
    "flows": READING_PATHS,
    "events": READING_PATHS,
    "draw-txt": READING_PATHS,
    "draw-png": ("small",),
    "draw-svg": ("small",),
    "anatomy": ("small",),  # reads raw frames: no reading path to choose
}


# -- The structure of a capture, enough to mutate it where it matters -------------------------------


@dataclass
class Layout:
    """Where a capture's file header, records (pcap) or blocks (pcapng) and frames are."""

    format: str
    order: str
    units: list[tuple[int, int]] = field(default_factory=list)
    """(start, end) of each pcap record or pcapng block, in file order."""
    frames: list[int] = field(default_factory=list)
    """Where each packet's bytes start."""
    link_types: list[int] = field(default_factory=list)
    """Offsets of the link-type fields (pcap file header, pcapng interface blocks)."""


def layout_of(data: bytes) -> Layout:
    """Walk a capture's records or blocks as far as their lengths make sense."""
    if len(data) >= 4 and data[:4] == b"\x0a\x0d\x0d\x0a":
        order = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        result = Layout("pcapng", order)
        position = 0
        while position + 12 <= len(data):
            kind, length = struct.unpack_from(order + "II", data, position)
            if length < 12 or length % 4 or position + length > len(data):
                break
            result.units.append((position, position + length))
            if kind == 1:
                result.link_types.append(position + 8)
            elif kind == 6:
                result.frames.append(position + 28)
            elif kind == 3:
                result.frames.append(position + 12)
            position += length
        return result
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    result = Layout("pcap", order, link_types=[20])
    position = 24
    while position + 16 <= len(data):
        (captured,) = struct.unpack_from(order + "I", data, position + 8)
        if position + 16 + captured > len(data):
            break
        result.units.append((position, position + 16 + captured))
        result.frames.append(position + 16)
        position += 16 + captured
    return result


def cut_seed(data: bytes, limit: int = SEED_BYTES) -> bytes:
    """The start of a capture, whole records or blocks only, about ``limit`` bytes."""
    if len(data) <= limit:
        return data
    units = layout_of(data).units
    ends = [end for _, end in units if end <= limit]
    return data[: ends[-1]] if ends else data[:limit]


# -- Mutations ------------------------------------------------------------------------------------------

LINK_TYPES = (0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147, 65535)
INTERESTING_32 = (
    0,
    1,
    7,
    8,
    15,
    16,
    20,
    40,
    54,
    60,
    0x7F,
    0xFF,
    0xFFFF,
    0x10000,
    262_144,
    262_145,
    0x7FFFFFFF,
    0xFFFFFFFF,
)
INTERESTING_16 = (0, 1, 4, 5, 8, 19, 20, 21, 40, 0x2000, 0x3FFF, 0x4000, 0x7FFF, 0x8000, 0xFFFF, 0x0800, 0x86DD, 0x8100)
INTERESTING_8 = (0, 1, 0x40, 0x45, 0x46, 0x4F, 0x50, 0x60, 0x7F, 0x80, 0xFF, 6, 17, 1, 58, 44, 0x02, 0x12, 0x04, 0x11)
# Packet fields (offsets from an Ethernet frame's start) and their widths: ethertype, IPv4
# version/IHL, total length, identification, flags/fragment offset, protocol, addresses,
# ports, TCP seq/ack, data offset, flags, window, UDP length.
PACKET_FIELDS = (
    (12, 2),
    (14, 1),
    (16, 2),
    (18, 2),
    (20, 2),
    (23, 1),
    (26, 4),
    (30, 4),
    (34, 2),
    (36, 2),
    (38, 4),
    (42, 4),
    (46, 1),
    (47, 1),
    (48, 2),
    (38, 2),
    (0, 4),
    (4, 1),
)


def _put(data: bytearray, offset: int, width: int, value: int, order: str) -> None:
    if 0 <= offset and offset + width <= len(data):
        data[offset : offset + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(
            width, "little" if order == "<" else "big"
        )


def _value(rng: random.Random, width: int, current: int) -> int:
    table = {1: INTERESTING_8, 2: INTERESTING_16, 4: INTERESTING_32}[width]
    choice = rng.random()
    if choice < 0.5:
        return rng.choice(table)
    if choice < 0.75:
        return current + rng.choice((-1, 1, -8, 8, 16, -16, 1 << 15))
    return rng.getrandbits(8 * width)


def bit_flips(data: bytes, rng: random.Random, layout: Layout) -> tuple[bytes, str]:
    out = bytearray(data)
    if not out:
        return data, "no bits to flip"
    count = rng.choice((1, 1, 2, 3, 8))
    for _ in range(count):
        if layout.frames and rng.random() < 0.7:  # mostly in headers: the first bytes of frames
            position = rng.choice(layout.frames) + rng.randrange(64)
        else:
            position = rng.randrange(len(out))
        if position < len(out):
            out[position] ^= 1 << rng.randrange(8)
    return bytes(out), f"{count} bit flips"


def header_field(data: bytes, rng: random.Random, layout: Layout) -> tuple[bytes, str]:
    out = bytearray(data)
    order = layout.order
    if layout.format == "pcap":
        choices = [("file", offset, width) for offset, width in ((4, 2), (6, 2), (16, 4), (20, 4), (0, 4))]
        if layout.units:
            start, _ = rng.choice(layout.units)
            choices += [("record", start + offset, 4) for offset in (0, 4, 8, 12, 8, 12)]
    else:
        choices = [("section", offset, width) for offset, width in ((4, 4), (12, 2), (14, 2), (8, 4))]
        if layout.units:
            start, end = rng.choice(layout.units)
            choices += [("block", start, 4), ("block", start + 4, 4), ("block", end - 4, 4)]
            choices += [("block", start + offset, 4) for offset in (8, 12, 16, 20, 24)]
            choices += [("block", start + 8, 2), ("block", start + 12, 4)]  # IDB link type, snap length
    kind, offset, width = rng.choice(choices)
    current = (
        int.from_bytes(out[offset : offset + width], "little" if order == "<" else "big")
        if offset + width <= len(out)
        else 0
    )
    value = _value(rng, width, current)
    _put(out, offset, width, value, order)
    return bytes(out), f"{kind} field at {offset} ({width} bytes) = {value}"


def packet_field(data: bytes, rng: random.Random, layout: Layout) -> tuple[bytes, str]:
    if not layout.frames:
        return header_field(data, rng, layout)
    out = bytearray(data)
    frame = rng.choice(layout.frames)
    offset, width = rng.choice(PACKET_FIELDS)
    if rng.random() < 0.3:  # another link layer: the fields sit elsewhere
        offset += rng.choice((-14, -10, 2, 4, 6, 8))
    position = frame + offset
    current = int.from_bytes(out[position : position + width], "big") if 0 <= position < len(out) - width else 0
    value = _value(rng, width, current)
    _put(out, position, width, value, ">")
    return bytes(out), f"packet field at {offset} ({width} bytes) = {value}"


def truncation(data: bytes, rng: random.Random, layout: Layout) -> tuple[bytes, str]:
    if layout.units and rng.random() < 0.5:
        start, end = rng.choice(layout.units)
        cut = rng.randrange(start, end)
    else:
        cut = rng.randrange(max(1, len(data)))
    return data[:cut], f"cut at {cut} of {len(data)}"


def splice(data: bytes, rng: random.Random, layout: Layout, other: bytes | None = None) -> tuple[bytes, str]:
    units = layout.units
    if not units:
        return truncation(data, rng, layout)
    donor_units = units
    donor = data
    if other is not None:
        donor_layout = layout_of(other)
        if donor_layout.format == layout.format and donor_layout.order == layout.order and donor_layout.units:
            donor, donor_units = other, donor_layout.units
    operation = rng.choice(("insert", "repeat", "drop", "swap", "insert-many"))
    start, end = rng.choice(units)
    if operation == "insert" or operation == "insert-many":
        piece_start, piece_end = rng.choice(donor_units)
        piece = donor[piece_start:piece_end] * (rng.randint(2, 50) if operation == "insert-many" else 1)
        at = rng.choice((start, end))
        return data[:at] + piece + data[at:], f"{operation} {piece_end - piece_start} bytes at {at}"
    if operation == "repeat":
        return data[:end] + data[start:end] * rng.randint(1, 5) + data[end:], f"repeat unit at {start}"
    if operation == "drop":
        return data[:start] + data[end:], f"drop unit at {start}"
    other_start, other_end = rng.choice(units)
    if other_start < start:
        start, end, other_start, other_end = other_start, other_end, start, end
    if other_start < end:
        return data, "swap of a unit with itself"
    swapped = data[:start] + data[other_start:other_end] + data[end:other_start] + data[start:end] + data[other_end:]
    return swapped, f"swap units at {start} and {other_start}"


def link_type(data: bytes, rng: random.Random, layout: Layout) -> tuple[bytes, str]:
    out = bytearray(data)
    if not layout.link_types:
        return header_field(data, rng, layout)
    offset = rng.choice(layout.link_types)
    value = rng.choice(LINK_TYPES) if rng.random() < 0.9 else rng.getrandbits(16)
    _put(out, offset, 4 if layout.format == "pcap" else 2, value, layout.order)
    return bytes(out), f"link type at {offset} = {value}"


MUTATIONS: tuple[tuple[str, Callable[..., tuple[bytes, str]], int], ...] = (
    ("bit flips", bit_flips, 25),
    ("header field", header_field, 20),
    ("packet field", packet_field, 25),
    ("truncation", truncation, 10),
    ("splice", splice, 12),
    ("link type", link_type, 8),
)


def seed_captures() -> list[Path]:
    return sorted(path for folder in SEED_FOLDERS for path in folder.iterdir() if path.suffix in (".pcap", ".pcapng"))


@dataclass
class Case:
    number: int
    seed: str
    command: str
    data: bytes
    mutations: list[str]
    frame: int


def cases(seed: int, count: int, start: int = 0) -> Iterator[Case]:
    """``count`` cases of the campaign ``seed``, from case number ``start``: each its own Random."""
    seeds = [(path.name, cut_seed(path.read_bytes())) for path in seed_captures()]
    names = list(COMMANDS)
    weights = [COMMANDS[name][1] for name in names]
    for number in range(start, start + count):
        rng = random.Random(f"{seed}:{number}")
        name, data = rng.choice(seeds)
        mutations = []
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
            layout = layout_of(data)
            label, mutate, _ = rng.choices(MUTATIONS, weights=[weight for _, _, weight in MUTATIONS])[0]
            if mutate is splice:
                data, how = splice(data, rng, layout, rng.choice(seeds)[1] if rng.random() < 0.5 else None)
            else:
                data, how = mutate(data, rng, layout)
            mutations.append(f"{label}: {how}")
        command = rng.choices(names, weights=weights)[0]
        frames = max(1, len(layout_of(data).frames))
        yield Case(number, name, command, data, mutations, rng.randint(1, frames + 1))


# -- Running a case ---------------------------------------------------------------------------------------


@dataclass
class Result:
    case: int
    command: str
    failure: str = ""
    """"", "traceback", "hang", "memory" or "disagreement"."""
    detail: str = ""
    exit_codes: tuple[int, ...] = ()
    seconds: float = 0.0
    peak_bytes: int = 0
    runs: int = 0


def argv_of(command: str, file: str, out: str, frame: int) -> list[str]:
    return [part.format(file=file, out=out, frame=frame) for part in COMMANDS[command][0]]


def run_in_process(command: str, file: str, out: str, frame: int, paths: tuple[str, ...]) -> tuple[str, str, list[int]]:
    """Run one command on each reading path here; (failure, detail, exit codes)."""
    from visualizer import pipeline
    from visualizer.cli import main

    bulk, parallel = pipeline.BULK_MINIMUM_BYTES, pipeline.PARALLEL_MINIMUM_BYTES
    outputs: list[tuple[int, str, str]] = []
    try:
        for reading in paths:
            pipeline.BULK_MINIMUM_BYTES = 0 if reading in ("bulk", "parallel") else bulk
            pipeline.PARALLEL_MINIMUM_BYTES = 0 if reading == "parallel" else parallel
            stdout, stderr = io.StringIO(), io.StringIO()
            try:
                code = main(argv_of(command, file, out, frame), stdout=stdout, stderr=stderr)
            except BaseException:  # noqa: BLE001 - exactly what the fuzzer looks for
                return "traceback", f"{reading} path:\n{traceback.format_exc()}", [c for c, _, _ in outputs]
            if code not in EXIT_CODES:
                return "traceback", f"{reading} path: exit code {code}\n{stderr.getvalue()}", [c for c, _, _ in outputs]
            outputs.append((code, stdout.getvalue(), stderr.getvalue()))
    finally:
        pipeline.BULK_MINIMUM_BYTES, pipeline.PARALLEL_MINIMUM_BYTES = bulk, parallel
    codes = [code for code, _, _ in outputs]
    for reading, output in zip(paths[1:], outputs[1:]):
        if output != outputs[0] and not _known_difference(outputs[0], output):
            return (
                "disagreement",
                f"{reading} path differs from the small-file path:\n{_difference(outputs[0], output)}",
                codes,
            )
    return "", "", codes


_EVENTS = re.compile(r"\s+[a-z_]+ \d+(, [a-z_]+ \d+)*\s*$")


def _known_difference(expected: tuple[int, str, str], got: tuple[int, str, str]) -> bool:
    """The documented difference (README, "Findings that explain"): pcap files read in bulk are
    analysed without verifying checksums, so their report has no bad_checksum findings, and a
    conversation with one may count its other findings differently (a segment its receiver
    discarded for its checksum is, unverified, a segment lost after the capture point)."""
    if expected[0] != got[0] or expected[2] != got[2]:
        return False
    left, right = expected[1].splitlines(), got[1].splitlines()
    if len(left) != len(right):
        return False
    for line, other in zip(left, right):
        if line == other:
            continue
        if "bad_checksum" not in line or _EVENTS.sub("", line) != _EVENTS.sub("", other):
            return False
    return True


def _difference(expected: tuple[int, str, str], got: tuple[int, str, str]) -> str:
    import difflib

    if expected[0] != got[0]:
        return f"exit code {got[0]} instead of {expected[0]}"
    for name, left, right in (("stdout", expected[1], got[1]), ("stderr", expected[2], got[2])):
        if left != right:
            lines = difflib.unified_diff(left.splitlines(), right.splitlines(), "small", "other", lineterm="", n=1)
            return f"{name}:\n" + "\n".join(list(lines)[:20])
    return "?"


def run_case(case: Case, folder: Path, *, memory_limit: int = MEMORY_LIMIT_BYTES) -> Result:
    """Run ``case`` in a forked child with the command's time limit; measure its peak memory."""
    suffix = ".pcapng" if case.data[:4] == b"\x0a\x0d\x0d\x0a" else ".pcap"
    file = folder / f"case-{case.number}{suffix}"
    file.write_bytes(case.data)
    out = tempfile.mkdtemp(dir=folder)
    paths = PATHS_OF[case.command]
    return run_file(str(file), case.command, out, case.frame, paths, case.number, memory_limit=memory_limit)


def run_file(
    file: str,
    command: str,
    out: str,
    frame: int,
    paths: tuple[str, ...],
    number: int = 0,
    *,
    memory_limit: int = MEMORY_LIMIT_BYTES,
) -> Result:
    limit = COMMANDS[command][2]
    reader, writer = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: run, report, and leave without any cleanup of the parent's
        os.close(reader)
        status = 0
        try:
            os.setpgid(0, 0)  # its own group: a hang is killed with the workers it forked
            failure, detail, codes = run_in_process(command, file, out, frame, paths)
            own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            payload = pickle.dumps((failure, detail, codes, max(own, workers) * 1024))
            os.write(writer, payload)
        except BaseException:  # noqa: BLE001
            status = 70
        finally:
            os._exit(status)
    os.close(writer)
    chunks = []
    deadline = started + limit
    hung = False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            hung = True
            break
        ready, _, _ = select.select([reader], [], [], remaining)
        if ready:
            chunk = os.read(reader, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    os.close(reader)
    if hung:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    _, _, usage = os.wait4(pid, 0)
    seconds = time.monotonic() - started
    result = Result(number, command, seconds=seconds, runs=len(paths))
    if hung:
        result.failure, result.detail = "hang", f"no result after {limit:.0f} s"
        return result
    if not chunks:
        result.failure, result.detail = "traceback", "the case's process died without a result"
        return result
    failure, detail, codes, peak = pickle.loads(b"".join(chunks))
    result.failure, result.detail, result.exit_codes = failure, detail, tuple(codes)
    result.peak_bytes = max(peak, usage.ru_maxrss * 1024)
    if not failure and result.peak_bytes > memory_limit:
        result.failure = "memory"
        result.detail = f"peak resident set {result.peak_bytes / 2**20:.0f} MB > {memory_limit / 2**20:.0f} MB"
    return result


def preload() -> None:
    """Import what the commands import, once, before forking: each case then starts at once."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy  # noqa: F401
    import scapy.all  # noqa: F401

    import visualizer.cli  # noqa: F401
    import visualizer.pipeline  # noqa: F401
    import visualizer.render.anatomy  # noqa: F401
    import visualizer.render.export  # noqa: F401
    import visualizer.render.layout  # noqa: F401
    import visualizer.render.text  # noqa: F401
