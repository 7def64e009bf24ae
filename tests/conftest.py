"""Test-run policy: root-only tests skip on a laptop but must run in CI.

Mark a test ``@pytest.mark.root``. Without root it is skipped, except when the
environment says ``CI=true``: there a skipped root test is a failure, because CI
runs as root and must exercise sniffing, crafting and namespaces for real.
"""

from __future__ import annotations

import os
import signal

import matplotlib
import pytest

matplotlib.use("Agg")

if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    # The Ctrl-C tests need SIGINT to arrive, here and in the programs they start. A test run started
    # in the background by a non-interactive shell (`./scripts/test.sh &`, `su -c`, some CI runners)
    # inherits it ignored, and Python then keeps ignoring it, as a program started so should: the
    # tests restore what a terminal gives (a handler here; the default in every program started).
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("root") and os.geteuid() != 0:
        if _in_ci():
            pytest.fail("root test cannot run: CI=true but the tests are not running as root")
        pytest.skip("needs root: run ./scripts/test.sh as root or as a user with sudo, as CI does")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if _in_ci() and item.get_closest_marker("root") and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"root test skipped under CI=true: {report.longrepr}"


@pytest.fixture(autouse=True)
def _close_figures() -> object:
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
