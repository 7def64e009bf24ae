"""Measure sockstory's TCP/UDP analysis against tshark's, frame by frame.

Usage: python bench/conformance.py CORPUS_DIR [--list N] [--check]

CORPUS_DIR holds captures/ and oracle/<file>.frames.tsv made by tshark 4.0
(see its README). For every TCP frame the script compares stream, relative
seq/ack, segment length and flags; for every frame the tcp.analysis.* flags,
reporting precision and recall per flag. Where sockstory knowingly differs from
tshark the frame is counted apart as a documented deviation:

* linux-zero-window-probe: a 0/1-byte segment at snd.una-1 into a zero window.
  tshark calls it keep_alive; sockstory calls it zero_window_probe.

``--check`` exits 1 unless every column agrees on >= 99.5% of TCP frames and
every flag reaches >= 95% precision and recall.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from visualizer.analysis.report import analysis_names  # noqa: E402
from visualizer.errors import CaptureFileError  # noqa: E402
from visualizer.model import ACK, AE, CWR, ECE, FIN, PSH, RST, SYN, URG  # noqa: E402
from visualizer.pipeline import analyse_file  # noqa: E402

FLAGS = (
    "retransmission", "fast_retransmission", "spurious_retransmission", "duplicate_ack", "out_of_order",
    "zero_window", "zero_window_probe", "keep_alive", "window_full", "window_update", "lost_segment",
    "ack_lost_segment",
)
COLUMNS = ("stream", "seq", "ack", "len", "flags")
# tcp.flags.str: 12 characters, reserved x3, then N C E U A P R S F.
_FLAG_POSITIONS = ((3, AE), (4, CWR), (5, ECE), (6, URG), (7, ACK), (8, PSH), (9, RST), (10, SYN), (11, FIN))
AGREEMENT_TARGET = 0.995
FLAG_TARGET = 0.95


def _tshark_flags(text: str) -> int:
    value = 0
    for position, bit in _FLAG_POSITIONS:
        if len(text) > position and text[position] not in ("·", "."):
            value |= bit
    return value


def _first(value: str) -> str:
    return value.split("|")[0] if value else ""


def compare(corpus: Path, listing: int) -> bool:
    captures = sorted((corpus / "captures").iterdir())
    agree: Counter[str] = Counter()
    compared: Counter[str] = Counter()
    true_positive: Counter[str] = Counter()
    false_positive: Counter[str] = Counter()
    false_negative: Counter[str] = Counter()
    deviations: Counter[str] = Counter()
    disagreements: list[str] = []
    frame_counts: list[str] = []
    tcp_frames = 0
    for capture in captures:
        oracle_path = corpus / "oracle" / f"{capture.name}.frames.tsv"
        if not oracle_path.exists():
            continue
        with oracle_path.open(newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
        try:
            report = analyse_file(capture, keep_frames=True)
        except CaptureFileError as error:
            frame_counts.append(f"{capture.name}: ours: error ({error.problem}); tshark: {len(rows)} frames")
            continue
        ours = {frame.record.number: frame for frame in report.frame_analyses}
        if len(ours) != len(rows):
            frame_counts.append(f"{capture.name}: ours {len(ours)} frames, tshark {len(rows)}")
        for row in rows:
            number = int(row["frame.number"])
            frame = ours.get(number)
            is_tcp = bool(row["tcp.stream"]) and "icmp" not in row["frame.protocols"]
            if is_tcp:
                tcp_frames += 1
                expected = {
                    "stream": row["tcp.stream"],
                    "seq": _first(row["tcp.seq"]),
                    "ack": _first(row["tcp.ack"]),
                    "len": _first(row["tcp.len"]),
                    "flags": str(_tshark_flags(_first(row["tcp.flags.str"]))),
                }
                if frame is None or frame.protocol != "tcp":
                    got = dict.fromkeys(COLUMNS, "(not tcp)")
                else:
                    got = {
                        "stream": str(frame.stream),
                        "seq": str(frame.seq),
                        "ack": str(frame.ack),
                        "len": str(frame.record.payload_length),
                        "flags": str(frame.record.tcp_flags),
                    }
                for column in COLUMNS:
                    if column == "ack" and expected[column] == "":
                        continue
                    compared[column] += 1
                    if got[column] == expected[column]:
                        agree[column] += 1
                    elif len(disagreements) < 100000:
                        disagreements.append(
                            f"{capture.name}\t{number}\t{column}\tours={got[column]}\ttshark={expected[column]}"
                        )
            if row["udp.stream"] and "icmp" not in row["frame.protocols"]:
                compared["udp stream"] += 1
                if frame is not None and str(frame.stream) == _first(row["udp.stream"]):
                    agree["udp stream"] += 1
                else:
                    disagreements.append(
                        f"{capture.name}\t{number}\tudp stream\tours={frame.stream if frame else None}"
                        f"\ttshark={row['udp.stream']}"
                    )
            if not is_tcp:
                continue
            theirs = {flag for flag in FLAGS if row.get(f"tcp.analysis.{flag}", "")}
            mine = set(analysis_names(frame.analysis)) & set(FLAGS) if frame is not None else set()
            if "keep_alive" in theirs and "zero_window_probe" in mine and "keep_alive" not in mine:
                deviations["linux-zero-window-probe"] += 1
                theirs.discard("keep_alive")
                mine.discard("zero_window_probe")
            for flag in FLAGS:
                if flag in mine and flag in theirs:
                    true_positive[flag] += 1
                elif flag in mine:
                    false_positive[flag] += 1
                    disagreements.append(f"{capture.name}\t{number}\t{flag}\tours=yes\ttshark=no")
                elif flag in theirs:
                    false_negative[flag] += 1
                    disagreements.append(f"{capture.name}\t{number}\t{flag}\tours=no\ttshark=yes")
    print(f"TCP frames compared: {tcp_frames} in {len(captures)} captures")
    passed = True
    print("\ncolumn        agreement")
    for column in (*COLUMNS, "udp stream"):
        ratio = agree[column] / compared[column] if compared[column] else 1.0
        passed &= ratio >= AGREEMENT_TARGET
        print(f"{column:12s}  {ratio:8.2%}  ({agree[column]}/{compared[column]})")
    print("\nflag                      tshark  ours  precision  recall")
    for flag in FLAGS:
        hits = true_positive[flag]
        precision = hits / (hits + false_positive[flag]) if hits + false_positive[flag] else 1.0
        recall = hits / (hits + false_negative[flag]) if hits + false_negative[flag] else 1.0
        passed &= precision >= FLAG_TARGET and recall >= FLAG_TARGET
        print(
            f"{flag:24s}  {hits + false_negative[flag]:6d}  {hits + false_positive[flag]:4d}"
            f"  {precision:9.2%}  {recall:6.2%}"
        )
    print("\ndocumented deviations (counted apart):")
    for name, count in sorted(deviations.items()) or [("none", 0)]:
        print(f"  {name}: {count}")
    if frame_counts:
        print("\nframe counts that differ or files we refuse:")
        for line in frame_counts:
            print(f"  {line}")
    by_kind: dict[str, int] = defaultdict(int)
    for line in disagreements:
        by_kind[line.split("\t")[2]] += 1
    print(f"\ndisagreements: {len(disagreements)} {dict(by_kind)}")
    for line in disagreements[:listing]:
        print("  " + line)
    print("\nRESULT:", "meets the targets" if passed else "below the targets")
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path, help="folder with captures/ and oracle/")
    parser.add_argument("--list", type=int, default=40, metavar="N", help="disagreements to list (default 40)")
    parser.add_argument("--check", action="store_true", help="exit 1 when below the targets")
    arguments = parser.parse_args()
    passed = compare(arguments.corpus, arguments.list)
    return 0 if passed or not arguments.check else 1


if __name__ == "__main__":
    sys.exit(main())
