//! Deterministic benchmark inputs (shared with the wasm harness through `#[path]`).

/// Prose, code and data that a coding agent typically sends through `tools/call`.
const PARAGRAPHS: &[&str] = &[
    "Please review the attached pull request. The change refactors the connection pool so that idle connections are closed after the configured timeout, and it adds metrics for pool saturation. Let me know whether the naming matches the rest of the module.",
    "fn handle(req: Request) -> Result<Response, Error> {\n    let body = req.body().to_vec();\n    let parsed: Value = serde_json::from_slice(&body)?;\n    Ok(Response::json(&parsed))\n}\n",
    "The quarterly report shows revenue growth of 12% year over year, driven by the enterprise segment. Churn decreased slightly, while support tickets per customer stayed flat. Contact the finance team for the detailed breakdown by region.",
    "SELECT customer_id, SUM(amount) AS revenue FROM orders WHERE created_at >= '2024-01-01' GROUP BY customer_id ORDER BY revenue DESC LIMIT 10;",
    "Meeting notes: the team agreed to ship the migration behind a feature flag, to run the backfill over the weekend, and to keep the old endpoint for two releases. Owners: platform for the flag, data for the backfill.",
];

/// A `tools/call` request of about `size` bytes.
pub fn tools_call(size: usize) -> String {
    let mut text = String::new();
    let mut i = 0;
    while text.len() < size.saturating_sub(220) {
        text.push_str(PARAGRAPHS[i % PARAGRAPHS.len()]);
        text.push_str("\n\n");
        i += 1;
    }
    text.truncate(size.saturating_sub(220));
    while !text.is_char_boundary(text.len()) {
        text.pop();
    }
    serde_json::json!({
        "jsonrpc": "2.0", "id": 42, "method": "tools/call",
        "params": {"name": "create_review", "arguments": {
            "repository": "acme/payments", "title": "Close idle pool connections",
            "body": text, "labels": ["backend", "performance"], "draft": false
        }}
    })
    .to_string()
}

/// Mixed API JSON (not MCP) of about `size` bytes: the agent's common case.
pub fn mixed_json(size: usize) -> String {
    let mut items = Vec::new();
    let mut len = 0;
    let mut i = 0u64;
    while len < size {
        let item = serde_json::json!({
            "id": i, "sku": format!("SKU-{:06}", i * 7919 % 1_000_000), "name": "Widget deluxe",
            "description": PARAGRAPHS[(i as usize) % PARAGRAPHS.len()],
            "price": {"amount": 1999 + i, "currency": "EUR"}, "tags": ["blue", "large", "sale"],
            "updated_at": "2025-11-02T10:15:00Z", "in_stock": i % 3 != 0
        });
        let s = item.to_string();
        len += s.len() + 1;
        items.push(item);
        i += 1;
    }
    serde_json::json!({"items": items, "next": null}).to_string()
}

/// A `tools/list` response with `n` identical-shaped tools.
#[allow(dead_code)]
pub fn tools_list(n: usize) -> String {
    serde_json::json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": (0..n).map(|i| serde_json::json!({
        "name": format!("tool_{i}"), "description": "Reads a file from the workspace and returns its contents as text.",
        "inputSchema": {"type": "object", "properties": {"path": {"type": "string", "description": "Relative path of the file."}}, "required": ["path"]}
    })).collect::<Vec<_>>()}})
    .to_string()
}
