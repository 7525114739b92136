//! The only file that talks to librdkafka (through rdkafka): building the producer from the
//! typed config, sending, delivery reports, the error classification, start-up checks and
//! topic creation.
//!
//! Every record handed to librdkafka carries an [`Origin`] and comes back exactly once in a
//! [`Report`] from the delivery callback (librdkafka guarantees one report per accepted
//! message, including purged ones). The sink turns reports into counters and spool actions.
//!
//! Cost per record on the hot path (measured: see scripts/bench-kafka.sh): a live record
//! carries no allocated opaque (its opaque is the integer 0), and consecutive acknowledgements
//! of live records are merged into one [`Report::LiveDelivered`] count, so an acknowledged live
//! record costs an integer increment, not an allocation and a channel message. Only spooled
//! records (rare: after an outage) carry an [`Origin`], kept in a table keyed by their opaque.
//! The delivery callback runs on the thread that calls [`Service::serve`] (the sink's worker),
//! so the locks below are never contended.

use super::config::KafkaConfig;
use super::spool::Pos;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext, PurgeConfig};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// Where a record handed to librdkafka came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Straight from the pipeline.
    Live,
    /// Read back from the spool: its position, the next record's, and the drain generation
    /// (reports of an older generation are stale after a rewind).
    Spool { pos: Pos, next: Pos, gen: u64 },
}

/// How an error is handled. The one list of retriable vs. fatal errors: [`classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The broker is away or busy: the record goes to the spool and is sent again.
    Retriable,
    /// The record is larger than the broker accepts.
    TooLarge,
    /// Retrying cannot help (authorization, unknown topic, invalid record): counted as failed
    /// with the reason.
    Fatal,
}

/// Classifies a librdkafka error code.
pub fn classify(code: RDKafkaErrorCode) -> ErrorClass {
    use RDKafkaErrorCode as E;
    match code {
        // Broker unreachable, timed out, leadership moving, or our own purge at shutdown.
        E::MessageTimedOut
        | E::RequestTimedOut
        | E::OperationTimedOut
        | E::TimedOutQueue
        | E::BrokerTransportFailure
        | E::AllBrokersDown
        | E::Resolve
        | E::NetworkException
        | E::BrokerNotAvailable
        | E::LeaderNotAvailable
        | E::NotLeaderForPartition
        | E::ReplicaNotAvailable
        | E::NotEnoughReplicas
        | E::NotEnoughReplicasAfterAppend
        | E::KafkaStorageError
        | E::FencedLeaderEpoch
        | E::UnknownLeaderEpoch
        | E::NotController
        | E::CoordinatorNotAvailable
        | E::CoordinatorLoadInProgress
        | E::QueueFull
        | E::PurgeQueue
        | E::PurgeInflight
        | E::Retry
        | E::UnknownPartition
        | E::Interrupted
        | E::DestroyBroker
        | E::BrokerDestroy => ErrorClass::Retriable,
        E::MessageSizeTooLarge | E::InvalidMessageSize | E::MessageBatchTooLarge => ErrorClass::TooLarge,
        // Everything else, notably: TopicAuthorizationFailed, ClusterAuthorizationFailed,
        // SaslAuthenticationFailed, Authentication, SSL, UnknownTopic, UnknownTopicOrPartition
        // (auto-create off), InvalidMessage, CorruptMessage, UnsupportedVersion, InvalidRecord.
        _ => ErrorClass::Fatal,
    }
}

/// Delivery reports, in the order librdkafka gave them.
#[derive(Debug)]
pub enum Report {
    /// This many live records acknowledged in a row (merged: no report per record).
    LiveDelivered(u64),
    /// One record's outcome: a spooled record's, or a live record that failed.
    One {
        /// Where the record came from.
        origin: Origin,
        /// What happened.
        outcome: Outcome,
    },
}

/// Outcome of one record.
#[derive(Debug)]
pub enum Outcome {
    /// Acknowledged by the broker.
    Delivered,
    /// Not delivered. `key`/`value` are returned for live records (so they can be spooled).
    Failed { class: ErrorClass, reason: String, key: Vec<u8>, value: Vec<u8> },
}

/// Why `send` did not take a record.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// librdkafka's queue is full (`queue.buffering.max.messages`).
    #[error("producer queue full")]
    QueueFull,
    /// The record is larger than `message.max.bytes`.
    #[error("record too large: {0}")]
    TooLarge(String),
    /// Anything else (unknown topic, fatal producer error).
    #[error("{0}")]
    Fatal(String),
}

