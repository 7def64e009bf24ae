"""Saving ladders and time-sequence graphs to files: PNG, SVG (with tooltips), multi-page PDF, text.

The library's drawing functions only return Axes; this module (used by the CLI
and notebooks) pages long ladders and saves figures. It draws into figures made
outside pyplot (``matplotlib.figure.Figure``): no ``matplotlib.use``, so a notebook
keeps its backend, and a machine without a display needs none.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from visualizer.errors import UsageError
from visualizer.render.layout import Arrow, LadderLayout, Mark
from visualizer.render.text import to_ascii, to_mermaid

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

ROWS_PER_PAGE = 60
FIGURE_FORMATS = ("png", "svg", "pdf")
TEXT_FORMATS = ("ascii", "mermaid")


def page_paths(path: Path, pages: int) -> list[Path]:
    """``out.png`` for one page; ``out-1.png``, ``out-2.png``... for several."""
    if pages == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{index}{path.suffix}") for index in range(1, pages + 1)]


def save_ladder(
    layout: LadderLayout, path: Path, *, file_format: str, time: str = "order", rows_per_page: int = ROWS_PER_PAGE
) -> list[Path]:
    """Write the ladder; returns the files written. A long ladder becomes pages, never smaller text."""
    if file_format in TEXT_FORMATS:
        text = to_ascii(layout) if file_format == "ascii" else to_mermaid(layout)
        _write_text(path, text)
        return [path]
    if file_format not in FIGURE_FORMATS:
        raise UsageError(f"unknown format {file_format!r} (choose from {', '.join(FIGURE_FORMATS + TEXT_FORMATS)})")
    from visualizer.render.ladder import draw_ladder

    pages = layout.paginate(rows_per_page)
    written: list[Path] = []
    _check_writable(path)
    if file_format == "pdf":
        from matplotlib.backends.backend_pdf import PdfPages

        with PdfPages(path) as document:
            for page in pages:
                figure = _new_figure()
                draw_ladder(page, time=time, figure=figure)
                document.savefig(figure)
        return [path]
    for page, target in zip(pages, page_paths(path, len(pages))):
        figure = _new_figure()
        draw_ladder(page, time=time, figure=figure)
        if file_format == "svg":
            _save_svg_with_tooltips(figure, page, target)
        else:
            figure.savefig(target, dpi=110)
        written.append(target)
    return written


FIGURE_SUFFIXES = (".png", ".svg", ".pdf")


class Drawing(Protocol):
    """A drawing function that can draw into a given empty figure (``draw_anatomy``, ``draw_state_diagram``)."""

    def __call__(self, *, figure: Figure) -> Axes: ...


def save_figure(draw: Drawing, path: Path, *, dpi: int = 110) -> Path:
    """Draw into a new figure (no pyplot, no backend change) and save it to ``path`` (.png, .svg or .pdf).

    A bad suffix or an unwritable path is the caller's mistake: one UsageError line.
    """
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        raise UsageError(f"{path}: unknown output format {path.suffix!r}; use .png, .svg or .pdf")
    figure = _new_figure()
    draw(figure=figure)
    try:
        figure.savefig(path, dpi=dpi)
    except OSError as error:
        raise UsageError(f"{path}: cannot write ({error.strerror or error})") from None
    return path


def _new_figure(**options: Any) -> Figure:
    """A figure outside pyplot: it never touches the user's backend or pyplot's list of figures,
    and is freed with its last reference (``savefig`` picks the canvas of the file's format)."""
    from matplotlib.figure import Figure

    return Figure(**options)


def _save_svg_with_tooltips(figure: Figure, layout: LadderLayout, target: Path) -> None:
    """Save as SVG and give every arrow a <title>, which browsers show on hover."""
    import io

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    tooltips = {f"frame-{row.frame}": row.tooltip for row in layout.rows if isinstance(row, (Arrow, Mark))}

    def add_title(match: re.Match[str]) -> str:
        tooltip = tooltips.get(match.group(1))
        if tooltip is None:
            return match.group(0)
        return f"{match.group(0)}\n   <title>{html.escape(tooltip)}</title>"

    svg = re.sub(r'<g id="(frame-\d+)">', add_title, buffer.getvalue())
    _write_text(target, svg)


def _check_writable(path: Path) -> None:
    try:
        with path.open("a"):
            pass
    except OSError as error:
        raise UsageError(f"{path}: cannot write ({error.strerror or error})") from None


def _write_text(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise UsageError(f"{path}: cannot write ({error.strerror or error})") from None


def save_time_sequence(frames: object, stream: int, path: Path, *, file_format: str) -> list[Path]:
    """Both directions of a TCP stream's time-sequence graph, one above the other."""
    if file_format not in FIGURE_FORMATS:
        raise UsageError(f"the time-sequence graph is a figure: use {', '.join(FIGURE_FORMATS)}")
    from visualizer.render.time_sequence import draw_time_sequence

    _check_writable(path)
    figure = _new_figure(figsize=(11, 10), layout="constrained")
    upper, lower = figure.subplots(2, 1)
    draw_time_sequence(frames, stream=stream, from_initiator=True, ax=upper)  # type: ignore[arg-type]
    draw_time_sequence(frames, stream=stream, from_initiator=False, ax=lower)  # type: ignore[arg-type]
    figure.savefig(path, dpi=110)
    return [path]
