"""The packet record and the small vocabulary every layer shares.

Every input (a pcap or pcapng file, live sniffing, a list of crafted packets)
becomes a :class:`PacketRecord`, decoded by
:class:`visualizer.sources.decode.FrameDecoder` and built in exactly one place:
:func:`visualizer.sources.record.build_record`. Nothing above the sources knows
a link type or a Scapy layer name.

Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

# IP protocol numbers (IANA "Assigned Internet Protocol Numbers").
PROTOCOL_ICMP = 1
PROTOCOL_TCP = 6
PROTOCOL_UDP = 17
PROTOCOL_ICMPV6 = 58

PROTOCOL_NUMBERS: dict[str, int] = {"tcp": PROTOCOL_TCP, "udp": PROTOCOL_UDP}
"""The protocols whose conversations are numbered into streams (Wireshark's tcp.stream, udp.stream), by name."""

# TCP header flag bits, RFC 9293 s3.1 (plus ECN bits from RFC 3168 and AE/NS).
FIN = 0x001
SYN = 0x002
RST = 0x004
PSH = 0x008
ACK = 0x010
URG = 0x020
ECE = 0x040
CWR = 0x080
AE = 0x100  # RFC 3540's NS bit, now "AE" (accurate ECN)

FLAG_NAMES: tuple[tuple[int, str], ...] = (
    (SYN, "SYN"),
    (FIN, "FIN"),
    (RST, "RST"),
    (PSH, "PSH"),
    (ACK, "ACK"),
    (URG, "URG"),
    (ECE, "ECE"),
    (CWR, "CWR"),
    (AE, "AE"),
)

_flag_text_cache: dict[int, str] = {}


def flag_text(flags: int) -> str:
    """TCP flags as names joined by ``|`` in the customary order, e.g. ``SYN|ACK``."""
    text = _flag_text_cache.get(flags)
    if text is None:
        text = "|".join(name for bit, name in FLAG_NAMES if flags & bit)
        _flag_text_cache[flags] = text
    return text


class PacketRecord(NamedTuple):
    """One captured frame, decoded as far as sockstory understands it.

    A NamedTuple: immutable, no per-instance dict, and cheap to build (a
    million of them stream through the analysis of a large file).
    Fields that do not apply hold neutral values (``0``, ``""``, ``b""``, -1).
    """

    number: int
    """Frame number from 1 in file order, as Wireshark numbers frames."""
    timestamp_ns: int | None
    """Capture time in nanoseconds since the epoch; None when the block has none."""
    interface: int
    link_type: int
    """The capture's link-layer type (LINKTYPE_*), -1 for a non-packet block."""
    captured_length: int
    original_length: int
    layers: str
    """The layers decoded, tshark style: ``eth:ethertype:ip:tcp``."""
    network: int
    """4, 6, or 0 when there is no IP layer."""
    transport: int
    """IP protocol number of the transport header decoded here (0 when none)."""
    source: str
    destination: str
    source_port: int
    destination_port: int
    seq: int
    ack: int
    tcp_flags: int
    window: int
    """The raw 16-bit TCP window field, before any scaling."""
    tcp_options: bytes
    payload_length: int
    """Transport payload length according to the headers (not the snap length)."""
    payload: bytes
    """The transport payload bytes that were captured (may be shorter)."""
    fragment: bool
    """An IP fragment that did not complete a datagram: no transport header here."""
    icmp_type: int
    icmp_code: int
    quoted: QuotedFlow | None
    """For an ICMP error, the flow whose header it quotes."""
    problem: str
    """Why decoding stopped early (truncated or malformed); empty when it did not."""
    checksum: str = ""
    """``ok``, ``bad`` or ``unverified`` when the decoder verified checksums (see sources.checksum); else ``""``."""


class SegmentRun(NamedTuple):
    """Consecutive plain TCP segments of a capture as columns: row i is one frame.

    Bulk decoding of large files (:func:`visualizer.sources.bulk.decode_pcap_chunk` with ``runs``)
    gives the analysis these instead of records for frames on the common path
    (Ethernet, IPv4 without options or fragments, TCP), skipping the cost of a record
    per frame. Every column holds exactly what the record's field of the same name
    would; ``keys`` holds (source, destination, source port, destination port).
    Only the fields the analysis reads are here.
    """

    numbers: list[int]
    timestamps: list[int]
    keys: list[tuple[str, str, int, int]]
    seqs: list[int]
    acks: list[int]
    flags: list[int]
    windows: list[int]
    options: list[bytes]
    payload_lengths: list[int]
    original_lengths: list[int]


class KernelEvent(NamedTuple):
    """One kernel event recorded beside a capture (a tracepoint's firing), on the packets' clock.

    Made by :mod:`visualizer.sources.kernel` from tracefs and its sidecar file;
    joined to the frames by :mod:`visualizer.analysis.kernel`.
    """

    time_ns: int
    """CLOCK_REALTIME nanoseconds, like the frames' timestamps (within the recording's alignment error)."""
    name: str
    """The tracepoint's name: ``inet_sock_set_state``, ``tcp_probe``, ``sys_enter_sendto``..."""
    cpu: int
    tid: int
    """The task (thread) the CPU was running: the caller for system calls, any task for softirq events."""
    fields: dict[str, Any]
    """The tracepoint's fields, normalised: ``sk`` (a socket's identity in this recording), ``saddr``,
    ``sport``, ``daddr``, ``dport``, ``oldstate``/``newstate`` (kernel names: ``SYN_SENT``...), ``ret``..."""


class QuotedFlow(NamedTuple):
    """The addresses and ports of the datagram an ICMP error quotes (RFC 792, RFC 4443)."""

    source: str
    destination: str
    transport: int
    source_port: int
    destination_port: int


@dataclass(frozen=True, slots=True)
class TcpOptions:
    """The TCP options sockstory understands (RFC 9293 s3.2, RFC 7323, RFC 2018)."""

    mss: int | None = None
    window_scale: int | None = None
    sack_permitted: bool = False
    sack_blocks: tuple[tuple[int, int], ...] = ()
    timestamp: tuple[int, int] | None = None
    malformed: bool = False


# Option kinds, IANA "TCP Option Kind Numbers".
OPTION_END = 0
OPTION_NOP = 1
OPTION_MSS = 2
OPTION_WINDOW_SCALE = 3
OPTION_SACK_PERMITTED = 4
OPTION_SACK = 5
OPTION_TIMESTAMP = 8


def parse_tcp_options(raw: bytes) -> TcpOptions:
    """Decode TCP options; a malformed list stops decoding and sets ``malformed``."""
    mss = window_scale = timestamp = None
    sack_permitted = malformed = False
    sack_blocks: list[tuple[int, int]] = []
    index, end = 0, len(raw)
    while index < end:
        kind = raw[index]
        if kind == OPTION_END:
            break
        if kind == OPTION_NOP:
            index += 1
            continue
        if index + 1 >= end or raw[index + 1] < 2 or index + raw[index + 1] > end:
            malformed = True
            break
        length = raw[index + 1]
        body = raw[index + 2 : index + length]
        if kind == OPTION_MSS and length == 4:
            mss = int.from_bytes(body, "big")
        elif kind == OPTION_WINDOW_SCALE and length == 3:
            window_scale = body[0]
        elif kind == OPTION_SACK_PERMITTED and length == 2:
            sack_permitted = True
        elif kind == OPTION_SACK:
            if (length - 2) % 8 or length == 2:
                malformed = True
            for start in range(0, len(body) - 7, 8):
                sack_blocks.append(
                    (int.from_bytes(body[start : start + 4], "big"), int.from_bytes(body[start + 4 : start + 8], "big"))
                )
        elif kind == OPTION_TIMESTAMP and length == 10:
            timestamp = (int.from_bytes(body[:4], "big"), int.from_bytes(body[4:], "big"))
        index += length
    return TcpOptions(mss, window_scale, sack_permitted, tuple(sack_blocks), timestamp, malformed)


def window_scale_of(raw: bytes) -> int | None:
    """The window scale shift in TCP options (RFC 7323 s2.2), or None: the same as
    ``parse_tcp_options(raw).window_scale``, without decoding the rest (the analysis
    reads this of every SYN; a full decode costs it 3% of its time on short conversations)."""
    shift = None
    index, end = 0, len(raw)
    while index < end:
        kind = raw[index]
        if kind == OPTION_NOP:
            index += 1
            continue
        if kind == OPTION_END or index + 1 >= end:
            break
        length = raw[index + 1]
        if length < 2 or index + length > end:
            break
        if kind == OPTION_WINDOW_SCALE and length == 3:
            shift = raw[index + 2]
        index += length
    return shift


def describe_options(options: TcpOptions) -> str:
    """Stevens-style option summary: ``mss 65495, sack, ts, ws 7``."""
    parts = []
    if options.mss is not None:
        parts.append(f"mss {options.mss}")
    if options.sack_permitted:
        parts.append("sack")
    if options.timestamp is not None:
        parts.append("ts")
    if options.window_scale is not None:
        parts.append(f"ws {options.window_scale}")
    if options.sack_blocks:
        parts.append("sack " + " ".join(f"{left}-{right}" for left, right in options.sack_blocks))
    return ", ".join(parts)


def duration_text(nanoseconds: int) -> str:
    """``12 µs``, ``20.3 ms``, ``1.52 s``: a duration (not negative) as a reader reads it."""
    if nanoseconds < 1_000:
        return f"{nanoseconds} ns"
    if nanoseconds < 1_000_000:
        return f"{nanoseconds / 1e3:.0f} µs"
    if nanoseconds < 1_000_000_000:
        return f"{nanoseconds / 1e6:.1f} ms"
    return f"{nanoseconds / 1e9:.2f} s"


def endpoint_text(address: str, port: int | None) -> str:
    """``10.0.0.1:80``, ``[2001:db8::1]:80`` (RFC 3986 s3.2.2: an IPv6 address in brackets before
    a port), or the address alone when there is no port."""
    if port is None:
        return address
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


PREVIEW_CHARACTERS = 24
"""Characters of a payload shown by :func:`preview` (a ladder label, a narration)."""
_PRINTABLE = frozenset(range(32, 127)) | {9, 10, 13}


def preview(payload: bytes, length: int = PREVIEW_CHARACTERS) -> str:
    """A short, escaped view of a payload that is text (printable ASCII, tabs and line ends), in
    quotes; ``""`` for anything else (a preview of binary bytes would say nothing)."""
    sample = payload[:length]
    if not sample or not _PRINTABLE.issuperset(sample):
        return ""
    more = "…" if len(payload) > length else ""
    text = sample.decode("ascii").encode("unicode_escape").decode("ascii")
    return f'"{text}{more}"'
