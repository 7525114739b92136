//! Counters of the guardrails stage: what was offered, scanned, dropped, found and reported.
//! Each event here both counts and, where useful, logs (see the callers).

use crate::metrics::MetricSet;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Why an MCP exchange was not scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DropCause {
    /// The scanner queue was full (`--guard-queue`).
    QueueFull,
    /// The stage had stopped.
    Stopped,
}

impl DropCause {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DropCause::QueueFull => "queue_full",
            DropCause::Stopped => "stopped",
        }
    }
}

/// Which reporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reporter {
    /// The guardrail-events Kafka topic.
    Kafka,
    /// Akto's threat backend (`record_malicious_event`).
    ThreatBackend,
}

impl Reporter {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reporter::Kafka => "kafka",
            Reporter::ThreatBackend => "threat_backend",
        }
    }
}

/// Live counters (shared by the shards' senders, the scanners and the reporters).
#[derive(Debug, Default)]
pub struct GuardStats {
    pub(crate) offered: AtomicU64,
    pub(crate) exchanges_scanned: AtomicU64,
    pub(crate) messages_scanned: AtomicU64,
    pub(crate) scan_bytes: AtomicU64,
    pub(crate) queue_depth: AtomicU64,
    pub(crate) rug_pulls: AtomicU64,
    pub(crate) tool_pins: AtomicU64,
    pub(crate) pins_over_cap: AtomicU64,
    dropped: Mutex<BTreeMap<&'static str, u64>>,
    threats: Mutex<BTreeMap<String, u64>>,
    findings: Mutex<BTreeMap<&'static str, u64>>,
    limits: Mutex<BTreeMap<String, u64>>,
    delivered: Mutex<BTreeMap<&'static str, u64>>,
    failed: Mutex<BTreeMap<(&'static str, String), u64>>,
}

fn bump<K: Ord>(m: &Mutex<BTreeMap<K, u64>>, k: K, n: u64) {
    if let Ok(mut m) = m.lock() {
        *m.entry(k).or_insert(0) += n;
    }
}

impl GuardStats {
    pub(crate) fn dropped(&self, cause: DropCause) {
        bump(&self.dropped, cause.as_str(), 1);
    }

    pub(crate) fn threat(&self, category: &str) {
        bump(&self.threats, category.to_string(), 1);
    }

    pub(crate) fn finding(&self, scanner: &'static str) {
        bump(&self.findings, scanner, 1);
    }

    pub(crate) fn limit(&self, limit: String) {
        bump(&self.limits, limit, 1);
    }

    pub(crate) fn delivered(&self, r: Reporter, n: u64) {
        bump(&self.delivered, r.as_str(), n);
    }

    pub(crate) fn failed(&self, r: Reporter, reason: &str) {
        bump(&self.failed, (r.as_str(), reason.to_string()), 1);
    }

    /// A copy for the summary and `--stats-json`.
    pub fn snapshot(&self) -> GuardSnapshot {
        let copy = |m: &Mutex<BTreeMap<&'static str, u64>>| -> BTreeMap<String, u64> {
            m.lock().map(|m| m.iter().map(|(k, v)| ((*k).to_string(), *v)).collect()).unwrap_or_default()
        };
        GuardSnapshot {
            offered: self.offered.load(Relaxed),
            exchanges_scanned: self.exchanges_scanned.load(Relaxed),
            messages_scanned: self.messages_scanned.load(Relaxed),
            scan_bytes: self.scan_bytes.load(Relaxed),
            queue_depth: self.queue_depth.load(Relaxed),
            rug_pulls: self.rug_pulls.load(Relaxed),
            tool_pins: self.tool_pins.load(Relaxed),
            pins_over_cap: self.pins_over_cap.load(Relaxed),
            dropped: copy(&self.dropped),
            threats: self.threats.lock().map(|m| m.clone()).unwrap_or_default(),
            findings: copy(&self.findings),
            limits: self.limits.lock().map(|m| m.clone()).unwrap_or_default(),
            delivered: copy(&self.delivered),
            failed: self
                .failed
                .lock()
                .map(|m| {
                    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
                    for ((r, reason), n) in m.iter() {
                        out.entry((*r).to_string()).or_default().insert(reason.clone(), *n);
                    }
                    out
                })
                .unwrap_or_default(),
        }
    }
}

