//! The stage: a bounded queue of MCP exchanges, scanner threads running the `guardrails` engine
//! on request and response, per-server tool pinning, and the hand-off to the reporters.

use super::config::GuardConfig;
use super::event::{self, Scanned, ThreatEvent};
use super::http::{BackendReporter, BackendSender};
use super::stats::{DropCause, GuardSnapshot, GuardStats, Reporter};
use crate::kafka::{self, KafkaSink, Outgoing, RecordSender};
use crate::output::RecordOptions;
use guardrails::{Direction, Engine, McpContext, ScannerId, ToolSnapshot, Verdict};
use reassembly::HttpExchange;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Why the stage did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The policy does not compile.
    #[error("guardrails engine: {0}")]
    Engine(#[from] guardrails::PolicyError),
    /// The guardrail-events Kafka sink did not start.
    #[error("guardrail events Kafka sink: {0}")]
    Kafka(#[from] kafka::StartError),
    /// A thread could not be started.
    #[error("cannot start a guardrails thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// The shards' handle: offers MCP exchanges without ever waiting.
#[derive(Debug, Clone)]
pub struct GuardSender {
    txs: Arc<[SyncSender<HttpExchange>]>,
    stats: Arc<GuardStats>,
}

impl GuardSender {
    /// Hands an exchange to the scanners, or drops and counts it when the queue is full. One
    /// server's exchanges always go to the same scanner thread, so its `tools/list` listings are
    /// pinned and compared in the order they were captured.
    pub fn offer(&self, ex: HttpExchange) {
        self.stats.offered.fetch_add(1, Relaxed);
        let i = if self.txs.len() == 1 {
            0
        } else {
            let mut h = std::hash::DefaultHasher::new();
            ex.conn.server.hash(&mut h);
            (h.finish() % self.txs.len() as u64) as usize
        };
        match self.txs[i].try_send(ex) {
            Ok(()) => {
                self.stats.queue_depth.fetch_add(1, Relaxed);
            }
            Err(TrySendError::Full(_)) => self.stats.dropped(DropCause::QueueFull),
            Err(TrySendError::Disconnected(_)) => self.stats.dropped(DropCause::Stopped),
        }
    }
}

/// What the scanners report to.
#[derive(Debug, Clone)]
struct Reporters {
    kafka: Option<RecordSender>,
    backend: Option<BackendSender>,
    log: bool,
}

/// The first `tools/list` of each server, and the changes already reported.
#[derive(Debug, Default)]
struct Pins {
    servers: HashMap<String, Pinned>,
}

#[derive(Debug)]
struct Pinned {
    first: Arc<ToolSnapshot>,
    /// (tool, change kind, new description digest, new schema digest) already reported.
    reported: HashSet<(String, String, String, String)>,
}

/// The running stage.
#[derive(Debug)]
pub struct GuardStage {
    txs: Option<Arc<[SyncSender<HttpExchange>]>>,
    scanners: Vec<JoinHandle<()>>,
    kafka: Option<KafkaSink>,
    backend: Option<BackendReporter>,
    reporters: Option<Reporters>,
    stats: Arc<GuardStats>,
}

/// A read-only view for metrics.
#[derive(Debug, Clone)]
pub struct GuardObserver {
    stats: Arc<GuardStats>,
    kafka: Option<Arc<kafka::sink::SinkStats>>,
}

impl GuardObserver {
    /// The counters now, the Kafka reporter's deliveries included.
    pub fn snapshot(&self) -> GuardSnapshot {
        let mut s = self.stats.snapshot();
        if let Some(k) = &self.kafka {
            merge_kafka(&mut s, &k.snapshot());
        }
        s
    }
}

/// Adds the guardrail-events sink's outcome to the stage's counters.
fn merge_kafka(s: &mut GuardSnapshot, k: &kafka::Snapshot) {
    *s.delivered.entry(Reporter::Kafka.as_str().to_string()).or_insert(0) += k.delivered;
    let failed = s.failed.entry(Reporter::Kafka.as_str().to_string()).or_default();
    for (reason, n) in &k.failures {
        *failed.entry(reason.clone()).or_insert(0) += n;
    }
    if k.spool_dropped > 0 {
        *failed.entry("spool_full".into()).or_insert(0) += k.spool_dropped;
    }
    if failed.is_empty() {
        s.failed.remove(Reporter::Kafka.as_str());
    }
}

impl GuardStage {
    /// Compiles the engine, starts the reporters and the scanner threads.
    pub fn start(cfg: GuardConfig, record: &RecordOptions) -> Result<GuardStage, StartError> {
        let engine = Arc::new(Engine::new(cfg.policy.clone())?);
        let stats = Arc::new(GuardStats::default());
        let kafka = cfg.kafka.clone().map(kafka::start).transpose()?;
        let backend = cfg.backend.clone().map(|b| BackendReporter::start(b, Arc::clone(&stats))).transpose()?;
        let reporters = Reporters {
            kafka: kafka.as_ref().and_then(KafkaSink::sender),
            backend: backend.as_ref().map(|(_, s)| s.clone()),
            log: cfg.log,
        };
        let backend = backend.map(|(r, _)| r);
        // `--guard-queue` entries in all, split between the scanner threads.
        let per_thread = cfg.queue.div_ceil(cfg.threads).max(1);
        let mut txs = Vec::with_capacity(cfg.threads);
        let pins = Arc::new(Mutex::new(Pins::default()));
        let record = RecordOptions { max_payload_bytes: cfg.payload_bytes, ..record.clone() };
        let mut scanners = Vec::with_capacity(cfg.threads);
        for i in 0..cfg.threads {
            let scanner = Scanner {
                engine: Arc::clone(&engine),
                pins: Arc::clone(&pins),
                max_servers: cfg.max_servers,
                record: record.clone(),
                stats: Arc::clone(&stats),
                reporters: reporters.clone(),
            };
            let (tx, rx) = mpsc::sync_channel::<HttpExchange>(per_thread);
            txs.push(tx);
            scanners
                .push(std::thread::Builder::new().name(format!("akto-tap-guard-{i}")).spawn(move || scanner.run(&rx))?);
        }
        Ok(GuardStage { txs: Some(txs.into()), scanners, kafka, backend, reporters: Some(reporters), stats })
    }

    /// A handle for a shard.
    pub fn sender(&self) -> Option<GuardSender> {
        self.txs.as_ref().map(|txs| GuardSender { txs: Arc::clone(txs), stats: Arc::clone(&self.stats) })
    }

    /// A view of the counters for metrics.
    pub fn observer(&self) -> GuardObserver {
        GuardObserver { stats: Arc::clone(&self.stats), kafka: self.kafka.as_ref().map(KafkaSink::stats) }
    }

    /// Scans what is queued, then stops the scanners and drains the reporters. Call after the
    /// shards stopped (their senders are gone).
    pub fn finish(mut self) -> GuardSnapshot {
        self.txs = None;
        for s in self.scanners.drain(..) {
            let _ = s.join();
        }
        self.reporters = None;
        if let Some(b) = self.backend.take() {
            b.join();
        }
        let mut snap = self.stats.snapshot();
        if let Some(k) = self.kafka.take() {
            match k.close() {
                Ok(ks) => merge_kafka(&mut snap, &ks),
                Err(e) => {
                    tracing::error!(error = %e, "guardrail events Kafka sink failed");
                    *snap
                        .failed
                        .entry(Reporter::Kafka.as_str().into())
                        .or_default()
                        .entry("sink_error".into())
                        .or_insert(0) += 1;
                }
            }
        }
        snap
    }
}

/// One scanner thread.
pub(super) struct Scanner {
    engine: Arc<Engine>,
    pins: Arc<Mutex<Pins>>,
    max_servers: usize,
    record: RecordOptions,
    stats: Arc<GuardStats>,
    reporters: Reporters,
}

impl Scanner {
    /// A scanner with the default policy and no reporters.
    #[cfg(test)]
    pub(super) fn for_tests(record: RecordOptions) -> (Scanner, Arc<GuardStats>) {
        let stats = Arc::new(GuardStats::default());
        let engine = Arc::new(Engine::new(guardrails::Policy::default()).expect("default policy"));
        let reporters = Reporters { kafka: None, backend: None, log: false };
        let s =
            Scanner { engine, pins: Arc::default(), max_servers: 100, record, stats: Arc::clone(&stats), reporters };
        (s, stats)
    }

    fn run(self, rx: &Receiver<HttpExchange>) {
        while let Ok(ex) = rx.recv() {
            self.stats.queue_depth.fetch_sub(1, Relaxed);
            for t in self.scan(&ex) {
                self.report(t);
            }
        }
    }

    /// Scans the request and the response of one exchange; returns the threats to report.
    pub(super) fn scan(&self, ex: &HttpExchange) -> Vec<ThreatEvent> {
        let mut out = Vec::new();
        self.stats.exchanges_scanned.fetch_add(1, Relaxed);
        let server_key = format!("{}{}", ex.conn.server, ex.request.target.split('?').next().unwrap_or_default());
        let detected_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let req_body = String::from_utf8_lossy(&ex.request.body.data);
        let mut method: Option<String> = None;
        if !req_body.trim().is_empty() {
            let v = self.engine.scan_mcp(&req_body, Direction::Request);
            self.account(&v, req_body.len());
            method = v.methods.first().cloned();
            if !v.findings.is_empty() {
                let s = Scanned {
                    ex,
                    direction: Direction::Request,
                    body: &req_body,
                    verdict: &v,
                    method: method.as_deref(),
                    server_key: &server_key,
                    detected_at,
                };
                out.push(event::build(&s, &self.record));
            }
        }
        let Some(resp) = &ex.response else { return out };
        let resp_body = String::from_utf8_lossy(&resp.body.data);
        if resp_body.trim().is_empty() {
            return out;
        }
        let listing = method.as_deref() == Some("tools/list");
        let pinned = if listing {
            self.pins.lock().ok().and_then(|p| p.servers.get(&server_key).map(|s| Arc::clone(&s.first)))
        } else {
            None
        };
        let cx = McpContext { request_method: method.as_deref(), pinned_tools: pinned.as_deref() };
        let mut v = self.engine.scan_mcp_with(&resp_body, Direction::Response, &cx);
        self.account(&v, resp_body.len());
        if listing {
            self.pin_and_dedupe(&server_key, &mut v);
        }
        if !v.findings.is_empty() {
            let s = Scanned {
                ex,
                direction: Direction::Response,
                body: &resp_body,
                verdict: &v,
                method: method.as_deref(),
                server_key: &server_key,
                detected_at,
            };
            out.push(event::build(&s, &self.record));
        }
        out
    }

    fn account(&self, v: &Verdict, bytes: usize) {
        self.stats.messages_scanned.fetch_add(1, Relaxed);
        self.stats.scan_bytes.fetch_add(bytes as u64, Relaxed);
        for l in &v.limits {
            let name = serde_json::to_value(l).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            self.stats.limit(name);
        }
    }

    /// Pins the server's first listing; drops tool-change findings already reported for it, so
    /// each change is reported once however often the changed listing is fetched.
    fn pin_and_dedupe(&self, server_key: &str, v: &mut Verdict) {
        let Ok(mut pins) = self.pins.lock() else { return };
        let Some(snap) = v.tools.clone() else { return };
        if !pins.servers.contains_key(server_key) {
            if pins.servers.len() >= self.max_servers {
                self.stats.pins_over_cap.fetch_add(1, Relaxed);
                return;
            }
            pins.servers.insert(server_key.to_string(), Pinned { first: Arc::new(snap), reported: HashSet::new() });
            self.stats.tool_pins.store(pins.servers.len() as u64, Relaxed);
            return;
        }
        let Some(pinned) = pins.servers.get_mut(server_key) else { return };
        v.findings.retain(|f| {
            if f.scanner != ScannerId::ToolPoisoning
                || !matches!(f.kind.as_str(), "rug_pull" | "tool_added" | "tool_removed")
            {
                return true;
            }
            let tool = f.location.as_ref().and_then(|l| l.tool.clone()).unwrap_or_default();
            let (d, s) = snap
                .tools
                .get(&tool)
                .map_or((String::new(), String::new()), |p| (p.description.clone(), p.schema.clone()));
            let fresh = pinned.reported.insert((tool, f.kind.clone(), d, s));
            if fresh && f.kind == "rug_pull" {
                self.stats.rug_pulls.fetch_add(1, Relaxed);
            }
            fresh
        });
        if v.findings.is_empty() {
            v.action = guardrails::VerdictAction::Allow;
        }
    }

    fn report(&self, t: ThreatEvent) {
        self.stats.threat(t.category);
        if let Some(findings) = t.event["verdict"]["findings"].as_array() {
            for f in findings {
                if let Some(id) = f["scanner"].as_str().and_then(scanner_id) {
                    self.stats.finding(id);
                }
            }
        }
        if self.reporters.log {
            let e = &t.event;
            tracing::warn!(
                category = t.category,
                sub_category = e["subCategory"].as_str().unwrap_or_default(),
                severity = e["severity"].as_str().unwrap_or_default(),
                direction = e["direction"].as_str().unwrap_or_default(),
                client = e["client"].as_str().unwrap_or_default(),
                server = e["server"].as_str().unwrap_or_default(),
                path = e["endpoint"]["path"].as_str().unwrap_or_default(),
                mcp_method = e["endpoint"]["mcpMethod"].as_str().unwrap_or_default(),
                tool = e["endpoint"]["tool"].as_str().unwrap_or_default(),
                verdict = %e["verdict"],
                "guardrails threat"
            );
        }
        if let Some(b) = &self.reporters.backend {
            match serde_json::to_vec(&t.malicious) {
                Ok(body) => b.offer(body),
                Err(_) => self.stats.failed(Reporter::ThreatBackend, "encode"),
            }
        }
        if let Some(k) = &self.reporters.kafka {
            match serde_json::to_vec(&t.event) {
                // The sink spools to disk when the broker is away, so this wait stays short.
                Ok(value) => {
                    if k.send_blocking(Outgoing { key: t.key, value }).is_err() {
                        self.stats.failed(Reporter::Kafka, "sink_closed");
                    }
                }
                Err(_) => self.stats.failed(Reporter::Kafka, "encode"),
            }
        }
    }
}

fn scanner_id(s: &str) -> Option<&'static str> {
    [
        ScannerId::PromptInjection,
        ScannerId::HiddenText,
        ScannerId::ToolPoisoning,
        ScannerId::Pii,
        ScannerId::Secrets,
        ScannerId::DenyList,
    ]
    .into_iter()
    .map(ScannerId::as_str)
    .find(|id| *id == s)
}
