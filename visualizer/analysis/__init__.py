"""Sans-IO analysis: standard library only, packet records in, reports out."""

from __future__ import annotations

from visualizer.analysis.analyzer import Analyzer, analyse
from visualizer.analysis.report import (
    ConversationSummary,
    Finding,
    FrameAnalysis,
    Report,
    analysis_names,
)

__all__ = [
    "Analyzer",
    "ConversationSummary",
    "Finding",
    "FrameAnalysis",
    "Report",
    "analyse",
    "analysis_names",
]
