//! Kafka sink configuration: the command-line flags every sink-capable command flattens in,
//! Akto's environment variables as fallbacks, and the typed, validated [`KafkaConfig`] the
//! sink is built from. Defaults live here and nowhere else.
//!
//! Precedence: a flag wins; else the Akto variable (DESIGN.md, "Compatibility surfaces");
//! else the default. Everything is checked once, at start-up, with a message that says what to
//! fix (a misconfigured agent refuses to start).

use std::path::PathBuf;
use std::time::Duration;

/// Default topic: Akto's traffic topic.
pub const DEFAULT_TOPIC: &str = "akto.api.logs";

/// Kafka flags shared by `replay`, `capture` and `ingest` (`#[command(flatten)]`).
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Kafka sink")]
pub struct KafkaArgs {
    /// Kafka bootstrap brokers `HOST:PORT,...`. Enables the Kafka sink.
    /// Env fallback: `AKTO_KAFKA_BROKER_MAL`, then `AKTO_KAFKA_BROKER_URL`.
    #[arg(long, value_name = "HOST:PORT,...")]
    pub kafka_brokers: Option<String>,
    /// Topic the records are produced to.
    #[arg(long, default_value = DEFAULT_TOPIC)]
    pub kafka_topic: String,
    /// Records per batch (librdkafka `batch.num.messages`). Env fallback: `AKTO_TRAFFIC_BATCH_SIZE`.
    #[arg(long)]
    pub kafka_batch_size: Option<usize>,
    /// Longest a record waits for its batch to fill, in milliseconds (`linger.ms`).
    /// Env fallback: `AKTO_TRAFFIC_BATCH_TIME_SECS` (seconds).
    #[arg(long)]
    pub kafka_batch_time_ms: Option<u64>,
    /// Compression codec of the batches.
    #[arg(long, value_enum, default_value = "lz4")]
    pub kafka_compression: Compression,
    /// Largest message the broker accepts (`message.max.bytes`); a larger record has its
    /// payloads truncated to fit, and flagged.
    #[arg(long, default_value_t = 1_000_000)]
    pub kafka_max_message_bytes: usize,
    /// How long librdkafka retries a message before it is handed back to the sink, which then
    /// spools it (`message.timeout.ms`).
    #[arg(long, default_value_t = 10_000)]
    pub kafka_delivery_timeout_ms: u64,
    /// Records handed to librdkafka and not yet acknowledged, at most
    /// (`queue.buffering.max.messages`); beyond it records wait in the spool.
    #[arg(long, default_value_t = 200_000)]
    pub kafka_max_in_flight: usize,
    /// How long the sink keeps trying to deliver at shutdown before it leaves the rest in the
    /// spool, in seconds.
    #[arg(long, default_value_t = 30)]
    pub kafka_flush_timeout_secs: u64,
    /// Create the topic at start-up when it does not exist (admin API).
    #[arg(long)]
    pub kafka_create_topic: bool,
    /// Partitions of a created topic.
    #[arg(long, default_value_t = 1)]
    pub kafka_topic_partitions: i32,
    /// Replication factor of a created topic.
    #[arg(long, default_value_t = 1)]
    pub kafka_topic_replication: i32,
    /// Use TLS to the brokers. Env fallback: `USE_TLS=true`.
    #[arg(long)]
    pub kafka_tls: bool,
    /// CA certificate (PEM) to verify the brokers. Env fallback: `TLS_CA_CERT_PATH`.
    #[arg(long)]
    pub kafka_tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs `--kafka-tls-key`.
    #[arg(long)]
    pub kafka_tls_cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS.
    #[arg(long)]
    pub kafka_tls_key: Option<PathBuf>,
    /// Do not verify the brokers' certificates (only when asked; never the default).
    #[arg(long)]
    pub kafka_tls_skip_verify: bool,
    /// SASL mechanism. Env fallback: `IS_AUTH_IMPLEMENTED=true` selects PLAIN.
    #[arg(long, value_enum)]
    pub kafka_sasl_mechanism: Option<SaslMechanism>,
    /// SASL user name. Env fallback: `KAFKA_USERNAME`.
    #[arg(long)]
    pub kafka_sasl_username: Option<String>,
    /// SASL password. Env fallback: `KAFKA_PASSWORD`.
    #[arg(long)]
    pub kafka_sasl_password: Option<String>,
    /// Raw librdkafka option `KEY=VALUE` (repeatable). Keys set by the typed flags above are
    /// refused, as are keys that would break delivery accounting.
    #[arg(long = "kafka-option", value_name = "KEY=VALUE")]
    pub kafka_options: Vec<String>,
    /// Directory of the on-disk spool (records waiting for the broker).
    #[arg(long, default_value = "/var/lib/akto-tap/spool")]
    pub spool_dir: PathBuf,
    /// Spool size cap in MiB; records beyond it are dropped and counted.
    #[arg(long, default_value_t = 1024)]
    pub spool_max_mib: u64,
    /// When the spool calls fsync.
    #[arg(long, value_enum, default_value = "interval")]
    pub spool_fsync: FsyncPolicy,
}

