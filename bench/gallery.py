"""Draw every figure sockstory makes into one folder, with an index that captions each image.

Usage: python bench/gallery.py [-o DIR] [--jobs N] [CAPTURE ...]

Without captures: the ladder and the time-sequence graph of every scenario capture
(tests/data/scenarios/captures) and of the third-party captures of THIRD_PARTY (tests/data/corpus:
bulk, loss, several conversations, IPv6, UDP...), the anatomy of the frames of ANATOMIES, and the
TCP state diagram. With captures: those captures, the anatomy of each one's first frame, and the
state diagram. DIR (default out/gallery) gets the PNG files and index.md, which lists every image
with its caption and the command that drew it.

Every figure is drawn by the command line, through ``visualizer.cli.main`` with the arguments a
user would type, so the gallery shows what ``sockstory`` draws today: the default ladder of a
capture first; when the command refuses it (too many conversations), the refusal is noted and the
busiest conversation (most frames, then bytes) is drawn; the time-sequence graph of the busiest
TCP stream. Images are the files the command says it wrote (a long ladder's pages, each one). A
figure that fails is listed in the index with its error line, the others are still drawn, and
the exit code is 1.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shlex
import sys
import traceback
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from visualizer.cli import main as sockstory  # noqa: E402
from visualizer.files import atomic_write_text  # noqa: E402

SCENARIO_CAPTURES = ROOT / "tests" / "data" / "scenarios" / "captures"
CORPUS_CAPTURES = ROOT / "tests" / "data" / "corpus" / "captures"

THIRD_PARTY: dict[str, str] = {
    "zeek-tcp-timestamp.pcap": "bulk: 1 MB downloaded in 0.55 s, 878 frames",
    "zeek-206_example_a.pcap": "a lossy bulk transfer: an HTTP 206 download of 568 kB with fast retransmissions "
    "(628 frames), beside a short first request",
    "zeek-ssh-dups.pcap": "heavy loss: 166 retransmissions and 114 duplicate ACKs in an SSH session",
    "zeek-retransmit-fast009.pcap": "loss: duplicate ACKs, a fast retransmission, timeouts, a reset",
    "sv-tcp-empty-sack-tcp-opt.pcap": "SACK, keep-alive and a reset over 37 s of idle gaps",
    "zeek-ctu-64702-888.pcap": "out-of-order segments, a lost segment, a reset",
    "zeek-get-to-ssh-server.pcap": "RSTs: accepted and ignored",
    "tcpdump-pptp.pcap": "retransmissions and a segment no RFC 9293 transition explains",
    "zeek-docker-http-upgrade.pcap": "several conversations: three HTTP connections with keep-alives",
    "zeek-ipv6-http-atomic-frag.pcap": "IPv6, four conversations, a spurious retransmission",
    "zeek-ldap-gap-data-missing.pcapng": "IPv6 (pcapng): a segment missing from the capture, a reset",
    "gopacket-test_loopback.pcap": "IPv6 on loopback (BSD NULL link type): 56 kB answered",
    "zeek-ipv6-fragmented-dns.pcap": "UDP over IPv6: DNS with fragmented answers",
    "zeek-pcapng-multi-interface.pcapng": "UDP: DNS on several interfaces of one pcapng file",
}
"""tests/data/corpus/captures files drawn by default, and what each one shows (see its ATTRIBUTION.md)."""

ANATOMIES: tuple[tuple[Path, int, str], ...] = (
    (SCENARIO_CAPTURES / "story.pcap", 1, "a SYN and its options"),
    (SCENARIO_CAPTURES / "story.pcap", 4, "a data segment and its payload"),
    (SCENARIO_CAPTURES / "loss.pcap", 19, "a duplicate ACK with its SACK block"),
    (SCENARIO_CAPTURES / "udp-closed-port.pcap", 2, "ICMP port unreachable quoting the datagram"),
    (CORPUS_CAPTURES / "zeek-ipv6-http-atomic-frag.pcap", 7, "an IPv6 data segment"),
)

WROTE = re.compile(r"^sockstory: wrote (.+)$", re.MULTILINE)


@dataclass(slots=True)
class Drawn:
    """One figure of the gallery: the command that drew it and the images it wrote (or its error)."""

    title: str
    argv: list[str]
    images: list[str] = field(default_factory=list)
    """File names in the gallery folder, as the command reported them."""
    note: str = ""
    """What the reader should know: a refused default, a figure not drawn (and why)."""
    failed: bool = False


@dataclass(slots=True)
class Section:
    heading: str
    caption: str
    figures: list[Drawn] = field(default_factory=list)


def run(argv: list[str], out_dir: Path) -> tuple[int, str, str, list[str]]:
    """``sockstory ARGV``: exit code, stdout, stderr, and the files it says it wrote (names in ``out_dir``)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = sockstory(argv, stdout=out, stderr=err)
    except Exception as error:  # a crash is what the gallery exists to show: listed, not fatal
        last = traceback.extract_tb(error.__traceback__)[-1]
        err.write(f"crashed: {type(error).__name__}: {error} ({Path(last.filename).name}:{last.lineno})\n")
        code = -1
    written = [str(Path(path).relative_to(out_dir)) for path in WROTE.findall(err.getvalue())]
    # Capture paths in messages as the index shows them: relative to the repository.
    return code, out.getvalue(), err.getvalue().replace(f"{ROOT}{os.sep}", ""), written


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if "error" in line or line.startswith("crashed")]
    return (lines or err.splitlines() or ["(no message)"])[-1].removeprefix("sockstory: ").removeprefix("error: ")


