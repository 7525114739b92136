//! The sink stage: one worker thread that owns the producer ([`Service`]) and the [`Spool`],
//! and accounts for every record.
//!
//! ```text
//!  pipeline threads ──(bounded channel)──▶ worker ──▶ librdkafka (bounded queue) ──▶ broker
//!                                            │  ▲
//!                    broker away / queue full ▼  │ replay in order when it answers again
//!                                          spool (bounded, on disk)
//! ```
//!
//! States: **Up** — records go straight to librdkafka unless older records still wait in the
//! spool (order). **Down** — entered on a retriable delivery failure or an all-brokers-down
//! event; every new record is appended to the spool and one spooled record at a time is kept in
//! flight as a probe (librdkafka reconnects by itself); its acknowledgement brings the sink back
//! Up and the spool drains with a wide window.
//!
//! Accounting: every accepted record ends as exactly one of *delivered* (acknowledged; those
//! sent from the spool are also counted *replayed*), *failed* (a non-retriable error, counted by
//! reason), *spool_dropped* (the spool's cap), or still waiting in the spool at exit (reported).
//! Records spooled after a retriable failure are counted *retried*. Delivery is at-least-once:
//! a record whose acknowledgement was lost, or that was in flight when a spool drain had to be
//! rewound, is sent again.
//!
//! Order: records reach librdkafka in arrival order and the spool replays in order, so one
//! client's records (one key, one partition) stay ordered in normal operation and across an
//! outage, except for the records that were already inside librdkafka when the broker went away:
//! they come back after `--kafka-delivery-timeout-ms` and are spooled behind records that arrived
//! meanwhile.
//!
//! A spool I/O error (disk full, permissions) stops the worker: senders then get [`Closed`] and
//! the command fails loudly rather than dropping silently.

use super::config::KafkaConfig;
use super::service::{ErrorClass, Origin, Outcome, Report, SendError, Service};
use super::spool::{Appended, Pos, Spool, SpoolError};
use crate::output::TRUNCATED_HEADER;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// One record on its way to Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Kafka key: the client IP (one client's traffic stays in one partition, in order).
    pub key: Vec<u8>,
    /// The Akto record (JSON).
    pub value: Vec<u8>,
}

/// Counters of the sink (shared with the pipeline and the ingest server's health check).
#[derive(Debug, Default)]
pub struct SinkStats {
    accepted: AtomicU64,
    delivered: AtomicU64,
    replayed: AtomicU64,
    spooled: AtomicU64,
    spool_dropped: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    truncated: AtomicU64,
    spool_bytes: AtomicU64,
    spool_waiting_at_start: AtomicU64,
    broker_down: AtomicBool,
    failures: Mutex<BTreeMap<String, u64>>,
}

/// A copy of the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    /// Records handed to the sink.
    pub accepted: u64,
    /// Records acknowledged by the broker.
    pub delivered: u64,
    /// Of those, records sent from the spool.
    pub replayed: u64,
    /// Records written to the spool.
    pub spooled: u64,
    /// Records refused by the spool's size cap (lost).
    pub spool_dropped: u64,
    /// Records handed back by librdkafka with a retriable error (and spooled).
    pub retried: u64,
    /// Records given up with a non-retriable error.
    pub failed: u64,
    /// Records whose payloads were cut to fit `message.max.bytes`.
    pub truncated: u64,
    /// Bytes in the spool.
    pub spool_bytes: u64,
    /// Records found in the spool at start-up.
    pub spool_waiting_at_start: u64,
    /// True while the broker is unreachable.
    pub broker_down: bool,
    /// Failed records by reason.
    pub failures: BTreeMap<String, u64>,
}

