//! The on-disk spool: records that could not be handed to the broker wait here, in order,
//! until it returns — across agent restarts.
//!
//! # Layout
//! A directory of append-only segment files `<index:016x>.seg` and one `cursor` file.
//! A segment is a sequence of frames:
//!
//! ```text
//! len: u32 LE (body bytes) | crc32: u32 LE (of body) | body = key_len: u16 LE | key | value
//! ```
//!
//! Records are appended to the last segment; at `segment_bytes` a new one is started. The
//! reader walks from the *commit* position (everything before it was acknowledged by the
//! broker); segments wholly before it are deleted. The cursor file holds the commit position
//! (`<segment> <offset>`), rewritten with write-to-temp + rename at most every 200 ms and on
//! close. A stale cursor after a crash means records are sent again (at-least-once), never
//! skipped.
//!
//! # Durability (fsync policy, [`FsyncPolicy`])
//! Appends go through a 64 KiB buffer that is pushed to the OS at every [`Spool::tick`] (the
//! sink calls it every loop, ≤ 10 ms) and before any read; so a *process* crash loses at most
//! that buffer. `Interval` (default) fsyncs at most once a second while there are new writes, so
//! a *power loss* loses at most about a second; `Always` fsyncs every record; `Never` leaves it to
//! the OS.
//!
//! # Bounds
//! Total bytes on disk ≤ `max_bytes`: an append that would exceed it is refused
//! ([`Appended::Dropped`]) and the sink counts it — the only place the Kafka path may drop.
//! Newest records are the ones refused, so what is kept stays in order.
//!
//! # Recovery
//! On open, every segment from the commit position on is scanned: a torn or corrupt frame
//! (bad length or CRC, typically the tail of a crash) cuts the segment there; the bytes cut are
//! counted in [`Spool::corrupt_bytes`].

use super::config::{FsyncPolicy, SpoolConfig};
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const HEADER: u64 = 8;
const CURSOR_EVERY: Duration = Duration::from_millis(200);
const FSYNC_EVERY: Duration = Duration::from_secs(1);

/// A position in the spool: segment index and byte offset. Ordered like the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    /// Segment index.
    pub seg: u64,
    /// Byte offset in the segment.
    pub off: u64,
}

/// Spool failures (I/O on the spool directory).
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The directory could not be created or listed.
    #[error("spool directory {dir}: {source}")]
    Dir { dir: PathBuf, source: io::Error },
    /// A segment or the cursor could not be read or written.
    #[error("spool file {path}: {source}")]
    File { path: PathBuf, source: io::Error },
}

/// What [`Spool::append`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Stored.
    Stored,
    /// Refused: the spool is at its size cap.
    Dropped,
}

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolRecord {
    /// Where it starts.
    pub pos: Pos,
    /// Where the next record starts.
    pub next: Pos,
    /// Kafka key (empty = none).
    pub key: Vec<u8>,
    /// Kafka value.
    pub value: Vec<u8>,
}

#[derive(Debug)]
struct Segment {
    index: u64,
    len: u64,
}

/// The spool. Single-owner (the sink's worker thread).
#[derive(Debug)]
pub struct Spool {
    cfg: SpoolConfig,
    segs: VecDeque<Segment>,
    writer: BufWriter<File>,
    reader: Option<(u64, BufReader<File>, u64)>,
    read: Pos,
    commit: Pos,
    bytes: u64,
    records_at_open: u64,
    corrupt_bytes: u64,
    unsynced: bool,
    last_sync: Instant,
    cursor_dirty: bool,
    last_cursor: Instant,
}

fn seg_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:016x}.seg"))
}

fn file_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::File { path: path.to_path_buf(), source }
}

/// A frame's key and value.
type Frame = (Vec<u8>, Vec<u8>);

