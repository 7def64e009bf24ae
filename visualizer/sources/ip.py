"""The network layer: IPv4 (RFC 791) and IPv6 (RFC 8200) with extension headers and fragments.

Fragments are reassembled the way tshark does: a fragment that does not complete
its datagram carries no transport header (its record has ``fragment`` set); the
frame that completes it carries the whole datagram's. Also the text of IP
addresses, cached, for every decoding path.
"""

from __future__ import annotations

import socket
from bisect import bisect_left, bisect_right

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

MAXIMUM_DATAGRAM_LENGTH = 65_535
"""The largest IP datagram (RFC 791 s3.1, RFC 8200 s4.5 without jumbograms): a fragment that
ends beyond it cannot be part of one, and is dropped with a reason."""
MAXIMUM_PENDING_DATAGRAMS = 4096
"""Incomplete datagrams kept at most; the oldest is dropped beyond that (a heuristic of ours)."""
MAXIMUM_PENDING_BYTES = 4 * 1024 * 1024
"""Fragment bytes kept at most for incomplete datagrams (Linux's net.ipv4.ipfrag_high_thresh)."""
FRAGMENT_TIMEOUT_NS = 30 * 1_000_000_000
"""Capture time after its first fragment when an incomplete datagram is dropped (Linux's
net.ipv4.ipfrag_time; RFC 8200 s4.5 allows 60 s for IPv6, RFC 791 suggests 15 s)."""

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


def ipv6_text(raw: bytes) -> str:
    text = _ipv6_text.get(raw)
    if text is None:
        if len(_ipv6_text) > ADDRESS_CACHE_SIZE:
            _ipv6_text.clear()
        text = _ipv6_text[raw] = socket.inet_ntop(socket.AF_INET6, raw)
    return text


# -- Fragment reassembly -----------------------------------------------------------------------------


class _Fragments:
    """The fragments of one IP datagram seen so far (RFC 791 s3.2, RFC 8200 s4.5).

    Keeps the pieces by offset (a later piece at the same offset replaces the earlier) and
    the byte ranges they cover, merged, so that each fragment costs O(log n) plus a list
    splice and the datagram is put together once, when its ranges cover it.
    """

    __slots__ = ("pieces", "starts", "ends", "total", "held", "started")

    def __init__(self, started: int | None) -> None:
        self.pieces: dict[int, bytes] = {}
        self.starts: list[int] = []
        self.ends: list[int] = []
        """Covered ranges [starts[i], ends[i]), sorted, neither overlapping nor touching."""
        self.total = -1
        self.held = 0
        """Bytes held in ``pieces``."""
        self.started = started
        """Capture time of the first fragment (ns), for the reassembly timeout."""

    def add(self, offset: int, data: bytes, more: bool) -> bytes | None:
        replaced = self.pieces.get(offset)
        if replaced is not None:
            self.held -= len(replaced)
        self.pieces[offset] = data
        self.held += len(data)
        if not more:
            self.total = offset + len(data)
        if data:
            self._cover(offset, offset + len(data))
        if self.total < 0:
            return None
        if self.total and not (self.starts and self.starts[0] == 0 and self.ends[0] >= self.total):
            return None
        assembled = bytearray()
        for start in sorted(self.pieces):  # overlaps: the piece that starts later wins, as before
            piece = self.pieces[start]
            assembled[start : start + len(piece)] = piece
        return bytes(assembled[: self.total])

    def _cover(self, start: int, end: int) -> None:
        starts, ends = self.starts, self.ends
        first = bisect_left(ends, start)  # the first range that ends at or after this start
        last = bisect_right(starts, end)  # past the last range that starts at or before this end
        if first < last:
            start, end = min(start, starts[first]), max(end, ends[last - 1])
        starts[first:last] = [start]
        ends[first:last] = [end]


