"""The bytes figure: one box per byte (hex inside, decimal below), groups named above their bytes, the bytes
of a character UTF-8 encodes in several bytes shaded, a long row cut and said so."""

from __future__ import annotations

from collections.abc import Iterator

import matplotlib.pyplot as plt
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from visualizer.chapters.encoding import WireField, character_row, field_row
from visualizer.render.bytes import MAXIMUM_BYTES, WIDE_COLOUR, ByteRow, draw_byte_rows


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def boxes(ax: plt.Axes) -> list[Rectangle]:
    return [patch for patch in ax.patches if isinstance(patch, Rectangle)]


def texts(ax: plt.Axes, gid: str | None = None) -> list[str]:
    return [text.get_text() for text in ax.texts if gid is None or text.get_gid() == gid]


def test_each_byte_is_a_box_with_its_hex_and_decimal() -> None:
    ax = draw_byte_rows([ByteRow("port", b"\x1f\x90")], figure=Figure())
    assert len(boxes(ax)) == 2
    assert {"1f", "90", "31", "144"} <= set(texts(ax))
    (first, second) = sorted(boxes(ax), key=lambda box: box.get_x())
    assert first.get_x() + first.get_width() <= second.get_x()  # side by side, in order


def test_a_wide_character_is_shaded_and_named_once_above_its_bytes() -> None:
    text = "café".encode()
    ax = draw_byte_rows([character_row("text", text)], figure=Figure())
    shaded = [box for box in boxes(ax) if to_hex(box.get_facecolor()) == WIDE_COLOUR.lower()]
    assert len(boxes(ax)) == len(text) == 5 and [box.get_x() for box in shaded] == [3, 4]
    assert texts(ax, "group") == ["c", "a", "f", "é"]
    (label,) = [t for t in ax.texts if t.get_text() == "é"]
    assert label.get_position()[0] == 4.0  # centred over its two bytes (3 to 5)
    assert "UTF-8" in texts(ax, "key")[0]


def test_a_field_is_named_with_its_big_endian_value() -> None:
    field = WireField("payload", "number", 0, b"\x01\x02\x03\x04")
    ax = draw_byte_rows([field_row("record", field.raw, [field])], figure=Figure())
    assert texts(ax, "group") == ["number\n16,909,060"]
    assert not any(to_hex(box.get_facecolor()) == WIDE_COLOUR.lower() for box in boxes(ax))
    assert "UTF-8" not in texts(ax, "key")[0]  # no character to explain


def test_a_long_row_is_cut_and_says_so() -> None:
    ax = draw_byte_rows([ByteRow("bulk", bytes(100))], figure=Figure())
    assert len(boxes(ax)) == MAXIMUM_BYTES
    assert texts(ax, "row") == [f"bulk (the first {MAXIMUM_BYTES} of 100 bytes)"]
