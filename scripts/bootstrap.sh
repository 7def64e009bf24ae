#!/usr/bin/env bash
# Sets up everything sockstory needs on a fresh Debian machine with Python 3.11, and does
# nothing when it is already there: the Debian packages used at run time (when missing),
# a virtual environment in .venv, and the Python packages (the project and its test tools).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(python3 python3-venv python3-pip libpcap0.8 tcpdump nftables iproute2 ethtool procps)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# A Python that already has venv and pip (pyenv, a custom build) needs no python3-* packages.
if command -v python3 >/dev/null && python3 -c "import venv, ensurepip" 2>/dev/null; then
    missing=($(printf '%s\n' "${missing[@]}" | grep -v '^python3' || true))
fi
if [ "${#missing[@]}" -gt 0 ]; then
    echo "sockstory setup: installing Debian packages: ${missing[*]}" >&2
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    elif command -v sudo >/dev/null; then
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "sockstory setup: cannot install ${missing[*]} without root; live capture needs them" >&2
    fi
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
    echo "sockstory setup: installing Python packages into .venv" >&2
    log=$(mktemp)
    if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e '.[test]'; } >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
    touch .venv/.installed
fi