/// Reads one frame at the reader's position. `Ok(None)` = clean end; `Err(())` = torn/corrupt.
fn read_frame(r: &mut impl Read, remaining: u64) -> Result<Option<Frame>, ()> {
    if remaining == 0 {
        return Ok(None);
    }
    let mut head = [0u8; HEADER as usize];
    if remaining < HEADER || r.read_exact(&mut head).is_err() {
        return Err(());
    }
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as u64;
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if len < 2 || len > remaining - HEADER {
        return Err(());
    }
    let mut body = vec![0u8; len as usize];
    if r.read_exact(&mut body).is_err() || crc32fast::hash(&body) != crc {
        return Err(());
    }
    let key_len = u16::from_le_bytes([body[0], body[1]]) as usize;
    if 2 + key_len > body.len() {
        return Err(());
    }
    let value = body.split_off(2 + key_len);
    body.drain(..2);
    Ok(Some((body, value)))
}

impl Spool {
    /// Opens (or creates) the spool in `cfg.dir`, recovering what a previous run left.
    pub fn open(cfg: SpoolConfig) -> Result<Spool, SpoolError> {
        let dir = cfg.dir.clone();
        fs::create_dir_all(&dir).map_err(|source| SpoolError::Dir { dir: dir.clone(), source })?;
        let mut indices: Vec<u64> = fs::read_dir(&dir)
            .map_err(|source| SpoolError::Dir { dir: dir.clone(), source })?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                u64::from_str_radix(name.strip_suffix(".seg")?, 16).ok()
            })
            .collect();
        indices.sort_unstable();
        let cursor_path = dir.join("cursor");
        let mut commit = fs::read_to_string(&cursor_path)
            .ok()
            .and_then(|s| {
                let mut it = s.split_whitespace().map(str::parse::<u64>);
                Some(Pos { seg: it.next()?.ok()?, off: it.next()?.ok()? })
            })
            .unwrap_or_default();
        let mut segs = VecDeque::new();
        let mut corrupt_bytes = 0;
        let mut records = 0;
        for index in indices {
            let path = seg_path(&dir, index);
            if index < commit.seg {
                fs::remove_file(&path).map_err(file_err(&path))?;
                continue;
            }
            let file = OpenOptions::new().read(true).write(true).open(&path).map_err(file_err(&path))?;
            let len = file.metadata().map_err(file_err(&path))?.len();
            let start = if index == commit.seg { commit.off.min(len) } else { 0 };
            // Scan from the commit position: count records, cut at the first bad frame.
            let mut r = BufReader::new(&file);
            r.seek(SeekFrom::Start(start)).map_err(file_err(&path))?;
            let mut at = start;
            loop {
                match read_frame(&mut r, len - at) {
                    Ok(Some((k, v))) => {
                        at += HEADER + 2 + k.len() as u64 + v.len() as u64;
                        records += 1;
                    }
                    Ok(None) => break,
                    Err(()) => {
                        corrupt_bytes += len - at;
                        file.set_len(at).map_err(file_err(&path))?;
                        break;
                    }
                }
            }
            segs.push_back(Segment { index, len: at });
        }
        if let Some(first) = segs.front() {
            if commit.seg < first.index {
                commit = Pos { seg: first.index, off: 0 };
            }
        }
        if segs.is_empty() {
            segs.push_back(Segment { index: commit.seg, len: 0 });
            commit.off = 0;
        }
        let last = segs.back().map_or(0, |s| s.index);
        let path = seg_path(&dir, last);
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(file_err(&path))?;
        let bytes = segs.iter().map(|s| s.len).sum();
        let now = Instant::now();
        Ok(Spool {
            cfg,
            segs,
            writer: BufWriter::with_capacity(1 << 16, file),
            reader: None,
            read: commit,
            commit,
            bytes,
            records_at_open: records,
            corrupt_bytes,
            unsynced: false,
            last_sync: now,
            cursor_dirty: false,
            last_cursor: now,
        })
    }

    /// Records found waiting when the spool was opened.
    pub fn records_at_open(&self) -> u64 {
        self.records_at_open
    }

    /// Bytes cut at open because a frame was torn or corrupt.
    pub fn corrupt_bytes(&self) -> u64 {
        self.corrupt_bytes
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    fn end(&self) -> Pos {
        self.segs.back().map_or(Pos::default(), |s| Pos { seg: s.index, off: s.len })
    }

    /// True when every stored record was acknowledged.
    pub fn is_empty(&self) -> bool {
        self.commit >= self.end()
    }

    /// True when records remain that were not yet read for sending.
    pub fn has_unsent(&self) -> bool {
        self.read < self.end()
    }

    /// The first record not yet acknowledged.
    pub fn commit_pos(&self) -> Pos {
        self.commit
    }

    /// The next record to read.
    pub fn read_pos(&self) -> Pos {
        self.read
    }

    /// Appends a record, or refuses it at the size cap.
    pub fn append(&mut self, key: &[u8], value: &[u8]) -> Result<Appended, SpoolError> {
        let key = &key[..key.len().min(u16::MAX as usize)];
        let body_len = 2 + key.len() + value.len();
        let frame = HEADER + body_len as u64;
        if body_len > u32::MAX as usize || self.bytes + frame > self.cfg.max_bytes {
            return Ok(Appended::Dropped);
        }
        let (index, len) = self.segs.back().map_or((0, 0), |s| (s.index, s.len));
        if len > 0 && len + frame > self.cfg.segment_bytes {
            self.roll(index + 1)?;
        }
        let mut hasher = crc32fast::Hasher::new();
        let kl = (key.len() as u16).to_le_bytes();
        hasher.update(&kl);
        hasher.update(key);
        hasher.update(value);
        let crc = hasher.finalize();
        let index = self.segs.back().map_or(0, |s| s.index);
        let path = seg_path(&self.cfg.dir, index);
        let w = &mut self.writer;
        (|| -> io::Result<()> {
            w.write_all(&(body_len as u32).to_le_bytes())?;
            w.write_all(&crc.to_le_bytes())?;
            w.write_all(&kl)?;
            w.write_all(key)?;
            w.write_all(value)
        })()
        .map_err(file_err(&path))?;
        if let Some(s) = self.segs.back_mut() {
            s.len += frame;
        }
        self.bytes += frame;
        self.unsynced = true;
        if self.cfg.fsync == FsyncPolicy::Always {
            self.sync()?;
        }
        Ok(Appended::Stored)
    }

    fn roll(&mut self, index: u64) -> Result<(), SpoolError> {
        self.sync()?;
        let path = seg_path(&self.cfg.dir, index);
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(file_err(&path))?;
        self.writer = BufWriter::with_capacity(1 << 16, file);
        self.segs.push_back(Segment { index, len: 0 });
        Ok(())
    }

    fn sync(&mut self) -> Result<(), SpoolError> {
        let path = seg_path(&self.cfg.dir, self.segs.back().map_or(0, |s| s.index));
        self.writer.flush().map_err(file_err(&path))?;
        if self.cfg.fsync != FsyncPolicy::Never && self.unsynced {
            self.writer.get_ref().sync_data().map_err(file_err(&path))?;
        }
        self.unsynced = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Reads the record at the read position and advances past it. Corrupt data met while
    /// reading (the disk changed under us) skips to the next segment; its bytes are counted.
    pub fn next_record(&mut self) -> Result<Option<SpoolRecord>, SpoolError> {
        loop {
            let end = self.end();
            if self.read >= end {
                return Ok(None);
            }
            let Some(seg_len) = self.segs.iter().find(|s| s.index == self.read.seg).map(|s| s.len) else {
                // The read segment is gone (deleted after commit): go to the first one left.
                let first = self.segs.front().map_or(end, |s| Pos { seg: s.index, off: 0 });
                self.read = first.max(self.commit);
                continue;
            };
            if self.read.off >= seg_len {
                match self.segs.iter().find(|s| s.index > self.read.seg) {
                    Some(s) => self.read = Pos { seg: s.index, off: 0 },
                    None => return Ok(None),
                }
                continue;
            }
            if self.read.seg == end.seg {
                let path = seg_path(&self.cfg.dir, end.seg);
                self.writer.flush().map_err(file_err(&path))?;
            }
            let path = seg_path(&self.cfg.dir, self.read.seg);
            let reopen = !matches!(&self.reader, Some((seg, _, off)) if *seg == self.read.seg && *off == self.read.off);
            if reopen {
                let mut r = BufReader::with_capacity(1 << 16, File::open(&path).map_err(file_err(&path))?);
                r.seek(SeekFrom::Start(self.read.off)).map_err(file_err(&path))?;
                self.reader = Some((self.read.seg, r, self.read.off));
            }
            let Some((_, r, off)) = self.reader.as_mut() else { return Ok(None) };
            match read_frame(r, seg_len - *off) {
                Ok(Some((key, value))) => {
                    let pos = self.read;
                    *off += HEADER + 2 + key.len() as u64 + value.len() as u64;
                    self.read = Pos { seg: pos.seg, off: *off };
                    return Ok(Some(SpoolRecord { pos, next: self.read, key, value }));
                }
                Ok(None) => return Ok(None),
                Err(()) => {
                    self.corrupt_bytes += seg_len - self.read.off;
                    self.read = Pos { seg: self.read.seg, off: seg_len };
                    self.reader = None;
                }
            }
        }
    }

    /// Moves the read position back (records from `pos` on are read again).
    pub fn rewind_to(&mut self, pos: Pos) {
        let pos = pos.max(self.commit);
        if pos < self.read {
            self.read = pos;
        }
    }

    /// Everything before `upto` was acknowledged: frees whole segments before it.
    pub fn commit(&mut self, upto: Pos) -> Result<(), SpoolError> {
        if upto <= self.commit {
            return Ok(());
        }
        self.commit = upto;
        self.read = self.read.max(upto);
        self.cursor_dirty = true;
        let last = self.end().seg;
        while let Some(front) = self.segs.front() {
            // A segment is done when the commit point is past it (in a later segment, or at its
            // end once a later one exists); the segment being written is never deleted.
            let done = front.index < last && (front.index < upto.seg || upto.off >= front.len);
            if !done {
                break;
            }
            let path = seg_path(&self.cfg.dir, front.index);
            fs::remove_file(&path).map_err(file_err(&path))?;
            self.bytes -= front.len;
            if matches!(&self.reader, Some((seg, _, _)) if *seg == front.index) {
                self.reader = None;
            }
            self.segs.pop_front();
        }
        if self.commit.seg < self.segs.front().map_or(0, |s| s.index) {
            self.commit = Pos { seg: self.segs.front().map_or(0, |s| s.index), off: 0 };
            self.read = self.read.max(self.commit);
        }
        // Everything acknowledged and the active segment holds only acknowledged bytes:
        // truncate it so the cap measures what is waiting, not what was delivered.
        if self.commit >= self.end() && self.segs.len() == 1 && self.end().off > 0 {
            let idx = self.end().seg;
            self.roll(idx + 1)?;
            self.commit(Pos { seg: idx + 1, off: 0 })?;
        }
        Ok(())
    }

    /// Periodic upkeep: push buffered appends to the OS, fsync per policy, persist the cursor.
    pub fn tick(&mut self) -> Result<(), SpoolError> {
        let path = seg_path(&self.cfg.dir, self.end().seg);
        self.writer.flush().map_err(file_err(&path))?;
        if self.unsynced && self.cfg.fsync == FsyncPolicy::Interval && self.last_sync.elapsed() >= FSYNC_EVERY {
            self.sync()?;
        }
        if self.cursor_dirty && self.last_cursor.elapsed() >= CURSOR_EVERY {
            self.write_cursor()?;
        }
        Ok(())
    }

    fn write_cursor(&mut self) -> Result<(), SpoolError> {
        let tmp = self.cfg.dir.join("cursor.tmp");
        let dst = self.cfg.dir.join("cursor");
        fs::write(&tmp, format!("{} {}\n", self.commit.seg, self.commit.off)).map_err(file_err(&tmp))?;
        fs::rename(&tmp, &dst).map_err(file_err(&dst))?;
        self.cursor_dirty = false;
        self.last_cursor = Instant::now();
        Ok(())
    }

    /// Flushes, fsyncs (unless `Never`) and persists the cursor.
    pub fn close(&mut self) -> Result<(), SpoolError> {
        self.sync()?;
        self.write_cursor()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path, max: u64, seg: u64) -> SpoolConfig {
        SpoolConfig { dir: dir.to_path_buf(), max_bytes: max, segment_bytes: seg, fsync: FsyncPolicy::Never }
    }

    fn drain(s: &mut Spool) -> Vec<(Pos, Pos, Vec<u8>)> {
        let mut out = Vec::new();
        while let Ok(Some(r)) = s.next_record() {
            out.push((r.pos, r.next, r.value));
        }
        out
    }

    #[test]
    fn order_is_kept_across_segments_commit_and_restart() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut s = Spool::open(cfg(dir.path(), 1 << 20, 200)).expect("open");
        for i in 0..50u32 {
            assert_eq!(s.append(b"10.0.0.1", format!("record-{i}").as_bytes()).ok(), Some(Appended::Stored));
        }
        assert!(s.segs.len() > 3, "rolled into several segments");
        let got = drain(&mut s);
        assert_eq!(got.len(), 50);
        assert_eq!(got[7].2, b"record-7");
        // Acknowledge the first 20, then "crash" (close writes the cursor) and reopen.
        s.commit(got[19].1).expect("commit");
        s.close().expect("close");
        drop(s);
        let mut s = Spool::open(cfg(dir.path(), 1 << 20, 200)).expect("reopen");
        assert_eq!(s.records_at_open(), 30);
        let got = drain(&mut s);
        assert_eq!(
            got.iter().map(|g| g.2.clone()).collect::<Vec<_>>(),
            (20..50).map(|i| format!("record-{i}").into_bytes()).collect::<Vec<_>>()
        );
        // Rewind re-reads from the commit position.
        s.rewind_to(Pos::default());
        assert_eq!(drain(&mut s).len(), 30);
        let last = got.last().map(|g| g.1).unwrap_or_default();
        s.commit(last).expect("commit all");
        assert!(s.is_empty());
        assert!(s.bytes() < 200, "acknowledged segments deleted: {}", s.bytes());
    }

    #[test]
    fn cap_refuses_newest_and_torn_tail_is_cut() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut s = Spool::open(cfg(dir.path(), 100, 1 << 20)).expect("open");
        let mut stored = 0;
        for _ in 0..10 {
            if s.append(b"k", &[b'x'; 20]).ok() == Some(Appended::Stored) {
                stored += 1;
            }
        }
        assert_eq!(stored, 3, "31-byte frames under a 100-byte cap");
        s.close().expect("close");
        drop(s);
        // Tear the last frame as a crash mid-write would.
        let seg = seg_path(dir.path(), 0);
        let len = fs::metadata(&seg).map(|m| m.len()).unwrap_or_default();
        let f = OpenOptions::new().write(true).open(&seg).expect("seg");
        f.set_len(len - 5).expect("truncate");
        let mut s = Spool::open(cfg(dir.path(), 100, 1 << 20)).expect("reopen");
        assert_eq!(s.records_at_open(), 2);
        assert_eq!(s.corrupt_bytes(), 26);
        assert_eq!(drain(&mut s).len(), 2);
        // Appends continue after the cut.
        assert_eq!(s.append(b"k", b"after").ok(), Some(Appended::Stored));
        assert_eq!(drain(&mut s).last().map(|g| g.2.clone()), Some(b"after".to_vec()));
    }

    #[test]
    fn corrupt_crc_is_detected() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut s = Spool::open(cfg(dir.path(), 1 << 20, 1 << 20)).expect("open");
        s.append(b"", b"good").ok();
        s.append(b"", b"flipped").ok();
        s.close().expect("close");
        drop(s);
        let seg = seg_path(dir.path(), 0);
        let mut bytes = fs::read(&seg).unwrap_or_default();
        let n = bytes.len();
        bytes[n - 1] ^= 0xff;
        fs::write(&seg, bytes).ok();
        let mut s = Spool::open(cfg(dir.path(), 1 << 20, 1 << 20)).expect("reopen");
        let got = drain(&mut s);
        assert_eq!(got.iter().map(|g| g.2.clone()).collect::<Vec<_>>(), vec![b"good".to_vec()]);
    }
}
