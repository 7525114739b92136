//! Capture → reassembly shards → sinks.
//!
//! The capture thread hands packets to [`Dispatcher::push`], which batches them per shard and
//! picks the shard by flow hash, so a flow always lands on the same thread. Each shard thread
//! owns a reassembly [`Engine`], turns its exchanges into lines (JSONL) and records (Kafka).
//!
//! Backpressure, stage by stage (docs/ARCHITECTURE.md):
//! * capture → shard: a bounded queue of batches per shard (`queue_batches`); when it is full
//!   the batch is dropped and counted (`queue_full_packets`/`_bytes`). The capture thread never
//!   waits, so the kernel ring buffer keeps draining.
//! * shard → JSONL output: the shard writes under a mutex (a local file or pipe); a slow reader
//!   slows the shards, their queues fill, and the drops are counted at the queue above.
//! * shard → Kafka: the sink's bounded hand-off channel; the sink spools to disk when the broker
//!   is down, so this wait is short (see `kafka`).

use crate::filter::{strip_bodies, Decision, Filter, FilterStats};
use crate::kafka::{Outgoing, RecordSender};
use crate::output::jsonl::JsonlSink;
use crate::output::{to_exchange_json, write_record, Format, RecordOptions};
use reassembly::{Engine, HttpExchange, LinkType, Stats, Timestamp};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Packets per batch before it is handed to its shard.
const BATCH_PACKETS: usize = 256;
/// Bytes per batch before it is handed to its shard.
const BATCH_BYTES: usize = 1 << 20;
/// How often a shard without traffic advances its clock (idle expiry) and publishes counters.
const TICK: Duration = Duration::from_millis(200);

/// Pipeline settings.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Shard (worker) threads.
    pub shards: usize,
    /// Batches each shard queue holds before the capture thread drops.
    pub queue_batches: usize,
    /// Reassembly limits, per shard.
    pub engine: reassembly::Config,
    /// Record fields.
    pub record: RecordOptions,
    /// Filter and sampling rules (one `Filter` per shard).
    pub filter: crate::filter::FilterConfig,
}

/// One packet inside a batch.
#[derive(Debug, Clone, Copy)]
struct PacketRef {
    start: u32,
    len: u32,
    ts: Timestamp,
    link: LinkType,
    /// TLS plaintext (reassembled by the shard's TLS engine, apart from captured packets).
    tls: bool,
}

/// Packets for one shard, stored back to back.
#[derive(Debug, Default)]
struct Batch {
    bytes: Vec<u8>,
    packets: Vec<PacketRef>,
}

/// Counters of the pipeline itself (the engines keep their own).
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Packets handed to shards.
    pub packets: AtomicU64,
    /// Bytes handed to shards.
    pub bytes: AtomicU64,
    /// Packets dropped because a shard queue was full.
    pub queue_full_packets: AtomicU64,
    /// Bytes dropped because a shard queue was full.
    pub queue_full_bytes: AtomicU64,
    /// Exchanges reconstructed.
    pub exchanges: AtomicU64,
    /// Records written to the JSONL output.
    pub lines: AtomicU64,
    /// Exchanges without a request line (not sent to Akto).
    pub no_request_line: AtomicU64,
    /// Records handed to the Kafka sink.
    pub kafka_records: AtomicU64,
    /// Output errors (the first one is kept in `output_error`).
    pub output_errors: AtomicU64,
}

/// Where shards send what they reconstruct.
#[derive(Debug, Clone)]
pub struct Outputs {
    /// JSON lines (stdout or a file) in a format, shared by the shards.
    pub jsonl: Option<(Arc<Mutex<JsonlSink>>, Format)>,
    /// Kafka hand-off.
    pub kafka: Option<RecordSender>,
    /// Guardrails hand-off (MCP-looking exchanges; never waits).
    pub guard: Option<crate::threats::GuardSender>,
}

/// The capture side of the pipeline: batching and dispatch.
#[derive(Debug)]
pub struct Dispatcher {
    senders: Vec<SyncSender<Batch>>,
    depths: Vec<Arc<AtomicU64>>,
    pending: Vec<Batch>,
    stats: Arc<PipelineStats>,
    /// What this dispatcher pushes is TLS plaintext (see `crate::tls`).
    tls: bool,
}

