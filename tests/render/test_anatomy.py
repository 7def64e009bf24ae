"""Packet anatomy: field positions follow the RFC header layouts, named as the RFCs name them; what the
analysis knows (window scale, checksum verdict, the capture's cut, addresses) is said where it belongs."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tests.render.images import pixels, png_size
from visualizer.analysis.report import FrameAnalysis
from visualizer.cli import main
from visualizer.model import parse_tcp_options
from visualizer.pipeline import analyse_file
from visualizer.render.anatomy import Anatomy, FieldCell, anatomy_of, draw_anatomy, hexdump
from visualizer.sources import CaptureReader
from visualizer.sources.checksum import ipv4_header_ok

ROOT = Path(__file__).parent.parent.parent
STORY = ROOT / "captures" / "story.pcap"
SCENARIOS = ROOT / "tests" / "data" / "scenarios" / "captures"
CORPUS = ROOT / "tests" / "data" / "corpus" / "captures"
IPV4_LAYOUT = [  # RFC 791 s3.1: (name, first bit, bits)
    ("Version", 0, 4),
    ("IHL", 4, 4),
    ("Type of Service", 8, 8),
    ("Total Length", 16, 16),
    ("Identification", 32, 16),
    ("rsv", 48, 1),
    ("DF", 49, 1),
    ("MF", 50, 1),
    ("Fragment Offset", 51, 13),
    ("Time to Live", 64, 8),
    ("Protocol", 72, 8),
    ("Header Checksum", 80, 16),
    ("Source Address", 96, 32),
    ("Destination Address", 128, 32),
]
TCP_LAYOUT = [  # RFC 9293 s3.1
    ("Source Port", 0, 16),
    ("Destination Port", 16, 16),
    ("Sequence Number", 32, 32),
    ("Acknowledgment Number", 64, 32),
    ("Data Offset", 96, 4),
    ("Rsrvd", 100, 3),
    ("AE", 103, 1),
    ("CWR", 104, 1),
    ("ECE", 105, 1),
    ("URG", 106, 1),
    ("ACK", 107, 1),
    ("PSH", 108, 1),
    ("RST", 109, 1),
    ("SYN", 110, 1),
    ("FIN", 111, 1),
    ("Window", 112, 16),
    ("Checksum", 128, 16),
    ("Urgent Pointer", 144, 16),
]


@cache
def analyses(path: Path) -> dict[int, FrameAnalysis]:
    return {frame.record.number: frame for frame in analyse_file(path, keep_frames=True).frame_analyses}


def raw_frame(path: Path, number: int) -> tuple[bytes, int]:
    found = next(raw for raw in CaptureReader(path) if raw.number == number)
    return found.data, found.link_type


def anatomy(path: Path, number: int) -> Anatomy:
    """As ``sockstory anatomy`` makes it: the frame's bytes and its analysis."""
    data, link_type = raw_frame(path, number)
    return anatomy_of(
        data,
        link_type=link_type,
        frame=number,
        analysis=analyses(path)[number],
        file=str(path),
        ipv4_header_ok=ipv4_header_ok,
    )


def cells(found: Anatomy, layer: str) -> dict[str, FieldCell]:
    (block,) = [block for block in found.blocks if block.name == layer]
    return {cell.name: cell for cell in block.fields}


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def drawn(found: Anatomy) -> tuple[Axes, Figure]:
    figure = Figure()
    FigureCanvasAgg(figure)
    ax = draw_anatomy(found, figure=figure)
    figure.canvas.draw()
    return ax, figure


def frame(number: int) -> bytes:
    return raw_frame(STORY, number)[0]


def test_field_positions_follow_the_rfc_layouts_with_the_rfc_names() -> None:
    found = anatomy_of(frame(1), frame=1)
    ethernet, ip, tcp = found.blocks
    assert (ethernet.name, ethernet.length) == ("Ether", 14)
    assert [(cell.name, cell.offset, cell.width) for cell in ip.fields] == IPV4_LAYOUT
    assert [(cell.name, cell.offset, cell.width) for cell in tcp.fields][: len(TCP_LAYOUT)] == TCP_LAYOUT
    flags = {cell.name: cell.value for cell in tcp.fields if cell.width == 1}
    assert flags["SYN"] == "1" and flags["ACK"] == "0"
    named = {cell.name: cell.value for cell in tcp.fields}
    assert named["Data Offset"] == "10 (40 bytes)"
    assert {cell.name: cell.value for cell in ip.fields}["Source Address"] == "127.0.0.1"


