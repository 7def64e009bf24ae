"""What a saved figure says about itself: PNG pixel size, PDF pages and page size, SVG size and tooltips."""

from __future__ import annotations

import html
import re
import struct

from matplotlib.figure import Figure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) in pixels, from the IHDR chunk that must come first."""
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", data[:16]
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def pixels(figure: Figure, dpi: int) -> tuple[int, int]:
    """The pixel size Agg gives ``figure`` at ``dpi`` (it truncates)."""
    width, height = figure.get_size_inches()
    return int(width * dpi), int(height * dpi)


def pdf_pages(data: bytes) -> list[tuple[float, float]]:
    """(width, height) in points of every page of a PDF written by matplotlib (its page dictionaries are
    not compressed)."""
    sizes = []
    for page in re.findall(rb"<<[^<>]*/Type /Page\b(?!s)[^<>]*>>", data):
        box = re.search(rb"/MediaBox \[ 0 0 ([\d.]+) ([\d.]+) \]", page)
        assert box is not None, page
        sizes.append((float(box.group(1)), float(box.group(2))))
    return sizes


def svg_size(text: str) -> tuple[float, float]:
    """(width, height) in points, from the root element."""
    match = re.search(r'<svg[^>]* width="([\d.]+)pt" height="([\d.]+)pt"', text)
    assert match is not None, text[:300]
    return float(match.group(1)), float(match.group(2))


def svg_titles(text: str) -> list[str]:
    """The text of every <title> (the hover tooltips), unescaped, in document order."""
    return [html.unescape(title) for title in re.findall(r"<title>(.*?)</title>", text, flags=re.DOTALL)]
