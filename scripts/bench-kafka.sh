#!/usr/bin/env bash
# Kafka pipeline benchmark against a local Tansu broker (in-memory storage, 127.0.0.1):
#   0. the ceiling: a minimal rdkafka producer (no reassembly, no sink) sends the same records
#      (the replay's JSON lines) with the sink's settings — what broker + librdkafka take here;
#   1. replay → Kafka: records/s end to end (capture read, reassembly, Akto JSON, produce,
#      broker acknowledgement), CPU per record of the agent and of the broker; RUNS runs, each
#      on a fresh broker (the machine is shared: compare CPU per record, and the best wall rate);
#   2. ingest API → Kafka: 100-record batches from keep-alive connections, records/s and CPU
#      per record of the agent and of the broker.
# Usage: [AKTO_TAP_BIN=path] scripts/bench-kafka.sh [CAPTURE_SIZE=256MB] [INGEST_SECONDS=15] [RUNS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-tools.sh
ensure_rust
ensure_tansu
SIZE=${1:-256MB}
SECS=${2:-15}
RUNS=${3:-3}
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
TICK=$(getconf CLK_TCK)
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
cpu() { awk -v t="$TICK" '{printf "%.2f", ($14+$15)/t}' "/proc/$1/stat"; }

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# A fresh broker (in-memory storage grows with every run): sets TPID.
start_broker() {
  if [ -n "${TPID:-}" ]; then kill "$TPID" 2>/dev/null || true; wait "$TPID" 2>/dev/null || true; fi
  tansu broker --listener-url "tcp://127.0.0.1:$PORT" --advertised-listener-url "tcp://127.0.0.1:$PORT" \
    --storage-engine memory://tansu/ >"$WORK/tansu.log" 2>&1 &
  TPID=$!; PIDS+=("$TPID")
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
  tansu topic create akto.api.logs --partitions 1 --broker "tcp://127.0.0.1:$PORT" >/dev/null
}

echo "== capture: akto-tap synth --size $SIZE"
"$BIN" synth --size "$SIZE" -o "$WORK/cap.pcap" >/dev/null 2>&1

echo "== replay → JSON lines (/dev/null), for reference"
/usr/bin/time -f "%e %U %S" -o "$WORK/time0" "$BIN" replay "$WORK/cap.pcap" -o /dev/null -q
read -r W0 U0 S0 <"$WORK/time0"
N0=$("$BIN" replay "$WORK/cap.pcap" -o "$WORK/cap.jsonl" -q && wc -l <"$WORK/cap.jsonl")
python3 -c "n,w,u,s=$N0,$W0,$U0,$S0; print(f'BENCH replay→JSONL: {n} records, {n/w:,.0f} records/s wall, {(u+s)/n*1e6:.1f} µs CPU/record')"

echo "== ceiling: minimal rdkafka producer, the same records, the sink's settings"
start_broker
B0=$(cpu "$TPID")
KAFKA_ADDR="127.0.0.1:$PORT" BENCH_JSONL="$WORK/cap.jsonl" "$TESTBIN" --ignored bench_raw_producer --nocapture 2>/dev/null | grep '^BENCH'
B1=$(cpu "$TPID")
python3 -c "print(f'BENCH raw producer: broker {($B1-$B0)/$N0*1e6:.1f} µs CPU/record')"
rm -f "$WORK/cap.jsonl"

for run in $(seq "$RUNS"); do
  echo "== replay → Kafka ($run/$RUNS, fresh broker)"
  start_broker
  B0=$(cpu "$TPID")
  /usr/bin/time -f "%e %U %S" -o "$WORK/time1" "$BIN" replay "$WORK/cap.pcap" \
    --kafka-brokers "127.0.0.1:$PORT" --spool-dir "$WORK/spool1" 2>"$WORK/replay.err"
  B1=$(cpu "$TPID")
  read -r W1 U1 S1 <"$WORK/time1"
  grep '^kafka:' "$WORK/replay.err"
  N=$(grep -o 'delivered [0-9]*' "$WORK/replay.err" | awk '{print $2}')
  python3 - "$N" "$W1" "$U1" "$S1" "$B0" "$B1" <<'PY'
import sys
n, w1, u1, s1, b0, b1 = sys.argv[1:]
n = int(n); w1, u1, s1, b0, b1 = map(float, (w1, u1, s1, b0, b1))
print(f"BENCH replay→Kafka: {n} records acknowledged in {w1:.2f} s = {n/w1:,.0f} records/s wall; "
      f"agent {(u1+s1)/n*1e6:.1f} µs CPU/record, broker {(b1-b0)/n*1e6:.1f} µs CPU/record")
PY
  rm -rf "$WORK/spool1"
done

echo "== ingest API → Kafka ($SECS s, 100-record batches)"
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
