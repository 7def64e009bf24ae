"""Chapter 7, can we control throughput: the answers measured on committed captures, and for real (root)
by the notebook's own experiment functions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.scenarios.test_scenarios import host_state
from visualizer import chapters
from visualizer.analysis.throughput import RunThroughput, compare_runs
from visualizer.chapters import throughput as chapter
from visualizer.chapters.throughput import (
    GOODPUT_SHARE,
    RFC6928_INITIAL_WINDOW,
    CongestionAnswer,
    congestion_answer,
    narration_between,
    narration_excerpt,
    rate_limit_answer,
    window_answer,
)
from visualizer.errors import UsageError

DATA = Path(__file__).parent.parent / "data" / "throughput"
RATE_LIMITED = DATA / "throughput-rate-1mbit.pcap"
LOSSY = DATA / "throughput-rate-1mbit-queue-100ms-reno.pcap"
SMALL_BUFFER = DATA / "throughput-rcvbuf-4096-reno.pcap"
HOST_CONGESTION_CONTROL = Path("/proc/sys/net/ipv4/tcp_congestion_control")


def measured(path: Path) -> tuple[chapters.Experiment, RunThroughput]:
    experiment = chapters.load(path)
    (measure,) = compare_runs([(path.stem, experiment.frames_of(0))], stories=[experiment.kernel])
    return experiment, measure


# -- On committed captures ------------------------------------------------------------------------


def test_a_rate_limit_delivers_the_payloads_share_of_its_rate() -> None:
    experiment, measure = measured(RATE_LIMITED)
    answer = rate_limit_answer(measure, experiment.frames_of(0), 1_000_000)
    assert answer.goodput.bits_per_second == pytest.approx(1_000_000, rel=0.1)
    assert answer.goodput.bits_per_second == pytest.approx(answer.expected_goodput, rel=0.05)
    assert answer.wire.bits_per_second == pytest.approx(1_000_000, rel=0.05)
    assert GOODPUT_SHARE == pytest.approx(1448 / 1514)
    # the ACKs that bound the steady part are the receiver's, at its start and end
    numbers = {frame.record.number: frame for frame in experiment.frames_of(0)}
    first, last = numbers[answer.first_frame], numbers[answer.last_frame]
    assert (first.record.source_port, last.record.source_port) == (8093, 8093)
    assert first.record.timestamp_ns >= answer.goodput.start_ns and answer.first_frame < answer.last_frame
    assert answer.retransmissions == 0
    assert answer.read.bytes == 0  # no program's count in a loaded capture


def test_a_small_receive_buffer_makes_the_sender_stop_after_every_window() -> None:
    experiment, measure = measured(SMALL_BUFFER)
    answer = window_answer(measure, experiment.frames_of(0), 4096)
    assert answer.overshoots == 0 and answer.largest_flight <= answer.largest_window <= 2 * 4096
    assert answer.largest_window == 2 * 1448  # two segments: the window full after every second one
    assert answer.full_window_share == pytest.approx(0.5, abs=0.1)
    assert answer.rounds > 20 and answer.bytes_per_round == pytest.approx(answer.largest_window, rel=0.1)
    assert answer.round_seconds == pytest.approx(answer.goodput.seconds / answer.rounds)
    assert answer.fewest_round_trips == -(-answer.goodput.bytes // 2896)
    assert answer.rounds >= answer.fewest_round_trips - 1  # rounds at the steady part's edges may fall outside
    assert answer.window_bound(0.020) == pytest.approx(2896 * 8 / 0.020)
    frames = {frame.record.number: frame for frame in experiment.frames_of(0)}
    assert all(frames[number].record.source_port != 8093 for number in answer.full_window_frames)
    assert len(answer.full_window_frames) == 3
    # the kernel never grew cwnd: the window, not cwnd, held the sender (RFC 7661)
    assert {cwnd for _, cwnd in measure.congestion_window} == {RFC6928_INITIAL_WINDOW}


def test_an_autotuned_window_is_never_what_holds_the_sender() -> None:
    experiment, measure = measured(RATE_LIMITED)
    answer = window_answer(measure, experiment.frames_of(0), None)
    assert answer.overshoots == 0 and answer.full_window == 0 and answer.rounds == 0
    assert answer.bytes_per_round == 0 and answer.round_seconds == 0
    assert answer.largest_window > answer.largest_flight > 0


def test_the_congestion_window_slow_starts_halves_at_a_loss_and_grows_by_one_per_window() -> None:
    experiment, measure = measured(LOSSY)
    assert experiment.kernel is not None
    answer = congestion_answer(measure, experiment.frames_of(0), experiment.kernel)
    assert_rfc5681(answer)
    assert answer.first_gap_frame > 0 and answer.first_retransmission_frame > answer.first_gap_frame
    assert [(reduction.cwnd_before, reduction.ssthresh) for reduction in answer.reductions] == [(13, 7), (14, 7)]
    first = answer.reductions[0]
    frames = {frame.record.number: frame for frame in experiment.frames_of(0)}
    assert frames[first.frame].record.source_port == 8093 and frames[first.frame].ack == first.ack
    # the kernel cut the window before it sent anything again (RFC 5681 s3.2 steps 2 and 3)
    assert first.time_ns < frames[answer.first_retransmission_frame].record.timestamp_ns
    assert answer.avoidance[0].cwnd_from == 7 and answer.avoidance[0].cwnd_to == 14


def test_without_the_kernels_samples_there_is_no_congestion_window() -> None:
    experiment, measure = measured(RATE_LIMITED)
    assert experiment.kernel is None
    lossy, _ = measured(LOSSY)
    assert lossy.kernel is not None
    with pytest.raises(UsageError, match="no tcp_probe sample of the sender"):
        congestion_answer(measure, experiment.frames_of(0), lossy.kernel)  # another run's kernel: none of its sockets


def test_a_narration_excerpt_keeps_the_paragraphs_of_a_moment() -> None:
    text = "\n".join(
        [
            "TCP stream 0: the headline, 12 frames in 0.5 s",
            "1. [0.000000 s] The client asks (SYN, frame 1).",
            "2. [0.000100 s] The client's program calls send(65536) (32 frames from 4 to 93).",
            "3. [0.037207 s] The client sends, a long line that the narration wraps before its\n"
            "                frame (frame 60).",
            "4. [0.037221 s] The server acknowledges (frame 61).",
            "5. [0.037300 s] The server's program calls recv() (frames 4-8, 60).",
            "6. [0.040000 s] Later (frame 70).",
        ]
    )
    excerpt = narration_excerpt(text, 0.0372075, 0.0373)
    assert re.findall(r"^(\d+)\. ", excerpt, re.MULTILINE) == ["3", "4", "5"]  # the calls between too
    assert "its\n                frame (frame 60)." in excerpt  # a wrapped paragraph whole
    assert narration_excerpt(text, 1.0, 2.0) == ""
    experiment = chapters.load(LOSSY)
    moment = narration_between(experiment, 34, 36)
    assert re.match(r"\d+\. \[0\.146551 s\]", moment) and "(frame 34)" in moment and "(frames 35-41;" in moment
    assert "(frame 33)" not in moment and "\n15. " not in moment


def assert_rfc5681(answer: CongestionAnswer) -> None:
    """What RFC 5681 s3.1 (and RFC 6928) guarantee of a Reno sender's congestion window."""
    assert answer.initial_window == RFC6928_INITIAL_WINDOW
    assert answer.slow_start_peak > RFC6928_INITIAL_WINDOW  # slow start grew it before the first loss
    assert answer.reductions and answer.retransmissions >= 1
    for reduction in answer.reductions:
        # ssthresh = max(FlightSize / 2, 2 SMSS) (eq. 4); Linux's Reno halves cwnd. The sample before may
        # miss the growth of one ACK (at most two segments) when a timer, not that ACK, found the loss.
        assert reduction.cwnd_before // 2 <= reduction.ssthresh <= max((reduction.cwnd_before + 2) // 2, 2)
    for stretch in answer.avoidance:
        # congestion avoidance: at most one segment more per window acknowledged (eq. 3)
        windows = stretch.acknowledged / answer.segment_size / stretch.cwnd_from
        assert stretch.cwnd_to - stretch.cwnd_from <= windows + 1
    assert any(stretch.cwnd_to - stretch.cwnd_from >= 3 for stretch in answer.avoidance)  # it did grow, linearly


