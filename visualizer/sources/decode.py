"""Decode raw frames into packet records: the one place a PacketRecord is built.

A lean header decoder (Scapy dissects about 6k packets/s; this decodes several
hundred thousand): link layer (Ethernet with 802.1Q/QinQ and MPLS, Linux SLL and
SLL2, raw IP, BSD NULL/loopback), IPv4 and IPv6 (extension headers, fragments
reassembled the way tshark does: only the frame that completes a datagram
carries the transport header), TCP, UDP, and ICMP/ICMPv6 errors, attributed to
the flow whose header they quote.

A frame that cannot be decoded to the end still becomes a record, with what was
decoded and a ``problem`` saying why decoding stopped.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable, Iterator
from functools import partial
from itertools import repeat
from operator import itemgetter
from typing import Any, NamedTuple

from visualizer.model import (
    PROTOCOL_ICMP,
    PROTOCOL_ICMPV6,
    PROTOCOL_TCP,
    PROTOCOL_UDP,
    PacketRecord,
    QuotedFlow,
    SegmentRun,
)
from visualizer.sources.capture_file import LINKTYPE_NONE, PcapChunk, PcapHeader, RawFrame
from visualizer.sources.checksum import BAD, OK, ipv4_header_ok, transport_status

# LINKTYPE_* values (tcpdump.org link-layer header types).
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_RAW_BSD = 12
LINKTYPE_RAW_BSD_OLD = 14
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_ARP = 0x0806
ETHERTYPE_VLAN = 0x8100
ETHERTYPE_QINQ = 0x88A8
ETHERTYPE_QINQ_OLD = 0x9100
ETHERTYPE_MPLS = 0x8847
ETHERTYPE_MPLS_MULTICAST = 0x8848

# IPv6 extension headers that carry a next-header field (RFC 8200 s4).
IPV6_HOP_BY_HOP = 0
IPV6_ROUTING = 43
IPV6_FRAGMENT = 44
IPV6_DESTINATION_OPTIONS = 60
IPV6_AUTHENTICATION = 51
IPV6_NO_NEXT_HEADER = 59
_IPV6_EXTENSION_NAMES = {
    IPV6_HOP_BY_HOP: "ipv6.hopopts",
    IPV6_ROUTING: "ipv6.routing",
    IPV6_DESTINATION_OPTIONS: "ipv6.dstopts",
    IPV6_AUTHENTICATION: "ah",
}

# BSD address families seen in NULL/LOOP headers.
_AF_INET = 2
_AF_INET6 = (10, 23, 24, 28, 30)

# ICMP messages that quote the datagram that caused them (RFC 792, RFC 4443 s3).
ICMP_ERROR_TYPES = frozenset({3, 4, 5, 11, 12})
ICMPV6_ERROR_TYPES = frozenset({1, 2, 3, 4})

_TRANSPORT_NAMES = {PROTOCOL_TCP: "tcp", PROTOCOL_UDP: "udp", PROTOCOL_ICMP: "icmp", PROTOCOL_ICMPV6: "icmpv6"}

# Incomplete fragment sets kept at most; the oldest is dropped beyond that.
MAXIMUM_PENDING_DATAGRAMS = 4096

_new_record = tuple.__new__  # builds the NamedTuple from one tuple, without keyword handling
_tcp_header = struct.Struct("!HHIIBBH").unpack_from
_two_ports = struct.Struct("!HH").unpack_from
_ipv4_text: dict[bytes, str] = {}
_ipv6_text: dict[bytes, str] = {}


def _ipv4(raw: bytes) -> str:
    text = _ipv4_text.get(raw)
    if text is None:
        if len(_ipv4_text) > 100_000:
            _ipv4_text.clear()
        text = _ipv4_text[raw] = socket.inet_ntop(socket.AF_INET, raw)
    return text


_ipv4_pairs: dict[bytes, tuple[str, str]] = {}


def _ipv4_pair(raw: bytes) -> tuple[str, str]:
    """Source and destination text of an IPv4 header's 8 address bytes (cached)."""
    if len(_ipv4_pairs) > 100_000:
        _ipv4_pairs.clear()
    pair = _ipv4_pairs[raw] = (_ipv4(raw[:4]), _ipv4(raw[4:]))
    return pair


_ipv4_by_number: dict[int, str] = {}


