"""Decode raw frames into packet records: :class:`FrameDecoder`, the entry point of every source.

A lean header decoder (Scapy dissects about 6k packets/s; this decodes several
hundred thousand), one module per layer, dpkt style: the link layer
(:mod:`~visualizer.sources.link`: Ethernet with 802.1Q/QinQ and MPLS, Linux SLL
and SLL2, raw IP, BSD NULL/loopback), IPv4 and IPv6
(:mod:`~visualizer.sources.ip`: extension headers, fragments reassembled the way
tshark does: only the frame that completes a datagram carries the transport
header), and TCP, UDP and ICMP/ICMPv6 errors (:mod:`~visualizer.sources.transport`,
an error attributed to the flow whose header it quotes). Records are built by
:func:`visualizer.sources.record.build_record`; large pcap files are decoded a
read buffer at a time by :mod:`visualizer.sources.bulk`.

A frame that cannot be decoded to the end still becomes a record, with what was
decoded and a ``problem`` saying why decoding stopped.
"""

from __future__ import annotations

from visualizer.model import PROTOCOL_TCP, PacketRecord
from visualizer.sources.capture_file import RawFrame
from visualizer.sources.ip import Reassembly, decode_ipv4, decode_ipv6, ipv4_pair_text, ipv4_pairs
from visualizer.sources.link import LINKTYPE_ETHERNET, decode_link
from visualizer.sources.record import Fields, build_record
from visualizer.sources.transport import decode_transport, tcp_header

__all__ = ["FrameDecoder"]


class FrameDecoder:
    """Turns raw frames into :class:`PacketRecord` values.

    Stateful only for IP reassembly, so one decoder serves one capture.
    """

    def __init__(self, *, verify_checksums: bool = False) -> None:
        self._reassembly = Reassembly()
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
            source_port, destination_port, seq, ack, offset, flags, window = tcp_header(buffer, start + 34)
            header = (offset >> 4) * 4
            if header >= 20 and 34 + header <= captured and total >= 20 + header:
                pair = buffer[start + 26 : start + 34]
                addresses = ipv4_pairs.get(pair)
                if addresses is None:
                    addresses = ipv4_pair_text(pair)
                payload_start = start + 34 + header
                return build_record(
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
        """Every layer, one module each: link, then IP, then transport."""
        data = frame.data
        layers: list[str] = []
        fields = Fields()
        version, offset, problem = decode_link(data, frame.link_type, layers)
        if problem:
            fields.problem = problem
        elif version:
            decode_ip = decode_ipv4 if version == 4 else decode_ipv6
            found = decode_ip(data, offset, layers, fields, self._reassembly, self.verify_checksums, frame.timestamp_ns)
            if found is not None:
                protocol, payload, declared = found
                decode_transport(protocol, payload, declared, layers, fields, self.verify_checksums)
        return fields.record(
            frame.number,
            frame.timestamp_ns,
            frame.interface,
            frame.link_type,
            frame.captured_length,
            frame.original_length,
            layers,
        )