def _outcome(drawn: Drawn, code: int, err: str) -> Drawn:
    """Failed unless the command wrote its images and exited 0, or 3 (drawn, with a warning about the capture)."""
    warnings = [line.removeprefix("sockstory: ") for line in err.splitlines() if line.startswith("sockstory: warning")]
    if code not in (0, 3) or not drawn.images:
        drawn.failed, drawn.note = True, f"not drawn: {_error_line(err)}"
    elif warnings:
        drawn.note = "; ".join(warnings)
    return drawn


def _figure(title: str, argv: list[str], out_dir: Path) -> Drawn:
    code, _, err, written = run(argv, out_dir)
    return _outcome(Drawn(title, argv, written), code, err)


def draw_capture(capture: Path, heading: str, caption: str, out_dir: Path) -> Section:
    """The ladder and the time-sequence graph of one capture."""
    section = Section(heading, caption)
    stem = f"{capture.parent.parent.name}-{capture.stem}" if capture.parent.name == "captures" else capture.stem
    code, out, err, _ = run(["flows", "--format", "json", "-q", str(capture)], out_dir)
    if code not in (0, 3):
        note = f"not drawn: {_error_line(err)}"
        section.figures.append(Drawn("conversations", ["flows", str(capture)], note=note, failed=True))
        return section
    conversations = json.loads(out)
    busiest = max(conversations, key=lambda c: (c["frames"], c["bytes"]), default=None)
    ladder = ["draw", str(capture), "-o", str(out_dir / f"{stem}.png")]
    code, _, err, written = run(ladder, out_dir)
    if code == 2 and "--stream" in err and busiest is not None:
        refusal = _error_line(err)
        ladder += ["--stream", str(busiest["stream"]), "--protocol", busiest["protocol"]]
        drawn = _figure(f"ladder of {busiest['protocol'].upper()} stream {busiest['stream']}", ladder, out_dir)
        drawn.note = f"the default was refused: {refusal}" + (f"; {drawn.note}" if drawn.note else "")
    else:
        drawn = _outcome(Drawn("ladder", ladder, written), code, err)
    section.figures.append(drawn)
    tcp = [c for c in conversations if c["protocol"] == "tcp"]
    if tcp:
        stream = max(tcp, key=lambda c: (c["frames"], c["bytes"]))["stream"]
        argv = ["draw", str(capture), "--time-sequence", "--stream", str(stream)]
        argv += ["-o", str(out_dir / f"{stem}-time-sequence.png")]
        drawn = _figure(f"time-sequence graph of TCP stream {stream}", argv, out_dir)
        drawn.failed = drawn.failed and "carries no data" not in drawn.note  # refused on purpose: see the ladder
        section.figures.append(drawn)
    return section


def draw_anatomy(capture: Path, frame: int, caption: str, out_dir: Path) -> Section:
    argv = ["anatomy", str(capture), "--frame", str(frame), "-o", str(out_dir / f"anatomy-{capture.stem}-{frame}.png")]
    return Section(f"{capture.name}, frame {frame}", caption, [_figure("anatomy", argv, out_dir)])


def draw_states(out_dir: Path) -> Section:
    argv = ["states", "-o", str(out_dir / "tcp-states.png")]
    caption = "every RFC 9293 transition the analysis applies, drawn from its table"
    return Section("TCP state diagram", caption, [_figure("state diagram", argv, out_dir)])


@dataclass(frozen=True, slots=True)
class Job:
    """One section to draw (picklable, for the worker processes)."""

    kind: str
    capture: Path | None
    heading: str
    caption: str
    frame: int = 0

    def __call__(self, out_dir: Path) -> Section:
        if self.kind == "states":
            return draw_states(out_dir)
        assert self.capture is not None
        if self.kind == "anatomy":
            return draw_anatomy(self.capture, self.frame, self.caption, out_dir)
        return draw_capture(self.capture, self.heading, self.caption, out_dir)


