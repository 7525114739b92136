//! `akto-tap capture`: live capture → reassembly shards → records (JSONL and/or Kafka).
//!
//! * [`ifaces`] — which interfaces, and noticing when they come and go.
//! * [`ebpf`] — the default backend: TC classifiers copying TCP packets to a ring buffer.
//! * [`pcap`] — libpcap, chosen with `--backend pcap` or when eBPF is not permitted here.
//! * [`pipeline`] — batching by flow hash to shard threads, each with its own engine.
//!
//! The capture thread (this one) polls the backend, feeds the dispatcher, re-plans interface
//! attachment when netlink says something changed, and prints the status line. It never
//! blocks on anything downstream: see the backpressure notes in [`pipeline`].

pub mod ebpf;
pub mod ifaces;
pub mod pcap;
pub mod pipeline;
mod ring;

use crate::kafka::{self, KafkaArgs, KafkaSink};
use crate::metrics::MetricSet;
use crate::output::jsonl::JsonlSink;
use crate::output::{Format, RecordOptions};
use anyhow::Context;
use ifaces::{Iface, Selection, Watcher};
use pipeline::{Dispatcher, Outputs, Pipeline, PipelineConfig};
use record::Source as RecordSource;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which capture backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// eBPF where the kernel permits it, else libpcap.
    Auto,
    /// eBPF TC classifiers (fails when not permitted).
    Ebpf,
    /// libpcap.
    Pcap,
}