# -- For real (root): the notebook's experiments ----------------------------------------------------


@pytest.mark.root
def test_throughput_under_a_rate_limit_is_within_ten_percent_of_the_rate(tmp_path: Path) -> None:
    """The must-show: at 2 and 8 Mbit/s the steady goodput is within 10% of the configured rate (it is
    the payload's 95.6% share of it), and the namespace's congestion control is not the host's."""
    before, congestion_control = host_state(), HOST_CONGESTION_CONTROL.read_text()
    runs = chapter.rate_limit_runs(tmp_path)
    assert host_state() == before and HOST_CONGESTION_CONTROL.read_text() == congestion_control
    assert [run.settings.rate for run in runs] == list(chapter.RATES)
    for run in runs:
        assert run.run.result.kernel_drops == 0 and run.run.read == run.run.sent
        assert run.settings.rate is not None
        answer = rate_limit_answer(run.measured, run.frames, run.settings.rate)
        assert answer.goodput.seconds > 1.0  # 80% of the bytes: a steady part, not a blip
        assert answer.goodput.bits_per_second == pytest.approx(answer.configured, rel=0.1)
        assert answer.read.bits_per_second == pytest.approx(answer.configured, rel=0.1)
        assert answer.wire.bits_per_second == pytest.approx(answer.configured, rel=0.05)
        assert answer.retransmissions == 0  # the queue holds everything
        # the sender's cwnd was sampled to the end: it closed only once all was read
        assert run.measured.congestion_window[-1][0] >= run.measured.steady.end_ns


