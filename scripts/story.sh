#!/usr/bin/env bash
# The main job: sets up what is missing, then tells a socket's story with real packets.
# A client asks its friend at 127.0.0.1:8080 a tic-tac-toe question, the friend answers, both
# close: real kernel sockets in a private network namespace, every packet sniffed once, saved to
# captures/live/story.pcap, analysed, and drawn to captures/live/story.png. Sniffing and network
# namespaces need root: run it as root, or as a user with sudo (scripts/sockstory asks sudo for
# that step only; the files it writes stay yours).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    echo "sockstory: the live story needs root (raw sockets, network namespaces): run this as root" >&2
    exit 1
fi
scripts/sockstory story "$@"
echo
scripts/sockstory events -q captures/live/story.pcap
