//! `akto-tap ingest` configuration.

use crate::kafka::KafkaArgs;
use std::net::SocketAddr;
use std::time::Duration;

/// Arguments of `akto-tap ingest`.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Address to listen on (`127.0.0.1:0` picks a free port; the bound address is printed).
    #[arg(long, default_value = "0.0.0.0:9091")]
    pub listen: SocketAddr,
    /// API key required in `X-API-KEY` (compared in constant time). Unset = no authentication.
    #[arg(long, env = "AKTO_DI_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Largest request body in bytes; larger requests get 413.
    #[arg(long, default_value_t = 32 << 20)]
    pub max_body_bytes: usize,
    /// Most records in one batch; larger batches get 413.
    #[arg(long, default_value_t = 10_000)]
    pub max_batch_records: usize,
    /// Largest value of a non-payload field (path, headers, …) in bytes; a larger one rejects
    /// the record. Payloads are not limited here: a record over the Kafka message limit has its
    /// payloads cut to fit, flagged.
    #[arg(long, default_value_t = 64 << 10)]
    pub max_field_bytes: usize,
    /// How long a request waits for room in the Kafka sink's queue before the records not yet
    /// handed over are answered with 503, in milliseconds.
    #[arg(long, default_value_t = 5_000)]
    pub handoff_timeout_ms: u64,
    /// Configuration file (TOML) with these settings; flags given here win over it.
    #[arg(long, env = "AKTO_TAP_CONFIG")]
    pub config: Option<std::path::PathBuf>,
    /// Serve Prometheus metrics, /healthz and /readyz on this address (e.g. 0.0.0.0:9464).
    #[arg(long, env = "AKTO_TAP_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Logging.
    #[command(flatten)]
    pub log: crate::logging::LogArgs,
    /// Kafka sink (required: `--kafka-brokers` or `AKTO_KAFKA_BROKER_MAL`/`_URL`).
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// Validated server settings.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Required API key.
    pub api_key: Option<String>,
    /// Body cap.
    pub max_body_bytes: usize,
    /// Record validation limits.
    pub limits: super::validate::Limits,
    /// Hand-off wait.
    pub handoff_timeout: Duration,
}

impl IngestArgs {
    /// The server part of the configuration.
    pub fn server_config(&self) -> anyhow::Result<IngestConfig> {
        if self.max_body_bytes < 1024 {
            anyhow::bail!("--max-body-bytes: at least 1024");
        }
        if self.max_batch_records == 0 {
            anyhow::bail!("--max-batch-records: at least 1");
        }
        if matches!(&self.api_key, Some(k) if k.is_empty()) {
            anyhow::bail!("--api-key: empty (leave it unset to disable authentication)");
        }
        Ok(IngestConfig {
            listen: self.listen,
            api_key: self.api_key.clone(),
            max_body_bytes: self.max_body_bytes,
            limits: super::validate::Limits {
                max_batch_records: self.max_batch_records,
                max_field_bytes: self.max_field_bytes,
            },
            handoff_timeout: Duration::from_millis(self.handoff_timeout_ms),
        })
    }
}