/// Start-up and configuration failures.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// librdkafka refused the configuration.
    #[error("Kafka configuration refused by librdkafka: {0}")]
    Config(String),
    /// Authentication or TLS failed.
    #[error("cannot connect to Kafka brokers {brokers}: {reason}. Check {hint}")]
    Security { brokers: String, reason: String, hint: &'static str },
    /// The topic does not exist.
    #[error("topic {topic:?} does not exist on {brokers} and the brokers do not create it; create it (e.g. `tansu topic create {topic}` / kafka-topics.sh) or pass --kafka-create-topic")]
    UnknownTopic { topic: String, brokers: String },
    /// The topic exists but cannot be used.
    #[error("topic {topic:?}: {reason}")]
    Topic { topic: String, reason: String },
    /// Topic creation failed.
    #[error("cannot create topic {topic:?}: {reason}")]
    CreateTopic { topic: String, reason: String },
}

/// What the start-up check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Startup {
    /// Brokers answered and the topic exists.
    Ready { partitions: usize },
    /// Brokers did not answer (records are spooled until they do).
    Unreachable { reason: String },
}

/// An error librdkafka reported outside any one record (connection, authentication).
#[derive(Debug, Clone)]
pub struct GlobalError {
    /// librdkafka's code, when it has one.
    pub code: Option<RDKafkaErrorCode>,
    /// Its text.
    pub reason: String,
}

impl GlobalError {
    /// librdkafka lost every broker connection.
    pub fn is_all_brokers_down(&self) -> bool {
        self.code == Some(RDKafkaErrorCode::AllBrokersDown)
    }

    /// Authentication or TLS: retrying with the same configuration cannot succeed.
    pub fn is_security(&self) -> bool {
        use RDKafkaErrorCode as E;
        matches!(
            self.code,
            Some(
                E::Authentication
                    | E::SSL
                    | E::SaslAuthenticationFailed
                    | E::UnsupportedSASLMechanism
                    | E::IllegalSASLState
            )
        ) || self.reason.contains("SSL handshake")
            || self.reason.contains("SSL_HANDSHAKE")
            || self.reason.contains("SASL")
            || self.reason.contains("ssl.")
    }
}

const MAX_GLOBAL_ERRORS: usize = 64;

/// The opaque of a live record; spooled records get 1, 2, … (keys of `Ctx::spooled`).
const LIVE: usize = 0;

struct Ctx {
    /// Reports since the last [`Service::take_reports`].
    reports: Mutex<Vec<Report>>,
    /// Origins of the spooled records in librdkafka, by opaque.
    spooled: Mutex<HashMap<usize, Origin>>,
    /// Delivery callbacks so far (tells [`Service::serve`] whether a poll served anything).
    callbacks: AtomicU64,
    errors: Mutex<VecDeque<GlobalError>>,
}

impl Ctx {
    fn push(&self, e: GlobalError) {
        if let Ok(mut q) = self.errors.lock() {
            if q.len() == MAX_GLOBAL_ERRORS {
                q.pop_front();
            }
            q.push_back(e);
        }
    }
}

impl ClientContext for Ctx {
    fn error(&self, error: KafkaError, reason: &str) {
        self.push(GlobalError { code: error.rdkafka_error_code(), reason: format!("{error}: {reason}") });
    }

    /// Connection-level failures (a TLS handshake that times out, a refused connection) are
    /// only logged by librdkafka, not raised as errors: warnings are kept to explain them.
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        if (level as i32) <= (RDKafkaLogLevel::Warning as i32) {
            self.push(GlobalError { code: None, reason: format!("{fac}: {msg}") });
        }
    }
}

