#!/usr/bin/env bash
# Runs every test (sets up what is missing first). Root-only tests skip without root,
# except under CI=true, where a skipped root test fails. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"
