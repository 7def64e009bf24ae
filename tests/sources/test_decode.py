"""The decoder: link types, VLAN/MPLS, IPv6 extension headers, fragments, ICMP, truncated bytes."""

from __future__ import annotations

import struct
import time

from hypothesis import example, given
from hypothesis import strategies as st

from tests.packets import ACK, PSH, SYN, decode_all, ethernet, ipv4, ipv6, tcp, udp
from visualizer.model import parse_tcp_options, window_scale_of
from visualizer.sources.ip import (
    FRAGMENT_TIMEOUT_NS,
    MAXIMUM_PENDING_BYTES,
    MAXIMUM_PENDING_DATAGRAMS,
    Reassembly,
)

SEGMENT = tcp(1234, 80, 100, 200, PSH | ACK, 512, b"hello", options=b"\x01\x01\x08\x0a" + b"\0" * 8)


def test_ethernet_ipv4_tcp_fast_path() -> None:
    (record,) = decode_all([(1.5, ethernet(ipv4("10.0.0.1", "10.0.0.2", 6, SEGMENT)))])
    assert (record.source, record.destination, record.source_port, record.destination_port) == (
        "10.0.0.1",
        "10.0.0.2",
        1234,
        80,
    )
    assert (record.seq, record.ack, record.tcp_flags, record.window) == (100, 200, PSH | ACK, 512)
    assert record.payload_length == 5 and record.payload == b"hello"
    assert record.timestamp_ns == 1_500_000_000 and record.layers == "eth:ethertype:ip:tcp"
    assert parse_tcp_options(record.tcp_options).timestamp == (0, 0)


def test_snap_length_truncated_frame_keeps_the_header_length() -> None:
    frame = ethernet(ipv4("10.0.0.1", "10.0.0.2", 6, SEGMENT))[:66]  # headers only
    (record,) = decode_all([(0, frame)])
    assert record.payload_length == 5 and record.payload == b"" and not record.problem


def test_vlan_qinq_and_mpls_are_unwrapped() -> None:
    inner = ipv4("10.0.0.1", "10.0.0.2", 6, SEGMENT)
    qinq = ethernet(struct.pack("!HH", 1, 0x8100) + struct.pack("!HH", 2, 0x0800) + inner, ethertype=0x88A8)
    mpls = ethernet(struct.pack("!I", (16 << 12) | 0x100 | 64) + inner, ethertype=0x8847)
    records = decode_all([(0, qinq), (0, mpls)])
    assert [record.layers for record in records] == [
        "eth:ethertype:vlan:ethertype:vlan:ethertype:ip:tcp",
        "eth:ethertype:mpls:ip:tcp",
    ]
    assert all(record.source_port == 1234 for record in records)


def test_other_link_types() -> None:
    packet = ipv4("10.0.0.1", "10.0.0.2", 6, SEGMENT)
    sll = struct.pack("!HHH8sH", 0, 1, 6, b"\0" * 8, 0x0800) + packet
    sll2 = struct.pack("!HHIHBB8s", 0x0800, 0, 1, 1, 0, 6, b"\0" * 8) + packet
    null = struct.pack("<I", 2) + packet
    for link_type, frame in ((113, sll), (276, sll2), (0, null), (101, packet), (228, packet)):
        (record,) = decode_all([(0, frame)], link_type=link_type)
        assert record.seq == 100 and not record.problem, link_type


def test_ipv6_with_extension_headers() -> None:
    destination_options = bytes([6, 0]) + b"\x01\x04\0\0\0\0"
    frame = ethernet(ipv6("2001:db8::1", "2001:db8::2", 60, destination_options + SEGMENT), ethertype=0x86DD)
    (record,) = decode_all([(0, frame)])
    assert record.network == 6 and record.source == "2001:db8::1"
    assert record.layers == "eth:ethertype:ipv6:ipv6.dstopts:tcp" and record.payload_length == 5


