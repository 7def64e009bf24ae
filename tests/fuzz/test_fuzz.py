"""Fuzzing: every regression file on every command and reading path, and a seeded budget of new cases.

The long run is one command: ``.venv/bin/python bench/fuzz.py --cases 20000 --seed N --jobs 2``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.harness import COMMANDS, PATHS_OF, REGRESSIONS, ROOT, preload, run_file

BUDGET_CASES = 800
"""About a minute on two CPUs: new mutations of the committed captures in every test run."""
BUDGET_SEED = 20261127

KNOWN: dict[tuple[str, str], str] = {}
"""Failures found and not fixed yet, each with its reason (strict xfail: fixing one shows)."""


FRAMES = {"anatomy-scapy-ipv6-options-cut.pcap": 5}
"""The frame ``anatomy`` draws from a regression file (default 1)."""


def regression_cases() -> list[object]:
    cases = []
    for path in sorted(REGRESSIONS.iterdir()):
        for command in COMMANDS:
            reason = KNOWN.get((path.name, command))
            marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
            cases.append(pytest.param(path, command, marks=marks, id=f"{path.name}-{command}"))
    return cases


@pytest.fixture(scope="module")
def _preloaded() -> None:
    preload()


@pytest.mark.parametrize(("path", "command"), regression_cases())
def test_regression_file(path: Path, command: str, tmp_path: Path, _preloaded: None) -> None:
    result = run_file(str(path), command, str(tmp_path), FRAMES.get(path.name, 1), PATHS_OF[command])
    assert not result.failure, f"{result.failure}: {result.detail}"


def test_a_seeded_fuzzing_budget_finds_nothing(tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "fuzz.py"),
            "--cases",
            str(BUDGET_CASES),
            "--seed",
            str(BUDGET_SEED),
            "--jobs",
            "2",
            "--save",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"cases: {BUDGET_CASES:,}" in run.stdout
