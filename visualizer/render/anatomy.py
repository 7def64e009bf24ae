"""Packet anatomy: one frame as its layers, each header drawn as 32-bit rows of labelled fields.

Like the header diagrams of the RFCs (RFC 791 s3.1, RFC 9293 s3.1, RFC 768): bit 0
on the left, 32 bits a row, every field a box as wide as its bits, named as
Scapy names it (Scapy's dissection is the source of truth for names and values),
the TCP and IP flag bits one box each; then the payload as a hex dump with ASCII.
:func:`anatomy_of` computes the layout (Scapy); :func:`draw_anatomy` draws it.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

BITS_PER_ROW = 32
ROW_HEIGHT = 1.55
HEXDUMP_LINES = 8
HEADER_ROWS = 16
"""32-bit rows drawn of one header (64 bytes: every IPv4, IPv6 and TCP header but one with a long
option list); the rest of a longer header is said in words, so the figure stays bounded."""
TOTAL_ROWS = 48
"""Rows drawn for all the headers before the last (which is always drawn); headers past this budget
(a chain of extension headers) are listed by name and length."""
LISTED_HEADERS = 6
"""Headers past the budget listed one a line; more are counted."""

LAYER_COLOURS = {
    "Ether": "#EEEEEE",
    "Dot1Q": "#E4E4E4",
    "IP": "#DCEBF7",
    "IPv6": "#DCEBF7",
    "TCP": "#DDF1E8",
    "UDP": "#E3F3FB",
    "ICMP": "#FBEBD3",
    "ICMPv6": "#FBEBD3",
}
LAYER_TITLES = {
    "Ether": "Ethernet header",
    "Dot1Q": "802.1Q VLAN tag",
    "IP": "IPv4 header (RFC 791)",
    "IPv6": "IPv6 header (RFC 8200)",
    "TCP": "TCP header (RFC 9293)",
    "UDP": "UDP header (RFC 768)",
    "ICMP": "ICMP (RFC 792)",
}
SET_BIT_COLOUR = "#009E73"
# Scapy names flag bits with single letters; the boxes show the RFC names (RFC 9293 s3.1, RFC 791 s3.1).
FLAG_NAMES = {
    "TCP": {"N": "AE", "C": "CWR", "E": "ECE", "U": "URG", "A": "ACK", "P": "PSH", "R": "RST", "S": "SYN", "F": "FIN"},
    "IP": {"evil": "rsv", "DF": "DF", "MF": "MF"},
}


@dataclass(frozen=True, slots=True)
class FieldCell:
    """One field (or one flag bit) of a header, at its bit offset from the start of its header."""

    name: str
    offset: int
    width: int
    value: str


@dataclass(frozen=True, slots=True)
class LayerBlock:
    name: str
    length: int
    """Header length in bytes."""
    fields: list[FieldCell] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Anatomy:
    frame: int
    summary: str
    blocks: list[LayerBlock]
    payload: bytes


def anatomy_of(data: bytes, *, link_type: int = 1, frame: int = 0) -> Anatomy:
    """Dissect a frame's bytes with Scapy into header blocks of bit-positioned fields."""
    import scapy.layers.inet
    import scapy.layers.inet6
    import scapy.layers.l2  # noqa: F401  (registers the link types and protocols)
    from scapy.config import conf
    from scapy.packet import NoPayload, Padding, Raw

    layer_class = conf.l2types.num2layer.get(link_type, conf.raw_layer)
    try:
        packet = layer_class(data)
    except Exception as error:  # Scapy's dissectors raise on some malformed bytes (IndexError, struct.error)
        return Anatomy(frame, f"not dissected: Scapy failed ({type(error).__name__}: {error})", [], data)
    blocks: list[LayerBlock] = []
    layer = packet
    payload = b""
    while not isinstance(layer, NoPayload):
        if isinstance(layer, (Raw, Padding)) or layer.name in ("Raw", "Padding"):
            payload = bytes(layer)
            break
        header = len(bytes(layer)) - len(bytes(layer.payload))
        name = type(layer).__name__
        blocks.append(LayerBlock(name, header, _fields(layer, header, FLAG_NAMES.get(name, {}))))
        layer = layer.payload
    return Anatomy(frame, packet.summary(), blocks, payload)


