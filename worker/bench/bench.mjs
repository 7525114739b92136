// Latency added by the edge worker over calling the MCP server worker directly, in workerd.
// Sequential keep-alive requests (one in flight, one connection per target), in interleaved
// rounds so drift hits every target alike: each round visits every target in turn (the order
// reversed every other round), and each visit first sends a few requests that are not counted
// (the switch of connection and worker warms up); every target gets the same number of counted
// samples. p50/p99 per target, and added = proxy − direct at the same percentile. Two runs:
//  * back-to-back: the next request is sent as soon as the response ended, so the after-response
//    work of earlier exchanges (mirroring, async scanning; it starts 1 ms after the response) runs
//    on the same thread while later requests are served: the cost at saturation, best read from
//    the mean, as the work falls on some requests (p99) and not on others (p50);
//  * paced (one request every BENCH_PACE_MS, default 4 ms): the after-response work is done
//    before the next request, so the figure is the latency a client sees on the request path.
// The targets are checked on the paced run and both are printed.
// Env: AKTO_TAP_BIN (for the harness's ingest), BENCH_REQUESTS (per target, default 3000),
// BENCH_PAYLOAD_BYTES (default 4096), BENCH_PACE_MS, BENCH_COMPARE_BUILD (a directory with another
// build's index.js and index_bg.wasm: its three modes are measured in the same rounds, as
// `<mode>@compare`, for a before/after comparison under the same load).

import http from "node:http";
import fs from "node:fs";
import os from "node:os";
import zlib from "node:zlib";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { start } from "../tests/harness.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const N = Number(process.env.BENCH_REQUESTS || "3000");
const SIZE = Number(process.env.BENCH_PAYLOAD_BYTES || "4096");
const ROUNDS = 20;
const VISIT_WARMUP = 5;
const PACE_MS = Number(process.env.BENCH_PACE_MS || "4");

const sink = { service: "sink" };
const modes = {
  mirror: { MCP: { service: "mcp" }, AKTO_INGESTION_WORKER: sink },
  async: { MCP: { service: "mcp" }, GUARDRAILS_MODE: "async", AKTO_INGESTION_WORKER: sink },
  blocked: { MCP: { service: "mcp" }, GUARDRAILS_MODE: "blocked", AKTO_INGESTION_WORKER: sink },
};
const COMPARE = process.env.BENCH_COMPARE_BUILD;
const proxies = { ...modes };
if (COMPARE) for (const [m, b] of Object.entries(modes)) proxies[`${m}@compare`] = { ...b, __build: COMPARE };
const env = await start({ recorders: { sink: { DISCARD: "1" } }, proxies });

// A clean 4 KB MCP tools/call (prose, so every scanner runs over it without a finding).
const words = "the quarterly report lists revenue costs and the plan for next year with notes from the team meeting".split(" ");
let text = "";
for (let i = 0; text.length < SIZE; i++) text += words[(i * 7) % words.length] + (i % 13 === 12 ? ". " : " ");
let msg = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "echo", arguments: { text } } });
msg = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "echo", arguments: { text: text.slice(0, text.length - (msg.length - SIZE)) } } });
const body = Buffer.from(msg);

const agents = {};
function once(target) {
  const port = env.ports[target];
  const agent = (agents[target] ||= new http.Agent({ keepAlive: true, maxSockets: 1 }));
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.request({ host: "127.0.0.1", port, path: "/mcp", method: "POST", agent, headers: { "content-type": "application/json", "content-length": body.length } }, (res) => {
      res.on("data", () => {});
      res.on("end", () => {
        if (res.statusCode !== 200) return reject(new Error(`status ${res.statusCode}`));
        resolve(Number(process.hrtime.bigint() - t0) / 1e6);
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

const targets = ["mcp", ...Object.keys(proxies)];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function run(pace) {
  const samples = Object.fromEntries(targets.map((t) => [t, []]));
  const perVisit = Math.ceil(N / ROUNDS);
  for (let r = 0; r < ROUNDS; r++) {
    for (const t of r % 2 ? [...targets].reverse() : targets) {
      for (let i = 0; i < VISIT_WARMUP + perVisit; i++) {
        const t0 = performance.now();
        const ms = await once(t);
        if (i >= VISIT_WARMUP) samples[t].push(ms);
        if (pace) await sleep(Math.max(0, pace - (performance.now() - t0)));
      }
    }
  }
  return samples;
}
let runs;
const loadBefore = os.loadavg();
try {
  for (const t of targets) for (let i = 0; i < 300; i++) await once(t);
  runs = { "back-to-back": await run(0), [`paced ${PACE_MS} ms`]: await run(PACE_MS) };
} finally {
  await env.stop();
}

const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
const pct = (a, p) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const wasm = fs.readFileSync(process.env.WORKER_BUILD_DIR ? path.join(process.env.WORKER_BUILD_DIR, "index_bg.wasm") : path.join(here, "..", "build", "index_bg.wasm"));
const gz = zlib.gzipSync(wasm, { level: 9 }).length;
const targetsMs = { mirror: 0.5, async: 0.5, blocked: 1.0 };
const loadAfter = os.loadavg();
const la = (l) => l.map((x) => x.toFixed(2)).join(" ");
console.log(`edge worker latency added over the MCP worker called directly; ${runs["back-to-back"].mcp.length} sequential requests per mode and run (${ROUNDS} interleaved rounds), ${body.length}-byte MCP tools/call (response about the same size), ${process.env.WORKERD_VERSION || "workerd"}, ${os.cpus().length} CPUs, load average ${la(loadBefore)} before, ${la(loadAfter)} after`);
let ok = true;
const report = {};
for (const [name, samples] of Object.entries(runs)) {
  const base = { p50: pct(samples.mcp, 50), p99: pct(samples.mcp, 99), mean: mean(samples.mcp) };
  const paced = name.startsWith("paced");
  console.log(`-- ${name}: direct MCP worker p50 ${base.p50.toFixed(3)} ms, p99 ${base.p99.toFixed(3)} ms, mean ${base.mean.toFixed(3)} ms`);
  report[name] = { base, rows: [] };
  for (const t of Object.keys(proxies)) {
    const mode = t.split("@")[0];
    const p50 = pct(samples[t], 50);
    const p99 = pct(samples[t], 99);
    const add50 = p50 - base.p50;
    const add99 = p99 - base.p99;
    const addMean = mean(samples[t]) - base.mean;
    const met = add50 <= targetsMs[mode];
    if (paced && !t.includes("@")) ok &&= met;
    report[name].rows.push({ mode: t, p50, p99, add50, add99, addMean, target: targetsMs[mode], met });
    console.log(`   ${t.padEnd(COMPARE ? 16 : 8)} p50 ${p50.toFixed(3)} ms (+${add50.toFixed(3)}), p99 ${p99.toFixed(3)} ms (+${add99.toFixed(3)}), mean +${addMean.toFixed(3)} ms; target +${targetsMs[mode]} ms at p50: ${met ? "met" : "NOT met"}`);
  }
}
console.log(`wasm: ${wasm.length} bytes raw, ${gz} bytes gzipped (-9)`);
if (process.env.BENCH_JSON) fs.writeFileSync(process.env.BENCH_JSON, JSON.stringify({ report, wasm: wasm.length, wasm_gzip: gz, load_before: loadBefore, load_after: loadAfter }, null, 2));
process.exitCode = ok ? 0 : 3;
