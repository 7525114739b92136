//! `akto-tap`: passive HTTP capture for Akto.
//!
//! Commands: `capture` (live traffic → Akto records), `replay` (capture files → Akto records), `synth` (generate a realistic capture),
//! `guard` (MCP guardrails over JSON lines), `ingest` (Akto's data-ingestion API → Kafka).

mod alloc;
mod capture;
mod config;
mod filter;
mod guard;
mod ingest;
mod kafka;
mod logging;
mod metrics;
mod output;
mod replay;
mod synth;
mod threats;
mod tls;
mod workload;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// mimalloc instead of glibc's malloc: every exchange allocates its heads, header fields and
/// bodies and frees them once written, from several threads (capture shards, Kafka, ingest).
/// glibc's allocator spent ~14 % of a replay's instructions in malloc/free (callgrind); mimalloc's
/// per-thread free lists cut that to a fraction (figures in the README's replay benchmark).
#[global_allocator]
static GLOBAL: alloc::MiMalloc = alloc::MiMalloc;
use std::ffi::OsString;
use std::path::PathBuf;

/// Passive HTTP capture and ingestion for Akto.
#[derive(Debug, Parser)]
#[command(name = "akto-tap", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[expect(clippy::large_enum_variant, reason = "parsed once at start-up; boxing would only obscure the clap derive")]
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
    /// Configuration files: check one, or print the reference of every key.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validates a configuration file (unknown keys and bad values are reported with their line).
    Check {
        /// The file.
        file: PathBuf,
        /// The command it configures (default: `ingest` when the file has an [ingest] section).
        #[arg(long)]
        command: Option<String>,
    },
    /// Prints the reference of every configuration key (markdown), or updates it in a file
    /// between its markers.
    Reference {
        /// Rewrite the reference inside this file (README.md) instead of printing it.
        #[arg(long)]
        update: Option<PathBuf>,
    },
}

/// Parses the command line, merging `--config FILE` underneath it: flags given on the command
/// line win over the file, the file over environment variables and defaults.
fn load_cli() -> anyhow::Result<Cli> {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let matches = Cli::command().get_matches_from(&argv);
    if let Some((name, sub)) = matches.subcommand() {
        if let Some(path) = sub.try_get_one::<PathBuf>("config").ok().flatten() {
            let text = std::fs::read_to_string(path)
                .map_err(|e| config::ConfigError::Read { path: path.clone(), source: e })?;
            let root = Cli::command();
            let cmd = root.find_subcommand(name).cloned().ok_or_else(|| anyhow::anyhow!("no command {name}"))?;
            let file = config::parse(path, &text, &cmd)?;
            let mut merged: Vec<OsString> = argv.iter().take(2).cloned().collect();
            merged.extend(config::args_from_file(&file, sub));
            merged.extend(argv.iter().skip(2).cloned());
            let mut cli =
                Cli::try_parse_from(merged).map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.render()))?;
            if let (Command::Capture(a), true) = (&mut cli.command, file.filter.is_some()) {
                a.filter_source = Some((path.clone(), text));
            }
            return Ok(cli);
        }
    }
    Ok(Cli::from_arg_matches(&matches)?)
}

fn config_command(c: &ConfigCommand) -> anyhow::Result<()> {
    match c {
        ConfigCommand::Check { file, command } => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| config::ConfigError::Read { path: file.clone(), source: e })?;
            let name = match command {
                Some(n) if config::COMMANDS.contains(&n.as_str()) => n.clone(),
                Some(n) => anyhow::bail!("--command must be one of {}, not {n}", config::COMMANDS.join(", ")),
                None if text.lines().any(|l| l.trim() == "[ingest]") => "ingest".into(),
                None => "capture".into(),
            };
            let root = Cli::command();
            let cmd = root.find_subcommand(&name).cloned().ok_or_else(|| anyhow::anyhow!("no command {name}"))?;
            let parsed = config::parse(file, &text, &cmd)?;
            if parsed.filter.is_some() {
                capture::filter_config(Some((file, &text)))?;
            }
            let rules = if parsed.filter.is_some() { ", filter rules" } else { "" };
            println!("{}: OK for `akto-tap {name}` ({} settings{rules})", file.display(), parsed.entries.len());
            Ok(())
        }
        ConfigCommand::Reference { update } => {
            let reference = config::reference(&Cli::command());
            match update {
                None => print!("{reference}"),
                Some(path) => {
                    let doc = std::fs::read_to_string(path)?;
                    let new = config::splice(&doc, &reference).ok_or_else(|| {
                        anyhow::anyhow!(
                            "{}: markers not found ({} … {})",
                            path.display(),
                            config::README_BEGIN,
                            config::README_END
                        )
                    })?;
                    std::fs::write(path, new)?;
                }
            }
            Ok(())
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = match load_cli() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("akto-tap: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match &cli.command {
        Command::Capture(a) => capture::run(a),
        Command::Replay(a) => replay::run(a),
        Command::Synth(a) => synth::run(a),
        Command::Guard(a) => guard::run(a),
        Command::Ingest(a) => ingest::run(a),
        Command::Config(c) => config_command(c),
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
