#!/usr/bin/env python3
"""Times the guardrails engine compiled to wasm32 under wasmtime.

Usage: python3 guardrails/bench/wasm_bench.py   (run guardrails/bench/wasm_bench.sh to build first)
Prints microseconds per 4 KB tools/call scan and MB/s on mixed JSON (the host calls a loop
inside the module, so call overhead is amortized)."""
import os
import sys
import time

import wasmtime

HERE = os.path.dirname(os.path.abspath(__file__))
WASM = os.environ.get("HARNESS_WASM", os.path.join(HERE, "wasm-harness", "target", "wasm32-unknown-unknown", "release", "guardrails_wasm_harness.wasm"))


def main() -> int:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    module = wasmtime.Module.from_file(engine, WASM)
    inst = wasmtime.Instance(store, module, [])
    ex = inst.exports(store)
    size = ex["setup"](store)
    if size == 0:
        print("setup failed", file=sys.stderr)
        return 1
    mixed = ex["mixed_len"](store)
    print(f"wasm module {os.path.getsize(WASM)} bytes; tools/call body {size} bytes; mixed JSON {mixed} bytes")
    for _ in range(2):  # warm-up
        ex["scan_call"](store, 50)
    best = None
    for _ in range(5):
        n = 500
        t = time.perf_counter()
        ex["scan_call"](store, n)
        dt = (time.perf_counter() - t) / n
        best = dt if best is None else min(best, dt)
    print(f"tools/call 4 KB, every scanner: {best * 1e6:.1f} us per scan (best of 5 x 500)")
    best = None
    for _ in range(3):
        n = 20
        t = time.perf_counter()
        ex["scan_mixed"](store, n)
        dt = (time.perf_counter() - t) / n
        best = dt if best is None else min(best, dt)
    print(f"mixed JSON: {mixed / best / 1e6:.1f} MB/s ({best * 1e3:.2f} ms per {mixed} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