/// Arguments of `akto-tap capture`.
#[derive(Debug, clap::Args)]
pub struct CaptureArgs {
    /// Interfaces to capture on (repeat or comma-separate). `any` = every non-loopback interface
    /// that is up, including ones that appear later; `lo` only when named.
    #[arg(long = "interface", short = 'i', value_delimiter = ',', env = "MIRRORING_INTERFACE", default_value = "any")]
    pub interfaces: Vec<String>,
    /// Capture backend.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendChoice,
    /// Capture only connections with one of these ports (comma-separated); empty = all ports.
    #[arg(long, value_delimiter = ',')]
    pub ports: Vec<u16>,
    /// Never capture these ports (SSH by default). The Kafka brokers' endpoints are always
    /// excluded, so the agent does not capture its own output.
    #[arg(long = "deny-ports", value_delimiter = ',', default_value = "22")]
    pub deny_ports: Vec<u16>,
    /// Where to write the records: a path, or `-` for stdout. Default: stdout, or nothing when
    /// the Kafka sink is on.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Line format of the output.
    #[arg(long, value_enum, default_value = "akto")]
    pub format: Format,
    /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long)]
    pub duration: Option<f64>,
    /// `akto_account_id` of the records.
    #[arg(long, default_value = "1000000")]
    pub account_id: String,
    /// `daemonset_id` of the records (identifies this agent instance).
    #[arg(long, env = "AKTO_TAP_DAEMONSET_ID")]
    pub daemonset_id: Option<String>,
    /// Body bytes kept per message (and per record payload).
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Maximum concurrent TCP flows per worker thread.
    #[arg(long, default_value_t = reassembly::config::TcpConfig::default().max_flows)]
    pub max_flows: usize,
    /// Reassembly worker threads (0 = one per CPU, at most 4).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Packet batches queued per worker before the capture thread drops (and counts).
    #[arg(long, default_value_t = 256)]
    pub queue_batches: usize,
    /// eBPF: packet ring per CPU, KiB (a power of two, at least 512). The TC programs write
    /// each packet into the ring of the CPU they run on, read by the agent through mmap every
    /// `--poll-ms` (every 1 ms while a ring is more than an eighth full); a full ring drops the
    /// packet from the capture, counted as `drops_total{stage="kernel",cause="ring_full"}`.
    /// Kernel memory: CPUs x this x 1.13 (each 512 KiB has 66 KiB of slack for a record that
    /// starts near its end). Default: 4096, less on hosts with more than 16 CPUs, so that the
    /// rings of all CPUs stay within 64 MiB (at least 512 each: 72 MiB on 128 CPUs).
    // 4 MiB: one response of a few hundred KB on loopback arrives as a burst of 64 KiB GSO
    // packets within a millisecond, before any poll; 512 KiB dropped such bursts (ring_full in
    // the capture tests). Smaller rings are cheaper for the server while they fit: a 512 KiB
    // ring stays in the capturing core's L2 cache, and cost a 4 KB ping-pong ~0.2 us less per
    // request than 4 MiB, whose lines are cold when the program writes them again
    // (scripts/bench-packet-cost.sh, README).
    #[arg(long)]
    pub ring_kib: Option<u32>,
    /// eBPF: ring buffer for packets longer than 65 KiB (BIG TCP super-packets), MiB (a power of two).
    #[arg(long, default_value_t = 16)]
    pub ring_mib: u32,
    /// How long the capture thread waits for packets before handing what it has to the workers,
    /// milliseconds. Larger values mean fewer wake-ups (less CPU) and more latency.
    #[arg(long, default_value_t = 5)]
    pub poll_ms: u16,
    /// eBPF: wake the capture thread before its timer when the data waiting in the ring crosses this much, KiB (once per crossing).
    // 4 MiB, a quarter of the default ring: at the rates one server sends, the `--poll-ms` timer
    // drains the ring first and no wake-up is sent (each one is an interrupt on the capturing
    // CPU, a VM exit on virtual machines: 256 KiB cost a saturated loopback server 0.2-0.3 µs
    // per request, scripts/bench-packet-cost.sh); a burst past it still wakes the reader with
    // three quarters of the ring to spare.
    #[arg(long, default_value_t = 4096)]
    pub wakeup_kib: u32,
    /// libpcap: bytes captured per packet.
    #[arg(long, default_value_t = 262_144)]
    pub snaplen: u32,
    /// libpcap: kernel buffer per interface, MiB.
    #[arg(long, default_value_t = 64)]
    pub pcap_buffer_mib: u32,
    /// libpcap: promiscuous mode (for mirror/SPAN ports).
    #[arg(long)]
    pub promisc: bool,
    /// How often interfaces are rescanned even without a netlink event, seconds.
    #[arg(long, default_value_t = 5.0)]
    pub rescan_secs: f64,
    /// Write the final counters as JSON to this file.
    #[arg(long)]
    pub stats_json: Option<PathBuf>,
    /// No status line and no summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Configuration file (TOML) with these settings; flags given here win over it.
    #[arg(long, env = "AKTO_TAP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Serve Prometheus metrics, /healthz and /readyz on this address (e.g. 0.0.0.0:9464).
    #[arg(long, env = "AKTO_TAP_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Logging.
    #[command(flatten)]
    pub log: crate::logging::LogArgs,
    /// Kafka sink.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// The configuration file and its text when it has a `[filter]` section.
    #[arg(skip)]
    pub filter_source: Option<(PathBuf, String)>,
    /// Guardrails on MCP traffic.
    #[command(flatten)]
    pub guard: crate::threats::GuardArgs,
    /// TLS plaintext through OpenSSL uprobes.
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
    /// Workload attribution (process, Kubernetes pod).
    #[command(flatten)]
    pub workload: crate::workload::WorkloadArgs,
}

/// The filter rules: the `[filter]` section of the configuration file (unknown keys refused
/// with their line), then Akto's environment variables for what the file leaves unset.
pub fn filter_config(source: Option<(&PathBuf, &str)>) -> anyhow::Result<crate::filter::FilterConfig> {
    #[derive(serde::Deserialize)]
    struct FilterOnly {
        #[serde(default)]
        filter: Option<crate::filter::FilterConfig>,
        #[serde(flatten)]
        _rest: toml::Table,
    }
    let mut cfg = match source {
        Some((path, text)) => {
            let parsed: FilterOnly =
                toml::from_str(text).map_err(|e| anyhow::anyhow!("{}: [filter]: {e}", path.display()))?;
            parsed.filter.unwrap_or_default()
        }
        None => crate::filter::FilterConfig::default(),
    };
    cfg.apply_env(&|k| std::env::var(k).ok())?;
    // Rules are compiled once here so a bad pattern stops start-up (each shard compiles its own).
    crate::filter::Filter::new(cfg.clone())?;
    Ok(cfg)
}