/// The stage's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GuardSnapshot {
    /// MCP-looking exchanges the shards offered.
    pub offered: u64,
    /// Exchanges scanned.
    pub exchanges_scanned: u64,
    /// Bodies scanned (request and response count separately).
    pub messages_scanned: u64,
    /// Body bytes scanned.
    pub scan_bytes: u64,
    /// Exchanges waiting for a scanner.
    pub queue_depth: u64,
    /// Rug pulls (a pinned tool's definition changed), each change once.
    pub rug_pulls: u64,
    /// Servers with a pinned `tools/list`.
    pub tool_pins: u64,
    /// `tools/list` listings not pinned because of `--guard-max-servers`.
    pub pins_over_cap: u64,
    /// Exchanges not scanned, by cause.
    pub dropped: BTreeMap<String, u64>,
    /// Threat events, by category (the scanner of the deciding finding).
    pub threats: BTreeMap<String, u64>,
    /// Findings, by scanner.
    pub findings: BTreeMap<String, u64>,
    /// Scans that hit a guardrails cap (failed open), by cap.
    pub limits: BTreeMap<String, u64>,
    /// Reports delivered, by reporter.
    pub delivered: BTreeMap<String, u64>,
    /// Reports given up, by reporter and reason.
    pub failed: BTreeMap<String, BTreeMap<String, u64>>,
}

impl GuardSnapshot {
    /// Adds the stage's metrics (`akto_tap_guard_*`).
    pub fn add_metrics(&self, m: &mut MetricSet) {
        m.counter("guard_offered_total", "MCP exchanges handed to the guardrails stage.", &[], self.offered);
        m.counter(
            "guard_exchanges_scanned_total",
            "MCP exchanges scanned by the guardrails.",
            &[],
            self.exchanges_scanned,
        );
        m.counter(
            "guard_messages_scanned_total",
            "MCP bodies scanned (requests and responses).",
            &[],
            self.messages_scanned,
        );
        m.counter("guard_scanned_bytes_total", "MCP body bytes scanned.", &[], self.scan_bytes);
        m.gauge("guard_queue_depth", "MCP exchanges waiting for a guardrails scanner.", &[], self.queue_depth as f64);
        m.counter(
            "guard_rug_pulls_total",
            "Tool definitions that changed after their server's first tools/list.",
            &[],
            self.rug_pulls,
        );
        m.gauge("guard_tool_pins", "MCP servers with a pinned tools/list.", &[], self.tool_pins as f64);
        m.counter(
            "guard_pins_over_cap_total",
            "tools/list listings not pinned because of --guard-max-servers.",
            &[],
            self.pins_over_cap,
        );
        let help = "MCP exchanges not scanned, by cause.";
        for cause in [DropCause::QueueFull, DropCause::Stopped] {
            let n = self.dropped.get(cause.as_str()).copied().unwrap_or(0);
            m.counter("guard_dropped_total", help, &[("cause", cause.as_str())], n);
        }
        for (category, n) in &self.threats {
            m.counter("guard_threats_total", "Threats reported, by category.", &[("category", category)], *n);
        }
        for (scanner, n) in &self.findings {
            m.counter("guard_findings_total", "Guardrails findings, by scanner.", &[("scanner", scanner)], *n);
        }
        for (limit, n) in &self.limits {
            m.counter(
                "guard_scan_limits_total",
                "Scans that hit a guardrails cap and failed open, by cap.",
                &[("limit", limit)],
                *n,
            );
        }
        for r in [Reporter::Kafka, Reporter::ThreatBackend] {
            let n = self.delivered.get(r.as_str()).copied().unwrap_or(0);
            m.counter(
                "guard_reports_delivered_total",
                "Threat reports delivered, by reporter.",
                &[("reporter", r.as_str())],
                n,
            );
        }
        let help = "Threat reports given up, by reporter and reason.";
        if self.failed.is_empty() {
            m.counter("guard_reports_failed_total", help, &[("reporter", "none"), ("reason", "none")], 0);
        }
        for (reporter, reasons) in &self.failed {
            for (reason, n) in reasons {
                m.counter("guard_reports_failed_total", help, &[("reporter", reporter), ("reason", reason)], *n);
            }
        }
    }

    /// One summary line.
    pub fn summary_line(&self) -> String {
        let dropped: u64 = self.dropped.values().sum();
        let threats: u64 = self.threats.values().sum();
        let failed: u64 = self.failed.values().flat_map(|m| m.values()).sum();
        let mut s = format!(
            "guardrails: offered {} · scanned {} exchanges ({} bodies) · dropped {} · threats {} · rug pulls {} · reports delivered {} · failed {}",
            self.offered,
            self.exchanges_scanned,
            self.messages_scanned,
            dropped,
            threats,
            self.rug_pulls,
            self.delivered.values().sum::<u64>(),
            failed
        );
        for (cat, n) in &self.threats {
            s.push_str(&format!("\n  threats {cat}: {n}"));
        }
        for (r, reasons) in &self.failed {
            for (reason, n) in reasons {
                s.push_str(&format!("\n  {r} failed {n}: {reason}"));
            }
        }
        s
    }
}
