"""Scenarios that talk TCP and UDP to the kernel by hand: Scapy builds each packet field by field.

A crafted packet leaves through a raw socket on loopback (after
:func:`~visualizer.scenarios.safety.check_destination`), and the kernel's
answers are read back from the same capture that records everything. Where the
kernel would answer a packet for a port it does not know (a SYN-ACK to our
crafted client port) with a RST, the scenario's nftables rule drops that RST on
output, inside the scenario's private namespace.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from visualizer.errors import ScenarioError
from visualizer.model import ACK, FIN, PROTOCOL_TCP, RST, SYN, PacketRecord
from visualizer.scenarios.kernel import ANSWER, QUESTION, TIMEOUT, listen, read_to_end, serve
from visualizer.scenarios.safety import check_destination
from visualizer.sources.capture_file import RawFrame
from visualizer.sources.decode import FrameDecoder
from visualizer.sources.live import Sniffer

HOST = "127.0.0.1"
SO_MARK = 36
CRAFTED_MARK = 0x534B
CLIENT_PORT = 40000
SERVER_PORT = 8080
CLIENT_ISN = 1000
WAIT = 2.0


class CraftedPeer:
    """A hand-made TCP/UDP endpoint: sends Scapy packets, reads the kernel's answers from the capture."""

    def __init__(self, sniffer: Sniffer, *, scenario: str = "crafted") -> None:
        self.sniffer = sniffer
        self.scenario = scenario
        """The scenario's name, for the error when the kernel does not answer."""
        self.decoder = FrameDecoder()
        self.seen = 0
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        # Marked, so that the rule that silences the kernel's own RSTs lets ours through.
        self.socket.setsockopt(socket.SOL_SOCKET, SO_MARK, CRAFTED_MARK)

    def send(self, packet: Any) -> None:
        """Send a Scapy IP packet as built (checksums Scapy computes unless the packet sets them)."""
        check_destination(packet.dst)
        self.socket.sendto(bytes(packet), (packet.dst, 0))

    def expect(self, predicate: Callable[[PacketRecord], bool], timeout: float = WAIT) -> PacketRecord | None:
        """The next captured frame (after those already looked at) that ``predicate`` accepts."""
        deadline = time.monotonic() + timeout
        frames = self.sniffer.frames
        while time.monotonic() < deadline:
            while self.seen < len(frames):
                timestamp, data = frames[self.seen]
                self.seen += 1
                record = self.decoder.decode(RawFrame(self.seen, timestamp, 0, 1, len(data), len(data), data))
                if predicate(record):
                    return record
            time.sleep(0.002)
        return None

    def require(self, predicate: Callable[[PacketRecord], bool], missing: str, timeout: float = WAIT) -> PacketRecord:
        """Like :meth:`expect`, but a frame that never comes is a ScenarioError saying ``missing``."""
        record = self.expect(predicate, timeout)
        if record is None:
            raise ScenarioError(self.scenario, f"{missing} (nothing within {timeout:g} s)")
        return record

    def skip_seen(self) -> None:
        """Look only at frames captured from now on."""
        self.seen = len(self.sniffer.frames)

    def close(self) -> None:
        self.socket.close()


def _from_server(flags: int, *, port: int = SERVER_PORT, data: bool = False) -> Callable[[PacketRecord], bool]:
    def match(record: PacketRecord) -> bool:
        return (
            record.transport == PROTOCOL_TCP
            and record.source_port == port
            and record.destination_port == CLIENT_PORT
            and record.tcp_flags & flags == flags
            and (not data or record.payload_length > 0)
        )

    return match


def _tcp(flags: str, seq: int, ack: int = 0, payload: bytes = b"", **fields: Any) -> Any:
    from scapy.layers.inet import IP, TCP

    segment = IP(src=HOST, dst=HOST) / TCP(
        sport=CLIENT_PORT,
        dport=fields.pop("dport", SERVER_PORT),
        flags=flags,
        seq=seq,
        ack=ack,
        window=fields.pop("window", 64240),
        **fields,
    )
    return segment / payload if payload else segment


def _handshake(peer: CraftedPeer, port: int = SERVER_PORT) -> int:
    """SYN, the kernel's SYN-ACK, our ACK; returns the kernel's next sequence number."""
    peer.send(_tcp("S", CLIENT_ISN, dport=port, options=[("MSS", 1460), ("SAckOK", b""), ("WScale", 7)]))
    synack = peer.require(
        _from_server(SYN | ACK, port=port), f"the kernel did not answer the crafted SYN to port {port}"
    )
    server_next = (synack.seq + 1) & 0xFFFFFFFF
    peer.send(_tcp("A", CLIENT_ISN + 1, server_next, dport=port))
    return server_next


