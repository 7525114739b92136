//! Finding the OpenSSL libraries processes use: every `libssl.so*` mapped in `/proc/PID/maps`,
//! opened through `/proc/PID/root` so a container's own libssl (another file, another inode) is
//! found too. Uprobes attach to a file (inode), for every process that maps it, now or later:
//! each distinct file is attached once.
//!
//! Processes load libssl late (Python imports `ssl` on first use, plugins are dlopen'ed), so a
//! process is scanned at each of its first [`YOUNG_SCANS`] scans, and every process once every
//! [`FULL_EVERY`] scans; in between, reading every process's maps (tens of KiB each) would cost
//! more than it finds.

use akto_tap_ebpf_common::tls::SslLayout;
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
                let lib = MappedLib {
                    path: real.to_string_lossy().into_owned(),
                    dev: dev_string(meta.dev()),
                    inode: meta.ino(),
                };
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

/// The OpenSSL version a library file announces: the first `OpenSSL X.Y.Z` in it (the
/// `OPENSSL_VERSION_TEXT` libssl embeds), as (major, minor, patch).
pub fn openssl_version(bytes: &[u8]) -> Option<(u32, u32, u32)> {
    const TAG: &[u8] = b"OpenSSL ";
    let mut from = 0;
    while let Some(at) = bytes.get(from..)?.windows(TAG.len()).position(|w| w == TAG) {
        let start = from + at + TAG.len();
        let text: Vec<u8> =
            bytes[start..].iter().take(16).take_while(|b| b.is_ascii_digit() || **b == b'.').copied().collect();
        let mut parts = text.split(|b| *b == b'.').map(|p| std::str::from_utf8(p).ok()?.parse::<u32>().ok());
        if let (Some(Some(a)), Some(Some(b)), Some(Some(c))) = (parts.next(), parts.next(), parts.next()) {
            return Some((a, b, c));
        }
        from = start;
    }
    None
}

/// Where the socket of an `SSL*` is in this OpenSSL version (see [`SslLayout`]); `None` for
/// versions whose private structs were not checked: their sockets are still learned from
/// `SSL_set_fd` and from the socket calls inside SSL calls.
///
/// 1.1.1 and 3.0/3.1 open `struct ssl_st` with `int version; const SSL_METHOD *method; BIO
/// *rbio; BIO *wbio; BIO *bbio; int rwstate; int (*handshake_func)(); int server;`; `struct
/// bio_st` gained a leading `OSSL_LIB_CTX *libctx` in 3.0 (`method` at 8, `num` at 56; at 0 and
/// 48 in 1.1.1). Checked on this host's 3.0 with ctypes (`SSL_set_fd`, `SSL_set_accept_state`).
/// 3.2 made `SSL` a header of `struct ssl_connection_st`, whose offsets vary with the build's
/// atomics and the minor version (3.5 added `user_ssl`): left to the other two paths.
pub fn layout_for(version: (u32, u32, u32)) -> Option<SslLayout> {
    match version {
        (1, 1, 1) => Some(SslLayout { rbio: 16, bio_method: 0, bio_num: 48, server: 56 }),
        (3, 0 | 1, _) => Some(SslLayout { rbio: 16, bio_method: 8, bio_num: 56, server: 56 }),
        _ => None,
    }
}

/// The newest symbol version node of a libssl (`OPENSSL_3.0.3`, `OPENSSL_1_1_1a`): the API
/// level, which moves with every minor release that adds functions (3.2 added
/// `OPENSSL_3.2.0`), so its (major, minor) is the library's.
pub fn version_nodes(bytes: &[u8]) -> Option<(u32, u32, u32)> {
    const TAG: &[u8] = b"OPENSSL_";
    let mut best = None;
    let mut from = 0;
    while let Some(at) = bytes.get(from..).and_then(|b| b.windows(TAG.len()).position(|w| w == TAG)) {
        let start = from + at + TAG.len();
        from = start;
        let text: Vec<u8> = bytes[start..]
            .iter()
            .take(12)
            .take_while(|b| b.is_ascii_digit() || **b == b'.' || **b == b'_')
            .copied()
            .collect();
        let mut parts =
            text.split(|b| *b == b'.' || *b == b'_').map(|p| std::str::from_utf8(p).ok()?.parse::<u32>().ok());
        if let (Some(Some(a)), Some(Some(b)), Some(Some(c))) = (parts.next(), parts.next(), parts.next()) {
            best = best.max(Some((a, b, c)));
        }
    }
    best
}

