"""Run a function in a private network namespace that vanishes with it.

The child process calls ``unshare(CLONE_NEWNET)``: it gets a network namespace of
its own with only a loopback interface, which it brings up. Every nftables table,
qdisc or offload setting made there lives in that namespace, and the kernel
destroys the namespace when its last process exits, whether the scenario ends
normally, raises, or is killed. The host's ``lo`` is never touched. The child
and its helpers (tcpdump) die with their parent (PR_SET_PDEATHSIG), so a Ctrl-C
or a killed parent leaves nothing behind either.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import signal
import subprocess
import traceback
from collections.abc import Callable
from typing import TypeVar

from visualizer.errors import ScenarioError, SockstoryError

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
T = TypeVar("T")


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def die_with_parent() -> None:
    """Ask the kernel to kill this process when its parent dies (prctl PR_SET_PDEATHSIG)."""
    _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def run_command(*command: str) -> None:
    """Run a network command inside the current namespace; a failure raises with its message."""
    result = subprocess.run(command, capture_output=True, text=True, preexec_fn=die_with_parent)
    if result.returncode != 0:
        raise SockstoryError(f"{' '.join(command)}: {result.stderr.strip() or result.returncode}")


def in_private_namespace(
    function: Callable[[], T], *, name: str = "in a private namespace", forward_signals: bool = False
) -> T:
    """Fork, move the child into a new network namespace with ``lo`` up, run ``function`` there.

    Returns what the function returns (it must pickle). A SockstoryError of the child is raised
    again here as itself (a ScenarioError stays a ScenarioError); any other error becomes a
    ScenarioError named ``name`` with the last line of the child's traceback. Ctrl-C kills the
    child (and its namespace); with ``forward_signals``, SIGINT and SIGTERM are passed on to the
    child instead, which ends its work and returns (``record`` saves what it captured).
    """
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the child: never returns
        os.close(reader)
        status = 0
        try:
            die_with_parent()
            if _libc().unshare(CLONE_NEWNET) != 0:
                raise SockstoryError(f"cannot create a network namespace: {os.strerror(ctypes.get_errno())}")
            run_command("ip", "link", "set", "lo", "up")
            payload = pickle.dumps(("ok", function()))
        except BaseException as error:  # everything goes back to the parent
            payload = _error_payload(error)
            status = 1
        with os.fdopen(writer, "wb") as pipe:
            pipe.write(payload)
        os._exit(status)
    os.close(writer)
    previous = {}
    if forward_signals:
        for number in (signal.SIGINT, signal.SIGTERM):
            previous[number] = signal.signal(number, lambda number, _frame: os.kill(child, number))
    try:
        with os.fdopen(reader, "rb") as pipe:
            payload = pipe.read()
        os.waitpid(child, 0)
    except BaseException:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        raise
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if not payload:
        raise ScenarioError(name, "the process ended without a result")
    status, value = pickle.loads(payload)
    if status == "raise":
        raise value
    if status != "ok":
        raise ScenarioError(name, str(value).strip().splitlines()[-1] if value else "the process failed")
    return value  # type: ignore[no-any-return]


def _error_payload(error: BaseException) -> bytes:
    """The child's error for the parent: our own errors as objects, others as their traceback's text."""
    if isinstance(error, SockstoryError):
        try:
            payload = pickle.dumps(("raise", error))
            pickle.loads(payload)  # an error whose class cannot be rebuilt goes back as text
            return payload
        except Exception:
            return pickle.dumps(("error", str(error)))
    return pickle.dumps(("error", traceback.format_exc(limit=4)))
