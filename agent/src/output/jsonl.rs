//! The JSON-lines sink: one line per exchange to stdout or a file. The default sink of every
//! command; its lines are exactly the records other sinks send.

use super::{to_exchange_json, write_record, Format, RecordOptions};
use reassembly::HttpExchange;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Lines are encoded straight into one buffer and written out once it holds this much: one
/// copy of each record (encoder → `write`) instead of two through a `BufWriter`.
const PENDING_BYTES: usize = 1 << 16;

/// Writes exchanges as JSON lines.
pub struct JsonlSink {
    out: Box<dyn Write + Send>,
    format: Format,
    opts: RecordOptions,
    written: u64,
    skipped: u64,
    /// Whole lines not written yet (under [`PENDING_BYTES`] between calls).
    pending: Vec<u8>,
    /// The short texts of the record being written ([`write_record`]).
    scratch: String,
}

impl std::fmt::Debug for JsonlSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonlSink").field("format", &self.format).field("written", &self.written).finish()
    }
}

impl JsonlSink {
    /// Opens `path`, or stdout for `-`.
    pub fn open(path: &Path, format: Format, opts: RecordOptions) -> io::Result<Self> {
        // Unbuffered: `pending` is the buffer. (Stdout's line buffering passes writes that
        // end in a newline straight through.)
        let out: Box<dyn Write + Send> =
            if path.as_os_str() == "-" { Box::new(io::stdout()) } else { Box::new(File::create(path)?) };
        Ok(JsonlSink {
            out,
            format,
            opts,
            written: 0,
            skipped: 0,
            pending: Vec::with_capacity(2 * PENDING_BYTES),
            scratch: String::new(),
        })
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
            Format::Akto => write_record(ex, &self.opts, None, &mut self.scratch, &mut self.pending),
            Format::Exchange => serde_json::to_writer(&mut self.pending, &to_exchange_json(ex))?,
            Format::None => return Ok(()),
        }
        self.pending.push(b'\n');
        self.written += 1;
        if self.pending.len() >= PENDING_BYTES {
            self.write_pending()?;
        }
        Ok(())
    }

    fn write_pending(&mut self) -> io::Result<()> {
        // Cleared even when the write fails: the error goes to the caller, and a retry would
        // only repeat lines the output may already hold in part.
        let result = self.out.write_all(&self.pending);
        self.pending.clear();
        result
    }

    /// Writes lines encoded elsewhere (by capture shards, in parallel): `n` lines, each ending
    /// in a newline.
    pub fn write_encoded(&mut self, lines: &[u8], n: u64) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.write_pending()?;
        }
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

    /// Writes out buffered lines.
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.write_pending()?;
        }
        self.out.flush()
    }
}
