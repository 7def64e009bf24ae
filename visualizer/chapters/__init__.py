"""The story notebooks' experiments: one real run on loopback, analysed, joined to the kernel's events.

Each chapter of ``notebooks/`` asks one question and answers it with an experiment. This package
holds what the notebooks and their tests share: :func:`workspace` (where a notebook writes its
captures), :func:`run` (a scenario run for real and read back as an :class:`Experiment`) and
:func:`load` (the same from a capture already made), and one module per chapter with the
measurements that state its answer (computed from what the experiment recorded, so that a test can
assert them and the notebook can print them).

Nothing here draws by itself: an :class:`Experiment` builds the ladder's layout and the narration,
and the notebook calls the renderer's ``draw_*`` functions, one figure per call.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from visualizer.errors import UsageError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from visualizer.analysis.kernel import EndpointKernel, KernelStory
    from visualizer.analysis.report import ConversationSummary, FrameAnalysis, Report
    from visualizer.render.anatomy import Anatomy
    from visualizer.render.layout import LadderLayout
    from visualizer.scenarios.runner import ScenarioResult
    from visualizer.sources.capture_file import RawFrame

NOTEBOOK_DPI = 72
"""The notebooks' figure dpi: figures stored in a notebook stay small (a repository page shows them so)."""


def workspace() -> Path:
    """A new directory for a notebook's captures (under ``$TMPDIR``). The notebook itself sets its figures'
    size (its ``figure.dpi``, to NOTEBOOK_DPI): rcParams belong to the application."""
    return Path(tempfile.mkdtemp(prefix="sockstory-notebook-"))


NOTEBOOK_WIDTH = 1150
"""Pixels a stored figure may span (a repository page shows 1,200 without scaling it down)."""
NOTEBOOK_AREA = 1_300_000
"""Pixels a stored figure may hold in all: a ladder's PNG takes about a quarter of a byte a pixel, and a
notebook's figures stay under 400 kB each."""
TIGHT_PAD_INCHES = 0.1
"""The margin a notebook leaves around a figure it crops to its contents (matplotlib's ``savefig.pad_inches``)."""


def fit(ax: Axes, pixels: int = NOTEBOOK_WIDTH, area: int = NOTEBOOK_AREA) -> None:
    """Store a figure wider than ``pixels``, or larger than ``area`` pixels in all (a tall ladder: a run
    with retransmissions unfolds rows), at a lower resolution (its dpi), so that the whole of it fits a
    page and the notebook stays small; a figure that fits keeps the notebook's dpi."""
    figure = ax.get_figure(root=True)
    if figure is None:  # an Axes of no figure: nothing is stored
        return
    box = figure.get_tightbbox()
    width = box.width + 2 * TIGHT_PAD_INCHES  # as the notebook crops and pads it (inches)
    height = box.height + 2 * TIGHT_PAD_INCHES
    figure.set_dpi(min(float(NOTEBOOK_DPI), pixels / width, (area / (width * height)) ** 0.5))


