"""The ``sockstory`` command line: argparse glue that returns an exit code.

Exit codes: 0 success; 1 the input could not be read at all (missing file, not a
capture, no permission); 2 a bad request (unknown option, stream or format);
3 the capture is damaged part-way: everything before the damage was analysed
and printed, and a warning says where it stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import itertools
import json
import re
import shlex
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, TextIO

from visualizer import __version__
from visualizer.errors import CaptureFileError, SockstoryError, UsageError, command_line

if TYPE_CHECKING:
    from pathlib import Path

    from visualizer.analysis import report as analysis_report
    from visualizer.analysis.kernel import EndpointKernel, KernelStory
    from visualizer.analysis.report import ConversationSummary, FrameAnalysis, Report
    from visualizer.analysis.throughput import Progress, RunThroughput
    from visualizer.scenarios.runner import RecordResult, ScenarioResult
    from visualizer.scenarios.throughput import ThroughputSettings
    from visualizer.sources.kernel import KernelRecording

EXIT_OK = 0
EXIT_UNREADABLE = 1
EXIT_USAGE = 2
EXIT_DAMAGED = 3

EVENT_COLUMNS = (
    "frame",
    "time",
    "src",
    "dst",
    "sport",
    "dport",
    "proto",
    "stream",
    "flags",
    "seq",
    "ack",
    "seq_raw",
    "ack_raw",
    "len",
    "window",
    "analysis",
    "state",
    "receiver_state",
    "checksum",
)

CALL_COLUMNS = (
    "time",
    "stream",
    "endpoint",
    "kind",
    "what",
    "result",
    "seq",
    "frames",
    "process",
    "thread",
    "fd",
)
CALL_KINDS = ("call", "state", "retransmission", "reset_sent", "reset_received", "drop")

_EXAMPLES = """\
examples:
  sockstory flows captures/story.pcap
      conversation table (like tshark -z conv,tcp -z conv,udp) with each TCP outcome
  sockstory events captures/story.pcap
      one row per frame: relative seq/ack, flags, window, analysis, both TCP states
  sockstory events big.pcapng --stream 3 --format jsonl > stream3.jsonl
  sockstory events capture.pcap | awk -F'\\t' '$16 ~ /retransmission/'
  sockstory draw captures/story.pcap -o story.svg
      the ladder diagram (also .png, .pdf, --format ascii or mermaid)

