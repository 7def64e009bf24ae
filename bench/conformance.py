"""Measure sockstory's TCP/UDP analysis against tshark's on a corpus, frame by frame.

Usage: python bench/conformance.py CORPUS_DIR [--list N] [--check]

CORPUS_DIR holds captures/ and oracle/<file>.frames.tsv (for example
../shared/corpus). Prints per-column agreement on TCP frames, per-flag
precision and recall, the documented deviations counted apart, and the
disagreements. ``--check`` exits 1 when below the targets (>= 99.5% agreement
per column, >= 95% precision and recall per flag). See tests/oracle.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.oracle import compare, format_result  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path, help="folder with captures/ and oracle/")
    parser.add_argument("--list", type=int, default=40, metavar="N", help="disagreements to list (default 40)")
    parser.add_argument("--check", action="store_true", help="exit 1 when below the targets")
    arguments = parser.parse_args()
    if not (arguments.corpus / "captures").is_dir() or not (arguments.corpus / "oracle").is_dir():
        parser.error(f"{arguments.corpus}: needs captures/ and oracle/ folders")
    result = compare(arguments.corpus)
    print(format_result(result, arguments.list))
    return 0 if result.meets_targets() or not arguments.check else 1


if __name__ == "__main__":
    sys.exit(main())
