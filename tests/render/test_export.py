"""Saving figures leaves matplotlib's global state alone and needs no display."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from matplotlib.figure import Figure

from tests.render.images import pdf_pages, pixels, png_size, svg_size, svg_titles
from visualizer.cli import main
from visualizer.pipeline import analyse_file
from visualizer.render.export import save_ladder, save_time_sequence
from visualizer.render.ladder import draw_ladder
from visualizer.render.layout import Arrow, LadderLayout, build_ladder

ROOT = Path(__file__).parent.parent.parent
STORY = ROOT / "captures" / "story.pcap"
RETRANSMITS = ROOT / "tests" / "data" / "corpus" / "captures" / "zeek-retransmit-fast009.pcap"
DUPLICATES = ROOT / "tests" / "data" / "corpus" / "captures" / "derived-ssh-dups-cut20000.pcap"
LONG = ROOT / "tests" / "data" / "corpus" / "captures" / "sv-tcp-empty-sack-tcp-opt.pcap"

_SAVE_EVERYTHING = f"""
import sys
from pathlib import Path

import matplotlib

matplotlib.use(sys.argv[2])
before = matplotlib.get_backend()

from functools import partial

from visualizer.pipeline import analyse_file
from visualizer.render.anatomy import anatomy_of, draw_anatomy
from visualizer.render.export import save_figure, save_ladder, save_time_sequence
from visualizer.render.layout import build_ladder
from visualizer.render.states import draw_state_diagram
from visualizer.sources import CaptureReader

out = Path(sys.argv[1])
report = analyse_file({str(STORY)!r}, keep_frames=True)
layout = build_ladder(report.frame_analyses, origin_ns=report.first_time_ns)
for file_format in ("png", "svg", "pdf"):
    save_ladder(layout, out / f"ladder.{{file_format}}", file_format=file_format)
save_figure(draw_state_diagram, out / "states.png")
frame = next(iter(CaptureReader({str(STORY)!r})))
save_figure(partial(draw_anatomy, anatomy_of(frame.data, link_type=frame.link_type, frame=1)), out / "syn.svg")
transfer = analyse_file({str(RETRANSMITS)!r}, keep_frames=True)
save_time_sequence(transfer.frame_analyses, 0, out / "tsg.pdf", file_format="pdf")
print(before, matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""


@pytest.mark.parametrize("backend", ["svg", "pdf"])
def test_saving_keeps_the_callers_backend_and_never_loads_pyplot(tmp_path: Path, backend: str) -> None:
    """A notebook user's backend stays theirs: export draws into Figure objects, without pyplot."""
    done = subprocess.run(
        [sys.executable, "-c", _SAVE_EVERYTHING, str(tmp_path), backend],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [backend, backend, "False"]
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == ["ladder.pdf", "ladder.png", "ladder.svg", "states.png", "syn.svg", "tsg.pdf"]


def test_the_package_never_chooses_a_backend() -> None:
    """``matplotlib.use`` and rcParams belong to the application (a notebook, a script), not the library."""
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "visualizer").rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "matplotlib.use(" in line or "rcParams[" in line or "switch_backend" in line
    ]
    assert offenders == []


