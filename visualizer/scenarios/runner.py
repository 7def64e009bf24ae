"""Run a scenario for real: private namespace, sniffer, traffic, pcap.

Scenarios make captures; analysing and drawing them is the caller's (the CLI, a notebook).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

from visualizer.errors import SockstoryError, UsageError
from visualizer.scenarios import SCENARIOS, Scenario
from visualizer.scenarios.namespace import die_with_parent, in_private_namespace, run_command
from visualizer.sources.kernel import KernelRecorder, KernelRecording, sidecar_path
from visualizer.sources.live import Sniffer, require_root


@dataclass(slots=True)
class ScenarioResult:
    name: str
    pcap: Path
    frames: int
    kernel_drops: int
    tcpdump_frames: int | None = None
    """Frames tcpdump captured at the same time, when asked to check."""
    observations: dict[str, object] = field(default_factory=dict)
    """What a crafted scenario saw from its side (what the kernel socket received, answers seen...)."""
    kernel: KernelRecording | None = None
    """The kernel events recorded beside the capture (None with ``kernel=False``)."""


def _capture(
    scenario: Scenario, pcap: Path, check_with_tcpdump: bool, kernel: bool
) -> tuple[int, int, int | None, dict[str, object], KernelRecording | None]:
    """Inside the private namespace: set up, sniff, run, write the pcap (and the kernel events beside it)."""
    for command in scenario.setup:
        run_command(*command)
    # The recorder is forked first, before any thread exists; it follows this process and its children.
    recorder = KernelRecorder(sidecar_path(pcap), pids=[os.getpid()]) if kernel else None
    with recorder if recorder is not None else contextlib.nullcontext():
        captured = _sniff(scenario, pcap, check_with_tcpdump)
    return (*captured, recorder.result if recorder is not None else None)


def _sniff(scenario: Scenario, pcap: Path, check_with_tcpdump: bool) -> tuple[int, int, int | None, dict[str, object]]:
    tcpdump = None
    reference = pcap.with_suffix(".tcpdump.pcap")
    if check_with_tcpdump:
        tcpdump = subprocess.Popen(
            ["tcpdump", "-i", "lo", "-U", "--immediate-mode", "-B", "32768", "-w", str(reference)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=die_with_parent,
        )
        # stderr=PIPE: the pipe exists; its first line, "listening on lo ...", says tcpdump is capturing.
        cast(IO[bytes], tcpdump.stderr).readline()
    sniffer = Sniffer("lo")
    sniffer.start()
    observations: dict[str, object] = {}
    try:
        observations = scenario.run(sniffer) if scenario.crafted else (scenario.run() or {})
    finally:
        result = sniffer.stop(linger=0.3)
        reference_frames = None
        if tcpdump is not None:
            tcpdump.send_signal(signal.SIGINT)
            tcpdump.wait(10)
            from visualizer.sources import CaptureReader

            reference_frames = sum(1 for _ in CaptureReader(reference))
            reference.unlink()
    written = result.write(pcap)
    return written, result.kernel_drops, reference_frames, observations


def run_scenario(name: str, out: Path, *, check_with_tcpdump: bool = False, kernel: bool = True) -> ScenarioResult:
    """Run scenario ``name``; write ``out/NAME.pcap`` and, with ``kernel``, ``out/NAME.kernel.jsonl``."""
    scenario = SCENARIOS.get(name)
    if scenario is None:
        raise UsageError(f"unknown scenario {name!r} (see 'sockstory scenarios')")
    require_root(f"run {name}" if name != "story" else "story")
    return run_defined(scenario, out, check_with_tcpdump=check_with_tcpdump, kernel=kernel)


def run_defined(
    scenario: Scenario, out: Path, *, check_with_tcpdump: bool = False, kernel: bool = True
) -> ScenarioResult:
    """Run a scenario defined by the caller (an experiment's settings make one), as :func:`run_scenario`
    runs a registered one: ``out/NAME.pcap`` (and ``out/NAME.kernel.jsonl``), nothing left behind."""
    name = scenario.name
    out.mkdir(parents=True, exist_ok=True)
    pcap = out / f"{name}.pcap"
    frames, drops, reference, observations, recording = in_private_namespace(
        lambda: _capture(scenario, pcap, check_with_tcpdump, kernel), name=name
    )
    give_to_sudo_user(out, pcap, *([recording.path] if recording is not None and recording.path else []))
    forget_stale_sidecar(pcap, recording)
    return ScenarioResult(name, pcap, frames, drops, reference, observations=observations, kernel=recording)


def forget_stale_sidecar(pcap: Path, recording: KernelRecording | None) -> None:
    """A capture written without kernel events loses the sidecar of an earlier run under its name."""
    if recording is None or recording.path is None:
        with contextlib.suppress(FileNotFoundError):
            sidecar_path(pcap).unlink()


def give_to_sudo_user(*paths: Path) -> None:
    """Under sudo, hand the files written back to the user who ran it (not root)."""
    user, group = os.environ.get("SUDO_UID"), os.environ.get("SUDO_GID")
    if os.geteuid() != 0 or not user:
        return
    for path in paths:
        try:
            os.chown(path, int(user), int(group or user))
        except OSError:
            pass


CLONE_NEWPID = 0x20000000


@dataclass(slots=True)
class RecordResult:
    """What ``sockstory record`` captured while its command ran."""

    pcap: Path
    frames: int
    kernel_drops: int
    status: int
    """The command's exit status (negative: the signal that ended it)."""
    stopped_by: int = 0
    """The signal (SIGINT, SIGTERM) that stopped the recording early; 0 when the command ended by itself."""
    kernel: KernelRecording | None = None


def record_command(command: list[str], out: Path, *, name: str = "record", kernel: bool = True) -> RecordResult:
    """Run ``command`` in a private network namespace (``lo`` up) and record it: ``out/NAME.pcap``,
    with its processes' kernel events in ``out/NAME.kernel.jsonl``.

    The command runs as the first process of a PID namespace of its own, so every process it
    starts ends with it (a server it left in the background does not keep the network namespace
    alive). SIGINT or SIGTERM ends the command; what was captured until then is saved.
    """
    require_root("record")
    out.mkdir(parents=True, exist_ok=True)
    pcap = out / f"{name}.pcap"
    result = in_private_namespace(lambda: _record_inside(command, pcap, kernel), name="record", forward_signals=True)
    give_to_sudo_user(out, pcap, *([result.kernel.path] if result.kernel is not None and result.kernel.path else []))
    forget_stale_sidecar(pcap, result.kernel)
    return result


def _record_inside(command: list[str], pcap: Path, kernel: bool) -> RecordResult:
    from visualizer.scenarios.namespace import _libc

    received: list[int] = []
    process: subprocess.Popen[bytes] | None = None

    def stop(number: int, _frame: object) -> None:
        received.append(number)
        if process is not None:
            process.kill()  # the PID namespace's first process: every process of the command ends with it

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, stop)
    recorder = KernelRecorder(sidecar_path(pcap), pids=[os.getpid()]) if kernel else None
    with recorder if recorder is not None else contextlib.nullcontext():
        sniffer = Sniffer("lo")
        sniffer.start()  # its thread first: a process that has unshared its PID namespace starts no thread
        try:
            if _libc().unshare(CLONE_NEWPID) != 0:
                raise SockstoryError("cannot create a PID namespace for the command")
            if not received:
                try:
                    process = subprocess.Popen(command, preexec_fn=die_with_parent)
                except OSError as error:
                    raise UsageError(f"cannot run {command[0]!r}: {error.strerror or error}") from None
                if received:
                    process.kill()
                status = process.wait()
            else:
                status = -received[0]
        finally:
            captured = sniffer.stop(linger=0.3)
        written = captured.write(pcap)
    recording = recorder.result if recorder is not None else None
    return RecordResult(pcap, written, captured.kernel_drops, status, received[0] if received else 0, recording)
