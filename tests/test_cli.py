"""The command line through main(argv): output, exit codes and one-line errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from visualizer.cli import EVENT_COLUMNS, main

ROOT = Path(__file__).parent.parent
STORY = ROOT / "captures" / "story.pcap"
CORPUS = Path(__file__).parent / "data" / "corpus" / "captures"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_events_tsv_has_exactly_the_documented_columns() -> None:
    code, out, err = run("events", str(STORY))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split("\t") == list(EVENT_COLUMNS)
    rows = [dict(zip(EVENT_COLUMNS, line.split("\t"), strict=True)) for line in lines[1:]]
    assert len(rows) == 10
    assert [row["flags"] for row in rows[:3]] == ["SYN", "SYN|ACK", "ACK"]
    assert rows[0]["time"] == "0.000000" and rows[0]["seq"] == "0"
    assert rows[3]["len"] == "12" and rows[3]["dport"] == "8080"
    assert rows[-1]["state"] == "TIME-WAIT"
    assert {row["checksum"] for row in rows} == {"unverified"}  # the kernel leaves lo checksums to offload
    assert err.strip() == "sockstory: 10 frames, 1 TCP stream, 0 UDP streams, 0 warnings"


def test_events_jsonl_and_stream_selection() -> None:
    code, out, _ = run("events", str(CORPUS / "zeek-retransmit-fast009.pcap"), "--format", "jsonl", "-q")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert set(rows[0]) == {*EVENT_COLUMNS, "findings"}
    fast = next(row for row in rows if "fast_retransmission" in row["analysis"])
    (finding,) = [finding for finding in fast["findings"] if finding["kind"] == "fast_retransmission"]
    # The duplicate ACKs behind it (its original was not captured here: lost before the capture point),
    # each an earlier frame flagged duplicate_ack; the reason counts exactly the ones it refers to.
    by_frame = {row["frame"]: row for row in rows}
    duplicates = finding["refers_to"]
    assert duplicates and all(frame < fast["frame"] for frame in duplicates)
    assert all("duplicate_ack" in by_frame[frame]["analysis"] for frame in duplicates)
    assert f"after {len(duplicates)} duplicate ACKs" in finding["reason"]
    code, out, _ = run(
        "events", str(CORPUS / "zeek-pcapng-multi-interface.pcapng"), "--stream", "1", "--protocol", "udp", "-q"
    )
    assert code == 0 and all(line.split("\t")[7] == "1" for line in out.splitlines()[1:])


def test_flows_table_json_and_tsv() -> None:
    code, out, _ = run("flows", str(STORY), "-q")
    assert code == 0
    assert "TCP conversations: 1" in out and "complete" in out and "127.0.0.1:8080" in out
    code, out, _ = run("flows", str(CORPUS / "zeek-ssh-dups.pcap"), "--format", "json", "-q")
    (row,) = json.loads(out)
    assert row["outcome"] and "retransmission" in row["events"]
    code, out, _ = run("flows", str(STORY), "--format", "tsv", "-q")
    assert out.splitlines()[0].startswith("protocol\tstream")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("sv-tls_DER-incomplete-content.pcap", "bigger than the maximum"),
        ("derived-ssh-dups-cut20000.pcap", "cut short"),
        ("gopacket-le-test901.pcapng", "unsupported pcapng section version 2.0"),
    ],
)
def test_damaged_corpus_files_give_frames_and_one_warning_line(name: str, problem: str) -> None:
    code, out, err = run("events", str(CORPUS / name))
    assert code == 3
    assert len(out.splitlines()) > 1
    warnings = [line for line in err.splitlines() if line.startswith("sockstory: warning:")]
    assert len(warnings) == 1 and name in warnings[0] and problem in warnings[0]
    assert "Traceback" not in err


def test_bad_inputs_give_one_line_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    text = tmp_path / "notes.txt"
    text.write_text("not a capture\n")
    for path, problem in (
        (tmp_path / "missing.pcap", "no such file"),
        (tmp_path, "is a directory"),
        (empty, "empty file"),
        (text, "not a pcap or pcapng file"),
    ):
        code, out, err = run("flows", str(path))
        assert code == 1 and out == ""
        assert err.count("\n") == 1 and str(path) in err and problem in err


def test_bad_requests_exit_2() -> None:
    code, _, err = run("events", str(STORY), "--stream", "9")
    assert code == 2 and "no stream 9" in err.splitlines()[-1]
    code, _, err = run("events", str(STORY), "--format", "xml")
    assert code == 2 and "invalid choice" in err
    code, _, _ = run()
    assert code == 2


def test_help_shows_examples() -> None:
    code, out, _ = run("--help")
    assert code == 0 and "examples:" in out and "sockstory flows" in out


@pytest.mark.parametrize("suffix", ["png", "svg", "pdf", "txt", "mmd"])
def test_draw_writes_each_format(tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"story.{suffix}"
    code, _, err = run("draw", str(STORY), "-o", str(target))
    assert code == 0, err
    data = target.read_bytes()
    assert len(data) > 200
    if suffix == "png":
        assert data.startswith(b"\x89PNG")
    elif suffix == "pdf":
        assert data.startswith(b"%PDF")
    elif suffix == "svg":
        text = data.decode()
        assert text.count("<title>frame ") == 10 and "tic tac toe" in text
    elif suffix == "txt":
        assert "client 127.0.0.1:56566" in data.decode() and "TIME-WAIT" in data.decode()
    else:
        assert data.decode().startswith("sequenceDiagram")


def test_draw_pages_long_ladders_into_numbered_files(tmp_path: Path) -> None:
    target = tmp_path / "dups.png"
    code, _, err = run("draw", str(CORPUS / "zeek-ssh-dups.pcap"), "-o", str(target), "--rows-per-page", "40")
    assert code == 0, err
    pages = sorted(tmp_path.glob("dups-*.png"))
    assert len(pages) > 3 and all(page.read_bytes().startswith(b"\x89PNG") for page in pages)


def test_draw_ascii_and_mermaid_to_stdout() -> None:
    code, out, _ = run("draw", str(STORY), "--format", "ascii", "-q")
    assert code == 0 and out.count("\n") >= 12 and "|" in out
    code, out, _ = run("draw", str(STORY), "--format", "mermaid", "-q")
    assert code == 0 and out.startswith("sequenceDiagram") and "P0->>P1" in out


def test_draw_time_sequence(tmp_path: Path) -> None:
    target = tmp_path / "tsg.png"
    code, _, err = run("draw", str(CORPUS / "zeek-retransmit-fast009.pcap"), "--time-sequence", "-o", str(target))
    assert code == 0, err
    assert target.read_bytes().startswith(b"\x89PNG")


def test_draw_bad_requests(tmp_path: Path) -> None:
    code, _, err = run("draw", str(STORY), "--stream", "4", "-o", str(tmp_path / "x.png"))
    assert code == 2 and "no TCP stream 4" in err.splitlines()[-1]
    code, _, err = run("draw", str(STORY), "-o", str(tmp_path / "x.gif"))
    assert code == 2 and "unknown output format" in err
    code, _, err = run("draw", str(STORY), "-o", str(tmp_path / "missing" / "x.png"))
    assert code == 2 and "cannot write" in err and err.count("\n") == 1
    code, _, err = run("draw", str(STORY), "--format", "gif")
    assert code == 2 and "invalid choice" in err
    code, _, err = run("draw", str(CORPUS / "zeek-docker-http-upgrade.pcap"), "--stream", "0", "--protocol", "udp")
    assert code == 2 and "no UDP stream 0" in err
