#!/usr/bin/env bash
# What `akto-tap capture` adds per request on the load's CPU, in nanoseconds (issue 4).
#
# The saturation benchmark (scripts/bench-capture.sh) moves by ±3-5 points between identical
# configurations; this one resolves tens of nanoseconds. scripts/bench/pingpong.c, pinned to
# CPU 0, does HTTP-shaped round trips (a ~200 B request, a 220 B or 4 KB response) over one
# loopback keep-alive connection in one thread: no scheduler, no other process on the path, so
# the time per round trip is the stack's CPU cost, TC hooks and socket tracepoints included.
# Each variant runs the agent on CPU 1 (`capture --interface lo --ports PORT`, records to
# /dev/null); variants are interleaved in every round, so a slow minute hits them all.
#
# Usage: scripts/bench-packet-cost.sh              (root)
# Environment (defaults in brackets):
#   AKTO_TAP_BIN  agent binary of the default variants [$CARGO_TARGET_DIR or target, /release/akto-tap]
#   VARIANTS      one per line, "name|binary|capture flags"; binary empty = no agent, "spin" =
#                 a busy loop on CPU 1 instead of the agent (control: a busy sibling CPU alone)
#                 [none, spin, default flags, --tls off]
#   BODIES        response body sizes ["220 4096"]
#   RTS           round trips per repetition [40000]
#   REPS          repetitions per run; a run reports their minimum and median [7]
#   ROUNDS        rounds over all variants [3]
#   STATS         1 = also kernel.bpf_stats: ns per run and runs per round trip of each
#                 program of the agent (adds two clock reads per program run) [0]
#   PORT          port of the ping-pong [18790]
# Prints per run "variant body min median" (runs during which another process had capture
# programs loaded are marked and left out of the summary), then a summary: per variant and body the median
# over rounds of the per-run minimum, and the added ns per round trip against "none" (the
# median over rounds of the difference within a round).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench-packet-cost: needs root" >&2; exit 1; }

