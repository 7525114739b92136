//! MCP-aware guardrails shared by the akto-tap agent (native) and the Cloudflare worker (wasm32).
//!
//! The crate is a pure library: no I/O, no clock, no threads, no `unsafe`. Given a [`Policy`] it
//! builds an [`Engine`] once (all regexes compiled, the model weights mapped from the embedded
//! file) and then turns bodies into [`Verdict`]s:
//!
//! * [`Engine::scan_text`] scans one piece of text (the whole body when it is not MCP);
//! * [`Engine::scan_mcp`] parses a JSON-RPC 2.0 / MCP body (single message, batch, or an SSE
//!   stream of `data:` events), extracts the user-controlled text of every message together with
//!   its [`Location`] (tool name, argument path, result item, tool description, schema
//!   description, …), scans each piece and, for `redact` verdicts, re-serializes the body with the
//!   detected spans replaced. Bodies that are not JSON-RPC are scanned as plain text.
//!
//! Scanners ([`ScannerId`]): prompt injection and jailbreak (rules plus a hashed n-gram linear
//! model trained in-repo, see `examples/train.rs`), hidden text (Unicode tags, zero-width and bidi
//! controls, variation-selector smuggling, ANSI escapes), tool poisoning and rug pulls in
//! `tools/list`, PII with checksum validation, secrets, and configurable deny-lists.
//!
//! **Bounded.** Input beyond [`Limits::max_input_bytes`] is not scanned, and every scanner
//! charges the bytes it reads against [`Limits::max_work`]; the work budget stands in for a time
//! cap (there is no clock in a pure library). When a cap is hit the engine *fails open*: the
//! unscanned remainder is treated as clean and the verdict carries [`Verdict::limits`] flags.
//!
//! **Panics.** None on the scan path: parsing errors become plain-text scans or typed errors, and
//! the property tests in `tests/properties.rs` feed arbitrary input through every entry point.
//!
//! **Zero-copy.** Text segments borrow from the decoded JSON values; normalization for the
//! injection scanners allocates one normalized copy plus an offset map per segment.
#![forbid(unsafe_code)]

mod engine;
mod error;
mod json_check;
pub mod line;
pub mod mcp;
pub mod model;
mod normalize;
mod policy;
mod redact;
pub mod scanners;
mod verdict;

pub use engine::{Engine, McpContext};
pub use error::{McpError, PolicyError};
pub use mcp::{Location, SegmentKind, ToolChange, ToolSnapshot};
pub use normalize::{normalize, Normalized};
pub use policy::{
    Action, AktoGuardrailsPolicy, DenyPolicy, DenyRegex, DenyTopic, Direction, HiddenTextPolicy, InjectionPolicy,
    Limits, PiiPolicy, PiiType, Policy, SecretsPolicy, ToolPoisoningPolicy,
};
pub use verdict::{BodyFormat, Finding, LimitHit, ScannerId, Verdict, VerdictAction};