def _fields(layer: Any, header_bytes: int, flag_names: dict[str, str]) -> list[FieldCell]:
    from scapy.fields import ConditionalField, FlagsField

    cells: list[FieldCell] = []
    offset = 0
    total = header_bytes * 8
    descriptions = layer.fields_desc
    for index, description in enumerate(descriptions):
        if isinstance(description, ConditionalField):
            if not description._evalcond(layer):
                continue
            description = description.fld
        size = getattr(description, "sz", 0)
        variable = index == len(descriptions) - 1 and total - offset != round(size * 8)
        width = total - offset if variable else round(size * 8)
        if width <= 0 or offset + width > total:
            break
        value = layer.getfieldval(description.name)
        if isinstance(description, FlagsField) and width == len(description.names):
            # One box per flag bit, the most significant on the left, as the RFCs draw them.
            names = list(description.names)
            for bit in range(width):
                flag = width - 1 - bit
                name = flag_names.get(names[flag], names[flag])
                cells.append(FieldCell(name, offset + bit, 1, str(int(value) >> flag & 1)))
        else:
            shown = str(description.i2repr(layer, value))
            if isinstance(value, int) and shown != str(value) and not shown.startswith("0x"):
                shown = f"{value} ({shown})"  # a number Scapy names, e.g. a port's service
            cells.append(FieldCell(description.name, offset, width, _shorten(shown, 400)))
        offset += width
    if offset < total:
        cells.append(FieldCell("(more)", offset, total - offset, ""))
    return cells


def _shorten(text: str, limit: int = 60) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def hexdump(payload: bytes, lines: int = HEXDUMP_LINES) -> list[str]:
    rows = []
    for start in range(0, min(len(payload), 16 * lines), 16):
        chunk = payload[start : start + 16]
        hexes = " ".join(f"{byte:02x}" for byte in chunk)
        text = "".join(chr(byte) if 32 <= byte < 127 else "." for byte in chunk)
        rows.append(f"{start:04x}  {hexes:<47}  {text}")
    if len(payload) > 16 * lines:
        rows.append(f"… {len(payload) - 16 * lines} more bytes")
    return rows


@dataclass(frozen=True, slots=True)
class _Part:
    """How much of a header is drawn: ``rows`` of it (0: only named, in a list of headers left out)."""

    block: LayerBlock
    rows: int


