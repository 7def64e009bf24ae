#!/usr/bin/env bash
# The main job: sets up what is missing, then tells a socket's story.
# Until the live story exists (sniffing loopback needs root), it tells the story of the
# real loopback capture shipped in captures/story.pcap.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
capture="${1:-captures/story.pcap}"
echo "== Conversations in $capture"
.venv/bin/sockstory flows "$capture"
echo
echo "== Every frame: relative seq/ack, flags, window, analysis, the sender's TCP state"
.venv/bin/sockstory events "$capture"
