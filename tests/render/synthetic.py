"""Synthetic captures for render and CLI tests: frames from tests.packets, written as pcap files."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

from tests.packets import ACK, PSH, RST, SYN, Conversation
from visualizer.sources.capture_file import PCAP_MAGIC_NANOSECONDS
from visualizer.sources.pcap_writer import PcapWriter


def write_pcap(path: Path, frames: Iterable[tuple[float, bytes]]) -> Path:
    """Write (time in seconds, Ethernet frame) pairs as a pcap file; returns ``path``."""
    with PcapWriter(path) as writer:
        for time, data in frames:
            writer.write(data, int(round(time * 1e9)))
    return path


def with_bad_ip_version(frame: bytes) -> bytes:
    """The Ethernet frame with its IPv4 version/IHL byte 0x45 changed to 0x40 (an IHL of 0: undecodable)."""
    assert frame[14] == 0x45, frame[:16].hex()
    return frame[:14] + b"\x40" + frame[15:]


def refused_with_an_undecodable_answer() -> list[tuple[float, bytes]]:
    """A SYN, then its answer with a broken IPv4 header (like captures/refused.pcap with 0x45 -> 0x40)."""
    talk = Conversation(client="127.0.0.1", server="127.0.0.1", client_port=49590, server_port=9)
    talk.client_sends(0.0, 1000, 0, SYN).server_sends(0.0002, 0, 1001, ACK | RST)
    first, (time, answer) = talk.frames
    return [first, (time, with_bad_ip_version(answer))]


def missing_syn_ack_then_reset(*, reset_by_client: bool) -> list[tuple[float, bytes]]:
    """SYN; the SYN-ACK not captured; data both ways; a RST (the issue's "flows and draw disagree")."""
    talk = Conversation()
    talk.client_sends(0.0, 1000, 0, SYN)
    talk.client_sends(0.2, 1001, 5001, ACK, b"hello")
    talk.server_sends(0.3, 5001, 1006, PSH | ACK, b"world!")
    talk.client_sends(0.4, 1006, 5007, ACK)
    if reset_by_client:
        talk.client_sends(0.5, 1006, 5007, RST | ACK)
    else:
        talk.server_sends(0.5, 5007, 1006, RST | ACK)
    return talk.frames


def write_long_stream(path: Path, segments: int, *, payload: int = 100, retransmit_every: int = 10_000) -> int:
    """One TCP stream: a handshake, then ``segments`` data segments each ACKed, and every
    ``retransmit_every`` segments one sent again after its ACK (a spurious retransmission). Frames are
    patched into templates (fast: a million in a few seconds); returns the number of frames written."""
    talk = Conversation()
    talk.client_sends(0.0, 0, 0, SYN).server_sends(0.0001, 0, 1, SYN | ACK).client_sends(0.0002, 1, 1, ACK)
    data = talk.sends(True, 0, 0, 0, ACK | PSH, b"x" * payload).frames.pop()[1]
    ack = talk.sends(False, 0, 0, 0, ACK).frames.pop()[1]
    seq_at = 14 + 20 + 4  # the TCP sequence number's offset in an Ethernet/IPv4 frame
    header = struct.Struct("<IIII")
    numbers = struct.Struct("!II")
    written = 0
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", PCAP_MAGIC_NANOSECONDS, 2, 4, 0, 0, 262_144, 1))
        time_ns = 1_000_000
        for _, frame in talk.frames:
            out.write(header.pack(0, time_ns, len(frame), len(frame)) + frame)
            time_ns += 100_000
            written += 1
        data_frame, ack_frame = bytearray(data), bytearray(ack)
        for index in range(segments):
            sequence = 1 + index * payload
            resend = index and not index % retransmit_every
            for frame, (seq, acknowledged) in (
                (data_frame, (sequence, 1)),
                (ack_frame, (1, sequence + payload)),
                *(((data_frame, (sequence, 1)),) if resend else ()),
            ):
                numbers.pack_into(frame, seq_at, seq & 0xFFFFFFFF, acknowledged & 0xFFFFFFFF)
                seconds, nanoseconds = divmod(time_ns, 1_000_000_000)
                out.write(header.pack(seconds, nanoseconds, len(frame), len(frame)) + frame)
                time_ns += 20_000
                written += 1
    return written