def _ipv4_from_number(value: int) -> str:
    if len(_ipv4_by_number) > 100_000:
        _ipv4_by_number.clear()
    text = _ipv4_by_number[value] = _ipv4(value.to_bytes(4, "big"))
    return text


def _ipv6(raw: bytes) -> str:
    text = _ipv6_text.get(raw)
    if text is None:
        if len(_ipv6_text) > 100_000:
            _ipv6_text.clear()
        text = _ipv6_text[raw] = socket.inet_ntop(socket.AF_INET6, raw)
    return text


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


class FrameDecoder:
    """Turns raw frames into :class:`PacketRecord` values.

    Stateful only for IP reassembly, so one decoder serves one capture.
    """

    def __init__(self, *, verify_checksums: bool = False) -> None:
        self._pending: dict[tuple[object, ...], _Fragments] = {}
        self.verify_checksums = verify_checksums
        """Check IPv4, TCP and UDP checksums into ``record.checksum`` (costs time: off for bulk analysis)."""

    def decode(self, frame: RawFrame) -> PacketRecord:
        """Decode one frame. Never raises for bad bytes: it records a problem instead."""
        return self.decode_from(
            frame.data,
            0,
            frame.number,
            frame.timestamp_ns,
            frame.interface,
            frame.link_type,
            frame.captured_length,
            frame.original_length,
        )

    def decode_from(
        self,
        buffer: bytes,
        start: int,
        number: int,
        timestamp: int | None,
        interface: int,
        link_type: int,
        captured: int,
        original: int,
    ) -> PacketRecord:
        """Decode the frame at ``buffer[start:start + captured]`` without copying it first.

        Readers call this straight on their read buffer; most frames of a large
        capture (Ethernet, IPv4 without options or fragments, TCP) take the fast
        path below, which builds the record from fixed offsets.
        """
        if (
            link_type == LINKTYPE_ETHERNET
            and not self.verify_checksums
            and captured >= 54
            and buffer[start + 12] == 8
            and buffer[start + 13] == 0
            and buffer[start + 14] == 0x45
            and buffer[start + 23] == PROTOCOL_TCP
            and not (buffer[start + 20] & 0x3F or buffer[start + 21])
        ):
            total = buffer[start + 16] << 8 | buffer[start + 17]
            source_port, destination_port, seq, ack, offset, flags, window = _tcp_header(buffer, start + 34)
            header = (offset >> 4) * 4
            if header >= 20 and 34 + header <= captured and total >= 20 + header:
                pair = buffer[start + 26 : start + 34]
                addresses = _ipv4_pairs.get(pair)
                if addresses is None:
                    addresses = _ipv4_pair(pair)
                payload_start = start + 34 + header
                return _new_record(
                    PacketRecord,
                    (
                        number,
                        timestamp,
                        interface,
                        link_type,
                        captured,
                        original,
                        "eth:ethertype:ip:tcp",
                        4,
                        PROTOCOL_TCP,
                        addresses[0],
                        addresses[1],
                        source_port,
                        destination_port,
                        seq,
                        ack,
                        flags | (offset & 1) << 8,
                        window,
                        buffer[start + 54 : payload_start],
                        total - 20 - header,
                        buffer[payload_start : start + min(captured, 14 + total)],
                        False,
                        -1,
                        -1,
                        None,
                        "",
                        "",
                    ),
                )
        return self._decode_slowly(
            RawFrame(number, timestamp, interface, link_type, captured, original, buffer[start : start + captured])
        )

    # -- the general path -------------------------------------------------------------------

    def _decode_slowly(self, frame: RawFrame) -> PacketRecord:
        data = frame.data
        link_type = frame.link_type
        layers: list[str] = []
        fields = _Fields()
        if link_type == LINKTYPE_NONE:
            layers.append("data")
        elif link_type == LINKTYPE_ETHERNET:
            self._ethernet(data, 0, layers, fields)
        elif link_type in (LINKTYPE_RAW, LINKTYPE_RAW_BSD, LINKTYPE_RAW_BSD_OLD):
            layers.append("raw")
            self._ip_by_version(data, 0, layers, fields)
        elif link_type == LINKTYPE_IPV4:
            self._ipv4(data, 0, layers, fields)
        elif link_type == LINKTYPE_IPV6:
            self._ipv6(data, 0, layers, fields)
        elif link_type in (LINKTYPE_NULL, LINKTYPE_LOOP):
            layers.append("null" if link_type == LINKTYPE_NULL else "loop")
            if len(data) < 4:
                fields.problem = "loopback header cut short"
            else:
                family = int.from_bytes(data[:4], "big" if link_type == LINKTYPE_LOOP else "little")
                if family > 0xFFFF:  # written on a host of the other byte order
                    family = int.from_bytes(data[:4], "big")
                if family == _AF_INET:
                    self._ipv4(data, 4, layers, fields)
                elif family in _AF_INET6:
                    self._ipv6(data, 4, layers, fields)
                else:
                    fields.problem = f"unknown loopback address family {family}"
        elif link_type == LINKTYPE_LINUX_SLL:
            layers.append("sll")
            if len(data) < 16:
                fields.problem = "Linux cooked header cut short"
            else:
                self._ethertype(int.from_bytes(data[14:16], "big"), data, 16, layers, fields)
        elif link_type == LINKTYPE_LINUX_SLL2:
            layers.append("sll")
            if len(data) < 20:
                fields.problem = "Linux cooked v2 header cut short"
            else:
                self._ethertype(int.from_bytes(data[0:2], "big"), data, 20, layers, fields)
        else:
            fields.problem = f"link type {link_type} is not decoded"
        return _new_record(
            PacketRecord,
            (
                frame.number,
                frame.timestamp_ns,
                frame.interface,
                link_type,
                frame.captured_length,
                frame.original_length,
                ":".join(layers),
                fields.network,
                fields.transport,
                fields.source,
                fields.destination,
                fields.source_port,
                fields.destination_port,
                fields.seq,
                fields.ack,
                fields.tcp_flags,
                fields.window,
                fields.tcp_options,
                fields.payload_length,
                fields.payload,
                fields.fragment,
                fields.icmp_type,
                fields.icmp_code,
                fields.quoted,
                fields.problem,
                fields.checksum,
            ),
        )

    def _ethernet(self, data: bytes, offset: int, layers: list[str], fields: _Fields) -> None:
        layers.append("eth")
        if len(data) < offset + 14:
            fields.problem = "Ethernet header cut short"
            return
        self._ethertype(int.from_bytes(data[offset + 12 : offset + 14], "big"), data, offset + 14, layers, fields)

    def _ethertype(self, ethertype: int, data: bytes, offset: int, layers: list[str], fields: _Fields) -> None:
        layers.append("ethertype")
        while ethertype in (ETHERTYPE_VLAN, ETHERTYPE_QINQ, ETHERTYPE_QINQ_OLD):
            layers.append("vlan")
            if len(data) < offset + 4:
                fields.problem = "VLAN tag cut short"
                return
            ethertype = int.from_bytes(data[offset + 2 : offset + 4], "big")
            offset += 4
            layers.append("ethertype")
        if ethertype == ETHERTYPE_IPV4:
            self._ipv4(data, offset, layers, fields)
        elif ethertype == ETHERTYPE_IPV6:
            self._ipv6(data, offset, layers, fields)
        elif ethertype in (ETHERTYPE_MPLS, ETHERTYPE_MPLS_MULTICAST):
            layers.append("mpls")
            while True:
                if len(data) < offset + 4:
                    fields.problem = "MPLS label cut short"
                    return
                bottom = data[offset + 2] & 1
                offset += 4
                if bottom:
                    break
            if len(data) <= offset:
                return
            nibble = data[offset] >> 4
            if nibble in (4, 6):
                self._ip_by_version(data, offset, layers, fields)
            elif nibble == 0:  # pseudowire control word (RFC 4385), then Ethernet
                layers.append("pwethcw")
                self._ethernet(data, offset + 4, layers, fields)
            else:
                self._ethernet(data, offset, layers, fields)
        elif ethertype == ETHERTYPE_ARP:
            layers.append("arp")
        else:
            layers.append("data")

    def _ip_by_version(self, data: bytes, offset: int, layers: list[str], fields: _Fields) -> None:
        if len(data) <= offset:
            fields.problem = "IP header missing"
            return
        version = data[offset] >> 4
        if version == 4:
            self._ipv4(data, offset, layers, fields)
        elif version == 6:
            self._ipv6(data, offset, layers, fields)
        else:
            fields.problem = f"IP version {version} is not decoded"

    def _ipv4(self, data: bytes, offset: int, layers: list[str], fields: _Fields) -> None:
        layers.append("ip")
        if len(data) < offset + 20:
            fields.problem = "IPv4 header cut short"
            return
        header = (data[offset] & 0x0F) * 4
        if data[offset] >> 4 != 4 or header < 20:
            fields.problem = "bad IPv4 header"
            return
        if len(data) < offset + header:
            fields.problem = "IPv4 header cut short"
            return
        total = int.from_bytes(data[offset + 2 : offset + 4], "big")
        if total == 0:  # TCP segmentation offload: the length was left to the NIC
            total = len(data) - offset
        if total < header:
            fields.problem = f"IPv4 total length {total} shorter than its header"
            return
        fields.network = 4
        if self.verify_checksums:
            fields.pseudo = (data[offset + 12 : offset + 16], data[offset + 16 : offset + 20])
            fields.ip_checksum_ok = ipv4_header_ok(data[offset : offset + header])
        fields.source = _ipv4(data[offset + 12 : offset + 16])
        fields.destination = _ipv4(data[offset + 16 : offset + 20])
        protocol = data[offset + 9]
        flags_fragment = int.from_bytes(data[offset + 6 : offset + 8], "big")
        more = bool(flags_fragment & 0x2000)
        fragment_offset = (flags_fragment & 0x1FFF) * 8
        payload = data[offset + header : offset + total]
        declared = total - header
        if more or fragment_offset:
            key = (4, data[offset + 12 : offset + 20], data[offset + 4 : offset + 6], protocol)
            assembled = self._reassemble(key, fragment_offset, payload, more)
            if assembled is None:
                fields.fragment = True
                layers.append("data")
                return
            payload, declared = assembled, len(assembled)
        self._transport(protocol, payload, declared, layers, fields)

    def _ipv6(self, data: bytes, offset: int, layers: list[str], fields: _Fields) -> None:
        layers.append("ipv6")
        if len(data) < offset + 40:
            fields.problem = "IPv6 header cut short"
            return
        fields.network = 6
        fields.source = _ipv6(data[offset + 8 : offset + 24])
        fields.destination = _ipv6(data[offset + 24 : offset + 40])
        declared = int.from_bytes(data[offset + 4 : offset + 6], "big")
        next_header = data[offset + 6]
        if self.verify_checksums:
            fields.pseudo = (data[offset + 8 : offset + 24], data[offset + 24 : offset + 40])
        addresses = data[offset + 8 : offset + 40]
        payload = data[offset + 40 : offset + 40 + declared] if declared else data[offset + 40 :]
        if not declared:  # jumbogram or offload: take what was captured
            declared = len(payload)
        while True:
            if next_header in _IPV6_EXTENSION_NAMES:
                if len(payload) < 8:
                    fields.problem = "IPv6 extension header cut short"
                    return
                layers.append(_IPV6_EXTENSION_NAMES[next_header])
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
                    return
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
                    assembled = self._reassemble((6, addresses, identification), fragment_offset, payload, more)
                    if assembled is None:
                        fields.fragment = True
                        layers.append("data")
                        return
                    payload, declared = assembled, len(assembled)
            elif next_header == IPV6_NO_NEXT_HEADER:
                return
            else:
                break
        self._transport(next_header, payload, declared, layers, fields)

    def _reassemble(self, key: tuple[object, ...], offset: int, payload: bytes, more: bool) -> bytes | None:
        pending = self._pending.get(key)
        if pending is None:
            if len(self._pending) >= MAXIMUM_PENDING_DATAGRAMS:
                del self._pending[next(iter(self._pending))]
            pending = self._pending[key] = _Fragments()
        assembled = pending.add(offset, payload, more)
        if assembled is not None:
            del self._pending[key]
        return assembled

    def _transport(self, protocol: int, payload: bytes, declared: int, layers: list[str], fields: _Fields) -> None:
        layers.append(_TRANSPORT_NAMES.get(protocol, "data"))
        if self.verify_checksums and fields.pseudo is not None:
            status = OK if fields.ip_checksum_ok else BAD
            if status == OK and protocol in (PROTOCOL_TCP, PROTOCOL_UDP):
                status = transport_status(protocol, fields.pseudo[0], fields.pseudo[1], payload, declared)
            fields.checksum = status
        if protocol == PROTOCOL_TCP:
            if len(payload) < 20:
                fields.problem = "TCP header cut short"
                return
            (
                fields.source_port,
                fields.destination_port,
                fields.seq,
                fields.ack,
                offset,
                flags,
                fields.window,
            ) = _tcp_header(payload, 0)
            header = (offset >> 4) * 4
            if header < 20:
                fields.problem = f"TCP header length {header} is less than 20"
                return
            fields.transport = PROTOCOL_TCP
            fields.tcp_flags = flags | (offset & 1) << 8
            fields.tcp_options = payload[20:header]
            fields.payload_length = max(0, declared - header)
            fields.payload = payload[header:]
            if len(payload) < header:
                fields.problem = "TCP options cut short"
        elif protocol == PROTOCOL_UDP:
            if len(payload) < 8:
                fields.problem = "UDP header cut short"
                return
            fields.transport = PROTOCOL_UDP
            fields.source_port, fields.destination_port = _two_ports(payload, 0)
            length = int.from_bytes(payload[4:6], "big")
            fields.payload_length = max(0, (length if length >= 8 else declared) - 8)
            fields.payload = payload[8:]
        elif protocol in (PROTOCOL_ICMP, PROTOCOL_ICMPV6):
            if len(payload) < 4:
                fields.problem = "ICMP header cut short"
                return
            fields.transport = protocol
            fields.icmp_type, fields.icmp_code = payload[0], payload[1]
            fields.payload_length = max(0, declared - 8)
            fields.payload = payload[8:]
            errors = ICMP_ERROR_TYPES if protocol == PROTOCOL_ICMP else ICMPV6_ERROR_TYPES
            if fields.icmp_type in errors:
                fields.quoted = _quoted_flow(payload[8:])

    # The record fields that the general path fills in step by step.