/// Counters read from the kernel side of a backend.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct KernelStats {
    /// Packets delivered to the agent.
    pub packets: u64,
    /// Bytes delivered (0 when the backend does not count bytes).
    pub bytes: u64,
    /// Packets lost before reaching the agent, by cause.
    pub drops: Vec<(&'static str, u64)>,
    /// Other counters (skipped by filters, truncated).
    pub other: Vec<(&'static str, u64)>,
    /// Early wake-ups of the reader the kernel side sent (eBPF: the ring's backlog crossed
    /// `--wakeup-kib`; each costs the capturing CPU an interrupt). 0 for libpcap.
    pub wakeups: u64,
}

impl KernelStats {
    fn dropped(&self) -> u64 {
        self.drops.iter().map(|(_, n)| n).sum()
    }
}

/// A capture backend.
pub trait Source {
    /// `ebpf` or `pcap`.
    fn name(&self) -> &'static str;
    /// Starts capturing on an interface.
    fn attach(&mut self, iface: &Iface) -> anyhow::Result<()>;
    /// Stops capturing on an interface (gone or no longer wanted).
    fn detach(&mut self, name: &str);
    /// Attached interfaces, name → index.
    fn attached(&self) -> BTreeMap<String, u32>;
    /// Waits up to `timeout` for packets and hands what arrived to the dispatcher.
    fn poll(&mut self, timeout: Duration, out: &mut Dispatcher) -> anyhow::Result<()>;
    /// Kernel-side counters.
    fn kernel(&self) -> KernelStats;
}

/// Resolves the Kafka brokers so the capture can exclude the agent's own traffic.
fn broker_endpoints(brokers: &str) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for b in brokers.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        let b = b.rsplit_once("://").map_or(b, |(_, rest)| rest);
        if let Ok(addrs) = b.to_socket_addrs() {
            out.extend(addrs);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Picks and opens the backend. `auto` tries eBPF and falls back to libpcap with the reason.
fn open_backend(
    args: &CaptureArgs,
    deny_endpoints: &[SocketAddr],
    probe_iface: Option<&Iface>,
) -> anyhow::Result<Box<dyn Source>> {
    let pcap_cfg = pcap::PcapConfig {
        snaplen: args.snaplen,
        buffer_bytes: args.pcap_buffer_mib.saturating_mul(1 << 20),
        promisc: args.promisc,
        timeout_ms: args.poll_ms.max(1),
        ports: args.ports.clone(),
        deny_ports: args.deny_ports.clone(),
        deny_endpoints: deny_endpoints.to_vec(),
    };
    if args.backend == BackendChoice::Pcap {
        return Ok(Box::new(pcap::PcapSource::new(pcap_cfg)));
    }
    if !args.ring_mib.is_power_of_two() {
        anyhow::bail!("--ring-mib must be a power of two (got {})", args.ring_mib);
    }
    let chunk_kib = (akto_tap_ebpf_common::ring::CHUNK_BYTES >> 10) as u32;
    let ring_kib = match args.ring_kib {
        Some(kib) if !kib.is_power_of_two() || kib < chunk_kib || kib > (1 << 20) => {
            anyhow::bail!("--ring-kib must be a power of two from {chunk_kib} to 1048576 (got {kib})")
        }
        Some(kib) => kib,
        // The CPU count the maps are sized by; when it cannot be read, loading fails later
        // with that error.
        None => default_ring_kib(aya::util::nr_cpus().unwrap_or(1), chunk_kib),
    };
    let ebpf_cfg = ebpf::EbpfConfig {
        ring_bytes: args.ring_mib.saturating_mul(1 << 20),
        ring_chunks: ring_kib / chunk_kib,
        wakeup_bytes: args.wakeup_kib.saturating_mul(1 << 10),
        ports: args.ports.clone(),
        deny_ports: args.deny_ports.clone(),
        deny_endpoints: deny_endpoints.to_vec(),
    };
    // The probe: load and verify the programs, then attach to one interface and detach, so a
    // kernel that loads but refuses attachment is found now rather than per interface.
    let probe = ebpf::EbpfSource::open(&ebpf_cfg).map_err(anyhow::Error::from).and_then(|mut src| {
        if let Some(i) = probe_iface {
            src.attach(i)?;
            src.detach(&i.name);
        }
        Ok(src)
    });
    match (probe, args.backend) {
        (Ok(src), _) => Ok(Box::new(src)),
        (Err(e), BackendChoice::Ebpf) => Err(e.context("eBPF capture is not available here")),
        (Err(e), _) => {
            tracing::warn!(reason = %format!("{e:#}"), "eBPF not available here; falling back to libpcap");
            Ok(Box::new(pcap::PcapSource::new(pcap_cfg)))
        }
    }
}

/// Runs the capture until the duration ends or SIGINT/SIGTERM.
pub fn run(args: &CaptureArgs) -> anyhow::Result<()> {
    crate::logging::init(&args.log)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("installing signal handlers")?;
    }
    let selection = Selection::from_args(&args.interfaces);
    let all = ifaces::list().context("listing interfaces (/sys/class/net)")?;
    if let Selection::Named(names) = &selection {
        let missing: Vec<&String> = names.iter().filter(|n| !all.iter().any(|i| &i.name == *n)).collect();
        if missing.len() == names.len() {
            anyhow::bail!("no such interface: {}", names.join(", "));
        }
    }
    let wanted = selection.pick(&all);

    let kafka_cfg = args.kafka.resolve(&kafka::config::ProcessEnv).context("Kafka configuration")?;
    let mut deny_endpoints = kafka_cfg.as_ref().map(|k| broker_endpoints(&k.brokers)).unwrap_or_default();
    deny_endpoints.extend(args.guard.report_endpoints());
    let guard_cfg = args.guard.resolve(kafka_cfg.as_ref()).context("guardrails configuration")?;
    let mut source = open_backend(args, &deny_endpoints, wanted.first())?;

    let workload = match args.workload.resolve(&|k| std::env::var(k).ok()).context("workload attribution")? {
        Some(cfg) => crate::workload::Attributor::start(cfg).context("starting workload attribution")?,
        None => crate::workload::Attributor::disabled(),
    };
    let record = RecordOptions {
        account_id: args.account_id.clone(),
        source: RecordSource::Mirroring,
        max_payload_bytes: args.max_body_bytes,
        local_addrs: ifaces::local_addrs(),
        daemonset_id: args.daemonset_id.clone(),
        workload: workload.clone(),
        ..RecordOptions::default()
    };
    let output = match (&args.output, &kafka_cfg) {
        (Some(p), _) => Some(p.clone()),
        (None, None) => Some(PathBuf::from("-")),
        (None, Some(_)) => None,
    };
    let jsonl = match &output {
        Some(path) => Some((
            Arc::new(Mutex::new(
                JsonlSink::open(path, args.format, record.clone())
                    .with_context(|| format!("cannot open output {}", path.display()))?,
            )),
            args.format,
        )),
        None => None,
    };
    let kafka_sink: Option<KafkaSink> = kafka_cfg.map(kafka::start).transpose().context("starting the Kafka sink")?;
    let guard = guard_cfg
        .map(|g| crate::threats::GuardStage::start(g, &record))
        .transpose()
        .context("starting the guardrails stage")?;
    let outputs = Outputs {
        jsonl,
        kafka: kafka_sink.as_ref().and_then(KafkaSink::sender),
        guard: guard.as_ref().and_then(|g| g.sender()),
    };
    let mut engine = reassembly::Config::default();
    engine.http.max_body_bytes = args.max_body_bytes;
    engine.tcp.max_flows = args.max_flows;
    let shards = if args.workers == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get()).min(4)
    } else {
        args.workers
    };
    let filter = filter_config(args.filter_source.as_ref().map(|(p, t)| (p, t.as_str())))?;
    let cfg = PipelineConfig { shards, queue_batches: args.queue_batches, engine, record, filter };
    let (pipeline, mut dispatcher) = Pipeline::start(&cfg, outputs).context("starting worker threads")?;
    let tls = crate::tls::TlsCapture::start(
        &args.tls,
        &args.ports,
        crate::tls::Timing {
            poll: Duration::from_millis(u64::from(args.poll_ms.max(1))),
            wakeup_bytes: u64::from(args.wakeup_kib) * 1024,
        },
        workload.clone(),
        dispatcher.for_tls(),
    )?;

    let mut attach_errors: BTreeMap<String, String> = BTreeMap::new();
    let sync = |source: &mut Box<dyn Source>, wanted: &[Iface], errors: &mut BTreeMap<String, String>| {
        let plan = ifaces::plan(&source.attached(), wanted);
        for name in &plan.detach {
            source.detach(name);
            tracing::info!(interface = %name, "detached from {name}");
        }
        for i in &plan.attach {
            match source.attach(i) {
                Ok(()) => {
                    errors.remove(&i.name);
                    tracing::info!(backend = source.name(), interface = %i.name, index = i.index, "{} attached to {}", source.name(), i.name);
                }
                // Said once per interface, not at every rescan.
                Err(e) => {
                    let msg = format!("{e:#}");
                    if errors.insert(i.name.clone(), msg.clone()).as_deref() != Some(msg.as_str()) {
                        tracing::warn!(interface = %i.name, error = %msg, "cannot capture on {}", i.name);
                    }
                }
            }
        }
    };
    sync(&mut source, &wanted, &mut attach_errors);
    if source.attached().is_empty() && matches!(selection, Selection::Named(_)) {
        anyhow::bail!("could not attach to any of the named interfaces");
    }

    let health = crate::metrics::server::Health::new(Some(Duration::from_secs(10)));
    let kernel_now = Arc::new(Mutex::new((source.name(), source.kernel(), source.attached().len())));
    let _metrics = match args.metrics_listen {
        Some(addr) => {
            let render = render_metrics(
                pipeline.observer().clone(),
                Arc::clone(&kernel_now),
                kafka_sink.as_ref().map(KafkaSink::stats),
                guard.as_ref().map(crate::threats::GuardStage::observer),
                tls.as_ref().map(crate::tls::TlsCapture::observer),
                workload.clone(),
            );
            Some(crate::metrics::server::MetricsServer::start(addr, render, Arc::clone(&health))?)
        }
        None => None,
    };
    health.beat();
    health.set_ready(Ok(()));
    let mut kernel_refreshed = Instant::now();

    let mut watcher = Watcher::new(Duration::from_secs_f64(args.rescan_secs.max(0.1)));
    let deadline = args.duration.map(|d| Instant::now() + Duration::from_secs_f64(d.max(0.0)));
    let status_on = !args.quiet && std::io::stderr().is_terminal();
    let mut status = Status::new();
    let mut result = Ok(());
    while !stop.load(Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        if let Err(e) = source.poll(Duration::from_millis(u64::from(args.poll_ms.max(1))), &mut dispatcher) {
            result = Err(e.context("capture"));
            break;
        }
        dispatcher.flush();
        if watcher.changed() {
            match ifaces::list() {
                Ok(all) => sync(&mut source, &selection.pick(&all), &mut attach_errors),
                Err(e) => tracing::warn!(error = %e, "rescanning interfaces failed"),
            }
        }
        if let Some(e) = pipeline.output_error() {
            result = Err(anyhow::anyhow!(e));
            break;
        }
        health.beat();
        if kernel_refreshed.elapsed() >= Duration::from_millis(500) {
            kernel_refreshed = Instant::now();
            if let Ok(mut k) = kernel_now.lock() {
                *k = (source.name(), source.kernel(), source.attached().len());
            }
        }
        if status_on {
            status.maybe_print(&*source, pipeline.observer(), kafka_sink.as_ref());
        }
    }
    health.set_ready(Err("shutting down".into()));
    // Drain what the kernel already queued, then stop the shards (they flush open flows).
    let _ = source.poll(Duration::ZERO, &mut dispatcher);
    dispatcher.flush();
    let kernel = source.kernel();
    let backend = source.name();
    let interfaces: Vec<String> = source.attached().into_keys().collect();
    drop(source);
    drop(dispatcher);
    let tls_report = tls.map(crate::tls::TlsCapture::finish);
    let observer = pipeline.observer().clone();
    let engine_stats = pipeline.finish();
    if status_on {
        eprintln!();
    }
    let guard_report = guard.map(crate::threats::GuardStage::finish);
    let kafka_report = kafka_sink.map(KafkaSink::close).transpose().context("Kafka sink")?;
    let summary = Summary {
        backend,
        interfaces,
        kernel,
        pipeline: snapshot(observer.stats()),
        engine: engine_stats,
        filter: observer.filter_stats(),
        kafka: kafka_report,
        guardrails: guard_report,
        tls: tls_report,
    };
    if let Some(path) = &args.stats_json {
        let text = serde_json::to_string_pretty(&summary.to_json())?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    if !args.quiet {
        eprint!("{}", summary.render());
    }
    result
}

