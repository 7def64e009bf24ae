"""The link layer: from a frame's first byte to the start of its IP header.

Ethernet (with 802.1Q/QinQ tags and MPLS labels, also Ethernet pseudowires),
Linux cooked capture (SLL and SLL2), raw IP, and BSD NULL/loopback. The only
module that knows a link type or an ethertype; it says which IP version starts
where, and the IP layer (:mod:`visualizer.sources.ip`) takes over from there.
"""

from __future__ import annotations

from visualizer.sources.capture_file import LINKTYPE_NONE

# LINKTYPE_* values (tcpdump.org "Link-layer header types").
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

# EtherType values (IEEE "EtherType" registry).
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_ARP = 0x0806
ETHERTYPE_VLAN = 0x8100  # IEEE 802.1Q
ETHERTYPE_QINQ = 0x88A8  # IEEE 802.1ad
ETHERTYPE_QINQ_OLD = 0x9100
ETHERTYPE_MPLS = 0x8847  # RFC 3032
ETHERTYPE_MPLS_MULTICAST = 0x8848

ETHERNET_HEADER_LENGTH = 14
SLL_HEADER_LENGTH = 16
SLL2_HEADER_LENGTH = 20

# BSD address families seen in NULL/LOOP headers (AF_INET6 differs between the BSDs).
AF_INET = 2
AF_INET6 = (10, 23, 24, 28, 30)

_RAW_IP = (LINKTYPE_RAW, LINKTYPE_RAW_BSD, LINKTYPE_RAW_BSD_OLD)
_TAGS = (ETHERTYPE_VLAN, ETHERTYPE_QINQ, ETHERTYPE_QINQ_OLD)


NetworkStart = tuple[int, int, str]
"""Where the link layer hands over: (IP version 4 or 6, offset of the IP header, ""),
or (0, 0, why decoding stopped) with an empty reason when the frame carries no IP.
A plain tuple: one is made per frame."""

_NONE: NetworkStart = (0, 0, "")


def decode_link(data: bytes, link_type: int, layers: list[str]) -> NetworkStart:
    """Walk the link-layer headers of ``data``, appending their tshark names to ``layers``.

    Never raises for bad bytes: a header cut short, an unknown link type or address
    family comes back as a ``problem``; a frame without IP (ARP, other ethertypes)
    as version 0 without one.
    """
    if link_type == LINKTYPE_NONE:
        layers.append("data")
        return _NONE
    if link_type == LINKTYPE_ETHERNET:
        return _ethernet(data, 0, layers)
    if link_type in _RAW_IP:
        layers.append("raw")
        return _ip_by_version(data, 0)
    if link_type == LINKTYPE_IPV4:
        return (4, 0, "")
    if link_type == LINKTYPE_IPV6:
        return (6, 0, "")
    if link_type in (LINKTYPE_NULL, LINKTYPE_LOOP):
        layers.append("null" if link_type == LINKTYPE_NULL else "loop")
        if len(data) < 4:
            return (0, 0, "loopback header cut short")
        # The family is in the writer's byte order for NULL, in network byte order for LOOP.
        family = int.from_bytes(data[:4], "big" if link_type == LINKTYPE_LOOP else "little")
        if family > 0xFFFF:  # written on a host of the other byte order
            family = int.from_bytes(data[:4], "big")
        if family == AF_INET:
            return (4, 4, "")
        if family in AF_INET6:
            return (6, 4, "")
        return (0, 0, f"unknown loopback address family {family}")
    if link_type == LINKTYPE_LINUX_SLL:
        layers.append("sll")
        if len(data) < SLL_HEADER_LENGTH:
            return (0, 0, "Linux cooked header cut short")
        return _ethertype(int.from_bytes(data[14:16], "big"), data, SLL_HEADER_LENGTH, layers)
    if link_type == LINKTYPE_LINUX_SLL2:
        layers.append("sll")
        if len(data) < SLL2_HEADER_LENGTH:
            return (0, 0, "Linux cooked v2 header cut short")
        return _ethertype(int.from_bytes(data[0:2], "big"), data, SLL2_HEADER_LENGTH, layers)
    return (0, 0, f"link type {link_type} is not decoded")


def _ethernet(data: bytes, offset: int, layers: list[str]) -> NetworkStart:
    layers.append("eth")
    if len(data) < offset + ETHERNET_HEADER_LENGTH:
        return (0, 0, "Ethernet header cut short")
    ethertype = int.from_bytes(data[offset + 12 : offset + 14], "big")
    return _ethertype(ethertype, data, offset + ETHERNET_HEADER_LENGTH, layers)


def _ethertype(ethertype: int, data: bytes, offset: int, layers: list[str]) -> NetworkStart:
    layers.append("ethertype")
    while ethertype in _TAGS:
        layers.append("vlan")
        if len(data) < offset + 4:
            return (0, 0, "VLAN tag cut short")
        ethertype = int.from_bytes(data[offset + 2 : offset + 4], "big")
        offset += 4
        layers.append("ethertype")
    if ethertype == ETHERTYPE_IPV4:
        return (4, offset, "")
    if ethertype == ETHERTYPE_IPV6:
        return (6, offset, "")
    if ethertype in (ETHERTYPE_MPLS, ETHERTYPE_MPLS_MULTICAST):
        return _mpls(data, offset, layers)
    layers.append("arp" if ethertype == ETHERTYPE_ARP else "data")
    return _NONE


def _mpls(data: bytes, offset: int, layers: list[str]) -> NetworkStart:
    """MPLS labels up to the bottom of the stack (RFC 3032 s2.1), then IP or Ethernet."""
    layers.append("mpls")
    while True:
        if len(data) < offset + 4:
            return (0, 0, "MPLS label cut short")
        bottom = data[offset + 2] & 1
        offset += 4
        if bottom:
            break
    if len(data) <= offset:
        return _NONE
    # MPLS does not say what it carries: guess from the first nibble, as tshark does.
    nibble = data[offset] >> 4
    if nibble in (4, 6):
        return _ip_by_version(data, offset)
    if nibble == 0:  # pseudowire control word (RFC 4385), then Ethernet
        layers.append("pwethcw")
        return _ethernet(data, offset + 4, layers)
    return _ethernet(data, offset, layers)


def _ip_by_version(data: bytes, offset: int) -> NetworkStart:
    if len(data) <= offset:
        return (0, 0, "IP header missing")
    version = data[offset] >> 4
    if version in (4, 6):
        return (version, offset, "")
    return (0, 0, f"IP version {version} is not decoded")
