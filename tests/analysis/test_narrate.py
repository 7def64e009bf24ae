"""The narration of a conversation (visualizer.analysis.narrate), pinned on the committed captures.

The full texts of story, loss and refused are golden strings, reviewed line by line against the
ladder and the RFCs; the properties hold for every scenario capture: every finding of every frame is
told (its frame cited, its words used), no sentence cites a frame of another conversation, and every
state change of both ends is said.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.packets import SYN, Conversation
from tests.test_cli import run
from visualizer.analysis import Analyzer, analyse
from visualizer.analysis.narrate import FINDING_TERMS, Sentence, cite_frames, narrate, server_spoke_first
from visualizer.analysis.report import FrameAnalysis, in_stream
from visualizer.pipeline import kernel_story, select_streams

ROOT = Path(__file__).parent.parent.parent
SCENARIOS = ROOT / "tests" / "data" / "scenarios" / "captures"
KERNEL = ROOT / "tests" / "data" / "kernel"
CAPTURES = sorted(SCENARIOS.glob("*.pcap")) + sorted((ROOT / "captures").glob("*.pcap"))


STORY = """\
TCP stream 0: the client 127.0.0.1:56566 and the server 127.0.0.1:8080, 10 frames in 0.050611 s, complete

1. [0.000000 s] The client at 127.0.0.1:56566 asks the server at 127.0.0.1:8080 to open a
                connection, offering a maximum segment size of 65,495 bytes, window scaling ×1024,
                SACK and timestamps. The client is now in SYN-SENT and the server (listening until
                now) in SYN-RECEIVED (SYN, frame 1; RFC 9293 s3.5).
2. [0.000023 s] The server accepts: it acknowledges the client's SYN and sends its own, offering a
                maximum segment size of 65,495 bytes, window scaling ×1024, SACK and timestamps. The
                client is now in ESTABLISHED (SYN-ACK, frame 2; RFC 9293 s3.5).
3. [0.000039 s] The client acknowledges the server's SYN (ACK 1): the connection is open. The server
                is now in ESTABLISHED (frame 3; RFC 9293 s3.5).
4. [0.000077 s] The client sends 12 bytes (seq 1-12): "tic tac toe?" (frame 4).
5. [0.000084 s] The server acknowledges bytes 1-12 (ACK 13) (frame 5).
6. [0.000138 s] The server sends 27 bytes (seq 1-27): "X wins, always. Play aga…" (frame 6).
7. [0.000157 s] The client acknowledges bytes 1-27 (ACK 28) (frame 7).
8. [0.050459 s] The client closes its side: it has nothing more to send. The client is now in
                FIN-WAIT-1 and the server in CLOSE-WAIT (FIN, frame 8; RFC 9293 s3.6).
9. [0.050588 s] The server closes its side: it has nothing more to send, acknowledging the client's
                FIN in the same segment. The server is now in LAST-ACK and the client in TIME-WAIT,
                where it waits twice the maximum segment lifetime before forgetting the connection
                (FIN, frame 9; RFC 9293 s3.6).
10. [0.050611 s] The client acknowledges the server's FIN (ACK 29). The server is now in CLOSED
                 (frame 10; RFC 9293 s3.6).
"""

LOSS = """\
TCP stream 0: the client 127.0.0.1:36180 and the server 127.0.0.1:8089, 104 frames in 0.301480 s, complete

1. [0.000000 s] The client at 127.0.0.1:36180 asks the server at 127.0.0.1:8089 to open a
                connection, offering a maximum segment size of 1,000 bytes, window scaling ×1024,
                SACK and timestamps. The client is now in SYN-SENT and the server (listening until
                now) in SYN-RECEIVED (SYN, frame 1; RFC 9293 s3.5).
2. [0.000015 s] The server accepts: it acknowledges the client's SYN and sends its own, offering a
                maximum segment size of 65,495 bytes, window scaling ×1024, SACK and timestamps. The
                client is now in ESTABLISHED (SYN-ACK, frame 2; RFC 9293 s3.5).
3. [0.000027 s] The client acknowledges the server's SYN (ACK 1): the connection is open. The server
                is now in ESTABLISHED (frame 3; RFC 9293 s3.5).
4. [0.000168 s] The client sends 4,940 bytes in 5 segments (988 bytes each; seq 1-4940); the server
                acknowledges up to byte 4940 (ACK 4941) in 5 ACKs (frames 4-13).