def _plan(blocks: list[LayerBlock]) -> list[_Part]:
    """The rows drawn of each header, within :data:`HEADER_ROWS` each and :data:`TOTAL_ROWS` before the last."""
    parts = []
    budget = TOTAL_ROWS
    for index, block in enumerate(blocks):
        rows = min(-(-block.length * 8 // BITS_PER_ROW), HEADER_ROWS)
        if index == len(blocks) - 1 or rows <= budget:
            budget -= rows
            parts.append(_Part(block, rows))
        else:
            budget = 0
            parts.append(_Part(block, 0))
    return parts


def draw_anatomy(anatomy: Anatomy, *, ax: Axes | None = None, figure: Figure | None = None) -> Axes:
    """Draw the anatomy of one frame and return the Axes.

    Without ``ax``, into ``figure`` (an empty one, sized here) or a new pyplot figure. A header
    longer than :data:`HEADER_ROWS` rows, or headers past :data:`TOTAL_ROWS`, are said in words.
    """
    parts = _plan(anatomy.blocks)
    drawn = [part for part in parts if part.rows]
    left_out = [part.block for part in parts if not part.rows]
    listed = left_out[:LISTED_HEADERS]
    cut = [part for part in drawn if part.rows * BITS_PER_ROW < part.block.length * 8]
    rows = sum(part.rows for part in drawn)
    dump = hexdump(anatomy.payload)
    lines = len(cut) + len(listed) + (len(left_out) > len(listed))
    height = rows * ROW_HEIGHT + len(drawn) * 1.4 + lines * 0.9 + (len(dump) + 2) * 0.55 + 2.5
    if ax is None:
        if figure is None:
            import matplotlib.pyplot as plt

            figure = plt.figure()
        figure.set_size_inches(13, height * 0.32)
        ax = figure.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(-1.2, BITS_PER_ROW + 0.4)
    ax.set_ylim(height, 0)
    ax.axis("off")
    title = _shorten(f"frame {anatomy.frame}: {anatomy.summary}", 150)  # a chain of headers can run long
    ax.text(-1.1, 0.6, title, fontsize=11, fontweight="bold", va="center")
    for bit in range(0, BITS_PER_ROW, 4):
        ax.text(bit + 0.5, 1.6, str(bit), ha="center", va="center", fontsize=7, color="#555555")
    ax.text(BITS_PER_ROW - 0.5, 1.6, "31", ha="center", va="center", fontsize=7, color="#555555")
    y = 2.3
    listed_yet = False
    for part in parts:
        block = part.block
        if not part.rows:
            if listed_yet:
                continue
            listed_yet = True
            y = _draw_left_out(ax, left_out, listed, y)
            continue
        ax.text(
            -1.1,
            y + 0.5,
            f"{LAYER_TITLES.get(block.name, block.name)}: {block.length} bytes",
            fontsize=10,
            fontweight="bold",
            va="center",
            color="#222222",
        )
        y += 1.0
        colour = LAYER_COLOURS.get(block.name, "#F2F2F2")
        limit = part.rows * BITS_PER_ROW
        for cell in block.fields:
            if cell.offset < limit:
                _draw_cell(ax, cell if cell.offset + cell.width <= limit else _cut(cell, limit), y, colour)
        for row in range(part.rows):
            ax.text(
                -0.3,
                y + row * ROW_HEIGHT + ROW_HEIGHT / 2,
                f"{row * 4}",
                ha="right",
                va="center",
                fontsize=7,
                color="#777777",
            )
        y += part.rows * ROW_HEIGHT + 0.4
        if part in cut:
            hidden = block.length - part.rows * BITS_PER_ROW // 8
            names = [cell.name for cell in block.fields if cell.offset + cell.width > limit]
            ax.text(
                0,
                y + 0.3,
                f"… {hidden:,} more bytes of this header not drawn ({', '.join(names[:4])}"
                f"{', …' if len(names) > 4 else ''})",
                fontsize=8.5,
                style="italic",
                color="#555555",
                va="center",
            )
            y += 0.9
    ax.text(-1.1, y + 0.5, f"payload: {len(anatomy.payload)} bytes", fontsize=10, fontweight="bold", va="center")
    for index, line in enumerate(dump):
        ax.text(-1.1, y + 1.2 + index * 0.55, line, fontsize=8.5, family="DejaVu Sans Mono", va="center")
    return ax


def _cut(cell: FieldCell, limit: int) -> FieldCell:
    """The part of a field above the last row drawn."""
    return FieldCell(cell.name, cell.offset, limit - cell.offset, cell.value)


def _draw_left_out(ax: Axes, left_out: list[LayerBlock], listed: list[LayerBlock], y: float) -> float:
    """Headers past the row budget, one line each (then a count); returns the y below them."""
    for block in listed:
        ax.text(
            -1.1,
            y + 0.3,
            f"{LAYER_TITLES.get(block.name, block.name)}: {block.length:,} bytes, not drawn",
            fontsize=9,
            style="italic",
            color="#555555",
            va="center",
        )
        y += 0.9
    more = left_out[len(listed) :]
    if more:
        ax.text(
            -1.1,
            y + 0.3,
            f"… {len(more)} more headers ({sum(block.length for block in more):,} bytes), not drawn",
            fontsize=9,
            style="italic",
            color="#555555",
            va="center",
        )
        y += 0.9
    return y + 0.3


def _draw_cell(ax: Axes, cell: FieldCell, top: float, colour: str) -> None:
    """A field as boxes over the rows it covers (whole rows merged), named and valued in its largest box."""
    pieces: list[tuple[int, int, int, int]] = []  # (row, column, bits wide, rows tall)
    start, remaining = cell.offset, cell.width
    while remaining > 0:
        row, column = divmod(start, BITS_PER_ROW)
        span = min(remaining, BITS_PER_ROW - column)
        if pieces and span == BITS_PER_ROW and column == 0 and pieces[-1][1] == 0 and pieces[-1][2] == BITS_PER_ROW:
            last = pieces[-1]
            pieces[-1] = (last[0], 0, BITS_PER_ROW, last[3] + 1)
        else:
            pieces.append((row, column, span, 1))
        start += span
        remaining -= span
    is_flag = cell.width == 1
    face = SET_BIT_COLOUR if is_flag and cell.value == "1" else colour
    for row, column, span, tall in pieces:
        ax.add_patch(
            Rectangle(
                (column, top + row * ROW_HEIGHT),
                span,
                tall * ROW_HEIGHT,
                facecolor=face,
                edgecolor="#333333",
                linewidth=0.8,
                zorder=2,
            )
        )
    main = max(pieces, key=lambda piece: piece[2] * piece[3])
    for piece in pieces:
        if piece is not main:  # the rest of a field that wraps to the next row
            row, column, span, tall = piece
            ax.text(
                column + span / 2,
                top + row * ROW_HEIGHT + ROW_HEIGHT / 2,
                f"({cell.name})",
                ha="center",
                va="center",
                fontsize=6.5,
                color="#777777",
                style="italic",
                zorder=3,
            )
    row, column, span, tall = main
    middle_x = column + span / 2
    middle_y = top + row * ROW_HEIGHT + tall * ROW_HEIGHT / 2
    if is_flag:
        ax.text(
            middle_x,
            middle_y,
            cell.name,
            ha="center",
            va="center",
            fontsize=6.5,
            fontweight="bold",
            color="white" if cell.value == "1" else "#333333",
            zorder=3,
            rotation=90 if len(cell.name) > 3 else 0,
        )
        return
    characters = max(3, int(span * 3.4))
    size = 7.5 if span >= 6 else 6.5
    lines = textwrap.wrap(cell.value, characters)[: max(1, tall * 2 - 1)] or [""]
    block = "\n".join(lines)
    spread = 0.33 + 0.16 * (len(lines) - 1)
    ax.text(
        middle_x,
        middle_y - spread,
        _shorten(cell.name, characters),
        ha="center",
        va="center",
        fontsize=size,
        fontweight="bold",
        zorder=3,
    )
    ax.text(
        middle_x,
        middle_y + 0.33 * (1 if len(lines) == 1 else 0.2),
        block,
        ha="center",
        va="center",
        fontsize=size,
        family="DejaVu Sans Mono",
        zorder=3,
        linespacing=1.1,
    )