/// The OpenSSL version of a libssl file: the version text in it or in the libcrypto beside it
/// (libssl 3.0 itself does not embed `OPENSSL_VERSION_TEXT`), else its symbol version nodes.
pub fn version_of_file(path: &Path) -> Option<(u32, u32, u32)> {
    let bytes = std::fs::read(path).ok()?;
    if let Some(v) = openssl_version(&bytes) {
        return Some(v);
    }
    let name = path.file_name()?.to_str()?;
    let crypto = path.with_file_name(name.replacen("libssl", "libcrypto", 1));
    let from_crypto = std::fs::read(crypto).ok().and_then(|b| openssl_version(&b));
    let nodes = version_nodes(&bytes);
    match (from_crypto, nodes) {
        // The libcrypto beside it is of the same release when both agree on major.minor.
        (Some(c), Some(n)) if (c.0, c.1) >= (n.0, n.1) && c.0 == n.0 => Some(c),
        (_, n) => n,
    }
}

/// The layout of a library file, from its version (`None`: unreadable or unknown).
pub fn layout_of_file(path: &Path) -> (Option<(u32, u32, u32)>, Option<SslLayout>) {
    let version = version_of_file(path);
    (version, version.and_then(layout_for))
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
            std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().expect("stdout")), &mut line)
                .expect("python3 output");
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
        assert_eq!(
            libs[0],
            MappedLib { path: "/usr/lib/x86_64-linux-gnu/libssl.so.3".into(), dev: "fd:01".into(), inode: 4242 }
        );
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
        // Removed when the test ends (each run left a directory with a copy of libssl behind).
        let tmp = tempfile::Builder::new().prefix("akto-tap-libssl-late-").tempdir().unwrap();
        let dir = tmp.path();
        let copy = dir.join("libssl.so.3");
        let system = Scanner::default().scan_dirs(&SYSTEM_DIRS);
        let system = system.iter().find(|f| f.lib.path.ends_with("libssl.so.3")).expect("the system libssl.so.3");
        std::fs::copy(&system.open_path, &copy).unwrap();
        // Starts without libssl; imports ssl (loading the copy) when told to.
        let mut child = std::process::Command::new("python3")
            .args(["-c", "import sys; print('a', flush=True); sys.stdin.readline(); import ssl; print('b', flush=True); sys.stdin.read()"])
            .env("LD_LIBRARY_PATH", dir)
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

    #[test]
    fn version_from_library_bytes() {
        assert_eq!(openssl_version(b"\0junk OpenSSL \0OpenSSL 3.0.19 27 Jan 2026\0"), Some((3, 0, 19)));
        assert_eq!(openssl_version(b"OpenSSL 1.1.1w  11 Sep 2023"), Some((1, 1, 1)));
        assert_eq!(openssl_version(b"OpenSSL 3.2"), None);
        assert_eq!(openssl_version(b"no version here"), None);
        assert_eq!(version_nodes(b"\0OPENSSL_3.0.0\0OPENSSL_3.0.3\0OPENSSL_3.2.0\0OPENSSL_3.1.0\0"), Some((3, 2, 0)));
        assert_eq!(version_nodes(b"\0OPENSSL_1_1_0\0OPENSSL_1_1_1a\0OPENSSL_1_1_1\0"), Some((1, 1, 1)));
        assert_eq!(version_nodes(b"OPENSSL_ia32cap"), None);
    }

    #[test]
    fn version_selects_the_layout() {
        let v30 = layout_for((3, 0, 19)).unwrap();
        assert_eq!((v30.rbio, v30.bio_method, v30.bio_num, v30.server), (16, 8, 56, 56));
        assert_eq!(layout_for((3, 1, 4)), Some(v30));
        let v111 = layout_for((1, 1, 1)).unwrap();
        assert_eq!((v111.rbio, v111.bio_method, v111.bio_num), (16, 0, 48));
        assert_eq!(layout_for((3, 2, 0)), None);
        assert_eq!(layout_for((3, 5, 1)), None);
        assert_eq!(layout_for((1, 1, 0)), None);
    }

    /// The system libssl announces its version (Debian bookworm: 3.0.x, a known layout).
    #[test]
    fn system_libssl_version() {
        let path = Path::new("/usr/lib/x86_64-linux-gnu/libssl.so.3");
        if !path.exists() {
            eprintln!("no system libssl.so.3: skipped");
            return;
        }
        let (version, layout) = layout_of_file(path);
        let version = version.expect("version string in libssl");
        assert_eq!(version.0, 3);
        assert_eq!(layout.is_some(), version.1 <= 1);
    }
}