def test_every_tcp_option_is_a_box_at_its_place_and_the_options_are_said_in_words() -> None:
    found = anatomy(STORY, 1)
    tcp = found.blocks[-1]
    options = [(cell.name, cell.offset, cell.width) for cell in tcp.fields if cell.field == "option"]
    # Linux's SYN: MSS (4 bytes), SACK permitted (2), timestamps (10), NOP (1), window scale (3), from bit 160.
    assert options == [
        ("MSS", 160, 32),
        ("SACK permitted", 192, 16),
        ("Timestamps", 208, 80),
        ("NOP", 288, 8),
        ("Window Scale", 296, 24),
    ]
    parsed = parse_tcp_options(analyses(STORY)[1].record.tcp_options)
    assert parsed.mss is not None and parsed.timestamp is not None and parsed.window_scale is not None
    value, echo = parsed.timestamp
    shift = parsed.window_scale
    expected = (
        f"MSS {parsed.mss}, SACK permitted, TS val {value} ecr {echo}, NOP, window scale {shift} (x{1 << shift:,})"
    )
    assert tcp.note == expected
    ax, _ = drawn(found)
    texts = [text.get_text() for text in ax.texts]
    assert f"options: {expected}" in texts
    assert not [text for text in texts if "('" in text or "[(" in text]  # no Python list


def test_data_segment_payload_and_hexdump() -> None:
    found = anatomy_of(frame(4), frame=4)
    assert found.payload == b"tic tac toe?"
    assert hexdump(found.payload) == ["0000  74 69 63 20 74 61 63 20 74 6f 65 3f              tic tac toe?"]
    flags = {cell.name: cell.value for cell in found.blocks[-1].fields if cell.width == 1}
    assert flags["PSH"] == flags["ACK"] == "1"


def test_the_title_names_the_frame() -> None:
    record = analyses(STORY)[4].record
    found = anatomy(STORY, 4)
    title = f"frame 4 of story.pcap: 127.0.0.1:{record.source_port} → 127.0.0.1:8080, TCP PSH|ACK, 12 bytes"
    assert found.summary == title
    ax, _ = drawn(found)
    assert [text.get_text() for text in ax.texts if text.get_gid() == "title"] == [title]


def test_the_window_is_shown_raw_and_scaled_by_the_handshakes_scale() -> None:
    analysis = analyses(STORY)[4]
    multiplier = analysis.window_scale
    assert multiplier > 1 and analysis.record.window * multiplier == analysis.window
    window = cells(anatomy(STORY, 4), "TCP")["Window"].value
    assert window.startswith(f"{analysis.record.window} (x{multiplier:,} = {analysis.window:,} bytes")
    assert "never scaled" in cells(anatomy(STORY, 1), "TCP")["Window"].value  # RFC 7323 s2.2
    unknown = cells(anatomy(CORPUS / "gopacket-test_loopback.pcap", 3), "TCP")["Window"].value  # no handshake
    assert "scale unknown" in unknown


def test_a_loopback_partial_checksum_is_partial_not_bad_and_a_wrong_one_is_bad() -> None:
    syn = anatomy(STORY, 1)
    assert cells(syn, "TCP")["Checksum"].value.endswith("partial (offload), the pseudo-header sum only")
    assert cells(syn, "IP")["Header Checksum"].value.endswith(": ok")
    crafted = analyses(SCENARIOS / "craft-bad-checksum.pcap")
    bad = [number for number, frame in crafted.items() if frame.record.checksum == "bad"]
    good = [
        number for number, frame in crafted.items() if frame.record.checksum == "ok" and frame.record.transport == 6
    ]
    assert bad and good
    path = SCENARIOS / "craft-bad-checksum.pcap"
    assert cells(anatomy(path, bad[0]), "TCP")["Checksum"].value.endswith(": bad")
    assert cells(anatomy(path, bad[0]), "IP")["Header Checksum"].value.endswith(": ok")
    assert cells(anatomy(path, good[0]), "TCP")["Checksum"].value.endswith(": ok")


def test_a_first_fragment_has_its_ip_checksum_checked_and_its_udp_checksum_left_to_the_datagram() -> None:
    path = ROOT / "tests" / "data" / "kernel" / "udp-datagrams.pcap"
    first = anatomy(path, 5)  # the first of the 4,000-byte datagram's three fragments
    assert cells(first, "IP")["Header Checksum"].value.endswith(": ok")
    assert cells(first, "UDP")["Checksum"].value.endswith(": of the whole datagram: checked at its last fragment")


def test_a_frame_cut_by_the_capture_says_so() -> None:
    path = CORPUS / "zeek-tcp-timestamp.pcap"  # snap length 96
    record = analyses(path)[10].record
    assert (record.captured_length, record.original_length, record.payload_length) == (96, 1514, 1448)
    found = anatomy(path, 10)
    assert found.notes == (
        "cut by the capture (snap length): 96 of 1,514 bytes were captured; the payload shows 30 of its 1,448 bytes",
    )
    assert cells(found, "TCP")["Checksum"].value.endswith("not verified: cut by the capture")
    ax, _ = drawn(found)
    texts = [text.get_text() for text in ax.texts]
    assert found.notes[0] in texts
    assert "payload: 30 of 1,448 bytes captured (cut by the capture)" in texts
    # A whole frame has no such note.
    assert anatomy(STORY, 4).notes == ()


