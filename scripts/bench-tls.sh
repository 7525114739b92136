#!/usr/bin/env bash
# TLS plaintext capture benchmark (issue 7): wrk over HTTPS (keep-alive, TLS 1.3) against a local
# nginx, without the agent and with `akto-tap capture -i lo --tls on` (OpenSSL uprobes in both
# nginx and wrk, the socket raw tracepoints, and the eBPF packet capture of the same port, which sees
# the encrypted copy). Reports requests/s, p50/p99, throughput loss against the baseline, the
# agent's CPU, and missed exchanges (requests nginx served − exchanges the agent reconstructed).
#
# Usage: scripts/bench-tls.sh            (root: uprobes need CAP_SYS_ADMIN)
# Environment (defaults in brackets):
#   AKTO_TAP_BIN   agent binary [target/release/akto-tap, built when missing]
#   REPS           repetitions; the table shows medians [3]
#   DURATION       wrk seconds per run [8]
#   CONNS          wrk connections [16]
#   PIN            split = nginx and wrk on CPU 0, the agent on CPU 1; none = no pinning [split]
#   PORT           nginx HTTPS port [18791]; PORT+1 serves stub_status (plain HTTP)
# Writes the table to stdout and as markdown to target/bench-tls.md; raw runs in target/bench-tls/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
REPS=${REPS:-3}
DURATION=${DURATION:-8}
CONNS=${CONNS:-16}
PIN=${PIN:-split}
PORT=${PORT:-18791}
STATUS_PORT=$((PORT + 1))

[ "$(id -u)" = 0 ] || { echo "bench-tls: needs root (uprobes)" >&2; exit 1; }
missing=()
for t in nginx:nginx-light wrk:wrk jq:jq openssl:openssl python3:python3; do
  command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 ||
    { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2; }
fi
BIN=${AKTO_TAP_BIN:-target/release/akto-tap}
if [ ! -x "$BIN" ]; then
  source scripts/ensure-tools.sh
  ensure_rust
  ensure_build_deps
  ensure_ebpf_toolchain
  cargo build --release --quiet -p akto-tap
  BIN=target/release/akto-tap
fi
BIN=$(readlink -f "$BIN")
if [ "$PIN" = split ] && [ "$(nproc)" -ge 2 ]; then
  PIN_LOAD="taskset -c 0"; PIN_AGENT="taskset -c 1"
  pin_note="nginx (1 worker) and wrk (1 thread) pinned to CPU 0, the agent to CPU 1"
else
  PIN_LOAD=""; PIN_AGENT=""; pin_note="no pinning"
fi

