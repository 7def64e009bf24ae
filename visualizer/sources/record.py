"""Where packet records are made: :func:`build_record`, the one builder of a PacketRecord.

Every decoding path ends here: the decoder's fast path for plain Ethernet/IPv4/TCP
frames, its general path (which collects the fields layer by layer in a
:class:`Fields`), and bulk decoding, which builds the records of a whole read
buffer at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from visualizer.model import PacketRecord, QuotedFlow

build_record: Callable[[Iterable[Any]], PacketRecord] = partial(tuple.__new__, PacketRecord)
"""Build a PacketRecord from all its field values, in the order of ``PacketRecord._fields``.

A positional build from one tuple, without the keyword handling of
``PacketRecord(...)``: a large capture makes millions of records.
"""


class Fields:
    """The record fields that the decoder's general path fills in, one layer after the other.

    Starts with the neutral values of :class:`PacketRecord`; :meth:`record` builds
    the record. ``pseudo`` and ``ip_checksum_ok`` are not record fields: the IP
    layer leaves them for the transport layer's checksum.
    """

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
        """The pseudo-header's source and destination address bytes (RFC 9293 s3.1), when checksums are verified."""
        self.ip_checksum_ok = True

    def record(
        self,
        number: int,
        timestamp: int | None,
        interface: int,
        link_type: int,
        captured: int,
        original: int,
        layers: list[str],
    ) -> PacketRecord:
        """The record of the frame these fields were decoded from."""
        return build_record(
            (
                number,
                timestamp,
                interface,
                link_type,
                captured,
                original,
                ":".join(layers),
                self.network,
                self.transport,
                self.source,
                self.destination,
                self.source_port,
                self.destination_port,
                self.seq,
                self.ack,
                self.tcp_flags,
                self.window,
                self.tcp_options,
                self.payload_length,
                self.payload,
                self.fragment,
                self.icmp_type,
                self.icmp_code,
                self.quoted,
                self.problem,
                self.checksum,
            )
        )
