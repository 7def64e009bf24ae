"""Write large, realistically shaped captures for the benchmarks.

The files are *synthetic* (made by this script, not sniffed) and only measure
speed and memory. Two workloads:

* ``chatty``: many short TCP conversations on Ethernet/IPv4 (5-60 requests each,
  up to 512-byte payloads, an ACK for each, 1% retransmissions), a handshake and
  FIN teardown each, and DNS-like UDP exchanges: per packet, the costliest mix
  for sockstory (many conversations, handshakes and teardowns).
* ``web``: HTTPS-like downloads as a web capture holds them: 1448-byte segments
  carrying TLS application-data records, Linux-style timestamp options on every
  segment, a delayed ACK every second segment.
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

        def tcp_frame(
            src: int,
            dst: int,
            sport: int,
            dport: int,
            seq: int,
            ack: int,
            flags: int,
            data: bytes = b"",
            options: bytes = b"",
        ) -> None:
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
                query = struct.pack("!HHHHHH", connection & 0xFFFF, 0x0100, 1, 0, 0, 0)
                query += b"\x07example\x03com\x00\x00\x01\x00\x01"
                for src, dst, sp, dp in ((client, server, sport, 53), (server, client, 53, sport)):
                    udp = struct.pack("!HHHH", sp, dp, 8 + len(query), 0) + query
                    emit(_ETHERNET_IPV4 + _ipv4(src, dst, 17, len(udp)) + udp)
    return written


def write_web_capture(path: Path, packets: int, *, seed: int = 3) -> int:
    """Write about ``packets`` packets of HTTPS-like downloads; return the exact count."""
    rng = random.Random(seed)
    written = 0
    time_us = 1_700_000_000 * 1_000_000
    client, server = 0x0A000001, 0x0A000002
    timestamps = b"\x01\x01\x08\x0a" + b"\0" * 8
    syn_options = b"\x02\x04\x05\xb4\x04\x02\x08\x0a" + b"\0" * 8 + b"\x01\x03\x03\x07"
    record = b"\x17\x03\x03\x05\x8c" + bytes(rng.getrandbits(8) for _ in range(1443))
    hello = b"\x16\x03\x01\x00\xc8" + bytes(200)
    with path.open("wb") as out:
        out.write(_PCAP_HEADER)

        def emit(
            source: int,
            destination: int,
            sport: int,
            dport: int,
            seq: int,
            ack: int,
            flags: int,
            data: bytes = b"",
            options: bytes = timestamps,
        ) -> None:
            nonlocal written, time_us
            time_us += rng.randint(5, 60)
            segment = _tcp(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, flags, 502, options) + data
            frame = _ETHERNET_IPV4 + _ipv4(source, destination, 6, len(segment)) + segment
            out.write(struct.pack("<IIII", time_us // 1_000_000, time_us % 1_000_000, len(frame), len(frame)))
            out.write(frame)
            written += 1

        connection = 0
        while written < packets:
            connection += 1
            port = 1024 + connection % 60000
            client_next, server_next = rng.getrandbits(32), rng.getrandbits(32)
            emit(client, server, port, 443, client_next, 0, 0x02, options=syn_options)
            emit(server, client, 443, port, server_next, client_next + 1, 0x12, options=syn_options)
            client_next, server_next = client_next + 1, server_next + 1
            emit(client, server, port, 443, client_next, server_next, 0x10)
            emit(client, server, port, 443, client_next, server_next, 0x18, hello)
            client_next += len(hello)
            for index in range(rng.randint(50, 400)):
                emit(server, client, 443, port, server_next, client_next, 0x10, record)
                server_next += len(record)
                if index % 2:
                    emit(client, server, port, 443, client_next, server_next, 0x10)
            emit(client, server, port, 443, client_next, server_next, 0x11)
            emit(server, client, 443, port, server_next, client_next + 1, 0x11)
            emit(client, server, port, 443, client_next + 1, server_next + 1, 0x10)
    return written


PROFILES = {"chatty": write_capture, "web": write_web_capture}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path)
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="chatty")
    arguments = parser.parse_args()
    count = PROFILES[arguments.profile](arguments.output, arguments.packets)
    print(f"wrote {count} packets to {arguments.output}")


if __name__ == "__main__":
    main()
