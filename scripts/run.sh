#!/usr/bin/env bash
# The main job on an embedded default, no broker needed: generate a realistic capture with the
# project's own generator, then replay it and print one Akto record per HTTP exchange (stdout),
# with the summary on stderr. Extra arguments go to `akto-tap replay`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-tools.sh
ensure_rust
ensure_build_deps
cargo build --release --quiet -p akto-tap
capture=target/demo/traffic.pcap
if [ ! -s "$capture" ]; then
  mkdir -p "$(dirname "$capture")"
  ./target/release/akto-tap synth --output "$capture" --size 8MB --seed 1
fi
exec ./target/release/akto-tap replay "$capture" "$@"
