"""The README's commands work as written from a clone: the files they name exist, the conformance
commands run, and sockstory is shown run in a way sudo can find (not `sudo sockstory`)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
COMMANDS = [
    line.split("#")[0].strip()
    for block in re.findall(r"```(?:sh|console)\n(.*?)```", README, re.DOTALL)
    for line in block.splitlines()
    if line.strip() and not line.startswith(" ")
]


def test_the_scripts_and_benches_named_exist() -> None:
    for script in set(re.findall(r"\./scripts/([\w.]+)", README)):
        assert os.access(ROOT / "scripts" / script, os.X_OK), script
    for bench in set(re.findall(r"\bbench/(\w+\.py)", README)):
        assert (ROOT / "bench" / bench).is_file(), bench


def test_no_command_runs_sockstory_by_a_name_no_path_holds() -> None:
    """After the set-up sockstory is in .venv/bin, on no PATH, and sudo searches its own secure_path."""
    assert COMMANDS
    for command in COMMANDS:
        assert not re.match(r"(\$ )?(sudo )?sockstory ", command), command


@pytest.mark.parametrize(
    "command", [command for command in COMMANDS if "bench/conformance.py" in command], ids=lambda command: command
)
def test_the_conformance_commands_run_from_a_clone(command: str) -> None:
    """The documented folders are in the repository, with their captures and tshark's oracle."""
    words = shlex.split(command)
    assert words[0] == ".venv/bin/python"
    result = subprocess.run([sys.executable, *words[1:], "--check"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "RESULT: meets the targets" in result.stdout


def test_the_wrapper_runs_the_clones_sockstory_from_any_folder(tmp_path: Path) -> None:
    if not (ROOT / ".venv" / "bin" / "sockstory").exists():
        pytest.skip("no .venv: the wrapper runs the set-up's sockstory")
    shutil.copy(ROOT / "captures" / "story.pcap", tmp_path / "story.pcap")
    result = subprocess.run(
        [str(ROOT / "scripts" / "sockstory"), "draw", "story.pcap", "-o", "story.txt"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "client 127.0.0.1:56566" in (tmp_path / "story.txt").read_text()  # file names as given
