#!/usr/bin/env bash
# Live-capture benchmark (issue 4): wrk against a local nginx on loopback, without the agent and with
# `akto-tap capture` attached to `lo` (eBPF and libpcap backends). For each backend it measures
# request rate, p50/p99 latency, throughput loss against the no-agent baseline, the agent's CPU
# (CPU seconds from /proc/PID/stat over the wrk window / wall seconds = cores), and missed exchanges
# (requests nginx served during the window − `pipeline.exchanges` in the agent's stats JSON), at
# unlimited rate (wrk -t1 -c16) and at fixed offered rates (wrk + scripts/bench/rate.lua), then
# steps the rate up to find the highest rate with zero missed exchanges.
#
# Usage: scripts/bench-capture.sh            (root: eBPF and the agent need it)
# Environment (defaults in brackets):
#   AKTO_TAP_BIN   agent binary [target/release/akto-tap, built when missing]
#   BACKENDS       backends to measure ["ebpf pcap"]
#   REPS           repetitions of each run; the table shows medians [3]
#   DURATION       wrk seconds per run [10]
#   RATES          fixed offered rates, requests/s ["5000 10000 20000"]
#   SEARCH_RATES   rates tried (ascending, one run each) for the zero-miss ceiling ["15000 25000 30000 40000"]
#   RATE_CONNS     wrk connections for the rate-limited runs [128]
#   LARGE          1 = also unlimited runs on the ~4 KB body [1]
#   PIN            split = nginx and wrk on CPU 0, the agent on CPU 1; none = no pinning [split]
#   PORT           nginx port [18781]; PORT+1 serves stub_status (not captured)
#   AGENT_ARGS     extra `capture` flags, e.g. "--tls off" [none]
#   (RATES and SEARCH_RATES may be set empty to skip those runs)
# Writes the table to stdout and as markdown to target/bench-capture.md; raw runs in target/bench-capture/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

BACKENDS=${BACKENDS:-"ebpf pcap"}
REPS=${REPS:-3}
DURATION=${DURATION:-10}
RATES=${RATES-"5000 10000 20000"}
SEARCH_RATES=${SEARCH_RATES-"15000 25000 30000 40000"}
AGENT_ARGS=${AGENT_ARGS:-}
RATE_CONNS=${RATE_CONNS:-128}
LARGE=${LARGE:-1}
PIN=${PIN:-split}
PORT=${PORT:-18781}
STATUS_PORT=$((PORT + 1))

[ "$(id -u)" = 0 ] || { echo "bench-capture: needs root (eBPF attach, libpcap on lo)" >&2; exit 1; }

# --- tools -------------------------------------------------------------------------------------
missing=()
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v jq >/dev/null 2>&1 || missing+=(jq)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench-capture: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 ||
    { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2; }
fi

BIN=${AKTO_TAP_BIN:-target/release/akto-tap}
if [ ! -x "$BIN" ]; then
  source scripts/ensure-tools.sh
  ensure_rust
  ensure_build_deps
  dpkg -s libpcap-dev >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpcap-dev >&2
  cargo build --release --quiet -p akto-tap
  BIN=target/release/akto-tap
fi
BIN=$(readlink -f "$BIN")

ncpu=$(nproc)
if [ "$PIN" = split ] && [ "$ncpu" -ge 2 ]; then
  PIN_LOAD="taskset -c 0"; PIN_AGENT="taskset -c 1"
  pin_note="nginx (1 worker) and wrk (1 thread) pinned to CPU 0, the agent (all its threads) to CPU 1"
else
  PIN_LOAD=""; PIN_AGENT=""
  pin_note="no pinning"
fi