5. [0.000215 s] The client sends 988 bytes (seq 4941-5928): "LLLLLLLLLLLLLLLLLLLLLLLL…". This
                segment is lost: it never reached the server, which acknowledged nothing of it
                before it was sent again (frame 43) and SACKed the data after it (frame 19); the
                capture saw it before the loss (frames 14, 19, 43).
6. [0.000216 s] The client sends 3,952 bytes in 4 segments (988 bytes each; seq 5929-9880) (frames
                15-18).
7. [0.000235 s] The server keeps acknowledging only up to byte 4940: 13 duplicate ACKs (frames 19,
                21-22, 27-30, 37-42) repeat its ACK 4941 of frame 13. Their SACK blocks tell the
                client which bytes after the gap did arrive: from 5929-6917 to 5929-19761. Between
                them, a window update (frame 20) changes only its advertised window, to 128,000
                bytes. Meanwhile (frames 23-26, 31-36) the client sends 9,880 bytes in 10 segments
                (988 bytes each; seq 9881-19760) (frames 19-42; RFC 5681 s3.2; RFC 2018; RFC 9293
                s3.8.6).
8. [0.000457 s] The client sends the 988 bytes of frame 14 again (seq 4941-5928). A fast
                retransmission: 13 duplicate ACKs told the client that the server misses it, so it
                does not wait for its retransmission timer. The server's next ACK (frame 44) jumps
                to 19761: with the gap filled, it holds every byte up to 19760 (frames 14, 19,
                21-22, 27-30, 37-44; RFC 5681 s3.2).
9. [0.000461 s] The client sends 40,240 bytes in 41 segments (988 bytes each, the last 720; seq
                19761-60000); the server acknowledges up to byte 60000 (ACK 60001) in 17 ACKs
                (frames 44-101).
10. [0.301215 s] The client closes its side: it has nothing more to send. The client is now in
                 FIN-WAIT-1 and the server in CLOSE-WAIT (FIN, frame 102; RFC 9293 s3.6).
11. [0.301453 s] The server closes its side: it has nothing more to send, acknowledging the client's
                 FIN in the same segment. The server is now in LAST-ACK and the client in TIME-WAIT,
                 where it waits twice the maximum segment lifetime before forgetting the connection
                 (FIN, frame 103; RFC 9293 s3.6).
12. [0.301480 s] The client acknowledges the server's FIN (ACK 2). The server is now in CLOSED
                 (frame 104; RFC 9293 s3.6).
"""

REFUSED = """\
TCP stream 0: the client 127.0.0.1:49590 and the server 127.0.0.1:9, 2 frames in 0.000217 s, refused

1. [0.000000 s] The client at 127.0.0.1:49590 asks the server at 127.0.0.1:9 to open a connection,
                offering a maximum segment size of 65,495 bytes, window scaling ×1024, SACK and
                timestamps. The client is now in SYN-SENT (SYN, frame 1; RFC 9293 s3.5).
2. [0.000217 s] Nothing listens on 127.0.0.1:9: the host 127.0.0.1 answers the SYN (frame 1) with a
                RST, and the connection is refused. The client is now in CLOSED (RST, frames 1-2;
                RFC 9293 s3.10.7.1).
