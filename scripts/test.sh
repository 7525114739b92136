#!/usr/bin/env bash
# The whole test suite: unit, property and integration tests of every host crate (including the
# conformance suite over ../shared/corpus, the guardrails evaluation over ../shared/datasets —
# both say "skipped" when those folders are absent — the Kafka tests against a real broker and
# the live-capture tests against the real kernel), the deployment checks, the edge worker in
# workerd, then a short run of every fuzz target.
# Installs what it needs, idempotently.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-tools.sh
ensure_rust
ensure_build_deps
# eBPF: the capture tests run the real kernel programs (they need this toolchain to be built).
ensure_ebpf_toolchain || echo "ensure-tools: the eBPF toolchain could not be installed; the eBPF capture tests will fail" >&2

# The Kafka integration tests (agent/tests/kafka.rs) need a broker; they say "skipped"
# when tansu could not be installed.
ensure_tansu || echo "ensure-tools: tansu could not be installed; the Kafka broker tests will be skipped" >&2

mkdir -p target
echo "== rustfmt (rustfmt.toml; nothing to change)"
ensure_rustfmt
cargo fmt --all --check

echo "== clippy (every host crate and its tests, warnings are errors)"
ensure_clippy
cargo clippy --all-targets --quiet -- -D warnings

# A user's machine may lack the eBPF toolchain (scripts/run.sh does not install it): the agent
# must still build, with empty programs (capture then uses libpcap). Its own target directory:
# the main one already holds the programs' objects, from the clippy run.
echo "== the agent builds without the eBPF toolchain (AYA_BUILD_SKIP=1)"
if ! AYA_BUILD_SKIP=1 cargo check -p akto-tap --quiet --target-dir target/no-ebpf >target/no-ebpf.log 2>&1; then
  cat target/no-ebpf.log
  exit 1
fi

# Profile `ci` (Cargo.toml): release optimizations without the release profile's fat LTO.
echo "== cargo test (default members: every host crate, profile ci)"
cargo test --profile ci --no-fail-fast 2>&1 | tee target/test-output.txt
bin="$(pwd)/target/ci/akto-tap"

echo "== deployment manifests, chart, unit and image (scripts/test-deploy.sh)"
AKTO_TAP_BIN="$bin" ./scripts/test-deploy.sh

# The edge worker: wasm build (without fat LTO: minutes shorter; deployments and the latency
# benchmark use it) and the end-to-end suite in workerd against the akto-tap built above.
echo "== edge worker (scripts/test-worker.sh)"
WORKER_LTO=false AKTO_TAP_BIN="$bin" ./scripts/test-worker.sh

echo "== fuzz smoke (${FUZZ_SECONDS:=20}s per target)"
if ensure_fuzz; then
  for dir in $(find . -path ./target -prune -o -name Cargo.toml -path '*/fuzz/Cargo.toml' -print | xargs -n1 dirname); do
    for target in $(cd "$dir" && cargo +nightly fuzz list); do
      echo "-- $dir: $target"
      (cd "$dir/.." && cargo +nightly fuzz run "$target" -- -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=4096 2>&1 | tail -n 3)
    done
  done
else
  echo "fuzz smoke: skipped (nightly toolchain or cargo-fuzz could not be installed)"
fi
echo "== all tests passed"
