"""Packet anatomy: one frame as its layers, each header drawn as 32-bit rows of labelled fields.

Like the header diagrams of the RFCs (RFC 791 s3.1, RFC 9293 s3.1, RFC 768, RFC 8200 s3):
bit 0 on the left, 32 bits a row, every field a box as wide as its bits, named as the RFC
names it (Scapy's dissection is the source of truth for where fields are and what they hold;
:data:`RFC_NAMES` renames them), the TCP and IP flag bits one box each, every TCP option a
box of its own, decoded for people; then the payload as a hex dump with ASCII.

What the bytes alone do not say comes from the analysis of the capture (a
:class:`~visualizer.analysis.report.FrameAnalysis`): the frame's addresses and flags for the
title, the window scale agreed in the handshake (the scaled window beside the raw field), the
checksum verdict of the decoder (a loopback checksum left to offload is "partial", not bad),
and how much of the frame the capture kept. :func:`anatomy_of` computes the layout (Scapy);
:func:`draw_anatomy` draws it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from visualizer.analysis.report import FrameAnalysis
from visualizer.model import (
    OPTION_END,
    OPTION_MSS,
    OPTION_NOP,
    OPTION_SACK,
    OPTION_SACK_PERMITTED,
    OPTION_TIMESTAMP,
    OPTION_WINDOW_SCALE,
    PROTOCOL_ICMP,
    PROTOCOL_ICMPV6,
    PROTOCOL_TCP,
    PROTOCOL_UDP,
    flag_text,
    parse_tcp_options,
)

BITS_PER_ROW = 32
ROW_HEIGHT = 1.55
HEXDUMP_LINES = 8
HEADER_ROWS = 16
"""32-bit rows drawn of one header (64 bytes: every IPv4, IPv6 and TCP header but one with a long
option list); the rest of a longer header is said in words, so the figure stays bounded."""
TOTAL_ROWS = 48
"""Rows drawn for all the headers before the last (which is always drawn); headers past this budget
(a chain of extension headers) are listed by name and length."""
LISTED_HEADERS = 6
"""Headers past the budget listed one a line; more are counted."""

LAYER_COLOURS = {
    "Ether": "#EEEEEE",
    "Dot1Q": "#E4E4E4",
    "IP": "#DCEBF7",
    "IPv6": "#DCEBF7",
    "TCP": "#DDF1E8",
    "UDP": "#E3F3FB",
    "ICMP": "#FBEBD3",
    "ICMPv6": "#FBEBD3",
    "quoted": "#F4F1EA",
}
LAYER_TITLES = {
    "Ether": "Ethernet header (IEEE 802.3)",
    "Dot1Q": "802.1Q VLAN tag",
    "Loopback": "BSD loopback header (DLT_NULL: the address family, host byte order)",
    "CookedLinux": "Linux cooked header (SLL)",
    "CookedLinuxV2": "Linux cooked header (SLL2)",
    "IP": "IPv4 header (RFC 791)",
    "IPv6": "IPv6 header (RFC 8200)",
    "IPv6ExtHdrFragment": "IPv6 Fragment header (RFC 8200 s4.5)",
    "IPv6ExtHdrHopByHop": "IPv6 Hop-by-Hop Options header (RFC 8200 s4.3)",
    "IPv6ExtHdrDestOpt": "IPv6 Destination Options header (RFC 8200 s4.6)",
    "IPv6ExtHdrRouting": "IPv6 Routing header (RFC 8200 s4.4)",
    "TCP": "TCP header (RFC 9293)",
    "UDP": "UDP header (RFC 768)",
    "ICMP": "ICMP (RFC 792)",
    "IPerror": "quoted IPv4 header (of the datagram this error is about)",
    "IPerror6": "quoted IPv6 header (of the datagram this error is about)",
    "TCPerror": "quoted TCP header (its first bytes)",
    "UDPerror": "quoted UDP header",
    "ICMPerror": "quoted ICMP header",
}
SET_BIT_COLOUR = "#009E73"
# Scapy names flag bits with single letters; the boxes show the RFC names (RFC 9293 s3.1, RFC 791 s3.1).
_TCP_FLAGS = {"N": "AE", "C": "CWR", "E": "ECE", "U": "URG", "A": "ACK", "P": "PSH", "R": "RST", "S": "SYN", "F": "FIN"}
_IP_FLAGS = {"evil": "rsv", "DF": "DF", "MF": "MF"}
FLAG_NAMES = {"TCP": _TCP_FLAGS, "TCPerror": _TCP_FLAGS, "IP": _IP_FLAGS, "IPerror": _IP_FLAGS}

_IPV4_NAMES = {
    "version": "Version",
    "ihl": "IHL",
    "tos": "Type of Service",
    "len": "Total Length",
    "id": "Identification",
    "frag": "Fragment Offset",
    "ttl": "Time to Live",
    "proto": "Protocol",
    "chksum": "Header Checksum",
    "src": "Source Address",
    "dst": "Destination Address",
    "options": "Options",
}
_IPV6_NAMES = {
    "version": "Version",
    "tc": "Traffic Class",
    "fl": "Flow Label",
    "plen": "Payload Length",
    "nh": "Next Header",
    "hlim": "Hop Limit",
    "src": "Source Address",
    "dst": "Destination Address",
}
_TCP_NAMES = {
    "sport": "Source Port",
    "dport": "Destination Port",
    "seq": "Sequence Number",
    "ack": "Acknowledgment Number",
    "dataofs": "Data Offset",
    "reserved": "Rsrvd",
    "window": "Window",
    "chksum": "Checksum",
    "urgptr": "Urgent Pointer",
    "options": "Options",
}
_UDP_NAMES = {"sport": "Source Port", "dport": "Destination Port", "len": "Length", "chksum": "Checksum"}
_ICMP_NAMES = {
    "type": "Type",
    "code": "Code",
    "chksum": "Checksum",
    "cksum": "Checksum",
    "id": "Identifier",
    "seq": "Sequence Number",
    "reserved": "unused",
    "unused": "unused",
    "length": "Length (RFC 4884)",
    "nexthopmtu": "Next-Hop MTU (RFC 1191)",
    "mtu": "MTU",
    "gw": "Gateway Internet Address",
    "ptr": "Pointer",
}
_ICMPV6_NAMES = {
    **_ICMP_NAMES,
    "res": "Reserved",
    "tgt": "Target Address",
    "len": "Length (x8 bytes)",
    "lladdr": "Link-Layer Address",
}
"""RFC 4443 and RFC 4861 (Scapy has a class per ICMPv6 message and option)."""
RFC_NAMES: dict[str, dict[str, str]] = {
    "Ether": {"dst": "Destination MAC", "src": "Source MAC", "type": "EtherType"},
    "Dot1Q": {"prio": "PCP", "dei": "DEI", "vlan": "VLAN ID", "type": "EtherType"},
    "Loopback": {"type": "Address Family"},
    "IP": _IPV4_NAMES,
    "IPerror": _IPV4_NAMES,
    "IPv6": _IPV6_NAMES,
    "IPerror6": _IPV6_NAMES,
    "IPv6ExtHdrFragment": {
        "nh": "Next Header",
        "res1": "Reserved",
        "offset": "Fragment Offset",
        "res2": "Res",
        "m": "M",
        "id": "Identification",
    },
    "TCP": _TCP_NAMES,
    "TCPerror": _TCP_NAMES,
    "UDP": _UDP_NAMES,
    "UDPerror": _UDP_NAMES,
    "ICMP": _ICMP_NAMES,
    "ICMPerror": _ICMP_NAMES,
}
"""Scapy's field names -> the names the RFCs' header diagrams use, per Scapy layer class."""

ETHERTYPES = {0x0800: "IPv4", 0x0806: "ARP", 0x86DD: "IPv6", 0x8100: "802.1Q", 0x88A8: "802.1ad", 0x8847: "MPLS"}
"""IEEE 802 EtherTypes named (IANA "IEEE 802 Numbers")."""

_TRANSPORTS = frozenset({"TCP", "UDP", "TCPerror", "UDPerror"})
"""The last headers drawn: the payload follows."""

_BSD_LOOPBACK_FAMILIES = {2: "IP", 24: "IPv6", 28: "IPv6", 30: "IPv6"}
"""DLT_NULL's address families (AF_INET; AF_INET6 on NetBSD/OpenBSD, FreeBSD, macOS), which Scapy
binds only in part (libpcap's LINKTYPE_NULL documentation)."""

_OPTION_NAMES = {19: "MD5 signature", 28: "User Timeout", 29: "TCP-AO", 30: "MPTCP", 34: "Fast Open cookie"}
"""TCP option kinds named but not decoded (IANA "TCP Option Kind Numbers")."""

ICMP_TYPES: dict[int, tuple[str, dict[int, str]]] = {
    0: ("echo reply", {}),
    3: (
        "destination unreachable",
        {
            0: "net unreachable",
            1: "host unreachable",
            2: "protocol unreachable",
            3: "port unreachable",
            4: "fragmentation needed",
            13: "administratively prohibited",
        },
    ),
    5: ("redirect", {}),
    8: ("echo request", {}),
    11: ("time exceeded", {0: "TTL exceeded in transit", 1: "fragment reassembly time exceeded"}),
}
"""RFC 792 (and RFC 1812 for code 13)."""
ICMPV6_TYPES: dict[int, tuple[str, dict[int, str]]] = {
    1: (
        "destination unreachable",
        {0: "no route", 1: "administratively prohibited", 3: "address unreachable", 4: "port unreachable"},
    ),
    2: ("packet too big", {}),
    3: ("time exceeded", {0: "hop limit exceeded in transit", 1: "fragment reassembly time exceeded"}),
    128: ("echo request", {}),
    129: ("echo reply", {}),
    133: ("router solicitation", {}),
    134: ("router advertisement", {}),
    135: ("neighbor solicitation", {}),
    136: ("neighbor advertisement", {}),
}
"""RFC 4443 and RFC 4861."""


@dataclass(frozen=True, slots=True)
class FieldCell:
    """One field (or one flag bit, or one TCP option) of a header, at its bit offset from the start of its header."""

    name: str
    """As the RFC names it (``Data Offset``); Scapy's name when no RFC name is known."""
    offset: int
    width: int
    value: str
    field: str = ""
    """Scapy's name of the field (``dataofs``); ``option`` for a TCP option."""


@dataclass(frozen=True, slots=True)
class LayerBlock:
    name: str
    """Scapy's layer class name (``TCP``, ``IPv6``, ``IPerror``)."""
    length: int
    """Header length in bytes."""
    fields: list[FieldCell] = field(default_factory=list)
    note: str = ""
    """Said beside the header's title: the TCP options in words."""


@dataclass(frozen=True, slots=True)
class Anatomy:
    frame: int
    summary: str
    """The title: which frame of which file, who sent it to whom, what it is."""
    blocks: list[LayerBlock]
    payload: bytes
    notes: tuple[str, ...] = ()
    """What the figure says below the title: a frame cut by the capture."""
    payload_length: int = -1
    """The payload's length by the headers (-1: as captured)."""
    payload_name: str = "payload"
    """``payload``, ``quoted payload`` (in an ICMP error) or ``fragment data``."""


def anatomy_of(
    data: bytes,
    *,
    link_type: int = 1,
    frame: int = 0,
    analysis: FrameAnalysis | None = None,
    file: str = "",
    ipv4_header_ok: Callable[[bytes], bool] | None = None,
) -> Anatomy:
    """Dissect a frame's bytes with Scapy into header blocks of bit-positioned fields.

    With ``analysis`` (the frame's analysis, from the same capture) the title names the frame
    (``file``, addresses, flags, length), the window field shows the scaled window, the
    checksum fields the decoder's verdict (``ipv4_header_ok`` tells which of an IPv4 header's
    and a transport checksum is bad), and a frame cut by the capture says so.
    """
    import scapy.layers.inet
    import scapy.layers.inet6
    import scapy.layers.l2  # noqa: F401  (registers the link types and protocols)
    from scapy.config import conf

    layer_class = conf.l2types.num2layer.get(link_type, conf.raw_layer)
    try:
        packet = layer_class(data)
    except Exception as error:  # Scapy's dissectors raise on some malformed bytes (IndexError, struct.error)
        return Anatomy(frame, f"not dissected: Scapy failed ({type(error).__name__}: {error})", [], data)
    layers, payload = _layers(packet)
    verdicts = _checksum_verdicts(layers, analysis, ipv4_header_ok)
    scale = _window_text(analysis)
    blocks = []
    for layer, header in layers:
        name = type(layer).__name__
        cells = _fields(layer, header, FLAG_NAMES.get(name, {}), RFC_NAMES.get(name, {}))
        if name.startswith("ICMPv6"):
            cells = _fields(layer, header, {}, _ICMPV6_NAMES)
        note = ""
        if name == "TCP":
            options, note = _option_cells(bytes(layer)[20:header], 160)
            cells = [cell for cell in cells if cell.field != "options"] + options
        icmp = _icmp_names(layer, name)
        cells = [_decorate(name, cell, verdicts, scale, icmp) for cell in cells]
        blocks.append(LayerBlock(name, header, cells, note))
    names = [block.name for block in blocks]
    payload_name = "quoted payload" if names and names[-1].endswith(("error", "error6")) else "payload"
    if analysis is None:
        return Anatomy(frame, packet.summary(), blocks, payload, payload_name=payload_name)
    record = analysis.record
    notes = list(_capture_notes(analysis, len(payload)))
    payload_length = -1
    if record.transport in (PROTOCOL_TCP, PROTOCOL_UDP):
        transport = "TCP" if record.transport == PROTOCOL_TCP else "UDP"
        if transport in names:
            payload_length = record.payload_length
        else:  # the frame that completes a datagram of fragments: its header is in the first one
            payload_name = "fragment data"
            notes.append(
                f"the last fragment of an IPv{record.network} datagram reassembled from several frames: "
                f"its {transport} header (in the title) is in the first fragment, as Wireshark shows it"
            )
    return Anatomy(frame, _title(analysis, frame, file), blocks, payload, tuple(notes), payload_length, payload_name)


def _layers(packet: Any) -> tuple[list[tuple[Any, int]], bytes]:
    """The headers of a dissected frame with their lengths in bytes, and the payload after them."""
    from scapy.packet import NoPayload, Padding, Raw

    layers: list[tuple[Any, int]] = []
    layer = packet
    while not isinstance(layer, NoPayload):
        if isinstance(layer, (Raw, Padding)) or layer.name in ("Raw", "Padding"):
            return layers, bytes(layer)
        header = len(bytes(layer)) - len(bytes(layer.payload))
        layers.append((layer, header))
        if type(layer).__name__ in _TRANSPORTS:
            # What follows is the payload: Scapy's application dissectors (DNS on 5353...) depend on which
            # of its modules happen to be loaded, and guess from the port; the figure draws transport headers.
            return layers, bytes(layer.payload)
        following = layer.payload
        family = _BSD_LOOPBACK_FAMILIES.get(layer.getfieldval("type")) if type(layer).__name__ == "Loopback" else None
        if family is not None and isinstance(following, Raw):
            import scapy.layers.inet
            import scapy.layers.inet6

            network = scapy.layers.inet.IP if family == "IP" else scapy.layers.inet6.IPv6
            following = network(bytes(following))
        layer = following
    return layers, b""


def _fields(layer: Any, header_bytes: int, flag_names: dict[str, str], names: dict[str, str]) -> list[FieldCell]:
    from scapy.fields import ConditionalField, FlagsField

    cells: list[FieldCell] = []
    offset = 0
    total = header_bytes * 8
    descriptions = layer.fields_desc
    for index, description in enumerate(descriptions):
        if isinstance(description, ConditionalField):
            if not description._evalcond(layer):
                continue
            description = description.fld
        size = getattr(description, "sz", 0)
        variable = index == len(descriptions) - 1 and total - offset != round(size * 8)
        width = total - offset if variable else round(size * 8)
        if width <= 0 or offset + width > total:
            break
        value = layer.getfieldval(description.name)
        if isinstance(description, FlagsField) and width == len(description.names):
            # One box per flag bit, the most significant on the left, as the RFCs draw them.
            flags = list(description.names)
            for bit in range(width):
                flag = width - 1 - bit
                name = flag_names.get(flags[flag], flags[flag])
                cells.append(FieldCell(name, offset + bit, 1, str(int(value) >> flag & 1), flags[flag]))
        else:
            shown = str(description.i2repr(layer, value))
            if isinstance(value, int) and shown != str(value) and not shown.startswith("0x"):
                shown = f"{value} ({shown})"  # a number Scapy names, e.g. a port's service
            if description.name in ("dataofs", "ihl") and isinstance(value, int):
                shown = f"{value} ({value * 4} bytes)"  # counted in 32-bit words (RFC 9293 s3.1, RFC 791 s3.1)
            elif description.name == "type" and type(layer).__name__ in ("Ether", "Dot1Q") and isinstance(value, int):
                shown = f"0x{value:04x}" + (f" ({ETHERTYPES[value]})" if value in ETHERTYPES else "")
            elif description.name in ("frag", "offset") and isinstance(value, int) and value:
                shown = f"{value} ({value * 8:,} bytes)"  # counted in 8-byte units (RFC 791 s3.1, RFC 8200 s4.5)
            name = names.get(description.name, description.name)
            if description.name == "nexthopmtu" and getattr(layer, "type", None) == 3 and layer.code != 4:
                name = "unused"  # the Next-Hop MTU is for "fragmentation needed" only (RFC 1191 s4)
            cells.append(FieldCell(name, offset, width, _shorten(shown, 400), description.name))
        offset += width
    if offset < total:
        cells.append(FieldCell("(more)", offset, total - offset, ""))
    return cells


def _option_cells(raw: bytes, offset: int) -> tuple[list[FieldCell], str]:
    """Every TCP option a box at its place (RFC 9293 s3.2), and the options in words."""
    cells: list[FieldCell] = []
    words: list[str] = []
    index = 0
    while index < len(raw):
        kind = raw[index]
        at = offset + index * 8
        if kind == OPTION_END:
            cells.append(FieldCell("EOL", at, 8, "end of options", "option"))
            words.append("end of options")
            if index + 1 < len(raw):
                cells.append(FieldCell("padding", at + 8, (len(raw) - index - 1) * 8, "", "option"))
            break
        if kind == OPTION_NOP:
            cells.append(FieldCell("NOP", at, 8, "", "option"))
            words.append("NOP")
            index += 1
            continue
        length = raw[index + 1] if index + 1 < len(raw) else 0
        if length < 2 or index + length > len(raw):
            cells.append(FieldCell(f"kind {kind}", at, (len(raw) - index) * 8, "malformed: bad length", "option"))
            words.append(f"option {kind} malformed")
            break
        name, value, word = _option_words(kind, raw[index : index + length])
        cells.append(FieldCell(name, at, length * 8, value, "option"))
        words.append(word)
        index += length
    return cells, ", ".join(words)


def _option_words(kind: int, option: bytes) -> tuple[str, str, str]:
    """(box name, box value, words) of one TCP option, decoded by the analysis's own parser."""
    parsed = parse_tcp_options(option)
    if kind == OPTION_MSS and parsed.mss is not None:
        return "MSS", str(parsed.mss), f"MSS {parsed.mss}"
    if kind == OPTION_WINDOW_SCALE and parsed.window_scale is not None:
        shift = parsed.window_scale
        text = f"{shift} (x{1 << min(shift, 14):,})"  # RFC 7323 s2.3: a shift above 14 counts as 14
        return "Window Scale", text, f"window scale {text}"
    if kind == OPTION_SACK_PERMITTED and parsed.sack_permitted:
        return "SACK permitted", "", "SACK permitted"
    if kind == OPTION_SACK and parsed.sack_blocks and not parsed.malformed:
        blocks = ", ".join(f"{left}-{right}" for left, right in parsed.sack_blocks)
        return "SACK", blocks, f"SACK {blocks}"
    if kind == OPTION_TIMESTAMP and parsed.timestamp is not None:
        stamp, echo = parsed.timestamp
        return "Timestamps", f"TSval {stamp}, TSecr {echo}", f"TS val {stamp} ecr {echo}"
    name = _OPTION_NAMES.get(kind, f"kind {kind}")
    known = kind in (OPTION_MSS, OPTION_WINDOW_SCALE, OPTION_SACK_PERMITTED, OPTION_SACK, OPTION_TIMESTAMP)
    value = f"malformed ({len(option)} bytes)" if known else f"{len(option)} bytes"
    return name, value, f"{name} {value}" if name.startswith("kind") else f"{name} ({value})"


def _icmp_names(layer: Any, name: str) -> tuple[int, str, int, str] | None:
    """(type, its name, code, its name) of an ICMP or ICMPv6 header, as RFC 792 and RFC 4443 name them."""
    fields = {description.name for description in layer.fields_desc}
    if name != "ICMP" and not name.startswith("ICMPv6") or not {"type", "code"} <= fields:
        return None  # not ICMP, or an ICMPv6 option (type and length)
    kind, code = int(layer.getfieldval("type")), int(layer.getfieldval("code"))
    kind_name, codes = (ICMP_TYPES if name == "ICMP" else ICMPV6_TYPES).get(kind, (f"type {kind}", {}))
    return kind, kind_name, code, codes.get(code, "")


def _window_text(analysis: FrameAnalysis | None) -> str:
    """What the window field means, from the scale agreed in the handshake (RFC 7323 s2.2, s2.3)."""
    if analysis is None or analysis.record.transport != PROTOCOL_TCP:
        return ""
    multiplier = analysis.window_scale
    if multiplier == 0:
        return "a SYN's window is never scaled: RFC 7323 s2.2"
    if multiplier == -1:
        return "scale unknown: the handshake was not captured"
    if multiplier == -2:
        return "not scaled: no window scale option in both SYNs"
    return f"x{multiplier:,} = {analysis.window:,} bytes, scale from the handshake"


def _checksum_verdicts(
    layers: list[tuple[Any, int]], analysis: FrameAnalysis | None, ipv4_header_ok: Callable[[bytes], bool] | None
) -> dict[str, str]:
    """The words beside each checksum field the decoder verified: layer name -> verdict."""
    if analysis is None:
        return {}
    status = analysis.record.checksum
    record = analysis.record
    names = [type(layer).__name__ for layer, _ in layers]
    verdicts: dict[str, str] = {}
    if not status:
        if record.fragment and "IP" in names and ipv4_header_ok is not None:
            layer, header = layers[names.index("IP")]  # each fragment's own header has its own checksum
            verdicts["IP"] = "ok" if ipv4_header_ok(bytes(layer)[:header]) else "bad"
            for carried in ("TCP", "UDP"):
                if carried in names:  # a first fragment: its checksum covers the whole datagram
                    verdicts[carried] = "of the whole datagram: checked at its last fragment"
        return verdicts
    ip_ok = True
    if "IP" in names:
        layer, header = layers[names.index("IP")]
        ip_ok = status != "bad" or ipv4_header_ok is None or ipv4_header_ok(bytes(layer)[:header])
        verdicts["IP"] = "ok" if ip_ok else "bad"
    transport = {PROTOCOL_TCP: "TCP", PROTOCOL_UDP: "UDP"}.get(record.transport)
    if transport in names and ip_ok:
        layer, _ = layers[names.index(transport)]
        if status == "unverified":
            if len(record.payload) < record.payload_length:
                verdicts[transport] = "not verified: cut by the capture"
            elif transport == "UDP" and layer.getfieldval("chksum") == 0:
                verdicts[transport] = "none (0: not computed, RFC 768)"
            else:
                verdicts[transport] = "partial (offload), the pseudo-header sum only"
        else:
            verdicts[transport] = status
    return verdicts


def _decorate(
    layer: str, cell: FieldCell, verdicts: dict[str, str], window: str, icmp: tuple[int, str, int, str] | None
) -> FieldCell:
    """A checksum with its verdict, the TCP window with its scaled value."""
    value = cell.value
    if cell.field in ("chksum", "cksum") and layer in verdicts:
        value = f"{value}: {verdicts[layer]}"
    elif cell.field in ("type", "code") and (layer == "ICMP" or layer.startswith("ICMPv6")) and icmp is not None:
        value = f"{icmp[0]} ({icmp[1]})" if cell.field == "type" else (f"{icmp[2]} ({icmp[3]})" if icmp[3] else value)
    elif layer == "TCP" and cell.field == "window" and window:
        value = f"{value} ({window})"
    else:
        return cell
    return FieldCell(cell.name, cell.offset, cell.width, value, cell.field)


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _title(analysis: FrameAnalysis, frame: int, file: str) -> str:
    """``frame 4 of story.pcap: 127.0.0.1:43188 → 127.0.0.1:8080, TCP PSH|ACK, 12 bytes``."""
    import os

    record = analysis.record
    where = f"frame {frame}" + (f" of {os.path.basename(file)}" if file else "")
    if record.transport in (PROTOCOL_TCP, PROTOCOL_UDP):
        source = _endpoint(record.source, record.source_port)
        route = f"{source} → {_endpoint(record.destination, record.destination_port)}"
        kind = f"TCP {flag_text(record.tcp_flags) or 'no flags'}" if record.transport == PROTOCOL_TCP else "UDP"
        return f"{where}: {route}, {kind}, {record.payload_length:,} bytes"
    if record.transport in (PROTOCOL_ICMP, PROTOCOL_ICMPV6) or record.icmp_type >= 0 and record.network:
        name, codes = (ICMPV6_TYPES if record.network == 6 else ICMP_TYPES).get(
            record.icmp_type, (f"type {record.icmp_type}", {})
        )
        what = f"{'ICMPv6' if record.network == 6 else 'ICMP'} {name}"
        if record.icmp_code in codes:
            what += f" ({codes[record.icmp_code]})"
        quoted = record.quoted
        about = ""
        if quoted is not None:
            protocol = {PROTOCOL_TCP: "TCP", PROTOCOL_UDP: "UDP"}.get(quoted.transport, f"protocol {quoted.transport}")
            about = (
                f", about {protocol} {_endpoint(quoted.source, quoted.source_port)} → "
                f"{_endpoint(quoted.destination, quoted.destination_port)}"
            )
        return f"{where}: {record.source} → {record.destination}, {what}{about}"
    if record.fragment:
        fragment = f"an IPv{record.network} fragment (of a datagram that a later frame completes)"
        return f"{where}: {record.source} → {record.destination}, {fragment}"
    if record.network:
        return f"{where}: {record.source} → {record.destination}, {record.layers}"
    return f"{where}: {record.layers or 'not decoded'}"


def _capture_notes(analysis: FrameAnalysis, captured_payload: int) -> tuple[str, ...]:
    record = analysis.record
    if record.captured_length >= record.original_length:
        return ()
    note = (
        f"cut by the capture (snap length): {record.captured_length:,} of {record.original_length:,} bytes "
        "were captured"
    )
    if (
        record.transport in (PROTOCOL_TCP, PROTOCOL_UDP)
        and captured_payload < record.payload_length
        and not record.fragment
    ):
        note += f"; the payload shows {captured_payload:,} of its {record.payload_length:,} bytes"
    return (note,)


def _shorten(text: str, limit: int = 60) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def hexdump(payload: bytes, lines: int = HEXDUMP_LINES) -> list[str]:
    rows = []
    for start in range(0, min(len(payload), 16 * lines), 16):
        chunk = payload[start : start + 16]
        hexes = " ".join(f"{byte:02x}" for byte in chunk)
        text = "".join(chr(byte) if 32 <= byte < 127 else "." for byte in chunk)
        rows.append(f"{start:04x}  {hexes:<47}  {text}")
    if len(payload) > 16 * lines:
        rows.append(f"… {len(payload) - 16 * lines} more bytes")
    return rows


@dataclass(frozen=True, slots=True)
class _Part:
    """How much of a header is drawn: ``rows`` of it (0: only named, in a list of headers left out)."""

    block: LayerBlock
    rows: int


def _plan(blocks: list[LayerBlock]) -> list[_Part]:
    """The rows drawn of each header, within :data:`HEADER_ROWS` each and :data:`TOTAL_ROWS` before the last."""
    parts = []
    budget = TOTAL_ROWS
    for index, block in enumerate(blocks):
        rows = min(-(-block.length * 8 // BITS_PER_ROW), HEADER_ROWS)
        if index == len(blocks) - 1 or rows <= budget:
            budget -= rows
            parts.append(_Part(block, rows))
        else:
            budget = 0
            parts.append(_Part(block, 0))
    return parts


def draw_anatomy(anatomy: Anatomy, *, ax: Axes | None = None, figure: Figure | None = None) -> Axes:
    """Draw the anatomy of one frame and return the Axes.

    Without ``ax``, into ``figure`` (an empty one, sized here) or a new pyplot figure. A header
    longer than :data:`HEADER_ROWS` rows, or headers past :data:`TOTAL_ROWS`, are said in words.
    """
    parts = _plan(anatomy.blocks)
    drawn = [part for part in parts if part.rows]
    left_out = [part.block for part in parts if not part.rows]
    listed = left_out[:LISTED_HEADERS]
    cut = [part for part in drawn if part.rows * BITS_PER_ROW < part.block.length * 8]
    rows = sum(part.rows for part in drawn)
    dump = hexdump(anatomy.payload)
    lines = len(cut) + len(listed) + (len(left_out) > len(listed))
    notes = len(anatomy.notes) * 0.7 + sum(0.7 for part in drawn if part.block.note) + 0.75
    height = rows * ROW_HEIGHT + len(drawn) * 1.4 + lines * 0.9 + notes + (len(dump) + 2) * 0.55 + 2.5
    if ax is None:
        if figure is None:
            import matplotlib.pyplot as plt

            figure = plt.figure()
        figure.set_size_inches(13, height * 0.32)
        ax = figure.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(-1.2, BITS_PER_ROW + 0.4)
    ax.set_ylim(height, 0)
    ax.axis("off")
    summary = anatomy.summary if anatomy.summary.startswith("frame ") else f"frame {anatomy.frame}: {anatomy.summary}"
    title = textwrap.wrap(_shorten(summary, 230), 120, break_on_hyphens=False)
    ax.text(-1.1, 0.6, "\n".join(title), fontsize=11, fontweight="bold", va="top", gid="title", linespacing=1.3)
    y = 0.6 + 0.75 * len(title) - 0.3
    for note in anatomy.notes:
        y += 0.7
        ax.text(-1.1, y, note, fontsize=9.5, color="#B04A2F", fontweight="bold", va="center", gid="note")
    y += 1.0
    for bit in range(0, BITS_PER_ROW, 4):
        ax.text(bit + 0.5, y, str(bit), ha="center", va="center", fontsize=7, color="#555555")
    ax.text(BITS_PER_ROW - 0.5, y, "31", ha="center", va="center", fontsize=7, color="#555555")
    y += 0.7
    listed_yet = False
    for part in parts:
        block = part.block
        if not part.rows:
            if listed_yet:
                continue
            listed_yet = True
            y = _draw_left_out(ax, left_out, listed, y)
            continue
        ax.text(
            -1.1,
            y + 0.5,
            f"{_layer_title(block.name)}: {block.length} bytes",
            fontsize=10,
            fontweight="bold",
            va="center",
            color="#222222",
        )
        if block.note:
            y += 0.7
            ax.text(-1.1, y + 0.5, f"options: {block.note}", fontsize=9, color="#333333", va="center", gid="options")
        y += 1.0
        colour = _layer_colour(block.name)
        limit = part.rows * BITS_PER_ROW
        for cell in block.fields:
            if cell.offset < limit:
                _draw_cell(ax, cell if cell.offset + cell.width <= limit else _cut(cell, limit), y, colour)
        for row in range(part.rows):
            ax.text(
                -0.3,
                y + row * ROW_HEIGHT + ROW_HEIGHT / 2,
                f"{row * 4}",
                ha="right",
                va="center",
                fontsize=7,
                color="#777777",
            )
        y += part.rows * ROW_HEIGHT + 0.4
        if part in cut:
            hidden = block.length - part.rows * BITS_PER_ROW // 8
            names = [cell.name for cell in block.fields if cell.offset + cell.width > limit]
            ax.text(
                0,
                y + 0.3,
                f"… {hidden:,} more bytes of this header not drawn ({', '.join(names[:4])}"
                f"{', …' if len(names) > 4 else ''})",
                fontsize=8.5,
                style="italic",
                color="#555555",
                va="center",
            )
            y += 0.9
    heading = f"{anatomy.payload_name}: {len(anatomy.payload):,} bytes"
    if anatomy.payload_length > len(anatomy.payload):
        heading = f"payload: {len(anatomy.payload):,} of {anatomy.payload_length:,} bytes captured (cut by the capture)"
    ax.text(-1.1, y + 0.5, heading, fontsize=10, fontweight="bold", va="center", gid="payload")
    for index, line in enumerate(dump):
        ax.text(-1.1, y + 1.2 + index * 0.55, line, fontsize=8.5, family="DejaVu Sans Mono", va="center")
    return ax


def _layer_title(name: str) -> str:
    if name.startswith("ICMPv6NDOpt"):
        return "ICMPv6 Neighbor Discovery option (RFC 4861 s4.6)"
    return LAYER_TITLES.get(name) or ("ICMPv6 (RFC 4443)" if name.startswith("ICMPv6") else name)


def _layer_colour(name: str) -> str:
    if name.endswith(("error", "error6")):
        return LAYER_COLOURS["quoted"]
    return LAYER_COLOURS.get(name) or (LAYER_COLOURS["ICMPv6"] if name.startswith("ICMPv6") else "#F2F2F2")


def _cut(cell: FieldCell, limit: int) -> FieldCell:
    """The part of a field above the last row drawn."""
    return FieldCell(cell.name, cell.offset, limit - cell.offset, cell.value, cell.field)


def _draw_left_out(ax: Axes, left_out: list[LayerBlock], listed: list[LayerBlock], y: float) -> float:
    """Headers past the row budget, one line each (then a count); returns the y below them."""
    for block in listed:
        ax.text(
            -1.1,
            y + 0.3,
            f"{_layer_title(block.name)}: {block.length:,} bytes, not drawn",
            fontsize=9,
            style="italic",
            color="#555555",
            va="center",
        )
        y += 0.9
    more = left_out[len(listed) :]
    if more:
        ax.text(
            -1.1,
            y + 0.3,
            f"… {len(more)} more headers ({sum(block.length for block in more):,} bytes), not drawn",
            fontsize=9,
            style="italic",
            color="#555555",
            va="center",
        )
        y += 0.9
    return y + 0.3


def _draw_cell(ax: Axes, cell: FieldCell, top: float, colour: str) -> None:
    """A field as boxes over the rows it covers (whole rows merged), named and valued in its largest box."""
    pieces: list[tuple[int, int, int, int]] = []  # (row, column, bits wide, rows tall)
    start, remaining = cell.offset, cell.width
    while remaining > 0:
        row, column = divmod(start, BITS_PER_ROW)
        span = min(remaining, BITS_PER_ROW - column)
        if pieces and span == BITS_PER_ROW and column == 0 and pieces[-1][1] == 0 and pieces[-1][2] == BITS_PER_ROW:
            last = pieces[-1]
            pieces[-1] = (last[0], 0, BITS_PER_ROW, last[3] + 1)
        else:
            pieces.append((row, column, span, 1))
        start += span
        remaining -= span
    is_flag = cell.width == 1
    face = SET_BIT_COLOUR if is_flag and cell.value == "1" else colour
    for row, column, span, tall in pieces:
        ax.add_patch(
            Rectangle(
                (column, top + row * ROW_HEIGHT),
                span,
                tall * ROW_HEIGHT,
                facecolor=face,
                edgecolor="#333333",
                linewidth=0.8,
                zorder=2,
            )
        )
    main = max(pieces, key=lambda piece: piece[2] * piece[3])
    for piece in pieces:
        if piece is not main:  # the rest of a field that wraps to the next row
            row, column, span, tall = piece
            ax.text(
                column + span / 2,
                top + row * ROW_HEIGHT + ROW_HEIGHT / 2,
                f"({cell.name})",
                ha="center",
                va="center",
                fontsize=6.5,
                color="#777777",
                style="italic",
                zorder=3,
            )
    row, column, span, tall = main
    middle_x = column + span / 2
    middle_y = top + row * ROW_HEIGHT + tall * ROW_HEIGHT / 2
    if is_flag:
        ax.text(
            middle_x,
            middle_y,
            cell.name,
            ha="center",
            va="center",
            fontsize=6.5,
            fontweight="bold",
            color="white" if cell.value == "1" else "#333333",
            zorder=3,
            rotation=90 if len(cell.name) > 3 else 0,
        )
        return
    characters = max(3, int(span * 4.5))  # a bit is some 28 points wide; a character 4.5 to 5.5
    size = 7.5 if span >= 6 else 6.5
    wrapped = textwrap.wrap(cell.value, characters)
    lines = wrapped[: max(2, tall * 2 - 1)] or [""]
    if len(wrapped) > len(lines):
        lines[-1] = _shorten(lines[-1] + " …", characters)
    block = "\n".join(lines)
    spread = 0.33 + 0.16 * (len(lines) - 1) if cell.value else 0.0
    ax.text(
        middle_x,
        middle_y - spread,
        _shorten(cell.name, characters),
        ha="center",
        va="center",
        fontsize=size,
        fontweight="bold",
        zorder=3,
    )
    ax.text(
        middle_x,
        middle_y + 0.33 * (1 if len(lines) == 1 else 0.2),
        block,
        ha="center",
        va="center",
        fontsize=size,
        family="DejaVu Sans Mono",
        zorder=3,
        linespacing=1.1,
    )
