"""Checksum truth: ok, bad, or unverified (offloaded partial sums, cut payloads, UDP without one)."""

from __future__ import annotations

import socket
import struct

from tests.packets import ethernet, ipv4, tcp, udp
from visualizer.sources.capture_file import RawFrame
from visualizer.sources.checksum import ones_complement_sum, transport_status
from visualizer.sources.decode import FrameDecoder

SOURCE, DESTINATION = socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.1")


def with_checksum(segment: bytes, value: int) -> bytes:
    return segment[:16] + struct.pack("!H", value) + segment[18:]


def correct(segment: bytes) -> bytes:
    pseudo = SOURCE + DESTINATION + struct.pack("!BBH", 0, 6, len(segment))
    return with_checksum(segment, ~ones_complement_sum(with_checksum(segment, 0), ones_complement_sum(pseudo)) & 0xFFFF)


def decode(frame: bytes):  # type: ignore[no-untyped-def]
    return FrameDecoder(verify_checksums=True).decode(RawFrame(1, 0, 0, 1, len(frame), len(frame), frame))


def test_the_loopback_example_of_a_partial_sum() -> None:
    segment = tcp(40000, 8080, 1, 1, 0x10, options=b"\x01\x01\x01\x01")  # a 24-byte segment
    pseudo = SOURCE + DESTINATION + struct.pack("!BBH", 0, 6, 24)
    assert ones_complement_sum(pseudo) == 0xFE20
    assert transport_status(6, SOURCE, DESTINATION, with_checksum(segment, 0xFE20), 24) == "unverified"


def test_good_bad_and_partial_tcp_checksums() -> None:
    segment = correct(tcp(40000, 8080, 1000, 2000, 0x18, payload=b"tic tac toe?"))
    assert decode(ethernet(ipv4("127.0.0.1", "127.0.0.1", 6, segment))).checksum == "ok"
    broken = with_checksum(segment, 0xBAD0)
    assert decode(ethernet(ipv4("127.0.0.1", "127.0.0.1", 6, broken))).checksum == "bad"
    cut = ethernet(ipv4("127.0.0.1", "127.0.0.1", 6, segment))[:-4]
    assert decode(cut).checksum == "unverified"


def test_a_bad_ipv4_header_checksum_is_bad() -> None:
    packet = bytearray(ipv4("127.0.0.1", "127.0.0.1", 6, correct(tcp(1, 2, 3, 4, 0x10))))
    packet[10] ^= 0xFF
    assert decode(ethernet(bytes(packet))).checksum == "bad"


def test_udp_without_a_checksum_is_unverified() -> None:
    assert decode(ethernet(ipv4("127.0.0.1", "127.0.0.1", 17, udp(5000, 53, b"q")))).checksum == "unverified"


def test_records_are_not_verified_unless_asked() -> None:
    frame = ethernet(ipv4("127.0.0.1", "127.0.0.1", 6, tcp(1, 2, 3, 4, 0x10)))
    assert FrameDecoder().decode(RawFrame(1, 0, 0, 1, len(frame), len(frame), frame)).checksum == ""
