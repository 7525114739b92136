#!/usr/bin/env bash
# Installs what the project's commands need, idempotently: each step is skipped when its tool
# is already present. Sourced by run.sh and test.sh.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

ensure_rust() {
  if ! have cargo; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if ! have cargo; then
    echo "ensure-tools: installing Rust with rustup (stable)" >&2
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >&2
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
}

# clippy for the lint step of test.sh (the minimal rustup profile leaves it out).
ensure_clippy() {
  ensure_rust
  cargo clippy --version >/dev/null 2>&1 || rustup component add clippy >&2
}

# rustfmt for the format check of test.sh (also left out of the minimal profile).
ensure_rustfmt() {
  ensure_rust
  cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt >&2
}

# C toolchain and headers for -sys crates: rdkafka builds a bundled librdkafka (make, gcc)
# against the system OpenSSL (libssl-dev, pkg-config); the capture links libpcap (libpcap-dev).
ensure_build_deps() {
  local missing=()
  # Build: compilers, libssl and libpcap headers. The live tests' peers: python3, curl, the openssl
  # CLI (certificates, s_server) and iproute2 (network namespaces).
  for pkg in build-essential pkg-config libssl-dev libpcap-dev python3 curl openssl iproute2; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "ensure-tools: installing ${missing[*]}" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  fi
}

# cargo-fuzz and a nightly toolchain, for the fuzz smoke runs.
ensure_fuzz() {
  ensure_rust
  if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal >&2 || return 1
  fi
  if ! have cargo-fuzz; then
    echo "ensure-tools: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked >&2 || return 1
  fi
}

# Tansu, the Kafka-protocol broker the Kafka integration tests start on loopback
# (../shared/TOOLCHAIN.md). 15–25 min to build cold; skipped when 0.6.0 is installed.
ensure_tansu() {
  ensure_rust
  if have tansu && tansu --version 2>/dev/null | grep -q '0\.6\.0'; then
    return 0
  fi
  echo "ensure-tools: installing tansu 0.6.0 (cargo install, 15-25 min cold)" >&2
  cargo install tansu --version 0.6.0 --locked --features dynostore >&2 || return 1
}

# The eBPF toolchain (../shared/TOOLCHAIN.md): LLVM 22 and bpf-linker to link the kernel programs,
# nightly rust-src to build `core` for the bpf target, bpftool for inspection. Without it the
# agent still builds (agent/build.rs), but `capture` can only use libpcap.
ensure_ebpf_toolchain() {
  ensure_rust
  local missing=()
  for pkg in llvm-22-dev libpolly-22-dev clang libpcap-dev bpftool; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "ensure-tools: installing ${missing[*]}" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 || return 1
  fi
  if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal >&2 || return 1
  fi
  if ! rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; then
    rustup component add rust-src --toolchain nightly >&2 || return 1
  fi
  if ! have bpf-linker; then
    echo "ensure-tools: installing bpf-linker (about 90 s)" >&2
    LLVM_PREFIX=/usr/lib/llvm-22 cargo install bpf-linker --no-default-features --features llvm-22 >&2 || return 1
  fi
}