impl Dispatcher {
    /// A second dispatcher into the same shards for TLS plaintext frames; each shard keeps them
    /// in an engine of their own, so a connection's encrypted packets and its plaintext never
    /// share a flow. The shards stop once every dispatcher is dropped.
    pub fn for_tls(&self) -> Dispatcher {
        Dispatcher {
            senders: self.senders.clone(),
            depths: self.depths.clone(),
            pending: (0..self.senders.len()).map(|_| Batch::default()).collect(),
            stats: Arc::clone(&self.stats),
            tls: true,
        }
    }

    /// Queues one packet for the shard of `flow_hash`. Never blocks.
    pub fn push(&mut self, flow_hash: u64, ts: Timestamp, link: LinkType, data: &[u8]) {
        let shard = (flow_hash % self.senders.len() as u64) as usize;
        let b = &mut self.pending[shard];
        let start = b.bytes.len() as u32;
        b.bytes.extend_from_slice(data);
        b.packets.push(PacketRef { start, len: data.len() as u32, ts, link, tls: self.tls });
        if b.packets.len() >= BATCH_PACKETS || b.bytes.len() >= BATCH_BYTES {
            self.send(shard);
        }
    }

    /// Hands every partial batch to its shard (call when the capture source runs dry).
    pub fn flush(&mut self) {
        for shard in 0..self.senders.len() {
            if !self.pending[shard].packets.is_empty() {
                self.send(shard);
            }
        }
    }

    fn send(&mut self, shard: usize) {
        let batch = std::mem::replace(
            &mut self.pending[shard],
            Batch { bytes: Vec::with_capacity(BATCH_BYTES / 4), packets: Vec::with_capacity(BATCH_PACKETS) },
        );
        let (n, bytes) = (batch.packets.len() as u64, batch.bytes.len() as u64);
        match self.senders[shard].try_send(batch) {
            Ok(()) => {
                self.depths[shard].fetch_add(1, Relaxed);
                self.stats.packets.fetch_add(n, Relaxed);
                self.stats.bytes.fetch_add(bytes, Relaxed);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.queue_full_packets.fetch_add(n, Relaxed);
                self.stats.queue_full_bytes.fetch_add(bytes, Relaxed);
            }
        }
    }
}

/// The running shards.
#[derive(Debug)]
pub struct Pipeline {
    workers: Vec<JoinHandle<()>>,
    observer: Observer,
    first_error: Arc<Mutex<Option<String>>>,
}

/// A read-only view of the pipeline's counters, for the status line and metrics.
#[derive(Debug, Clone)]
pub struct Observer {
    stats: Arc<PipelineStats>,
    engine_stats: Vec<Arc<Mutex<Stats>>>,
    filter_stats: Vec<Arc<Mutex<FilterStats>>>,
    depths: Vec<Arc<AtomicU64>>,
}

impl Observer {
    /// Pipeline counters.
    pub fn stats(&self) -> &PipelineStats {
        &self.stats
    }

    /// The engines' counters, summed (each shard publishes every tick).
    pub fn engine_stats(&self) -> Stats {
        let mut total = Stats::default();
        for s in &self.engine_stats {
            if let Ok(s) = s.lock() {
                total.merge(&s);
            }
        }
        total
    }

    /// The filters' counters, summed.
    pub fn filter_stats(&self) -> FilterStats {
        let mut total = FilterStats::default();
        for s in &self.filter_stats {
            if let Ok(s) = s.lock() {
                total.merge(&s);
            }
        }
        total
    }

    /// Batches waiting in each shard's queue.
    pub fn queue_depths(&self) -> Vec<u64> {
        self.depths.iter().map(|d| d.load(Relaxed)).collect()
    }
}

