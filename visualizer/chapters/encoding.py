"""Chapter 1: how is data encoded? The measurements that answer it, from a capture and its kernel record.

A program hands ``send()`` bytes; TCP carries exactly those bytes as a segment's payload, behind
a TCP header (RFC 9293 s3.1), an IPv4 header (RFC 791 s3.1) and, on loopback, an Ethernet header
of zeros. What the bytes mean is the program's business: text is characters encoded (UTF-8 here:
one byte for an ASCII character, two or more for the others, RFC 3629), a binary record is numbers
packed at fixed offsets. The headers' own numbers are written most significant byte first: network
byte order (big-endian: RFC 1700, "Data Notations"; RFC 791 appendix B), the order Python's
``struct`` calls ``!``.

Everything here is pure: functions of an :class:`~visualizer.chapters.Experiment`'s frames and
calls, or of a frame's bytes, returning small dataclasses the notebook prints and the tests assert.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from visualizer.chapters.story import side_of
from visualizer.errors import UsageError
from visualizer.render.bytes import ByteGroup, ByteRow

if TYPE_CHECKING:
    from visualizer.analysis.kernel import SocketCall
    from visualizer.chapters import Experiment

ETHERNET_HEADER_BYTES = 14
"""IEEE 802.3: destination address (6 bytes), source address (6), EtherType (2)."""
ETHERTYPE_OFFSET = 12
IPV4_FIELDS = (("Total Length", 2, 2), ("Source Address", 12, 4), ("Destination Address", 16, 4))
"""RFC 791 s3.1 fields that hold numbers: (name, offset in the IPv4 header, bytes)."""
TCP_FIELDS = (
    ("Source Port", 0, 2),
    ("Destination Port", 2, 2),
    ("Sequence Number", 4, 4),
    ("Acknowledgment Number", 8, 4),
    ("Window", 14, 2),
)
"""RFC 9293 s3.1 fields that hold numbers: (name, offset in the TCP header, bytes)."""


@dataclass(frozen=True, slots=True)
class WireField:
    """A number as bytes on the wire (or in a payload), read both ways."""

    layer: str
    """``Ethernet``, ``IPv4``, ``TCP`` or ``payload``."""
    name: str
    offset: int
    """Bytes from the start of the frame (a header field) or of the payload (a record's field)."""
    raw: bytes

    @property
    def big_endian(self) -> int:
        """The value read most significant byte first: network byte order (RFC 1700)."""
        return int.from_bytes(self.raw, "big")

    @property
    def little_endian(self) -> int:
        """The value the same bytes would mean least significant byte first (as an x86 CPU stores it)."""
        return int.from_bytes(self.raw, "little")

    @property
    def hex_bytes(self) -> str:
        """``1f 90``: each byte as two hex digits."""
        return self.raw.hex(" ")

    @property
    def decimal_bytes(self) -> str:
        """``31 144``: each byte as a number."""
        return " ".join(str(byte) for byte in self.raw)


def header_fields(frame: bytes) -> list[WireField]:
    """The numeric fields of an Ethernet + IPv4 + TCP frame's headers, each with its bytes as captured."""
    fields = [WireField("Ethernet", "EtherType", ETHERTYPE_OFFSET, frame[ETHERTYPE_OFFSET : ETHERTYPE_OFFSET + 2])]
    ip = ETHERNET_HEADER_BYTES
    for name, offset, size in IPV4_FIELDS:
        fields.append(WireField("IPv4", name, ip + offset, frame[ip + offset : ip + offset + size]))
    tcp = ip + frame_layout(frame).ipv4
    for name, offset, size in TCP_FIELDS:
        fields.append(WireField("TCP", name, tcp + offset, frame[tcp + offset : tcp + offset + size]))
    return fields


@dataclass(frozen=True, slots=True)
class FrameLayout:
    """An Ethernet + IPv4 + TCP frame's parts, in bytes, as its own length fields give them."""

    ethernet: int
    ipv4: int
    tcp: int
    payload: int

    @property
    def headers(self) -> int:
        return self.ethernet + self.ipv4 + self.tcp

    @property
    def total(self) -> int:
        return self.headers + self.payload


def frame_layout(frame: bytes) -> FrameLayout:
    """The lengths of a frame's headers (IHL and Data Offset count 32-bit words: RFC 791 s3.1, RFC 9293
    s3.1) and of its payload (what follows them)."""
    ipv4 = (frame[ETHERNET_HEADER_BYTES] & 0x0F) * 4
    tcp = (frame[ETHERNET_HEADER_BYTES + ipv4 + 12] >> 4) * 4
    headers = ETHERNET_HEADER_BYTES + ipv4 + tcp
    return FrameLayout(ETHERNET_HEADER_BYTES, ipv4, tcp, len(frame) - headers)


def record_fields(payload: bytes, layout: str, names: Sequence[str]) -> list[WireField]:
    """A binary record's fields, by its ``struct`` layout (a byte-order prefix, then one code per field:
    ``!HI``), each with its bytes in the payload."""
    order, codes = layout[0], layout[1:]
    if len(codes) != len(names):
        raise UsageError(f"{layout!r} has {len(codes)} fields, {len(names)} names given")
    fields, offset = [], 0
    for code, name in zip(codes, names, strict=True):
        size = struct.calcsize(order + code)
        fields.append(WireField("payload", name, offset, payload[offset : offset + size]))
        offset += size
    return fields


@dataclass(frozen=True, slots=True)
class CharacterBytes:
    character: str
    offset: int
    """Bytes from the start of the text."""
    raw: bytes


def characters(payload: bytes, encoding: str = "utf-8") -> list[CharacterBytes]:
    """Each character of a text payload with the bytes that encode it."""
    found, offset = [], 0
    for character in payload.decode(encoding):
        raw = character.encode(encoding)
        found.append(CharacterBytes(character, offset, raw))
        offset += len(raw)
    return found


@dataclass(frozen=True, slots=True)
class SentBytes:
    """One ``send()`` of a program: what it handed the kernel, and the bytes its segments carried."""

    sender: str
    """``client`` or ``server``."""
    call: SocketCall
    payload: bytes
    """The bytes of its sequence range, as the frames that carried them hold them."""

    @property
    def frames(self) -> tuple[int, ...]:
        return self.call.frames


def sent_bytes(experiment: Experiment, stream: int = 0) -> list[SentBytes]:
    """Every send() of the conversation's programs (kernel record) with the bytes its frames carried, in time order."""
    by_number = {frame.record.number: frame for frame in experiment.frames_of(stream)}
    sends = []
    for endpoint in experiment.endpoints(stream):
        sender = side_of(experiment, endpoint, stream)
        for call in endpoint.calls:
            if call.call != "send" or call.sequence is None:
                continue
            first, end = call.sequence
            carried = bytearray(end - first)
            for number in call.frames:
                frame = by_number[number]
                start = frame.seq - first  # relative numbers, like the call's
                data = frame.record.payload[max(0, -start) : max(0, end - frame.seq)]
                carried[max(0, start) : max(0, start) + len(data)] = data
            sends.append(SentBytes(sender, call, bytes(carried)))
    return sorted(sends, key=lambda sent: sent.call.time_ns)


# -- the rows of the bytes figure --------------------------------------------------------------------


def character_row(title: str, payload: bytes) -> ByteRow:
    """A text payload's bytes, each character above the bytes that encode it (shaded when more than one)."""
    groups = [
        ByteGroup(found.offset, found.offset + len(found.raw), found.character, wide=len(found.raw) > 1)
        for found in characters(payload)
    ]
    return ByteRow(title, payload, tuple(groups))


def field_row(title: str, data: bytes, fields: Sequence[WireField], *, start: int = 0) -> ByteRow:
    """Bytes ``data`` (from ``start`` in whatever holds the fields), each field above its own bytes with
    its value read in network byte order."""
    groups = [
        ByteGroup(
            field.offset - start,
            field.offset - start + len(field.raw),
            f"{field.name}\n{number_text(field.big_endian)}",
        )
        for field in fields
    ]
    return ByteRow(title, data, tuple(groups))


def number_text(value: int) -> str:
    """``8080`` (below 100,000: a port, as ports are written), ``16,909,060``."""
    return str(value) if value < 100_000 else f"{value:,}"
