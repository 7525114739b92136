//! `akto-tap replay`: capture files → exchanges → JSON lines, or Kafka when brokers are
//! configured (`--kafka-brokers` or Akto's `AKTO_KAFKA_BROKER_MAL`/`_URL`).
//!
//! One thread reads the files and runs the reassembly engine; the exchanges are encoded on
//! `--workers` threads and written in their original order ([`encode`]).

mod encode;
pub mod pcapfile;
mod sigbus;
mod source;
mod summary;

use crate::kafka::{self, KafkaArgs, KafkaSink};
use crate::output::jsonl::JsonlSink;
use crate::output::{Format, RecordOptions};
use anyhow::Context;
use encode::{Encoders, Output};
use indicatif::{ProgressBar, ProgressStyle};
use pcapfile::CaptureReader;
use reassembly::{Engine, LinkType, Timestamp};
use source::Source;
use std::io::IsTerminal;
use std::path::PathBuf;
use summary::Summary;

/// Arguments of `akto-tap replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Capture files (pcap, pcapng, optionally gzip-compressed).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Where to write the records: a path, or `-` for stdout. Default: stdout, or nothing
    /// when the Kafka sink is on.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Line format.
    #[arg(long, value_enum, default_value = "akto")]
    pub format: Format,
    /// `akto_account_id` of the records.
    #[arg(long, default_value = "1000000")]
    pub account_id: String,
    /// Body bytes kept per message (and per record payload).
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Maximum concurrent TCP flows.
    #[arg(long, default_value_t = reassembly::config::TcpConfig::default().max_flows)]
    pub max_flows: usize,
    /// No progress bar and no summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Threads that encode records (JSON), besides the one that reads and reassembles; 0
    /// encodes on that thread. Output order is the same whatever the number. Default: one
    /// per CPU besides the reading thread (and one more CPU left to the Kafka sink when it
    /// is on), at most 4.
    #[arg(long)]
    pub workers: Option<usize>,
    /// Read the files through a buffer instead of mapping them into memory (mapping saves
    /// copying every byte). Either way a file that shrinks while it is replayed ends early;
    /// mapped, with an error naming it.
    #[arg(long)]
    pub no_mmap: bool,
    /// Kafka sink.
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// Runs the replay. Files that cannot be read are reported and skipped; the error at the end
/// says how many failed.
pub fn run(args: &ReplayArgs) -> anyhow::Result<()> {
    let mut cfg = reassembly::Config::default();
    cfg.http.max_body_bytes = args.max_body_bytes;
    cfg.tcp.max_flows = args.max_flows;
    let opts = RecordOptions {
        account_id: args.account_id.clone(),
        max_payload_bytes: args.max_body_bytes,
        ..RecordOptions::default()
    };
    let kafka_cfg = args.kafka.resolve(&kafka::config::ProcessEnv).context("Kafka configuration")?;
    let output = match (&args.output, &kafka_cfg) {
        (Some(p), _) => Some(p.clone()),
        (None, None) => Some(PathBuf::from("-")),
        (None, Some(_)) => None,
    };
    let jsonl = match &output {
        Some(path) => Some(
            JsonlSink::open(path, args.format, opts.clone())
                .with_context(|| format!("cannot open output {}", path.display()))?,
        ),
        None => None,
    };
    let kafka_sink: Option<KafkaSink> = kafka_cfg.map(kafka::start).transpose().context("starting the Kafka sink")?;
    let kafka = kafka_sink.as_ref().and_then(KafkaSink::sender);
    let workers = encode::workers(args.workers, kafka.is_some());
    let output =
        Output { jsonl, format: args.format, kafka, opts, jsonl_skipped: 0, kafka_records: 0, kafka_skipped: 0 };
    let mut sink = Encoders::start(output, workers).context("starting the encoder threads")?;
    let mut engine = Engine::new(cfg);
    let mut summary = Summary::default();
    let total_bytes: u64 = args.files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
    let bar = progress(args.quiet, total_bytes);
    let mut out = Vec::new();
    let mut failed = 0;
    for path in &args.files {
        let result = replay_file(path, &mut engine, &mut sink, &mut summary, &mut out, &bar, !args.no_mmap);
        if let Err(e) = result {
            // The reader of our output went away (`| head`): stop, that is not a file error.
            if crate::is_broken_pipe(&e) {
                return Err(e);
            }
            failed += 1;
            bar.suspend(|| eprintln!("akto-tap: {}: {e:#}", path.display()));
        }
    }
    engine.flush_all(&mut out);
    write_all(&mut sink, &mut out, &mut summary)?;
    let mut output = sink.finish()?;
    if let Some(j) = &mut output.jsonl {
        j.flush().context("writing output")?;
    }
    bar.finish_and_clear();
    let (kafka_records, kafka_skipped) = (output.kafka_records, output.kafka_skipped);
    output.kafka = None;
    let kafka_report = kafka_sink.map(KafkaSink::close).transpose().context("Kafka sink")?;
    if !args.quiet {
        eprint!("{}", summary.render(engine.stats(), args.files.len(), failed));
        if let Some(j) = &output.jsonl {
            eprintln!(
                "records written {} · exchanges without a request line (not sent to Akto) {}",
                j.written(),
                output.jsonl_skipped
            );
        }
        if let Some(k) = &kafka_report {
            eprintln!(
                "records sent to Kafka {kafka_records} · exchanges without a request line (not sent) {kafka_skipped}"
            );
            eprintln!("{}", kafka::summary_line(k));
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} files could not be read completely", args.files.len());
    }
    Ok(())
}