impl ProducerContext for Ctx {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        self.callbacks.fetch_add(1, Relaxed);
        let Ok(mut reports) = self.reports.lock() else { return };
        let origin = if opaque == LIVE {
            if result.is_ok() {
                // The hot path: merge into the previous run of acknowledgements.
                match reports.last_mut() {
                    Some(Report::LiveDelivered(n)) => *n += 1,
                    _ => reports.push(Report::LiveDelivered(1)),
                }
                return;
            }
            Origin::Live
        } else {
            match self.spooled.lock().ok().and_then(|mut m| m.remove(&opaque)) {
                Some(o) => o,
                // Unreachable: every spooled opaque is registered before the send.
                None => return,
            }
        };
        let outcome = match result {
            Ok(_) => Outcome::Delivered,
            Err((e, msg)) => {
                let class = e.rdkafka_error_code().map_or(ErrorClass::Fatal, classify);
                let live = origin == Origin::Live;
                Outcome::Failed {
                    class,
                    reason: e.to_string(),
                    key: if live { msg.key().map(<[u8]>::to_vec).unwrap_or_default() } else { Vec::new() },
                    value: if live { msg.payload().map(<[u8]>::to_vec).unwrap_or_default() } else { Vec::new() },
                }
            }
        };
        reports.push(Report::One { origin, outcome });
    }
}

/// The producer.
pub struct Service {
    producer: BaseProducer<Ctx>,
    /// The last opaque given to a spooled record.
    next_opaque: usize,
    topic: String,
    brokers: String,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("topic", &self.topic).field("brokers", &self.brokers).finish()
    }
}

/// The librdkafka configuration of the typed config (without the producer-only keys when
/// `admin` is set).
pub fn client_config(cfg: &KafkaConfig, admin: bool) -> ClientConfig {
    let mut c = ClientConfig::new();
    // Warnings reach `Ctx::log` whatever the `log` crate's level (it has no logger here).
    c.set_log_level(RDKafkaLogLevel::Warning);
    // A connection (TCP + TLS + SASL) that is not set up in 4 s fails with a logged reason
    // (librdkafka's default is 30 s), so a TLS handshake against a plaintext listener is
    // reported within the start-up check. A raw option may override it.
    c.set("bootstrap.servers", &cfg.brokers)
        .set("client.id", "akto-tap")
        .set("socket.connection.setup.timeout.ms", "4000");
    if !admin {
        c.set("compression.codec", cfg.compression.as_str())
            .set("batch.num.messages", cfg.batch_size.to_string())
            .set("linger.ms", cfg.batch_time.as_millis().to_string())
            .set("message.max.bytes", cfg.max_message_bytes.to_string())
            .set("message.timeout.ms", cfg.delivery_timeout.as_millis().to_string())
            .set("queue.buffering.max.messages", cfg.max_in_flight.to_string())
            .set("acks", "all");
    }
    let protocol = match (cfg.tls.is_some(), cfg.sasl.is_some()) {
        (false, false) => "plaintext",
        (true, false) => "ssl",
        (false, true) => "sasl_plaintext",
        (true, true) => "sasl_ssl",
    };
    c.set("security.protocol", protocol);
    if let Some(tls) = &cfg.tls {
        if let Some(ca) = &tls.ca {
            c.set("ssl.ca.location", ca.display().to_string());
        }
        if let Some((cert, key)) = &tls.client {
            c.set("ssl.certificate.location", cert.display().to_string())
                .set("ssl.key.location", key.display().to_string());
        }
        if tls.skip_verify {
            c.set("enable.ssl.certificate.verification", "false").set("ssl.endpoint.identification.algorithm", "none");
        }
    }
    if let Some(sasl) = &cfg.sasl {
        c.set("sasl.mechanism", sasl.mechanism.as_str())
            .set("sasl.username", &sasl.username)
            .set("sasl.password", &sasl.password);
    }
    for (k, v) in &cfg.raw {
        c.set(k, v);
    }
    c
}

fn security_hint(cfg: &KafkaConfig) -> &'static str {
    match (cfg.tls.is_some(), cfg.sasl.is_some()) {
        (true, true) => "the TLS options (--kafka-tls-*) and the SASL mechanism and credentials, and that the listener speaks SASL_SSL",
        (true, false) => "the TLS options (--kafka-tls, --kafka-tls-ca, client certificate) and that the listener speaks TLS",
        (false, true) => "the SASL mechanism and credentials (--kafka-sasl-*, KAFKA_USERNAME/KAFKA_PASSWORD) and that the listener speaks SASL",
        (false, false) => "whether the listener requires TLS (--kafka-tls) or SASL (--kafka-sasl-mechanism)",
    }
}

