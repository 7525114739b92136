//! Generates a capture and reports the generation speed.
//!
//! ```text
//! cargo run --release -p trafficgen --example gen -- [SIZE_MB] [OUTPUT] [SEED] [clean]
//! ```
//!
//! `SIZE_MB` defaults to 1024; `OUTPUT` defaults to `-`, which discards the bytes (measuring
//! the generator alone); any other value is a file path. `clean` turns off loss, reordering
//! and duplicates.

use std::fs::File;
use std::io::{self, BufWriter};
use std::time::Instant;

use trafficgen::{generate, GenConfig};

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let size_mb: u64 = args.next().map_or(Ok(1024), |s| s.parse()).map_err(io::Error::other)?;
    let output = args.next().unwrap_or_else(|| "-".to_owned());
    let seed: u64 = args.next().map_or(Ok(1), |s| s.parse()).map_err(io::Error::other)?;
    let base = if args.next().as_deref() == Some("clean") { GenConfig::clean() } else { GenConfig::default() };
    let cfg = GenConfig { seed, target_bytes: size_mb << 20, ..base };

    let started = Instant::now();
    let summary = if output == "-" {
        generate(&cfg, &mut io::sink())?
    } else {
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&output)?);
        generate(&cfg, &mut w)?
    };
    let secs = started.elapsed().as_secs_f64();
    let mb = summary.bytes_written as f64 / 1e6;
    eprintln!(
        "{} bytes, {} packets, {} connections, {} exchanges ({} delivered) in {:.2} s: {:.0} MB/s",
        summary.bytes_written,
        summary.packets,
        summary.connections,
        summary.exchanges,
        summary.exchanges_delivered,
        secs,
        mb / secs
    );
    Ok(())
}