BIN=$(readlink -m "${AKTO_TAP_BIN:-${CARGO_TARGET_DIR:-target}/release/akto-tap}")
BODIES=${BODIES:-"220 4096"}
RTS=${RTS:-40000}
REPS=${REPS:-7}
ROUNDS=${ROUNDS:-3}
STATS=${STATS:-0}
PORT=${PORT:-18790}
VARIANTS=${VARIANTS:-"none||
spin|spin|
default|$BIN|
tls-off|$BIN|--tls off"}

work=$(mktemp -d /tmp/bench-packet-cost.XXXXXX)
agent_pid=
cleanup() {
  if [ -n "$agent_pid" ]; then kill "$agent_pid" 2>/dev/null; wait "$agent_pid" 2>/dev/null || true; fi
  if [ "$STATS" = 1 ]; then sysctl -q kernel.bpf_stats_enabled=0; fi
  rm -rf "$work"
}
trap cleanup EXIT
cc -O2 -Wall -o "$work/pingpong" scripts/bench/pingpong.c
[ "$STATS" = 1 ] && sysctl -q kernel.bpf_stats_enabled=1

# Capture programs of another process (another agent, a test) make every variant pay for them.
foreign() { bpftool prog show 2>/dev/null | grep -qE 'tap_(in|e)gress|sock_io' && echo " FOREIGN-PROGRAMS" || true; }

prog_ids() { bpftool prog show -j 2>/dev/null | python3 -c 'import json, sys; print(" ".join(str(p["id"]) for p in json.load(sys.stdin)))'; }
# run_cnt and run_time_ns per program name, of the programs loaded since $ids_before (the
# agent's: this bpftool may not name the owning process).
prog_stats() {
  bpftool prog show -j 2>/dev/null | python3 -c '
import json, sys
old = set(sys.argv[1].split()); acc = {}
for p in json.load(sys.stdin):
    if str(p["id"]) not in old:
        a = acc.setdefault(p.get("name", "?"), [0, 0])
        a[0] += p.get("run_cnt", 0); a[1] += p.get("run_time_ns", 0)
for n, (c, t) in sorted(acc.items()):
    print(n, c, t)' "$ids_before"
}

echo "bench-packet-cost: $RTS round trips x $REPS reps, $ROUNDS rounds, bodies $BODIES; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
results=$work/results
for round in $(seq 1 "$ROUNDS"); do
  while IFS='|' read -r name bin args; do
    [ -n "$name" ] || continue
    other=$(foreign)
    if [ "$bin" = spin ]; then
      taskset -c 1 sh -c 'while :; do :; done' &
      agent_pid=$!
      sleep 0.5
    elif [ -n "$bin" ]; then
      ids_before=$(prog_ids)
      # shellcheck disable=SC2086 # args is a list of flags
      taskset -c 1 "$bin" capture --backend ebpf --interface lo --ports "$PORT" --output /dev/null -q $args \
        2>"$work/agent.err" &
      agent_pid=$!
      sleep 2
      kill -0 "$agent_pid" 2>/dev/null || { echo "bench-packet-cost: agent ($name) exited:" >&2; cat "$work/agent.err" >&2; exit 1; }
    fi
    for body in $BODIES; do
      [ -n "$agent_pid" ] && [ "$STATS" = 1 ] && [ "$bin" != spin ] && prog_stats >"$work/s0"
      line=$("$work/pingpong" "$PORT" "$body" "$RTS" "$REPS" 0 | tail -1)
      read -r _ min _ med <<<"$line"
      [ -n "$other" ] || echo "$round $name $body $min $med" >>"$results"
      printf '%-12s %5s B  min %6s ns  median %6s ns  (round %s, load %s)%s\n' "$name" "$body" "$min" "$med" "$round" "$(cut -d' ' -f1 /proc/loadavg)" "$other"
      if [ -n "$agent_pid" ] && [ "$STATS" = 1 ] && [ "$bin" != spin ]; then
        prog_stats >"$work/s1"
        total=$(( (REPS + 1) * RTS ))
        join "$work/s0" "$work/s1" | awk -v rt="$total" '{ c = $4 - $2; t = $5 - $3;
          if (c > 0) printf "    %-16s %8.1f ns/run  %5.2f runs/rt  %7.1f ns/rt\n", $1, t / c, c / rt, t / rt }'
      fi
    done
    if [ -n "$agent_pid" ]; then
      if [ "$bin" = spin ]; then kill "$agent_pid"; else kill -INT "$agent_pid"; fi
      wait "$agent_pid" 2>/dev/null || true
      agent_pid=
      # The kernel frees a closed program a moment later: wait, or the next run sees it.
      for _ in $(seq 30); do [ -z "$(foreign)" ] && break; sleep 0.1; done
    fi
  done <<<"$VARIANTS"
done

echo
echo "summary (ns per round trip; min of $REPS reps, median over $ROUNDS rounds; added = vs none in the same round)"
python3 - "$results" <<'EOF'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
runs = {}
for rnd, name, body, mn, med in rows:
    runs.setdefault((name, int(body)), {})[int(rnd)] = float(mn)
names = list(dict.fromkeys(r[1] for r in rows))
bodies = sorted({int(r[2]) for r in rows})
print(f"{'variant':<14}" + "".join(f"{str(b) + ' B':>12}{'added':>10}" for b in bodies))
for n in names:
    cells = []
    for b in bodies:
        mins = runs.get((n, b), {})
        base = runs.get(("none", b), {})
        added = [mins[r] - base[r] for r in mins if r in base]
        if not mins:
            cells.append(f"{'-':>12}{'':>10}")
            continue
        cells.append(f"{st.median(mins.values()):>12.0f}" + (f"{st.median(added):>+10.0f}" if added and n != "none" else f"{'':>10}"))
    print(f"{n:<14}" + "".join(cells))
EOF
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
