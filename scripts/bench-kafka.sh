#!/usr/bin/env bash
# Kafka pipeline benchmark against a local Tansu broker (in-memory storage, 127.0.0.1):
#   0. replay → JSON lines (/dev/null), encoding inline and on the default worker threads;
#   1. the ceiling of broker + librdkafka: a minimal rdkafka producer (no reassembly, no sink)
#      sends the same records (the replay's JSON lines) with the sink's settings, PASSES times
#      over (steady state: timing starts once the records are in memory);
#   2. replay → Kafka: records/s end to end (capture read, reassembly, Akto JSON, produce,
#      broker acknowledgement), CPU per record of the agent and of the broker; RUNS runs, each
#      on a fresh broker;
#   3. ingest API → Kafka: 100-record batches from keep-alive connections.
# Every figure comes with the load average when it was taken, and steps 1–2 with the CPU of each
# thread and how long it waited for a CPU (scripts/thread-cpu.py): on a shared machine the wall
# rate says how much CPU the pipeline got, CPU per record says what it costs. The "CPU-bound at"
# line is the rate this pipeline would reach with every CPU of the machine to itself.
# Usage: [AKTO_TAP_BIN=path] [WORKERS=N] [PASSES=3] scripts/bench-kafka.sh [CAPTURE_SIZE=1GB] [INGEST_SECONDS=15] [RUNS=3] [PARTITIONS=1]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-tools.sh
ensure_rust
ensure_tansu
SIZE=${1:-1GB}
SECS=${2:-15}
RUNS=${3:-3}
PARTITIONS=${4:-1}
PASSES=${PASSES:-3}
# --workers of the replay (default: the replay's own: one per CPU besides the reader and, to Kafka, besides one for the sink; at most 4).
WORKERS_ARG=()
if [ -n "${WORKERS:-}" ]; then WORKERS_ARG=(--workers "$WORKERS"); fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release -p akto-tap >&2
# The test binary holds the load generators (bench_raw_producer, bench_ingest_load).
TESTBIN=$(cargo test --release -p akto-tap --test kafka --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import sys, json
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "kafka" and m.get("executable"):
        print(m["executable"])' | tail -1)
# AKTO_TAP_BIN: another build to compare (e.g. a copy of an older release binary).
BIN=${AKTO_TAP_BIN:-$CARGO_TARGET_DIR/release/akto-tap}
THREADS=$PWD/scripts/thread-cpu.py
TICK=$(getconf CLK_TCK)
NCPU=$(nproc)
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
cpu() { awk -v t="$TICK" '{printf "%.2f", ($14+$15)/t}' "/proc/$1/stat"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# A fresh broker (in-memory storage grows with every run): sets TPID.
start_broker() {
  if [ -n "${TPID:-}" ]; then kill "$TPID" 2>/dev/null || true; wait "$TPID" 2>/dev/null || true; fi
  tansu broker --listener-url "tcp://127.0.0.1:$PORT" --advertised-listener-url "tcp://127.0.0.1:$PORT" \
    --storage-engine memory://tansu/ >"$WORK/tansu.log" 2>&1 &
  TPID=$!; PIDS+=("$TPID")
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
  tansu topic create akto.api.logs --partitions "$PARTITIONS" --broker "tcp://127.0.0.1:$PORT" >/dev/null
}

echo "== capture: akto-tap synth --size $SIZE; $NCPU CPUs; topic partitions $PARTITIONS"
"$BIN" synth --size "$SIZE" -o "$WORK/cap.pcap" >/dev/null 2>&1

echo "== replay → JSON lines (/dev/null), for reference"
N0=$("$BIN" replay "$WORK/cap.pcap" -o "$WORK/cap.jsonl" -q && wc -l <"$WORK/cap.jsonl")
for w in 0 default; do
  args=(); if [ "$w" = 0 ]; then args=(--workers 0); else args=("${WORKERS_ARG[@]}"); fi
  L=$(load)
  /usr/bin/time -f "%e %U %S" -o "$WORK/time0" "$BIN" replay "$WORK/cap.pcap" -o /dev/null -q "${args[@]}"
  read -r W0 U0 S0 <"$WORK/time0"
  python3 -c "n,w,u,s=$N0,$W0,$U0,$S0; print(f'BENCH replay→JSONL (workers $w): {n} records, {n/w:,.0f} records/s wall, {(u+s)/n*1e6:.1f} µs CPU/record; load $L')"
done

echo "== ceiling: minimal rdkafka producer, the same records, the sink's settings, $PASSES passes"
start_broker
B0=$(cpu "$TPID"); L=$(load)
KAFKA_ADDR="127.0.0.1:$PORT" BENCH_JSONL="$WORK/cap.jsonl" BENCH_PASSES=$PASSES "$TESTBIN" --ignored bench_raw_producer --nocapture \
  >"$WORK/raw.out" 2>/dev/null &
RP=$!
"$THREADS" producer=$RP broker=$TPID >"$WORK/threads.out" & SP=$!
wait $RP; kill -TERM $SP 2>/dev/null || true; wait $SP || true
B1=$(cpu "$TPID")
grep '^BENCH' "$WORK/raw.out"
python3 - "$N0" "$PASSES" "$B0" "$B1" "$NCPU" "$L" "$WORK/raw.out" <<'PY'
import re, sys
n, passes, b0, b1, ncpu, load, out = sys.argv[1:]
n = int(n) * int(passes); b = (float(b1) - float(b0)) / n * 1e6
p = float(re.search(r"producer ([0-9.]+) µs", open(out).read()).group(1))
print(f"BENCH raw producer: broker {b:.1f} µs CPU/record; CPU-bound at {int(ncpu) / (p + b) * 1e6:,.0f} records/s "
      f"with all {ncpu} CPUs (producer + broker {p + b:.1f} µs/record); load {load}")
PY
cat "$WORK/threads.out"
rm -f "$WORK/cap.jsonl"

for run in $(seq "$RUNS"); do
  echo "== replay → Kafka ($run/$RUNS, fresh broker, $PARTITIONS partitions)"
  start_broker
  B0=$(cpu "$TPID"); L=$(load)
  /usr/bin/time -f "%e %U %S" -o "$WORK/time1" "$BIN" replay "$WORK/cap.pcap" "${WORKERS_ARG[@]}" \
    --kafka-brokers "127.0.0.1:$PORT" --spool-dir "$WORK/spool1" 2>"$WORK/replay.err" &
  TP=$!
  # The replay is the child of `time`.
  sleep 0.1; AP=$(pgrep -P "$TP" | head -1 || true)
  "$THREADS" replay="${AP:-$TP}" broker=$TPID >"$WORK/threads.out" & SP=$!
  wait $TP; kill -TERM $SP 2>/dev/null || true; wait $SP || true
  B1=$(cpu "$TPID")
  read -r W1 U1 S1 <"$WORK/time1"
  grep '^kafka:' "$WORK/replay.err"
  N=$(grep -o 'delivered [0-9]*' "$WORK/replay.err" | awk '{print $2}')
  python3 - "$N" "$W1" "$U1" "$S1" "$B0" "$B1" "$NCPU" "$L" "$(load)" <<'PY'
import sys
n, w1, u1, s1, b0, b1, ncpu, l0, l1 = sys.argv[1:]
n = int(n); w1, u1, s1, b0, b1 = map(float, (w1, u1, s1, b0, b1))
a, b = (u1 + s1) / n * 1e6, (b1 - b0) / n * 1e6
print(f"BENCH replay→Kafka: {n} records acknowledged in {w1:.2f} s = {n/w1:,.0f} records/s wall; "
      f"agent {a:.1f} µs CPU/record, broker {b:.1f} µs CPU/record; CPU-bound at {int(ncpu) / (a + b) * 1e6:,.0f} records/s "
      f"with all {ncpu} CPUs; load {l0} → {l1}")
PY
  cat "$WORK/threads.out"
  rm -rf "$WORK/spool1"
done

echo "== ingest API → Kafka ($SECS s, 100-record batches); load $(load)"
"$BIN" ingest --listen 127.0.0.1:0 --kafka-brokers "127.0.0.1:$PORT" --spool-dir "$WORK/spool2" 2>"$WORK/ingest.err" &
IPID=$!; PIDS+=("$IPID")
for _ in $(seq 100); do grep -q 'listening on' "$WORK/ingest.err" 2>/dev/null && break; sleep 0.1; done
ADDR=$(grep -o 'http://[0-9.:]*' "$WORK/ingest.err" | head -1 | sed 's#http://##')
A0=$(cpu "$IPID"); B0=$(cpu "$TPID")
INGEST_ADDR=$ADDR BENCH_SECONDS=$SECS "$TESTBIN" --ignored bench_ingest_load --nocapture 2>/dev/null | grep '^BENCH' | tee "$WORK/load.out"
A1=$(cpu "$IPID"); B1=$(cpu "$TPID")
kill -TERM "$IPID"; wait "$IPID" || true
grep '^kafka:' "$WORK/ingest.err"
R=$(grep -o '^BENCH ingest: [0-9]*' "$WORK/load.out" | awk '{print $3}')
python3 - "$R" "$A0" "$A1" "$B0" "$B1" <<'PY'
import sys
r, a0, a1, b0, b1 = sys.argv[1:]
r = int(r); a0, a1, b0, b1 = map(float, (a0, a1, b0, b1))
print(f"BENCH ingest CPU: agent {(a1-a0)/r*1e6:.1f} µs CPU/record, broker {(b1-b0)/r*1e6:.1f} µs CPU/record")
PY
