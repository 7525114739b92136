#!/usr/bin/env bash
# Builds the wasm32 harness and times it under wasmtime (pip package `wasmtime`).
# Honours CARGO_TARGET_DIR.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
python3 -c "import wasmtime" 2>/dev/null || python3 -m pip install --quiet wasmtime
target="${CARGO_TARGET_DIR:-$here/wasm-harness/target}"
(cd "$here/wasm-harness" && CARGO_TARGET_DIR="$target" cargo build --release --target wasm32-unknown-unknown)
HARNESS_WASM="$target/wasm32-unknown-unknown/release/guardrails_wasm_harness.wasm" python3 "$here/wasm_bench.py"