def test_the_cli_draws_without_a_display(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "MPLBACKEND")}
    environment["WAYLAND_DISPLAY"] = ""
    for argv, target in (
        (["draw", str(STORY), "-o"], tmp_path / "story.png"),
        (["draw", str(RETRANSMITS), "--time-sequence", "-o"], tmp_path / "tsg.svg"),
        (["anatomy", str(STORY), "--frame", "1", "-o"], tmp_path / "syn.pdf"),
        (["states", "-o"], tmp_path / "states.png"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "visualizer", *argv, str(target)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=environment,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert target.stat().st_size > 1000


def _ladder(path: Path) -> LadderLayout:
    report = analyse_file(path, keep_frames=True)
    return build_ladder(report.frame_analyses, origin_ns=report.first_time_ns)


def test_a_png_ladder_has_the_pixel_size_of_its_figure(tmp_path: Path) -> None:
    layout = _ladder(STORY)
    (written,) = save_ladder(layout, tmp_path / "story.png", file_format="png")
    figure = Figure()
    draw_ladder(layout, figure=figure)
    assert png_size(written.read_bytes()) == pixels(figure, 110)


def test_a_long_ladder_is_one_pdf_page_per_ladder_page(tmp_path: Path) -> None:
    layout = _ladder(DUPLICATES)
    pages = layout.paginate(30)
    assert len(pages) == 3
    save_ladder(layout, tmp_path / "dups.pdf", file_format="pdf", rows_per_page=30)
    sizes = pdf_pages((tmp_path / "dups.pdf").read_bytes())
    expected = []
    for page in pages:
        figure = Figure()
        draw_ladder(page, figure=figure)
        width, height = figure.get_size_inches()
        expected.append((round(width * 72, 2), round(height * 72, 2)))
    assert [(round(width, 2), round(height, 2)) for width, height in sizes] == expected


def test_svg_pages_have_one_tooltip_per_arrow_with_its_frame(tmp_path: Path) -> None:
    layout = _ladder(DUPLICATES)
    pages = layout.paginate(30)
    written = save_ladder(layout, tmp_path / "dups.svg", file_format="svg", rows_per_page=30)
    assert [path.name for path in written] == [f"dups-{index}.svg" for index in range(1, len(pages) + 1)]
    for page, path in zip(pages, written, strict=True):
        arrows = [row for row in page.rows if isinstance(row, Arrow)]
        assert svg_titles(path.read_text()) == [arrow.tooltip for arrow in arrows]
        assert all(arrow.tooltip.startswith(f"frame {arrow.frame}: ") for arrow in arrows)


def test_the_time_sequence_graph_is_11_by_10_inches(tmp_path: Path) -> None:
    transfer = analyse_file(RETRANSMITS, keep_frames=True)
    save_time_sequence(transfer.frame_analyses, 0, tmp_path / "tsg.svg", file_format="svg")
    assert svg_size((tmp_path / "tsg.svg").read_text()) == (11 * 72, 10 * 72)


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def _interrupt_savefig_half_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every figure saved from now on writes half of its bytes, then Ctrl-C arrives."""
    real = Figure.savefig

    def half_then_interrupt(self: Figure, target: Any, *arguments: Any, **options: Any) -> None:
        if not isinstance(target, (str, os.PathLike, io.IOBase)):  # PdfPages: its file gets the whole page
            real(self, target, *arguments, **options)
            raise KeyboardInterrupt
        if isinstance(target, (str, os.PathLike)):
            options.setdefault("format", Path(target).suffix[1:])
        buffer = io.BytesIO()
        real(self, buffer, *arguments, **options)
        half = buffer.getvalue()[: len(buffer.getvalue()) // 2]
        if isinstance(target, io.TextIOBase):
            target.write(half.decode("utf-8", "ignore"))
        elif isinstance(target, io.IOBase):
            target.write(half)
        else:
            Path(target).write_bytes(half)
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", half_then_interrupt)


INTERRUPTED_COMMANDS = {
    "ladder png": ["draw", str(STORY), "-o", "out.png"],
    "ladder svg": ["draw", str(STORY), "-o", "out.svg"],
    "ladder pdf": ["draw", str(LONG), "--rows-per-page", "20", "-o", "out.pdf"],
    "paged png": ["draw", str(LONG), "--rows-per-page", "20", "-o", "out.png"],
    "time-sequence": ["draw", str(RETRANSMITS), "--time-sequence", "-o", "out.png"],
    "anatomy": ["anatomy", str(STORY), "--frame", "4", "-o", "out.png"],
    "states": ["states", "-o", "out.pdf"],
}


@pytest.mark.parametrize("name", list(INTERRUPTED_COMMANDS))
def test_ctrl_c_while_a_figure_is_written_leaves_the_old_files_intact(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An earlier run's files stay byte for byte, and no temporary file is left behind."""
    monkeypatch.chdir(tmp_path)
    argv = INTERRUPTED_COMMANDS[name]
    assert main(argv, stdout=io.StringIO(), stderr=io.StringIO()) == 0
    before = _files(tmp_path)
    _interrupt_savefig_half_way(monkeypatch)
    err = io.StringIO()
    assert main(argv, stdout=io.StringIO(), stderr=err) == 130
    assert err.getvalue() == "sockstory: interrupted\n"
    assert _files(tmp_path) == before


def test_a_paged_draw_writes_only_its_own_pages(tmp_path: Path) -> None:
    """No empty out.png beside the pages; the pages (or the single file) of an earlier, longer run under the
    same name and format go; a file of another format (an earlier out.svg) is not this run's and stays."""
    target = tmp_path / "dups.png"
    (tmp_path / "dups.svg").write_text("an earlier run's SVG")
    (tmp_path / "dups-notes.png").write_bytes(b"not a page")

    def draw(rows_per_page: int) -> list[str]:
        err = io.StringIO()
        argv = ["draw", str(LONG), "-o", str(target), "--rows-per-page", str(rows_per_page)]
        assert main(argv, stdout=io.StringIO(), stderr=err) == 0, err.getvalue()
        return [line.removeprefix(f"sockstory: wrote {tmp_path}/") for line in err.getvalue().splitlines()[:-1]]

    def others() -> list[str]:
        return ["dups-notes.png", "dups.svg"]

    written = draw(5)
    assert len(written) > 3 and written == [f"dups-{index}.png" for index in range(1, len(written) + 1)]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(written + others())
    fewer = draw(15)
    assert 1 < len(fewer) < len(written)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(fewer + others())
    assert draw(1000) == ["dups.png"]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(["dups.png", *others()])
    assert (tmp_path / "dups.svg").read_text() == "an earlier run's SVG"


def test_a_failed_request_creates_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for argv in (
        ["draw", str(STORY), "--stream", "7", "-o", "out.png"],
        ["draw", str(STORY), "--time-sequence", "-o", "out.txt"],
        ["anatomy", str(STORY), "--frame", "99", "-o", "out.png"],
        ["states", "-o", "out.gif"],
    ):
        assert main(argv, stdout=io.StringIO(), stderr=io.StringIO()) == 2
    assert list(tmp_path.iterdir()) == []