out=$root/target/bench-tls
mkdir -p "$out"
rm -f "$out"/*
work=$(mktemp -d /tmp/bench-tls.XXXXXX)
nginx_pid=""
agent_pid=""
cleanup() {
  [ -n "$agent_pid" ] && kill -TERM "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/www" "$work/tmp"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
python3 - "$work/www" <<'PY'
import json, sys
d = sys.argv[1]
small = {"id": 12345, "name": "widget", "price": 19.99, "tags": ["a", "b", "c"],
         "owner": {"id": 7, "email": "owner@example.com"}, "created": "2024-01-01T00:00:00Z", "ok": True, "pad": "x" * 40}
open(f"{d}/small.json", "w").write(json.dumps(small))
items, n = [], 0
while len(json.dumps({"items": items})) < 4000:
    items.append({"id": n, "name": f"item-{n}", "price": n * 1.5, "sku": f"SKU{n:06d}"}); n += 1
open(f"{d}/large.json", "w").write(json.dumps({"items": items}))
PY
sed -e "s#@PORT@#$PORT#g" -e "s#@STATUS_PORT@#$STATUS_PORT#g" -e "s#@DIR@#$work#g" scripts/bench/nginx-tls.conf >"$work/nginx.conf"
$PIN_LOAD nginx -c "$work/nginx.conf" -p "$work" &
nginx_pid=$!
for _ in $(seq 50); do curl -sfk "https://127.0.0.1:$PORT/small.json" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sfk "https://127.0.0.1:$PORT/small.json" >/dev/null || { echo "bench-tls: nginx did not start" >&2; cat "$work/error.log" >&2; exit 1; }

served() { curl -sf "http://127.0.0.1:$STATUS_PORT/status" | awk 'NR==3 {print $3}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
clk_tck=$(getconf CLK_TCK)

# run MODE(none|tls) BODY(small|large) REP
run() {
  local mode=$1 body=$2 rep=$3 tag="$1-$2-$3" stats="$work/stats.json"
  rm -f "$stats"
  agent_pid=""
  if [ "$mode" = tls ]; then
    $PIN_AGENT "$BIN" capture --backend ebpf --interface lo --ports "$PORT" --tls on --output /dev/null \
      --stats-json "$stats" -q 2>"$out/agent-$tag.err" &
    agent_pid=$!
    for _ in $(seq 100); do grep -q "TLS plaintext capture on" "$out/agent-$tag.err" 2>/dev/null && break; sleep 0.1; done
    sleep 1
    kill -0 "$agent_pid" 2>/dev/null || { echo "bench-tls: agent exited at start-up:" >&2; cat "$out/agent-$tag.err" >&2; exit 1; }
  fi
  local s0 s1 c0=0 c1=0 t0 t1
  s0=$(served)
  [ -n "$agent_pid" ] && c0=$(cpu_ticks "$agent_pid")
  t0=$(date +%s.%N)
  $PIN_LOAD wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "https://127.0.0.1:$PORT/$body.json" >"$out/wrk-$tag.txt" 2>&1
  t1=$(date +%s.%N)
  [ -n "$agent_pid" ] && c1=$(cpu_ticks "$agent_pid")
  s1=$(served)
  local exchanges=NA agent_cpu=NA ringfull=NA
  if [ -n "$agent_pid" ]; then
    # wrk's connections close at its end: their last exchanges finish on the FIN.
    sleep 1
    kill -TERM "$agent_pid"
    wait "$agent_pid" || echo "bench-tls: agent exited with $?" >&2
    agent_pid=""
    cp "$stats" "$out/stats-$tag.json"
    exchanges=$(jq '.pipeline.exchanges' "$stats")
    ringfull=$(jq '.tls.kernel.ring_full_events' "$stats")
    agent_cpu=$(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" -v hz="$clk_tck" 'BEGIN {printf "%.3f", (b - a) / hz / (t1 - t0)}')
  fi
  python3 - "$out/wrk-$tag.txt" "$mode" "$body" "$rep" "$((s1 - s0 - 1))" "$agent_cpu" "$exchanges" "$ringfull" >>"$out/runs.tsv" <<'PY'
import re, sys
txt = open(sys.argv[1]).read()
mode, body, rep, served, cpu, exch, ringfull = sys.argv[2:]
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s|m)", v)
    return float(m.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3, "m": 6e4}[m.group(2)]
rps = re.search(r"Requests/sec:\s+([\d.]+)", txt)
p50 = re.search(r"^\s+50%\s+(\S+)", txt, re.M); p99 = re.search(r"^\s+99%\s+(\S+)", txt, re.M)
if not (rps and p50 and p99):
    sys.exit(f"bench-tls: cannot parse wrk output {sys.argv[1]}:\n{txt}")
missed = "NA" if exch == "NA" else str(int(served) - int(exch))
print("\t".join([mode, body, rep, rps.group(1), f"{ms(p50.group(1)):.3f}", f"{ms(p99.group(1)):.3f}", served, cpu, exch, missed, ringfull]))
PY
  tail -n1 "$out/runs.tsv" | awk -F'\t' '{printf "  %-4s %-5s rep %s: %8.0f req/s p50 %6.3f ms p99 %7.3f ms served %7s agent cpu %5s exchanges %7s missed %4s ring-full %s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11}' >&2
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench-tls: $BIN, $REPS x ${DURATION}s runs, $CONNS connections; $pin_note; load average $load_before" >&2
for rep in $(seq "$REPS"); do
  for body in small large; do
    for mode in none tls; do
      run "$mode" "$body" "$rep"
    done
  done
done
# --- the cost of one probed SSL call, without sockets: bare, with plain tracefs uprobes (no BPF,
# no akto-tap: the platform's floor), and with the agent's probes ---------------------------------
libssl=$(python3 -c 'import ssl, _ssl; print(_ssl.__file__)' | xargs ldd | awk '/libssl\.so/ {print $3}')
calls() { $PIN_LOAD python3 scripts/bench/ssl_calls.py "$work/cert.pem" "$work/key.pem" 50000; }
bare=$(calls)
tracefs=/sys/kernel/tracing
[ -d $tracefs/events ] || tracefs=/sys/kernel/debug/tracing
floor=NA
if [ -w $tracefs/uprobe_events ] && [ -n "$libssl" ]; then
  off() { nm -D "$libssl" | awk -v f="$1" '$3 ~ "^"f"@" {print $1}'; }
  echo "p:akto_tap_bench_w $libssl:0x$(off SSL_write_ex)" >>$tracefs/uprobe_events
  echo "p:akto_tap_bench_r $libssl:0x$(off SSL_read_ex)" >>$tracefs/uprobe_events
  echo 1 >$tracefs/events/uprobes/akto_tap_bench_w/enable
  echo 1 >$tracefs/events/uprobes/akto_tap_bench_r/enable
  floor=$(calls)
  echo 0 >$tracefs/events/uprobes/akto_tap_bench_w/enable
  echo 0 >$tracefs/events/uprobes/akto_tap_bench_r/enable
  echo "-:akto_tap_bench_w" >>$tracefs/uprobe_events
  echo "-:akto_tap_bench_r" >>$tracefs/uprobe_events
fi
$PIN_AGENT "$BIN" capture --backend pcap --interface lo --ports 1 --tls on --output /dev/null -q 2>"$out/agent-calls.err" &
agent_pid=$!
for _ in $(seq 100); do grep -q "TLS plaintext capture on" "$out/agent-calls.err" 2>/dev/null && break; sleep 0.1; done
probed=$(calls)
kill -TERM "$agent_pid"; wait "$agent_pid" || true; agent_pid=""
echo "  SSL_write_ex+SSL_read_ex pair: ${bare} us bare, ${floor} us with bare tracefs entry uprobes, ${probed} us with akto-tap" >&2

load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$out/runs.tsv" "$pin_note" "$load_before" "$load_after" "$DURATION" "$REPS" "$bare" "$floor" "$probed" >"$root/target/bench-tls.md" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
pin, lb, la, dur, reps, bare, floor, probed = sys.argv[2:]
def med(vals):
    vals = [float(v) for v in vals if v != "NA"]
    return statistics.median(vals) if vals else float("nan")
print(f"HTTPS (TLS 1.3, keep-alive) wrk → nginx on loopback; {pin}; medians of {reps} runs of {dur} s; load average {lb} before, {la} after.\n")
print("| agent | body | req/s | p50 / p99 ms | throughput loss | agent CPU (cores) | missed | ring-full drops |")
print("|---|---|---|---|---|---|---|---|")
for body in ("small", "large"):
    base = med([r[3] for r in rows if r[0] == "none" and r[1] == body])
    for mode in ("none", "tls"):
        rs = [r for r in rows if r[0] == mode and r[1] == body]
        rps = med([r[3] for r in rs])
        loss = "—" if mode == "none" else f"{(base - rps) / base * 100:.1f} %"
        label = "none" if mode == "none" else "`--tls on`"
        size = "220 B" if body == "small" else "4 KB"
        cpu = "—" if mode == "none" else f"{med([r[7] for r in rs]):.2f}"
        missed = "—" if mode == "none" else f"{sum(int(r[9]) for r in rs)}"
        ring = "—" if mode == "none" else f"{sum(int(r[10]) for r in rs)}"
        print(f"| {label} | {size} | {rps:,.0f} | {med([r[4] for r in rs]):.2f} / {med([r[5] for r in rs]):.2f} | {loss} | {cpu} | {missed} | {ring} |")
print(f"\nOne SSL_write_ex + SSL_read_ex pair over memory BIOs (no syscalls): {bare} µs bare, {floor} µs with plain tracefs entry uprobes on both functions (no BPF, no akto-tap), {probed} µs with akto-tap's probes.")
PY
cat "$root/target/bench-tls.md"