"""


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (ROOT / "captures" / "story.pcap", STORY),
        (SCENARIOS / "loss.pcap", LOSS),
        (ROOT / "captures" / "refused.pcap", REFUSED),
    ],
    ids=["story", "loss", "refused"],
)
def test_the_narration_reads_as_reviewed(path: Path, expected: str) -> None:
    code, out, err = run("narrate", str(path))
    assert (code, err) == (0, "")
    assert out == expected


def _narrations(path: Path) -> list[tuple[object, set[int], list[FrameAnalysis], list[Sentence]]]:
    report, frames = select_streams(path, "tcp", ())
    story = kernel_story(path, frames)
    told = []
    for conversation in report.conversations:
        own = [frame for frame in frames if in_stream(frame, conversation.protocol, conversation.stream)]
        narration = narrate(frames, conversation, origin_ns=report.first_time_ns, kernel=story)
        told.append((conversation, {frame.record.number for frame in own}, own, narration.sentences))
    return told


@pytest.mark.parametrize(
    "path", CAPTURES + sorted(KERNEL.glob("*.pcap")), ids=lambda path: path.parent.name + "/" + path.stem
)
def test_every_finding_is_told_with_its_frame_and_words(path: Path) -> None:
    for conversation, _, own, sentences in _narrations(path):
        for frame in own:
            for finding in frame.findings:
                number = frame.record.number
                telling = [
                    sentence
                    for sentence in sentences
                    if (finding.kind, number) in sentence.findings
                    and number in sentence.frames
                    and FINDING_TERMS[finding.kind].lower() in sentence.text.lower()
                ]
                assert telling, (conversation, finding)


@pytest.mark.parametrize(
    "path", CAPTURES + sorted(KERNEL.glob("*.pcap")), ids=lambda path: path.parent.name + "/" + path.stem
)
def test_no_sentence_cites_a_frame_of_another_conversation(path: Path) -> None:
    for conversation, numbers, _, sentences in _narrations(path):
        for sentence in sentences:
            assert set(sentence.frames) <= numbers, (conversation, sentence)
            # The words cite the same frames: every frame number a citation range takes in is cited.
            for first, last in re.findall(r"(\d+)-(\d+)", cite_frames(sentence.frames)):
                assert set(range(int(first), int(last) + 1)) <= set(sentence.frames)


@pytest.mark.parametrize("path", CAPTURES, ids=lambda path: path.parent.name + "/" + path.stem)
def test_every_state_change_of_both_ends_is_said(path: Path) -> None:
    for conversation, _, own, sentences in _narrations(path):
        if conversation.protocol != "tcp":
            continue
        states: dict[tuple[str, int], str] = {}
        for frame in own:
            record = frame.record
            if frame.protocol != "tcp":
                continue
            for endpoint, state in (
                ((record.source, record.source_port), frame.state),
                ((record.destination, record.destination_port), frame.receiver_state),
            ):
                if endpoint in states and states[endpoint] != state:
                    assert any(
                        record.number in sentence.frames and state in sentence.text and not sentence.kernel
                        for sentence in sentences
                    ), (conversation, record.number, state)
                states[endpoint] = state


def test_a_long_transfer_stays_readable() -> None:
    """700 frames of the zero-window run become a few sentences: routine runs are summarised."""
    ((_, numbers, _, sentences),) = _narrations(SCENARIOS / "bulk.pcap")
    assert len(numbers) > 100
    assert len(sentences) <= 15
    summary = next(sentence for sentence in sentences if len(sentence.frames) > 50)
    assert re.search(r"sends [\d,]+ bytes in \d+ segments", summary.text)


def test_roles_follow_the_ladder_when_the_capture_starts_at_the_syn_ack() -> None:
    """The SYN not captured: the first frame's sender is the server, as the ladder names it."""
    _, frames = select_streams(ROOT / "captures" / "story.pcap", "tcp", ())
    analyzer = Analyzer(keep_frames=True)
    cut = list(analyzer.frames(frame.record for frame in frames[1:]))
    report = analyzer.finish()
    assert server_spoke_first(cut[0]) and not server_spoke_first(frames[0])
    narration = narrate(cut, report.conversations[0], origin_ns=report.first_time_ns)
    assert narration.title.startswith("TCP stream 0: the client 127.0.0.1:56566 and the server 127.0.0.1:8080")
    assert narration.sentences[0].text.startswith(
        "The capture starts at the server's answer: the server at 127.0.0.1:8080 accepts the connection that "
        "the client at 127.0.0.1:56566 asked for (its SYN was not captured)"
    )
    assert "The client acknowledges the server's SYN (ACK 1): the connection is open" in narration.sentences[1].text


def test_the_kernel_side_is_told_in_time_order_when_it_was_recorded() -> None:
    ((_, _, _, sentences),) = _narrations(KERNEL / "loss.pcap")
    kernel = [sentence for sentence in sentences if sentence.kernel]
    texts = [sentence.text for sentence in kernel]
    assert "The client's program calls send(60000) -> 60000" in texts
    drop = next(sentence for sentence in kernel if "drops" in sentence.text)
    assert drop.text == "The server's kernel drops frame 14 as it arrives (NETFILTER_DROP)" and drop.frames == (14,)
    assert any(text.startswith("The server's Recv-Q") for text in texts)
    times = [sentence.time_ns for sentence in sentences if sentence.time_ns is not None]
    # Kernel sentences go before the packet sentence that starts after them.
    index = sentences.index(drop)
    assert sentences[index - 1].time_ns <= drop.time_ns <= sentences[index + 1].time_ns
    assert times[0] < 0  # the server's socket(), bind() and listen() came before the first frame


