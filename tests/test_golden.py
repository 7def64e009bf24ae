"""Golden tests: our analysis against tshark 4.0.17 on the BSD/MIT corpus files in tests/data/corpus.

Every TCP frame's stream, relative seq/ack, length and flags must agree, and every
tcp.analysis flag must agree frame by frame (ATTRIBUTION.md says where each file comes from).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from visualizer.oracle import COLUMNS, FLAGS, compare, format_result

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


def test_frame_counts_match_tshark_including_damaged_files(result) -> None:  # type: ignore[no-untyped-def]
    assert result.frame_counts == [], result.frame_counts
