"""`import visualizer` and the analysis core load neither Scapy nor matplotlib."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["visualizer", "visualizer.analysis", "visualizer.pipeline", "visualizer.cli"])
def test_import_loads_neither_scapy_nor_matplotlib(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "heavy = sorted(name for name in sys.modules if name.split('.')[0] in ('scapy', 'matplotlib', 'numpy'))\n"
        "print(heavy)\n"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def test_the_analysis_core_imports_only_the_standard_library_and_itself() -> None:
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import visualizer.analysis\n"
        "new = {name.split('.')[0] for name in set(sys.modules) - before}\n"
        "print(sorted(new - set(sys.stdlib_module_names) - {'visualizer'}))\n"
        "print(sorted(name for name in sys.modules if name.startswith('visualizer.sources') or name == 'socket'))\n"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.split("\n")[:2] == ["[]", "[]"]
