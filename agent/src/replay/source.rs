//! Where a replayed capture's bytes come from.
//!
//! A regular file is mapped into memory and its records are parsed where they lie in the page
//! cache. Read through a buffer instead, every byte is first copied from the page cache into the
//! buffer: on the bench capture that copy (`_copy_to_iter` and the page-cache lookups around it)
//! was about 9 % of a replay's CPU. Pipes, devices, empty files and `--no-mmap` are read through
//! a buffer as before.
//!
//! The mapping is made resident [`POPULATE_STEP`] bytes at a time ahead of the reader
//! (`MADV_POPULATE_READ`, Linux 5.14+; older kernels fault the pages in one by one instead,
//! which only costs time), and the progress bar advances a step at a time.
//!
//! A mapped file that shrinks while it is replayed (another process truncating or rotating it)
//! ends with an error naming the file: reads past the new end of file raise `SIGBUS`, which
//! [`super::sigbus`] turns into zeros and a mark that the reader checks. `--no-mmap` reads
//! through a buffer instead.

use indicatif::ProgressBar;
use memmap2::{Advice, Mmap};
use std::fs::File;
use std::io::{self, BufRead, Read};

/// Bytes made resident ahead of the reader per `madvise` call.
pub const POPULATE_STEP: usize = 4 << 20;

/// A capture file's bytes.
#[derive(Debug)]
pub enum Source {
    /// Mapped into memory: records are lent straight from the mapping.
    Mapped(MappedFile),
    /// Read through the capture reader's buffer.
    Read(CountingReader),
}

impl Source {
    /// Opens `file` as a mapping when `mmap` is set and it is a non-empty regular file, and
    /// for reading otherwise: also when the mapping fails (the error is the read's to report),
    /// and when the file is gzip-compressed (decompression is the cost there, and the
    /// decompressor reads through a buffer anyway).
    pub fn open(file: File, mmap: bool, bar: ProgressBar) -> Source {
        let regular = file.metadata().is_ok_and(|m| m.is_file() && m.len() > 0);
        if mmap && regular {
            if let Ok(m) = MappedFile::new(&file, bar.clone()) {
                if !super::pcapfile::is_gzip(&m.map) {
                    return Source::Mapped(m);
                }
            }
        }
        Source::Read(CountingReader { inner: file, bar })
    }
}

/// A file mapped read-only, read as a [`BufRead`] whose buffer is the rest of the file.
#[derive(Debug)]
pub struct MappedFile {
    /// Declared before `map`, so dropped (the range released) before the mapping is unmapped.
    guard: super::sigbus::Guard,
    map: Mmap,
    /// Bytes consumed.
    pos: usize,
    /// Bytes from the start made resident so far (and reported to the progress bar).
    populated: usize,
    /// Bytes from the start whose cache lines have been prefetched.
    prefetched: usize,
    bar: ProgressBar,
}

impl MappedFile {
    /// Maps `file` and makes its first step resident.
    pub fn new(file: &File, bar: ProgressBar) -> io::Result<MappedFile> {
        // SAFETY: the mapping is private and read-only, and only ever read through `&[u8]`.
        // The file's contents may still change under it if another process writes the file;
        // the bytes read are then some mix of old and new, which the capture reader treats as
        // it treats any corrupt file (every length is checked). A file truncated under the
        // mapping raises SIGBUS on reads past its new end, which the guard turns into zeros
        // and an error (the module documentation).
        #[allow(unsafe_code)]
        let map = unsafe { Mmap::map(file)? };
        let guard = super::sigbus::register(map.as_ptr(), map.len())
            .ok_or_else(|| io::Error::other("no SIGBUS guard for the mapping"))?;
        // Readahead for files not yet in the page cache; a hint, so its failure is ignored.
        let _ = map.advise(Advice::Sequential);
        let mut m = MappedFile { guard, map, pos: 0, populated: 0, prefetched: 0, bar };
        m.populate_ahead();
        Ok(m)
    }

    /// Makes the next step resident once the reader is within a step of the resident end.
    fn populate_ahead(&mut self) {
        let len = self.map.len();
        while self.populated < len && self.pos + POPULATE_STEP > self.populated {
            let n = POPULATE_STEP.min(len - self.populated);
            // A hint: without it (old kernel, or a read error that the access will then
            // report as SIGBUS anyway) the pages fault in as they are touched.
            let _ = self.map.advise_range(Advice::PopulateRead, self.populated, n);
            self.populated += n;
            self.bar.inc(n as u64);
        }
    }

