"""The network layer: IPv4 (RFC 791) and IPv6 (RFC 8200) with extension headers and fragments.

Fragments are reassembled the way tshark does: a fragment that does not complete
its datagram carries no transport header (its record has ``fragment`` set); the
frame that completes it carries the whole datagram's. Also the text of IP
addresses, cached, for every decoding path.
"""

from __future__ import annotations

import socket

from visualizer.sources.checksum import ipv4_header_ok
from visualizer.sources.record import Fields

IPV4_MINIMUM_HEADER_LENGTH = 20
IPV6_HEADER_LENGTH = 40

# IPv4 flags and fragment offset field (RFC 791 s3.1).
IPV4_MORE_FRAGMENTS = 0x2000
IPV4_FRAGMENT_OFFSET = 0x1FFF

# IPv6 extension headers that carry a next-header field (RFC 8200 s4).
IPV6_HOP_BY_HOP = 0
IPV6_ROUTING = 43
IPV6_FRAGMENT = 44
IPV6_DESTINATION_OPTIONS = 60
IPV6_AUTHENTICATION = 51  # RFC 4302 s2.2: its length counts 4-octet units
IPV6_NO_NEXT_HEADER = 59
IPV6_EXTENSION_NAMES = {
    IPV6_HOP_BY_HOP: "ipv6.hopopts",
    IPV6_ROUTING: "ipv6.routing",
    IPV6_DESTINATION_OPTIONS: "ipv6.dstopts",
    IPV6_AUTHENTICATION: "ah",
}

MAXIMUM_PENDING_DATAGRAMS = 4096
"""Incomplete fragment sets kept at most; the oldest is dropped beyond that (a heuristic of ours)."""

ADDRESS_CACHE_SIZE = 100_000
"""Address texts kept per cache; a cache is emptied when it grows beyond this."""


# -- Addresses as text ------------------------------------------------------------------------------
#
# A capture names few addresses many times: each text is made once. The caches are
# module-level so that every decoder of a process shares them; the dictionaries are
# public for the hot loops, which look them up inline before calling the function.

_ipv4_text: dict[bytes, str] = {}
_ipv6_text: dict[bytes, str] = {}
ipv4_pairs: dict[bytes, tuple[str, str]] = {}
"""Source and destination text by the 8 address bytes of an IPv4 header (filled by :func:`ipv4_pair_text`)."""
ipv4_by_number: dict[int, str] = {}
"""IPv4 address text by the address as an integer (filled by :func:`ipv4_text_from_number`)."""


def ipv4_text(raw: bytes) -> str:
    text = _ipv4_text.get(raw)
    if text is None:
        if len(_ipv4_text) > ADDRESS_CACHE_SIZE:
            _ipv4_text.clear()
        text = _ipv4_text[raw] = socket.inet_ntop(socket.AF_INET, raw)
    return text


def ipv4_pair_text(raw: bytes) -> tuple[str, str]:
    """Source and destination text of an IPv4 header's 8 address bytes (cached in :data:`ipv4_pairs`)."""
    if len(ipv4_pairs) > ADDRESS_CACHE_SIZE:
        ipv4_pairs.clear()
    pair = ipv4_pairs[raw] = (ipv4_text(raw[:4]), ipv4_text(raw[4:]))
    return pair


def ipv4_text_from_number(value: int) -> str:
    """Text of an IPv4 address given as an integer (cached in :data:`ipv4_by_number`)."""
    if len(ipv4_by_number) > ADDRESS_CACHE_SIZE:
        ipv4_by_number.clear()
    text = ipv4_by_number[value] = ipv4_text(value.to_bytes(4, "big"))
    return text


def ipv6_text(raw: bytes) -> str:
    text = _ipv6_text.get(raw)
    if text is None:
        if len(_ipv6_text) > ADDRESS_CACHE_SIZE:
            _ipv6_text.clear()
        text = _ipv6_text[raw] = socket.inet_ntop(socket.AF_INET6, raw)
    return text


# -- Fragment reassembly -----------------------------------------------------------------------------


class _Fragments:
    """The fragments of one IP datagram seen so far (RFC 791 s3.2, RFC 8200 s4.5)."""

    __slots__ = ("pieces", "total")

    def __init__(self) -> None:
        self.pieces: dict[int, bytes] = {}
        self.total = -1

    def add(self, offset: int, data: bytes, more: bool) -> bytes | None:
        self.pieces[offset] = data
        if not more:
            self.total = offset + len(data)
        if self.total < 0:
            return None
        assembled = bytearray()
        for start in sorted(self.pieces):
            if start > len(assembled):
                return None
            piece = self.pieces[start]
            assembled[start : start + len(piece)] = piece
        if len(assembled) < self.total:
            return None
        return bytes(assembled[: self.total])


class Reassembly:
    """The datagrams of one capture whose fragments are still arriving."""

    def __init__(self) -> None:
        self._pending: dict[tuple[object, ...], _Fragments] = {}

    def add(self, key: tuple[object, ...], offset: int, payload: bytes, more: bool) -> bytes | None:
        """Add one fragment; the whole datagram's payload once it is complete, else None."""
        pending = self._pending.get(key)
        if pending is None:
            if len(self._pending) >= MAXIMUM_PENDING_DATAGRAMS:
                del self._pending[next(iter(self._pending))]
            pending = self._pending[key] = _Fragments()
        assembled = pending.add(offset, payload, more)
        if assembled is not None:
            del self._pending[key]
        return assembled