class _Fields:
    __slots__ = (
        "network",
        "source",
        "destination",
        "transport",
        "source_port",
        "destination_port",
        "seq",
        "ack",
        "tcp_flags",
        "window",
        "tcp_options",
        "payload_length",
        "payload",
        "fragment",
        "icmp_type",
        "icmp_code",
        "quoted",
        "problem",
        "checksum",
        "pseudo",
        "ip_checksum_ok",
    )

    def __init__(self) -> None:
        self.network = 0
        self.source = self.destination = ""
        self.transport = self.source_port = self.destination_port = 0
        self.seq = self.ack = self.tcp_flags = self.window = 0
        self.tcp_options = b""
        self.payload_length = 0
        self.payload = b""
        self.fragment = False
        self.icmp_type = self.icmp_code = -1
        self.quoted: QuotedFlow | None = None
        self.problem = ""
        self.checksum = ""
        self.pseudo: tuple[bytes, bytes] | None = None
        self.ip_checksum_ok = True


def _quoted_flow(inner: bytes) -> QuotedFlow | None:
    """The flow of the IP datagram quoted inside an ICMP error."""
    if len(inner) < 20:
        return None
    version = inner[0] >> 4
    if version == 4:
        header = (inner[0] & 0x0F) * 4
        protocol = inner[9]
        source, destination = _ipv4(inner[12:16]), _ipv4(inner[16:20])
        ports = inner[header : header + 4]
    elif version == 6 and len(inner) >= 40:
        protocol = inner[6]
        source, destination = _ipv6(inner[8:24]), _ipv6(inner[24:40])
        ports = inner[40:44]
    else:
        return None
    if protocol in (PROTOCOL_TCP, PROTOCOL_UDP) and len(ports) == 4:
        source_port, destination_port = _two_ports(ports, 0)
    else:
        source_port = destination_port = 0
    return QuotedFlow(source, destination, protocol, source_port, destination_port)


