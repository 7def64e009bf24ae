"""Saving ladders and time-sequence graphs to files: PNG, SVG (with tooltips), multi-page PDF, text.

The library's drawing functions only return Axes; this module (used by the CLI
and notebooks) pages long ladders and saves figures. It draws into figures made
outside pyplot (``matplotlib.figure.Figure``): no ``matplotlib.use``, so a notebook
keeps its backend, and a machine without a display needs none.

Every file is written atomically (:mod:`visualizer.files`): an error or
Ctrl-C leaves the old file intact. A paged ladder writes only its own pages and
removes the pages (or the single file) of an earlier run of the same name and
format, so no stale page can be taken for this run's; files of other formats are
left alone.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from visualizer.errors import UsageError
from visualizer.files import PendingFiles, atomic_write, check_writable, numbered_siblings, writing_files
from visualizer.render.layout import Arrow, Call, LadderLayout, Mark
from visualizer.render.text import to_ascii, to_mermaid

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from visualizer.analysis.kernel import KernelStory
    from visualizer.analysis.report import FrameAnalysis
    from visualizer.render.time_sequence import TimeSequence

ROWS_PER_PAGE = 100
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
        return [atomic_write(path, _text_writer(text))]
    if file_format not in FIGURE_FORMATS:
        raise UsageError(f"unknown format {file_format!r} (choose from {', '.join(FIGURE_FORMATS + TEXT_FORMATS)})")
    check_writable(path)
    pages = layout.paginate(rows_per_page)
    if file_format == "pdf":

        def write_pdf(handle: BinaryIO) -> None:
            from matplotlib.backends.backend_pdf import PdfPages

            with PdfPages(handle) as document:
                for page in pages:
                    document.savefig(_ladder_figure(page, time))

        return [atomic_write(path, write_pdf)]
    targets = page_paths(path, len(pages))

    def write_pages(files: PendingFiles) -> None:
        _write_pages(files, pages, targets, file_format, time)

    return _replace_pages(path, targets, write_pages)


def _ladder_figure(page: LadderLayout, time: str) -> Figure:
    from visualizer.render.ladder import draw_ladder

    figure = _new_figure()
    draw_ladder(page, time=time, figure=figure)
    return figure


def _write_pages(
    files: PendingFiles, pages: list[LadderLayout], targets: list[Path], file_format: str, time: str
) -> None:
    """Each page of a ladder to its PNG or SVG file (SVG arrows with their tooltips)."""
    for page, target in zip(pages, targets):
        figure = _ladder_figure(page, time)
        if file_format == "svg":
            files.write(target, _text_writer(_svg_with_tooltips(figure, page)))
        else:
            files.write(target, functools.partial(figure.savefig, format="png", dpi=110))


def _replace_pages(path: Path, targets: list[Path], write: Callable[[PendingFiles], None]) -> list[Path]:
    """Write ``targets`` (the PNG or SVG pages of ``path``, or ``path`` itself) together; the single
    file or numbered pages of an earlier run under the same name and format that are not among them go."""
    with writing_files() as files:
        write(files)
        earlier = [path, *numbered_siblings(path), *_conversation_siblings(path)]
        files.remove_on_commit(page for page in earlier if page not in targets and page.is_file())
    return targets


def conversation_path(path: Path, key: tuple[str, int]) -> Path:
    """The file of one conversation's ladder beside the overview ``path``: ``out-tcp-3.png``,
    ``out-udp-0.png``; ``out-other.png`` for the frames of no conversation."""
    protocol, stream = key
    name = "other" if protocol == "other" else f"{protocol}-{stream}"
    return path.with_name(f"{path.stem}-{name}{path.suffix}")


def save_conversations(
    overview: Drawing,
    ladders: Sequence[tuple[tuple[str, int], LadderLayout]],
    path: Path,
    *,
    file_format: str,
    time: str = "order",
    rows_per_page: int = ROWS_PER_PAGE,
) -> list[Path]:
    """The overview of a capture of several conversations at ``path`` and each conversation's ladder
    beside it (``out-tcp-3.png``, paged as ``out-tcp-3-1.png``...), all written together; or, for
    PDF, one document: the overview, then every conversation's pages. Returns the files written."""
    if file_format not in FIGURE_FORMATS:
        raise UsageError(f"the overview is a figure: use {', '.join(FIGURE_FORMATS)}")
    check_writable(path)
    paged = [(key, layout.paginate(rows_per_page)) for key, layout in ladders]
    if file_format == "pdf":

        def write_pdf(handle: BinaryIO) -> None:
            from matplotlib.backends.backend_pdf import PdfPages

            with PdfPages(handle) as document:
                figure = _new_figure()
                overview(figure=figure)
                document.savefig(figure)
                for _, pages in paged:
                    for page in pages:
                        document.savefig(_ladder_figure(page, time))

        return [atomic_write(path, write_pdf)]
    written = [path]
    with writing_files() as files:
        figure = _new_figure()
        overview(figure=figure)
        files.write(path, functools.partial(figure.savefig, format=file_format, dpi=110))
        for key, pages in paged:
            single = conversation_path(path, key)
            targets = page_paths(single, len(pages))
            _write_pages(files, pages, targets, file_format, time)
            written += targets
        # The pages of an earlier single ladder, and the conversations of an earlier run, under this name.
        stale = [*numbered_siblings(path), *_conversation_siblings(path)]
        files.remove_on_commit(page for page in stale if page not in written and page.is_file())
    return written


