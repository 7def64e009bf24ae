"""Compare sockstory's analysis with tshark's, frame by frame (a test oracle).

A corpus folder holds ``captures/`` and ``oracle/<file>.frames.tsv`` made by
tshark 4.0 (``tshark -T fields`` with the tcp.analysis.* columns). For every TCP
frame this compares stream, relative seq/ack, segment length, flags and the
window (``tcp.window_size``: scaled, the raw field where the scale is unknown);
for every TCP frame the tcp.analysis.* flags, giving precision and recall per
flag. Where sockstory knowingly differs from tshark the frame is counted apart
as a documented deviation:

* linux-zero-window-probe: a 0/1-byte segment at snd.una-1 into a zero window.
  tshark calls it keep_alive; sockstory calls it zero_window_probe.
* linux-zero-window-probe-ack: the answer to such a probe (the frame right after
  it in its stream, repeating the zero window). Having called the probe a
  zero_window_probe, sockstory calls its answer a zero_window_probe_ack (Wireshark's
  own rule for one); tshark, having called the probe a keep_alive, gives the answer
  nothing (its keep_alive_ack needs a non-zero window).

* simultaneous-open: the SYN-ACK each end sends in a simultaneous open (RFC 9293
  Figure 7: its own SYN is out, the peer's SYN has come in). It repeats the SYN's
  sequence number, so tshark calls it a retransmission; it answers the peer's SYN,
  so sockstory calls it simultaneous_open.

Used by ``bench/conformance.py`` (the whole shared corpus) and by the golden
tests (the BSD/MIT part of it, copied into tests/data/corpus).
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from visualizer.analysis.report import analysis_names
from visualizer.errors import CaptureFileError
from visualizer.model import ACK, AE, CWR, ECE, FIN, PSH, RST, SYN, URG
from visualizer.pipeline import analyse_file

FLAGS = (
    "retransmission",
    "fast_retransmission",
    "spurious_retransmission",
    "duplicate_ack",
    "out_of_order",
    "zero_window",
    "zero_window_probe",
    "keep_alive",
    "window_full",
    "window_update",
    "lost_segment",
    "ack_lost_segment",
    "zero_window_probe_ack",
    "keep_alive_ack",
)
COLUMNS = ("stream", "seq", "ack", "len", "flags", "window")
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


@dataclass
class Conformance:
    """Counts from one comparison run."""

    captures: int = 0
    tcp_frames: int = 0
    agree: Counter[str] = field(default_factory=Counter)
    compared: Counter[str] = field(default_factory=Counter)
    true_positive: Counter[str] = field(default_factory=Counter)
    false_positive: Counter[str] = field(default_factory=Counter)
    false_negative: Counter[str] = field(default_factory=Counter)
    deviations: Counter[str] = field(default_factory=Counter)
    disagreements: list[str] = field(default_factory=list)
    frame_counts: list[str] = field(default_factory=list)

    def agreement(self, column: str) -> float:
        return self.agree[column] / self.compared[column] if self.compared[column] else 1.0

    def precision(self, flag: str) -> float:
        hits = self.true_positive[flag]
        return hits / (hits + self.false_positive[flag]) if hits + self.false_positive[flag] else 1.0

    def recall(self, flag: str) -> float:
        hits = self.true_positive[flag]
        return hits / (hits + self.false_negative[flag]) if hits + self.false_negative[flag] else 1.0

    def meets_targets(self) -> bool:
        return all(self.agreement(column) >= AGREEMENT_TARGET for column in (*COLUMNS, "udp stream")) and all(
            self.precision(flag) >= FLAG_TARGET and self.recall(flag) >= FLAG_TARGET for flag in FLAGS
        )


def compare(corpus: Path) -> Conformance:
    """Analyse every capture of ``corpus`` and compare it with its oracle."""
    result = Conformance()
    captures = sorted((corpus / "captures").iterdir())
    result.captures = len(captures)
    agree, compared = result.agree, result.compared
    true_positive, false_positive, false_negative = (
        result.true_positive,
        result.false_positive,
        result.false_negative,
    )
    deviations, disagreements, frame_counts = result.deviations, result.disagreements, result.frame_counts
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
        last_in_stream: dict[str, int] = {}
        deviated_probes: set[int] = set()
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
                    "window": _first(row["tcp.window_size"]),
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
                        "window": str(frame.window),
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
                deviated_probes.add(number)
                theirs.discard("keep_alive")
                mine.discard("zero_window_probe")
            if (
                "retransmission" in theirs
                and frame is not None
                and "simultaneous_open" in analysis_names(frame.analysis)
            ):
                deviations["simultaneous-open"] += 1
                theirs.discard("retransmission")
            previous = last_in_stream.get(row["tcp.stream"])
            last_in_stream[row["tcp.stream"]] = number
            if (
                previous in deviated_probes
                and "zero_window_probe_ack" in mine
                and not theirs & {"zero_window_probe_ack", "keep_alive_ack"}
            ):
                deviations["linux-zero-window-probe-ack"] += 1
                mine.discard("zero_window_probe_ack")
            for flag in FLAGS:
                if flag in mine and flag in theirs:
                    true_positive[flag] += 1
                elif flag in mine:
                    false_positive[flag] += 1
                    disagreements.append(f"{capture.name}\t{number}\t{flag}\tours=yes\ttshark=no")
                elif flag in theirs:
                    false_negative[flag] += 1
                    disagreements.append(f"{capture.name}\t{number}\t{flag}\tours=no\ttshark=yes")
    result.tcp_frames = tcp_frames
    return result


def format_result(result: Conformance, listing: int = 40) -> str:
    """The human-readable summary, ending with the verdict."""
    lines = [f"TCP frames compared: {result.tcp_frames} in {result.captures} captures", "", "column        agreement"]
    for column in (*COLUMNS, "udp stream"):
        lines.append(
            f"{column:12s}  {result.agreement(column):8.2%}  ({result.agree[column]}/{result.compared[column]})"
        )
    lines += ["", "flag                      tshark  ours  precision  recall"]
    for flag in FLAGS:
        hits = result.true_positive[flag]
        lines.append(
            f"{flag:24s}  {hits + result.false_negative[flag]:6d}  {hits + result.false_positive[flag]:4d}"
            f"  {result.precision(flag):9.2%}  {result.recall(flag):6.2%}"
        )
    lines += ["", "documented deviations (counted apart):"]
    for name, count in sorted(result.deviations.items()) or [("none", 0)]:
        lines.append(f"  {name}: {count}")
    if result.frame_counts:
        lines += ["", "frame counts that differ or files we refuse:"]
        lines += [f"  {line}" for line in result.frame_counts]
    by_kind: dict[str, int] = defaultdict(int)
    for line in result.disagreements:
        by_kind[line.split("\t")[2]] += 1
    lines += ["", f"disagreements: {len(result.disagreements)} {dict(by_kind)}"]
    lines += ["  " + line for line in result.disagreements[:listing]]
    lines += ["", "RESULT: " + ("meets the targets" if result.meets_targets() else "below the targets")]
    return "\n".join(lines)