def test_ipv4_fragments_are_reassembled_on_the_last_one() -> None:
    datagram = udp(5000, 53, b"a" * 40)
    first = ethernet(ipv4("10.0.0.1", "10.0.0.2", 17, datagram[:24], identification=7, flags_fragment=0x2000))
    second = ethernet(ipv4("10.0.0.1", "10.0.0.2", 17, datagram[24:], identification=7, flags_fragment=3))
    records = decode_all([(0, first), (0, second)])
    assert records[0].fragment and records[0].transport == 0 and records[0].layers.endswith("ip:data")
    assert records[1].transport == 17 and records[1].payload_length == 40 and records[1].destination_port == 53


def test_ipv6_fragment_missing_its_first_part_is_not_reassembled() -> None:
    fragment = struct.pack("!BBHI", 17, 0, (8 << 3) | 0, 99)  # offset 64 bytes, last fragment
    frame = ethernet(ipv6("2001:db8::1", "2001:db8::2", 44, fragment + b"z" * 16), ethertype=0x86DD)
    (record,) = decode_all([(0, frame)])
    assert record.fragment and record.transport == 0


def test_icmp_error_quotes_the_flow_it_is_about() -> None:
    quoted = ipv4("10.0.0.1", "10.0.0.2", 17, udp(5000, 9, b"x"))
    frame = ethernet(ipv4("10.0.0.2", "10.0.0.1", 1, bytes([3, 3, 0, 0, 0, 0, 0, 0]) + quoted))
    (record,) = decode_all([(0, frame)])
    assert (record.icmp_type, record.icmp_code) == (3, 3)
    assert record.quoted is not None
    assert (record.quoted.source, record.quoted.transport, record.quoted.destination_port) == ("10.0.0.1", 17, 9)


def test_truncated_and_malformed_bytes_become_problems_not_exceptions() -> None:
    whole = ethernet(ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1, 2, 3, 4, SYN)))
    cases = [whole[:10], whole[:20], whole[:40], b"", ethernet(b"\x45" + b"\0" * 5)]
    records = decode_all([(0, frame) for frame in cases])
    assert all(record.problem for record in records)
    assert records[2].network == 4 and "TCP header cut short" in records[2].problem
    bad_offset = ethernet(ipv4("10.0.0.1", "10.0.0.2", 6, struct.pack("!HHIIBBHHH", 1, 2, 3, 4, 0x10, 2, 0, 0, 0)))
    (record,) = decode_all([(0, bad_offset)])
    assert "less than 20" in record.problem


def test_unknown_link_type_is_recorded() -> None:
    (record,) = decode_all([(0, b"\0" * 30)], link_type=147)
    assert "link type 147" in record.problem


def test_tcp_option_parsing() -> None:
    options = parse_tcp_options(
        b"\x02\x04\x05\xb4\x04\x02\x08\x0a\0\0\0\x01\0\0\0\x02\x01\x03\x03\x07\x05\x0a\0\0\0\x10\0\0\0\x20"
    )
    assert (options.mss, options.sack_permitted, options.timestamp, options.window_scale) == (1460, True, (1, 2), 7)
    assert options.sack_blocks == ((16, 32),)
    assert parse_tcp_options(b"\x05\x02").malformed and parse_tcp_options(b"\x02\x09\x00").malformed


@given(
    st.binary(max_size=40)
    | st.lists(
        st.sampled_from(
            [
                b"\x01",
                b"\x00",
                b"\x03\x03\x07",
                b"\x03\x03\x0e",
                b"\x03\x02",
                b"\x03\x04\x01\x02",
                b"\x02\x04\x05\xb4",
                b"\x04\x02",
                b"\x05\x01",
                b"\x08\x0a" + bytes(8),
            ]
        ),
        max_size=8,
    ).map(b"".join)
)
@example(b"\x03\x03\x07\x03\x03\x02")  # the last one counts
@example(b"\x03\x03\x07\x05\x01\x03\x03\x02")  # a malformed option ends the list: the first counts
@example(b"\x01\x03\x03")  # cut short: none
def test_window_scale_of_agrees_with_the_full_option_parser(raw: bytes) -> None:
    assert window_scale_of(raw) == parse_tcp_options(raw).window_scale