# -- Sharing conversations among worker processes -----------------------------------------------


class Share(NamedTuple):
    """One worker's part of a capture: the conversations whose mixing byte is in [low, high).

    The mixing byte (:func:`mixing_byte`) is the same for both directions of a
    conversation, so a conversation never straddles two workers.
    """

    low: int
    high: int


WHOLE = Share(0, 256)


def plan_shares(workers: int) -> list[Share]:
    """Cut the 256 mixing-byte values into ``workers`` equal shares."""
    bounds = [round(256 * index / workers) for index in range(workers + 1)]
    return [Share(low, high) for low, high in zip(bounds, bounds[1:])]


def mixing_byte(record: PacketRecord) -> int:
    """0..255, the same for both directions of the record's conversation.

    For IPv4 it equals the byte :func:`decode_pcap_chunk` computes from raw frames
    (last address bytes and low port bytes, combined with XOR), so that a
    conversation whose frames take different decoding paths stays together. An
    ICMP error goes with the flow it quotes; a frame without ports mixes to 0.
    """
    quoted = record.quoted
    if quoted is not None and quoted.transport in (PROTOCOL_TCP, PROTOCOL_UDP):
        source, destination = quoted.source, quoted.destination
        source_port, destination_port = quoted.source_port, quoted.destination_port
    elif record.transport in (PROTOCOL_TCP, PROTOCOL_UDP):
        source, destination = record.source, record.destination
        source_port, destination_port = record.source_port, record.destination_port
    else:
        return 0
    if "." in source and ":" not in source:
        mixed = int(source.rsplit(".", 1)[1]) ^ int(destination.rsplit(".", 1)[1])
    else:
        mixed = sum(source.encode()) + sum(destination.encode())
    return (mixed ^ (source_port & 0xFF) ^ (destination_port & 0xFF)) & 0xFF


