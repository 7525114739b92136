//! The JSON-lines sink: one line per exchange to stdout or a file. The default sink of every
//! command; its lines are exactly the records other sinks send.

use super::{to_exchange_json, to_record, Format, RecordOptions};
use reassembly::HttpExchange;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Writes exchanges as JSON lines.
pub struct JsonlSink {
    out: Box<dyn Write + Send>,
    format: Format,
    opts: RecordOptions,
    written: u64,
}

impl std::fmt::Debug for JsonlSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonlSink").field("format", &self.format).field("written", &self.written).finish()
    }
}

impl JsonlSink {
    /// Opens `path`, or stdout for `-`.
    pub fn open(path: &Path, format: Format, opts: RecordOptions) -> io::Result<Self> {
        let out: Box<dyn Write + Send> = if path.as_os_str() == "-" {
            Box::new(BufWriter::with_capacity(1 << 16, io::stdout()))
        } else {
            Box::new(BufWriter::with_capacity(1 << 16, File::create(path)?))
        };
        Ok(JsonlSink { out, format, opts, written: 0 })
    }

    /// Writes one exchange.
    pub fn write(&mut self, ex: &HttpExchange) -> io::Result<()> {
        match self.format {
            Format::Akto => serde_json::to_writer(&mut self.out, &to_record(ex, &self.opts))?,
            Format::Exchange => serde_json::to_writer(&mut self.out, &to_exchange_json(ex))?,
            Format::None => return Ok(()),
        }
        self.out.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }

    /// Flushes buffered lines.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
