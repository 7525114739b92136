#!/usr/bin/env bash
# End-to-end replay benchmark: generates a large realistic capture once (deterministic, seed 1),
# then measures `akto-tap replay` on one core: capture MB per CPU-second and exchanges per
# CPU-second, writing Akto records to /dev/null, with `--format none` (engine and reader only), and
# with `--no-mmap` (the file read through a buffer rather than mapped).
# Usage: scripts/bench-replay.sh [SIZE, default 1GiB]   (REPS=5: runs per mode, the median is reported;
#        AKTO_TAP_BIN=path: measure that binary instead of building the release one;
#        SETTLE=0: leave the capture's page cache as it is, below)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-tools.sh
ensure_rust
ensure_build_deps
size=${1:-1GiB}
# AKTO_TAP_BIN: a binary built elsewhere (e.g. an earlier revision, to compare).
if [ -n "${AKTO_TAP_BIN:-}" ]; then
  bin=$AKTO_TAP_BIN
else
  cargo build --release --quiet -p akto-tap
  bin=./target/release/akto-tap
fi
echo "bench-replay: $bin" >&2
capture=target/bench/replay-$size.pcap
if [ ! -s "$capture" ]; then
  mkdir -p target/bench
  "$bin" synth --output "$capture" --size "$size" --seed 1
fi
bytes=$(stat -c %s "$capture")
reps=${REPS:-5}
# The page cache's layout of the capture moves the CPU time: the kernel maps a capture read from
# disk (read-ahead: large folios) with less work than one written in small pieces (4 KiB folios:
# 2-6.5 % more CPU for the same 256 MiB capture and binary, 6-12 % while its pages are dirty).
# Every run measures the first: the capture is written out, dropped from the page cache and read
# back once, as a capture replayed from disk is. SETTLE=0 measures the page cache as it is.
if [ "${SETTLE:-1}" != 0 ]; then
  python3 - "$capture" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.fsync(fd)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
while os.read(fd, 1 << 20):
    pass
os.close(fd)
PY
fi
# Each mode runs $reps times; CPU time (user + system) comes from the kernel's accounting of the
# child at microsecond resolution (`/usr/bin/time` has 10 ms steps, 2-3 % of a run here), and the
# median is reported with the spread, since a shared machine moves single runs by several percent.
run() {
  local label=$1; shift
  # taskset pins the replay to one core and --workers 0 keeps the encoding on the reading thread
  # (the cheapest way to spend one core): the figure is per core.
  python3 - "$label" "$bytes" "$reps" taskset -c 0 "$bin" replay "$capture" -o /dev/null --workers 0 "$@" <<'PY'
import re, resource, statistics, subprocess, sys, time
label, size, reps, cmd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
cpus, walls, exchanges = [], [], 0
for _ in range(reps):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    run = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    walls.append(time.monotonic() - start)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode != 0:
        sys.exit(f"bench-replay: {' '.join(cmd)} exited {run.returncode}:\n{run.stderr}")
    cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    found = re.search(r"exchanges (\d+)", run.stderr)
    exchanges = int(found.group(1)) if found else 0
cpu = statistics.median(cpus)
print(f"{label:<28} {size / 1e6 / cpu:8.1f} MB/CPU-s  {exchanges / cpu:10.0f} exchanges/CPU-s  "
      f"(median cpu {cpu:.3f}s of {reps}, range {min(cpus):.3f}-{max(cpus):.3f}s, wall {statistics.median(walls):.2f}s, "
      f"{size / 1e6:.0f} MB, {exchanges} exchanges)")
PY
}
run "replay → Akto JSONL"
run "replay, engine only" --format none
# The same with the file read through a buffer instead of mapped (what pipes and `--no-mmap` get).
run "replay → Akto JSONL, read" --no-mmap
