"""The dependency direction of STYLE.md, checked on every module's source (imports inside functions too).

model/errors <- analysis <- render; model <- sources <- scenarios; cli and notebooks on top.

* ``visualizer.model`` and ``visualizer.errors`` import only the standard library;
* ``visualizer.analysis.*`` imports the standard library, ``visualizer.model``,
  ``visualizer.errors`` and itself (sans-IO: no scapy, socket-free, no matplotlib);
* ``visualizer.render.*`` never imports ``sources``, ``scenarios`` or ``pipeline``
  (renderers take reports; they do not read captures);
* ``visualizer.scenarios.*`` never imports ``render``, ``pipeline`` or ``analysis``
  (scenarios make captures; the CLI analyses and draws them);
* ``visualizer.sources.*`` imports neither ``render``, ``scenarios``, ``pipeline`` nor ``analysis``
  (model <- sources: readers make records; ``visualizer.files`` writes every file atomically).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "visualizer"
STANDARD_LIBRARY = set(sys.stdlib_module_names) | {"__future__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(name: str) -> bool:
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()


def _is_module(name: str) -> bool:
    path = PACKAGE.parent / name.replace(".", "/")
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def imports(source: str, importer: str) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in ``source``, wherever it is (functions, TYPE_CHECKING blocks).

    Relative imports are resolved against ``importer``; ``from package import submodule``
    counts as importing the submodule.
    """
    package = importer if _is_package(importer) else importer.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield node.lineno, submodule if base.startswith("visualizer") and _is_module(submodule) else base


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def rule_broken(importer: str, imported: str) -> str | None:
    """Why ``importer`` may not import ``imported``, or None when it may."""
    third_party = imported.split(".")[0] not in STANDARD_LIBRARY and not _within(imported, ("visualizer",))
    if importer in ("visualizer.model", "visualizer.errors"):
        if third_party or _within(imported, ("visualizer",)):
            return "model and errors import only the standard library"
    elif _within(importer, ("visualizer.analysis",)):
        if third_party:
            return "analysis is sans-IO: the standard library only"
        if _within(imported, ("visualizer",)) and not _within(
            imported, ("visualizer.analysis", "visualizer.model", "visualizer.errors")
        ):
            return "analysis imports only visualizer.model, visualizer.errors and itself"
    elif _within(importer, ("visualizer.render",)):
        if _within(imported, ("visualizer.sources", "visualizer.scenarios", "visualizer.pipeline")):
            return "render takes reports: no sources, scenarios or pipeline"
    elif _within(importer, ("visualizer.scenarios",)):
        if _within(imported, ("visualizer.render", "visualizer.pipeline", "visualizer.analysis")):
            return "scenarios make captures: no render, pipeline or analysis"
    elif _within(importer, ("visualizer.sources",)):
        if _within(
            imported, ("visualizer.render", "visualizer.scenarios", "visualizer.pipeline", "visualizer.analysis")
        ):
            return "sources make records: no render, scenarios, pipeline or analysis"
    return None


def violations(source: str, importer: str) -> list[str]:
    return [
        f"{importer}:{line} imports {imported}: {reason}"
        for line, imported in imports(source, importer)
        if (reason := rule_broken(importer, imported)) is not None
    ]


def test_every_module_follows_the_dependency_direction() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 25
    found = [problem for path in modules for problem in violations(path.read_text("utf-8"), module_name(path))]
    assert found == []


@pytest.mark.parametrize(
    ("importer", "source", "broken"),
    [
        ("visualizer.analysis.analyzer", "import scapy.all", True),
        ("visualizer.analysis.analyzer", "def f():\n    import matplotlib.pyplot as plt\n", True),
        ("visualizer.analysis.analyzer", "from visualizer.sources import decode", True),
        ("visualizer.analysis.analyzer", "from ..pipeline import analyse_file", True),
        ("visualizer.analysis.analyzer", "from visualizer import model\nfrom . import states\nimport bisect", False),
        ("visualizer.analysis", "from .report import Report\nfrom visualizer.errors import UsageError", False),
        ("visualizer.model", "import numpy", True),
        ("visualizer.model", "from visualizer.analysis import report", True),
        ("visualizer.errors", "from dataclasses import dataclass", False),
        ("visualizer.render.ladder", "from visualizer.analysis.report import Report\nimport matplotlib", False),
        ("visualizer.render.export", "def f():\n    from visualizer.pipeline import analyse_file\n", True),
        ("visualizer.render.ladder", "if TYPE_CHECKING:\n    from visualizer.sources.live import Sniffer\n", True),
        ("visualizer.render.text", "from ..scenarios import SCENARIOS", True),
        ("visualizer.scenarios.runner", "def draw():\n    from visualizer.render.export import save_ladder\n", True),
        ("visualizer.scenarios.runner", "from visualizer import pipeline", True),
        ("visualizer.scenarios.crafted", "from visualizer.analysis.report import analysis_names", True),
        ("visualizer.scenarios", "from . import crafted\nfrom visualizer.sources.live import Sniffer", False),
        ("visualizer.sources.live", "def write():\n    from visualizer.render.files import atomic_write\n", True),
        ("visualizer.sources.live", "from visualizer.files import atomic_write", False),
    ],
)
def test_the_checker_catches_a_broken_rule(importer: str, source: str, broken: bool) -> None:
    assert bool(violations(source, importer)) is broken, violations(source, importer)


def test_relative_imports_resolve_against_the_importer() -> None:
    assert list(imports("from ..render import export", "visualizer.scenarios.runner")) == [
        (1, "visualizer.render.export")
    ]
    assert list(imports("from . import crafted", "visualizer.scenarios")) == [(1, "visualizer.scenarios.crafted")]
    assert list(imports("from .report import Report", "visualizer.analysis.analyzer")) == [
        (1, "visualizer.analysis.report")
    ]
