"""Golden tests: our analysis against tshark 4.0.17 on the BSD/MIT corpus files in tests/data/corpus.

Every TCP frame's stream, relative seq/ack, length, flags and (scaled) window must agree, and
every tcp.analysis flag (probe and keep-alive ACKs, window updates too) must agree frame by
frame (ATTRIBUTION.md says where each file comes from).
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from tests.oracle import COLUMNS, FLAGS, compare, format_result

CORPUS = Path(__file__).parent / "data" / "corpus"


@pytest.fixture(scope="module")
def result():  # type: ignore[no-untyped-def]
    return compare(CORPUS)


def test_corpus_copy_is_complete() -> None:
    captures = sorted(path.name for path in (CORPUS / "captures").iterdir())
    assert len(captures) == 26
    for name in captures:
        assert (CORPUS / "oracle" / f"{name}.frames.tsv").exists()
        assert name in (CORPUS / "ATTRIBUTION.md").read_text()


def test_every_tcp_column_agrees_with_tshark(result) -> None:  # type: ignore[no-untyped-def]
    assert result.tcp_frames > 2000
    for column in (*COLUMNS, "udp stream"):
        assert result.agreement(column) == 1.0, format_result(result)


def test_every_analysis_flag_agrees_with_tshark(result) -> None:  # type: ignore[no-untyped-def]
    for flag in FLAGS:
        assert result.false_positive[flag] == 0 and result.false_negative[flag] == 0, format_result(result)
    assert result.true_positive["retransmission"] == 234
    assert result.true_positive["duplicate_ack"] == 239
    assert result.true_positive["fast_retransmission"] == 130
    assert result.true_positive["keep_alive_ack"] == 6
    assert result.true_positive["window_update"] == 2


def test_frame_counts_match_tshark_including_damaged_files(result) -> None:  # type: ignore[no-untyped-def]
    assert result.frame_counts == [], result.frame_counts


def test_the_oracle_notices_a_wrong_window_and_a_missing_flag(tmp_path: Path) -> None:
    """The comparison can fail: one window and one keep_alive_ack taken out of tshark's rows."""
    name = "zeek-docker-http-upgrade.pcap"
    (tmp_path / "captures").mkdir()
    (tmp_path / "oracle").mkdir()
    shutil.copy(CORPUS / "captures" / name, tmp_path / "captures" / name)
    with (CORPUS / "oracle" / f"{name}.frames.tsv").open(newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        columns, rows = reader.fieldnames, list(reader)
    assert columns is not None
    by_number = {row["frame.number"]: row for row in rows}
    by_number["105"]["tcp.analysis.keep_alive_ack"] = ""
    by_number["3"]["tcp.window_size"] = str(int(by_number["3"]["tcp.window_size"]) + 1)
    with (tmp_path / "oracle" / f"{name}.frames.tsv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, delimiter="\t", quoting=csv.QUOTE_NONE, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    mutated = compare(tmp_path)
    assert mutated.compared["window"] - mutated.agree["window"] == 1
    assert mutated.false_positive["keep_alive_ack"] == 1
    assert sorted(line.split("\t")[1:3] for line in mutated.disagreements) == [
        ["105", "keep_alive_ack"],
        ["3", "window"],
    ]


def test_our_own_scenario_captures_agree_with_tshark_but_for_documented_deviations() -> None:
    """The captures of every scenario (tests/data/scenarios), against tshark 4.0.17 on the same files."""
    scenarios = compare(Path(__file__).parent / "data" / "scenarios")
    assert scenarios.tcp_frames > 800
    for column in (*COLUMNS, "udp stream"):
        assert scenarios.agreement(column) == 1.0, format_result(scenarios)
    for flag in FLAGS:
        assert scenarios.false_positive[flag] == 0 and scenarios.false_negative[flag] == 0, format_result(scenarios)
    # The two SYN-ACKs of craft-simultaneous-open: retransmissions for tshark, simultaneous_open for us.
    assert scenarios.deviations["simultaneous-open"] == 2
