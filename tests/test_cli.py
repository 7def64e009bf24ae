"""The command line through main(argv): output, exit codes and one-line errors."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from tests.render.images import pdf_pages, png_size, svg_size, svg_titles
from tests.render.synthetic import missing_syn_ack_then_reset, refused_with_an_undecodable_answer, write_pcap
from visualizer.cli import EVENT_COLUMNS, main
from visualizer.pipeline import analyse_file

ROOT = Path(__file__).parent.parent
STORY = ROOT / "captures" / "story.pcap"
CORPUS = Path(__file__).parent / "data" / "corpus" / "captures"
LONG = CORPUS / "sv-tcp-empty-sack-tcp-opt.pcap"


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
    # Its original (the frame that first held its bytes, cut differently) and the duplicate ACKs behind
    # it, each an earlier frame flagged duplicate_ack; the reason counts exactly the ones it refers to.
    by_frame = {row["frame"]: row for row in rows}
    original = finding["original"]
    assert finding["refers_to"][0] == original and f"of #{original} " in finding["reason"]
    assert by_frame[original]["seq"] <= fast["seq"] < by_frame[original]["seq"] + by_frame[original]["len"]
    duplicates = finding["refers_to"][1:]
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
    # One line for the damage (sv-tls_DER's time also goes backwards: a second line says so).
    assert len([line for line in warnings if problem in line]) == 1 and all(name in line for line in warnings)
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


def test_draw_writes_one_figure_in_each_image_format(tmp_path: Path) -> None:
    """The same ladder: an SVG with one tooltip per frame, a PNG of its size at 110 dpi, a one-page PDF of it."""
    for suffix in ("svg", "png", "pdf"):
        code, _, err = run("draw", str(STORY), "-o", str(tmp_path / f"story.{suffix}"))
        assert code == 0, err
    svg = (tmp_path / "story.svg").read_text()
    titles = svg_titles(svg)
    assert [title.split(":")[0] for title in titles] == [f"frame {number}" for number in range(1, 11)]
    assert titles[0].startswith("frame 1: SYN seq=0 win=65495 <mss 65495")
    assert "tic tac toe?" in titles[3]
    width, height = svg_size(svg)  # points: 72 per inch
    assert png_size((tmp_path / "story.png").read_bytes()) == pytest.approx(
        (width / 72 * 110, height / 72 * 110), abs=1
    )
    (page,) = pdf_pages((tmp_path / "story.pdf").read_bytes())
    assert page == pytest.approx((width, height), abs=0.01)


@pytest.mark.parametrize("suffix", ["txt", "mmd"])
def test_draw_writes_each_text_format(tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"story.{suffix}"
    code, _, err = run("draw", str(STORY), "-o", str(target))
    assert code == 0, err
    text = target.read_text()
    if suffix == "txt":
        assert "client 127.0.0.1:56566" in text and "TIME-WAIT" in text
    else:
        assert text.startswith("sequenceDiagram") and text.count("->>") == 10


def test_draw_pages_long_ladders_into_numbered_files(tmp_path: Path) -> None:
    """Numbered PNG files of one size, as many pages in one PDF, each SVG page titled with its number."""
    target = tmp_path / "dups.png"
    code, _, err = run("draw", str(LONG), "-o", str(target), "--rows-per-page", "5")
    assert code == 0, err
    pages = sorted(tmp_path.glob("dups-*.png"), key=lambda path: int(path.stem.rsplit("-", 1)[1]))
    assert len(pages) > 3
    assert [path.name for path in pages] == [f"dups-{index}.png" for index in range(1, len(pages) + 1)]
    code, _, err = run("draw", str(LONG), "-o", str(tmp_path / "dups.pdf"), "--rows-per-page", "5")
    assert code == 0, err
    # Page i of the PDF is PNG page i: the same figure (points at 72 per inch, pixels at 110).
    pdf = pdf_pages((tmp_path / "dups.pdf").read_bytes())
    assert len(pdf) == len(pages)
    for page, (width, height) in zip(pages, pdf, strict=True):
        assert png_size(page.read_bytes()) == pytest.approx((width / 72 * 110, height / 72 * 110), abs=1)
    code, _, err = run("draw", str(LONG), "-o", str(tmp_path / "dups.svg"), "--rows-per-page", "5")
    assert code == 0, err
    for index in range(1, len(pages) + 1):
        assert f"(page {index} of {len(pages)})" in (tmp_path / f"dups-{index}.svg").read_text()


def test_draw_ascii_and_mermaid_to_stdout() -> None:
    code, out, _ = run("draw", str(STORY), "--format", "ascii", "-q")
    assert code == 0 and out.count("\n") >= 12 and "|" in out
    code, out, _ = run("draw", str(STORY), "--format", "mermaid", "-q")
    assert code == 0 and out.startswith("sequenceDiagram") and "P0->>P1" in out


def test_draw_time_sequence(tmp_path: Path) -> None:
    target = tmp_path / "tsg.png"
    code, _, err = run("draw", str(CORPUS / "zeek-retransmit-fast009.pcap"), "--time-sequence", "-o", str(target))
    assert code == 0, err
    assert png_size(target.read_bytes()) == (11 * 110, 10 * 110)  # two graphs, 11 x 10 inches


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


def test_draw_refuses_a_format_its_output_name_contradicts(tmp_path: Path) -> None:
    """Text in a .png misleads every viewer: one line naming the file and the name to use, nothing written."""
    for file_format, name, fixed in (
        ("ascii", "y.png", "y.txt"),
        ("mermaid", "y.txt", "y.mmd"),
        ("svg", "y.PDF", "y.svg"),
    ):
        code, out, err = run("draw", str(STORY), "--format", file_format, "-o", str(tmp_path / name))
        assert code == 2 and out == ""
        (line,) = err.splitlines()
        assert f"{tmp_path / name}: --format {file_format} does not match" in line and fixed in line
    assert list(tmp_path.iterdir()) == []
    code, _, err = run("draw", str(STORY), "--format", "png", "-o", str(tmp_path / "y.PNG"))  # case does not matter
    assert code == 0, err
    code, _, err = run("draw", str(STORY), "--format", "ascii", "-o", str(tmp_path / "y.out"))  # no known extension
    assert code == 0 and "client 127.0.0.1:56566" in (tmp_path / "y.out").read_text()


def test_scenarios_lists_whole_descriptions_and_how_to_run_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from visualizer.scenarios import SCENARIOS

    monkeypatch.setattr("sys.argv", [".venv/bin/sockstory"])
    code, out, _ = run("scenarios")
    assert code == 0
    for scenario in SCENARIOS.values():
        assert scenario.description.endswith("."), scenario.name
        assert re.search(rf"^  {scenario.name} +{re.escape(scenario.description)}$", out, re.MULTILINE)
    assert out.endswith("run one as root: .venv/bin/sockstory run NAME --draw (as a user, put sudo first)\n")


def test_a_scenario_description_is_its_whole_first_paragraph() -> None:
    from visualizer.scenarios import Scenario

    def wrapped() -> None:
        """A first sentence that a docstring
        wraps over two lines.

        Details that are not the description.
        """

    assert Scenario("wrapped", wrapped).description == "A first sentence that a docstring wraps over two lines."


def test_help_of_root_commands_shows_commands_that_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """sudo does not search .venv/bin: the examples name the program as it was started."""
    monkeypatch.setattr("sys.argv", [".venv/bin/sockstory"])
    for command, example in (("story", "story"), ("run", "run loss --draw"), ("capture", "capture --filter")):
        code, out, _ = run(command, "--help")
        assert code == 0 and "sudo sockstory" not in out
        assert "(as root; as a user, put sudo first)" in out and f"\n  .venv/bin/sockstory {example}" in out


SELF_ARROW = re.compile(r"^\s*(P\d+)\S*?>>?\1:", re.MULTILINE)


@pytest.mark.parametrize("file_format", ["ascii", "mermaid", "png", "svg", "pdf"])
def test_draw_an_undecodable_frame_as_a_marked_row_in_every_format(tmp_path: Path, file_format: str) -> None:
    """captures/refused.pcap with its RST's first IPv4 byte 0x45 changed to 0x40: the RST is undecodable.
    It once became an arrow from a made-up "host ?" to itself (P2->>P2), and the ASCII ladder crashed."""
    capture = write_pcap(tmp_path / "broken.pcap", refused_with_an_undecodable_answer())
    if file_format in ("ascii", "mermaid"):
        code, out, err = run("draw", str(capture), "--format", file_format, "-q")
        assert code == 0, err
        assert "host ?" not in out
        if file_format == "mermaid":
            assert not SELF_ARROW.findall(out), out
            assert "Note over P0,P1: #35;2 undecodable frame#58; bad IPv4 header" in out
        else:
            (line,) = [line for line in out.splitlines() if line.startswith("#2 ")]
            assert line.split()[2:] == [
                "!------------",
                "undecodable",
                "frame:",
                "bad",
                "IPv4",
                "header",
                "-----------!",
            ]
        return
    target = tmp_path / f"broken.{file_format}"
    code, _, err = run("draw", str(capture), "-o", str(target), "-q")
    assert code == 0, err
    if file_format == "svg":
        titles = svg_titles(target.read_text())
        assert sorted(title.split(":")[0] for title in titles) == ["frame 1", "frame 2"]
        assert "frame 2: undecodable frame: bad IPv4 header (decoded: eth, ethertype, ip)" in titles


def test_the_ladder_draws_an_undecodable_frame_as_a_mark_with_its_problem(tmp_path: Path) -> None:
    from matplotlib.patches import FancyArrowPatch

    from visualizer.render.ladder import draw_ladder

    capture = write_pcap(tmp_path / "broken.pcap", refused_with_an_undecodable_answer())
    ax = draw_ladder(analyse_file(capture, keep_frames=True))
    arrows = [patch.get_gid() for patch in ax.patches if isinstance(patch, FancyArrowPatch)]
    assert arrows == ["frame-1"]
    assert "undecodable frame: bad IPv4 header" in [text.get_text() for text in ax.texts]
    assert "frame-2" in [artist.get_gid() for artist in ax.get_children()]
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "undecodable frame, sender unknown" in legend


@pytest.mark.parametrize("reset_by_client", [False, True])
def test_flows_and_the_ladders_title_agree_on_a_stream_without_its_syn_ack(
    tmp_path: Path, reset_by_client: bool
) -> None:
    """SYN, SYN-ACK not captured, data both ways, RST: one outcome (the analysis's), in the flows table,
    in the title of the ladder drawn with and without --stream, and in the events' last states."""
    capture = write_pcap(tmp_path / "reset.pcap", missing_syn_ack_then_reset(reset_by_client=reset_by_client))
    code, out, err = run("flows", str(capture), "--format", "json", "-q")
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["outcome"] == "reset"
    for stream in ([], ["--stream", "0"]):
        code, out, err = run("draw", str(capture), *stream, "--format", "ascii", "-q")
        assert code == 0, err
        assert out.splitlines()[0] == f"TCP stream 0: 10.0.0.1:40000 → 10.0.0.2:80, {row['outcome']} (5 frames)"
        target = tmp_path / f"reset{len(stream)}.svg"
        code, _, err = run("draw", str(capture), *stream, "-o", str(target), "-q")
        assert code == 0, err
        assert f", {row['outcome']} (5 frames)" in target.read_text()
    code, out, _ = run("events", str(capture), "-q")
    last = dict(zip(EVENT_COLUMNS, out.splitlines()[-1].split("\t"), strict=True))
    assert (last["flags"], last["state"], last["receiver_state"]) == ("RST|ACK", "CLOSED", "CLOSED")


def test_errors_come_before_any_output(tmp_path: Path) -> None:
    """No header line, no empty table, no summary before an error: stdout stays empty, stderr is the reason."""
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(STORY.read_bytes()[:40])  # the file header, then half a record header
    for argv in (["events", str(cut)], ["flows", str(cut)], ["flows", str(cut), "--format", "tsv"]):
        code, out, err = run(*argv)
        assert (code, out) == (1, ""), argv
        assert err.splitlines() == [
            f"sockstory: warning: {cut}: file cut short in the middle of a packet; read 0 frames before it"
        ]
    code, out, err = run("draw", str(cut), "--format", "ascii")
    assert (code, out) == (1, "") and "file cut short" in err and "nothing to draw" not in err
    code, out, err = run("events", str(STORY), "--stream", "9")
    assert (code, out) == (2, "")
    assert err == "sockstory: error: " + f"{STORY}: no stream 9 (the capture has 1 TCP and 0 UDP streams)\n"


def test_events_of_an_empty_capture_is_the_header_alone(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    write_pcap(empty, [])
    code, out, _ = run("events", str(empty), "-q")
    assert (code, out) == (0, "\t".join(EVENT_COLUMNS) + "\n")


NAGLE = Path(__file__).parent / "data" / "scenarios" / "captures" / "nagle.pcap"


def test_draw_of_several_conversations_writes_an_overview_and_one_ladder_each(tmp_path: Path) -> None:
    """nagle has two conversations: out.png is their overview, out-tcp-0.png and out-tcp-1.png their ladders;
    files of an earlier run under the same name (pages, other conversations) go, others stay."""
    for stale in ("out-2.png", "out-tcp-7.png", "out-tcp-1-2.png", "out-udp-0.png"):
        (tmp_path / stale).write_bytes(b"old")
    (tmp_path / "out-tcp-0.svg").write_bytes(b"another format")
    code, _, err = run("draw", str(NAGLE), "-o", str(tmp_path / "out.png"), "-q")
    assert code == 0, err
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "out-tcp-0.png",
        "out-tcp-0.svg",
        "out-tcp-1.png",
        "out.png",
    ]
    assert err.splitlines() == [
        f"sockstory: wrote {tmp_path / name}" for name in ("out.png", "out-tcp-0.png", "out-tcp-1.png")
    ]
    # One PDF: the overview, then each conversation's page.
    code, _, err = run("draw", str(NAGLE), "-o", str(tmp_path / "out.pdf"), "-q")
    assert code == 0, err
    assert len(pdf_pages((tmp_path / "out.pdf").read_bytes())) == 3
    # --stream still draws one ladder, in one file.
    code, _, err = run("draw", str(NAGLE), "--stream", "1", "-o", str(tmp_path / "one.png"), "-q")
    assert code == 0 and err.splitlines() == [f"sockstory: wrote {tmp_path / 'one.png'}"]


def test_draw_help_says_how_several_conversations_are_named() -> None:
    code, out, _ = run("draw", "--help")
    assert code == 0
    assert "OUT-tcp-K" in out.replace("\n", " ") and "overview" in out
