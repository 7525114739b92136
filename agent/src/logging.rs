//! Structured logs with `tracing`: human-readable text by default, JSON lines with
//! `--log-format json` (for log shippers on Kubernetes nodes). Always to stderr, so stdout
//! stays the record stream.

use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `2026-01-01T00:00:00Z  INFO akto_tap::capture: message key=value`
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `fields`).
    Json,
}

/// Logging flags shared by the long-running commands.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log line format.
    #[arg(long, value_enum, env = "AKTO_TAP_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    /// Log level (error, warn, info, debug, trace) or a tracing filter such as
    /// `info,akto_tap::kafka=debug`. Akto's `AKTO_LOG_LEVEL` is honoured.
    #[arg(long, env = "AKTO_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

/// Installs the global subscriber. A bad filter is an error that names it.
pub fn init(args: &LogArgs) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(args.log_level.to_ascii_lowercase())
        .map_err(|e| anyhow::anyhow!("--log-level {:?}: {e}", args.log_level))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match args.log_format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // Already installed (a second command in one process, e.g. tests): keep the first.
    let _ = result;
    Ok(())
}