def in_share(record: PacketRecord, share: Share) -> bool:
    return share.low <= mixing_byte(record) < share.high


# -- Decoding a whole pcap read buffer at once -----------------------------------------------------


def decode_pcap_chunk(
    decoder: FrameDecoder,
    chunk: PcapChunk,
    header: PcapHeader,
    share: Share = WHOLE,
    *,
    runs: bool = False,
) -> list[PacketRecord | SegmentRun]:
    """Decode the frames of a pcap chunk that belong to ``share`` (all of them by default).

    Frames on the common path (Ethernet, IPv4 without options or fragments, TCP)
    are decoded for the whole buffer at once with NumPy, giving exactly the records
    :meth:`FrameDecoder.decode_from` gives; every other frame goes through it.
    With ``runs`` the common-path frames come as :class:`SegmentRun` columns
    instead of records (for the analysis of large files), still in frame order.
    """
    numpy, record_bytes, probe_offsets, header_offsets = _numpy_tables()
    buffer, offsets, first_number = chunk.buffer, chunk.offsets, chunk.first_number
    count = len(offsets)
    link_type = header.link_type
    whole = share == WHOLE

    def one_by_one(positions: Iterable[int]) -> Iterator[PacketRecord]:
        for record in one_by_one_all(decoder, chunk, header, positions):
            if whole or in_share(record, share):
                yield record

    if link_type != LINKTYPE_ETHERNET or header.lengths_maybe_swapped or not count:
        return list(one_by_one(range(count)))
    # Each frame's first bytes, record header included, as one row: a sliding window over the
    # buffer (padded, so that short frames at its end still have a full row) indexed by frame.
    data = numpy.frombuffer(buffer + bytes(_WINDOW), numpy.uint8)
    frames = numpy.asarray(offsets, dtype=numpy.int64)
    rows = numpy.lib.stride_tricks.sliding_window_view(data, _WINDOW)[frames]
    fields = numpy.ascontiguousarray(rows[:, :16]).view(numpy.dtype(header.byte_order + "u4"))
    seconds, fractional = fields[:, 0], fields[:, 1]
    captured, original = (fields[:, 3], fields[:, 2]) if header.lengths_swapped else (fields[:, 2], fields[:, 3])
    starts = frames + 16
    probe = rows[:, 16 + probe_offsets]
    ethertype_high, ethertype_low, version, fragment_high, fragment_low, protocol = probe[:, :6].T
    total = probe[:, 6].astype(numpy.int64) << 8 | probe[:, 7]
    tcp_header = (probe[:, 8] >> 4).astype(numpy.int64) * 4
    assignable = (
        (captured >= 38)
        & (ethertype_high == 8)
        & (ethertype_low == 0)
        & (version == 0x45)
        & ((fragment_high & 0x3F) == 0)
        & (fragment_low == 0)
        & ((protocol == PROTOCOL_TCP) | (protocol == PROTOCOL_UDP))
    )
    fast = (
        assignable
        & (protocol == PROTOCOL_TCP)
        & (captured >= 54)
        & (tcp_header >= 20)
        & (34 + tcp_header <= captured)
        & (total >= 20 + tcp_header)
    )
    if not whole:
        mixed = probe[:, 9] ^ probe[:, 10] ^ probe[:, 11] ^ probe[:, 12]
        mine = (mixed >= share.low) & (mixed < share.high)
        fast &= mine
        chosen = ~assignable | mine
    else:
        chosen = numpy.ones(count, dtype=bool)
    picked = numpy.flatnonzero(fast)
    others = numpy.flatnonzero(chosen & ~fast).tolist()
    length = len(picked)
    if not length:
        return list(one_by_one(others))
    frame_starts = starts[picked]
    head = rows[picked][:, 16 + header_offsets]  # IPv4 addresses and the TCP header
    addresses = head[:, :8].copy().view(">u4")
    tcp = head[:, 8:]
    ports = tcp[:, 0:4].copy().view(">u2")
    numbers = (picked + first_number).tolist()
    timestamps = (
        seconds[picked].astype(numpy.int64) * 1_000_000_000
        + fractional[picked].astype(numpy.int64) * header.fraction_ns
    ).tolist()
    sources = _ipv4_texts(addresses[:, 0].tolist())
    destinations = _ipv4_texts(addresses[:, 1].tolist())
    source_ports = ports[:, 0].tolist()
    destination_ports = ports[:, 1].tolist()
    picked_header = tcp_header[picked]
    picked_total = total[picked]
    payload_start = frame_starts + 34 + picked_header
    flag_bits = tcp[:, 13].astype(numpy.int64) | (tcp[:, 12].astype(numpy.int64) & 1) << 8
    seqs = tcp[:, 4:8].copy().view(">u4")[:, 0].tolist()
    acks = tcp[:, 8:12].copy().view(">u4")[:, 0].tolist()
    windows = tcp[:, 14:16].copy().view(">u2")[:, 0].tolist()
    payload_lengths = (picked_total - 20 - picked_header).tolist()
    originals = original[picked].tolist()
    flags = flag_bits.tolist()
    if runs:
        # The analysis reads options only from SYN segments.
        options = [b""] * length
        for row in numpy.flatnonzero(flag_bits & 0x02).tolist():
            options[row] = buffer[int(frame_starts[row]) + 54 : int(payload_start[row])]
        keys = list(zip(sources, destinations, source_ports, destination_ports))
        columns = (numbers, timestamps, keys, seqs, acks, flags, windows, options, payload_lengths, originals)
        if not others:
            return [SegmentRun._make(columns)]
        # Cut the columns where frames decoded one by one fall in between.
        items: list[PacketRecord | SegmentRun] = []
        cuts = numpy.searchsorted(picked, others).tolist()
        previous = 0
        for cut, record in zip(cuts, one_by_one_all(decoder, chunk, header, others)):
            if cut > previous:
                items.append(SegmentRun._make(column[previous:cut] for column in columns))
                previous = cut
            if whole or in_share(record, share):
                items.append(record)
        if previous < length:
            items.append(SegmentRun._make(column[previous:] for column in columns))
        return items
    options_start = (frame_starts + 54).tolist()
    payload_starts = payload_start.tolist()
    payload_end = (frame_starts + numpy.minimum(captured[picked], 14 + picked_total)).tolist()
    records: list[PacketRecord | SegmentRun] = list(
        map(
            _record_from_fields,
            zip(
                numbers,
                timestamps,
                repeat(0, length),
                repeat(link_type, length),
                captured[picked].tolist(),
                originals,
                repeat("eth:ethertype:ip:tcp", length),
                repeat(4, length),
                repeat(PROTOCOL_TCP, length),
                sources,
                destinations,
                source_ports,
                destination_ports,
                seqs,
                acks,
                flags,
                windows,
                [buffer[start:stop] for start, stop in zip(options_start, payload_starts)],
                payload_lengths,
                [buffer[start:stop] for start, stop in zip(payload_starts, payload_end)],
                repeat(False, length),
                repeat(-1, length),
                repeat(-1, length),
                repeat(None, length),
                repeat("", length),
                repeat("", length),
            ),
        )
    )
    if not others:
        return records
    # Interleave in frame order with the frames decoded one by one.
    together: list[PacketRecord | SegmentRun] = [*records, *one_by_one(others)]
    order = numpy.argsort([item[0] for item in together], kind="stable").tolist()
    return list(itemgetter(*order)(together)) if len(together) > 1 else together


