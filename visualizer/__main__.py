"""``python -m visualizer`` runs the sockstory command line."""

import sys

from visualizer.cli import main

sys.exit(main())
