"""Saving figures leaves matplotlib's global state alone and needs no display."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from tests.render.images import pdf_pages, pixels, png_size, svg_size, svg_titles
from visualizer.pipeline import analyse_file
from visualizer.render.export import save_ladder, save_time_sequence
from visualizer.render.ladder import draw_ladder
from visualizer.render.layout import Arrow, LadderLayout, build_ladder

ROOT = Path(__file__).parent.parent.parent
STORY = ROOT / "captures" / "story.pcap"
RETRANSMITS = ROOT / "tests" / "data" / "corpus" / "captures" / "zeek-retransmit-fast009.pcap"
DUPLICATES = ROOT / "tests" / "data" / "corpus" / "captures" / "derived-ssh-dups-cut20000.pcap"

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
