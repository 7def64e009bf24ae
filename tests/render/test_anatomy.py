"""Packet anatomy: field positions follow the RFC header layouts; the figure names every field."""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.figure import Figure

from tests.render.images import pixels, png_size
from visualizer.cli import main
from visualizer.render.anatomy import anatomy_of, draw_anatomy, hexdump
from visualizer.sources import CaptureReader

STORY = Path(__file__).parent.parent.parent / "captures" / "story.pcap"
IPV4_LAYOUT = [  # RFC 791 s3.1: (name, first bit, bits)
    ("version", 0, 4),
    ("ihl", 4, 4),
    ("tos", 8, 8),
    ("len", 16, 16),
    ("id", 32, 16),
    ("rsv", 48, 1),
    ("DF", 49, 1),
    ("MF", 50, 1),
    ("frag", 51, 13),
    ("ttl", 64, 8),
    ("proto", 72, 8),
    ("chksum", 80, 16),
    ("src", 96, 32),
    ("dst", 128, 32),
]
TCP_LAYOUT = [  # RFC 9293 s3.1
    ("sport", 0, 16),
    ("dport", 16, 16),
    ("seq", 32, 32),
    ("ack", 64, 32),
    ("dataofs", 96, 4),
    ("reserved", 100, 3),
    ("AE", 103, 1),
    ("CWR", 104, 1),
    ("ECE", 105, 1),
    ("URG", 106, 1),
    ("ACK", 107, 1),
    ("PSH", 108, 1),
    ("RST", 109, 1),
    ("SYN", 110, 1),
    ("FIN", 111, 1),
    ("window", 112, 16),
    ("chksum", 128, 16),
    ("urgptr", 144, 16),
]


def frame(number: int) -> bytes:
    return next(raw for raw in CaptureReader(STORY) if raw.number == number).data


def test_field_positions_follow_the_rfc_layouts() -> None:
    anatomy = anatomy_of(frame(1), frame=1)
    ethernet, ip, tcp = anatomy.blocks
    assert (ethernet.name, ethernet.length) == ("Ether", 14)
    assert [(cell.name, cell.offset, cell.width) for cell in ip.fields] == IPV4_LAYOUT
    assert [(cell.name, cell.offset, cell.width) for cell in tcp.fields][: len(TCP_LAYOUT)] == TCP_LAYOUT
    options = tcp.fields[-1]
    assert (options.name, options.offset, options.width) == ("options", 160, 160)  # data offset 10 words
    flags = {cell.name: cell.value for cell in tcp.fields if cell.width == 1}
    assert flags["SYN"] == "1" and flags["ACK"] == "0"
    assert {cell.name: cell.value for cell in ip.fields}["src"] == "127.0.0.1"


def test_data_segment_payload_and_hexdump() -> None:
    anatomy = anatomy_of(frame(4), frame=4)
    assert anatomy.payload == b"tic tac toe?"
    assert hexdump(anatomy.payload) == ["0000  74 69 63 20 74 61 63 20 74 6f 65 3f              tic tac toe?"]
    flags = {cell.name: cell.value for cell in anatomy.blocks[-1].fields if cell.width == 1}
    assert flags["PSH"] == flags["ACK"] == "1"


def test_the_figure_names_every_field() -> None:
    anatomy = anatomy_of(frame(4), frame=4)
    ax = draw_anatomy(anatomy)
    texts = {text.get_text() for text in ax.texts}
    for block in anatomy.blocks:
        for cell in block.fields:
            assert cell.name in texts or f"({cell.name})" in texts, cell.name
    assert any("tic tac toe?" in text for text in texts)


def test_anatomy_command(tmp_path: Path) -> None:
    target = tmp_path / "syn.png"
    err = io.StringIO()
    assert main(["anatomy", str(STORY), "--frame", "1", "-o", str(target)], stdout=io.StringIO(), stderr=err) == 0
    figure = Figure()
    draw_anatomy(anatomy_of(frame(1), frame=1), figure=figure)
    assert png_size(target.read_bytes()) == pixels(figure, 110)
    err = io.StringIO()
    assert main(["anatomy", str(STORY), "--frame", "99"], stdout=io.StringIO(), stderr=err) == 2
    assert "no frame 99" in err.getvalue()


def test_a_frame_with_16_kb_of_extension_headers_is_drawn_in_bounded_rows_saying_what_was_left_out() -> None:
    """Eight IPv6 destination-options headers of 2,048 bytes each (a PadN option list): once a
    224,861-pixel-tall PNG and 1.37 GB. Each header shows its first rows, then how many bytes are not drawn."""
    import struct

    from tests.packets import SYN, ethernet, ipv6, tcp

    padding = (b"\x01\xfd" + bytes(253)) * 8 + b"\x01\x04" + bytes(4)  # PadN options: 2,046 bytes
    headers = b"".join(bytes([60 if index < 7 else 6, 255]) + padding for index in range(8))
    assert len(headers) == 8 * 2048
    frame = ethernet(ipv6("::1", "::1", 60, headers + tcp(40000, 80, 100, 0, SYN)), ethertype=0x86DD)
    assert struct.unpack("!H", frame[18:20])[0] == len(headers) + 20
    anatomy = anatomy_of(frame, frame=1)
    assert sum(block.length for block in anatomy.blocks) == 14 + 40 + 8 * 2048 + 20
    figure = Figure()
    ax = draw_anatomy(anatomy, figure=figure)
    width, height = figure.get_size_inches()
    assert height < 40  # inches: at most some 4,400 pixels at 110 dpi
    texts = [text.get_text() for text in ax.texts]
    assert any("TCP header (RFC 9293): 20 bytes" in text for text in texts)
    left_out = [text for text in texts if "not drawn" in text]
    assert left_out and all("bytes" in text for text in left_out)