impl Service {
    /// Builds the producer. Errors name the offending librdkafka key.
    pub fn new(cfg: &KafkaConfig) -> Result<Service, ServiceError> {
        let ctx = Ctx {
            reports: Mutex::new(Vec::new()),
            spooled: Mutex::new(HashMap::new()),
            callbacks: AtomicU64::new(0),
            errors: Mutex::new(VecDeque::new()),
        };
        let producer: BaseProducer<Ctx> =
            client_config(cfg, false).create_with_context(ctx).map_err(|e| ServiceError::Config(e.to_string()))?;
        Ok(Service { producer, next_opaque: LIVE, topic: cfg.topic.clone(), brokers: cfg.brokers.clone() })
    }

    /// Checks brokers, credentials and topic. Security errors and a missing topic are fatal;
    /// unreachable brokers are not (the spool holds records until they come back).
    pub fn check_startup(&self, cfg: &KafkaConfig, timeout: Duration) -> Result<Startup, ServiceError> {
        let mut result = self.producer.client().fetch_metadata(Some(&self.topic), timeout);
        // Give librdkafka's error events a moment to arrive: they explain a failed fetch.
        self.producer.poll(Duration::from_millis(100));
        let mut globals = self.take_global_errors();
        // With TLS or SASL configured, a fetch can fail with "all brokers down" before any
        // handshake error is known (seen against a TLS listener: a wrong CA then passed for an
        // unreachable broker), and librdkafka connects only on demand: ask again, a few times,
        // so the handshake runs and says why.
        if cfg.tls.is_some() || cfg.sasl.is_some() {
            for _ in 0..3 {
                if result.is_ok() || globals.iter().any(GlobalError::is_security) {
                    break;
                }
                result = self.producer.client().fetch_metadata(Some(&self.topic), Duration::from_secs(1));
                self.producer.poll(Duration::from_millis(100));
                globals.extend(self.take_global_errors());
            }
        }
        if let Some(sec) = globals.iter().find(|g| g.is_security()) {
            return Err(ServiceError::Security {
                brokers: self.brokers.clone(),
                reason: sec.reason.clone(),
                hint: security_hint(cfg),
            });
        }
        let md = match result {
            Ok(md) => md,
            Err(e) => {
                let reason = globals.last().map_or_else(|| e.to_string(), |g| g.reason.clone());
                if e.rdkafka_error_code().map(classify) == Some(ErrorClass::Fatal) {
                    return Err(ServiceError::Security {
                        brokers: self.brokers.clone(),
                        reason,
                        hint: security_hint(cfg),
                    });
                }
                return Ok(Startup::Unreachable { reason });
            }
        };
        let Some(topic) = md.topics().iter().find(|t| t.name() == self.topic) else {
            return Err(ServiceError::UnknownTopic { topic: self.topic.clone(), brokers: self.brokers.clone() });
        };
        match topic.error().map(RDKafkaErrorCode::from) {
            None if !topic.partitions().is_empty() => Ok(Startup::Ready { partitions: topic.partitions().len() }),
            None | Some(RDKafkaErrorCode::UnknownTopicOrPartition) | Some(RDKafkaErrorCode::UnknownTopic) => {
                Err(ServiceError::UnknownTopic { topic: self.topic.clone(), brokers: self.brokers.clone() })
            }
            Some(code) if classify(code) == ErrorClass::Retriable => {
                Ok(Startup::Unreachable { reason: code.to_string() })
            }
            Some(code) => Err(ServiceError::Topic { topic: self.topic.clone(), reason: code.to_string() }),
        }
    }

    /// Hands a record to librdkafka (never blocks; librdkafka copies key and value).
    pub fn send(&mut self, key: &[u8], value: &[u8], origin: Origin) -> Result<(), SendError> {
        let opaque = match origin {
            Origin::Live => LIVE,
            Origin::Spool { .. } => {
                self.next_opaque = self.next_opaque.checked_add(1).unwrap_or(LIVE + 1);
                if let Ok(mut m) = self.producer.context().spooled.lock() {
                    m.insert(self.next_opaque, origin);
                }
                self.next_opaque
            }
        };
        let mut rec: BaseRecord<'_, [u8], [u8], usize> = BaseRecord::with_opaque_to(&self.topic, opaque).payload(value);
        if !key.is_empty() {
            rec = rec.key(key);
        }
        self.producer.send(rec).map_err(|(e, _)| {
            if opaque != LIVE {
                if let Ok(mut m) = self.producer.context().spooled.lock() {
                    m.remove(&opaque);
                }
            }
            match e.rdkafka_error_code() {
                Some(RDKafkaErrorCode::QueueFull) => SendError::QueueFull,
                Some(c) if classify(c) == ErrorClass::TooLarge => SendError::TooLarge(e.to_string()),
                _ => SendError::Fatal(e.to_string()),
            }
        })
    }

