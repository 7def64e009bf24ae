"""Synthetic captures for render and CLI tests: frames from tests.packets, written as pcap files."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tests.packets import ACK, PSH, RST, SYN, Conversation
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
