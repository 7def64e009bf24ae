"""Every endpoint's drawn path of states takes only RFC 9293 transitions, in every capture we have.

The RFC's transitions are written out here, from RFC 9293 (s3.3.2 Figure 5, simultaneous open and
close in Figures 7 and 13, the RST rules of s3.10.7, TIME-WAIT -> CLOSED after 2 MSL), and not
read from the analysis's own table: the test checks the table and the inference that applies it.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from visualizer.pipeline import analyse_file

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = sorted(
    [
        *(ROOT / "tests" / "data" / "scenarios" / "captures").glob("*.pcap"),
        *(ROOT / "tests" / "data" / "corpus" / "captures").glob("*.pcap*"),
        *(ROOT / "captures").glob("*.pcap"),
    ]
)

RFC_9293_TRANSITIONS = {
    ("CLOSED", "LISTEN"),  # passive OPEN
    ("CLOSED", "SYN-SENT"),  # active OPEN, snd SYN
    ("LISTEN", "SYN-RECEIVED"),  # rcv SYN, snd SYN,ACK
    ("LISTEN", "SYN-SENT"),  # SEND
    ("LISTEN", "CLOSED"),  # CLOSE
    ("SYN-SENT", "SYN-RECEIVED"),  # rcv SYN (simultaneous open, Figure 7)
    ("SYN-SENT", "ESTABLISHED"),  # rcv SYN,ACK, snd ACK
    ("SYN-SENT", "CLOSED"),  # CLOSE, or an acceptable RST (s3.10.7.3)
    ("SYN-RECEIVED", "ESTABLISHED"),  # rcv ACK of SYN
    ("SYN-RECEIVED", "FIN-WAIT-1"),  # CLOSE, snd FIN
    ("SYN-RECEIVED", "CLOSE-WAIT"),  # rcv FIN (s3.10.7.4, eighth check)
    ("SYN-RECEIVED", "LISTEN"),  # RST, passive open (s3.10.7.4)
    ("SYN-RECEIVED", "CLOSED"),  # RST, active open
    ("ESTABLISHED", "FIN-WAIT-1"),  # CLOSE, snd FIN
    ("ESTABLISHED", "CLOSE-WAIT"),  # rcv FIN
    ("ESTABLISHED", "CLOSED"),  # RST sent (ABORT) or received
    ("FIN-WAIT-1", "FIN-WAIT-2"),  # rcv ACK of FIN
    ("FIN-WAIT-1", "CLOSING"),  # rcv FIN (simultaneous close, Figure 13)
    ("FIN-WAIT-1", "TIME-WAIT"),  # rcv FIN with the ACK of our FIN (s3.10.7.4)
    ("FIN-WAIT-1", "CLOSED"),  # RST
    ("FIN-WAIT-2", "TIME-WAIT"),  # rcv FIN
    ("FIN-WAIT-2", "CLOSED"),  # RST
    ("CLOSE-WAIT", "LAST-ACK"),  # CLOSE, snd FIN
    ("CLOSE-WAIT", "CLOSED"),  # RST
    ("CLOSING", "TIME-WAIT"),  # rcv ACK of FIN
    ("CLOSING", "CLOSED"),  # RST
    ("LAST-ACK", "CLOSED"),  # rcv ACK of FIN
    ("TIME-WAIT", "CLOSED"),  # 2 MSL
}


ONE_FRAME_PATHS = {
    # A segment that shows its sender received the peer's FIN (its ACK covers it) and carries the
    # sender's own FIN: rcv FIN, then CLOSE, in the same frame.
    ("ESTABLISHED", "LAST-ACK"): "CLOSE-WAIT",
    ("SYN-RECEIVED", "LAST-ACK"): "CLOSE-WAIT",
}


def legal(before: str, after: str) -> bool:
    """One RFC transition, or one of the two-step paths a single frame can show (through an RFC state)."""
    if before == after or (before, after) in RFC_9293_TRANSITIONS:
        return True
    middle = ONE_FRAME_PATHS.get((before, after))
    return middle is not None and {(before, middle), (middle, after)} <= RFC_9293_TRANSITIONS


def paths(capture: Path) -> dict[tuple[int, str, int], list[tuple[int, str]]]:
    """(stream, address, port) -> [(frame, state after it)] for every TCP endpoint of the capture."""
    report = analyse_file(capture, keep_frames=True)
    found: dict[tuple[int, str, int], list[tuple[int, str]]] = defaultdict(list)
    for frame in report.frame_analyses:
        if frame.protocol != "tcp":
            continue
        record = frame.record
        found[(frame.stream, record.source, record.source_port)].append((record.number, frame.state))
        found[(frame.stream, record.destination, record.destination_port)].append((record.number, frame.receiver_state))
    return found


def test_the_walk_finds_an_illegal_path() -> None:
    assert not legal("CLOSE-WAIT", "FIN-WAIT-1")  # what simultaneous-close once drew
    assert not legal("ESTABLISHED", "SYN-SENT")
    assert not legal("LISTEN", "ESTABLISHED")
    assert legal("ESTABLISHED", "LAST-ACK") and legal("FIN-WAIT-1", "TIME-WAIT")


def test_every_capture_is_walked() -> None:
    names = {capture.name for capture in CAPTURES}
    assert {"simultaneous-close.pcap", "craft-simultaneous-open.pcap", "refused.pcap", "loss.pcap"} <= names
    assert len(CAPTURES) >= 45


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda path: path.name)
def test_each_endpoint_takes_only_rfc_9293_transitions(capture: Path) -> None:
    for endpoint, steps in paths(capture).items():
        for (_, before), (frame, after) in zip(steps, steps[1:]):
            assert legal(before, after), f"{capture.name} {endpoint}: {before} -> {after} at frame {frame}"
