//! Flags of the guardrails stage (`[guardrails]` in the configuration file) and their validated
//! form. Defaults live in the clap attributes only.

use crate::kafka::KafkaConfig;
use guardrails::Policy;
use std::path::PathBuf;
use std::time::Duration;

/// Whether captured MCP traffic is scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GuardMode {
    /// No scanning.
    Off,
    /// Scan off the capture path and report threats; traffic is never touched.
    Async,
}

/// Guardrails on captured MCP traffic.
#[derive(Debug, Clone, clap::Args)]
pub struct GuardArgs {
    /// Guardrails on captured MCP traffic (JSON-RPC over HTTP POST, SSE responses): `async` scans
    /// off the capture path and reports threats.
    #[arg(long = "guardrails", value_enum, default_value = "off")]
    pub guardrails: GuardMode,
    /// Guardrails policy file (TOML, or JSON when the name ends in `.json`); default policy otherwise.
    #[arg(long, value_name = "FILE")]
    pub guard_policy: Option<PathBuf>,
    /// MCP exchanges waiting for the scanners (split between the threads); when full, new ones
    /// are dropped (and counted).
    #[arg(long, default_value_t = 4096)]
    pub guard_queue: usize,
    /// Scanner threads.
    #[arg(long, default_value_t = 1)]
    pub guard_threads: usize,
    /// Bytes of the original payload carried in a threat report (longer ones are cut and flagged).
    #[arg(long, default_value_t = 65_536)]
    pub guard_payload_bytes: usize,
    /// MCP servers whose first `tools/list` is remembered for rug-pull checks; servers beyond
    /// this are not pinned (counted).
    #[arg(long, default_value_t = 10_000)]
    pub guard_max_servers: usize,
    /// Kafka topic for guardrail events (brokers and settings of the Kafka sink; spool in
    /// `<spool-dir>/guardrails`). Empty: no Kafka reports.
    #[arg(long, default_value = "akto.threat_detection.guardrail_events")]
    pub guard_kafka_topic: String,
    /// Akto threat backend: threats are POSTed to `{URL}/api/threat_detection/record_malicious_event`.
    #[arg(long, env = "THREAT_BACKEND_URL")]
    pub threat_backend_url: Option<String>,
    /// Bearer token for the threat backend.
    #[arg(long, env = "THREAT_BACKEND_TOKEN", hide_env_values = true)]
    pub threat_backend_token: Option<String>,
    /// Threat reports waiting for the threat backend; when full, new ones are dropped (counted).
    #[arg(long, default_value_t = 1024)]
    pub threat_report_queue: usize,
    /// Timeout of one threat-report POST, milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub threat_report_timeout_ms: u64,
    /// Attempts per threat report on connection errors, timeouts and 5xx (exponential backoff).
    #[arg(long, default_value_t = 4)]
    pub threat_report_attempts: u32,
    /// Log each threat as a structured warning.
    #[arg(long)]
    pub guard_log: bool,
}

/// A setting that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum GuardConfigError {
    /// A flag value out of range.
    #[error("--{flag}: {reason}")]
    BadFlag {
        /// The flag.
        flag: &'static str,
        /// Why.
        reason: String,
    },
    /// The policy file cannot be read.
    #[error("guardrails policy {path}: {source}")]
    PolicyRead {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The policy file is not a valid policy.
    #[error("guardrails policy {path}: {source}")]
    Policy {
        /// The file.
        path: PathBuf,
        /// Why.
        source: guardrails::PolicyError,
    },
}

/// The threat backend reporter's settings.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// Full URL of `record_malicious_event`.
    pub url: String,
    /// Bearer token.
    pub token: Option<String>,
    /// Reports queued for the reporter thread.
    pub queue: usize,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Attempts per report.
    pub attempts: u32,
}

/// The validated stage configuration.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// The policy.
    pub policy: Policy,
    /// Queue entries.
    pub queue: usize,
    /// Scanner threads.
    pub threads: usize,
    /// Payload cap in reports.
    pub payload_bytes: usize,
    /// Servers pinned at most.
    pub max_servers: usize,
    /// The Kafka reporter's sink configuration (topic and spool replaced).
    pub kafka: Option<KafkaConfig>,
    /// The HTTP reporter.
    pub backend: Option<BackendConfig>,
    /// Log each threat.
    pub log: bool,
}

/// Path of the threat report under the backend's base URL.
pub const REPORT_PATH: &str = "/api/threat_detection/record_malicious_event";