impl Pipeline {
    /// Starts the shard threads; returns the dispatcher that feeds them.
    pub fn start(cfg: &PipelineConfig, outputs: Outputs) -> std::io::Result<(Pipeline, Dispatcher)> {
        let stats = Arc::new(PipelineStats::default());
        let first_error = Arc::new(Mutex::new(None));
        let shards = cfg.shards.max(1);
        let mut senders = Vec::with_capacity(shards);
        let mut workers = Vec::with_capacity(shards);
        let mut engine_stats = Vec::with_capacity(shards);
        let mut depths = Vec::with_capacity(shards);
        let mut filter_stats = Vec::with_capacity(shards);
        for i in 0..shards {
            let (tx, rx) = mpsc::sync_channel(cfg.queue_batches.max(1));
            senders.push(tx);
            let depth = Arc::new(AtomicU64::new(0));
            depths.push(Arc::clone(&depth));
            let published = Arc::new(Mutex::new(Stats::default()));
            engine_stats.push(Arc::clone(&published));
            let filter_published = Arc::new(Mutex::new(FilterStats::default()));
            filter_stats.push(Arc::clone(&filter_published));
            let filter = Filter::new(cfg.filter.clone())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
            let shard = Shard {
                engine: Engine::new(cfg.engine.clone()),
                tls_engine: Engine::new(cfg.engine.clone()),
                rx,
                depth,
                outputs: outputs.clone(),
                record: cfg.record.clone(),
                stats: Arc::clone(&stats),
                published,
                filter,
                filter_published,
                first_error: Arc::clone(&first_error),
                lines: Vec::with_capacity(1 << 16),
                value: Vec::with_capacity(1 << 12),
                scratch: String::new(),
            };
            workers.push(std::thread::Builder::new().name(format!("akto-tap-shard-{i}")).spawn(move || shard.run())?);
        }
        let pending = (0..shards).map(|_| Batch::default()).collect();
        let dispatcher = Dispatcher { senders, depths: depths.clone(), pending, stats: Arc::clone(&stats), tls: false };
        Ok((
            Pipeline { workers, observer: Observer { stats, engine_stats, filter_stats, depths }, first_error },
            dispatcher,
        ))
    }

    /// A view of the counters.
    pub fn observer(&self) -> &Observer {
        &self.observer
    }

    /// The first output error, if any.
    pub fn output_error(&self) -> Option<String> {
        self.first_error.lock().ok().and_then(|e| e.clone())
    }

    /// Stops the shards after they drain their queues and flush every open flow (pending
    /// exchanges are reported as such). The dispatcher must have been flushed and dropped.
    pub fn finish(self) -> Stats {
        for w in self.workers {
            let _ = w.join();
        }
        self.observer.engine_stats()
    }
}

struct Shard {
    engine: Engine,
    /// TLS plaintext frames (`crate::tls`), kept apart from captured packets.
    tls_engine: Engine,
    rx: Receiver<Batch>,
    depth: Arc<AtomicU64>,
    outputs: Outputs,
    record: RecordOptions,
    stats: Arc<PipelineStats>,
    published: Arc<Mutex<Stats>>,
    filter: Filter,
    filter_published: Arc<Mutex<FilterStats>>,
    first_error: Arc<Mutex<Option<String>>>,
    lines: Vec<u8>,
    value: Vec<u8>,
    /// The short texts of the record being encoded (`output::write_record`).
    scratch: String,
}