def _conversation_siblings(path: Path) -> list[Path]:
    """The files named like conversation ladders of the overview ``path`` (``out-tcp-3.png``,
    ``out-udp-0-2.png``, ``out-other.png``...) in its folder."""
    pattern = re.compile(
        re.escape(path.stem) + r"-(?:(?:tcp|udp)-[0-9]+|other)(?:-[1-9][0-9]*)?" + re.escape(path.suffix)
    )
    try:
        return sorted(sibling for sibling in path.parent.iterdir() if pattern.fullmatch(sibling.name))
    except OSError:
        return []


def _text_writer(text: str) -> Callable[[BinaryIO], object]:
    return lambda handle: handle.write(text.encode("utf-8"))


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
    check_writable(path)
    figure = _new_figure()
    draw(figure=figure)
    return atomic_write(path, functools.partial(figure.savefig, format=path.suffix.lower()[1:], dpi=dpi))


def _new_figure(**options: Any) -> Figure:
    """A figure outside pyplot: it never touches the user's backend or pyplot's list of figures,
    and is freed with its last reference (``savefig`` picks the canvas of the file's format)."""
    from matplotlib.figure import Figure

    return Figure(**options)


def _svg_with_tooltips(figure: Figure, layout: LadderLayout) -> str:
    """The figure as SVG, every arrow (and marked frame) and every call's words with a <title>, which
    browsers show on hover."""
    import io

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    tooltips = {f"frame-{row.frame}": row.tooltip for row in layout.rows if isinstance(row, (Arrow, Mark))}
    tooltips.update({f"call-{index}": row.tooltip for index, row in enumerate(layout.rows) if isinstance(row, Call)})

    def add_title(match: re.Match[str]) -> str:
        tooltip = tooltips.get(match.group(1))
        if tooltip is None:
            return match.group(0)
        return f"{match.group(0)}\n   <title>{html.escape(tooltip)}</title>"

    return re.sub(r'<g id="((?:frame|call)-\d+)">', add_title, buffer.getvalue())


def save_time_sequence(
    frames: TimeSequence | Sequence[FrameAnalysis],
    stream: int,
    path: Path,
    *,
    file_format: str,
    kernel: KernelStory | None = None,
) -> list[Path]:
    """A TCP stream's time-sequence graph: each direction that sends data, one above the other, each
    with its kernel strips (congestion and receive window) when ``kernel`` has samples for them.

    ``frames`` is a :class:`~visualizer.render.time_sequence.TimeSequence` (what a long stream
    should be gathered into, frame by frame) or the frame analyses of the stream; ``kernel`` the
    kernel's events recorded beside the capture, joined to it (:func:`visualizer.pipeline.kernel_story`)."""
    if file_format not in FIGURE_FORMATS:
        raise UsageError(f"the time-sequence graph is a figure: use {', '.join(FIGURE_FORMATS)}")
    from visualizer.render.time_sequence import TimeSequence, draw_time_sequence_figure, figure_height

    check_writable(path)
    if not isinstance(frames, TimeSequence):
        frames = TimeSequence.of(frames, stream)
    figure = _new_figure(figsize=(11, figure_height(frames, kernel)), layout="constrained")
    draw_time_sequence_figure(frames, figure=figure, kernel=kernel)
    return [atomic_write(path, functools.partial(figure.savefig, format=file_format, dpi=110))]