exit codes: 0 ok, 1 unreadable input, 2 bad request, 3 capture damaged part-way
(what could be read is printed, with a warning).
"""


class _Progress:
    """A one-line progress bar on a terminal's stderr; silent when piped."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self.stream = stream
        self.label = label
        self.last = 0.0
        self.started = time.monotonic()
        self.drawn = False

    def __call__(self, frames: int, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.1 and done < total:
            return
        self.last = now
        fraction = done / total if total else 1.0
        width = 30
        filled = int(fraction * width)
        rate = frames / max(now - self.started, 1e-9)
        self.stream.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%} {frames:,} frames ({rate:,.0f}/s)"
        )
        self.stream.flush()
        self.drawn = True

    def clear(self) -> None:
        if self.drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _as_root_examples(*examples: str) -> str:
    """Help examples of a command that needs root, written as they work from here (see command_line)."""
    return "\n".join(["examples (as root; as a user, put sudo first):", *(f"  {command_line(e)}" for e in examples)])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sockstory",
        description="A socket's story with real packets: read captures, analyse TCP and UDP "
        "conversations the way Wireshark does, and tell what happened.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sockstory {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    def add_live_output(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--out",
            default="captures/live",
            metavar="DIR",
            help="folder for the pcap and the diagram (default captures/live)",
        )
        command.add_argument("--format", choices=("png", "svg", "pdf"), default="png", help="diagram format")
        command.add_argument("-q", "--quiet", action="store_true", help="no summary line")
        command.add_argument(
            "--no-kernel",
            action="store_true",
            help="do not record the kernel's events (socket calls, states, queues, drops) beside the capture",
        )

    def add_common(command: argparse.ArgumentParser) -> None:
        command.add_argument("file", metavar="FILE", help="a pcap or pcapng capture")
        command.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary line")

    flows = commands.add_parser(
        "flows",
        help="conversation table with each TCP stream's outcome",
        description="List TCP and UDP conversations like tshark -z conv,tcp -z conv,udp, with each "
        "TCP stream's outcome (complete, reset, refused, unanswered, half-closed, open) and its events.",
        epilog="example:\n  sockstory flows captures/story.pcap",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common(flows)
    flows.add_argument("--format", choices=("table", "tsv", "json"), default="table", help="output format")

    events = commands.add_parser(
        "events",
        help="one row per frame: relative seq/ack, flags, analysis, TCP state",
        description="One row per frame with the columns: " + " ".join(EVENT_COLUMNS) + ". time is seconds "
        "since the first frame; flags are TCP flag names joined by '|'; seq/ack are relative "
        "(Wireshark's tcp.seq/tcp.ack); analysis names Wireshark's tcp.analysis.* flags, comma-separated; "
        "state is the sender's RFC 9293 state after the frame.",
        epilog="examples:\n  sockstory events captures/story.pcap\n"
        "  sockstory events big.pcap --stream 2 --format jsonl",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common(events)
    events.add_argument("--format", choices=("tsv", "jsonl"), default="tsv", help="output format (default tsv)")
    events.add_argument("--stream", type=int, metavar="N", help="only TCP or UDP stream N")
    events.add_argument("--protocol", choices=("tcp", "udp"), help="with --stream: a TCP (default) or a UDP stream")
    draw = commands.add_parser(
        "draw",
        help="ladder (sequence) diagram, or time-sequence graph, of one or more conversations",
        description="Draw a ladder diagram: one lifeline per endpoint, one arrow per frame labelled with "
        "relative numbers, each endpoint's TCP state, phases, and Wireshark's expert events linked back to "
        "the frames they refer to. Runs that repeat one situation (window-limited data, ACKs, probes, identical "
        "RSTs) fold into one row that says what it holds in each direction; rare events stay. Long ladders "
        "split into pages "
        "(numbered PNG/SVG files, or pages of one PDF). SVG arrows show the whole frame on hover. "
        "A capture of several conversations (without --stream) gets an overview at OUT (a timeline, one bar "
        "per conversation coloured by its outcome, with its stream number) and one ladder per conversation "
        "beside it: OUT-tcp-K.png, OUT-udp-K.png, OUT-other.png for frames of no conversation (or, for a PDF, "
        "the overview then every ladder in one file); beyond 40 conversations the overview only, beyond 500 "
        "an error: choose with --stream N. Text formats draw them in one ladder (8 at most).",
        epilog="examples:\n  sockstory draw captures/story.pcap -o story.svg\n"
        "  sockstory draw big.pcap --stream 3 -o stream3.pdf\n"
        "  sockstory draw web.pcap -o web.png    # web.png, web-tcp-0.png, web-tcp-1.png...\n"
        "  sockstory draw captures/udp.pcap --stream 0 --stream 1 --protocol udp -o udp.png\n"
        "  sockstory draw captures/story.pcap --format ascii\n"
        "  sockstory draw captures/story.pcap --format mermaid > story.mmd\n"
        "  sockstory draw transfer.pcap --stream 0 --time-sequence -o tsg.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common(draw)
    draw.add_argument(
        "--stream",
        type=int,
        action="append",
        metavar="N",
        help="a stream to draw (repeat for several, in one ladder); default: every conversation, one "
        "figure each, and their overview",
    )
    draw.add_argument("--protocol", choices=("tcp", "udp"), default="tcp", help="the kind of --stream (default tcp)")
    draw.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="output file: .png, .svg, .pdf, .txt or .mmd "
        "(default: the capture's name with .png in the current folder; text goes to stdout)",
    )
    draw.add_argument(
        "--format",
        choices=("png", "svg", "pdf", "ascii", "mermaid"),
        help="output format (default: from the output's extension)",
    )
    draw.add_argument(
        "--time",
        choices=("order", "real", "auto"),
        default="order",
        help="rows in frame order (default), spaced by real time, or auto",
    )
    draw.add_argument("--no-fold", action="store_true", help="draw every frame, even in long uneventful runs")
    draw.add_argument(
        "--rows-per-page",
        type=int,
        default=100,
        metavar="N",
        help="rows per page (default 100: a 700-frame lossy bulk transfer, folded, fits one)",
    )
    draw.add_argument(
        "--time-sequence",
        action="store_true",
        help="draw the Stevens/tcptrace time-sequence graph of one TCP stream instead",
    )
    story = commands.add_parser(
        "story",
        help="the main job: a real TCP conversation on loopback, sniffed, saved and drawn (needs root)",
        description="A client asks its friend at 127.0.0.1:8080 a tic-tac-toe question, the friend answers, "
        "both close: real kernel sockets in a private network namespace, every packet sniffed once, saved as a "
        "pcap and drawn as a ladder diagram.",
        epilog=_as_root_examples("story                # writes captures/live/story.pcap and story.png"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_live_output(story)

    scenarios = commands.add_parser(
        "scenarios",
        help="list the scenarios that make TCP/UDP behaviours happen for real",
        description="List the scenarios that 'sockstory run NAME' runs with real kernel sockets on loopback.",
    )
    scenarios.set_defaults(quiet=True)

    run = commands.add_parser(
        "run",
        help="run one scenario for real: capture it, save the pcap, optionally draw it (needs root)",
        description="Run a scenario in a private network namespace (its nftables rules and offload settings "
        "vanish with it), sniff its loopback, save OUT/NAME.pcap, and with --draw the ladder diagram.",
        epilog=_as_root_examples("run loss --draw", "run zero-window --out /tmp/zw --draw"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("name", metavar="NAME", help="a scenario (see 'sockstory scenarios')")
    run.add_argument("--draw", action="store_true", help="also draw the ladder diagram")
    add_live_output(run)

    throughput = commands.add_parser(
        "throughput",
        help="a bulk transfer's throughput under settings (rate limit, receive buffer), run vs run (needs root)",
        description="A client sends bytes to a server through the kernel, in a private network namespace whose lo "
        "has a 1500-byte MTU, offloads off, and optionally a tbf rate limit and a path delay; every packet is sniffed "
        "once and the kernel's events recorded (OUT/NAME.pcap, NAME.kernel.jsonl). Throughput is measured from the "
        "capture (bytes acknowledged), from the receiving program (bytes read) and on the wire; the sender's "
        "congestion window comes from the kernel. Give --rate or --rcvbuf more than once to compare runs: each "
        "value is a run.",
        epilog=_as_root_examples(
            "throughput --rate 2mbit --rate 8mbit --draw",
            "throughput --rcvbuf 4096 --rcvbuf default --delay 20 --draw  # throughput <= window / RTT",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    throughput.add_argument("--rate", action="append", metavar="R", help="tbf rate (4mbit, 500kbit...) or none")
    throughput.add_argument("--rcvbuf", action="append", metavar="N", help="server's SO_RCVBUF in bytes, or default")
    throughput.add_argument("--seconds", type=float, default=3.0, help="under a rate: about how long (default 3)")
    throughput.add_argument("--size", type=int, metavar="BYTES", help="bytes to send (default: rate x seconds)")
    throughput.add_argument("--latency", type=int, metavar="MS", help="tbf queue in ms (default: no drop)")
    throughput.add_argument(
        "--delay", type=int, metavar="MS", help="path delay: the server's segments held MS ms (the RTT; default none)"
    )
    throughput.add_argument(
        "--congestion", metavar="NAME", help="congestion control in the namespace (reno, cubic, bbr; default: host's)"
    )
    throughput.add_argument("--draw", action="store_true", help="also draw the run-vs-run figure (OUT/throughput)")
    add_live_output(throughput)
    compare = commands.add_parser(
        "compare",
        help="draw TCP streams of captures run vs run: bytes acknowledged, throughput, windows on one time axis",
        description="The run-vs-run figure of TCP streams (FILE:STREAM, stream 0 when omitted), each from its "
        "own first frame: bytes acknowledged, throughput over time, and the windows when the kernel's events "
        "were recorded beside the capture.",
        epilog="examples:\n  sockstory compare captures/live/nagle.pcap:0 captures/live/nagle.pcap:1 "
        "--label 'Nagle on' --label TCP_NODELAY -o nagle.png\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    compare.add_argument("runs", nargs="+", metavar="FILE[:STREAM]", help="a capture and one of its TCP streams")
    compare.add_argument("--label", action="append", default=[], help="a run's label, in order (default FILE:STREAM)")
    compare.add_argument("-o", "--output", required=True, metavar="OUT", help="output .png, .svg or .pdf")
    compare.add_argument("-q", "--quiet", action="store_true", help="no summary")

    calls = commands.add_parser(
        "calls",
        help="the socket calls and the kernel's own events of each TCP endpoint, from NAME.kernel.jsonl",
        description="One row per socket call of each TCP endpoint (socket, bind, listen, connect, accept, send, "
        "recv, shutdown, close, with its return value, the relative sequence numbers of its bytes and the frames "
        "that carried them), and per kernel event the capture's frames do not show: the kernel's own state "
        "changes, its retransmissions, resets and drops (with the drop's reason). Columns: "
        + " ".join(CALL_COLUMNS)
        + ". Needs the kernel events recorded beside the capture (sockstory run, story, record).",
        epilog="examples:\n  sockstory calls captures/live/story.pcap\n"
        "  sockstory calls captures/live/loss.pcap --kind retransmission --kind drop\n"
        "  sockstory calls out/record.pcap --format jsonl",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common(calls)
    calls.add_argument("--format", choices=("tsv", "jsonl"), default="tsv", help="output format (default tsv)")
    calls.add_argument("--stream", type=int, metavar="N", help="only TCP stream N")
    calls.add_argument(
        "--kind", action="append", choices=CALL_KINDS, help="only rows of this kind (repeat for several)"
    )

    narrate = commands.add_parser(
        "narrate",
        help="one conversation told in numbered plain-language sentences, citing frames and RFC sections",
        description="Tell one TCP or UDP conversation of a capture as numbered sentences computed from the "
        "analysis: the handshake, the data (long routine runs summarised), every finding (retransmissions, "
        "duplicate ACKs with SACK, zero windows, keep-alives, resets, bad checksums, ICMP errors...) and every "
        "state change of both ends, each sentence citing the frames that prove it and the RFC section that "
        "applies; with the programs' socket calls and the kernel's queues when kernel events were recorded "
        "beside the capture (NAME.kernel.jsonl). Times are seconds since the capture's first frame. Without "
        "--stream, a capture of several conversations tells its first TCP one (its first UDP one when it "
        "has no TCP) and says so.",
        epilog="examples:\n  sockstory narrate captures/story.pcap\n"
        "  sockstory narrate tests/data/scenarios/captures/web.pcap --stream 3\n"
        "  sockstory narrate captures/udp.pcap --stream 1 --protocol udp --format markdown",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common(narrate)
    narrate.add_argument("--stream", type=int, metavar="N", help="the conversation to tell (default: the first)")
    narrate.add_argument(
        "--protocol", choices=("tcp", "udp"), help="whose stream N (default tcp; udp when there is no TCP)"
    )
    narrate.add_argument(
        "--format", choices=("text", "markdown"), default="text", help="numbered lines (default) or a Markdown list"
    )

    record = commands.add_parser(
        "record",
        help="run any command in a private network namespace and record its packets and kernel events (needs root)",
        description="Run CMD in a private network namespace with loopback up, sniff every packet once into "
        "DIR/NAME.pcap and record the kernel events of its processes (socket calls, TCP states, queues, "
        "congestion figures, retransmissions, resets, drops) into DIR/NAME.kernel.jsonl. Every process the "
        "command starts ends with it. Ctrl-C or SIGTERM ends the command and keeps what was recorded.",
        epilog="example:\n  sudo sockstory record -o out -- sh -c "
        '"python3 -m http.server 8000 & sleep 1; curl -s localhost:8000 >/dev/null; kill %1"\n'
        "  sockstory calls out/record.pcap",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    record.add_argument("-o", "--out", default="captures/live", metavar="DIR", help="folder (default captures/live)")
    record.add_argument("--name", default="record", help="file name stem (default record)")
    record.add_argument("--draw", action="store_true", help="also draw the ladder diagram")
    record.add_argument("--format", choices=("png", "svg", "pdf"), default="png", help="diagram format")
    record.add_argument("--no-kernel", action="store_true", help="packets only: no kernel events")
    record.add_argument("-q", "--quiet", action="store_true", help="no summary")
    record.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ARGS...", help="the command to run")

    anatomy = commands.add_parser(
        "anatomy",
        help="draw one frame's headers as RFC-style bit diagrams, with its payload's hex dump",
        description="Draw frame N of a capture as its layers (Ethernet, IPv4/IPv6, TCP/UDP/ICMP), each header "
        "as 32-bit rows of fields named and decoded by Scapy, flag bits one by one, then the payload's hex dump.",
        epilog="example:\n  sockstory anatomy captures/story.pcap --frame 1 -o syn.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    anatomy.add_argument("file", metavar="FILE", help="a pcap or pcapng capture")
    anatomy.add_argument("--frame", type=int, required=True, metavar="N", help="the frame number (from 1)")
    anatomy.add_argument("-o", "--output", metavar="OUT", help="output .png, .svg or .pdf (default FILE-frameN.png)")
    anatomy.add_argument("-q", "--quiet", action="store_true", help="no summary line")

    states = commands.add_parser(
        "states",
        help="draw the TCP state diagram the analysis uses (RFC 9293 states)",
        description="Draw the state diagram from the same table the analysis applies to every endpoint.",
        epilog="example:\n  sockstory states -o tcp-states.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    states.add_argument("-o", "--output", default="tcp-states.png", metavar="OUT", help=".png, .svg or .pdf")
    states.set_defaults(quiet=True)

    capture = commands.add_parser(
        "capture",
        help="sniff an interface into a pcap file (needs root)",
        description="Capture an interface's frames (each loopback packet once) into a pcap file for "
        "--duration seconds or until Ctrl-C (exit 130) or SIGTERM (exit 143), and report the kernel's drop "
        "counters. The file is written as frames come: it is a valid capture at every moment.",
        epilog=_as_root_examples("capture --filter 'tcp port 8080' --duration 5 -o mine.pcap"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    capture.add_argument("--iface", default="lo", help="interface (default lo)")
    capture.add_argument("--filter", metavar="BPF", help="a BPF filter expression, as tcpdump takes")
    capture.add_argument("--duration", type=float, default=10.0, metavar="S", help="seconds (default 10)")
    capture.add_argument(
        "--buffer-size",
        type=_megabytes,
        default=32,
        metavar="MB",
        help="the kernel's ring buffer, in megabytes (default 32): frames wait there until written",
    )
    capture.add_argument("-o", "--output", required=True, metavar="FILE", help="the pcap file to write")
    capture.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    return parser


def _run_scenario_command(name: str, arguments: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pathlib import Path

    from visualizer.scenarios import SCENARIOS
    from visualizer.scenarios.runner import run_scenario

    draw = arguments.command == "story" or arguments.draw
    result = run_scenario(name, Path(arguments.out), kernel=not arguments.no_kernel)
    titles = (
        f"{name}, captured live ({result.frames} frames): {SCENARIOS[name].description}",
        f"{name}, captured live: {SCENARIOS[name].description.rstrip('.')}",
        f"{name}: ",
    )
    report, story, images = _analyse_live(result.pcap, draw, titles, arguments, err)
    _tell_written(result, images, out, err)
    _tell_conversations(report, story, out)
    return EXIT_OK


def _tell_written(result: ScenarioResult | RecordResult, images: list[Path], out: TextIO, err: TextIO) -> None:
    """What a live run wrote: the capture, the kernel events beside it, the diagrams; the kernel's drops."""
    out.write(f"sockstory: wrote {result.pcap} ({result.frames} frames, {result.kernel_drops} dropped by the kernel)\n")
    _tell_kernel(result.kernel, out, err)
    for image in images:
        out.write(f"sockstory: wrote {image}\n")
    if result.kernel_drops:
        err.write(f"sockstory: warning: the kernel dropped {result.kernel_drops} packets during the capture\n")


def _analyse_live(
    pcap: Path, draw: bool, titles: tuple[str, str, str], arguments: argparse.Namespace, err: TextIO
) -> tuple[Report, KernelStory | None, list[Path]]:
    """A live capture's report, its kernel story, and with ``draw`` its figures: the ladder (titled
    ``titles[0]``), or for several conversations their overview (headed ``titles[1]``, each ladder's
    title starting with ``titles[2]``) and one ladder each."""
    from visualizer.pipeline import kernel_story, select_streams
    from visualizer.scenarios.runner import give_to_sudo_user

    report, frames = select_streams(pcap, "tcp", ())  # every frame's analysis, whatever the file's size
    story = kernel_story(pcap, frames)
    images: list[Path] = []
    if draw:
        from visualizer.render.export import ROWS_PER_PAGE, save_ladder
        from visualizer.render.layout import build_ladder

        title, heading, describe = titles
        target = pcap.with_suffix(f".{arguments.format}")
        if len(report.conversations) > 1:  # nagle: one ladder each, and their overview
            images = _save_conversations(
                report,
                frames,
                target,
                heading=heading,
                describe=describe,
                file_format=arguments.format,
                fold=True,
                time="order",
                rows_per_page=ROWS_PER_PAGE,
                err=err,
                kernel=story,
            )
        else:
            layout = build_ladder(frames, origin_ns=report.first_time_ns, kernel=story)
            layout.title = title
            images = save_ladder(layout, target, file_format=arguments.format)
        give_to_sudo_user(*images)
    return report, story, images


def _tell_kernel(recording: KernelRecording | None, out: TextIO, err: TextIO) -> None:
    """One line on the kernel events recorded beside a capture, or on why there are none."""
    if recording is None:
        return
    if recording.missing:
        err.write(f"sockstory: kernel events not recorded: {recording.missing}; the packets alone follow\n")
        return
    out.write(
        f"sockstory: wrote {recording.path} ({recording.events:,} kernel events, {recording.lost_events} lost, "
        f"on the capture's clock within {recording.alignment_error_ns:,} ns)\n"
    )
    if recording.lost_events:
        err.write(f"sockstory: warning: {recording.lost_events} kernel events were lost (trace buffer overrun)\n")
    if recording.absent_events:
        err.write(f"sockstory: warning: this kernel lacks {', '.join(recording.absent_events)}\n")


def _tell_conversations(report: Report, story: KernelStory | None, out: TextIO) -> None:
    for conversation in report.conversations:
        events = _events_text(conversation)
        outcome = f", {conversation.outcome}" if conversation.outcome else ""
        frames = _count(conversation.frames, "frame")
        out.write(
            f"  {conversation.protocol.upper()} stream {conversation.stream}: {conversation.address_a}:"
            f"{conversation.port_a} <-> {conversation.address_b}:{conversation.port_b}, {frames}"
            f"{outcome}{'; ' + events if events else ''}\n"
        )
        if story is None or conversation.protocol != "tcp":
            continue
        for endpoint in story.of_stream(conversation.stream):
            if endpoint.calls:
                runs = [(text, len(list(run))) for text, run in itertools.groupby(call.text for call in endpoint.calls)]
                said = ", ".join(text if count == 1 else f"{text} (x{count})" for text, count in runs)
                out.write(f"    {endpoint.name} calls: {said}\n")
    if story is not None:
        for difference in story.state_differences:
            out.write(
                f"  kernel and inferred states differ at {difference.endpoint} (stream {difference.stream}): "
                f"kernel {' '.join(difference.kernel)}; inferred {' '.join(difference.inferred)}: "
                f"{difference.explanation}\n"
            )


def _run_record(arguments: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import signal
    from pathlib import Path

    from visualizer.scenarios.runner import record_command

    command = list(arguments.cmd)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError("record: name the command to run after --, e.g. sockstory record -- curl -s localhost")
    if not re.fullmatch(r"[\w.-]+", arguments.name):
        raise UsageError(f"record: --name {arguments.name!r} must be a plain file name stem")
    result = record_command(command, Path(arguments.out), name=arguments.name, kernel=not arguments.no_kernel)
    shown = shlex.join(command)
    titles = (f"{shown}, recorded ({result.frames} frames)", f"{shown}, recorded", "")
    report, story, images = _analyse_live(result.pcap, arguments.draw, titles, arguments, err)
    if result.stopped_by:
        err.write(f"sockstory: stopped by {signal.Signals(result.stopped_by).name}\n")
    elif result.status:
        err.write(f"sockstory: the command exited with status {result.status}\n")
    _tell_written(result, images, out, err)
    if not arguments.quiet:
        _tell_conversations(report, story, out)
    return 128 + result.stopped_by if result.stopped_by else EXIT_OK


def _throughput_settings(arguments: argparse.Namespace) -> list[ThroughputSettings]:
    """One setting per run: the option given more than once (at most one may be) varies, the rest is common."""
    from visualizer.scenarios.throughput import ThroughputSettings, parse_rate

    rates = [None if text.lower() == "none" else parse_rate(text) for text in arguments.rate or ["none"]]
    buffers = [None if text.lower() == "default" else _byte_count(text) for text in arguments.rcvbuf or ["default"]]
    if len(rates) > 1 and len(buffers) > 1:
        raise UsageError("throughput: vary --rate or --rcvbuf, not both (each value of the one varied is a run)")
    common = {
        "seconds": arguments.seconds,
        "size": arguments.size,
        "latency_ms": arguments.latency,
        "delay_ms": arguments.delay,
        "congestion_control": arguments.congestion,
    }
    return [
        ThroughputSettings(rate=rate, receive_buffer=buffer, **common)
        for rate in rates
        for buffer in buffers  # one of the two lists has a single value
    ]


def _byte_count(text: str) -> int:
    if not text.isdigit():
        raise UsageError(f"--rcvbuf {text!r}: a number of bytes, or default")
    return int(text)


def _run_throughput(arguments: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pathlib import Path

    from visualizer.analysis.throughput import progress_of
    from visualizer.pipeline import measure_runs
    from visualizer.scenarios.runner import give_to_sudo_user
    from visualizer.scenarios.throughput import run_throughput

    settings = _throughput_settings(arguments)
    folder = Path(arguments.out)
    if arguments.draw:
        folder.mkdir(parents=True, exist_ok=True)
        _check_writable(folder / f"throughput.{arguments.format}")
    runs = [run_throughput(setting, folder, kernel=not arguments.no_kernel) for setting in settings]
    applications = [progress_of([(run.started_ns, 0), *run.reads]) for run in runs]
    measured = measure_runs([(run.settings.label, run.pcap, 0) for run in runs], applications=applications)
    for run, measure, application in zip(runs, measured, applications, strict=True):
        _tell_written(run.result, [], out, err)
        if not arguments.quiet:
            out.write(_throughput_line(run.settings.label, run.sent, measure, application))
    if arguments.draw:
        from visualizer.render.compare import save_run_comparison

        image = save_run_comparison(
            measured,
            folder / f"throughput.{arguments.format}",
            title=f"Throughput, run vs run: {len(runs)} bulk transfers on loopback (1500-byte MTU)",
            limits=[setting.rate for setting in settings],
        )
        give_to_sudo_user(image)
        out.write(f"sockstory: wrote {image}\n")
    return EXIT_OK


def _throughput_line(label: str, sent: int, measure: RunThroughput, application: Progress | None) -> str:
    from visualizer.analysis.throughput import steady_rate
    from visualizer.scenarios.throughput import format_rate

    steady = measure.steady
    overall = format_rate(measure.overall.bits_per_second)
    said = [
        f"  {label}: {sent:,} bytes in {measure.overall.seconds:.3f} s; goodput {overall} overall, "
        f"{format_rate(steady.bits_per_second)} steady ({steady.seconds:.3f} s)",
    ]
    if application is not None:
        said.append(f"read by the server {format_rate(steady_rate(application).bits_per_second)} steady")
    said.append(f"on the wire {format_rate(measure.on_the_wire.bits_per_second)} steady")
    if measure.congestion_window:
        windows = [cwnd for _, cwnd in measure.congestion_window]
        said.append(f"cwnd {min(windows)}..{max(windows)} segments")
    if measure.receive_window:
        said.append(f"receive window up to {max(size for _, size in measure.receive_window):,} bytes")
    return "; ".join(said) + "\n"


def _run_compare(arguments: argparse.Namespace, out: TextIO) -> int:
    from pathlib import Path

    from visualizer.pipeline import measure_runs
    from visualizer.render.compare import save_run_comparison

    if len(arguments.label) > len(arguments.runs):
        raise UsageError(f"compare: {len(arguments.label)} labels for {len(arguments.runs)} runs")
    runs = []
    for index, spec in enumerate(arguments.runs):
        path, _, stream = spec.rpartition(":") if re.search(r":\d+$", spec) else (spec, "", "0")
        label = arguments.label[index] if index < len(arguments.label) else f"{Path(path).name}:{stream}"
        runs.append((label, path, int(stream)))
    target = Path(arguments.output)
    _check_writable(target)
    measured = measure_runs(runs)
    image = save_run_comparison(measured, target, title="Run vs run: " + ", ".join(label for label, *_ in runs))
    if not arguments.quiet:
        for measure in measured:
            out.write(_throughput_line(measure.label, measure.direction.payload, measure, None))
        out.write(f"sockstory: wrote {image}\n")
    return EXIT_OK


def _call_rows(story: KernelStory, origin: int) -> list[dict[str, object]]:
    """The rows of ``sockstory calls``: every endpoint's calls and kernel events, in time order."""
    rows: list[tuple[int, dict[str, object]]] = []

    def row(time_ns: int, endpoint: EndpointKernel, kind: str, what: str, **rest: object) -> None:
        values: dict[str, object] = dict.fromkeys(CALL_COLUMNS, "")
        values.update(
            time=_seconds(time_ns, origin), stream=endpoint.stream, endpoint=endpoint.name, kind=kind, what=what
        )
        values.update(rest)
        rows.append((time_ns, values))

    for endpoint in story.endpoints:
        for call in [*endpoint.listener_calls, *endpoint.calls]:
            row(
                call.time_ns,
                endpoint,
                "call",
                call.text.split(" -> ")[0],
                result=f"-{call.detail}" if call.result < 0 and call.detail else call.result,
                seq=f"{call.sequence[0]}-{call.sequence[1]}" if call.sequence else "",
                frames=",".join(str(frame) for frame in call.frames),
                process=call.process,
                thread=call.thread,
                fd=call.fd,
            )
        for change in endpoint.states:
            row(
                change.time_ns,
                endpoint,
                "state",
                f"{change.old} -> {change.new}",
                result=f"{change.kernel_old} -> {change.kernel_new}",
                frames=change.frame or "",
            )
        for mark in endpoint.marks:
            row(mark.time_ns, endpoint, mark.kind, mark.reason, frames=mark.frame or "")
    rows.sort(key=lambda item: item[0])
    return [values for _, values in rows]


def _run_calls(arguments: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from visualizer.pipeline import kernel_story, select_streams
    from visualizer.sources.kernel import sidecar_path

    report, frames = select_streams(arguments.file, "tcp", ())  # every frame's analysis, whatever the size
    if not report.frames and report.warnings:
        return _finish(report, arguments, err)
    story = kernel_story(arguments.file, frames)
    if story is None:
        raise CaptureFileError(
            arguments.file,
            f"no kernel events were recorded with it ({sidecar_path(arguments.file).name} is missing: "
            "record with sockstory run, story or record)",
        )
    if arguments.stream is not None and not story.of_stream(arguments.stream):
        raise UsageError(f"{arguments.file}: no TCP stream {arguments.stream} with kernel events")
    rows = [
        item
        for item in _call_rows(story, report.first_time_ns or 0)
        if (arguments.stream is None or item["stream"] == arguments.stream)
        and (not arguments.kind or item["kind"] in arguments.kind)
    ]
    if arguments.format == "jsonl":
        for item in rows:
            out.write(json.dumps(item) + "\n")
    else:
        out.write("\t".join(CALL_COLUMNS) + "\n")
        for item in rows:
            out.write("\t".join(str(value) for value in item.values()) + "\n")
    if story.lost_events:
        err.write(f"sockstory: warning: {story.lost_events} kernel events were lost while recording\n")
    return _finish(report, arguments, err, summary=False)


def _run_narrate(arguments: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from visualizer.analysis.narrate import narrate
    from visualizer.pipeline import analyse_file, kernel_story, select_streams
    from visualizer.sources.kernel import sidecar_path

    recorded = sidecar_path(arguments.file).exists()
    if recorded:  # a recording of ours: every frame kept, the kernel's join needs them
        report, frames = select_streams(arguments.file, "tcp", ())
    else:  # any capture: the report first (memory bounded), then the chosen stream's frames only
        report, frames = analyse_file(arguments.file), []
    if not report.frames and report.warnings:
        return _finish(report, arguments, err)
    protocol = arguments.protocol or ("tcp" if report.tcp_conversations() or not report.conversations else "udp")
    chosen = [conversation for conversation in report.conversations if conversation.protocol == protocol]
    if not report.conversations:
        raise UsageError(f"{arguments.file}: no TCP or UDP conversation to tell")
    if arguments.stream is None:
        if not chosen:
            raise UsageError(f"{arguments.file}: no {protocol.upper()} conversation ({_streams_text(report)})")
        conversation = chosen[0]
        if len(report.conversations) > 1 and not arguments.quiet:
            err.write(
                f"sockstory: {arguments.file} has {_count(len(report.conversations), 'conversation')} "
                f"({_streams_text(report)}): telling {protocol.upper()} {conversation.stream}; "
                "choose another with --stream N [--protocol udp]\n"
            )
    else:
        found = report.stream(protocol, arguments.stream)
        if found is None:
            raise UsageError(
                f"{arguments.file}: no {protocol.upper()} stream {arguments.stream} ({_streams_text(report)})"
            )
        conversation = found
    if not recorded:
        _, frames = select_streams(arguments.file, protocol, (conversation.stream,))
    story = kernel_story(arguments.file, frames) if recorded and protocol == "tcp" else None
    narration = narrate(frames, conversation, origin_ns=report.first_time_ns, kernel=story)
    out.write(narration.text(markdown=arguments.format == "markdown"))
    return _finish(report, arguments, err, summary=False)


def _streams_text(report: Report) -> str:
    """``TCP streams 0-11, UDP streams 0-2``: the streams a capture has."""
    parts = []
    for protocol in ("tcp", "udp"):
        numbers = [conversation.stream for conversation in report.conversations if conversation.protocol == protocol]
        if numbers:
            span = str(numbers[0]) if len(numbers) == 1 else f"{min(numbers)}-{max(numbers)}"
            parts.append(f"{protocol.upper()} stream{'s' if len(numbers) > 1 else ''} {span}")
    return ", ".join(parts) or "no TCP or UDP conversation"


def _run_anatomy(arguments: argparse.Namespace, err: TextIO) -> int:
    from pathlib import Path

    from visualizer.sources import read_frame

    chosen = read_frame(arguments.file, arguments.frame)
    from visualizer.pipeline import iter_file_analysis
    from visualizer.render.anatomy import anatomy_of, draw_anatomy
    from visualizer.render.export import save_figure
    from visualizer.sources.checksum import ipv4_header_ok

    output = Path(arguments.output or f"{Path(arguments.file).stem}-frame{arguments.frame}.png")
    # The analysis up to the frame: the window scale of its handshake, its checksum verdict, its addresses.
    _, analysed, frames = iter_file_analysis(arguments.file)
    analysis = next((frame for frame in frames if frame.record.number == chosen.number), None)
    analysed.close()
    anatomy = anatomy_of(
        chosen.data,
        link_type=chosen.link_type,
        frame=chosen.number,
        analysis=analysis,
        file=arguments.file,
        ipv4_header_ok=ipv4_header_ok,
    )
    save_figure(functools.partial(draw_anatomy, anatomy), output)
    err.write(f"sockstory: wrote {output}\n")
    return EXIT_OK


def _run_states(arguments: argparse.Namespace, err: TextIO) -> int:
    from pathlib import Path

    from visualizer.render.export import save_figure
    from visualizer.render.states import draw_state_diagram

    output = save_figure(draw_state_diagram, Path(arguments.output), dpi=100)
    err.write(f"sockstory: wrote {output}\n")
    return EXIT_OK


def _run_scenarios(out: TextIO) -> int:
    from visualizer.scenarios import SCENARIOS

    width = max(len(name) for name in SCENARIOS)
    for crafted in (False, True):
        out.write("crafted with Scapy, sent on loopback:\n" if crafted else "kernel sockets:\n")
        for scenario in SCENARIOS.values():
            if scenario.crafted == crafted:
                out.write(f"  {scenario.name:{width}s}  {scenario.description}\n")
    out.write(f"\nrun one as root: {command_line('run NAME --draw')} (as a user, put sudo first)\n")
    return EXIT_OK


def _megabytes(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (MB), not {value}")
    return value


def _run_capture(arguments: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import signal
    import threading
    from pathlib import Path

    from visualizer.sources.live import capture_to_file, compile_filter, require_root

    if arguments.filter:
        compile_filter(arguments.filter)  # a bad expression is a bad request, with or without root
    require_root("capture")
    path = Path(arguments.output)
    _check_writable(path)
    # SIGINT and SIGTERM only ask the capture to stop: it closes the file after its last block,
    # says what it wrote, and exits 128 + the signal's number, as a shell reports a signal.
    stop = threading.Event()
    received: list[int] = []

    def on_signal(number: int, _frame: object) -> None:
        received.append(number)
        stop.set()

    def started() -> None:
        if not arguments.quiet:
            err.write(f"sockstory: capturing on {arguments.iface} into {path} (Ctrl-C stops)\n")
            err.flush()

    previous = {number: signal.signal(number, on_signal) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = capture_to_file(
            path,
            interface=arguments.iface,
            bpf=arguments.filter,
            duration=arguments.duration,
            buffer_bytes=arguments.buffer_size * 1024 * 1024,
            stop=stop,
            started=started,
        )
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    summary = f"wrote {path} ({result.frames} frames)"
    if received:
        err.write(f"sockstory: stopped by {signal.Signals(received[0]).name}: {summary}\n")
    elif not arguments.quiet:
        out.write(f"sockstory: {summary}\n")
    if result.kernel_drops:
        err.write(f"sockstory: warning: the kernel dropped {result.kernel_drops} packets during the capture\n")
    if result.frames_unread:
        err.write(
            f"sockstory: warning: {result.frames_unread} frames were still in the ring at the stop (not written)\n"
        )
    return 128 + received[0] if received else EXIT_OK


def _check_writable(path: Path) -> None:
    """A file can be written at ``path``: checked without creating it (nothing is left behind)."""
    import tempfile

    if path.is_dir():
        raise UsageError(f"{path}: is a directory")
    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}."):
            pass
    except OSError as error:
        raise UsageError(f"{path}: cannot write ({error.strerror or error})") from None


MAXIMUM_DEFAULT_CONVERSATIONS = 8
"""Conversations drawn in one text ladder (ASCII, Mermaid) without --stream."""
_SUFFIX_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf", ".txt": "ascii", ".mmd": "mermaid"}


IN_MEMORY_FRAMES = 100_000
"""Chosen streams of at most this many frames are selected in one list (fast: a large file's
chosen frames are picked from their bytes); more are streamed through the drawing, frame by frame."""


def _run_draw(arguments: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Everything that can be refused is refused before the frames are read: the request, then, from
    the report (conversations only, memory bounded), the streams; only then are the frames drawn."""
    from pathlib import Path

    from visualizer.files import check_writable
    from visualizer.render.export import save_ladder, save_time_sequence
    from visualizer.render.overview import MAXIMUM_OVERVIEW

    output = Path(arguments.output) if arguments.output else None
    file_format = arguments.format
    implied = _SUFFIX_FORMATS.get(output.suffix.lower()) if output is not None else None
    if file_format is None:
        if output is None:
            file_format = "png"
        elif implied is not None:
            file_format = implied
        else:
            raise UsageError(
                f"{output}: unknown output format {output.suffix or '(no extension)'!r}; "
                "use .png, .svg, .pdf, .txt or .mmd, or --format"
            )
    elif output is not None and implied is not None and implied != file_format:
        # A name that says one format and content in another (text in a .png) misleads every viewer.
        suffix = next(suffix for suffix, name in _SUFFIX_FORMATS.items() if name == file_format)
        raise UsageError(
            f"{output}: --format {file_format} does not match its extension {output.suffix!r}: "
            f"name it {output.with_suffix(suffix).name}, or leave --format out"
        )
    if arguments.rows_per_page < 5:
        raise UsageError("--rows-per-page must be at least 5")
    if arguments.time_sequence and file_format in ("ascii", "mermaid"):
        raise UsageError("the time-sequence graph is a figure: use .png, .svg or .pdf")
    if output is not None:
        check_writable(output)
    streams = set(arguments.stream or [])
    progress = None if arguments.quiet or not err.isatty() else _Progress(err, "reading")
    report = _analyse_long_lived(arguments.file, progress)
    if progress is not None:
        progress.clear()
    if not report.frames and report.warnings:
        return _finish(report, arguments, err)  # unreadable from the first frame
    conversations = [
        c for c in report.conversations if not streams or (c.protocol == arguments.protocol and c.stream in streams)
    ]
    missing = sorted(streams - {c.stream for c in conversations})
    if missing:
        raise UsageError(
            f"{arguments.file}: no {arguments.protocol.upper()} stream {missing[0]} (the capture has "
            f"{len(report.tcp_conversations())} TCP and {len(report.udp_conversations())} UDP streams)"
        )
    several = not streams and len(report.conversations) > 1 and not arguments.time_sequence
    if several and file_format in ("ascii", "mermaid") and len(report.conversations) > MAXIMUM_DEFAULT_CONVERSATIONS:
        raise UsageError(
            f"{arguments.file} has {len(report.conversations)} conversations: choose with --stream N "
            "(see sockstory flows)"
        )
    if several and file_format not in ("ascii", "mermaid") and len(report.conversations) > MAXIMUM_OVERVIEW:
        raise UsageError(
            f"{arguments.file} has {len(report.conversations)} conversations: too many to draw (the overview "
            f"shows at most {MAXIMUM_OVERVIEW}); choose one with --stream N (see sockstory flows)"
        )
    stem = Path(arguments.file).stem
    wanted = sum(c.frames for c in conversations) if streams else report.frames
    if arguments.time_sequence:
        from visualizer.render.time_sequence import TimeSequence

        tcp = [c for c in conversations if c.protocol == "tcp"]
        if len(tcp) != 1:
            raise UsageError(f"{arguments.file}: the time-sequence graph needs exactly one TCP stream (--stream N)")
        target = output or Path(f"{stem}-stream{tcp[0].stream}-time-sequence.{file_format}")
        check_writable(target)
        sequence = TimeSequence(tcp[0].stream)
        frames, story = _with_kernel_story(arguments.file, _frames_to_draw(arguments, streams, wanted, err), err)
        for frame in frames:
            sequence.add(frame)
        if not sequence.carries_data():
            raise UsageError(
                f"stream {tcp[0].stream} of {Path(arguments.file).name} carries no data: "
                "a time-sequence graph would be empty; draw its ladder"
            )
        written = save_time_sequence(sequence, tcp[0].stream, target, file_format=file_format, kernel=story)
    elif several and file_format not in ("ascii", "mermaid"):
        target = output or Path(f"{stem}.{file_format}")
        check_writable(target)
        frames, story = _with_kernel_story(arguments.file, _frames_to_draw(arguments, streams, wanted, err), err)
        written = _save_conversations(
            report,
            frames,
            target,
            heading=f"{Path(arguments.file).name}",
            file_format=file_format,
            fold=not arguments.no_fold,
            time=arguments.time,
            rows_per_page=arguments.rows_per_page,
            err=err,
            kernel=story,
        )
    else:
        from visualizer.render.layout import LadderBuilder
        from visualizer.render.overview import oriented

        target = output or Path(f"{stem}.{file_format}")
        if file_format not in ("ascii", "mermaid") or output is not None:
            check_writable(target)
        frames, story = _with_kernel_story(arguments.file, _frames_to_draw(arguments, streams, wanted, err), err)
        builder = LadderBuilder(fold=not arguments.no_fold, origin_ns=report.first_time_ns, kernel=story)
        for frame in frames:
            builder.add(frame)
        layout = builder.finish()
        if not layout.rows:
            raise UsageError(f"{arguments.file}: nothing to draw (no frames selected)")
        layout.title = _ladder_title([oriented(c, builder.responder_first) for c in conversations], layout.frames)
        if file_format in ("ascii", "mermaid") and output is None:
            from visualizer.render.text import to_ascii, to_mermaid

            out.write(to_ascii(layout) if file_format == "ascii" else to_mermaid(layout))
            return _finish(report, arguments, err)
        written = save_ladder(
            layout, target, file_format=file_format, time=arguments.time, rows_per_page=arguments.rows_per_page
        )
    for path in written:
        err.write(f"sockstory: wrote {path}\n")
    return _finish(report, arguments, err)


def _save_conversations(
    report: Report,
    frames: Iterable[FrameAnalysis],
    target: Path,
    *,
    heading: str,
    file_format: str,
    fold: bool,
    time: str,
    rows_per_page: int,
    err: TextIO,
    describe: str = "",
    kernel: KernelStory | None = None,
) -> list[Path]:
    """A capture of several conversations: the overview at ``target``, each conversation's ladder
    beside it (up to MAXIMUM_LADDERS of them; the overview alone beyond, said on ``err``), each with
    ``kernel``, the kernel's side of the capture, when it was recorded."""
    from visualizer.render.export import conversation_path, save_conversations
    from visualizer.render.overview import MAXIMUM_LADDERS, ConversationLadders, draw_overview

    conversations = report.conversations
    count = len(conversations)
    ladders = []
    other_times: list[int] = []
    if count <= MAXIMUM_LADDERS:
        sorter = ConversationLadders(conversations, fold=fold, origin_ns=report.first_time_ns, kernel=kernel)
        sorter.extend(frames)
        other_times = sorter.other_times
        conversations = sorter.oriented_conversations()

        def title(conversation: ConversationSummary | None, drawn: int) -> str:
            if conversation is None:
                return f"{describe}{drawn} frames of no TCP or UDP conversation"
            return describe + _ladder_title([conversation], drawn)

        ladders = sorter.finish(title)
    else:
        err.write(
            f"sockstory: {report.source or target}: {count} conversations, more than {MAXIMUM_LADDERS}: drew the "
            "overview only; draw one with --stream N\n"
        )
    # Beside each conversation in the overview: where its ladder is (its file, or its PDF page).
    files = {key: conversation_path(target, key).name for key, _ in ladders}
    if file_format == "pdf":
        page = 2
        for key, layout in ladders:
            files[key] = f"page {page}"
            page += len(layout.paginate(rows_per_page))
    choose = "draw one with --stream N" if count > MAXIMUM_LADDERS else "one figure each, or --stream N"
    overview = functools.partial(
        draw_overview,
        conversations,
        origin_ns=report.first_time_ns,
        other_times=other_times,
        files=files,
        title=f"{heading}: {count} conversations, {report.frames} frames ({choose})",
    )
    return save_conversations(
        overview, ladders, target, file_format=file_format, time=time, rows_per_page=rows_per_page
    )


def _with_kernel_story(
    path: str, frames: Iterable[FrameAnalysis], err: TextIO
) -> tuple[Iterable[FrameAnalysis], KernelStory | None]:
    """The frames, and the kernel's side of them when kernel events were recorded beside ``path``
    (a recording of ours: its frames are kept in memory to be joined; without one they stream). A
    damaged recording is said in one line, and the packets are drawn alone."""
    from visualizer.pipeline import kernel_story
    from visualizer.sources.kernel import sidecar_path

    if not sidecar_path(path).exists():
        return frames, None
    kept = list(frames)
    try:
        return kept, kernel_story(path, kept)
    except CaptureFileError as error:
        err.write(f"sockstory: warning: {error}; the figure shows the packets alone\n")
        return kept, None


def _frames_to_draw(
    arguments: argparse.Namespace, streams: set[int], wanted: int, err: TextIO
) -> Iterator[FrameAnalysis]:
    """The per-frame analyses of the chosen streams (every frame without ``--stream``), in frame order:
    a list when there are at most :data:`IN_MEMORY_FRAMES`, else streamed (memory stays bounded)."""
    from visualizer.analysis.report import in_stream
    from visualizer.pipeline import iter_file_analysis, select_streams

    progress = None if arguments.quiet or not err.isatty() else _Progress(err, "drawing")
    if wanted <= IN_MEMORY_FRAMES:
        _, selected = select_streams(arguments.file, arguments.protocol, streams, progress=progress)
        frames: Iterator[FrameAnalysis] = iter(selected)
        del selected
    else:
        _, _, frames = iter_file_analysis(arguments.file, progress=progress)
    protocol = arguments.protocol
    for frame in frames:
        if not streams or (frame.stream in streams and in_stream(frame, protocol, frame.stream)):
            yield frame
    if progress is not None:
        progress.clear()


def _ladder_title(conversations: list[ConversationSummary], frames: int) -> str:
    from visualizer.render.overview import conversation_endpoints

    if len(conversations) == 1:
        c = conversations[0]
        outcome = f", {c.outcome}" if c.outcome else ""
        return f"{c.protocol.upper()} stream {c.stream}: {conversation_endpoints(c)}{outcome} ({frames} frames)"
    if not conversations:
        return f"{frames} frames, no TCP or UDP conversation"
    names = ", ".join(f"{c.protocol.upper()} {c.stream}" for c in conversations[:6])
    more = "…" if len(conversations) > 6 else ""
    return f"{len(conversations)} conversations ({names}{more}), {frames} frames"


def _seconds(value: int | None, origin: int | None) -> str:
    if value is None or origin is None:
        return ""
    return f"{(value - origin) / 1e9:.6f}"


def _event_row(frame: analysis_report.FrameAnalysis, origin: int | None) -> dict[str, object]:
    from visualizer.analysis.report import analysis_names
    from visualizer.model import flag_text

    record = frame.record
    is_tcp = frame.protocol == "tcp"
    has_ports = frame.protocol in ("tcp", "udp")
    protocol = frame.protocol
    if protocol in ("ip", "other"):
        protocol = record.layers.rsplit(":", 1)[-1] if record.layers else "unknown"
    return {
        "frame": record.number,
        "time": _seconds(record.timestamp_ns, origin),
        "src": record.source,
        "dst": record.destination,
        "sport": record.source_port if has_ports else "",
        "dport": record.destination_port if has_ports else "",
        "proto": protocol,
        "stream": frame.stream if frame.stream >= 0 else "",
        "flags": flag_text(record.tcp_flags) if is_tcp else "",
        "seq": frame.seq if is_tcp else "",
        "ack": frame.ack if is_tcp else "",
        "seq_raw": record.seq if is_tcp else "",
        "ack_raw": record.ack if is_tcp else "",
        "len": record.payload_length if has_ports else "",
        "window": frame.window if is_tcp else "",
        "analysis": ",".join(analysis_names(frame.analysis)),
        "state": frame.state,
        "receiver_state": frame.receiver_state,
        "checksum": record.checksum,
    }


def _run_events(arguments: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from visualizer.analysis.report import in_stream
    from visualizer.pipeline import iter_file_analysis

    progress = None if arguments.quiet or not err.isatty() else _Progress(err, "reading")
    analyzer, reader, frames = iter_file_analysis(arguments.file, progress=progress, verify_checksums=True)
    wanted_stream = arguments.stream
    wanted_protocol = arguments.protocol
    if wanted_protocol and wanted_stream is None:
        raise UsageError("--protocol needs --stream N")
    origin: int | None = None
    jsonl = arguments.format == "jsonl"
    write = out.write
    header = "" if jsonl else "\t".join(EVENT_COLUMNS) + "\n"
    selected = 0
    for frame in frames:
        timestamp = frame.record.timestamp_ns
        if origin is None and timestamp is not None:
            origin = timestamp
        if wanted_stream is not None:
            if not in_stream(frame, wanted_protocol or "tcp", wanted_stream):
                continue
        if not selected:
            write(header)  # with the first row: a stream that is not there, a file that is not readable print nothing
        selected += 1
        row = _event_row(frame, origin)
        if jsonl:
            row["analysis"] = [name for name in str(row["analysis"]).split(",") if name]
            row["findings"] = [
                {
                    "kind": finding.kind,
                    "reason": finding.reason,
                    "refers_to": list(finding.refers_to),
                    **({"original": finding.original} if finding.original else {}),
                }
                for finding in frame.findings
            ]
            write(json.dumps(row) + "\n")
        else:
            write("\t".join(str(value) for value in row.values()) + "\n")
    if progress is not None:
        progress.clear()
    if not selected and wanted_stream is None and reader.frames_read == 0 and not reader.warnings:
        write(header)  # an empty capture: the columns alone
    report = analyzer.finish()
    report.warnings.extend(reader.warnings)
    if not report.frames and report.warnings:
        return _finish(report, arguments, err, summary=False)
    if wanted_stream is not None and not selected:
        _finish(report, arguments, err, summary=False)
        raise UsageError(
            f"{arguments.file}: no stream {wanted_stream} (the capture has "
            f"{len(report.tcp_conversations())} TCP and {len(report.udp_conversations())} UDP streams)"
        )
    return _finish(report, arguments, err)


def _finish(report: Report, arguments: argparse.Namespace, err: TextIO, *, summary: bool = True) -> int:
    """Print the warnings and (unless quiet, or the run ends in an error) the summary line; the exit code."""
    for warning in report.warnings:
        err.write(f"sockstory: warning: {warning}\n")
    if summary and (report.frames or not report.warnings) and not arguments.quiet:
        err.write(
            f"sockstory: {_count(report.frames, 'frame')}, {_count(len(report.tcp_conversations()), 'TCP stream')}, "
            f"{_count(len(report.udp_conversations()), 'UDP stream')}, {_count(len(report.warnings), 'warning')}\n"
        )
    if report.warnings:
        return EXIT_DAMAGED if report.frames else EXIT_UNREADABLE
    return EXIT_OK


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def _format_bytes(count: int) -> str:
    for unit, size in (("MB", 1_000_000), ("kB", 1_000)):
        if count >= size * 10:
            return f"{count / size:.0f} {unit}"
    return f"{count} B"


def _analyse_long_lived(path: str, progress: _Progress | None) -> Report:
    """The report of a whole file, for a command that keeps it until it ends.

    The cycle collector stays off until the report's many objects are frozen: the first
    collection after a long pause would walk every object made during it (0.2 s for a
    million frames), and later ones the table's many small strings.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        from visualizer.pipeline import analyse_file

        report = analyse_file(path, progress=progress)
        gc.freeze()
    finally:
        if enabled:
            gc.enable()
    return report


def _run_flows(arguments: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    progress = None if arguments.quiet or not err.isatty() else _Progress(err, "reading")
    report = _analyse_long_lived(arguments.file, progress)
    if progress is not None:
        progress.clear()
    if not report.frames and report.warnings:
        return _finish(report, arguments, err)  # unreadable from the first frame: no empty table
    origin = report.first_time_ns or 0
    if arguments.format == "table":
        _print_flow_table(report.conversations, origin, out)
        return _finish(report, arguments, err)
    rows = [
        {
            "protocol": conversation.protocol,
            "stream": conversation.stream,
            "a": f"{conversation.address_a}:{conversation.port_a}",
            "b": f"{conversation.address_b}:{conversation.port_b}",
            "frames_a_to_b": conversation.frames_a_to_b,
            "bytes_a_to_b": conversation.bytes_a_to_b,
            "frames_b_to_a": conversation.frames_b_to_a,
            "bytes_b_to_a": conversation.bytes_b_to_a,
            "frames": conversation.frames,
            "bytes": conversation.bytes,
            "start": round((conversation.first_time_ns - origin) / 1e9, 6),
            "duration": round(conversation.duration_ns / 1e9, 6),
            "outcome": conversation.outcome,
            "events": _events_text(conversation),
        }
        for conversation in report.conversations
    ]
    if arguments.format == "json":
        json.dump(rows, out, indent=1)
        out.write("\n")
    else:
        columns = list(rows[0]) if rows else ["protocol", "stream"]
        out.write("\t".join(columns) + "\n")
        for row in rows:
            out.write("\t".join(str(row[column]) for column in columns) + "\n")
    return _finish(report, arguments, err)


def _events_text(conversation: ConversationSummary) -> str:
    counts = conversation.analysis_counts
    return ", ".join(f"{name} {counts[name]}" for name in sorted(counts)) if counts else ""


_FLOW_HEADERS = (
    "stream",
    "A",
    "",
    "B",
    "A→B frames",
    "A→B bytes",
    "B→A frames",
    "B→A bytes",
    "start",
    "duration",
    "outcome",
    "events",
)
_FLOW_RIGHT_ALIGNED = (True, False, False, False, True, True, True, True, True, True, False, False)


def _print_flow_table(conversations: list[ConversationSummary], origin: int, out: TextIO) -> None:
    """The conversation tables, one per protocol, in aligned columns (like tshark -z conv)."""
    for protocol in ("tcp", "udp"):
        chosen = [conversation for conversation in conversations if conversation.protocol == protocol]
        out.write(f"{protocol.upper()} conversations: {len(chosen)}\n")
        if not chosen:
            out.write("\n")
            continue
        columns = 12 if protocol == "tcp" else 10
        table = [
            (
                str(conversation.stream),
                f"{conversation.address_a}:{conversation.port_a}",
                "<->",
                f"{conversation.address_b}:{conversation.port_b}",
                str(conversation.frames_a_to_b),
                _format_bytes(conversation.bytes_a_to_b),
                str(conversation.frames_b_to_a),
                _format_bytes(conversation.bytes_b_to_a),
                f"{(conversation.first_time_ns - origin) / 1e9:.6f}",
                f"{conversation.duration_ns / 1e9:.4f}",
                conversation.outcome,
                _events_text(conversation) or "-",
            )[:columns]
            for conversation in chosen
        ]
        headers = _FLOW_HEADERS[:columns]
        widths = [max(len(header), max(map(len, column))) for header, column in zip(headers, zip(*table))]
        template = "  ".join(
            f"{{:{'>' if _FLOW_RIGHT_ALIGNED[index] else '<'}{widths[index]}}}" for index in range(columns)
        )
        out.write(template.format(*headers).rstrip() + "\n")
        out.write("\n".join(template.format(*line).rstrip() for line in table) + "\n\n")


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run the command line; returns the exit code instead of exiting."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = _parser()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            arguments = parser.parse_args(argv)
    except SystemExit as exit_request:
        return int(exit_request.code or 0)
    try:
        if arguments.command == "flows":
            return _run_flows(arguments, out, err)
        if arguments.command == "events":
            return _run_events(arguments, out, err)
        if arguments.command == "draw":
            return _run_draw(arguments, out, err)
        if arguments.command == "story":
            return _run_scenario_command("story", arguments, out, err)
        if arguments.command == "run":
            return _run_scenario_command(arguments.name, arguments, out, err)
        if arguments.command == "scenarios":
            return _run_scenarios(out)
        if arguments.command == "anatomy":
            return _run_anatomy(arguments, err)
        if arguments.command == "states":
            return _run_states(arguments, err)
        if arguments.command == "capture":
            return _run_capture(arguments, out, err)
        if arguments.command == "record":
            return _run_record(arguments, out, err)
        if arguments.command == "calls":
            return _run_calls(arguments, out, err)
        if arguments.command == "narrate":
            return _run_narrate(arguments, out, err)
        if arguments.command == "throughput":
            return _run_throughput(arguments, out, err)
        if arguments.command == "compare":
            return _run_compare(arguments, out)
        raise UsageError(f"unknown command {arguments.command}")
    except CaptureFileError as error:
        err.write(f"sockstory: error: {error}\n")
        return EXIT_UNREADABLE
    except UsageError as error:
        err.write(f"sockstory: error: {error}\n")
        return EXIT_USAGE
    except SockstoryError as error:
        err.write(f"sockstory: error: {error}\n")
        return EXIT_UNREADABLE
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        err.write("sockstory: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