def default_jobs() -> list[tuple[str, Job]]:
    """(part of the index, job) for the whole gallery."""
    from visualizer.scenarios import SCENARIOS

    jobs = []
    for name, scenario in SCENARIOS.items():
        capture = SCENARIO_CAPTURES / f"{name}.pcap"
        if capture.exists():
            jobs.append(("Scenarios", Job("capture", capture, name, scenario.description)))
    for name, caption in THIRD_PARTY.items():
        jobs.append(("Third-party captures", Job("capture", CORPUS_CAPTURES / name, name, caption)))
    for capture, frame, caption in ANATOMIES:
        jobs.append(("Anatomy of a frame", Job("anatomy", capture, "", caption, frame)))
    jobs.append(("The TCP states", Job("states", None, "", "")))
    return jobs


def capture_jobs(captures: Sequence[Path]) -> list[tuple[str, Job]]:
    """(part of the index, job) for the captures given on the command line (captioned as given)."""
    jobs: list[tuple[str, Job]] = []
    for path in captures:
        jobs.append(("Captures", Job("capture", path.resolve(), path.name, f"`{path}`")))
    jobs += [("Anatomy of a frame", Job("anatomy", path.resolve(), "", "its first frame", 1)) for path in captures]
    jobs.append(("The TCP states", Job("states", None, "", "")))
    return jobs


def _shown(argv: list[str], out_dir: Path) -> str:
    """The command as a reader would type it: capture paths relative to the repository, outputs by name."""
    words = ["sockstory"]
    for word in argv:
        path = Path(word)
        if path.is_absolute() and path.parent == out_dir:
            word = path.name
        elif path.is_absolute() and path.is_relative_to(ROOT):
            word = str(path.relative_to(ROOT))
        words.append(shlex.quote(word))
    return " ".join(words)


def _part(images: list[str], image: str) -> str:
    """What one of a command's images is, from the names draw gives them: the overview (OUT),
    a conversation's ladder (OUT-tcp-K, OUT-udp-K, OUT-other) or a page of one (...-P, OUT-P)."""
    if len(images) == 1:
        return ""
    stem = Path(image).stem
    base = os.path.commonprefix([Path(name).stem for name in images]).rstrip("-")
    rest = stem[len(base) :].lstrip("-")
    if not rest:
        return "overview of the conversations"
    match = re.fullmatch(r"(tcp|udp)-(\d+)(?:-(\d+))?|other(?:-(\d+))?|(\d+)", rest)
    if match is None:
        return rest
    protocol, stream, page, other_page, only_page = match.groups()
    if only_page:
        return f"page {only_page}"
    what = f"{protocol.upper()} stream {stream}" if protocol else "frames of no conversation"
    page = page or other_page
    return f"{what}, page {page}" if page else what


def index_text(parts: list[tuple[str, Section]], out_dir: Path) -> str:
    lines = [
        "# sockstory gallery",
        "",
        "Made by `python bench/gallery.py`: every image below was drawn by the `sockstory` command shown "
        "under it (output names relative to this folder).",
    ]
    part = None
    for name, section in parts:
        if name != part:
            lines += ["", f"## {name}"]
            part = name
        lines += ["", f"### {section.heading}", "", section.caption]
        for figure in section.figures:
            lines += ["", f"**{figure.title}**: `{_shown(figure.argv, out_dir)}`"]
            if figure.note:
                lines += ["", f"*{figure.note}*"]
            for image in figure.images:
                part = _part(figure.images, image)
                alt = f"{section.heading}: {figure.title}{', ' + part if part else ''}"
                lines += ["", f"![{alt}]({image})", "", f"{alt} ({image})"]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("captures", nargs="*", type=Path, metavar="CAPTURE", help="draw these, not the default set")
    parser.add_argument("-o", "--output", type=Path, default=Path("out/gallery"), metavar="DIR", help="the folder")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N", help="worker processes")
    arguments = parser.parse_args(argv)
    for capture in arguments.captures:
        if not capture.is_file():
            parser.error(f"{capture}: no such file")
    out_dir = arguments.output.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = capture_jobs(arguments.captures) if arguments.captures else default_jobs()
    if arguments.jobs > 1:
        with ProcessPoolExecutor(arguments.jobs) as pool:
            sections = list(pool.map(_call, [job for _, job in jobs], [out_dir] * len(jobs)))
    else:
        sections = [job(out_dir) for _, job in jobs]
    parts = [(part, section) for (part, _), section in zip(jobs, sections)]
    index = atomic_write_text(out_dir / "index.md", index_text(parts, out_dir))
    figures = [figure for section in sections for figure in section.figures]
    failed = [figure for figure in figures if figure.failed]
    images = sum(len(figure.images) for figure in figures)
    print(f"gallery: {images} images of {len(figures)} figures in {out_dir}, listed in {index.name}")
    for section in sections:
        for figure in section.figures:
            if figure.failed:
                print(f"gallery: {section.heading}, {figure.title}: {figure.note}", file=sys.stderr)
    return 1 if failed else 0


def _call(job: Job, out_dir: Path) -> Section:
    return job(out_dir)


if __name__ == "__main__":
    sys.exit(main())
