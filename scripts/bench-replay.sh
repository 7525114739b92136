#!/usr/bin/env bash
# End-to-end replay benchmark: generates a large realistic capture once (deterministic, seed 1),
# then measures `akto-tap replay` on one core: capture MB per CPU-second and exchanges per
# CPU-second, writing Akto records to /dev/null, and with `--format none` (engine and reader only).
# Usage: scripts/bench-replay.sh [SIZE, default 1GiB]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-tools.sh
ensure_rust
ensure_build_deps
size=${1:-1GiB}
cargo build --release --quiet -p akto-tap
bin=./target/release/akto-tap
capture=target/bench/replay-$size.pcap
if [ ! -s "$capture" ]; then
  mkdir -p target/bench
  "$bin" synth --output "$capture" --size "$size" --seed 1
fi
bytes=$(stat -c %s "$capture")
run() {
  local label=$1; shift
  local out
  # taskset pins the replay to one core and --workers 0 keeps the encoding on the reading thread
  # (the cheapest way to spend one core): the figure is per core.
  out=$( { /usr/bin/time -f '%U %S %e' taskset -c 0 "$bin" replay "$capture" -o /dev/null --workers 0 "$@" 2>&1 >/dev/null; } 2>&1 )
  local times exchanges
  times=$(echo "$out" | tail -n 1)
  exchanges=$(echo "$out" | grep -o 'exchanges [0-9]*' | head -1 | awk '{print $2}')
  echo "$times" | awk -v b="$bytes" -v x="$exchanges" -v l="$label" '{
    cpu = $1 + $2;
    printf "%-28s %8.1f MB/CPU-s  %10.0f exchanges/CPU-s  (cpu %.2fs, wall %.2fs, %d MB, %d exchanges)\n", l, b/1e6/cpu, x/cpu, cpu, $3, b/1e6, x
  }'
}
run "replay → Akto JSONL"
run "replay, engine only" --format none
