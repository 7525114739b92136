//! The replay's encoding stage: exchanges → JSON lines and Kafka records, on worker threads.
//!
//! ```text
//!  reader + reassembly thread ──(numbered batches, bounded queue)──▶ N encoder threads
//!                                                                       │ encode in parallel
//!                                        write in batch order (a turn) ◀┘
//!                                        JSONL output · Kafka sink hand-off
//! ```
//!
//! Reassembly stays on one thread with one engine, so the exchanges are exactly those of a
//! single-threaded replay (flow table, budgets and capture-time expiry are global, as before).
//! Encoding — the Akto record, JSON escaping of bodies — is most of the replay's CPU per record
//! and needs nothing but the exchange, so it runs on `--workers` threads. Each batch carries a
//! sequence number and its output is written only when every earlier batch has been written,
//! so the JSONL lines and the records handed to Kafka keep the single-threaded order exactly
//! (the same bytes in the same order; one client's records keep their order, and so does
//! everything else).
//!
//! Backpressure: the queue holds at most `2 × workers` batches (of at most
//! [`BATCH_EXCHANGES`] exchanges); when it is full the reassembly thread waits, so the file is
//! read no faster than records are written (a replay never drops). An encoder whose batch is
//! done waits for its turn; the turn's writes wait on the output (a slow disk) or on the Kafka
//! sink's channel (the sink spools rather than wait on the broker).
//!
//! With `workers = 0` the replay encodes and writes on the reassembly thread, exactly as it did
//! before this stage existed (the default on a 1-CPU host, and to Kafka on 2 CPUs: see
//! [`workers`]). The threads' encoding must give the bytes of `JsonlSink::write`: the replay
//! tests compare both, byte for byte.

use crate::kafka::{Outgoing, RecordSender};
use crate::output::jsonl::JsonlSink;
use crate::output::{to_exchange_json, write_record, Format, RecordOptions};
use anyhow::Context;
use reassembly::HttpExchange;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Exchanges the reassembly thread gathers before it hands them over as one batch.
pub const BATCH_EXCHANGES: usize = 256;
/// Exchanges gathered before they are encoded inline (`--workers 0`). Measured on the bench
/// capture, one core, interleaved runs (median CPU ms): 1: 390, 4: 382, 16: 378, 32: 377,
/// 64: 378, 256: 390, 1024: 398, 4096: 507. Fewer than the threads' batch keeps an
/// exchange's bodies in the cache until they are encoded; a few rather than one keeps the
/// engine's and the encoder's code warm in turn.
pub const INLINE_BATCH_EXCHANGES: usize = 32;
/// Encoder threads at most when `--workers` is not given.
const AUTO_MAX_WORKERS: usize = 4;

/// Encoder threads for `--workers`: the given number, or one per CPU besides the reading
/// thread and, with the Kafka sink on, besides one more CPU for the sink (librdkafka's broker
/// thread compresses with LZ4, ~6 µs per 4 KB record, and the sink's worker hands records over,
/// ~2 µs); at most [`AUTO_MAX_WORKERS`]. Measured on 2 CPUs (scripts/bench-kafka.sh): to JSON
/// lines one encoder thread replays ~50 % more records per second than inline; to Kafka the
/// pipeline already fills both CPUs inline, and an encoder thread gave the same rate or less
/// for 2–7 µs more CPU per record (exchanges built on one core and encoded on another).
pub fn workers(given: Option<usize>, kafka: bool) -> usize {
    given.unwrap_or_else(|| {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        cpus.saturating_sub(1 + usize::from(kafka)).min(AUTO_MAX_WORKERS)
    })
}

/// Where encoded records go, and what was counted on the way. Written by one thread at a time.
#[derive(Debug)]
pub struct Output {
    /// JSON lines (stdout or a file).
    pub jsonl: Option<JsonlSink>,
    /// Format of the lines.
    pub format: Format,
    /// Kafka hand-off.
    pub kafka: Option<RecordSender>,
    /// Record fields (the same for JSONL and Kafka).
    pub opts: RecordOptions,
    /// Exchanges without a request line, not written as `akto` lines.
    pub jsonl_skipped: u64,
    /// Records handed to Kafka.
    pub kafka_records: u64,
    /// Exchanges without a request line, not sent to Kafka.
    pub kafka_skipped: u64,
}

/// One batch, encoded.
#[derive(Debug, Default)]
struct Encoded {
    lines: Vec<u8>,
    line_count: u64,
    jsonl_skipped: u64,
    records: Vec<Outgoing>,
    kafka_skipped: u64,
}

/// What an encoder needs to know about the outputs (no handles: those stay with [`Output`]).
#[derive(Debug, Clone)]
struct Plan {
    format: Option<Format>,
    kafka: bool,
    opts: RecordOptions,
}