def candidate_positions(chunk: PcapChunk, header: PcapHeader, keys: set[bytes], transport: int) -> list[int]:
    """Positions of the frames in a chunk that may belong to the given flows.

    ``keys`` are the 12 bytes of an IPv4 header's addresses followed by the ports
    (each direction of each flow). A plain Ethernet/IPv4 frame with ``transport``
    is a candidate only when its bytes match; every other frame is a candidate
    (it is decoded and then checked).
    """
    offsets = chunk.offsets
    if header.link_type != LINKTYPE_ETHERNET or header.lengths_maybe_swapped or not offsets:
        return list(range(len(offsets)))
    numpy = _numpy_tables()[0]
    buffer = chunk.buffer
    data = numpy.frombuffer(buffer, numpy.uint8)
    starts = numpy.asarray(offsets, dtype=numpy.int64) + 16
    probe = data[numpy.minimum(starts[:, None] + numpy.arange(12, 38), len(buffer) - 1)]
    plain = (
        (probe[:, 0] == 8)
        & (probe[:, 1] == 0)
        & (probe[:, 2] == 0x45)
        & ((probe[:, 8] & 0x3F) == 0)
        & (probe[:, 9] == 0)
        & (probe[:, 11] == transport)
    )
    flow = numpy.ascontiguousarray(probe[:, 14:26])
    addresses = flow[:, :8].copy().view(">u8")[:, 0]
    ports = flow[:, 8:].copy().view(">u4")[:, 0]
    wanted_addresses = numpy.array([int.from_bytes(key[:8], "big") for key in keys], dtype=numpy.uint64)
    wanted_ports = numpy.array([int.from_bytes(key[8:], "big") for key in keys], dtype=numpy.uint32)
    maybe = numpy.isin(addresses, wanted_addresses) & numpy.isin(ports, wanted_ports)
    positions: list[int] = numpy.flatnonzero(~plain | maybe).tolist()
    return positions


