"""Internet checksums (RFC 1071) of IPv4 headers, TCP and UDP, verified in software.

A frame's checksum is ``ok`` or ``bad``, or ``unverified`` when it cannot be
checked: the payload was cut by the snap length, the UDP sender left the
checksum out (0), or the kernel left it to checksum offload. On ``lo`` the
kernel never completes TCP checksums: the field holds only the pseudo-header
sum (CHECKSUM_PARTIAL), e.g. 0xfe20 for a 24-byte segment from 127.0.0.1 to
127.0.0.1, so such a frame is ``unverified``, never ``bad``.
"""

from __future__ import annotations

import struct

from visualizer.model import PROTOCOL_TCP, PROTOCOL_UDP

OK = "ok"
BAD = "bad"
UNVERIFIED = "unverified"


def words(data: bytes) -> tuple[int, ...]:
    """``data`` as 16-bit big-endian words, an odd last byte padded with a zero (RFC 1071 s4.1)."""
    if len(data) % 2:
        data += b"\0"
    return struct.unpack(f"!{len(data) // 2}H", data)


def ones_complement_sum(data: bytes, start: int = 0) -> int:
    """The 16-bit one's complement sum of ``data`` (RFC 1071 s4.1), folded."""
    total: int = start + sum(words(data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def ipv4_header_ok(header: bytes) -> bool:
    return ones_complement_sum(header) == 0xFFFF


def transport_status(protocol: int, source: bytes, destination: bytes, segment: bytes, declared_length: int) -> str:
    """Verify a TCP or UDP checksum over the pseudo-header (RFC 9293 s3.1, RFC 768)."""
    if len(segment) < declared_length:
        return UNVERIFIED  # cut by the snap length
    segment = segment[:declared_length]
    field_at = 16 if protocol == PROTOCOL_TCP else 6  # offset of the checksum field
    if len(segment) < field_at + 2:
        return UNVERIFIED
    stored = int.from_bytes(segment[field_at : field_at + 2], "big")
    if protocol == PROTOCOL_UDP and stored == 0 and len(source) == 4:
        return UNVERIFIED  # RFC 768: no checksum computed
    if len(source) == 4:
        pseudo = source + destination + struct.pack("!BBH", 0, protocol, declared_length)
    else:
        pseudo = source + destination + struct.pack("!IxxxB", declared_length, protocol)
    pseudo_sum = ones_complement_sum(pseudo)
    if stored == pseudo_sum:
        return UNVERIFIED  # a partial (offload) sum: the pseudo-header only
    return OK if ones_complement_sum(segment, pseudo_sum) == 0xFFFF else BAD