impl Plan {
    fn of(out: &Output) -> Plan {
        Plan { format: out.jsonl.as_ref().map(|_| out.format), kafka: out.kafka.is_some(), opts: out.opts.clone() }
    }

    /// Encodes as `JsonlSink::write` and the Kafka hand-off do: an `akto` line and a Kafka
    /// value are the same bytes, so they are encoded once.
    fn encode(&self, batch: &[HttpExchange], into: &mut Encoded) -> anyhow::Result<()> {
        let (mut value, mut scratch) = (Vec::new(), String::new());
        for ex in batch {
            // No request line: no endpoint for Akto (counted by each sink; the `exchange`
            // format still shows it).
            let for_akto = !ex.request.method.is_empty();
            value.clear();
            if for_akto && self.kafka {
                write_record(ex, &self.opts, None, &mut scratch, &mut value);
            }
            match self.format {
                Some(Format::Akto) if !for_akto => into.jsonl_skipped += 1,
                Some(Format::Akto) => {
                    if self.kafka {
                        into.lines.extend_from_slice(&value);
                    } else {
                        write_record(ex, &self.opts, None, &mut scratch, &mut into.lines);
                    }
                    into.lines.push(b'\n');
                    into.line_count += 1;
                }
                Some(Format::Exchange) => {
                    serde_json::to_writer(&mut into.lines, &to_exchange_json(ex))?;
                    into.lines.push(b'\n');
                    into.line_count += 1;
                }
                Some(Format::None) | None => {}
            }
            if self.kafka {
                if for_akto {
                    let key = record::ip_string(ex.conn.client.ip()).into_bytes();
                    let next = Vec::with_capacity(value.len() + 256);
                    let value = std::mem::replace(&mut value, next);
                    into.records.push(Outgoing { key, value });
                } else {
                    into.kafka_skipped += 1;
                }
            }
        }
        Ok(())
    }
}

impl Output {
    /// Inline: as the replay always did, `JsonlSink::write` per exchange and the same record
    /// encoded for Kafka. The threads' encoding must give the same bytes (tested).
    fn write_one(&mut self, ex: &HttpExchange, buf: &mut Vec<u8>, scratch: &mut String) -> anyhow::Result<()> {
        if let Some(j) = &mut self.jsonl {
            j.write(ex)?;
        }
        if let Some(tx) = &self.kafka {
            if ex.request.method.is_empty() {
                self.kafka_skipped += 1;
                return Ok(());
            }
            buf.clear();
            write_record(ex, &self.opts, None, scratch, buf);
            let key = record::ip_string(ex.conn.client.ip()).into_bytes();
            // The encoded record moves to the sink; the next one starts in a buffer of its size.
            let next = Vec::with_capacity(buf.len() + 256);
            let value = std::mem::replace(buf, next);
            tx.send_blocking(Outgoing { key, value }).map_err(|e| anyhow::anyhow!("{e}"))?;
            self.kafka_records += 1;
        }
        Ok(())
    }

    fn write(&mut self, enc: &mut Encoded) -> anyhow::Result<()> {
        if let Some(j) = &mut self.jsonl {
            if enc.line_count > 0 {
                j.write_encoded(&enc.lines, enc.line_count)?;
            }
        }
        self.jsonl_skipped += enc.jsonl_skipped;
        self.kafka_skipped += enc.kafka_skipped;
        if let Some(tx) = &self.kafka {
            for rec in enc.records.drain(..) {
                tx.send_blocking(rec).map_err(|e| anyhow::anyhow!("{e}"))?;
                self.kafka_records += 1;
            }
        }
        Ok(())
    }
}

/// A batch on its way to an encoder.
struct Job {
    seq: u64,
    batch: Vec<HttpExchange>,
}

/// The output and the number of the batch whose turn it is to write.
struct Turn {
    next: u64,
    out: Output,
    error: Option<anyhow::Error>,
}

struct Shared {
    turn: Mutex<Turn>,
    turned: Condvar,
    /// Set with `Turn::error`: the reassembly thread stops at its next batch.
    failed: AtomicBool,
}

/// The encoding stage (inline or threaded).
pub struct Encoders {
    mode: Mode,
}

impl std::fmt::Debug for Encoders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.mode {
            Mode::Inline { .. } => f.write_str("Encoders(inline)"),
            Mode::Threads { workers, .. } => write!(f, "Encoders({} threads)", workers.len()),
        }
    }
}

enum Mode {
    Inline { out: Box<Output>, buf: Vec<u8>, scratch: String },
    Threads { tx: Option<SyncSender<Job>>, seq: u64, workers: Vec<JoinHandle<()>>, shared: Arc<Shared> },
}