def test_ipv6_on_bsd_loopback_udp_and_icmp_frames() -> None:
    ipv6 = anatomy(CORPUS / "gopacket-test_loopback.pcap", 3)  # DLT_NULL, family 30 (macOS AF_INET6)
    assert [block.name for block in ipv6.blocks] == ["Loopback", "IPv6", "TCP"]
    assert ipv6.summary.startswith("frame 3 of gopacket-test_loopback.pcap: [::1]:8080 → [::1]:")
    assert list(cells(ipv6, "IPv6"))[:6] == [
        "Version",
        "Traffic Class",
        "Flow Label",
        "Payload Length",
        "Next Header",
        "Hop Limit",
    ]
    udp = anatomy(SCENARIOS / "udp.pcap", 1)
    assert [block.name for block in udp.blocks] == ["Ether", "IP", "UDP"]
    assert list(cells(udp, "UDP")) == ["Source Port", "Destination Port", "Length", "Checksum"]
    assert udp.summary.endswith(", UDP, 13 bytes") and udp.payload_name == "payload"
    icmp = anatomy(SCENARIOS / "udp-closed-port.pcap", 2)
    assert [block.name for block in icmp.blocks] == ["Ether", "IP", "ICMP", "IPerror", "UDPerror"]
    assert cells(icmp, "ICMP")["Type"].value == "3 (destination unreachable)"
    assert cells(icmp, "ICMP")["Code"].value == "3 (port unreachable)"
    assert "Next-Hop MTU (RFC 1191)" not in cells(icmp, "ICMP")  # that field is for code 4 only
    quoted = analyses(SCENARIOS / "udp-closed-port.pcap")[2].record.quoted
    assert quoted is not None
    assert icmp.summary == (
        "frame 2 of udp-closed-port.pcap: 127.0.0.1 → 127.0.0.1, ICMP destination unreachable (port unreachable), "
        f"about UDP 127.0.0.1:{quoted.source_port} → 127.0.0.1:{quoted.destination_port}"
    )
    assert icmp.payload_name == "quoted payload"
    assert {cell.name for cell in cells(icmp, "IPerror").values()} >= {"Total Length", "rsv", "DF"}  # not "evil"


def test_the_frame_that_completes_a_datagram_of_fragments_says_where_its_header_is() -> None:
    path = CORPUS / "sv-frag-eth-vlan-ipv6-tcp.pcap"
    last = anatomy(path, 3)
    assert "TCP" not in [block.name for block in last.blocks]
    assert last.payload_name == "fragment data" and last.payload_length == -1
    assert last.notes and "reassembled" in last.notes[0]
    assert cells(last, "IPv6ExtHdrFragment")["Fragment Offset"].value == "110 (880 bytes)"
    assert "fragment" in anatomy(path, 1).summary


@pytest.mark.parametrize(
    ("path", "number"),
    [
        (STORY, 1),
        (STORY, 4),
        (CORPUS / "gopacket-test_loopback.pcap", 3),
        (SCENARIOS / "udp.pcap", 1),
        (SCENARIOS / "udp-closed-port.pcap", 2),
        (CORPUS / "zeek-tcp-timestamp.pcap", 10),
    ],
)
def test_the_figure_names_every_field_and_no_text_overlaps_another_or_leaves_the_figure(
    path: Path, number: int
) -> None:
    found = anatomy(path, number)
    ax, figure = drawn(found)
    texts = [text for text in ax.texts if text.get_text().strip()]
    shown = {text.get_text() for text in texts}
    for block in found.blocks:
        for cell in block.fields:
            assert cell.name in shown or f"({cell.name})" in shown, cell.name
    extents = [text.get_window_extent() for text in texts]
    width = figure.get_size_inches()[0] * figure.dpi
    for text, extent in zip(texts, extents, strict=True):
        assert extent.x0 >= 0 and extent.x1 <= 0.98 * width, text.get_text()  # a margin: Agg at 110 dpi differs
    for (first, one), (second, other) in itertools.combinations(zip(texts, extents, strict=True), 2):
        assert not one.overlaps(other), (first.get_text(), second.get_text())


def test_anatomy_command(tmp_path: Path) -> None:
    target = tmp_path / "syn.png"
    err = io.StringIO()
    assert main(["anatomy", str(STORY), "--frame", "1", "-o", str(target)], stdout=io.StringIO(), stderr=err) == 0
    figure = Figure()
    draw_anatomy(anatomy(STORY, 1), figure=figure)
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
    found = anatomy_of(frame, frame=1)
    assert sum(block.length for block in found.blocks) == 14 + 40 + 8 * 2048 + 20
    figure = Figure()
    ax = draw_anatomy(found, figure=figure)
    width, height = figure.get_size_inches()
    assert height < 40  # inches: at most some 4,400 pixels at 110 dpi
    texts = [text.get_text() for text in ax.texts]
    assert any("TCP header (RFC 9293): 20 bytes" in text for text in texts)
    left_out = [text for text in texts if "not drawn" in text]
    assert left_out and all("bytes" in text for text in left_out)


def test_the_payload_after_the_transport_header_is_never_guessed_into_an_application_protocol() -> None:
    import scapy.layers.dns  # noqa: F401  (binds UDP port 5353 to DNS, as other tests may have done)

    udp = anatomy(SCENARIOS / "udp.pcap", 1)  # to port 5353, not mDNS: "who is there?"
    assert [block.name for block in udp.blocks] == ["Ether", "IP", "UDP"]
    assert udp.payload == b"who is there?"