impl SinkStats {
    /// A consistent-enough copy for reports.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            accepted: self.accepted.load(Relaxed),
            delivered: self.delivered.load(Relaxed),
            replayed: self.replayed.load(Relaxed),
            spooled: self.spooled.load(Relaxed),
            spool_dropped: self.spool_dropped.load(Relaxed),
            retried: self.retried.load(Relaxed),
            failed: self.failed.load(Relaxed),
            truncated: self.truncated.load(Relaxed),
            spool_bytes: self.spool_bytes.load(Relaxed),
            spool_waiting_at_start: self.spool_waiting_at_start.load(Relaxed),
            broker_down: self.broker_down.load(Relaxed),
            failures: self.failures.lock().map(|m| m.clone()).unwrap_or_default(),
        }
    }
}

/// The sink's worker stopped on a spool I/O error (records may be lost: reported loudly).
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Spool I/O.
    #[error("Kafka spool: {0}")]
    Spool(#[from] SpoolError),
    /// The worker thread panicked.
    #[error("Kafka sink worker panicked")]
    Panicked,
}

/// The sink is closed (shut down, or its worker stopped).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the Kafka sink is closed")]
pub struct Closed;

/// A cloneable handle that feeds records to the sink.
#[derive(Debug, Clone)]
pub struct RecordSender {
    tx: mpsc::Sender<Outgoing>,
}

impl RecordSender {
    /// From a plain thread: waits while the channel is full. The worker never waits on the
    /// broker (it spills to disk), so the wait is bounded by the spool's disk speed.
    pub fn send_blocking(&self, rec: Outgoing) -> Result<(), Closed> {
        self.tx.blocking_send(rec).map_err(|_| Closed)
    }

    /// From async code: waits at most `timeout` for room; `Err(Some(rec))` gives the record
    /// back when the channel stayed full.
    pub async fn send_timeout(&self, rec: Outgoing, timeout: Duration) -> Result<(), Option<Outgoing>> {
        match self.tx.send_timeout(rec, timeout).await {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendTimeoutError::Timeout(r)) => Err(Some(r)),
            Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(None),
        }
    }
}