@dataclass(slots=True)
class Experiment:
    """A capture read back: its report, every frame's analysis, and the kernel's side when recorded."""

    name: str
    pcap: Path
    report: Report
    frames: list[FrameAnalysis]
    kernel: KernelStory | None
    result: ScenarioResult | None = None
    """The run that made the capture (None for a capture loaded from a file)."""

    def conversation(self, stream: int = 0, protocol: str = "tcp") -> ConversationSummary:
        found = self.report.stream(protocol, stream)
        if found is None:
            raise UsageError(f"{self.pcap.name}: no {protocol.upper()} stream {stream}")
        return found

    def frames_of(self, stream: int = 0, protocol: str = "tcp") -> list[FrameAnalysis]:
        """The frames of one conversation (an ICMP error about it included), in frame order."""
        from visualizer.analysis.report import in_stream

        return [frame for frame in self.frames if frame.stream == stream and in_stream(frame, protocol, stream)]

    def endpoints(self, stream: int = 0) -> list[EndpointKernel]:
        """The kernel's view of a TCP conversation's endpoints (client first); empty without a recording."""
        if self.kernel is None:
            return []
        return list(self.kernel.of_stream(stream))

    def kernel_marks(self, kind: str, stream: int = 0) -> dict[int, str]:
        """The frames of a TCP conversation that its kernel marked ``kind`` (``drop``, ``retransmission``,
        ``reset_sent``, ``reset_received``), each with the mark's reason; empty without a recording."""
        return {
            mark.frame: mark.reason
            for endpoint in self.endpoints(stream)
            for mark in endpoint.marks_of(kind)
            if mark.frame
        }

    def ladder(
        self,
        stream: int | None = 0,
        protocol: str = "tcp",
        *,
        title: str | None = None,
        fold: bool = True,
    ) -> LadderLayout:
        """The ladder's layout of one conversation (``stream=None``: every frame), with the kernel's
        calls, states and queues when they were recorded; titled like ``sockstory draw``'s."""
        from visualizer.render.layout import LadderBuilder

        frames = self.frames if stream is None else self.frames_of(stream, protocol)
        builder = LadderBuilder(fold=fold, origin_ns=self.report.first_time_ns, kernel=self.kernel)
        for frame in frames:
            builder.add(frame)
        layout = builder.finish()
        if title is not None:
            layout.title = title
        elif stream is not None:
            conversation = self.conversation(stream, protocol)
            outcome = f", {conversation.outcome}" if conversation.outcome else ""
            layout.title = f"{self.name}: {protocol.upper()} stream {stream}{outcome} ({len(frames)} frames)"
        else:
            layout.title = f"{self.name} ({len(frames)} frames)"
        return layout

    def narration(self, stream: int = 0, protocol: str = "tcp", *, markdown: bool = False) -> str:
        """``sockstory narrate``'s account of one conversation (kernel calls and queues when recorded)."""
        from visualizer.analysis.narrate import narrate

        conversation = self.conversation(stream, protocol)
        kernel = self.kernel if protocol == "tcp" else None
        told = narrate(self.frames, conversation, origin_ns=self.report.first_time_ns, kernel=kernel)
        return told.text(markdown=markdown)

    def raw_frame(self, number: int) -> RawFrame:
        """Frame ``number`` (from 1) as the file holds it: its bytes, link type and lengths."""
        from visualizer.sources import read_frame

        return read_frame(self.pcap, number)

    def anatomy(self, number: int) -> Anatomy:
        """``sockstory anatomy``'s dissection of frame ``number``: its headers' fields and its payload."""
        from visualizer.render.anatomy import anatomy_of
        from visualizer.sources.checksum import ipv4_header_ok

        raw = self.raw_frame(number)
        analysis = next(frame for frame in self.frames if frame.record.number == number)
        return anatomy_of(
            raw.data,
            link_type=raw.link_type,
            frame=number,
            analysis=analysis,
            file=self.pcap.name,
            ipv4_header_ok=ipv4_header_ok,
        )


def load(pcap: str | os.PathLike[str], name: str | None = None) -> Experiment:
    """A capture (and the kernel events recorded beside it, if any) read back as an :class:`Experiment`."""
    from visualizer.pipeline import analyse_file, kernel_story

    path = Path(pcap)
    report = analyse_file(path, keep_frames=True)
    frames = list(report.frame_analyses)
    return Experiment(name or path.stem, path, report, frames, kernel_story(path, frames))


def run(name: str, out: Path) -> Experiment:
    """Run scenario ``name`` for real (root: a private namespace, every packet sniffed once, the kernel's
    events recorded) into ``out``, and read it back."""
    from visualizer.scenarios.runner import run_scenario

    result = run_scenario(name, out)
    experiment = load(result.pcap, name)
    experiment.result = result
    return experiment