/// Compression codec (`compression.codec`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4 (Akto's collectors use it).
    #[default]
    Lz4,
    /// zstd.
    Zstd,
}

impl Compression {
    /// librdkafka's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// SASL mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SaslMechanism {
    /// PLAIN (what Akto's `IS_AUTH_IMPLEMENTED` means).
    #[value(name = "PLAIN", alias = "plain")]
    Plain,
    /// SCRAM-SHA-256.
    #[value(name = "SCRAM-SHA-256", alias = "scram-sha-256")]
    ScramSha256,
    /// SCRAM-SHA-512.
    #[value(name = "SCRAM-SHA-512", alias = "scram-sha-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// librdkafka's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// When the spool makes its writes durable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum FsyncPolicy {
    /// Leave it to the OS (a process crash loses nothing; a power loss may lose the page cache).
    Never,
    /// At most once a second while there are new writes (a power loss loses ≤ 1 s of spool).
    #[default]
    Interval,
    /// After every appended record (slow; for tiny volumes).
    Always,
}

/// TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// CA bundle to verify brokers; `None` = system roots.
    pub ca: Option<PathBuf>,
    /// Client certificate and key for mutual TLS.
    pub client: Option<(PathBuf, PathBuf)>,
    /// Skip certificate verification (explicitly asked for).
    pub skip_verify: bool,
}

/// SASL settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslConfig {
    /// Mechanism.
    pub mechanism: SaslMechanism,
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// Spool settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// Directory of segment files.
    pub dir: PathBuf,
    /// Total bytes on disk, at most.
    pub max_bytes: u64,
    /// Size at which a segment is closed and a new one started.
    pub segment_bytes: u64,
    /// fsync policy.
    pub fsync: FsyncPolicy,
}

/// The validated Kafka sink configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// Bootstrap brokers, comma-separated.
    pub brokers: String,
    /// Topic.
    pub topic: String,
    /// `batch.num.messages`.
    pub batch_size: usize,
    /// `linger.ms`.
    pub batch_time: Duration,
    /// Compression.
    pub compression: Compression,
    /// `message.max.bytes`.
    pub max_message_bytes: usize,
    /// `message.timeout.ms`.
    pub delivery_timeout: Duration,
    /// `queue.buffering.max.messages`.
    pub max_in_flight: usize,
    /// Shutdown flush budget.
    pub flush_timeout: Duration,
    /// Create the topic when missing: `(partitions, replication)`.
    pub create_topic: Option<(i32, i32)>,
    /// TLS, when enabled.
    pub tls: Option<TlsConfig>,
    /// SASL, when enabled.
    pub sasl: Option<SaslConfig>,
    /// Raw librdkafka options (checked for conflicts).
    pub raw: Vec<(String, String)>,
    /// Spool.
    pub spool: SpoolConfig,
}

