"""Bytes as they travel: rows of byte boxes (hex above, decimal below), each group of bytes named above.

A row is what the caller measured (:class:`ByteRow`: the bytes, and which bytes make which
character or field); this module only draws it. Groups of more than one byte that stand for one
character (UTF-8) are shaded, so that a reader sees which characters cost more than a byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MAXIMUM_BYTES = 32
"""Bytes drawn of one row; the rest are counted."""
CELL_COLOUR = "#FFF6DA"
WIDE_COLOUR = "#F4C76B"
"""A character that takes more than one byte."""
WIDE_COLOUR_NAME = "shaded darker"
ROW_HEIGHT = 3.8
CELL_INCHES = 0.6
SHOWN_SPACE = "␣"


@dataclass(frozen=True, slots=True)
class ByteGroup:
    start: int
    end: int
    """Bytes [start, end) of the row."""
    label: str
    wide: bool = False
    """Shade its bytes: one character encoded in several bytes."""


@dataclass(frozen=True, slots=True)
class ByteRow:
    title: str
    data: bytes
    groups: tuple[ByteGroup, ...] = ()
    colour: str = CELL_COLOUR


def draw_byte_rows(
    rows: Sequence[ByteRow], *, title: str = "", ax: Axes | None = None, figure: Figure | None = None
) -> Axes:
    """Draw each row's bytes as boxes (two hex digits, the byte's decimal value below), the groups'
    labels above their bytes; return the Axes. Without ``ax``, into ``figure`` or a new pyplot figure."""
    from matplotlib.patches import Rectangle

    columns = max([min(len(row.data), MAXIMUM_BYTES) for row in rows] + [8])
    shaded = any(group.wide for row in rows for group in row.groups)
    height = len(rows) * ROW_HEIGHT + (1.2 if title else 0.3) + 1.0
    if ax is None:
        if figure is None:
            import matplotlib.pyplot as plt

            figure = plt.figure()
        figure.set_size_inches(max(6.0, columns * CELL_INCHES + 0.6), height * 0.5)
        ax = figure.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(-0.3, columns + 0.3)
    ax.set_ylim(height, 0)
    ax.axis("off")
    y = 0.3
    if title:
        ax.text(-0.2, 0.6, title, fontsize=11, fontweight="bold", va="center", gid="title")
        y = 1.2
    for row in rows:
        shown = row.data[:MAXIMUM_BYTES]
        more = f" (the first {MAXIMUM_BYTES} of {len(row.data):,} bytes)" if len(row.data) > MAXIMUM_BYTES else ""
        ax.text(-0.2, y + 0.3, row.title + more, fontsize=9.5, fontweight="bold", va="center", gid="row")
        wide = {index for group in row.groups if group.wide for index in range(group.start, group.end)}
        top = y + 1.6
        for index, byte in enumerate(shown):
            face = WIDE_COLOUR if index in wide else row.colour
            ax.add_patch(Rectangle((index, top), 1, 1.1, facecolor=face, edgecolor="#333333", linewidth=0.8))
            ax.text(
                index + 0.5, top + 0.55, f"{byte:02x}", ha="center", va="center", fontsize=9, family="DejaVu Sans Mono"
            )
            ax.text(index + 0.5, top + 1.4, str(byte), ha="center", va="center", fontsize=7.5, color="#555555")
        for group in row.groups:
            if group.start >= len(shown):
                continue
            end = min(group.end, len(shown))
            label = SHOWN_SPACE if group.label == " " else group.label
            ax.plot([group.start + 0.08, end - 0.08], [top - 0.2, top - 0.2], color="#333333", linewidth=1.0)
            ax.text(
                (group.start + end) / 2,
                top - 0.35,
                label,
                ha="center",
                va="bottom",
                fontsize=11 if len(label) == 1 else 8,
                gid="group",
                linespacing=1.1,
            )
        y += ROW_HEIGHT
    key = "each box is one byte: two hex digits, its value in decimal below"
    if shaded:
        key += f"; {WIDE_COLOUR_NAME}: the bytes of one character that UTF-8 encodes in more than one byte"
    ax.text(-0.2, y + 0.2, key, fontsize=8.5, color="#333333", va="center", gid="key")
    return ax