fn progress(quiet: bool, total: u64) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() || total < 16 << 20 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}") {
        bar.set_style(style);
    }
    bar
}

/// Asks the CPU to bring `value`'s cache line into the cache (nothing on other architectures).
fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults; the address is that of a live reference.
    #[allow(unsafe_code)]
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(value).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// Counts the exchanges for the summary and hands them to the encoders (`out` is left empty).
fn write_all(
    sink: &mut Encoders,
    out: &mut Vec<reassembly::HttpExchange>,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    summary.count_all(out);
    sink.submit(out)
}

fn replay_file(
    path: &std::path::Path,
    engine: &mut Engine,
    sink: &mut Encoders,
    summary: &mut Summary,
    out: &mut Vec<reassembly::HttpExchange>,
    bar: &ProgressBar,
    mmap: bool,
) -> anyhow::Result<()> {
    let file = std::fs::File::open(path).context("cannot open")?;
    match Source::open(file, mmap, bar.clone()) {
        Source::Mapped(m) => replay_frames(CaptureReader::buffered(m)?, engine, sink, summary, out),
        Source::Read(r) => replay_frames(CaptureReader::new(r)?, engine, sink, summary, out),
    }
}

/// Runs a file's frames through the engine (generic: a mapped file's reading is inlined here).
fn replay_frames<R: std::io::BufRead>(
    mut reader: CaptureReader<R>,
    engine: &mut Engine,
    sink: &mut Encoders,
    summary: &mut Summary,
    out: &mut Vec<reassembly::HttpExchange>,
) -> anyhow::Result<()> {
    let mut unknown_links = 0u64;
    let batch = sink.batch_exchanges();
    loop {
        let frame = match reader.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                // What was read so far still counts; the error names the file.
                write_all(sink, out, summary)?;
                return Err(e.into());
            }
        };
        let Some(link) = LinkType::from_pcap(frame.linktype) else {
            unknown_links += 1;
            summary.unknown_link(frame.linktype);
            continue;
        };
        engine.on_frame(Timestamp(frame.ts_us), link, frame.data, out);
        if out.len() >= batch {
            write_all(sink, out, summary)?;
        }
    }
    write_all(sink, out, summary)?;
    if unknown_links > 0 && unknown_links == reader.packets() {
        anyhow::bail!("unsupported link type: none of its {unknown_links} packets could be decoded");
    }
    Ok(())
}