/// Pipeline counters at one moment.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PipelineSnapshot {
    packets: u64,
    bytes: u64,
    queue_full_packets: u64,
    queue_full_bytes: u64,
    exchanges: u64,
    lines: u64,
    no_request_line: u64,
    kafka_records: u64,
    output_errors: u64,
}

fn snapshot(s: &pipeline::PipelineStats) -> PipelineSnapshot {
    PipelineSnapshot {
        packets: s.packets.load(Relaxed),
        bytes: s.bytes.load(Relaxed),
        queue_full_packets: s.queue_full_packets.load(Relaxed),
        queue_full_bytes: s.queue_full_bytes.load(Relaxed),
        exchanges: s.exchanges.load(Relaxed),
        lines: s.lines.load(Relaxed),
        no_request_line: s.no_request_line.load(Relaxed),
        kafka_records: s.kafka_records.load(Relaxed),
        output_errors: s.output_errors.load(Relaxed),
    }
}

struct Summary {
    backend: &'static str,
    interfaces: Vec<String>,
    kernel: KernelStats,
    pipeline: PipelineSnapshot,
    engine: reassembly::Stats,
    filter: crate::filter::FilterStats,
    kafka: Option<kafka::Snapshot>,
    guardrails: Option<crate::threats::GuardSnapshot>,
    tls: Option<crate::tls::TlsSnapshot>,
}

