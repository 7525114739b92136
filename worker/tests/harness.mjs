// End-to-end harness: the built worker (build/index.js + build/index_bg.wasm) in the real
// workerd runtime, an MCP server fixture behind the `MCP` binding, recording fixtures for the
// ingestion API / threat backend / executor, and a real `akto-tap ingest` on loopback.
//
// Env: AKTO_TAP_BIN (path of the akto-tap binary, required), WORKER_BUILD_DIR (default ../build),
// WORKERD_BIN (default node_modules/.bin/workerd).

import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const workerDir = path.resolve(here, "..");

export const API_KEY = "test-key";

// Ports handed out in this process: the kernel may give a just-closed port again to the next
// `listen(0)`, and two workerd sockets on one port make workerd exit ("Address already in use").
const handedOut = new Set();

export async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const s = net.createServer();
      s.once("error", reject);
      s.listen(0, "127.0.0.1", () => {
        const { port } = s.address();
        s.close(() => resolve(port));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

async function waitPort(port, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise((r) => {
      const c = net.connect(port, "127.0.0.1", () => {
        c.end();
        r(true);
      });
      c.once("error", () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port ${port} did not open within ${ms} ms`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value. */
export async function waitFor(fn, ms = 5000, what = "condition") {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function capnpString(s) {
  return JSON.stringify(s);
}

function worker(modules, bindings, outbound = true) {
  const mods = modules.map((m) => `(name = ${capnpString(m.name)}, ${m.kind} = embed ${capnpString(m.file)})`).join(", ");
  const binds = Object.entries(bindings)
    .map(([k, v]) => (typeof v === "object" ? `(name = ${capnpString(k)}, service = ${capnpString(v.service)})` : `(name = ${capnpString(k)}, text = ${capnpString(String(v))})`))
    .join(", ");
  return `(modules = [${mods}], compatibilityDate = "2025-06-23", bindings = [${binds}]${outbound ? ', globalOutbound = "net"' : ""})`;
}

/**
 * Starts akto-tap ingest and one workerd process holding every service; returns ports and a stop().
 * `proxies` maps a proxy name to its bindings (use {service: "..."} for service bindings; the
 * placeholders {INGEST}, {REC:<name>}, {MCP} in text values are replaced by loopback URLs).
 * `__module: <file.js>` runs a JavaScript worker instead of the Rust one; `__build: <dir>` runs the
 * Rust worker built in another directory (the benchmark's before/after comparison).
 */
export async function start({ proxies, recorders }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "akto-tap-worker-e2e-"));
  const bin = process.env.AKTO_TAP_BIN;
  if (!bin || !fs.existsSync(bin)) throw new Error(`AKTO_TAP_BIN must name the akto-tap binary (got ${bin})`);
  const buildDir = process.env.WORKER_BUILD_DIR || path.join(workerDir, "build");
  for (const f of ["index.js", "index_bg.wasm"]) fs.copyFileSync(path.join(buildDir, f), path.join(dir, f));
  for (const f of ["mcp.js", "recorder.js"]) fs.copyFileSync(path.join(here, "fixtures", f), path.join(dir, f));

  // The real ingestion server; the broker is deliberately unreachable, so accepted records are
  // spooled (the HTTP answer still says which records passed validation).
  // Port 9 (discard): below the ephemeral range and unused, so connections to it are refused.
  // A port freed by `freePort()` was racy: the OS could hand it out again to one of workerd's
  // sockets, and the ingest's librdkafka, reconnecting all the time to an ephemeral port on
  // loopback, could self-connect to it and hold it.
  const closed = 9;
  const logs = { ingest: "", workerd: "" };
  const ingest = spawn(bin, ["ingest", "--listen", "127.0.0.1:0", "--api-key", API_KEY, "--kafka-brokers", `127.0.0.1:${closed}`, "--spool-dir", path.join(dir, "spool")], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  ingest.stdout.on("data", (d) => (logs.ingest += d));
  ingest.stderr.on("data", (d) => (logs.ingest += d));
  const ingestAddr = await waitFor(() => logs.ingest.match(/listening on http:\/\/([0-9.:]+)/)?.[1], 30000, "akto-tap ingest to listen");

  const ports = { mcp: await freePort() };
  for (const r of Object.keys(recorders)) ports[r] = await freePort();
  for (const p of Object.keys(proxies)) ports[p] = await freePort();
  const subst = (v) =>
    typeof v === "string"
      ? v
          .replaceAll("{INGEST}", `http://${ingestAddr}`)
          .replaceAll("{MCP}", `http://127.0.0.1:${ports.mcp}`)
          .replace(/\{REC:([a-z0-9-]+)\}/g, (_, n) => `http://127.0.0.1:${ports[n]}`)
      : v;
  const services = [];
  services.push(`(name = "mcp", worker = ${worker([{ name: "mcp.js", kind: "esModule", file: "mcp.js" }], {}, false)})`);
  for (const [name, env] of Object.entries(recorders)) {
    const b = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, subst(v)]));
    services.push(`(name = ${capnpString(name)}, worker = ${worker([{ name: "recorder.js", kind: "esModule", file: "recorder.js" }], b)})`);
  }
  const wasmModules = [
    { name: "index.js", kind: "esModule", file: "index.js" },
    { name: "index_bg.wasm", kind: "wasm", file: "index_bg.wasm" },
  ];
  for (const [name, env] of Object.entries(proxies)) {
    const { __module: jsModule, __build: otherBuild, ...rest } = env;
    const b = Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, subst(v)]));
    let modules = wasmModules;
    if (otherBuild) {
      // Same module names (index.js imports ./index_bg.wasm), other files.
      for (const f of ["index.js", "index_bg.wasm"]) fs.copyFileSync(path.join(otherBuild, f), path.join(dir, `${name}-${f}`));
      modules = [
        { name: "index.js", kind: "esModule", file: `${name}-index.js` },
        { name: "index_bg.wasm", kind: "wasm", file: `${name}-index_bg.wasm` },
      ];
    }
    if (jsModule) {
      // A JavaScript worker instead of the Rust one (the benchmark's reference point).
      fs.copyFileSync(jsModule, path.join(dir, path.basename(jsModule)));
      modules = [{ name: path.basename(jsModule), kind: "esModule", file: path.basename(jsModule) }];
    }
    services.push(`(name = ${capnpString(name)}, worker = ${worker(modules, b)})`);
  }
  services.push(`(name = "net", network = (allow = ["public", "private", "local"]))`);
  const sockets = Object.entries(ports).map(([name, port]) => `(name = ${capnpString("s-" + name)}, address = "127.0.0.1:${port}", http = (), service = ${capnpString(name)})`);
  const config = `using Workerd = import "/workerd/workerd.capnp";\nconst config :Workerd.Config = (\n  services = [\n    ${services.join(",\n    ")}\n  ],\n  sockets = [\n    ${sockets.join(",\n    ")}\n  ]\n);\n`;
  fs.writeFileSync(path.join(dir, "config.capnp"), config);
  const workerdBin = process.env.WORKERD_BIN || path.join(workerDir, "node_modules", ".bin", "workerd");
  const wd = spawn(workerdBin, ["serve", path.join(dir, "config.capnp"), "--verbose"], { stdio: ["ignore", "pipe", "pipe"], cwd: dir });
  wd.stdout.on("data", (d) => (logs.workerd += d));
  wd.stderr.on("data", (d) => (logs.workerd += d));
  let exited = null;
  wd.on("exit", (code) => (exited = code));
  try {
    for (const port of Object.values(ports)) await waitPort(port, 15000);
  } catch (e) {
    throw new Error(`${e.message}; workerd exited=${exited}; log:\n${logs.workerd}`);
  }
  return {
    dir,
    ports,
    ingestAddr,
    logs,
    url: (name, p = "/") => `http://127.0.0.1:${ports[name]}${p}`,
    async stop() {
      if (process.env.E2E_LOG) fs.writeFileSync(process.env.E2E_LOG, `== workerd\n${logs.workerd}\n== akto-tap ingest\n${logs.ingest}\n`);
      wd.kill("SIGKILL");
      ingest.kill("SIGKILL");
      if (!process.env.KEEP_E2E_DIR) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Recorded traffic of a recorder fixture. */
export async function records(env, name) {
  const r = await fetch(env.url(name, "/records"));
  return r.json();
}

/** Log lines of the worker with the given event name, parsed. */
export function events(env, name) {
  const out = [];
  for (const m of env.logs.workerd.matchAll(/akto-tap-worker (\{.*\})/g)) {
    try {
      const v = JSON.parse(m[1]);
      if (v.event === name) out.push(v);
    } catch {
      // A line cut by the pipe: ignore.
    }
  }
  return out;
}

/** A JSON-RPC POST; returns status, headers, text and parsed JSON (when it is JSON). */
export async function rpc(url, msg, headers = {}) {
  const body = typeof msg === "string" ? msg : JSON.stringify(msg);
  const t0 = performance.now();
  const r = await fetch(url, { method: "POST", headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers }, body });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, statusText: r.statusText, headers: r.headers, text, json, ms: performance.now() - t0 };
}