# -- The headers --------------------------------------------------------------------------------------


TransportStart = tuple[int, bytes, int]
"""Where the IP layer hands over: (transport protocol, its bytes, the length the IP header declares
for them; the captured bytes may be shorter). A plain tuple: one is made per frame."""


def decode_ipv4(
    data: bytes, offset: int, layers: list[str], fields: Fields, reassembly: Reassembly, verify_checksums: bool
) -> TransportStart | None:
    """Decode the IPv4 header at ``offset`` into ``fields``; None when no transport header follows."""
    layers.append("ip")
    if len(data) < offset + IPV4_MINIMUM_HEADER_LENGTH:
        fields.problem = "IPv4 header cut short"
        return None
    header = (data[offset] & 0x0F) * 4
    if data[offset] >> 4 != 4 or header < IPV4_MINIMUM_HEADER_LENGTH:
        fields.problem = "bad IPv4 header"
        return None
    if len(data) < offset + header:
        fields.problem = "IPv4 header cut short"
        return None
    total = int.from_bytes(data[offset + 2 : offset + 4], "big")
    if total == 0:  # TCP segmentation offload: the length was left to the NIC
        total = len(data) - offset
    if total < header:
        fields.problem = f"IPv4 total length {total} shorter than its header"
        return None
    fields.network = 4
    if verify_checksums:
        fields.pseudo = (data[offset + 12 : offset + 16], data[offset + 16 : offset + 20])
        fields.ip_checksum_ok = ipv4_header_ok(data[offset : offset + header])
    fields.source = ipv4_text(data[offset + 12 : offset + 16])
    fields.destination = ipv4_text(data[offset + 16 : offset + 20])
    protocol = data[offset + 9]
    flags_fragment = int.from_bytes(data[offset + 6 : offset + 8], "big")
    more = bool(flags_fragment & IPV4_MORE_FRAGMENTS)
    fragment_offset = (flags_fragment & IPV4_FRAGMENT_OFFSET) * 8
    payload = data[offset + header : offset + total]
    declared = total - header
    if more or fragment_offset:
        # RFC 791 s3.2: a datagram is identified by its addresses, identification and protocol.
        key = (4, data[offset + 12 : offset + 20], data[offset + 4 : offset + 6], protocol)
        assembled = reassembly.add(key, fragment_offset, payload, more)
        if assembled is None:
            fields.fragment = True
            layers.append("data")
            return None
        payload, declared = assembled, len(assembled)
    return protocol, payload, declared


def decode_ipv6(
    data: bytes, offset: int, layers: list[str], fields: Fields, reassembly: Reassembly, verify_checksums: bool
) -> TransportStart | None:
    """Decode the IPv6 header at ``offset`` and its extension headers; None when no transport header follows."""
    layers.append("ipv6")
    if len(data) < offset + IPV6_HEADER_LENGTH:
        fields.problem = "IPv6 header cut short"
        return None
    fields.network = 6
    fields.source = ipv6_text(data[offset + 8 : offset + 24])
    fields.destination = ipv6_text(data[offset + 24 : offset + 40])
    declared = int.from_bytes(data[offset + 4 : offset + 6], "big")
    next_header = data[offset + 6]
    if verify_checksums:
        fields.pseudo = (data[offset + 8 : offset + 24], data[offset + 24 : offset + 40])
    addresses = data[offset + 8 : offset + 40]
    payload = data[offset + 40 : offset + 40 + declared] if declared else data[offset + 40 :]
    if not declared:  # jumbogram or offload: take what was captured
        declared = len(payload)
    while True:
        if next_header in IPV6_EXTENSION_NAMES:
            if len(payload) < 8:
                fields.problem = "IPv6 extension header cut short"
                return None
            layers.append(IPV6_EXTENSION_NAMES[next_header])
            if next_header == IPV6_AUTHENTICATION:
                length = (payload[1] + 2) * 4
            else:
                length = (payload[1] + 1) * 8
            next_header = payload[0]
            payload = payload[length:]
            declared -= length
        elif next_header == IPV6_FRAGMENT:
            if len(payload) < 8:
                fields.problem = "IPv6 fragment header cut short"
                return None
            layers.append("ipv6.fraghdr")
            following = payload[0]
            offset_flags = int.from_bytes(payload[2:4], "big")
            more = bool(offset_flags & 1)
            fragment_offset = offset_flags & 0xFFF8
            identification = payload[4:8]
            payload = payload[8:]
            declared -= 8
            next_header = following
            if more or fragment_offset:
                assembled = reassembly.add((6, addresses, identification), fragment_offset, payload, more)
                if assembled is None:
                    fields.fragment = True
                    layers.append("data")
                    return None
                payload, declared = assembled, len(assembled)
        elif next_header == IPV6_NO_NEXT_HEADER:
            return None
        else:
            return next_header, payload, declared
