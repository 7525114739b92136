//! Fuzzes the JSON-RPC/MCP trust boundary: parse, extract, and the full engine on any bytes.
#![no_main]

use std::sync::OnceLock;

use guardrails::{mcp, Direction, Engine, Policy};
use libfuzzer_sys::fuzz_target;

fn engine() -> Option<&'static Engine> {
    static E: OnceLock<Option<Engine>> = OnceLock::new();
    E.get_or_init(|| Engine::new(Policy::default()).ok()).as_ref()
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else { return };
    if let Ok(parsed) = mcp::parse(body, 64) {
        let (segments, _) = mcp::extract(&parsed, None, 256, 16);
        for s in &segments {
            assert!(!s.text.is_empty());
        }
    }
    if let Some(e) = engine() {
        let v = e.scan_mcp(body, Direction::Response);
        if let Some(red) = &v.redacted {
            // A redacted MCP body must still be MCP (or text when it was text).
            if mcp::parse(body, 64).is_ok() {
                assert!(mcp::parse(red, 64).is_ok(), "redaction broke the body");
            }
        }
    }
});