out=$root/target/bench-capture
mkdir -p "$out"
rm -f "$out"/*
work=$(mktemp -d /tmp/bench-capture.XXXXXX)
nginx_pid=""
agent_pid=""
spin_pid=""
cleanup() {
  [ -n "$spin_pid" ] && kill "$spin_pid" 2>/dev/null || true
  [ -n "$agent_pid" ] && kill -TERM "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- nginx -------------------------------------------------------------------------------------
mkdir -p "$work/www" "$work/tmp"
python3 - "$work/www" <<'EOF'
import json, sys
d = sys.argv[1]
small = {"id": 12345, "name": "widget", "price": 19.99, "tags": ["a", "b", "c"],
         "owner": {"id": 7, "email": "owner@example.com"}, "created": "2024-01-01T00:00:00Z",
         "ok": True, "pad": "x" * 40}
open(f"{d}/small.json", "w").write(json.dumps(small))
items, n = [], 0
while len(json.dumps({"items": items})) < 4000:
    items.append({"id": n, "name": f"item-{n}", "price": n * 1.5, "sku": f"SKU{n:06d}"}); n += 1
open(f"{d}/large.json", "w").write(json.dumps({"items": items}))
EOF
sed -e "s#@PORT@#$PORT#g" -e "s#@STATUS_PORT@#$STATUS_PORT#g" -e "s#@DIR@#$work#g" \
  scripts/bench/nginx.conf >"$work/nginx.conf"
$PIN_LOAD nginx -c "$work/nginx.conf" -p "$work" &
nginx_pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/small.json" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/small.json" >/dev/null || { echo "bench-capture: nginx did not start" >&2; cat "$work/error.log" >&2; exit 1; }
small_bytes=$(stat -c %s "$work/www/small.json"); large_bytes=$(stat -c %s "$work/www/large.json")

served() { curl -sf "http://127.0.0.1:$STATUS_PORT/status" | awk 'NR==3 {print $3}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
clk_tck=$(getconf CLK_TCK)

# run MODE(none|ebpf|pcap) RATE(max|N) BODY(small|large) REP
run() {
  local mode=$1 rate=$2 body=$3 rep=$4
  local tag="$mode-$rate-$body-$rep" stats="$work/stats-$mode.json"
  local wrkargs=(-t1 -c16 -d"${DURATION}s" --latency)
  local luaargs=()
  if [ "$rate" != max ]; then
    wrkargs=(-t1 -c"$RATE_CONNS" -d"${DURATION}s" --latency -s "$root/scripts/bench/rate.lua")
    luaargs=(-- "$rate" 1)
  fi
  rm -f "$stats"
  agent_pid=""
  if [ "$mode" = spin ]; then
    # Control: CPU 1 kept busy by a spinner instead of the agent (see the note on vCPU idling).
    $PIN_AGENT sh -c 'while :; do :; done' &
    spin_pid=$!
    sleep 0.5
  elif [ "$mode" != none ]; then
    # shellcheck disable=SC2086 # AGENT_ARGS is a list of flags
    $PIN_AGENT "$BIN" capture --backend "$mode" --interface lo --ports "$PORT" --output /dev/null \
      --stats-json "$stats" -q $AGENT_ARGS 2>"$out/agent-$tag.err" &
    agent_pid=$!
    sleep 2
    kill -0 "$agent_pid" 2>/dev/null || { echo "bench-capture: agent ($mode) exited at start-up:" >&2; cat "$out/agent-$tag.err" >&2; exit 1; }
  fi
  local s0 s1 c0=0 c1=0 t0 t1 n0 n1
  s0=$(served)
  n0=$(cpu_ticks "$nginx_pid")
  [ -n "$agent_pid" ] && c0=$(cpu_ticks "$agent_pid")
  t0=$(date +%s.%N)
  /usr/bin/time -f '%U %S' -o "$out/wrktime-$tag.txt" \
    $PIN_LOAD wrk "${wrkargs[@]}" "http://127.0.0.1:$PORT/$body.json" "${luaargs[@]}" >"$out/wrk-$tag.txt" 2>&1
  t1=$(date +%s.%N)
  [ -n "$agent_pid" ] && c1=$(cpu_ticks "$agent_pid")
  s1=$(served)
  n1=$(cpu_ticks "$nginx_pid")
  if [ -n "$spin_pid" ]; then kill "$spin_pid"; wait "$spin_pid" 2>/dev/null || true; spin_pid=""; fi
  local load_us
  load_us=$(awk -v a="$n0" -v b="$n1" -v n="$((s1 - s0 - 1))" -v hz="$clk_tck" '{printf "%.2f", ((b - a) / hz + $1 + $2) / n * 1e6}' "$out/wrktime-$tag.txt")
  local exchanges=NA kdrops=NA qfull=NA agent_cpu=NA
  if [ -n "$agent_pid" ]; then
    sleep 1 # in-flight responses of the closing connections
    kill -TERM "$agent_pid"
    wait "$agent_pid" || echo "bench-capture: agent ($mode) exited with $?" >&2
    agent_pid=""
    if [ -s "$stats" ]; then
      cp "$stats" "$out/stats-$tag.json"
      exchanges=$(jq '.pipeline.exchanges' "$stats")
      kdrops=$(jq '[.kernel.drops // {} | to_entries[].value] | add // 0' "$stats")
      qfull=$(jq '.pipeline.queue_full_packets' "$stats")
    fi
    agent_cpu=$(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" -v hz="$clk_tck" 'BEGIN {printf "%.3f", (b - a) / hz / (t1 - t0)}')
  fi
  # wrk: "N requests in Xs", "Requests/sec: R", latency distribution (us/ms/s).
  python3 - "$out/wrk-$tag.txt" "$mode" "$rate" "$body" "$rep" "$((s1 - s0 - 1))" "$agent_cpu" "$exchanges" "$kdrops" "$qfull" \
    "$load_us" >>"$out/runs.tsv" <<'EOF'
import re, sys
txt = open(sys.argv[1]).read()
mode, rate, body, rep, served, cpu, exch, kdrops, qfull, nginx_us = sys.argv[2:]
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s|m)", v)
    return float(m.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3, "m": 6e4}[m.group(2)]
req = re.search(r"(\d+) requests in", txt); rps = re.search(r"Requests/sec:\s+([\d.]+)", txt)
p50 = re.search(r"^\s+50%\s+(\S+)", txt, re.M); p99 = re.search(r"^\s+99%\s+(\S+)", txt, re.M)
errs = re.search(r"Socket errors: (.*)", txt); non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", txt)
if not (req and rps and p50 and p99):
    sys.exit(f"bench-capture: cannot parse wrk output {sys.argv[1]}:\n{txt}")
missed = "NA" if exch == "NA" else str(int(served) - int(exch))
print("\t".join([mode, rate, body, rep, req.group(1), rps.group(1), f"{ms(p50.group(1)):.3f}",
                 f"{ms(p99.group(1)):.3f}", served, cpu, exch, missed, kdrops, qfull, nginx_us,
                 (errs.group(1).replace("\t", " ") if errs else "") + (f" non2xx {non2xx.group(1)}" if non2xx else "")]))
EOF
  tail -n1 "$out/runs.tsv" | awk -F'\t' '{printf "  %-5s rate %-6s %-5s rep %s: %8.0f req/s p50 %7.3f ms p99 %8.3f ms served %8s cpu %5s exch %8s missed %5s kdrops %s qfull %s nginx %s us/req %s\n", $1, $2, $3, $4, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16}' >&2
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
others_before=$(ps -eo pcpu,comm --sort=-pcpu | awk 'NR>1 && NR<=7 {printf "%s %s%%, ", $2, $1}')
start=$(date +%s)
echo "bench-capture: $BIN, backends: $BACKENDS, $REPS x ${DURATION}s runs; $pin_note; load average $load_before" >&2

modes="none $BACKENDS"
[ "$PIN" = split ] && [ "$ncpu" -ge 2 ] && modes="none spin $BACKENDS"
for rep in $(seq "$REPS"); do
  for rate in max $RATES; do
    for mode in $modes; do
      if [ "$mode" = spin ] && [ "$rate" != max ]; then continue; fi
      run "$mode" "$rate" small "$rep"
    done
  done
  if [ "$LARGE" = 1 ]; then
    for mode in $modes; do run "$mode" max large "$rep"; done
  fi
done
# The zero-miss ceiling: step up the offered rate until an exchange is missed or the offered rate is
# no longer reached (the load generator and nginx, not the agent, are then the limit).
for mode in $BACKENDS; do
  for rate in $SEARCH_RATES; do
    run "$mode" "$rate" small search
    last=$(tail -n1 "$out/runs.tsv")
    ach=$(echo "$last" | cut -f6); miss=$(echo "$last" | cut -f12)
    if [ "$miss" != 0 ]; then break; fi
    if awk -v a="$ach" -v r="$rate" 'BEGIN {exit !(a < 0.95 * r)}'; then break; fi
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
others_after=$(ps -eo pcpu,comm --sort=-pcpu | awk 'NR>1 && NR<=7 {printf "%s %s%%, ", $2, $1}')
elapsed=$(($(date +%s) - start))

# --- table ---------------------------------------------------------------------------------------
python3 - "$out/runs.tsv" "$root/target/bench-capture.md" "$BACKENDS" <<EOF
import statistics as st, sys
from collections import defaultdict
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
md_path, backends = sys.argv[2], sys.argv[3].split()
K = ["mode", "rate", "body", "rep", "req", "rps", "p50", "p99", "served", "cpu", "exch", "missed", "kdrops", "qfull", "nginx_us", "errors"]
runs = [dict(zip(K, r)) for r in rows]
groups = defaultdict(list)
for r in runs:
    if r["rep"] != "search":
        groups[(r["mode"], r["rate"], r["body"])].append(r)
def med(rs, k):
    v = [float(r[k]) for r in rs if r[k] != "NA"]
    return st.median(v) if v else None
def tot(rs, k):
    v = [int(r[k]) for r in rs if r[k] != "NA"]
    return sum(v) if v else None
order = lambda rate: -1 if rate == "max" else int(rate)
lines = []
hdr = ["backend", "body", "offered req/s", "achieved req/s", "p50 ms", "p99 ms", "loss %", "agent CPU cores",
       "exchanges", "served", "missed", "kernel drops", "queue-full pkts", "nginx+wrk CPU µs/req"]
lines.append("| " + " | ".join(hdr) + " |")
lines.append("|" + "---|" * len(hdr))
summary = {}
for (mode, rate, body) in sorted(groups, key=lambda g: (g[2] != "small", order(g[1]), (["none", "spin"] + backends).index(g[0]))):
    rs = groups[(mode, rate, body)]
    base = groups.get(("none", rate, body), [])
    rps, b = med(rs, "rps"), med(base, "rps")
    loss = "" if mode == "none" or not b else f"{100 * (b - rps) / b:.1f}"
    cpu = med(rs, "cpu")
    n = len(rs)
    def fmt_tot(k):
        t = tot(rs, k)
        return "" if t is None else (f"{t} ({n} runs)" if k == "exch" else str(t))
    lines.append("| " + " | ".join([
        {"none": "none (baseline)", "spin": "spin (control)"}.get(mode, mode), body, "unlimited (c16)" if rate == "max" else rate,
        f"{rps:.0f}", f"{med(rs, 'p50'):.3f}", f"{med(rs, 'p99'):.3f}", loss,
        "" if cpu is None else f"{cpu:.2f}", fmt_tot("exch"), str(tot(rs, "served")), fmt_tot("missed"),
        fmt_tot("kdrops"), fmt_tot("qfull"), f"{med(rs, 'nginx_us'):.1f}"]) + " |")
    summary[(mode, rate, body)] = dict(rps=rps, loss=loss, cpu=cpu, missed=tot(rs, "missed"), kd=tot(rs, "kdrops"), qf=tot(rs, "qfull"), n=n)
# search runs
srch = [r for r in runs if r["rep"] == "search"]
if srch:
    lines.append("")
    lines.append("Zero-miss ceiling search (one run each, small body, %s connections):" % "$RATE_CONNS")
    lines.append("")
    lines.append("| backend | offered req/s | achieved req/s | p50 ms | p99 ms | agent CPU cores | exchanges | served | missed | kernel drops | queue-full pkts |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in srch:
        lines.append(f"| {r['mode']} | {r['rate']} | {float(r['rps']):.0f} | {r['p50']} | {r['p99']} | {r['cpu']} | {r['exch']} | {r['served']} | {r['missed']} | {r['kdrops']} | {r['qfull']} |")
lines.append("")
for be in backends:
    ok = [float(r["rps"]) for r in runs if r["mode"] == be and r["body"] == "small" and r["missed"] == "0"]
    bad = [float(r["rps"]) for r in runs if r["mode"] == be and r["body"] == "small" and r["missed"] not in ("0", "NA")]
    ceiling = max(ok) if ok else 0
    note = f"; first miss at {min(bad):.0f} req/s" if bad else "; no run missed an exchange (the ceiling is the load generator's)"
    lines.append(f"- {be}: highest achieved rate with zero missed exchanges: {ceiling:.0f} req/s{note}")
lines.append("")
# targets
def target(desc, ok):
    lines.append(f"- {'MET' if ok else 'NOT MET'}: {desc}")
if "ebpf" in backends and ("ebpf", "20000", "small") in summary:
    s = summary[("ebpf", "20000", "small")]
    target(f"eBPF, no missed exchange at 20k req/s offered (achieved {s['rps']:.0f} req/s median, missed {s['missed']} over {s['n']} runs)", s["missed"] == 0 and s["rps"] >= 19000)
for be in backends:
    s = summary.get((be, "10000", "small"))
    if s and s["cpu"] is not None:
        target(f"{be}, agent CPU ≤ 0.5 core at 10k req/s ({s['cpu']:.2f} cores median)", s["cpu"] <= 0.5)
    s = summary.get((be, "max", "small"))
    if s and s["loss"] != "":
        sp = summary.get(("spin", "max", "small"))
        vs = f"; against the busy-CPU-1 control {100 * (sp['rps'] - s['rps']) / sp['rps']:.1f}%" if sp else ""
        target(f"{be}, server throughput reduced < 5% (unlimited wrk -c16, small body: {s['loss']}% median{vs})", float(s["loss"]) < 5 and (not sp or s["rps"] > 0.95 * sp["rps"]))
    s = summary.get((be, "max", "large"))
    if s and s["loss"] != "":
        sp = summary.get(("spin", "max", "large"))
        vs = f"; against the busy-CPU-1 control {100 * (sp['rps'] - s['rps']) / sp['rps']:.1f}%" if sp else ""
        target(f"{be}, server throughput reduced < 5% (unlimited wrk -c16, 4 KB body: {s['loss']}% median{vs})", float(s["loss"]) < 5 and (not sp or s["rps"] > 0.95 * sp["rps"]))
meta = [
    "# akto-tap capture benchmark",
    "",
    f"- binary: \`$BIN\`; nginx (1 worker, keep-alive, sendfile) on 127.0.0.1:$PORT, bodies ${small_bytes} B and ${large_bytes} B of JSON",
    "- agent: \`akto-tap capture --backend B --interface lo --ports $PORT --output /dev/null --stats-json F -q\` (records encoded, written to /dev/null)",
    f"- $(nproc) CPUs; $pin_note",
    "- each row: median of $REPS runs of ${DURATION} s (runs interleaved: baseline, then each backend), unlimited = \`wrk -t1 -c16\`, fixed rates = \`wrk -t1 -c$RATE_CONNS -s scripts/bench/rate.lua\`",
    "- agent CPU = (utime + stime over the wrk window) / window wall time; served = nginx stub_status request count over the window; missed = served − pipeline.exchanges (summed over runs)",
    "- kernel drops = sum of kernel.drops (eBPF: ring_full, ...; libpcap: pcap_buffer_full, interface_dropped, ...); libpcap also sees payload-less ACKs, so a drop need not cost an exchange",
    "- nginx+wrk CPU µs/req = CPU seconds of nginx (/proc utime + stime over the window) and wrk (/usr/bin/time) / requests served: the load side's cost per request, including the in-kernel capture work (TC program or packet tap run in softirq on CPU 0, charged to nginx/wrk); far less sensitive to the shared machine's load than req/s",
    "- 'spin (control)' = no agent, CPU 1 kept busy by a pinned shell busy-loop: on this VM a busy CPU 1 alone raises the pinned nginx+wrk rate several-fold (vCPU idle/wake-up cost), so loss % against the plain baseline understates the agent's cost; compare with the control too",
    "- loss % = throughput drop of the median against the no-agent baseline at the same offered rate",
    "- machine load (shared): load average $load_before at start, $load_after at end; busiest processes at start: ${others_before%, }; at end: ${others_after%, }",
    f"- total time: ${elapsed} s",
    "",
]
text = "\n".join(meta + lines) + "\n"
open(md_path, "w").write(text)
print(text)
EOF
echo "bench-capture: table written to target/bench-capture.md, raw runs in target/bench-capture/" >&2
