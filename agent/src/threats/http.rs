//! The threat-backend reporter: a thread that POSTs `record_malicious_event` bodies.
//!
//! The only file that talks to the HTTP client. `ureq` (blocking, no async runtime, a few small
//! crates) fits a single reporter thread better than `reqwest` (which would pull hyper and run a
//! tokio runtime behind its blocking API). It is built with `native-tls-no-default`: HTTPS goes
//! through the system OpenSSL the agent already links for Kafka, with the system's roots, rather
//! than adding a second TLS stack (rustls + ring) to the binary.
//!
//! Backpressure: scanners hand reports over with `try_send` on a bounded queue
//! (`--threat-report-queue`); a full queue drops the report and counts it
//! (`guard_reports_failed_total{reporter="threat_backend",reason="queue_full"}`), so a slow or
//! dead backend never slows scanning. Each report gets `--threat-report-attempts` tries with
//! exponential backoff on connection errors, timeouts and 5xx; 4xx is final. At shutdown the queue
//! is drained, with retries cut short after a grace period (counted `shutdown`).

use super::config::BackendConfig;
use super::stats::{GuardStats, Reporter};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// First retry delay; doubled per attempt up to [`BACKOFF_MAX`].
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long the queue may keep retrying once the stage is stopping.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why one POST did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The server answered with an error status.
    #[error("HTTP {0}")]
    Status(u16),
    /// No answer in time.
    #[error("timed out")]
    Timeout,
    /// The connection could not be made (refused, unreachable, DNS).
    #[error("connect: {0}")]
    Connect(String),
    /// Anything else (I/O mid-request, protocol).
    #[error("{0}")]
    Other(String),
}

impl PostError {
    /// Retriable: the backend may answer next time.
    fn retriable(&self) -> bool {
        match self {
            PostError::Status(s) => *s >= 500 || *s == 429,
            PostError::Timeout | PostError::Connect(_) | PostError::Other(_) => true,
        }
    }

    /// The `reason` label.
    fn reason(&self) -> String {
        match self {
            PostError::Status(s) if *s >= 500 => "http_5xx".into(),
            PostError::Status(s) => format!("http_{s}"),
            PostError::Timeout => "timeout".into(),
            PostError::Connect(_) => "connect".into(),
            PostError::Other(_) => "io".into(),
        }
    }
}

fn classify(e: ureq::Error) -> PostError {
    match e {
        ureq::Error::StatusCode(s) => PostError::Status(s),
        ureq::Error::Timeout(_) => PostError::Timeout,
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => PostError::Connect(e.to_string()),
        ureq::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::NetworkUnreachable
                    | std::io::ErrorKind::HostUnreachable
            ) =>
        {
            PostError::Connect(io.to_string())
        }
        ureq::Error::Io(io) if matches!(io.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {
            PostError::Timeout
        }
        other => PostError::Other(other.to_string()),
    }
}

/// The scanners' side of the reporter.
#[derive(Debug, Clone)]
pub struct BackendSender {
    tx: SyncSender<Vec<u8>>,
    stats: Arc<GuardStats>,
}

impl BackendSender {
    /// Queues one report body; never waits.
    pub fn offer(&self, body: Vec<u8>) {
        match self.tx.try_send(body) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.stats.failed(Reporter::ThreatBackend, "queue_full"),
            Err(TrySendError::Disconnected(_)) => self.stats.failed(Reporter::ThreatBackend, "stopped"),
        }
    }
}

/// The running reporter thread.
#[derive(Debug)]
pub struct BackendReporter {
    worker: JoinHandle<()>,
    stopping: Arc<AtomicBool>,
}

impl BackendReporter {
    /// Starts the thread; the reporter stops when every sender is dropped and the queue is empty.
    pub fn start(cfg: BackendConfig, stats: Arc<GuardStats>) -> std::io::Result<(BackendReporter, BackendSender)> {
        let (tx, rx) = mpsc::sync_channel(cfg.queue);
        let agent = agent(&cfg);
        let st = Arc::clone(&stats);
        let stopping = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stopping);
        let worker = std::thread::Builder::new()
            .name("akto-tap-threat-report".into())
            .spawn(move || run(&cfg, &agent, &rx, &st, &flag))?;
        Ok((BackendReporter { worker, stopping }, BackendSender { tx, stats }))
    }

    /// Waits for the queue to drain (call after dropping every sender).
    pub fn join(self) {
        self.stopping.store(true, Relaxed);
        let _ = self.worker.join();
    }
}

fn agent(cfg: &BackendConfig) -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::NativeTls)
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build();
    ureq::Agent::config_builder()
        .timeout_global(Some(cfg.timeout))
        .http_status_as_error(true)
        .tls_config(tls)
        .user_agent(concat!("akto-tap/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

fn post(cfg: &BackendConfig, agent: &ureq::Agent, body: &[u8]) -> Result<(), PostError> {
    let mut req = agent.post(&cfg.url).header("content-type", "application/json");
    if let Some(t) = &cfg.token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    req.send(body).map(|_| ()).map_err(classify)
}

fn run(cfg: &BackendConfig, agent: &ureq::Agent, rx: &Receiver<Vec<u8>>, stats: &GuardStats, stopping: &AtomicBool) {
    let mut last_log: Option<Instant> = None;
    let mut stopping_since: Option<Instant> = None;
    loop {
        // Once the senders are gone, drain what is queued.
        let body = match rx.recv() {
            Ok(b) => b,
            Err(_) => return,
        };
        let mut delay = BACKOFF_START;
        let mut attempt = 1;
        loop {
            match post(cfg, agent, &body) {
                Ok(()) => {
                    stats.delivered(Reporter::ThreatBackend, 1);
                    break;
                }
                Err(e) => {
                    if last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                        last_log = Some(Instant::now());
                        tracing::warn!(url = %cfg.url, error = %e, attempt, "threat report failed");
                    }
                    if stopping_since.is_none() && stopping.load(Relaxed) {
                        stopping_since = Some(Instant::now());
                    }
                    let over = stopping_since.is_some_and(|t| t.elapsed() >= SHUTDOWN_GRACE);
                    if !e.retriable() || attempt >= cfg.attempts {
                        stats.failed(Reporter::ThreatBackend, &e.reason());
                        break;
                    }
                    if over {
                        stats.failed(Reporter::ThreatBackend, "shutdown");
                        break;
                    }
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(BACKOFF_MAX);
                    attempt += 1;
                }
            }
        }
    }
}
