"""Figures and text renderings of the analysis.

:mod:`visualizer.render.layout` turns per-frame analysis into a ladder layout
(standard library only); :mod:`visualizer.render.ladder` and
:mod:`visualizer.render.time_sequence` draw with matplotlib, which loads only
when they are imported; :mod:`visualizer.render.text` writes ASCII and Mermaid.
"""