    /// An error once a read went past the end of the file (it shrank after it was mapped).
    #[inline(always)]
    fn check(&self) -> io::Result<()> {
        if self.guard.cut() {
            return Err(shrank());
        }
        Ok(())
    }

    /// Asks for the cache lines up to [`PREFETCH_AHEAD`] bytes past the reader, each once.
    /// Read through a buffer, the kernel's copy into the buffer left the next records in the
    /// cache; mapped, the first touch of a record would otherwise wait on memory at every new
    /// page, where the hardware's own stream prefetch stops.
    fn prefetch(&mut self) {
        let end = (self.pos + PREFETCH_AHEAD).min(self.map.len());
        while self.prefetched < end {
            super::prefetch(&self.map[self.prefetched]);
            self.prefetched += 64;
        }
    }
}

#[cold]
#[inline(never)]
fn shrank() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the file shrank while it was replayed (truncated or rotated by another process)",
    )
}

/// How far ahead of the reader the mapping's cache lines are prefetched.
const PREFETCH_AHEAD: usize = 4096;

impl Read for MappedFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.check()?;
        let rest = &self.map[self.pos..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for MappedFile {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.check()?;
        Ok(&self.map[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.map.len());
        self.prefetch();
        if self.pos + POPULATE_STEP > self.populated {
            self.populate_ahead();
        }
    }
}

/// A file read through a buffer, advancing the progress bar as it is read.
#[derive(Debug)]
pub struct CountingReader {
    inner: File,
    bar: ProgressBar,
}

impl Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_of(bytes: &[u8]) -> File {
        let mut f = tempfile::tempfile().expect("temporary file");
        f.write_all(bytes).expect("write");
        f
    }

    /// Bytes that differ at every offset (period 251, prime, not a power of two).
    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn mapped_file_lends_every_byte_once_and_reports_progress() {
        // Three populate steps and a bit: the steps, the prefetch cursor and the end all move.
        let bytes = pattern(3 * POPULATE_STEP + 12_345);
        let bar = ProgressBar::hidden();
        let Source::Mapped(mut m) = Source::open(file_of(&bytes), true, bar.clone()) else {
            panic!("a regular file is mapped");
        };
        assert_eq!(bar.position(), POPULATE_STEP as u64, "one step resident ahead of the reader");
        let mut seen = Vec::with_capacity(bytes.len());
        let mut step = 1;
        loop {
            let avail = m.fill_buf().expect("fill");
            if avail.is_empty() {
                break;
            }
            assert_eq!(avail.len(), bytes.len() - seen.len(), "the rest of the file is lent");
            // Consume in uneven pieces, some through `read`.
            let n = avail.len().min(step * 7919);
            if step % 3 == 0 {
                let mut buf = vec![0; n];
                assert_eq!(m.read(&mut buf).expect("read"), n);
                seen.extend_from_slice(&buf);
            } else {
                seen.extend_from_slice(&avail[..n]);
                m.consume(n);
            }
            step += 1;
            assert!(m.populated >= m.pos.min(bytes.len()) && m.populated <= bytes.len());
        }
        assert!(seen == bytes, "bytes differ");
        assert_eq!(bar.position(), bytes.len() as u64, "progress ends at the file's length");
        // Consuming past the end stays at the end; reading there gives 0.
        m.consume(10);
        assert_eq!(m.read(&mut [0; 8]).expect("read"), 0);
    }

    #[test]
    fn only_non_empty_regular_files_are_mapped() {
        let bar = ProgressBar::hidden();
        assert!(matches!(Source::open(file_of(b"x"), true, bar.clone()), Source::Mapped(_)));
        assert!(matches!(Source::open(file_of(b"x"), false, bar.clone()), Source::Read(_)), "--no-mmap");
        assert!(matches!(Source::open(file_of(b""), true, bar.clone()), Source::Read(_)), "empty file");
        let gzip = Source::open(file_of(&[0x1f, 0x8b, 8, 0, 0, 0]), true, bar.clone());
        assert!(matches!(gzip, Source::Read(_)), "gzip is decompressed through a buffer");
        let null = File::open("/dev/null").expect("/dev/null");
        assert!(matches!(Source::open(null, true, bar.clone()), Source::Read(_)), "character device");
        let (reader, mut writer) = std::io::pipe().expect("pipe");
        writer.write_all(b"through a pipe").expect("write");
        drop(writer);
        let bar = ProgressBar::hidden();
        let Source::Read(mut r) = Source::open(File::from(std::os::fd::OwnedFd::from(reader)), true, bar.clone())
        else {
            panic!("a pipe is read");
        };
        let mut text = String::new();
        r.read_to_string(&mut text).expect("read");
        assert_eq!(text, "through a pipe");
        assert_eq!(bar.position(), 14, "read bytes advance the bar");
    }

    #[test]
    fn a_file_cut_under_its_mapping_ends_with_an_error_not_a_crash() {
        let bytes = pattern(16 * 4096);
        let file = file_of(&bytes);
        let mut m = MappedFile::new(&file, ProgressBar::hidden()).expect("map");
        assert_eq!(m.fill_buf().expect("fill")[..4096], bytes[..4096]);
        m.consume(4096);
        // Another process truncates the file: the pages past the new end leave the mapping.
        file.set_len(8192).expect("truncate");
        let avail = m.fill_buf().expect("nothing was read past the end yet");
        assert_eq!(avail.len(), bytes.len() - 4096, "the mapping keeps its length");
        assert_eq!(avail[100], bytes[4196], "a byte before the new end is still the file's");
        // A read past the new end: SIGBUS, turned into zeros by the guard.
        let past = std::hint::black_box(avail[3 * 4096 + 5]);
        assert_eq!(past, 0);
        let err = m.fill_buf().expect_err("the cut is reported");
        assert!(err.to_string().contains("shrank"), "{err}");
        assert!(m.read(&mut [0; 16]).is_err(), "reads fail too");
        // Another mapping, registered after, is not marked by the first one's fault.
        let other = MappedFile::new(&file_of(b"fine"), ProgressBar::hidden()).expect("map");
        assert!(!other.guard.cut());
    }

    #[test]
    fn a_capture_cut_while_it_is_replayed_ends_with_an_error_naming_the_cause() {
        use super::super::pcapfile::{CaptureReader, ReadError};
        // A classic pcap of 2,000 frames of 100 bytes (about 29 pages).
        let mut f = Vec::new();
        f.extend(0xa1b2_c3d4_u32.to_le_bytes());
        f.extend([2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0]);
        for i in 0..2000u32 {
            f.extend(i.to_le_bytes());
            f.extend(0u32.to_le_bytes());
            f.extend(100u32.to_le_bytes());
            f.extend(100u32.to_le_bytes());
            f.extend([0x5a; 100]);
        }
        let file = file_of(&f);
        let m = MappedFile::new(&file, ProgressBar::hidden()).expect("map");
        let mut r = CaptureReader::buffered(m).expect("pcap");
        for _ in 0..100 {
            assert!(r.next_frame().expect("frame").is_some());
        }
        // Cut at a page boundary (a cut inside a page leaves the rest of that page mapped,
        // reading as zeros without a fault).
        file.set_len(10 * 4096).expect("truncate");
        let mut frames = 100;
        let err = loop {
            match r.next_frame() {
                Ok(Some(f)) if frames < 352 => {
                    assert_eq!(f.data, [0x5a; 100], "frame {frames}");
                    frames += 1;
                }
                Ok(Some(_)) => frames += 1,
                Ok(None) => panic!("a cut file does not end cleanly"),
                Err(e) => break e,
            }
        };
        // The 352 whole frames before the new end, the one across it (its bytes not read by
        // the reader), and at most one more whose header read faulted and came back as zeros.
        assert!((353..=354).contains(&frames), "{frames} frames");
        assert!(matches!(&err, ReadError::Io(e) if e.to_string().contains("shrank")), "{err}");
    }

    #[test]
    fn a_fault_outside_every_guarded_mapping_still_ends_the_process() {
        // The handler is installed by the first registration; a child process then reads past
        // the end of a file it mapped without a guard, and must die of SIGBUS as it would
        // without the handler.
        drop(MappedFile::new(&file_of(b"installs the handler"), ProgressBar::hidden()).expect("map"));
        let file = file_of(&pattern(3 * 4096));
        let map = {
            // SAFETY: a private read-only mapping of a file of this test.
            #[allow(unsafe_code)]
            unsafe {
                Mmap::map(&file).expect("map")
            }
        };
        file.set_len(4096).expect("truncate");
        // SAFETY: the child only reads memory and exits; it takes no lock and allocates nothing.
        #[allow(unsafe_code)]
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                let b = std::hint::black_box(map[2 * 4096]);
                // Only reached if the read did not fault: exit with a code the parent rejects.
                // SAFETY: `_exit` ends the child at once.
                #[allow(unsafe_code)]
                unsafe {
                    nix::libc::_exit(i32::from(b) + 3)
                }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).expect("wait");
                assert_eq!(
                    status,
                    nix::sys::wait::WaitStatus::Signaled(child, nix::sys::signal::Signal::SIGBUS, false),
                );
            }
        }
    }
}
