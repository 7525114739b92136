// Reference point for the benchmark: the smallest JavaScript worker that does what mirror mode
// does (read both bodies, forward to MCP, post an Akto record to the ingestion binding in
// waitUntil). Not deployed; it tells how much of the added latency is the runtime's own
// subrequest and stream cost rather than the Rust worker.
export default {
  async fetch(req, env, ctx) {
    const body = await req.arrayBuffer();
    const resp = await env.MCP.fetch(new Request(req.url, { method: req.method, headers: req.headers, body, redirect: "manual" }));
    const rb = await resp.arrayBuffer();
    ctx.waitUntil(
      (async () => {
        const u = new URL(req.url);
        const dec = new TextDecoder();
        const record = {
          path: u.pathname + u.search, method: req.method, type: "HTTP/1.1",
          requestHeaders: JSON.stringify(Object.fromEntries(req.headers)), responseHeaders: JSON.stringify(Object.fromEntries(resp.headers)),
          requestPayload: dec.decode(body.slice(0, 65536)), responsePayload: dec.decode(rb.slice(0, 65536)),
          ip: req.headers.get("cf-connecting-ip") || "", time: String(Math.floor(Date.now() / 1000)), statusCode: String(resp.status),
          status: `${resp.status} ${resp.statusText}`, akto_account_id: "1000000", akto_vxlan_id: "0", is_pending: "false", source: "MIRRORING",
        };
        const r = await env.AKTO_INGESTION_WORKER.fetch("https://akto-ingest/api/ingestData", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ batchData: [record] }) });
        await r.arrayBuffer();
      })(),
    );
    return new Response(rb, resp);
  },
};