/** Opens a WebSocket with a raw HTTP/1.1 upgrade, sends one text frame, returns the first text frame back. */
export function websocketEcho(port, path, text) {
  return new Promise((resolve, reject) => {
    const key = Buffer.from(Array.from({ length: 16 }, () => Math.floor(Math.random() * 256))).toString("base64");
    const sock = net.connect(port, "127.0.0.1", () => {
      sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    let buf = Buffer.alloc(0);
    let upgraded = false;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`websocket timeout; got ${JSON.stringify(buf.toString("latin1").slice(0, 200))}`));
    }, 5000);
    sock.on("error", reject);
    sock.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buf.subarray(0, end).toString("latin1");
        if (!/^HTTP\/1\.1 101/.test(head)) {
          clearTimeout(timer);
          sock.destroy();
          return reject(new Error("no upgrade: " + head.split("\r\n")[0]));
        }
        upgraded = true;
        buf = buf.subarray(end + 4);
        const payload = Buffer.from(text);
        const mask = Buffer.from([1, 2, 3, 4]);
        const frame = Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, Buffer.from(payload.map((b, i) => b ^ mask[i % 4]))]);
        sock.write(frame);
      }
      if (upgraded && buf.length >= 2) {
        const len = buf[1] & 0x7f;
        if (buf.length >= 2 + len) {
          clearTimeout(timer);
          const out = buf.subarray(2, 2 + len).toString();
          sock.destroy();
          resolve(out);
        }
      }
    });
  });
}
