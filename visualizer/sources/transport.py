"""The transport layer: TCP (RFC 9293), UDP (RFC 768), ICMP (RFC 792) and ICMPv6 (RFC 4443).

An ICMP error quotes the start of the datagram that caused it; its record carries
that datagram's flow (:class:`visualizer.model.QuotedFlow`), so that the analysis
attributes the error to the conversation it is about.
"""

from __future__ import annotations

import struct

from visualizer.model import PROTOCOL_ICMP, PROTOCOL_ICMPV6, PROTOCOL_TCP, PROTOCOL_UDP, QuotedFlow
from visualizer.sources.checksum import BAD, OK, transport_status
from visualizer.sources.ip import ipv4_text, ipv6_text
from visualizer.sources.record import Fields

TCP_MINIMUM_HEADER_LENGTH = 20
UDP_HEADER_LENGTH = 8
ICMP_HEADER_LENGTH = 8

# ICMP messages that quote the datagram that caused them (RFC 792, RFC 4443 s3).
ICMP_ERROR_TYPES = frozenset({3, 4, 5, 11, 12})
ICMPV6_ERROR_TYPES = frozenset({1, 2, 3, 4})

TRANSPORT_NAMES = {PROTOCOL_TCP: "tcp", PROTOCOL_UDP: "udp", PROTOCOL_ICMP: "icmp", PROTOCOL_ICMPV6: "icmpv6"}
"""tshark's layer names of the transport protocols decoded here."""

tcp_header = struct.Struct("!HHIIBBH").unpack_from
"""Ports, seq, ack, data offset byte, flags byte and window of a TCP header (RFC 9293 s3.1)."""
two_ports = struct.Struct("!HH").unpack_from


def decode_transport(
    protocol: int, payload: bytes, declared: int, layers: list[str], fields: Fields, verify_checksums: bool
) -> None:
    """Decode the transport header at the start of ``payload`` into ``fields``.

    ``declared`` is the length the IP layer claims for ``payload``; the payload
    length of the record follows the headers, not the snap length.
    """
    layers.append(TRANSPORT_NAMES.get(protocol, "data"))
    if verify_checksums and fields.pseudo is not None:
        status = OK if fields.ip_checksum_ok else BAD
        if status == OK and protocol in (PROTOCOL_TCP, PROTOCOL_UDP):
            status = transport_status(protocol, fields.pseudo[0], fields.pseudo[1], payload, declared)
        fields.checksum = status
    if protocol == PROTOCOL_TCP:
        if len(payload) < TCP_MINIMUM_HEADER_LENGTH:
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
        ) = tcp_header(payload, 0)
        header = (offset >> 4) * 4
        if header < TCP_MINIMUM_HEADER_LENGTH:
            fields.problem = f"TCP header length {header} is less than 20"
            return
        fields.transport = PROTOCOL_TCP
        fields.tcp_flags = flags | (offset & 1) << 8  # the AE bit sits in the data offset byte
        fields.tcp_options = payload[TCP_MINIMUM_HEADER_LENGTH:header]
        fields.payload_length = max(0, declared - header)
        fields.payload = payload[header:]
        if len(payload) < header:
            fields.problem = "TCP options cut short"
    elif protocol == PROTOCOL_UDP:
        if len(payload) < UDP_HEADER_LENGTH:
            fields.problem = "UDP header cut short"
            return
        fields.transport = PROTOCOL_UDP
        fields.source_port, fields.destination_port = two_ports(payload, 0)
        length = int.from_bytes(payload[4:6], "big")
        fields.payload_length = max(0, (length if length >= UDP_HEADER_LENGTH else declared) - UDP_HEADER_LENGTH)
        fields.payload = payload[UDP_HEADER_LENGTH:]
    elif protocol in (PROTOCOL_ICMP, PROTOCOL_ICMPV6):
        if len(payload) < 4:
            fields.problem = "ICMP header cut short"
            return
        fields.transport = protocol
        fields.icmp_type, fields.icmp_code = payload[0], payload[1]
        fields.payload_length = max(0, declared - ICMP_HEADER_LENGTH)
        fields.payload = payload[ICMP_HEADER_LENGTH:]
        errors = ICMP_ERROR_TYPES if protocol == PROTOCOL_ICMP else ICMPV6_ERROR_TYPES
        if fields.icmp_type in errors:
            fields.quoted = quoted_flow(payload[ICMP_HEADER_LENGTH:])


def quoted_flow(inner: bytes) -> QuotedFlow | None:
    """The flow of the IP datagram quoted inside an ICMP error (None when too little is quoted)."""
    if len(inner) < 20:
        return None
    version = inner[0] >> 4
    if version == 4:
        header = (inner[0] & 0x0F) * 4
        protocol = inner[9]
        source, destination = ipv4_text(inner[12:16]), ipv4_text(inner[16:20])
        ports = inner[header : header + 4]
    elif version == 6 and len(inner) >= 40:
        protocol = inner[6]
        source, destination = ipv6_text(inner[8:24]), ipv6_text(inner[24:40])
        ports = inner[40:44]
    else:
        return None
    if protocol in (PROTOCOL_TCP, PROTOCOL_UDP) and len(ports) == 4:
        source_port, destination_port = two_ports(ports, 0)
    else:
        source_port = destination_port = 0
    return QuotedFlow(source, destination, protocol, source_port, destination_port)
