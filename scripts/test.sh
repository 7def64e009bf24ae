#!/usr/bin/env bash
# Runs every test (sets up what is missing first). Tests that need root (sniffing, namespaces,
# nftables) run as root: as a user with sudo, the test run asks sudo and gives what it wrote in
# your clone (bytecode, tool caches) back to you; with neither, they skip, except under CI=true,
# where a skipped root test fails. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then
    status=0
    sudo env CI="${CI:-}" .venv/bin/python -m pytest "$@" || status=$?
    sudo chown -R "$(id -u):$(id -g)" .
    exit "$status"
fi
exec .venv/bin/python -m pytest "$@"