impl Summary {
    fn to_json(&self) -> serde_json::Value {
        let pairs = |v: &[(&'static str, u64)]| -> serde_json::Map<String, serde_json::Value> {
            v.iter().map(|(k, n)| ((*k).to_string(), serde_json::Value::from(*n))).collect()
        };
        serde_json::json!({
            "backend": self.backend,
            "interfaces": self.interfaces,
            "kernel": {
                "packets": self.kernel.packets,
                "bytes": self.kernel.bytes,
                "drops": pairs(&self.kernel.drops),
                "other": pairs(&self.kernel.other),
                "wakeups": self.kernel.wakeups,
            },
            "pipeline": self.pipeline,
            "engine": self.engine,
            "filter": self.filter.fields().into_iter().map(|(k, _, v)| (k.to_string(), serde_json::Value::from(v))).collect::<serde_json::Map<_, _>>(),
            "kafka": self.kafka,
            "guardrails": self.guardrails,
            "tls": self.tls.as_ref().map(crate::tls::TlsSnapshot::to_json),
        })
    }

    fn render(&self) -> String {
        let k = &self.kernel;
        let p = &self.pipeline;
        let mut s = format!(
            "capture ({}) on {}: kernel packets {} · kernel drops {}",
            self.backend,
            if self.interfaces.is_empty() { "-".to_string() } else { self.interfaces.join(",") },
            k.packets,
            k.dropped()
        );
        for (name, n) in k.drops.iter().chain(&k.other).chain([&("wakeups", k.wakeups)]).filter(|(_, n)| *n > 0) {
            s.push_str(&format!(" · {name} {n}"));
        }
        s.push_str(&format!(
            "\npipeline: packets {} · queue-full drops {} packets · exchanges {} · records written {} · without request line {} · to Kafka {}\n",
            p.packets, p.queue_full_packets, p.exchanges, p.lines, p.no_request_line, p.kafka_records
        ));
        let e = &self.engine;
        s.push_str(&format!(
            "engine: flows {} · gaps {} · flows evicted at the cap {} · body bytes over budget {}\n",
            e.flows_created, e.gaps, e.flows_evicted_cap, e.body_bytes_over_budget
        ));
        let dropped: Vec<String> = self
            .filter
            .dropped()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| format!("{} {n}", r.name()))
            .collect();
        if !dropped.is_empty() || self.filter.bodies_stripped > 0 {
            s.push_str(&format!(
                "filter: dropped {} · bodies stripped (sampling) {}\n",
                if dropped.is_empty() { "0".into() } else { dropped.join(", ") },
                self.filter.bodies_stripped
            ));
        }
        if let Some(kr) = &self.kafka {
            s.push_str(&kafka::summary_line(kr));
            s.push('\n');
        }
        if let Some(g) = &self.guardrails {
            s.push_str(&g.summary_line());
            s.push('\n');
        }
        if let Some(t) = &self.tls {
            s.push_str(&t.summary_line());
            s.push('\n');
        }
        s
    }
}

