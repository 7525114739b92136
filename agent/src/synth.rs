//! `akto-tap synth`: writes a deterministic synthetic capture of HTTP API and MCP traffic (see
//! the `trafficgen` crate) to replay, benchmark or demo with. The same options give the same
//! file, byte for byte.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use trafficgen::{generate, GenConfig, GenSummary};

/// Write a deterministic synthetic capture of HTTP API and MCP traffic (pcap).
// Defaults are read from `trafficgen::GenConfig::default()`, so they live in one place.
#[derive(clap::Args, Debug)]
pub struct SynthArgs {
    /// Where to write the pcap file; `-` writes to standard output.
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: PathBuf,

    /// Approximate size of the capture: bytes, or a number with a unit. KB, MB, GB are powers
    /// of 1000; K, M, G and KiB, MiB, GiB are powers of 1024 (e.g. 64MB, 1.5GB, 1GiB).
    #[arg(long, value_name = "SIZE", default_value = "16MB", value_parser = parse_size)]
    pub size: u64,

    /// Seed: the same seed and options give the same bytes.
    #[arg(long, default_value_t = GenConfig::default().seed)]
    pub seed: u64,

    /// Probability that a data segment is lost and arrives later as a retransmission.
    #[arg(long, value_name = "P", default_value_t = GenConfig::default().loss_probability, value_parser = parse_probability)]
    pub loss: f64,

    /// Probability that a data segment is swapped with the next one.
    #[arg(long, value_name = "P", default_value_t = GenConfig::default().reorder_probability, value_parser = parse_probability)]
    pub reorder: f64,

    /// Probability that a data segment is sent twice.
    #[arg(long, value_name = "P", default_value_t = GenConfig::default().duplicate_probability, value_parser = parse_probability)]
    pub duplicate: f64,

    /// Probability that a data segment is missing from the capture for ever.
    #[arg(long, value_name = "P", default_value_t = GenConfig::default().gap_probability, value_parser = parse_probability)]
    pub gap: f64,

    /// Fraction of connections over IPv6.
    #[arg(long, value_name = "F", default_value_t = GenConfig::default().ipv6_fraction, value_parser = parse_probability)]
    pub ipv6: f64,

    /// Fraction of connections that are MCP sessions (POST /mcp, JSON-RPC).
    #[arg(long, value_name = "F", default_value_t = GenConfig::default().mcp_fraction, value_parser = parse_probability)]
    pub mcp: f64,

    /// Number of client hosts.
    #[arg(long, value_name = "N", default_value_t = GenConfig::default().clients)]
    pub clients: u32,

    /// Number of servers.
    #[arg(long, value_name = "N", default_value_t = GenConfig::default().servers)]
    pub servers: u32,
}

impl SynthArgs {
    /// The generator configuration these options describe.
    pub fn config(&self) -> GenConfig {
        GenConfig {
            seed: self.seed,
            target_bytes: self.size,
            loss_probability: self.loss,
            reorder_probability: self.reorder,
            duplicate_probability: self.duplicate,
            gap_probability: self.gap,
            ipv6_fraction: self.ipv6,
            mcp_fraction: self.mcp,
            clients: self.clients,
            servers: self.servers,
            ..GenConfig::default()
        }
    }
}

/// Runs `akto-tap synth`: writes the capture and prints a one-line summary to stderr.
pub fn run(args: &SynthArgs) -> Result<()> {
    let cfg = args.config();
    cfg.validate().context("invalid synth options")?;
    let to_stdout = args.output.as_os_str() == "-";
    let summary = if to_stdout {
        write_to(&cfg, io::stdout().lock()).context("writing the capture to standard output")?
    } else {
        let file = File::create(&args.output).with_context(|| format!("cannot create {}", args.output.display()))?;
        write_to(&cfg, file).with_context(|| format!("writing {}", args.output.display()))?
    };
    eprintln!(
        "synth: wrote {} bytes to {}: {} connections, {} exchanges ({} complete), {} packets, seed {}",
        summary.bytes_written,
        if to_stdout { "stdout".into() } else { args.output.display().to_string() },
        summary.connections,
        summary.exchanges,
        summary.exchanges_delivered,
        summary.packets,
        cfg.seed,
    );
    Ok(())
}

fn write_to(cfg: &GenConfig, w: impl Write) -> io::Result<GenSummary> {
    let mut w = BufWriter::with_capacity(1 << 20, w);
    let summary = generate(cfg, &mut w)?;
    w.flush()?;
    Ok(summary)
}

/// Parses `123`, `64MB`, `1.5GB`, `512K`, `1GiB` (case-insensitive; see `SynthArgs::size`).
fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let mult: u64 = match unit.as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        _ => bail!("unknown size unit {unit:?} in {s:?} (use B, KB, MB, GB, KiB, MiB, GiB)"),
    };
    let value: f64 = num.parse().with_context(|| format!("{s:?} is not a size"))?;
    let bytes = (value * mult as f64).round();
    if !(0.0..=1e18).contains(&bytes) {
        bail!("size {s:?} is out of range");
    }
    Ok(bytes as u64)
}

fn parse_probability(s: &str) -> Result<f64> {
    let p: f64 = s.trim().parse().with_context(|| format!("{s:?} is not a number"))?;
    if !(0.0..=1.0).contains(&p) {
        bail!("{p} is not a probability (use a number from 0 to 1)");
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("123").unwrap(), 123);
        assert_eq!(parse_size("64MB").unwrap(), 64_000_000);
        assert_eq!(parse_size("64mb").unwrap(), 64_000_000);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("512K").unwrap(), 512 << 10);
        assert_eq!(parse_size("1.5GB").unwrap(), 1_500_000_000);
        assert_eq!(parse_size("2 MiB").unwrap(), 2 << 20);
        assert!(parse_size("12XB").is_err());
        assert!(parse_size("MB").is_err());
        assert!(parse_size("-1MB").is_err());
    }

    #[test]
    fn probabilities() {
        assert_eq!(parse_probability("0.01").unwrap(), 0.01);
        assert!(parse_probability("1.5").is_err());
        assert!(parse_probability("nan").is_err());
    }

    #[test]
    fn writes_a_capture() {
        use clap::Parser;
        #[derive(Parser, Debug)]
        struct Cli {
            #[command(flatten)]
            synth: SynthArgs,
        }
        let dir = std::env::temp_dir().join(format!("akto-tap-synth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.pcap");
        let cli =
            Cli::try_parse_from(["synth", "-o", path.to_str().unwrap(), "--size", "200KB", "--seed", "7"]).unwrap();
        assert_eq!(cli.synth.config().target_bytes, 200_000);
        run(&cli.synth).unwrap();
        let data = std::fs::read(&path).unwrap();
        assert!(data.len() >= 200_000);
        assert_eq!(&data[..4], &0xa1b2_c3d4u32.to_le_bytes());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