impl Encoders {
    /// Starts `workers` encoder threads (none: encode inline).
    pub fn start(out: Output, workers: usize) -> std::io::Result<Encoders> {
        if workers == 0 {
            let (out, buf, scratch) = (Box::new(out), Vec::with_capacity(1 << 16), String::new());
            return Ok(Encoders { mode: Mode::Inline { out, buf, scratch } });
        }
        let plan = Plan::of(&out);
        let (tx, rx) = mpsc::sync_channel::<Job>(2 * workers);
        let rx = Arc::new(Mutex::new(rx));
        let shared = Arc::new(Shared {
            turn: Mutex::new(Turn { next: 0, out, error: None }),
            turned: Condvar::new(),
            failed: AtomicBool::new(false),
        });
        let mut handles = Vec::with_capacity(workers);
        for i in 0..workers {
            let (rx, shared, plan) = (Arc::clone(&rx), Arc::clone(&shared), plan.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("akto-tap-encode-{i}"))
                .spawn(move || encoder(&rx, &shared, &plan));
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // The threads already started end when the queue closes.
                    drop(tx);
                    for h in handles {
                        let _ = h.join();
                    }
                    return Err(e);
                }
            }
        }
        Ok(Encoders { mode: Mode::Threads { tx: Some(tx), seq: 0, workers: handles, shared } })
    }

    /// Exchanges to gather before [`Encoders::submit`].
    pub fn batch_exchanges(&self) -> usize {
        match self.mode {
            Mode::Inline { .. } => INLINE_BATCH_EXCHANGES,
            Mode::Threads { .. } => BATCH_EXCHANGES,
        }
    }

    /// Hands a batch over (taken out of `batch`); waits while the encoders are behind. An
    /// error of an earlier batch's output (a closed pipe, a stopped Kafka sink) is returned.
    pub fn submit(&mut self, batch: &mut Vec<HttpExchange>) -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        match &mut self.mode {
            Mode::Inline { out, buf, scratch } => {
                let result = batch.iter().try_for_each(|ex| out.write_one(ex, buf, scratch)).context("writing output");
                batch.clear();
                result
            }
            Mode::Threads { tx, seq, shared, .. } => {
                if shared.failed.load(Ordering::Relaxed) {
                    return Err(take_error(shared));
                }
                let job = Job { seq: *seq, batch: std::mem::replace(batch, Vec::with_capacity(BATCH_EXCHANGES)) };
                *seq += 1;
                let sent = tx.as_ref().map(|tx| tx.send(job).is_ok()).unwrap_or(false);
                if !sent {
                    return Err(take_error(shared));
                }
                Ok(())
            }
        }
    }

    /// Waits for every batch to be written and returns the output (to flush and count).
    pub fn finish(self) -> anyhow::Result<Output> {
        match self.mode {
            Mode::Inline { mut out, .. } => {
                out.jsonl_skipped = out.jsonl.as_ref().map_or(0, JsonlSink::skipped);
                Ok(*out)
            }
            Mode::Threads { mut tx, workers, shared, .. } => {
                tx.take();
                for w in workers {
                    if w.join().is_err() {
                        anyhow::bail!("an encoder thread panicked");
                    }
                }
                let shared = Arc::into_inner(shared).context("encoder threads still hold the output")?;
                let turn = shared.turn.into_inner().map_err(|_| anyhow::anyhow!("output lock poisoned"))?;
                match turn.error {
                    Some(e) => Err(e),
                    None => Ok(turn.out),
                }
            }
        }
    }
}

fn take_error(shared: &Shared) -> anyhow::Error {
    let taken = shared.turn.lock().ok().and_then(|mut t| t.error.take());
    taken.unwrap_or_else(|| anyhow::anyhow!("the encoder threads stopped"))
}

/// One encoder thread: takes the next batch, encodes it, waits for its turn, writes it.
fn encoder(rx: &Mutex<Receiver<Job>>, shared: &Shared, plan: &Plan) {
    let mut enc = Encoded::default();
    loop {
        // The lock is held only while waiting for a job, not while encoding.
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let encoded = plan.encode(&job.batch, &mut enc);
        drop(job.batch);
        let Ok(mut turn) = shared.turn.lock() else { return };
        while turn.next != job.seq {
            turn = match shared.turned.wait(turn) {
                Ok(t) => t,
                Err(_) => return,
            };
        }
        if turn.error.is_none() {
            let result = encoded.and_then(|()| turn.out.write(&mut enc)).context("writing output");
            if let Err(e) = result {
                turn.error = Some(e);
                shared.failed.store(true, Ordering::Relaxed);
            }
        }
        turn.next += 1;
        drop(turn);
        shared.turned.notify_all();
        enc.lines.clear();
        enc.records.clear();
        enc.line_count = 0;
        enc.jsonl_skipped = 0;
        enc.kafka_skipped = 0;
    }
}
