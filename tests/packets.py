"""Hand-built frames for tests: real bytes, decoded by the real decoder.

Tests build segment lists with explicit times here, so that every PacketRecord
still comes from :class:`visualizer.sources.decode.FrameDecoder`.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable
from typing import Any

from visualizer.model import PacketRecord
from visualizer.sources.capture_file import RawFrame
from visualizer.sources.decode import FrameDecoder

MAC = bytes.fromhex("020000000001020000000002")


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(
    source: str,
    destination: str,
    protocol: int,
    payload: bytes,
    *,
    identification: int = 1,
    flags_fragment: int = 0x4000,
    total_length: int | None = None,
) -> bytes:
    total = 20 + len(payload) if total_length is None else total_length
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        total,
        identification,
        flags_fragment,
        64,
        protocol,
        0,
        socket.inet_aton(source),
        socket.inet_aton(destination),
    )
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def ipv6(source: str, destination: str, next_header: int, payload: bytes) -> bytes:
    return (
        struct.pack(
            "!IHBB16s16s",
            6 << 28,
            len(payload),
            next_header,
            64,
            socket.inet_pton(socket.AF_INET6, source),
            socket.inet_pton(socket.AF_INET6, destination),
        )
        + payload
    )


def tcp(
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    window: int = 1000,
    payload: bytes = b"",
    options: bytes = b"",
) -> bytes:
    options += b"\0" * (-len(options) % 4)
    offset = (20 + len(options)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, offset << 4, flags, window, 0, 0) + options + payload


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def ethernet(payload: bytes, ethertype: int = 0x0800) -> bytes:
    return MAC + struct.pack("!H", ethertype) + payload


def decode_all(frames: Iterable[tuple[float, bytes]], link_type: int = 1) -> list[PacketRecord]:
    """Decode (time in seconds, frame bytes) pairs as frames 1, 2, ..."""
    decoder = FrameDecoder()
    return [
        decoder.decode(RawFrame(number, int(round(time * 1e9)), 0, link_type, len(data), len(data), data))
        for number, (time, data) in enumerate(frames, start=1)
    ]


SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10


class Conversation:
    """Builds the frames of one IPv4 TCP conversation between a client and a server."""

    def __init__(
        self, client: str = "10.0.0.1", server: str = "10.0.0.2", client_port: int = 40000, server_port: int = 80
    ) -> None:
        self.client, self.server = client, server
        self.client_port, self.server_port = client_port, server_port
        self.frames: list[tuple[float, bytes]] = []

    def sends(
        self,
        from_client: bool,
        time: float,
        seq: int,
        ack: int,
        flags: int,
        payload: bytes = b"",
        *,
        window: int = 1000,
        options: bytes = b"",
    ) -> Conversation:
        ends = [(self.client, self.client_port), (self.server, self.server_port)]
        (source, source_port), (destination, destination_port) = ends if from_client else ends[::-1]
        segment = tcp(source_port, destination_port, seq, ack, flags, window, payload, options)
        self.frames.append((time, ethernet(ipv4(source, destination, 6, segment))))
        return self

    def client_sends(self, *arguments: Any, **options: Any) -> Conversation:
        return self.sends(True, *arguments, **options)

    def server_sends(self, *arguments: Any, **options: Any) -> Conversation:
        return self.sends(False, *arguments, **options)

    def records(self) -> list[PacketRecord]:
        return decode_all(self.frames)