/// What is wrong with the Kafka configuration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// An environment variable has a value of the wrong type.
    #[error("environment variable {name}={value:?}: {expected}")]
    BadEnv { name: &'static str, value: String, expected: &'static str },
    /// A flag value is out of range.
    #[error("--{flag}: {reason}")]
    BadFlag { flag: &'static str, reason: String },
    /// A raw option is not `KEY=VALUE`.
    #[error("--kafka-option {0:?}: expected KEY=VALUE")]
    RawSyntax(String),
    /// A raw option sets a key owned by a typed flag or by the sink itself.
    #[error("--kafka-option {key}: {why}")]
    RawConflict { key: String, why: &'static str },
    /// A file named by a TLS option is missing.
    #[error("--{flag} {path}: file not readable ({reason})")]
    TlsFile { flag: &'static str, path: String, reason: String },
    /// SASL selected without credentials.
    #[error("SASL {0} needs a user name and a password (--kafka-sasl-username/--kafka-sasl-password or KAFKA_USERNAME/KAFKA_PASSWORD)")]
    SaslCredentials(&'static str),
}

/// Keys the sink sets itself and a raw option may not change, with the reason.
const OWNED_KEYS: &[(&str, &str)] = &[
    ("bootstrap.servers", "use --kafka-brokers"),
    ("metadata.broker.list", "use --kafka-brokers"),
    ("compression.codec", "use --kafka-compression"),
    ("compression.type", "use --kafka-compression"),
    ("batch.num.messages", "use --kafka-batch-size"),
    ("linger.ms", "use --kafka-batch-time-ms"),
    ("queue.buffering.max.ms", "use --kafka-batch-time-ms"),
    ("message.max.bytes", "use --kafka-max-message-bytes"),
    ("message.timeout.ms", "use --kafka-delivery-timeout-ms"),
    ("delivery.timeout.ms", "use --kafka-delivery-timeout-ms"),
    ("queue.buffering.max.messages", "use --kafka-max-in-flight"),
    ("security.protocol", "use --kafka-tls / --kafka-sasl-mechanism"),
    ("sasl.mechanism", "use --kafka-sasl-mechanism"),
    ("sasl.mechanisms", "use --kafka-sasl-mechanism"),
    ("sasl.username", "use --kafka-sasl-username"),
    ("sasl.password", "use --kafka-sasl-password"),
    ("ssl.ca.location", "use --kafka-tls-ca"),
    ("ssl.certificate.location", "use --kafka-tls-cert"),
    ("ssl.key.location", "use --kafka-tls-key"),
    ("enable.ssl.certificate.verification", "use --kafka-tls-skip-verify"),
    ("dr_msg_cb", "delivery reports drive the accounting"),
    ("delivery.report.only.error", "every record's acknowledgement is counted"),
    ("acks", "the sink requires acknowledgement from all in-sync replicas"),
    ("request.required.acks", "the sink requires acknowledgement from all in-sync replicas"),
];

/// Where the sink reads its environment (tests pass a map instead of the process env).
pub trait Env {
    /// The variable's value, when set and non-empty.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }
}

fn env_bool(env: &dyn Env, name: &'static str) -> Result<bool, ConfigError> {
    match env.var(name) {
        None => Ok(false),
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(ConfigError::BadEnv { name, value: v, expected: "expected true or false" }),
        },
    }
}

fn env_u64(env: &dyn Env, name: &'static str) -> Result<Option<u64>, ConfigError> {
    env.var(name)
        .map(|v| {
            v.trim().parse::<u64>().map_err(|_| ConfigError::BadEnv {
                name,
                value: v,
                expected: "expected a non-negative integer",
            })
        })
        .transpose()
}

fn readable(flag: &'static str, path: &std::path::Path) -> Result<(), ConfigError> {
    std::fs::File::open(path).map(drop).map_err(|e| ConfigError::TlsFile {
        flag,
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

impl KafkaArgs {
    /// The brokers from the flag or Akto's variables; `None` = the Kafka sink is off.
    pub fn brokers(&self, env: &dyn Env) -> Option<String> {
        self.kafka_brokers
            .clone()
            .filter(|b| !b.trim().is_empty())
            .or_else(|| env.var("AKTO_KAFKA_BROKER_MAL"))
            .or_else(|| env.var("AKTO_KAFKA_BROKER_URL"))
    }

    /// Resolves flags and environment into a validated config; `Ok(None)` when no broker is
    /// configured (the Kafka sink is off).
    pub fn resolve(&self, env: &dyn Env) -> Result<Option<KafkaConfig>, ConfigError> {
        let Some(brokers) = self.brokers(env) else { return Ok(None) };
        let batch_size = match self.kafka_batch_size {
            Some(n) => n as u64,
            None => env_u64(env, "AKTO_TRAFFIC_BATCH_SIZE")?.unwrap_or(10_000),
        };
        if !(1..=1_000_000).contains(&batch_size) {
            return Err(ConfigError::BadFlag {
                flag: "kafka-batch-size",
                reason: format!("{batch_size} is outside 1..=1000000"),
            });
        }
        let batch_time = match self.kafka_batch_time_ms {
            Some(ms) => Duration::from_millis(ms),
            None => {
                env_u64(env, "AKTO_TRAFFIC_BATCH_TIME_SECS")?.map_or(Duration::from_millis(20), Duration::from_secs)
            }
        };
        if batch_time > Duration::from_secs(900) {
            return Err(ConfigError::BadFlag { flag: "kafka-batch-time-ms", reason: "at most 900 s".into() });
        }
        if !(1000..=1_000_000_000).contains(&self.kafka_max_message_bytes) {
            return Err(ConfigError::BadFlag {
                flag: "kafka-max-message-bytes",
                reason: "outside 1000..=1000000000".into(),
            });
        }
        if !(1..=10_000_000).contains(&self.kafka_max_in_flight) {
            return Err(ConfigError::BadFlag { flag: "kafka-max-in-flight", reason: "outside 1..=10000000".into() });
        }
        if self.kafka_delivery_timeout_ms < 100 {
            return Err(ConfigError::BadFlag { flag: "kafka-delivery-timeout-ms", reason: "at least 100 ms".into() });
        }
        if self.kafka_topic.is_empty() {
            return Err(ConfigError::BadFlag { flag: "kafka-topic", reason: "empty".into() });
        }
        if self.kafka_create_topic && (self.kafka_topic_partitions < 1 || self.kafka_topic_replication < 1) {
            return Err(ConfigError::BadFlag {
                flag: "kafka-topic-partitions",
                reason: "partitions and replication must be ≥ 1".into(),
            });
        }
        let tls = self.tls(env)?;
        let sasl = self.sasl(env)?;
        let raw = self.raw()?;
        if self.spool_max_mib == 0 {
            return Err(ConfigError::BadFlag { flag: "spool-max-mib", reason: "must be ≥ 1".into() });
        }
        let max_bytes = self.spool_max_mib.saturating_mul(1 << 20);
        Ok(Some(KafkaConfig {
            brokers,
            topic: self.kafka_topic.clone(),
            batch_size: batch_size as usize,
            batch_time,
            compression: self.kafka_compression,
            max_message_bytes: self.kafka_max_message_bytes,
            delivery_timeout: Duration::from_millis(self.kafka_delivery_timeout_ms),
            max_in_flight: self.kafka_max_in_flight,
            flush_timeout: Duration::from_secs(self.kafka_flush_timeout_secs),
            create_topic: self
                .kafka_create_topic
                .then_some((self.kafka_topic_partitions, self.kafka_topic_replication)),
            tls,
            sasl,
            raw,
            spool: SpoolConfig {
                dir: self.spool_dir.clone(),
                max_bytes,
                // Segments small enough that acknowledged data is freed promptly.
                segment_bytes: (max_bytes / 16).clamp(1 << 20, 64 << 20),
                fsync: self.spool_fsync,
            },
        }))
    }

    fn tls(&self, env: &dyn Env) -> Result<Option<TlsConfig>, ConfigError> {
        let any_flag = self.kafka_tls
            || self.kafka_tls_ca.is_some()
            || self.kafka_tls_cert.is_some()
            || self.kafka_tls_skip_verify;
        if !any_flag && !env_bool(env, "USE_TLS")? {
            return Ok(None);
        }
        let ca = self.kafka_tls_ca.clone().or_else(|| env.var("TLS_CA_CERT_PATH").map(PathBuf::from));
        if let Some(ca) = &ca {
            readable("kafka-tls-ca", ca)?;
        }
        let client = match (&self.kafka_tls_cert, &self.kafka_tls_key) {
            (None, None) => None,
            (Some(c), Some(k)) => {
                readable("kafka-tls-cert", c)?;
                readable("kafka-tls-key", k)?;
                Some((c.clone(), k.clone()))
            }
            _ => {
                return Err(ConfigError::BadFlag {
                    flag: "kafka-tls-cert",
                    reason: "--kafka-tls-cert and --kafka-tls-key go together".into(),
                })
            }
        };
        Ok(Some(TlsConfig { ca, client, skip_verify: self.kafka_tls_skip_verify }))
    }

    fn sasl(&self, env: &dyn Env) -> Result<Option<SaslConfig>, ConfigError> {
        let mechanism = match self.kafka_sasl_mechanism {
            Some(m) => m,
            None if env_bool(env, "IS_AUTH_IMPLEMENTED")? => SaslMechanism::Plain,
            None => return Ok(None),
        };
        let username = self.kafka_sasl_username.clone().or_else(|| env.var("KAFKA_USERNAME"));
        let password = self.kafka_sasl_password.clone().or_else(|| env.var("KAFKA_PASSWORD"));
        match (username, password) {
            (Some(username), Some(password)) if !username.is_empty() => {
                Ok(Some(SaslConfig { mechanism, username, password }))
            }
            _ => Err(ConfigError::SaslCredentials(mechanism.as_str())),
        }
    }

    fn raw(&self) -> Result<Vec<(String, String)>, ConfigError> {
        let mut out: Vec<(String, String)> = Vec::new();
        for opt in &self.kafka_options {
            let Some((k, v)) = opt.split_once('=') else { return Err(ConfigError::RawSyntax(opt.clone())) };
            let k = k.trim();
            if k.is_empty() {
                return Err(ConfigError::RawSyntax(opt.clone()));
            }
            if let Some((_, why)) = OWNED_KEYS.iter().find(|(owned, _)| *owned == k) {
                return Err(ConfigError::RawConflict { key: k.to_string(), why });
            }
            if out.iter().any(|(seen, _)| seen == k) {
                return Err(ConfigError::RawConflict { key: k.to_string(), why: "given twice" });
            }
            out.push((k.to_string(), v.to_string()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(brokers: Option<&str>) -> KafkaArgs {
        KafkaArgs {
            kafka_brokers: brokers.map(str::to_string),
            kafka_topic: DEFAULT_TOPIC.into(),
            kafka_max_message_bytes: 1_000_000,
            kafka_delivery_timeout_ms: 10_000,
            kafka_max_in_flight: 1000,
            kafka_flush_timeout_secs: 5,
            kafka_topic_partitions: 1,
            kafka_topic_replication: 1,
            spool_dir: "/tmp/x".into(),
            spool_max_mib: 16,
            ..KafkaArgs::default()
        }
    }

    #[test]
    fn off_without_brokers_and_env_fallback_order() {
        assert_eq!(args(None).resolve(&[("X", "y")]), Ok(None));
        let env = [("AKTO_KAFKA_BROKER_URL", "url:9092"), ("AKTO_KAFKA_BROKER_MAL", "mal:9092")];
        assert_eq!(args(None).brokers(&env).as_deref(), Some("mal:9092"));
        assert_eq!(args(None).brokers(&[("AKTO_KAFKA_BROKER_URL", "url:9092")]).as_deref(), Some("url:9092"));
        assert_eq!(args(Some("flag:1")).brokers(&env).as_deref(), Some("flag:1"));
    }

    #[test]
    fn akto_batch_env_is_a_fallback_and_typed() {
        let env = [("AKTO_TRAFFIC_BATCH_SIZE", "100"), ("AKTO_TRAFFIC_BATCH_TIME_SECS", "10")];
        let c = args(Some("b:1")).resolve(&env).ok().flatten().expect("config");
        assert_eq!((c.batch_size, c.batch_time), (100, Duration::from_secs(10)));
        let mut a = args(Some("b:1"));
        a.kafka_batch_size = Some(7);
        let c = a.resolve(&env).ok().flatten().expect("config");
        assert_eq!(c.batch_size, 7);
        let bad = args(Some("b:1")).resolve(&[("AKTO_TRAFFIC_BATCH_SIZE", "lots")]);
        assert!(matches!(bad, Err(ConfigError::BadEnv { name: "AKTO_TRAFFIC_BATCH_SIZE", .. })), "{bad:?}");
    }

    #[test]
    fn raw_options_conflicts_are_refused() {
        let mut a = args(Some("b:1"));
        a.kafka_options = vec!["bootstrap.servers=x:1".into()];
        assert!(matches!(a.resolve(&[("X", "")]), Err(ConfigError::RawConflict { .. })));
        a.kafka_options = vec!["socket.timeout.ms=1000".into(), "socket.timeout.ms=2000".into()];
        assert!(matches!(a.resolve(&[("X", "")]), Err(ConfigError::RawConflict { why: "given twice", .. })));
        a.kafka_options = vec!["nonsense".into()];
        assert!(matches!(a.resolve(&[("X", "")]), Err(ConfigError::RawSyntax(_))));
        a.kafka_options = vec!["socket.timeout.ms=1000".into()];
        let c = a.resolve(&[("X", "")]).ok().flatten().expect("config");
        assert_eq!(c.raw, vec![("socket.timeout.ms".to_string(), "1000".to_string())]);
    }

    #[test]
    fn tls_and_sasl_from_akto_env_and_errors() {
        let env = [("IS_AUTH_IMPLEMENTED", "true"), ("KAFKA_USERNAME", "u"), ("KAFKA_PASSWORD", "p")];
        let c = args(Some("b:1")).resolve(&env).ok().flatten().expect("config");
        assert_eq!(c.sasl.map(|s| s.mechanism), Some(SaslMechanism::Plain));
        assert!(matches!(
            args(Some("b:1")).resolve(&[("IS_AUTH_IMPLEMENTED", "true")]),
            Err(ConfigError::SaslCredentials("PLAIN"))
        ));
        let r = args(Some("b:1")).resolve(&[("USE_TLS", "true"), ("TLS_CA_CERT_PATH", "/nonexistent/ca.crt")]);
        assert!(matches!(&r, Err(ConfigError::TlsFile { flag: "kafka-tls-ca", .. })), "{r:?}");
        assert!(matches!(args(Some("b:1")).resolve(&[("USE_TLS", "maybe")]), Err(ConfigError::BadEnv { .. })));
    }
}
