//! `akto-tap`: passive HTTP capture for Akto.
//!
//! Commands: `capture` (live traffic → Akto records), `replay` (capture files → Akto records), `synth` (generate a realistic capture),
//! `guard` (MCP guardrails over JSON lines), `ingest` (Akto's data-ingestion API → Kafka).

mod capture;
mod guard;
mod ingest;
mod kafka;
mod output;
mod replay;
mod synth;

use clap::{Parser, Subcommand};

/// Passive HTTP capture and ingestion for Akto.
#[derive(Debug, Parser)]
#[command(name = "akto-tap", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Capture live HTTP traffic (eBPF, or libpcap) and write Akto records (JSONL or Kafka).
    Capture(capture::CaptureArgs),
    /// Reconstruct HTTP exchanges from pcap/pcapng files and write Akto records.
    Replay(replay::ReplayArgs),
    /// Generate a deterministic, realistic HTTP capture (for demos, tests and benchmarks).
    Synth(synth::SynthArgs),
    /// MCP guardrails: scan text or MCP JSON-RPC bodies (JSON lines on stdin).
    Guard(guard::GuardArgs),
    /// Akto's data-ingestion API (`POST /api/ingestData`, `GET /healthCheck`) in front of Kafka.
    Ingest(ingest::IngestArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Capture(a) => capture::run(a),
        Command::Replay(a) => replay::run(a),
        Command::Synth(a) => synth::run(a),
        Command::Guard(a) => guard::run(a),
        Command::Ingest(a) => ingest::run(a),

    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // Output closed by its reader (`akto-tap replay x.pcap | head`): a quiet, normal end.
        Err(e) if is_broken_pipe(&e) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("akto-tap: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Whether an error comes from writing to a closed pipe.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}