    /// Serves the delivery reports and error events that are ready, without waiting.
    ///
    /// Not `BaseProducer::poll(timeout)`: it keeps polling until the whole timeout has passed,
    /// and once less than a millisecond is left librdkafka's millisecond timeout is 0, so the
    /// last millisecond of every call is a busy loop on the clock (measured: ~6% of the
    /// replay's CPU). A zero-timeout poll serves one event (one produce response's worth of
    /// reports); it is repeated while events keep coming.
    pub fn serve(&self) {
        const MAX_EVENTS: usize = 256;
        for _ in 0..MAX_EVENTS {
            let before = self.producer.context().callbacks.load(Relaxed);
            self.producer.poll(Duration::ZERO);
            if self.producer.context().callbacks.load(Relaxed) == before {
                break;
            }
        }
    }

    /// Lets librdkafka work for `timeout` (a full queue, shutdown), then serves what is ready.
    /// A sleep rather than a blocking poll: see [`Service::serve`].
    pub fn wait(&self, timeout: Duration) {
        std::thread::sleep(timeout);
        self.serve();
    }

    /// Moves the reports gathered by `serve`/`wait` into `into` (in order).
    pub fn take_reports(&self, into: &mut Vec<Report>) {
        if let Ok(mut r) = self.producer.context().reports.lock() {
            into.append(&mut r);
        }
    }

    /// Records handed to librdkafka and not yet reported.
    pub fn in_flight(&self) -> usize {
        self.producer.in_flight_count().max(0) as usize
    }

    /// Gives every queued and in-flight record back (as `PurgeQueue`/`PurgeInflight` failures).
    pub fn purge(&self) {
        self.producer.purge(PurgeConfig::default().queue().inflight());
    }

    /// Errors reported outside records since the last call.
    pub fn take_global_errors(&self) -> Vec<GlobalError> {
        self.producer.context().errors.lock().map(|mut q| q.drain(..).collect()).unwrap_or_default()
    }
}

/// What `create_topic` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The topic was created.
    Created,
    /// It existed already.
    Existed,
}

/// Creates the topic through the admin API (idempotent).
pub fn create_topic(
    cfg: &KafkaConfig,
    partitions: i32,
    replication: i32,
    timeout: Duration,
) -> Result<Created, ServiceError> {
    let err = |reason: String| ServiceError::CreateTopic { topic: cfg.topic.clone(), reason };
    let admin: AdminClient<DefaultClientContext> =
        client_config(cfg, true).create().map_err(|e| ServiceError::Config(e.to_string()))?;
    let topic = NewTopic::new(&cfg.topic, partitions, TopicReplication::Fixed(replication));
    let opts = AdminOptions::new().operation_timeout(Some(timeout)).request_timeout(Some(timeout));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| err(e.to_string()))?;
    let results = rt
        .block_on(async {
            tokio::time::timeout(timeout + Duration::from_secs(1), admin.create_topics([&topic], &opts)).await
        })
        .map_err(|_| err(format!("no answer from {} within {timeout:?}", cfg.brokers)))?
        .map_err(|e| err(e.to_string()))?;
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(Created::Created),
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Ok(Created::Existed),
        Some(Err((_, code))) => Err(err(code.to_string())),
        None => Err(err("the broker returned no result".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        use RDKafkaErrorCode as E;
        for c in [
            E::MessageTimedOut,
            E::AllBrokersDown,
            E::BrokerTransportFailure,
            E::NotLeaderForPartition,
            E::PurgeInflight,
            E::QueueFull,
        ] {
            assert_eq!(classify(c), ErrorClass::Retriable, "{c:?}");
        }
        for c in [E::MessageSizeTooLarge, E::InvalidMessageSize] {
            assert_eq!(classify(c), ErrorClass::TooLarge, "{c:?}");
        }
        for c in [
            E::TopicAuthorizationFailed,
            E::SaslAuthenticationFailed,
            E::Authentication,
            E::SSL,
            E::UnknownTopicOrPartition,
            E::InvalidMessage,
        ] {
            assert_eq!(classify(c), ErrorClass::Fatal, "{c:?}");
        }
    }
}