def one_by_one_all(
    decoder: FrameDecoder, chunk: PcapChunk, header: PcapHeader, positions: Iterable[int]
) -> Iterator[PacketRecord]:
    """Decode the frames at ``positions`` of a chunk, one record each, in order."""
    buffer, offsets, first_number = chunk.buffer, chunk.offsets, chunk.first_number
    decode_from = decoder.decode_from
    record_header = header.record
    link_type = header.link_type
    for position in positions:
        offset = offsets[position]
        timestamp, captured, original = record_header(buffer, offset)
        yield decode_from(buffer, offset + 16, first_number + position, timestamp, 0, link_type, captured, original)


_record_from_fields = partial(tuple.__new__, PacketRecord)
# Byte offsets read from every frame: ethertype (12, 13), IPv4 version/IHL (14), flags and
# fragment offset (20, 21), protocol (23), total length (16, 17), TCP data offset (46), and the
# bytes that choose a worker: last address bytes (29, 33) and low port bytes (35, 37).
_PROBE_OFFSETS = (12, 13, 14, 20, 21, 23, 16, 17, 46, 29, 33, 35, 37)
_WINDOW = 16 + 54
"""Bytes read from each frame's start (its pcap record header, then Ethernet, IPv4 and TCP headers)."""
_tables: tuple[Any, Any, Any, Any] | None = None


def _numpy_tables() -> tuple[Any, Any, Any, Any]:
    """NumPy (imported on first use, so that small captures never load it) and the offset tables."""
    global _tables
    if _tables is None:
        import numpy

        _tables = (
            numpy,
            numpy.arange(16),
            numpy.array(_PROBE_OFFSETS),
            numpy.arange(26, 54),
        )
    return _tables


def _ipv4_texts(numbers: list[int]) -> list[str]:
    """Dotted-quad text of IPv4 addresses given as integers (cached)."""
    texts: list[str | None] = list(map(_ipv4_by_number.get, numbers))
    if None in texts:
        texts = [text or _ipv4_from_number(number) for text, number in zip(texts, numbers)]
    return texts  # type: ignore[return-value]