@pytest.mark.root
def test_the_receive_window_bounds_the_flight(tmp_path: Path) -> None:
    """Both runs over a 20 ms path delay: no segment beyond the window; the small buffer's window a few
    segments, filled round after round, cwnd never grown, its goodput the window over the round trip the
    capture measured (RFC 7323 s1); the autotuned window far larger and almost never full, far faster."""
    before = host_state()
    small, large = chapter.buffer_runs(tmp_path)
    assert host_state() == before, "no qdisc, filter, device, mount or sysctl may remain"
    answers = [window_answer(run.measured, run.frames, run.settings.receive_buffer) for run in (small, large)]
    assert all(answer.overshoots == 0 for answer in answers)
    tight, wide = answers
    assert tight.largest_flight <= tight.largest_window <= 2 * chapter.SMALL_BUFFER
    assert tight.full_window_share > 0.2 and tight.rounds > 100
    # cwnd never grew (a spurious retransmission after a CPU stall may cut it: never above 10, RFC 7661)
    assert max(cwnd for _, cwnd in small.measured.congestion_window) == RFC6928_INITIAL_WINDOW
    assert wide.largest_flight > 10 * tight.largest_window and wide.full_window_share < tight.full_window_share / 4
    # the same bytes need ten times the round trips or more; how long one lasts on loopback is CPU time
    assert tight.fewest_round_trips > 10 * wide.fewest_round_trips
    assert tight.rounds >= tight.fewest_round_trips / 2  # the window stopped it every other window at least
    # the round trip is the path's delay, not CPU time, and the window over it is the goodput
    assert all(chapter.DELAY_MS * 1e6 <= answer.round_trip_ns < 3 * chapter.DELAY_MS * 1e6 for answer in answers)
    assert tight.round_trip_ns < 1.2 * chapter.DELAY_MS * 1e6
    assert tight.goodput.bits_per_second == pytest.approx(tight.window_bound_in_force, rel=0.2)
    assert wide.goodput.bits_per_second > 5 * tight.goodput.bits_per_second


@pytest.mark.root
def test_the_congestion_window_follows_rfc_5681(tmp_path: Path) -> None:
    run = chapter.congestion_run(tmp_path)
    assert run.experiment.kernel is not None
    answer = congestion_answer(run.measured, run.frames, run.experiment.kernel)
    assert_rfc5681(answer)
    assert len(answer.reductions) >= 3  # a sawtooth, not one loss
    assert answer.first_gap_frame > 0  # the queue dropped before the capture point
