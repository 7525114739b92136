#!/usr/bin/env bash
# The edge worker's tests: its unit tests (native), then the wasm build (worker-build, offline)
# and the end-to-end suite in the real workerd runtime with an MCP server worker, recording
# fixtures and a real `akto-tap ingest` on loopback (worker/tests/e2e.test.mjs).
# Installs what it needs, idempotently (scripts/ensure-worker-tools.sh). Exits non-zero on any failure.
#
# Env: AKTO_TAP_BIN   use this akto-tap binary instead of building it (`cargo build --release -p akto-tap`)
#      WORKER_SKIP_BUILD=1   reuse worker/build as it is
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
source scripts/ensure-worker-tools.sh
ensure_worker_tools

echo "== worker unit tests (native)"
cargo test -p akto-tap-worker --lib --quiet

if [ "${WORKER_SKIP_BUILD:-0}" != 1 ]; then
  build_worker
fi
ls -l worker/build/index.js worker/build/index_bg.wasm

if [ -z "${AKTO_TAP_BIN:-}" ]; then
  echo "== cargo build --release -p akto-tap (akto-tap ingest for the end-to-end tests)"
  cargo build --release -p akto-tap --quiet
  AKTO_TAP_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/akto-tap"
fi
export AKTO_TAP_BIN

echo "== worker end-to-end tests ($("$WORKERD_BIN" --version))"
# --test-timeout bounds the whole file too: 5 min (the suite takes ~25 s; waits inside are bounded).
node --test --test-concurrency=1 --test-timeout=300000 worker/tests/e2e.test.mjs
echo "== worker tests passed"
