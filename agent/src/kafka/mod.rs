//! The Kafka sink: Akto records to `akto.api.logs` with every record accounted for.
//!
//! * [`config`] — flags, Akto's environment fallbacks, the validated [`KafkaConfig`].
//! * [`service`] — the only file that talks to librdkafka: producer, delivery reports, the
//!   retriable/fatal error list, start-up checks, topic creation.
//! * [`spool`] — the bounded on-disk spool (segment files, CRC, cursor) for records the broker
//!   cannot take now; replayed in order when it returns, also after a restart.
//! * [`sink`] — the worker that ties them together and counts everything.
//!
//! Bounded: the hand-off channel (`CHANNEL_RECORDS`), librdkafka's queue
//! (`--kafka-max-in-flight`), the spool (`--spool-max-mib`). Only the spool's cap drops, and it
//! counts. Start-up refuses a configuration that cannot work (bad TLS files, authentication
//! failure, missing topic without `--kafka-create-topic`); brokers that are merely unreachable
//! are not fatal — the spool holds records until they answer.

pub mod config;
pub mod service;
pub mod sink;
pub mod spool;

pub use config::{KafkaArgs, KafkaConfig};
pub use sink::{KafkaSink, Outgoing, RecordSender, Snapshot};

use service::{Created, Service, ServiceError, Startup};
use std::time::Duration;

/// Records the pipeline may hand to the sink before `send` waits.
pub const CHANNEL_RECORDS: usize = 16_384;
const STARTUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the sink did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Producer, security or topic problem.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The spool directory cannot be used.
    #[error(transparent)]
    Spool(#[from] spool::SpoolError),
    /// The worker thread could not be started.
    #[error("cannot start the Kafka sink thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Builds the producer, checks brokers/credentials/topic (creating the topic when asked),
/// opens the spool and starts the worker.
pub fn start(cfg: KafkaConfig) -> Result<KafkaSink, StartError> {
    let svc = Service::new(&cfg)?;
    let startup = match svc.check_startup(&cfg, STARTUP_TIMEOUT) {
        Err(ServiceError::UnknownTopic { .. }) if cfg.create_topic.is_some() => {
            let (partitions, replication) = cfg.create_topic.unwrap_or((1, 1));
            let created = service::create_topic(&cfg, partitions, replication, STARTUP_TIMEOUT)?;
            if created == Created::Created {
                eprintln!(
                    "akto-tap kafka: created topic {} ({partitions} partitions, replication {replication})",
                    cfg.topic
                );
            }
            svc.check_startup(&cfg, STARTUP_TIMEOUT)?
        }
        other => other?,
    };
    if let Startup::Unreachable { reason } = &startup {
        eprintln!(
            "akto-tap kafka: brokers {} not reachable at start-up ({reason}); records are spooled in {} until they answer. \
             A listener that drops the connection at once may want TLS (--kafka-tls) or SASL (--kafka-sasl-mechanism){}",
            cfg.brokers,
            cfg.spool.dir.display(),
            if cfg.tls.is_some() || cfg.sasl.is_some() { ", or other credentials" } else { "" }
        );
    }
    let spool = spool::Spool::open(cfg.spool.clone())?;
    if spool.corrupt_bytes() > 0 {
        eprintln!(
            "akto-tap kafka: spool {}: {} bytes of torn/corrupt records cut at open",
            cfg.spool.dir.display(),
            spool.corrupt_bytes()
        );
    }
    let reachable = matches!(startup, Startup::Ready { .. });
    Ok(KafkaSink::spawn(cfg, svc, spool, CHANNEL_RECORDS, reachable)?)
}

/// The Kafka key of a record: the client IP of its `ip` field (`addr:port`, `[v6]:port` or a
/// bare address), so one client's records land in one partition, in order.
pub fn client_key(ip: &str) -> &str {
    if let Ok(sa) = ip.parse::<std::net::SocketAddr>() {
        // The text form of the address is a prefix of the input for v4, inside brackets for v6.
        return match sa {
            std::net::SocketAddr::V4(_) => ip.rsplit_once(':').map_or(ip, |(a, _)| a),
            std::net::SocketAddr::V6(_) => ip.strip_prefix('[').and_then(|r| r.split_once(']')).map_or(ip, |(a, _)| a),
        };
    }
    ip
}

/// Renders the final counters for a summary line.
pub fn summary_line(s: &Snapshot) -> String {
    let mut line = format!(
        "kafka: accepted {} · delivered {} (from spool {}) · spooled {} · retried {} · failed {} · truncated {} · spool cap drops {} · spool bytes left {}",
        s.accepted, s.delivered, s.replayed, s.spooled, s.retried, s.failed, s.truncated, s.spool_dropped, s.spool_bytes
    );
    for (reason, n) in &s.failures {
        line.push_str(&format!("\n  failed {n}: {reason}"));
    }
    line
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_is_the_client_address_without_port() {
        assert_eq!(super::client_key("10.0.0.7:43122"), "10.0.0.7");
        assert_eq!(super::client_key("[2001:db8::1]:443"), "2001:db8::1");
        assert_eq!(super::client_key("10.0.0.7"), "10.0.0.7");
        assert_eq!(super::client_key(""), "");
    }
}
