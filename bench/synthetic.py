"""Write a large, realistic-shaped capture for the benchmarks.

The file is *synthetic* (made by this script, not sniffed) and is only used to
measure speed and memory: many TCP conversations on Ethernet/IPv4, each with a
handshake, request/response data, delayed ACKs, an occasional retransmission,
and a FIN teardown, interleaved with DNS-like UDP exchanges.
"""

from __future__ import annotations

import argparse
import random
import struct
from pathlib import Path

_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
_ETHERNET_IPV4 = bytes.fromhex("020000000002020000000001") + b"\x08\x00"


def _ipv4(source: int, destination: int, protocol: int, payload_length: int) -> bytes:
    total = 20 + payload_length
    return struct.pack("!BBHHHBBHII", 0x45, 0, total, 0, 0x4000, 64, protocol, 0, source, destination)


def _tcp(sport: int, dport: int, seq: int, ack: int, flags: int, window: int, options: bytes = b"") -> bytes:
    offset = (20 + len(options)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, offset << 4, flags, window, 0, 0) + options


def write_capture(path: Path, packets: int, *, seed: int = 7, payload: int = 512) -> int:
    """Write about ``packets`` packets to ``path``; return the exact count written."""
    rng = random.Random(seed)
    written = 0
    time_us = 1_700_000_000 * 1_000_000
    client, server = 0x0A000001, 0x0A000002
    body = bytes(range(256)) * (payload // 256 + 1)
    with path.open("wb") as out:
        out.write(_PCAP_HEADER)

        def emit(frame: bytes) -> None:
            nonlocal written, time_us
            time_us += rng.randint(20, 400)
            out.write(struct.pack("<IIII", time_us // 1_000_000, time_us % 1_000_000, len(frame), len(frame)))
            out.write(frame)
            written += 1

        def tcp_frame(src: int, dst: int, sport: int, dport: int, seq: int, ack: int, flags: int,
                      data: bytes = b"", options: bytes = b"") -> None:
            segment = _tcp(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, flags, 502, options) + data
            emit(_ETHERNET_IPV4 + _ipv4(src, dst, 6, len(segment)) + segment)

        connection = 0
        while written < packets:
            connection += 1
            sport = 1024 + connection % 60000
            client_isn, server_isn = rng.getrandbits(32), rng.getrandbits(32)
            syn_options = b"\x02\x04\x05\xb4\x04\x02\x01\x03\x03\x07"  # MSS 1460, SACK-perm, WS 7
            syn_options += b"\x00" * (-len(syn_options) % 4)
            tcp_frame(client, server, sport, 80, client_isn, 0, 0x02, options=syn_options)
            tcp_frame(server, client, 80, sport, server_isn, client_isn + 1, 0x12, options=syn_options)
            tcp_frame(client, server, sport, 80, client_isn + 1, server_isn + 1, 0x10)
            client_next, server_next = client_isn + 1, server_isn + 1
            for _ in range(rng.randint(5, 60)):
                data = body[: rng.randint(1, payload)]
                tcp_frame(client, server, sport, 80, client_next, server_next, 0x18, data)
                if rng.random() < 0.01:  # a retransmission now and then
                    tcp_frame(client, server, sport, 80, client_next, server_next, 0x18, data)
                client_next += len(data)
                tcp_frame(server, client, 80, sport, server_next, client_next, 0x10)
            tcp_frame(client, server, sport, 80, client_next, server_next, 0x11)
            tcp_frame(server, client, 80, sport, server_next, client_next + 1, 0x11)
            tcp_frame(client, server, sport, 80, client_next + 1, server_next + 1, 0x10)
            if connection % 10 == 0:
                query = struct.pack("!HHHHHH", connection & 0xFFFF, 0x0100, 1, 0, 0, 0) + b"\x07example\x03com\x00\x00\x01\x00\x01"
                for src, dst, sp, dp in ((client, server, sport, 53), (server, client, 53, sport)):
                    udp = struct.pack("!HHHH", sp, dp, 8 + len(query), 0) + query
                    emit(_ETHERNET_IPV4 + _ipv4(src, dst, 17, len(udp)) + udp)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", type=Path)
    parser.add_argument("--packets", type=int, default=1_000_000)
    arguments = parser.parse_args()
    count = write_capture(arguments.output, arguments.packets)
    print(f"wrote {count} packets to {arguments.output}")


if __name__ == "__main__":
    main()