def test_calls_far_apart_are_told_apart_each_at_its_time() -> None:
    ((_, _, _, sentences),) = _narrations(KERNEL / "story.pcap")
    calls = {sentence.text: sentence for sentence in sentences if "'s program calls" in sentence.text}
    read = calls["The client's program calls recv(100) -> 27"]
    close = calls["The client's program calls close() -> 0"]  # 20 ms later: not "recv(100) -> 27 and close()"
    assert read.time_ns is not None and close.time_ns is not None and close.time_ns - read.time_ns > 10_000_000
    fin = next(sentence for sentence in sentences if sentence.text.startswith("The client closes its side"))
    assert sentences.index(fin) == sentences.index(close) + 1  # the close() is told just before its FIN


def test_udp_datagrams_and_the_icmp_port_unreachable() -> None:
    udp = str(ROOT / "captures" / "udp.pcap")
    code, out, err = run("narrate", udp, "--stream", "1", "--protocol", "udp", "--format", "markdown")
    assert code == 0 and err == ""
    assert "sends a 15-byte datagram to the server at 127.0.0.1:9054" in out
    assert "port unreachable (type 3, code 3): nothing listens on UDP port 9054" in out
    assert "(ICMP, frames 5-6; RFC 792; RFC 1122 s4.1.3.1)." in out


def test_markdown_is_a_numbered_list() -> None:
    code, out, _ = run("narrate", str(ROOT / "captures" / "refused.pcap"), "--format", "markdown")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("**TCP stream 0") and lines[0].endswith("refused**")
    assert lines[2].startswith("1. `0.000000 s` The client at 127.0.0.1:49590")
    assert lines[3].startswith("2. `0.000217 s` Nothing listens on 127.0.0.1:9")


def test_several_conversations_without_stream_tell_the_first_tcp_one_and_say_so() -> None:
    code, out, err = run("narrate", str(SCENARIOS / "web.pcap"))
    assert code == 0
    assert out.startswith("TCP stream 0: ")
    assert err == (
        f"sockstory: {SCENARIOS / 'web.pcap'} has 15 conversations (TCP streams 0-11, UDP streams 0-2): "
        "telling TCP 0; choose another with --stream N [--protocol udp]\n"
    )


def test_an_absent_stream_names_the_streams_there_are() -> None:
    code, out, err = run("narrate", str(SCENARIOS / "web.pcap"), "--stream", "12")
    assert (code, out) == (2, "")
    assert err == (
        f"sockstory: error: {SCENARIOS / 'web.pcap'}: no TCP stream 12 (TCP streams 0-11, UDP streams 0-2)\n"
    )


def test_a_file_that_is_not_a_capture_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    code, out, err = run("narrate", str(bad))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and str(bad) in err and "Traceback" not in err


def test_cite_frames_never_takes_in_a_frame_it_does_not_cite() -> None:
    assert cite_frames([4]) == "frame 4"
    assert cite_frames([9, 4, 5, 6, 12]) == "frames 4-6, 9, 12"
    assert cite_frames(list(range(1, 40, 2))) == "20 frames from 1 to 39"


def _tell(talk: Conversation) -> list[Sentence]:
    report = analyse(talk.records(), keep_frames=True)
    return narrate(report.frame_analyses, report.conversations[0], origin_ns=report.first_time_ns).sentences


@pytest.mark.parametrize(
    ("times", "said"),
    [
        (
            (0.0, 1.0, 3.0, 7.0),
            "after waiting 1.00 s, 2.00 s and 4.00 s: no ACK came from the server in between, and each wait doubles "
            "the one before: the retransmission timer backs off.",
        ),
        ((0.0, 1.0, 2.0, 3.0), "after waiting 1.00 s, 1.00 s and 1.00 s: no ACK came from the server in between."),
    ],
    ids=["doubling", "steady"],
)
def test_a_backoff_is_claimed_only_when_the_waits_double(times: tuple[float, ...], said: str) -> None:
    """Hand-built: a SYN sent four times and never answered."""
    talk = Conversation()
    for time in times:
        talk.client_sends(time, 1000, 0, SYN)
    (sentence_1, sentence_2) = _tell(talk)
    assert sentence_1.label == "SYN" and sentence_1.frames == (1,)
    assert sentence_2.text.startswith("The client sends its SYN of frame 1 again 3 times (retransmission)")
    assert sentence_2.frames == (1, 2, 3, 4)
    assert sentence_2.text.endswith(said.rstrip("."))