class Reassembly:
    """The datagrams of one capture whose fragments are still arriving, within bounds.

    Like Linux (net.ipv4.ipfrag_time, ipfrag_high_thresh), a datagram whose fragments
    stop arriving is dropped after :data:`FRAGMENT_TIMEOUT_NS` of capture time, and
    the oldest datagrams are dropped when more than :data:`MAXIMUM_PENDING_DATAGRAMS`
    or :data:`MAXIMUM_PENDING_BYTES` are pending. Time is the fragments' own
    capture time (an argument, never a clock), so every reading path that sees the
    same fragments drops the same datagrams.
    """

    def __init__(self) -> None:
        self._pending: dict[tuple[object, ...], _Fragments] = {}
        self.pending_bytes = 0
        """Bytes held by every pending datagram together."""
        self.dropped = 0
        """Datagrams dropped before they completed (timeout or limits)."""

    @property
    def pending_datagrams(self) -> int:
        return len(self._pending)

    def add(
        self, key: tuple[object, ...], offset: int, payload: bytes, more: bool, *, now: int | None = None
    ) -> bytes | None:
        """Add one fragment captured at ``now`` (ns); the datagram's payload once complete, else None."""
        pending = self._pending
        if now is not None:
            while pending:
                oldest_key, oldest = next(iter(pending.items()))
                if oldest.started is None or now - oldest.started <= FRAGMENT_TIMEOUT_NS:
                    break
                self._drop(oldest_key)
        fragments = pending.get(key)
        if fragments is None:
            while len(pending) >= MAXIMUM_PENDING_DATAGRAMS:
                self._drop(next(iter(pending)))
            fragments = pending[key] = _Fragments(now)
        held = fragments.held
        assembled = fragments.add(offset, payload, more)
        self.pending_bytes += fragments.held - held
        if assembled is not None:
            self.pending_bytes -= fragments.held
            del pending[key]
            return assembled
        while self.pending_bytes > MAXIMUM_PENDING_BYTES:  # the oldest first, this one last
            self._drop(next(iter(pending)))
        return None

    def _drop(self, key: tuple[object, ...]) -> None:
        self.pending_bytes -= self._pending.pop(key).held
        self.dropped += 1


# -- The headers --------------------------------------------------------------------------------------


TransportStart = tuple[int, bytes, int]
"""Where the IP layer hands over: (transport protocol, its bytes, the length the IP header declares
for them; the captured bytes may be shorter). A plain tuple: one is made per frame."""


def _reassemble(
    version: str,
    key: tuple[object, ...],
    fragment_offset: int,
    payload: bytes,
    more: bool,
    now: int | None,
    reassembly: Reassembly,
    fields: Fields,
    layers: list[str],
) -> bytes | None:
    """Add a fragment; the whole datagram once it is complete, else None (the frame is a fragment, or
    one that can never fit a datagram: a problem)."""
    if fragment_offset + len(payload) > MAXIMUM_DATAGRAM_LENGTH:
        fields.problem = f"{version} fragment ends beyond {MAXIMUM_DATAGRAM_LENGTH} bytes"
        return None
    assembled = reassembly.add(key, fragment_offset, payload, more, now=now)
    if assembled is None:
        fields.fragment = True
        layers.append("data")
    return assembled


def decode_ipv4(
    data: bytes,
    offset: int,
    layers: list[str],
    fields: Fields,
    reassembly: Reassembly,
    verify_checksums: bool,
    now: int | None = None,
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
        assembled = _reassemble("IPv4", key, fragment_offset, payload, more, now, reassembly, fields, layers)
        if assembled is None:
            return None
        payload, declared = assembled, len(assembled)
    return protocol, payload, declared


def decode_ipv6(
    data: bytes,
    offset: int,
    layers: list[str],
    fields: Fields,
    reassembly: Reassembly,
    verify_checksums: bool,
    now: int | None = None,
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
                key = (6, addresses, identification)
                assembled = _reassemble("IPv6", key, fragment_offset, payload, more, now, reassembly, fields, layers)
                if assembled is None:
                    return None
                payload, declared = assembled, len(assembled)
        elif next_header == IPV6_NO_NEXT_HEADER:
            return None
        else:
            return next_header, payload, declared