/// The periodic one-line status on a terminal.
struct Status {
    last: Instant,
    last_exchanges: u64,
}

impl Status {
    fn new() -> Status {
        Status { last: Instant::now(), last_exchanges: 0 }
    }

    fn maybe_print(&mut self, source: &dyn Source, pipeline: &pipeline::Observer, kafka: Option<&KafkaSink>) {
        let dt = self.last.elapsed();
        if dt < Duration::from_secs(1) {
            return;
        }
        let p = snapshot(pipeline.stats());
        let e = pipeline.engine_stats();
        let k = source.kernel();
        let rate = (p.exchanges - self.last_exchanges) as f64 / dt.as_secs_f64();
        let mut line = format!(
            "\r\x1b[K{} on {} if · exchanges {} ({rate:.0}/s) · flows {} · kernel drops {} · queue drops {}",
            source.name(),
            source.attached().len(),
            p.exchanges,
            e.flows_now,
            k.dropped(),
            p.queue_full_packets,
        );
        if let Some(ks) = kafka {
            let s = ks.stats().snapshot();
            line.push_str(&format!(" · kafka delivered {} spooled {}", s.delivered, s.spool_bytes));
        }
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
        let _ = err.flush();
        self.last = Instant::now();
        self.last_exchanges = p.exchanges;
    }
}