def craft_handshake(sniffer: Sniffer) -> dict[str, object]:
    """Scapy opens a connection to a kernel listener by hand, asks, reads the answer, ACKs it, closes."""
    delivered: list[bytes] = []

    def friend(connection: socket.socket) -> None:
        delivered.append(connection.recv(100))
        connection.sendall(ANSWER)
        read_to_end(connection)

    thread = serve(listen(SERVER_PORT), friend)
    peer = CraftedPeer(sniffer, scenario="craft-handshake")
    try:
        server_next = _handshake(peer)
        peer.send(_tcp("PA", CLIENT_ISN + 1, server_next, QUESTION))
        answer = peer.require(_from_server(ACK, data=True), "the kernel's listener did not answer the question")
        server_next = (answer.seq + answer.payload_length) & 0xFFFFFFFF
        client_next = CLIENT_ISN + 1 + len(QUESTION)
        peer.send(_tcp("A", client_next, server_next))
        peer.send(_tcp("FA", client_next, server_next))
        fin = peer.require(_from_server(FIN), "the kernel did not close its side (no FIN)")
        peer.send(_tcp("A", client_next + 1, (fin.seq + 1) & 0xFFFFFFFF))
    finally:
        peer.close()
        thread.join(TIMEOUT)
    return {"delivered": b"".join(delivered), "answer": answer.payload}


def craft_silent_client(sniffer: Sniffer) -> dict[str, object]:
    """The crafted client never ACKs the kernel's reply: the kernel retransmits, doubling its timeout."""

    def friend(connection: socket.socket) -> None:
        connection.recv(100)
        connection.sendall(ANSWER)
        try:
            read_to_end(connection)
        except OSError:
            pass

    thread = serve(listen(SERVER_PORT), friend)
    peer = CraftedPeer(sniffer, scenario="craft-silent-client")
    try:
        server_next = _handshake(peer)
        peer.send(_tcp("PA", CLIENT_ISN + 1, server_next, QUESTION))
        time.sleep(3.6)  # RTO 200 ms, then 400, 800, 1600 (and timer ticks): four retransmissions
        peer.send(_tcp("R", CLIENT_ISN + 1 + len(QUESTION)))
    finally:
        peer.close()
        thread.join(TIMEOUT)
    return {}


def craft_bad_checksum(sniffer: Sniffer) -> dict[str, object]:
    """A segment with a wrong TCP checksum is silently discarded; the same one, correct, is ACKed."""
    delivered: list[bytes] = []

    def friend(connection: socket.socket) -> None:
        delivered.append(read_to_end(connection))

    thread = serve(listen(SERVER_PORT), friend)
    peer = CraftedPeer(sniffer, scenario="craft-bad-checksum")
    try:
        server_next = _handshake(peer)
        bad = _tcp("PA", CLIENT_ISN + 1, server_next, QUESTION)
        bad.getlayer(1).chksum = 0xBAD0
        peer.send(bad)
        acked_bad = peer.expect(_from_server(ACK), timeout=0.5)
        peer.send(_tcp("PA", CLIENT_ISN + 1, server_next, QUESTION))
        acked_good = peer.expect(_from_server(ACK), timeout=WAIT)
        client_next = CLIENT_ISN + 1 + len(QUESTION)
        peer.send(_tcp("FA", client_next, server_next))
        fin = peer.expect(_from_server(FIN))
        if fin is not None:
            peer.send(_tcp("A", client_next + 1, (fin.seq + 1) & 0xFFFFFFFF))
    finally:
        peer.close()
        thread.join(TIMEOUT)
    return {
        "acked_bad": acked_bad is not None,
        "acked_good": acked_good is not None and acked_good.ack == (CLIENT_ISN + 1 + len(QUESTION)),
        "delivered": b"".join(delivered),
    }


def craft_rst_injection(sniffer: Sniffer) -> dict[str, object]:
    """RSTs injected into a kernel connection: out of window, in window, at the next sequence number.

    Out of the window: ignored; in the window: a challenge ACK (RFC 5961 s3.2); at exactly the
    next expected sequence number: the connection is torn down."""
    outcome: dict[str, object] = {}
    port = 8093

    def server(connection: socket.socket) -> None:
        connection.recv(100)
        try:
            connection.recv(100)
            outcome["server"] = "closed normally"
        except ConnectionResetError:
            outcome["server"] = "reset"

    thread = serve(listen(port), server)
    client = socket.socket()
    client.settimeout(TIMEOUT)
    client.connect((HOST, port))
    client_port = client.getsockname()[1]
    client.sendall(b"hello")
    peer = CraftedPeer(sniffer, scenario="craft-rst-injection")
    from scapy.layers.inet import IP, TCP

    try:
        data = peer.require(
            lambda r: r.transport == PROTOCOL_TCP and r.destination_port == port and r.payload_length > 0,
            f"the kernel client's data to port {port} was not captured",
        )
        next_seq = (data.seq + data.payload_length) & 0xFFFFFFFF
        peer.require(
            lambda r: r.transport == PROTOCOL_TCP and r.source_port == port and r.ack == next_seq,
            "the kernel server did not acknowledge the data",
        )

        def rst(seq: int) -> Any:
            return IP(src=HOST, dst=HOST) / TCP(sport=client_port, dport=port, flags="R", seq=seq & 0xFFFFFFFF)

        def challenge(record: PacketRecord) -> bool:
            return record.transport == PROTOCOL_TCP and record.source_port == port and record.tcp_flags == ACK

        time.sleep(0.05)
        peer.skip_seen()
        peer.send(rst(next_seq + 0x40000000))  # far outside the window
        outcome["challenge_after_out_of_window"] = peer.expect(challenge, timeout=0.5) is not None
        time.sleep(0.6)
        peer.skip_seen()
        peer.send(rst(next_seq + 100))  # inside the window but not exact: a challenge ACK
        outcome["challenge_after_in_window"] = peer.expect(challenge, timeout=1.0) is not None
        time.sleep(0.05)
        peer.send(rst(next_seq))  # exactly RCV.NXT: the server's connection is reset
    finally:
        peer.close()
        thread.join(TIMEOUT)
        client.close()
    return outcome


