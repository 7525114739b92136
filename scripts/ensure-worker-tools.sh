#!/usr/bin/env bash
# Installs what the edge worker's build and tests need, idempotently (each step is skipped when
# its tool is already there): the wasm32 target, worker-build 0.8.7, wasm-bindgen-cli 0.2.130
# (must equal the Cargo.lock version), and `npm ci` in worker/ (wrangler 4.86.0, which brings the
# workerd binary, and binaryen 132.0.0 for wasm-opt). Versions: ../shared/TOOLCHAIN.md.
# Sourced by test-worker.sh and bench-worker.sh (`ensure-worker-tools.sh build` builds the worker); exports the variables that keep worker-build
# offline (WASM_BINDGEN_BIN, WASM_OPT_BIN, ESBUILD_BIN) and WORKERD_BIN.
set -euo pipefail

_wt_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORKER_DIR="$_wt_root/worker"
WORKER_BUILD_VERSION=0.8.7
WASM_BINDGEN_VERSION=0.2.130

_wt_have() { command -v "$1" >/dev/null 2>&1; }

ensure_worker_tools() {
  if ! _wt_have cargo && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  export PATH="$HOME/.cargo/bin:$PATH"
  if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
    echo "ensure-worker-tools: rustup target add wasm32-unknown-unknown" >&2
    rustup target add wasm32-unknown-unknown >&2
  fi
  if ! cargo install --list 2>/dev/null | grep -q "^worker-build v$WORKER_BUILD_VERSION:"; then
    echo "ensure-worker-tools: installing worker-build $WORKER_BUILD_VERSION (cargo install, ~9 min cold)" >&2
    cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked >&2
  fi
  if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
    echo "ensure-worker-tools: installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (cargo install, ~4 min cold)" >&2
    # Not --locked: its lock file names a crate version the registry no longer has.
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --no-default-features --bin wasm-bindgen >&2
  fi
  if ! _wt_have node || ! _wt_have npm; then
    echo "ensure-worker-tools: installing Node.js and npm (apt)" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2
  fi
  local stamp="$WORKER_DIR/node_modules/.package-lock.json"
  if [ ! -x "$WORKER_DIR/node_modules/.bin/workerd" ] || [ ! -f "$stamp" ] || [ "$WORKER_DIR/package-lock.json" -nt "$stamp" ]; then
    echo "ensure-worker-tools: npm ci in worker/ (wrangler 4.86.0 with workerd, binaryen 132.0.0)" >&2
    (cd "$WORKER_DIR" && npm ci --no-audit --no-fund >&2)
  fi
  export WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
  export WASM_OPT_BIN="$WORKER_DIR/node_modules/binaryen/bin/wasm-opt"
  export ESBUILD_BIN="$WORKER_DIR/node_modules/@esbuild/linux-x64/bin/esbuild"
  export WORKERD_BIN="$WORKER_DIR/node_modules/@cloudflare/workerd-linux-64/bin/workerd"
  # Keep Node-based Cloudflare tools quiet and offline.
  export CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_SEND_METRICS=false
}

# Builds worker/build/{index.js,index_bg.wasm} with no network access. The wasm build has its
# own target dir (WORKER_TARGET_DIR, default target/worker-wasm) and its own release settings
# (LTO, one codegen unit, no debug info; the workspace profile is left alone for host builds):
# changing profile settings in the shared target dir would rebuild the host's proc-macros.
build_worker() {
  ensure_worker_tools
  # WORKER_LTO=false (the test suite) trades size and speed of the wasm for a build several
  # minutes shorter: fat LTO with one codegen unit is what deployments and benchmarks use.
  local lto="${WORKER_LTO:-true}" cgu=1
  [ "$lto" = false ] && cgu=16
  echo "== worker-build --release (wasm32, LTO $lto)" >&2
  (
    cd "$WORKER_DIR"
    export CARGO_TARGET_DIR="${WORKER_TARGET_DIR:-$_wt_root/target/worker-wasm}"
    export CARGO_PROFILE_RELEASE_LTO="$lto" CARGO_PROFILE_RELEASE_CODEGEN_UNITS="$cgu" CARGO_PROFILE_RELEASE_DEBUG=false
    export CARGO_PROFILE_RELEASE_OPT_LEVEL="${WORKER_OPT_LEVEL:-3}"
    worker-build --release >&2
  )
}

# Run directly: `scripts/ensure-worker-tools.sh` installs; `scripts/ensure-worker-tools.sh build`
# also builds worker/build (the wrangler.jsonc files in deploy/cloudflare use it as their build command).
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  if [ "${1:-}" = build ]; then
    build_worker
    exit 0
  fi
  ensure_worker_tools
  echo "ensure-worker-tools: ready (worker-build $WORKER_BUILD_VERSION, $(wasm-bindgen --version), $("$WORKERD_BIN" --version))"
fi
