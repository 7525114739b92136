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
    skipped: u64,
    line: Vec<u8>,
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
        Ok(JsonlSink { out, format, opts, written: 0, skipped: 0, line: Vec::with_capacity(1 << 16) })
    }

    /// Writes one exchange.
    pub fn write(&mut self, ex: &HttpExchange) -> io::Result<()> {
        match self.format {
            // An exchange without a request line (a response the capture saw alone, or an
            // answer to bytes that were not a request) has no endpoint for Akto: counted, not
            // sent. The `exchange` format shows them.
            Format::Akto if ex.request.method.is_empty() => {
                self.skipped += 1;
                return Ok(());
            }
            // Serialized into a reused buffer first: one `write_all` per line instead of one
            // per escaped run.
            Format::Akto => to_record(ex, &self.opts).write_json(&mut self.line),
            Format::Exchange => serde_json::to_writer(&mut self.line, &to_exchange_json(ex))?,
            Format::None => return Ok(()),
        }
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.line.clear();
        self.written += 1;
        Ok(())
    }

    /// Writes lines encoded elsewhere (by capture shards, in parallel): `n` lines, each ending
    /// in a newline.
    pub fn write_encoded(&mut self, lines: &[u8], n: u64) -> io::Result<()> {
        self.out.write_all(lines)?;
        self.written += n;
        Ok(())
    }

    /// Lines written.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Exchanges not written because they have no request line.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Flushes buffered lines.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