impl GuardArgs {
    /// The validated configuration; `Ok(None)` when the stage is off. `kafka` is the main
    /// sink's configuration (its brokers and settings carry the guardrail events).
    pub fn resolve(&self, kafka: Option<&KafkaConfig>) -> Result<Option<GuardConfig>, GuardConfigError> {
        if self.guardrails == GuardMode::Off {
            return Ok(None);
        }
        let bad = |flag: &'static str, reason: &str| GuardConfigError::BadFlag { flag, reason: reason.to_string() };
        if self.guard_queue == 0 {
            return Err(bad("guard-queue", "must be ≥ 1"));
        }
        if !(1..=64).contains(&self.guard_threads) {
            return Err(bad("guard-threads", "outside 1..=64"));
        }
        if self.guard_payload_bytes == 0 {
            return Err(bad("guard-payload-bytes", "must be ≥ 1"));
        }
        let backend = match self.threat_backend_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            None => None,
            Some(base) => {
                if !(base.starts_with("http://") || base.starts_with("https://")) {
                    return Err(bad("threat-backend-url", "must start with http:// or https://"));
                }
                if self.threat_report_queue == 0 {
                    return Err(bad("threat-report-queue", "must be ≥ 1"));
                }
                if self.threat_report_attempts == 0 {
                    return Err(bad("threat-report-attempts", "must be ≥ 1"));
                }
                if self.threat_report_timeout_ms < 10 {
                    return Err(bad("threat-report-timeout-ms", "at least 10 ms"));
                }
                Some(BackendConfig {
                    url: format!("{}{REPORT_PATH}", base.trim_end_matches('/')),
                    token: self.threat_backend_token.clone().filter(|t| !t.is_empty()),
                    queue: self.threat_report_queue,
                    timeout: Duration::from_millis(self.threat_report_timeout_ms),
                    attempts: self.threat_report_attempts,
                })
            }
        };
        let kafka = match (kafka, self.guard_kafka_topic.trim()) {
            (Some(k), topic) if !topic.is_empty() => {
                let mut k = k.clone();
                k.topic = topic.to_string();
                k.spool.dir = k.spool.dir.join("guardrails");
                Some(k)
            }
            _ => None,
        };
        if kafka.is_none() && backend.is_none() {
            return Err(bad(
                "guardrails",
                "async needs a reporter: Kafka brokers (--kafka-brokers, with --guard-kafka-topic) and/or --threat-backend-url",
            ));
        }
        let policy = match &self.guard_policy {
            None => Policy::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| GuardConfigError::PolicyRead { path: path.clone(), source })?;
                let parsed = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
                    Policy::from_json(&text)
                } else {
                    Policy::from_toml(&text)
                };
                parsed.map_err(|source| GuardConfigError::Policy { path: path.clone(), source })?
            }
        };
        Ok(Some(GuardConfig {
            policy,
            queue: self.guard_queue,
            threads: self.guard_threads,
            payload_bytes: self.guard_payload_bytes,
            max_servers: self.guard_max_servers,
            kafka,
            backend,
            log: self.guard_log,
        }))
    }

    /// The threat backend's address, so the capture leaves the agent's own reports out.
    pub fn report_endpoints(&self) -> Vec<std::net::SocketAddr> {
        use std::net::ToSocketAddrs;
        let Some(url) = self.threat_backend_url.as_deref().filter(|_| self.guardrails == GuardMode::Async) else {
            return Vec::new();
        };
        let (default_port, rest) = match url.split_once("://") {
            Some(("https", r)) => (443, r),
            Some((_, r)) => (80, r),
            None => (80, url),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let with_port = if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            authority.to_string()
        } else {
            format!("{authority}:{default_port}")
        };
        with_port.to_socket_addrs().map(Iterator::collect).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    struct T {
        #[command(flatten)]
        g: GuardArgs,
    }

    fn args(a: &[&str]) -> GuardArgs {
        T::try_parse_from(std::iter::once("t").chain(a.iter().copied())).expect("parse").g
    }

    #[test]
    fn off_by_default_and_async_needs_a_reporter() {
        assert!(args(&[]).resolve(None).expect("ok").is_none());
        let e = args(&["--guardrails", "async"]).resolve(None).expect_err("no reporter");
        assert!(e.to_string().contains("needs a reporter"), "{e}");
        let c = args(&["--guardrails", "async", "--threat-backend-url", "http://127.0.0.1:9/"])
            .resolve(None)
            .expect("ok")
            .expect("on");
        let b = c.backend.expect("backend");
        assert_eq!(b.url, "http://127.0.0.1:9/api/threat_detection/record_malicious_event");
        assert!(c.kafka.is_none());
    }

    #[test]
    fn limits_are_checked() {
        for (flag, v) in [
            ("--guard-queue", "0"),
            ("--guard-threads", "0"),
            ("--guard-payload-bytes", "0"),
            ("--threat-report-attempts", "0"),
        ] {
            let a = args(&["--guardrails", "async", "--threat-backend-url", "http://x", flag, v]);
            assert!(a.resolve(None).is_err(), "{flag} {v}");
        }
        let a = args(&["--guardrails", "async", "--threat-backend-url", "ftp://x"]);
        assert!(a.resolve(None).is_err());
    }

    #[test]
    fn report_endpoint_is_resolved_for_the_capture_filter() {
        let a = args(&["--guardrails", "async", "--threat-backend-url", "http://127.0.0.1:8123/base"]);
        assert_eq!(a.report_endpoints(), vec!["127.0.0.1:8123".parse().expect("addr")]);
        let a = args(&["--guardrails", "async", "--threat-backend-url", "https://127.0.0.1"]);
        assert_eq!(a.report_endpoints(), vec!["127.0.0.1:443".parse().expect("addr")]);
        assert!(args(&["--threat-backend-url", "http://127.0.0.1:1"]).report_endpoints().is_empty());
    }
}
