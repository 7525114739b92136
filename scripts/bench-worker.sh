#!/usr/bin/env bash
# Latency the edge worker adds over calling the MCP server worker directly in workerd, p50 and
# p99 per mode (mirror, async, blocked) for a 4 KB MCP request, and the wasm size gzipped.
# Targets: mirror and async ≤ 0.5 ms, blocked ≤ 1 ms added at p50 (exit 3 when one is missed).
# Env: BENCH_REQUESTS (per mode, default 3000), AKTO_TAP_BIN, WORKER_SKIP_BUILD=1, BENCH_COMPARE_BUILD
# (a directory holding another build of the worker, measured in the same rounds: before/after).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
source scripts/ensure-worker-tools.sh
ensure_worker_tools
if [ "${WORKER_SKIP_BUILD:-0}" != 1 ]; then
  build_worker
fi
if [ -z "${AKTO_TAP_BIN:-}" ]; then
  cargo build --release -p akto-tap --quiet
  AKTO_TAP_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/akto-tap"
fi
export AKTO_TAP_BIN
WORKERD_VERSION="$("$WORKERD_BIN" --version)" node worker/bench/bench.mjs
