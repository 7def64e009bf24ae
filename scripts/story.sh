#!/usr/bin/env bash
# The main job: sets up what is missing, then tells a socket's story with real packets.
# A client asks its friend at 127.0.0.1:8080 a tic-tac-toe question, the friend answers, both
# close: real kernel sockets in a private network namespace, every packet sniffed once, saved to
# captures/live/story.pcap, analysed, and drawn to captures/live/story.png. Needs root (sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/sockstory story "$@"
echo
.venv/bin/sockstory events -q captures/live/story.pcap
