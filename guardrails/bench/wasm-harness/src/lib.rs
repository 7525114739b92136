//! wasm32 exports for timing the engine from a host (wasmtime). The inputs are built inside the
//! module from the same deterministic corpus as the native criterion bench, so no memory has to
//! be passed across the boundary.

use std::cell::OnceCell;

use guardrails::{Direction, Engine, Policy, VerdictAction};

#[path = "../../../benches/corpus.rs"]
mod corpus;

struct State {
    engine: Engine,
    call: String,
    mixed: String,
}

thread_local! {
    static STATE: OnceCell<Option<State>> = const { OnceCell::new() };
}

fn with_state<R>(f: impl FnOnce(&State) -> R) -> Option<R> {
    STATE.with(|s| {
        s.get_or_init(|| {
            let engine = Engine::new(Policy::default()).ok()?;
            Some(State { engine, call: corpus::tools_call(4096), mixed: corpus::mixed_json(64 * 1024) })
        })
        .as_ref()
        .map(f)
    })
}

fn code(a: VerdictAction) -> u32 {
    match a {
        VerdictAction::Allow => 0,
        VerdictAction::Redact => 1,
        VerdictAction::Block => 2,
    }
}

/// Builds the engine and inputs; returns the 4 KB body's length (0 on failure).
#[no_mangle]
pub extern "C" fn setup() -> u32 {
    with_state(|s| s.call.len() as u32).unwrap_or(0)
}

/// Bytes of the mixed-JSON input.
#[no_mangle]
pub extern "C" fn mixed_len() -> u32 {
    with_state(|s| s.mixed.len() as u32).unwrap_or(0)
}

/// Scans the 4 KB `tools/call` `n` times; returns the last verdict code.
#[no_mangle]
pub extern "C" fn scan_call(n: u32) -> u32 {
    with_state(|s| (0..n).map(|_| code(s.engine.scan_mcp(&s.call, Direction::Request).action)).last().unwrap_or(0)).unwrap_or(99)
}

/// Scans the mixed-JSON body `n` times; returns the last verdict code.
#[no_mangle]
pub extern "C" fn scan_mixed(n: u32) -> u32 {
    with_state(|s| (0..n).map(|_| code(s.engine.scan_mcp(&s.mixed, Direction::Response).action)).last().unwrap_or(0)).unwrap_or(99)
}