impl Shard {
    fn run(mut self) {
        let mut out: Vec<HttpExchange> = Vec::new();
        let mut last_tick = Instant::now();
        loop {
            match self.rx.recv_timeout(TICK) {
                Ok(batch) => {
                    self.depth.fetch_sub(1, Relaxed);
                    for p in &batch.packets {
                        let data = &batch.bytes[p.start as usize..(p.start + p.len) as usize];
                        let engine = if p.tls { &mut self.tls_engine } else { &mut self.engine };
                        engine.on_frame(p.ts, p.link, data, &mut out);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                let now = now();
                self.engine.advance(now, &mut out);
                self.tls_engine.advance(now, &mut out);
                self.publish();
            }
            if !out.is_empty() {
                self.emit(&mut out);
            }
        }
        self.engine.flush_all(&mut out);
        self.tls_engine.flush_all(&mut out);
        self.emit(&mut out);
        self.publish();
    }

    fn publish(&self) {
        if let Ok(mut s) = self.published.lock() {
            s.clone_from(self.engine.stats());
            s.merge(self.tls_engine.stats());
        }
        if let Ok(mut s) = self.filter_published.lock() {
            *s = self.filter.stats();
        }
    }

    fn emit(&mut self, out: &mut Vec<HttpExchange>) {
        let mut lines = 0u64;
        let format = self.outputs.jsonl.as_ref().map(|(_, f)| *f);
        for mut ex in out.drain(..) {
            self.stats.exchanges.fetch_add(1, Relaxed);
            // No request line: no endpoint for Akto (counted, as in every sink; the `exchange`
            // format still shows it).
            let for_akto = !ex.request.method.is_empty();
            if !for_akto {
                self.stats.no_request_line.fetch_add(1, Relaxed);
            }
            // Threat scanning sees every MCP exchange whole, whatever the record filters decide.
            let scan = self.outputs.guard.is_some() && crate::threats::looks_mcp(&ex);
            // Akto's drop rules, include/exclude and sampling apply to what goes to Akto.
            let decision = if for_akto { self.filter.decide(ex.request.ts, &ex) } else { Decision::Keep };
            match decision {
                Decision::Drop(_) => {}
                Decision::Keep => self.output(&ex, for_akto, format, &mut lines),
                Decision::StripBodies if scan => {
                    let mut stripped = ex.clone();
                    strip_bodies(&mut stripped);
                    self.output(&stripped, for_akto, format, &mut lines);
                }
                Decision::StripBodies => {
                    strip_bodies(&mut ex);
                    self.output(&ex, for_akto, format, &mut lines);
                }
            }
            // Last use of the exchange: moved, not copied, to the scanners.
            if let (Some(g), true) = (&self.outputs.guard, scan) {
                g.offer(ex);
            }
        }
        if let Some((j, _)) = &self.outputs.jsonl {
            if !self.lines.is_empty() {
                let result = j.lock().map_err(|_| "output lock poisoned".to_string()).and_then(|mut j| {
                    j.write_encoded(&self.lines, lines).and_then(|()| j.flush()).map_err(|e| e.to_string())
                });
                self.lines.clear();
                match result {
                    Ok(()) => {
                        self.stats.lines.fetch_add(lines, Relaxed);
                    }
                    Err(e) => self.error(format!("writing output: {e}")),
                }
            }
        }
    }

    /// Encodes one exchange for the outputs: a line (JSONL) and/or a record (Kafka).
    fn output(&mut self, ex: &HttpExchange, for_akto: bool, format: Option<Format>, lines: &mut u64) {
        self.value.clear();
        if for_akto && (format == Some(Format::Akto) || self.outputs.kafka.is_some()) {
            // Workload attribution: a snapshot lookup, no I/O on the shard (crate::workload).
            let workload = self.record.workload.lookup(ex.conn.client, ex.conn.server);
            write_record(ex, &self.record, workload.as_ref(), &mut self.scratch, &mut self.value);
        }
        match format {
            Some(Format::Akto) if for_akto => {
                self.lines.extend_from_slice(&self.value);
                self.lines.push(b'\n');
                *lines += 1;
            }
            Some(Format::Exchange) if serde_json::to_writer(&mut self.lines, &to_exchange_json(ex)).is_ok() => {
                self.lines.push(b'\n');
                *lines += 1;
            }
            _ => {}
        }
        if let (true, Some(tx)) = (for_akto, &self.outputs.kafka) {
            let key = record::ip_string(ex.conn.client.ip()).into_bytes();
            // The encoded record moves to the sink; the next one starts in a buffer of its size.
            let next = Vec::with_capacity(self.value.len() + 256);
            let value = std::mem::replace(&mut self.value, next);
            if tx.send_blocking(Outgoing { key, value }).is_ok() {
                self.stats.kafka_records.fetch_add(1, Relaxed);
            } else {
                self.error("the Kafka sink stopped".into());
            }
        }
    }

    fn error(&self, e: String) {
        self.stats.output_errors.fetch_add(1, Relaxed);
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert(e);
        }
    }
}

/// Wall-clock time as a capture timestamp (what packet timestamps are converted to).
pub fn now() -> Timestamp {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timestamp(d.as_micros() as u64)
}
