"""The code stays clean: ruff (lint, format) on the package, tests, benchmarks, notebooks; mypy --strict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def run_tool(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *arguments], cwd=ROOT, capture_output=True, text=True)


def test_ruff_lint_and_format() -> None:
    lint = run_tool("ruff", "check", "visualizer", "tests", "bench", "notebooks")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    form = run_tool("ruff", "format", "--check", "visualizer", "tests", "bench", "notebooks")
    assert form.returncode == 0, form.stdout + form.stderr


def test_mypy_strict() -> None:
    result = run_tool("mypy")
    assert result.returncode == 0, result.stdout + result.stderr