def craft_syn_closed(sniffer: Sniffer) -> dict[str, object]:
    """A crafted SYN to a port where nothing listens: the kernel answers RST|ACK."""
    peer = CraftedPeer(sniffer, scenario="craft-syn-closed")
    try:
        peer.send(_tcp("S", CLIENT_ISN, dport=9))
        answer = peer.expect(_from_server(RST | ACK, port=9))
    finally:
        peer.close()
    return {"rst_ack": answer is not None and answer.ack == CLIENT_ISN + 1}


def craft_udp_closed(sniffer: Sniffer) -> dict[str, object]:
    """A crafted UDP datagram to a closed port: the kernel answers ICMP port unreachable (type 3 code 3)."""
    from scapy.layers.inet import IP, UDP

    peer = CraftedPeer(sniffer, scenario="craft-udp-closed")
    try:
        peer.send(IP(src=HOST, dst=HOST) / UDP(sport=CLIENT_PORT, dport=5354) / b"anyone there?")
        icmp = peer.expect(lambda r: r.transport == 1 and r.icmp_type == 3)
    finally:
        peer.close()
    return {"icmp": (icmp.icmp_type, icmp.icmp_code) if icmp is not None else None}


def craft_simultaneous_open(sniffer: Sniffer) -> dict[str, object]:
    """A kernel client and a crafted peer send SYNs to each other at once: both pass SYN-RECEIVED.

    Both go SYN-SENT, then SYN-RECEIVED, then ESTABLISHED (RFC 9293 s3.5, Figure 7)."""
    outcome: dict[str, object] = {}
    peer = CraftedPeer(sniffer, scenario="craft-simultaneous-open")
    client = socket.socket()
    client.settimeout(TIMEOUT)
    client.bind((HOST, 40001))
    connected = threading.Event()

    def connect() -> None:
        try:
            client.connect((HOST, CLIENT_PORT))
            outcome["kernel"] = "connected"
        except OSError as error:
            outcome["kernel"] = f"failed: {error}"
        connected.set()

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    try:
        syn = peer.require(
            lambda r: r.transport == PROTOCOL_TCP and r.destination_port == CLIENT_PORT and r.tcp_flags == SYN,
            f"the kernel client's SYN to port {CLIENT_PORT} was not captured",
        )
        from scapy.layers.inet import IP, TCP

        # Our own SYN (not an answer to theirs): both ends are now in SYN-SENT.
        peer.send(IP(src=HOST, dst=HOST) / TCP(sport=CLIENT_PORT, dport=40001, flags="S", seq=CLIENT_ISN))
        peer.require(
            lambda r: r.transport == PROTOCOL_TCP and r.source_port == 40001 and r.tcp_flags == SYN | ACK,
            "the kernel did not answer the crafted SYN with a SYN-ACK",
        )
        peer.send(
            IP(src=HOST, dst=HOST)
            / TCP(sport=CLIENT_PORT, dport=40001, flags="SA", seq=CLIENT_ISN, ack=(syn.seq + 1) & 0xFFFFFFFF)
        )
        connected.wait(WAIT)
    finally:
        peer.close()
        thread.join(TIMEOUT)
        client.close()
    return outcome


def suppress_kernel_resets(port: int) -> tuple[tuple[str, ...], ...]:
    """nftables: drop, on output, the RSTs the kernel would send from our crafted port (it owns no
    socket there); the crafted packets carry a mark and pass."""
    rule = f"tcp sport {port} tcp flags & rst == rst meta mark != {CRAFTED_MARK} drop"
    return (
        ("nft", "add", "table", "inet", "sockstory"),
        ("nft", "add", "chain", "inet", "sockstory", "output", "{ type filter hook output priority 0 ; }"),
        ("nft", "add", "rule", "inet", "sockstory", "output", *rule.split()),
    )
