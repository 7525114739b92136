//! Typed errors: one enum per operation.

/// Building a [`crate::Policy`] or an [`crate::Engine`] failed.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy text is not valid JSON for the policy schema.
    #[error("policy JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The policy text is not valid TOML for the policy schema.
    #[error("policy TOML: {0}")]
    Toml(#[from] toml::de::Error),
    /// A deny-list regex does not compile.
    #[error("deny-list regex #{index} ({pattern:?}): {source}")]
    Regex {
        /// Position of the pattern in `deny.regexes`.
        index: usize,
        /// The pattern as written.
        pattern: String,
        /// What the regex compiler said.
        source: regex::Error,
    },
    /// A threshold is outside `0.0..=1.0` (or not a number).
    #[error("{scanner}: threshold {value} is outside 0..=1")]
    Threshold {
        /// The policy section holding the threshold.
        scanner: &'static str,
        /// The rejected value.
        value: f32,
    },
    /// A limit is zero, which would make every scan fail open.
    #[error("limits.{field} must be greater than zero")]
    ZeroLimit {
        /// The offending field.
        field: &'static str,
    },
    /// A built-in pattern failed to compile (a programming error caught by the unit tests).
    #[error("built-in pattern {name}: {source}")]
    Builtin {
        /// Which pattern.
        name: &'static str,
        /// What the regex compiler said.
        source: Box<regex::Error>,
    },
    /// The embedded injection model is malformed (a build problem, not a user error).
    #[error("injection model: {0}")]
    Model(#[from] crate::model::ModelError),
}

/// A body could not be read as JSON-RPC 2.0 / MCP.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum McpError {
    /// The body is not JSON (and not an SSE stream of JSON events).
    #[error("not JSON: {0}")]
    NotJson(String),
    /// The JSON is valid but not a JSON-RPC 2.0 message or batch.
    #[error("not a JSON-RPC 2.0 message: {0}")]
    NotJsonRpc(&'static str),
    /// A batch is empty (JSON-RPC 2.0 §6 makes that an invalid request).
    #[error("empty JSON-RPC batch")]
    EmptyBatch,
    /// More messages than `limits.max_messages`.
    #[error("{count} messages exceed the cap of {cap}")]
    TooManyMessages {
        /// Messages seen before giving up.
        count: usize,
        /// The configured cap.
        cap: usize,
    },
}