def eight_byte_fragments(datagram: bytes, identification: int = 7) -> list[bytes]:
    """``datagram`` (a UDP header and payload) cut into IPv4 fragments of 8 bytes each."""
    pieces = []
    for start in range(0, len(datagram), 8):
        more = 0x2000 if start + 8 < len(datagram) else 0
        fragment = ipv4("10.0.0.1", "10.0.0.2", 17, datagram[start : start + 8], identification=identification)
        fragment = fragment[:6] + struct.pack("!H", more | start // 8) + fragment[8:]
        pieces.append(ethernet(fragment))
    return pieces


def test_a_datagram_in_8190_fragments_is_reassembled_in_linear_time() -> None:
    datagram = udp(5000, 53, bytes(range(256)) * 255 + b"x" * 232)  # 65,520 bytes: 8,190 fragments
    frames = eight_byte_fragments(datagram)
    assert len(frames) == 8190
    # The last fragment first (the length is known), then the others in order: every fragment
    # extends the data received from the start, which a quadratic reassembly copies each time.
    for order in (frames[-1:] + frames[:-1], frames, frames[::-1]):
        started = time.perf_counter()
        records = decode_all([(index * 1e-6, frame) for index, frame in enumerate(order)])
        elapsed = time.perf_counter() - started
        assert all(record.fragment for record in records[:-1])
        assert records[-1].transport == 17 and records[-1].payload == datagram[8:]
        assert elapsed < 2.0, f"{elapsed:.1f} s: reassembly is not linear"  # quadratic: 17-19 s


def test_reassembly_holds_a_bounded_number_of_datagrams_and_bytes() -> None:
    reassembly = Reassembly()
    for identification in range(MAXIMUM_PENDING_DATAGRAMS + 100):  # first halves only: none completes
        key = (4, b"\x0a\0\0\x01\x0a\0\0\x02", identification.to_bytes(4, "big"), 17)
        assert reassembly.add(key, 0, b"a" * 1400, True, now=identification) is None
        assert reassembly.pending_datagrams <= MAXIMUM_PENDING_DATAGRAMS
        assert reassembly.pending_bytes <= MAXIMUM_PENDING_BYTES
    overlapping = Reassembly()  # one datagram of ever-overlapping fragments
    for offset in range(0, 65_000, 8):
        overlapping.add((6, b"", b"1"), offset, b"o" * (65_535 - offset), True, now=0)
        assert overlapping.pending_bytes <= MAXIMUM_PENDING_BYTES


def test_a_datagram_that_never_completes_expires() -> None:
    datagram = udp(5000, 53, b"f" * 40)
    first = ethernet(ipv4("10.0.0.1", "10.0.0.2", 17, datagram[:24], identification=7, flags_fragment=0x2000))
    last = ethernet(ipv4("10.0.0.1", "10.0.0.2", 17, datagram[24:], identification=7, flags_fragment=3))
    in_time = decode_all([(0, first), (FRAGMENT_TIMEOUT_NS / 1e9 - 1, last)])
    assert in_time[1].transport == 17 and in_time[1].payload == b"f" * 40
    too_late = decode_all([(0, first), (FRAGMENT_TIMEOUT_NS / 1e9 + 1, last)])
    assert too_late[1].fragment and too_late[1].transport == 0


def test_a_fragment_beyond_the_largest_datagram_is_dropped_with_a_reason() -> None:
    fragment = ipv4("10.0.0.1", "10.0.0.2", 17, b"z" * 16, identification=7)
    fragment = fragment[:6] + struct.pack("!H", 0x2000 | 8190) + fragment[8:]  # bytes 65,520 to 65,536
    (record,) = decode_all([(0, ethernet(fragment))])
    assert record.problem == "IPv4 fragment ends beyond 65535 bytes" and record.transport == 0
