//! Finding the OpenSSL libraries processes use: every `libssl.so*` mapped in `/proc/PID/maps`,
//! opened through `/proc/PID/root` so a container's own libssl (another file, another inode) is
//! found too. Uprobes attach to a file (inode), for every process that maps it, now or later:
//! each distinct file is attached once.
//!
//! Processes load libssl late (Python imports `ssl` on first use, plugins are dlopen'ed), so a
//! process is scanned at each of its first [`YOUNG_SCANS`] scans, and every process once every
//! [`FULL_EVERY`] scans; in between, reading every process's maps (tens of KiB each) would cost
//! more than it finds.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// A mapped libssl file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedLib {
    /// Path inside the process's mount namespace.
    pub path: String,
    /// Device (`maj:min`) and inode: identify the file across namespaces.
    pub dev: String,
    /// Inode number.
    pub inode: u64,
}

/// The libssl files in a `/proc/PID/maps` text (each once).
pub fn libssl_in_maps(text: &str) -> Vec<MappedLib> {
    let mut out: Vec<MappedLib> = Vec::new();
    for line in text.lines() {
        let mut f = line.splitn(6, ' ');
        let (Some(_range), Some(_perms), Some(_off), Some(dev), Some(inode), Some(rest)) =
            (f.next(), f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let path = rest.trim_start();
        // A library replaced on disk (package upgrade) still runs from the deleted file,
        // which cannot be opened by path: skipped.
        if path.ends_with(" (deleted)") || !path.starts_with('/') {
            continue;
        }
        let name = path.rsplit('/').next().unwrap_or("");
        if !name.starts_with("libssl.so") {
            continue;
        }
        let Ok(inode) = inode.parse::<u64>() else { continue };
        if !out.iter().any(|m| m.dev == dev && m.inode == inode) {
            out.push(MappedLib { path: path.to_string(), dev: dev.to_string(), inode });
        }
    }
    out
}

/// A library to attach to, with a path this process can open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// `/proc/PID/root/<path>`.
    pub open_path: PathBuf,
    /// The process it was found in (0: found on disk, in a system directory).
    pub pid: u32,
    /// The library as mapped.
    pub lib: MappedLib,
}

/// Scans in which a new process is looked at again.
pub const YOUNG_SCANS: u32 = 10;
/// Every this many scans, every process is looked at.
pub const FULL_EVERY: u64 = 30;

/// Remembers which processes were scanned and which files were found.
#[derive(Debug, Default)]
pub struct Scanner {
    /// Process → scans it was looked at in.
    seen_pids: HashMap<u32, u32>,
    scans: u64,
    files: HashSet<(String, u64)>,
    /// Processes whose maps could not be read (exited meanwhile, or permission).
    pub unreadable: u64,
}

/// Where distributions put libssl: probed at start-up even when no process maps it yet, so host
/// processes started later are covered from their first connection.
pub const SYSTEM_DIRS: [&str; 9] = [
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
    "/usr/local/lib",
];

/// `maj:min` of a device number as `/proc/PID/maps` prints it.
fn dev_string(dev: u64) -> String {
    format!("{:02x}:{:02x}", nix::sys::stat::major(dev), nix::sys::stat::minor(dev))
}