/// The metrics of a running capture (names documented in the README).
fn render_metrics(
    observer: pipeline::Observer,
    kernel: Arc<Mutex<(&'static str, KernelStats, usize)>>,
    kafka: Option<Arc<crate::kafka::sink::SinkStats>>,
    guard: Option<crate::threats::GuardObserver>,
    tls: Option<Arc<Mutex<crate::tls::TlsSnapshot>>>,
    workload: crate::workload::Attributor,
) -> crate::metrics::server::Render {
    Arc::new(move || {
        let mut m = MetricSet::new();
        if let Ok(k) = kernel.lock() {
            let (backend, ks, attached) = &*k;
            m.gauge(
                "up",
                "1 while the agent runs; the label says which capture backend.",
                &[("backend", backend)],
                1.0,
            );
            m.gauge("interfaces_attached", "Interfaces the capture is attached to.", &[], *attached as f64);
            m.counter("kernel_packets_total", "Packets the kernel side delivered to the agent.", &[], ks.packets);
            m.counter("kernel_bytes_total", "Packet bytes the kernel side delivered (eBPF only).", &[], ks.bytes);
            for (cause, n) in &ks.drops {
                m.counter(
                    "drops_total",
                    "Packets lost, by stage and cause.",
                    &[("stage", "kernel"), ("cause", cause)],
                    *n,
                );
            }
            for (reason, n) in &ks.other {
                m.counter(
                    "kernel_skipped_total",
                    "Packets the kernel filter skipped or cut, by reason.",
                    &[("reason", reason)],
                    *n,
                );
            }
            m.counter(
                "kernel_wakeups_total",
                "Early wake-ups of the capture thread sent by the kernel side (eBPF: ring backlog past --wakeup-kib).",
                &[],
                ks.wakeups,
            );
        }
        let p = snapshot(observer.stats());
        m.counter(
            "drops_total",
            "Packets lost, by stage and cause.",
            &[("stage", "queue"), ("cause", "queue_full")],
            p.queue_full_packets,
        );
        m.counter("queue_dropped_bytes_total", "Bytes lost because a worker queue was full.", &[], p.queue_full_bytes);
        m.counter("packets_total", "Packets handed to the reassembly workers.", &[], p.packets);
        m.counter("bytes_total", "Packet bytes handed to the reassembly workers.", &[], p.bytes);
        m.counter("exchanges_total", "HTTP exchanges reconstructed.", &[], p.exchanges);
        m.counter("records_written_total", "Records written to the JSONL output.", &[], p.lines);
        m.counter("records_to_kafka_total", "Records handed to the Kafka sink.", &[], p.kafka_records);
        m.counter(
            "exchanges_without_request_total",
            "Exchanges without a request line (not sent to Akto).",
            &[],
            p.no_request_line,
        );
        m.counter("output_errors_total", "Errors writing records.", &[], p.output_errors);
        for (i, d) in observer.queue_depths().iter().enumerate() {
            m.gauge(
                "queue_depth",
                "Packet batches waiting in each worker's queue.",
                &[("worker", &i.to_string())],
                *d as f64,
            );
        }
        crate::metrics::add_engine(&mut m, &observer.engine_stats());
        let f = observer.filter_stats();
        for (reason, n) in f.dropped() {
            m.counter("filter_dropped_total", "Exchanges not sent, by filter rule.", &[("reason", reason.name())], n);
        }
        for (name, help, v) in f.fields() {
            if name.starts_with("dropped_") {
                continue;
            }
            match name.strip_suffix("_now") {
                Some(base) => m.gauge(&format!("filter_{base}"), help, &[], v as f64),
                None => m.counter(&format!("filter_{name}_total"), help, &[], v),
            }
        }
        if let Some(k) = &kafka {
            crate::metrics::add_kafka(&mut m, &k.snapshot());
        }
        if let Some(g) = &guard {
            g.snapshot().add_metrics(&mut m);
        }
        if let Some(t) = tls.as_ref().and_then(|t| t.lock().ok().map(|t| t.clone())) {
            t.add_metrics(&mut m);
        }
        if workload.enabled() {
            workload.stats().add_metrics(&mut m);
        }
        m.render()
    })
}

/// Per-CPU packet ring when `--ring-kib` is not given: 4 MiB (one burst of large responses on a
/// fast link fits between two polls), but all CPUs' rings within 64 MiB, since BPF maps count
/// against the agent's memory limit (a 1 GiB DaemonSet limit on a 128-CPU node would otherwise
/// lose ~580 MiB to rings); never under one chunk (`min_kib`).
fn default_ring_kib(cpus: usize, min_kib: u32) -> u32 {
    const BUDGET_KIB: u32 = 64 << 10;
    const MAX_KIB: u32 = 4 << 10;
    let share = BUDGET_KIB / u32::try_from(cpus.max(1)).unwrap_or(u32::MAX);
    // The largest power of two within the share (`share` may be 0 on huge hosts).
    let pow2 = if share == 0 { 0 } else { 1 << share.ilog2() };
    pow2.clamp(min_kib, MAX_KIB)
}

#[cfg(test)]
mod tests {
    use super::default_ring_kib;

    #[test]
    fn default_ring_is_4_mib_up_to_16_cpus_then_shares_64_mib_down_to_one_chunk() {
        for cpus in [0, 1, 2, 8, 16] {
            assert_eq!(default_ring_kib(cpus, 512), 4096, "{cpus} CPUs");
        }
        assert_eq!(default_ring_kib(17, 512), 2048);
        assert_eq!(default_ring_kib(32, 512), 2048);
        assert_eq!(default_ring_kib(64, 512), 1024);
        assert_eq!(default_ring_kib(96, 512), 512);
        assert_eq!(default_ring_kib(128, 512), 512);
        assert_eq!(default_ring_kib(100_000, 512), 512);
        for cpus in 1..=512 {
            let kib = default_ring_kib(cpus, 512);
            assert!(kib.is_power_of_two() && (512..=4096).contains(&kib));
            assert!(cpus > 128 || cpus as u64 * u64::from(kib) <= 64 << 10, "{cpus} CPUs: {kib} KiB");
        }
    }
}