/// Cuts a record's payloads so it fits in `limit` bytes, flagging the cut side's headers with
/// [`TRUNCATED_HEADER`]. `None` when even empty payloads do not fit (or it is not a JSON object).
pub fn fit_record(value: &[u8], limit: usize) -> Option<Vec<u8>> {
    let mut obj: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(value).ok()?;
    let mut len = value.len();
    for _ in 0..8 {
        if len <= limit {
            return serde_json::to_vec(&obj).ok();
        }
        // Cut the longer payload first; room for the flag header is kept.
        let excess = len - limit + 64;
        let pick = ["responsePayload", "requestPayload"]
            .into_iter()
            .filter_map(|k| obj.get(k).and_then(|v| v.as_str()).map(|s| (k, s.len())))
            .filter(|(_, n)| *n > 0)
            .max_by_key(|(_, n)| *n)?;
        let (field, n) = pick;
        let headers = if field == "responsePayload" { "responseHeaders" } else { "requestHeaders" };
        if let Some(serde_json::Value::String(s)) = obj.get_mut(field) {
            let mut keep = n.saturating_sub(excess);
            while keep > 0 && !s.is_char_boundary(keep) {
                keep -= 1;
            }
            s.truncate(keep);
        }
        if let Some(serde_json::Value::String(h)) = obj.get_mut(headers) {
            if let Ok(mut map) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(h) {
                map.insert(TRUNCATED_HEADER.to_string(), "true".into());
                if let Ok(s) = serde_json::to_string(&map) {
                    *h = s;
                }
            }
        }
        len = serde_json::to_vec(&obj).ok()?.len();
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Up,
    Down,
}

struct Worker {
    svc: Service,
    spool: Spool,
    rx: mpsc::Receiver<Outgoing>,
    stats: Arc<SinkStats>,
    cfg: KafkaConfig,
    mode: Mode,
    gen: u64,
    spool_inflight: BTreeSet<Pos>,
    live_inflight: u64,
    next_probe: Instant,
    last_log: BTreeMap<&'static str, Instant>,
    /// Reports being handled (kept to reuse its allocation).
    reports: Vec<Report>,
    /// A timer-only runtime, to wait on the channel with a timeout when idle (`IDLE_AFTER`).
    rt: tokio::runtime::Runtime,
}

const PROBE_EVERY: Duration = Duration::from_millis(500);
/// While records flow, the worker naps this long when the channel is empty. A nap, not a wait
/// on the channel: a sender that finds the worker parked must wake it (a futex syscall on each
/// side), and a worker that keeps catching up is parked after nearly every record — measured at
/// ~4 µs of CPU per record. At 100k records/s a nap lets ~100 records gather (the channel holds
/// `CHANNEL_RECORDS`), and the records wait in librdkafka's `linger.ms` anyway.
const BUSY_NAP: Duration = Duration::from_millis(1);
/// After this long without records the worker is idle: it waits on the channel instead (a
/// record wakes it at once), and serves delivery reports at least every `IDLE_WAIT`.
const IDLE_AFTER: Duration = Duration::from_millis(100);
/// See `IDLE_AFTER`.
const IDLE_WAIT: Duration = Duration::from_millis(5);
/// Records taken from the channel between two services of librdkafka's reports.
const RECORDS_PER_TURN: usize = 8192;
const LOG_EVERY: Duration = Duration::from_secs(10);
/// Room kept under `message.max.bytes` for the batch framing and key.
const MESSAGE_OVERHEAD: usize = 512;

impl Worker {
    fn log(&mut self, what: &'static str, msg: impl FnOnce() -> String) {
        let now = Instant::now();
        if self.last_log.get(what).is_none_or(|t| now.duration_since(*t) >= LOG_EVERY) {
            self.last_log.insert(what, now);
            eprintln!("akto-tap kafka: {}", msg());
        }
    }

    fn fail(&mut self, reason: String) {
        self.stats.failed.fetch_add(1, Relaxed);
        self.log("failed", || format!("record failed (not retriable): {reason}"));
        if let Ok(mut m) = self.stats.failures.lock() {
            *m.entry(reason).or_default() += 1;
        }
    }

    fn spool_it(&mut self, key: &[u8], value: &[u8]) -> Result<(), SinkError> {
        match self.spool.append(key, value)? {
            Appended::Stored => {
                self.stats.spooled.fetch_add(1, Relaxed);
            }
            Appended::Dropped => {
                let n = self.stats.spool_dropped.fetch_add(1, Relaxed) + 1;
                let (dir, cap) = (self.cfg.spool.dir.display().to_string(), self.cfg.spool.max_bytes);
                self.log("spool-full", || format!("spool {dir} is full ({cap} bytes): records dropped so far: {n}"));
            }
        }
        Ok(())
    }

    fn enter_down(&mut self, reason: &str) {
        if self.mode == Mode::Up {
            self.mode = Mode::Down;
            self.stats.broker_down.store(true, Relaxed);
            self.next_probe = Instant::now() + PROBE_EVERY;
            let dir = self.cfg.spool.dir.display().to_string();
            eprintln!("akto-tap kafka: broker unavailable ({reason}); spooling records to {dir} until it returns");
        }
    }

    fn enter_up(&mut self) {
        if self.mode == Mode::Down {
            self.mode = Mode::Up;
            self.stats.broker_down.store(false, Relaxed);
            eprintln!("akto-tap kafka: broker available again; replaying the spool ({} bytes)", self.spool.bytes());
        }
    }

    fn on_record(&mut self, rec: Outgoing) -> Result<(), SinkError> {
        self.stats.accepted.fetch_add(1, Relaxed);
        let limit = self.cfg.max_message_bytes.saturating_sub(MESSAGE_OVERHEAD + rec.key.len());
        let value = if rec.value.len() > limit {
            match fit_record(&rec.value, limit) {
                Some(v) => {
                    self.stats.truncated.fetch_add(1, Relaxed);
                    v
                }
                None => {
                    self.fail(format!(
                        "record of {} bytes exceeds message.max.bytes even without payloads",
                        rec.value.len()
                    ));
                    return Ok(());
                }
            }
        } else {
            rec.value
        };
        if self.mode == Mode::Down || self.spool.has_unsent() {
            return self.spool_it(&rec.key, &value);
        }
        for attempt in 0..2 {
            match self.svc.send(&rec.key, &value, Origin::Live) {
                Ok(()) => {
                    self.live_inflight += 1;
                    return Ok(());
                }
                Err(SendError::QueueFull) if attempt == 0 => {
                    self.svc.wait(Duration::from_millis(1));
                    self.on_reports()?;
                }
                Err(SendError::QueueFull) => return self.spool_it(&rec.key, &value),
                Err(SendError::TooLarge(r) | SendError::Fatal(r)) => {
                    self.fail(r);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn advance_commit(&mut self) -> Result<(), SinkError> {
        let upto = self.spool_inflight.first().copied().unwrap_or_else(|| self.spool.read_pos());
        self.spool.commit(upto)?;
        Ok(())
    }

    fn on_reports(&mut self) -> Result<(), SinkError> {
        let mut reports = std::mem::take(&mut self.reports);
        self.svc.take_reports(&mut reports);
        let result = self.handle_reports(&mut reports);
        reports.clear();
        self.reports = reports;
        result
    }

    fn handle_reports(&mut self, reports: &mut Vec<Report>) -> Result<(), SinkError> {
        let mut commit = false;
        for r in reports.drain(..) {
            let (origin, outcome) = match r {
                Report::LiveDelivered(n) => {
                    self.live_inflight = self.live_inflight.saturating_sub(n);
                    self.stats.delivered.fetch_add(n, Relaxed);
                    self.enter_up();
                    continue;
                }
                Report::One { origin, outcome } => (origin, outcome),
            };
            match (origin, outcome) {
                (Origin::Live, Outcome::Delivered) => {
                    self.live_inflight = self.live_inflight.saturating_sub(1);
                    self.stats.delivered.fetch_add(1, Relaxed);
                    self.enter_up();
                }
                (Origin::Live, Outcome::Failed { class: ErrorClass::Retriable, reason, key, value }) => {
                    self.live_inflight = self.live_inflight.saturating_sub(1);
                    self.stats.retried.fetch_add(1, Relaxed);
                    self.enter_down(&reason);
                    self.spool_it(&key, &value)?;
                }
                (Origin::Live, Outcome::Failed { reason, .. }) => {
                    self.live_inflight = self.live_inflight.saturating_sub(1);
                    self.fail(reason);
                }
                (Origin::Spool { pos, gen, .. }, Outcome::Delivered) => {
                    self.stats.delivered.fetch_add(1, Relaxed);
                    self.stats.replayed.fetch_add(1, Relaxed);
                    if gen == self.gen {
                        self.spool_inflight.remove(&pos);
                        commit = true;
                    }
                    self.enter_up();
                }
                (Origin::Spool { gen, .. }, Outcome::Failed { class: ErrorClass::Retriable, reason, .. }) => {
                    self.stats.retried.fetch_add(1, Relaxed);
                    if gen == self.gen {
                        // Send again from the oldest unacknowledged record, in order.
                        self.gen += 1;
                        self.spool_inflight.clear();
                        let at = self.spool.commit_pos();
                        self.spool.rewind_to(at);
                        self.enter_down(&reason);
                        self.next_probe = Instant::now() + PROBE_EVERY;
                    }
                }
                (Origin::Spool { pos, gen, .. }, Outcome::Failed { reason, .. }) => {
                    self.fail(reason);
                    if gen == self.gen {
                        self.spool_inflight.remove(&pos);
                        commit = true;
                    }
                }
            }
        }
        if commit {
            self.advance_commit()?;
        }
        Ok(())
    }

    fn on_global_errors(&mut self) {
        for e in self.svc.take_global_errors() {
            if e.is_security() {
                self.log("security", || format!("authentication/TLS error: {}", e.reason));
            } else if e.is_all_brokers_down() {
                self.enter_down(&e.reason);
            }
        }
    }

    fn drain_spool(&mut self) -> Result<(), SinkError> {
        let window = match self.mode {
            Mode::Up => (self.cfg.max_in_flight / 2).max(1),
            Mode::Down if Instant::now() >= self.next_probe => 1,
            Mode::Down => 0,
        };
        let mut skipped = false;
        while self.spool_inflight.len() < window
            && self.live_inflight as usize + self.spool_inflight.len() < self.cfg.max_in_flight
        {
            let Some(rec) = self.spool.next_record()? else { break };
            let origin = Origin::Spool { pos: rec.pos, next: rec.next, gen: self.gen };
            match self.svc.send(&rec.key, &rec.value, origin) {
                Ok(()) => {
                    self.spool_inflight.insert(rec.pos);
                }
                Err(SendError::QueueFull) => {
                    self.spool.rewind_to(rec.pos);
                    break;
                }
                Err(SendError::TooLarge(r) | SendError::Fatal(r)) => {
                    self.fail(r);
                    skipped = true;
                }
            }
        }
        if skipped {
            self.advance_commit()?;
        }
        if self.mode == Mode::Down && window == 1 {
            self.next_probe = Instant::now() + PROBE_EVERY;
        }
        Ok(())
    }

    fn run(mut self) -> Result<(), SinkError> {
        let waiting = self.spool.records_at_open();
        self.stats.spool_waiting_at_start.store(waiting, Relaxed);
        if waiting > 0 {
            eprintln!(
                "akto-tap kafka: resuming delivery of {waiting} records spooled in {}",
                self.cfg.spool.dir.display()
            );
        }
        let mut deadline: Option<Instant> = None;
        let mut last_record = Instant::now();
        loop {
            let mut n = 0;
            while deadline.is_none() && n < RECORDS_PER_TURN {
                match self.rx.try_recv() {
                    Ok(rec) => {
                        self.on_record(rec)?;
                        n += 1;
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        deadline = Some(Instant::now() + self.cfg.flush_timeout)
                    }
                }
            }
            if n > 0 {
                last_record = Instant::now();
            } else if deadline.is_some() || last_record.elapsed() < IDLE_AFTER {
                // Records flow (or shutdown: librdkafka just needs time): a short nap, see
                // `BUSY_NAP`. Not a librdkafka poll with a timeout: it would spin (see
                // `Service::serve`).
                std::thread::sleep(BUSY_NAP);
            } else {
                // Idle: wait for a record (taken at once) or `IDLE_WAIT`.
                match self.rt.block_on(async { tokio::time::timeout(IDLE_WAIT, self.rx.recv()).await }) {
                    Ok(Some(rec)) => {
                        self.on_record(rec)?;
                        last_record = Instant::now();
                    }
                    Ok(None) => deadline = Some(Instant::now() + self.cfg.flush_timeout),
                    Err(_elapsed) => {}
                }
            }
            self.svc.serve();
            self.on_reports()?;
            self.on_global_errors();
            self.drain_spool()?;
            self.spool.tick()?;
            self.stats.spool_bytes.store(self.spool.bytes(), Relaxed);
            if let Some(d) = deadline {
                let idle = self.live_inflight == 0 && self.spool_inflight.is_empty() && self.spool.is_empty();
                if idle || Instant::now() >= d {
                    break;
                }
            }
        }
        self.finish()
    }

    /// Shutdown: what librdkafka still holds is purged and comes back as retriable failures,
    /// which spools the live records; the spool is then made durable.
    fn finish(mut self) -> Result<(), SinkError> {
        self.svc.purge();
        let end = Instant::now() + Duration::from_secs(5);
        while self.svc.in_flight() > 0 && Instant::now() < end {
            self.svc.wait(Duration::from_millis(5));
            self.on_reports()?;
        }
        self.on_reports()?;
        self.spool.close()?;
        self.stats.spool_bytes.store(self.spool.bytes(), Relaxed);
        if !self.spool.is_empty() {
            eprintln!(
                "akto-tap kafka: {} bytes of records remain in the spool {}; they are delivered on the next start",
                self.spool.bytes(),
                self.cfg.spool.dir.display()
            );
        }
        Ok(())
    }
}

/// The running sink.
#[derive(Debug)]
pub struct KafkaSink {
    tx: Option<mpsc::Sender<Outgoing>>,
    stats: Arc<SinkStats>,
    worker: Option<std::thread::JoinHandle<Result<(), SinkError>>>,
}

impl KafkaSink {
    /// Starts the worker over an opened service and spool.
    /// `reachable = false` starts in the Down state (records go to the spool first).
    pub(super) fn spawn(
        cfg: KafkaConfig,
        svc: Service,
        spool: Spool,
        channel: usize,
        reachable: bool,
    ) -> std::io::Result<KafkaSink> {
        let (tx, rx) = mpsc::channel(channel.max(1));
        let stats = Arc::new(SinkStats::default());
        stats.broker_down.store(!reachable, Relaxed);
        let worker = Worker {
            svc,
            spool,
            rx,
            stats: Arc::clone(&stats),
            cfg,
            mode: if reachable { Mode::Up } else { Mode::Down },
            gen: 0,
            spool_inflight: BTreeSet::new(),
            live_inflight: 0,
            next_probe: Instant::now(),
            last_log: BTreeMap::new(),
            reports: Vec::new(),
            rt: tokio::runtime::Builder::new_current_thread().enable_time().build()?,
        };
        let handle = std::thread::Builder::new().name("kafka-sink".into()).spawn(move || worker.run())?;
        Ok(KafkaSink { tx: Some(tx), stats, worker: Some(handle) })
    }

    /// A handle to send records.
    pub fn sender(&self) -> Option<RecordSender> {
        self.tx.as_ref().map(|tx| RecordSender { tx: tx.clone() })
    }

    /// The counters.
    pub fn stats(&self) -> Arc<SinkStats> {
        Arc::clone(&self.stats)
    }

    /// Stops accepting records, delivers what it can within the flush timeout, spools the
    /// rest, and returns the final counters. Other [`RecordSender`]s must be dropped first.
    pub fn close(mut self) -> Result<Snapshot, SinkError> {
        self.tx = None;
        let result = match self.worker.take().map(|w| w.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(SinkError::Panicked),
            None => Ok(()),
        };
        result.map(|()| self.stats.snapshot())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversize_records_are_cut_to_fit_and_flagged() {
        let rec = serde_json::json!({
            "path": "/big", "requestHeaders": "{\"host\":\"a\"}", "responseHeaders": "{}",
            "requestPayload": "q".repeat(3000), "responsePayload": "é".repeat(5000),
        });
        let bytes = serde_json::to_vec(&rec).unwrap_or_default();
        let out = fit_record(&bytes, 4000).expect("fits");
        assert!(out.len() <= 4000, "{}", out.len());
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap_or_default();
        assert_eq!(v["path"], "/big");
        let rh: serde_json::Value =
            serde_json::from_str(v["responseHeaders"].as_str().unwrap_or_default()).unwrap_or_default();
        assert_eq!(rh[TRUNCATED_HEADER], "true");
        assert!(v["responsePayload"].as_str().unwrap_or_default().len() < 10000);
        // Under the limit: unchanged content.
        let same = fit_record(&bytes, 1 << 20).expect("fits");
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&same).ok(), Some(rec));
        // Not fixable without payloads.
        let huge = serde_json::to_vec(&serde_json::json!({"path": "x".repeat(5000)})).unwrap_or_default();
        assert_eq!(fit_record(&huge, 1000), None);
    }
}