impl Scanner {
    /// The libssl files in `dirs` not found before (symlinks resolved, each file once).
    pub fn scan_dirs(&mut self, dirs: &[&str]) -> Vec<Found> {
        use std::os::unix::fs::MetadataExt;
        let mut found = Vec::new();
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(dir) else { continue };
            for e in entries.flatten() {
                let name = e.file_name();
                let Some(name) = name.to_str() else { continue };
                if !name.starts_with("libssl.so.") {
                    continue;
                }
                let Ok(real) = std::fs::canonicalize(e.path()) else { continue };
                let Ok(meta) = std::fs::metadata(&real) else { continue };
                if !meta.is_file() {
                    continue;
                }
                let lib = MappedLib { path: real.to_string_lossy().into_owned(), dev: dev_string(meta.dev()), inode: meta.ino() };
                if self.files.insert((lib.dev.clone(), lib.inode)) {
                    found.push(Found { open_path: real, pid: 0, lib });
                }
            }
        }
        found
    }

    /// Scans processes under `proc_root` not seen before; returns libssl files not found before.
    /// `skip_pid` (this agent) is never scanned.
    pub fn scan(&mut self, proc_root: &Path, skip_pid: u32) -> Vec<Found> {
        let Ok(dir) = std::fs::read_dir(proc_root) else { return Vec::new() };
        self.scans += 1;
        let full = self.scans.is_multiple_of(FULL_EVERY);
        let mut alive = HashSet::new();
        let mut found = Vec::new();
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            alive.insert(pid);
            let looked = self.seen_pids.entry(pid).or_insert(0);
            if pid == skip_pid || (*looked >= YOUNG_SCANS && !full) {
                continue;
            }
            *looked += 1;
            let Ok(maps) = std::fs::read_to_string(entry.path().join("maps")) else {
                self.unreadable += 1;
                continue;
            };
            for lib in libssl_in_maps(&maps) {
                if self.files.insert((lib.dev.clone(), lib.inode)) {
                    let open_path = entry.path().join("root").join(lib.path.trim_start_matches('/'));
                    found.push(Found { open_path, pid, lib });
                }
            }
        }
        // Pids are reused: forget the ones that are gone, so a new process gets scanned.
        self.seen_pids.retain(|p, _| alive.contains(p));
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A python3 that has imported `ssl` (so maps libssl); killed on drop.
    struct Python(std::process::Child);

    impl Python {
        fn with_ssl() -> Python {
            let mut child = std::process::Command::new("python3")
                .args(["-c", "import ssl, sys; print('ok', flush=True); sys.stdin.read()"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("python3");
            let mut line = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().expect("stdout")), &mut line).expect("python3 output");
            Python(child)
        }
    }

    impl Drop for Python {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    const MAPS: &str = "\
55d0c0a00000-55d0c0a2b000 r--p 00000000 fd:01 1311 /usr/bin/curl
7f1e2c000000-7f1e2c05b000 r--p 00000000 fd:01 4242 /usr/lib/x86_64-linux-gnu/libssl.so.3
7f1e2c05b000-7f1e2c0b7000 r-xp 0005b000 fd:01 4242 /usr/lib/x86_64-linux-gnu/libssl.so.3
7f1e2d000000-7f1e2d100000 r-xp 00000000 00:2a 77 /opt/app dir/lib/libssl.so.1.1
7f1e2e000000-7f1e2e100000 r-xp 00000000 fd:01 88 /usr/lib/libssl.so.3 (deleted)
7f1e2f000000-7f1e2f100000 r-xp 00000000 fd:01 99 /usr/lib/libssl3-helper.so
7ffd8c000000-7ffd8c021000 rw-p 00000000 00:00 0 [stack]
garbage line
";

    #[test]
    fn finds_each_libssl_file_once() {
        let libs = libssl_in_maps(MAPS);
        assert_eq!(libs.len(), 2, "{libs:?}");
        assert_eq!(libs[0], MappedLib { path: "/usr/lib/x86_64-linux-gnu/libssl.so.3".into(), dev: "fd:01".into(), inode: 4242 });
        assert_eq!(libs[1].path, "/opt/app dir/lib/libssl.so.1.1", "paths with spaces are kept whole");
    }

    #[test]
    fn scans_this_machine_and_reports_each_file_once() {
        // A child that maps libssl (python's ssl module) must be found through /proc/PID/root.
        let child = Python::with_ssl();
        let mut s = Scanner::default();
        let found = s.scan(Path::new("/proc"), std::process::id());
        assert!(!found.is_empty(), "no libssl found in any process");
        for f in &found {
            assert!(f.open_path.starts_with(format!("/proc/{}/root", f.pid)));
            assert!(f.open_path.exists() || f.pid != child.0.id(), "{f:?}");
        }
        // The same files are not reported twice.
        assert!(s.scan(Path::new("/proc"), std::process::id()).iter().all(|f| !found.iter().any(|g| g.lib == f.lib)));
    }

    #[test]
    fn system_libraries_match_what_processes_map() {
        let mut s = Scanner::default();
        let system = s.scan_dirs(&SYSTEM_DIRS);
        assert!(!system.is_empty(), "no libssl.so.* in the system directories");
        // A process mapping the system libssl is then nothing new: same dev:inode as maps says.
        let child = Python::with_ssl();
        let again = s.scan(Path::new("/proc"), std::process::id());
        assert!(again.iter().all(|f| f.pid != child.0.id()), "{again:?} (system: {system:?})");
    }

    #[test]
    fn a_process_that_loads_libssl_late_is_found_while_young() {
        let dir = std::env::temp_dir().join(format!("akto-tap-libssl-late-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let copy = dir.join("libssl.so.3");
        let system = Scanner::default().scan_dirs(&SYSTEM_DIRS);
        let system = system.iter().find(|f| f.lib.path.ends_with("libssl.so.3")).expect("the system libssl.so.3");
        std::fs::copy(&system.open_path, &copy).unwrap();
        // Starts without libssl; imports ssl (loading the copy) when told to.
        let mut child = std::process::Command::new("python3")
            .args(["-c", "import sys; print('a', flush=True); sys.stdin.readline(); import ssl; print('b', flush=True); sys.stdin.read()"])
            .env("LD_LIBRARY_PATH", &dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        let mut s = Scanner::default();
        let before = s.scan(Path::new("/proc"), std::process::id());
        assert!(!before.iter().any(|f| f.lib.path == copy.to_string_lossy()));
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"go\n").unwrap();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        let after = s.scan(Path::new("/proc"), std::process::id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(after.iter().any(|f| f.lib.path == copy.to_string_lossy() && f.pid == child.id()), "{after:?}");
    }
}
