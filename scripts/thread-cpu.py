#!/usr/bin/env python3
"""Per-thread CPU of running processes, for benchmarks on a shared machine.

Usage: thread-cpu.py LABEL=PID [LABEL=PID ...]   (stops when every PID is gone, or on SIGTERM)

Samples /proc/PID/task/*/schedstat every 0.2 s and prints, per thread name (threads of one name
summed): CPU seconds, seconds spent runnable but waiting for a CPU (run-queue wait), and how busy
the busiest such thread was: (cpu + wait) / wall. A thread near 100 % busy is on the critical
path; when the run-queue wait is as large as the CPU time the pipeline is short of CPUs (other
load), not waiting on the broker.
"""
import collections, os, signal, sys, time

procs = [a.split("=", 1) for a in sys.argv[1:]]
first, last = {}, {}
stop = False


def onterm(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, onterm)


def sample():
    alive = False
    for label, pid in procs:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        alive = True
        for t in tids:
            try:
                comm = open(f"/proc/{pid}/task/{t}/comm").read().strip()
                run, wait, _ = map(int, open(f"/proc/{pid}/task/{t}/schedstat").read().split())
            except (OSError, ValueError):
                continue
            first.setdefault((label, t), (run, wait))
            last[(label, t)] = (comm, run, wait)
    return alive


t0 = time.time()
while sample() and not stop:
    time.sleep(0.2)
wall = max(time.time() - t0, 1e-3)
agg = collections.defaultdict(lambda: [0, 0, 0, 0.0])
for k, (comm, run, wait) in last.items():
    r0, w0 = first[k]
    name = comm.rstrip("0123456789") if comm.startswith("rdk:") else comm
    a = agg[(k[0], name)]
    a[0] += run - r0
    a[1] += wait - w0
    a[2] += 1
    a[3] = max(a[3], (run - r0 + wait - w0) / 1e9 / wall)
for (label, name), (run, wait, n, busy) in sorted(agg.items(), key=lambda x: -x[1][0]):
    if run < 5e7:
        continue
    print(f"THREADS {label:8} {name:20} x{n:<3} cpu {run / 1e9:6.2f} s  waiting for a CPU {wait / 1e9:6.2f} s  busiest {busy * 100:3.0f}% of {wall:.1f} s")
