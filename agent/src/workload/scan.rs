//! The procfs scanner: the only file that reads `/proc` for workload attribution.
//!
//! One scan builds a [`SockTable`]: every TCP socket of every network namespace, keyed by
//! (local, remote) address, and every listening socket keyed by the address it accepts on, each
//! with the process that holds it. Steps:
//! 1. list `/proc/PID`; group processes by network namespace (`/proc/PID/ns/net`). With
//!    `hostPID` the agent sees the pods' processes, and each pod has its own namespace;
//! 2. per namespace, read `net/tcp`, `net/tcp6` and its local addresses (`net/fib_trie`,
//!    `net/if_inet6`) through one of its processes;
//! 3. per process, read the `fd` links `socket:[INODE]` to find who holds which socket, then
//!    `comm` and `cgroup` (pod UID) of the holders only.
//!
//! Bounded: at most `max_sockets` sockets are kept per scan (the rest counted). A process that
//! exits mid-scan or a file that cannot be read is skipped. The scan runs on the attributor's
//! background thread, never on a caller's.

use super::procfs::{self, CgroupInfo, SockEntry, TCP_LISTEN};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

/// A process holding a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    /// Process id (thread-group id), as seen from the agent's PID namespace.
    pub pid: u32,
    /// `comm`.
    pub name: Option<String>,
    /// From its cgroup.
    pub cgroup: CgroupInfo,
}

/// What one scan found.
#[derive(Debug, Default)]
pub struct SockTable {
    /// (local, remote) of connected sockets → holder.
    pub conns: HashMap<(SocketAddr, SocketAddr), Arc<ProcInfo>>,
    /// Address a listening socket accepts on → holder. A wildcard listener is entered under
    /// every local address of its namespace.
    pub listen: HashMap<SocketAddr, Arc<ProcInfo>>,
    /// Wildcard listeners of the agent's own namespace by port, when its addresses could not be
    /// read.
    pub listen_any: HashMap<u16, Arc<ProcInfo>>,
    /// Every holder by pid (for connections registered by pid).
    pub procs: HashMap<u32, Arc<ProcInfo>>,
    /// Addresses local to some namespace of this host (a lookup miss on one of them is worth
    /// a rescan; a miss on mirrored traffic between other hosts is not).
    pub local_ips: HashSet<IpAddr>,
}

/// Counters of one scan.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanReport {
    /// Processes listed.
    pub processes: usize,
    /// Network namespaces read.
    pub namespaces: usize,
    /// Sockets kept.
    pub sockets: usize,
    /// Sockets not kept because of `max_sockets`.
    pub sockets_over_cap: usize,
    /// Lines of `net/tcp*` that did not parse.
    pub bad_lines: usize,
    /// Processes whose `fd` directory could not be listed.
    pub fd_denied: usize,
    /// Sockets attributed to the only candidate process of their namespace.
    pub inferred: usize,
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn pids(root: &Path) -> std::io::Result<Vec<u32>> {
    let mut out: Vec<u32> =
        std::fs::read_dir(root)?.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    out.sort_unstable();
    Ok(out)
}

/// One namespace's sockets and addresses.
struct Netns {
    entries: Vec<SockEntry>,
    addrs: Vec<IpAddr>,
    own: bool,
    bad: usize,
}

/// Scans `root` (normally `/proc`). Errors only when `root` cannot be listed.
pub fn scan(root: &Path, max_sockets: usize) -> std::io::Result<(SockTable, ScanReport)> {
    let pids = pids(root)?;
    let mut report = ScanReport { processes: pids.len(), ..ScanReport::default() };
    let own_ns = std::fs::read_link(root.join("self/ns/net")).ok();
    // Namespaces in pid order, the agent's own first (loopback addresses exist in every
    // namespace; the host's listeners win them).
    let mut ns_of: HashMap<std::path::PathBuf, usize> = HashMap::new();
    let mut reps: Vec<(u32, bool, std::path::PathBuf)> = Vec::new();
    let mut pid_ns: Vec<(u32, std::path::PathBuf)> = Vec::new();
    for &pid in &pids {
        let Ok(ns) = std::fs::read_link(root.join(format!("{pid}/ns/net"))) else { continue };
        if !ns_of.contains_key(&ns) {
            ns_of.insert(ns.clone(), reps.len());
            reps.push((pid, Some(&ns) == own_ns.as_ref(), ns.clone()));
        }
        pid_ns.push((pid, ns));
    }
    reps.sort_by_key(|(pid, own, _)| (!own, *pid));
    // pid → index of its namespace in `namespaces`.
    let ns_index: HashMap<&std::path::PathBuf, usize> =
        reps.iter().enumerate().map(|(i, (_, _, ns))| (ns, i)).collect();
    let ns_of_pid: HashMap<u32, usize> =
        pid_ns.iter().filter_map(|(pid, ns)| Some((*pid, *ns_index.get(ns)?))).collect();
    let mut namespaces: Vec<Netns> = Vec::new();
    let read_ns = |dir: &Path, own: bool| -> Netns {
        let mut entries = Vec::new();
        let mut bad = 0;
        for f in ["tcp", "tcp6"] {
            if let Some(text) = read(&dir.join(f)) {
                let p = procfs::parse_proc_net_tcp(&text);
                bad += p.skipped;
                entries.extend(p.items);
            }
        }
        let mut addrs: Vec<IpAddr> = read(&dir.join("fib_trie"))
            .map(|t| procfs::parse_fib_trie_locals(&t))
            .unwrap_or_default()
            .into_iter()
            .map(IpAddr::V4)
            .collect();
        addrs.extend(
            read(&dir.join("if_inet6"))
                .map(|t| procfs::parse_if_inet6(&t))
                .unwrap_or_default()
                .into_iter()
                .map(IpAddr::V6),
        );
        Netns { entries, addrs, own, bad }
    };
    if reps.is_empty() {
        // No namespace links readable: the agent's own view only.
        namespaces.push(read_ns(&root.join("net"), true));
    } else {
        for (pid, own, _) in &reps {
            namespaces.push(read_ns(&root.join(format!("{pid}/net")), *own));
        }
    }
    report.namespaces = namespaces.len();
    report.bad_lines = namespaces.iter().map(|n| n.bad).sum();
    // inode → (namespace, entry), bounded.
    let mut by_inode: HashMap<u64, (usize, SockEntry)> = HashMap::new();
    for (i, ns) in namespaces.iter().enumerate() {
        for e in ns.entries.iter().filter(|e| e.inode != 0) {
            if by_inode.len() >= max_sockets {
                report.sockets_over_cap += 1;
                continue;
            }
            by_inode.entry(e.inode).or_insert((i, *e));
        }
    }
    report.sockets = by_inode.len();
    // inode → holder pid (the lowest: pre-fork servers share the listening socket).
    let mut holder: HashMap<u64, u32> = HashMap::new();
    // Namespaces with a process whose fds could not be listed (another uid, and no
    // CAP_DAC_READ_SEARCH: see README "Workload attribution").
    let mut denied = vec![false; namespaces.len()];
    let mut readable: std::collections::HashSet<u32> = std::collections::HashSet::new();
    for &pid in &pids {
        let dir = match std::fs::read_dir(root.join(format!("{pid}/fd"))) {
            Ok(d) => d,
            Err(e) => {
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    report.fd_denied += 1;
                    if let Some(&i) = ns_of_pid.get(&pid) {
                        denied[i] = true;
                    }
                }
                continue;
            }
        };
        readable.insert(pid);
        for fd in dir.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else { continue };
            let Some(inode) = target.to_str().and_then(procfs::parse_socket_link) else { continue };
            if by_inode.contains_key(&inode) {
                holder.entry(inode).or_insert(pid);
            }
        }
    }
    // A pod's namespace usually holds its pause process and one application process: when the
    // fds are unreadable and exactly one process other than `pause` could hold the socket, it
    // does (pause holds no TCP socket). With sidecars there are several: no guess.
    if denied.iter().any(|d| *d) {
        let mut candidates: Vec<Vec<u32>> = vec![Vec::new(); namespaces.len()];
        for (pid, i) in &ns_of_pid {
            if denied[*i] && !readable.contains(pid) {
                let comm = read(&root.join(format!("{pid}/comm"))).and_then(|t| procfs::parse_comm(&t));
                if comm.as_deref() != Some("pause") {
                    candidates[*i].push(*pid);
                }
            }
        }
        for (inode, (i, _)) in &by_inode {
            if let (false, [only]) = (holder.contains_key(inode), candidates[*i].as_slice()) {
                holder.insert(*inode, *only);
                report.inferred += 1;
            }
        }
    }
    let mut table = SockTable::default();
    for n in &namespaces {
        table.local_ips.extend(n.addrs.iter().copied());
        table.local_ips.extend(n.entries.iter().map(|e| e.local.ip()).filter(|ip| !ip.is_unspecified()));
    }
    for pid in holder.values() {
        if table.procs.contains_key(pid) {
            continue;
        }
        let dir = root.join(pid.to_string());
        let info = ProcInfo {
            pid: *pid,
            name: read(&dir.join("comm")).and_then(|t| procfs::parse_comm(&t)),
            cgroup: read(&dir.join("cgroup")).map(|t| procfs::parse_cgroup(&t)).unwrap_or_default(),
        };
        table.procs.insert(*pid, Arc::new(info));
    }
    // Entries in namespace order, so the first namespace to claim an address keeps it.
    let mut held: Vec<(usize, SockEntry, u32)> =
        by_inode.iter().filter_map(|(inode, (ns, e))| Some((*ns, *e, *holder.get(inode)?))).collect();
    held.sort_by_key(|(ns, e, _)| (*ns, e.inode));
    for (ns, e, pid) in held {
        let Some(p) = table.procs.get(&pid).cloned() else { continue };
        if e.state != TCP_LISTEN {
            table.conns.entry((e.local, e.remote)).or_insert(p);
            continue;
        }
        let ip = e.local.ip();
        if !ip.is_unspecified() {
            table.listen.entry(e.local).or_insert(p);
            continue;
        }
        let n = &namespaces[ns];
        if n.addrs.is_empty() {
            if n.own {
                table.listen_any.entry(e.local.port()).or_insert(p);
            }
            continue;
        }
        // `0.0.0.0` accepts IPv4; `::` accepts both families (dual stack, the default).
        let v6_any = ip == IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        for a in n.addrs.iter().filter(|a| v6_any || a.is_ipv4()) {
            table.listen.entry(SocketAddr::new(*a, e.local.port())).or_insert_with(|| Arc::clone(&p));
        }
    }
    Ok((table, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const HEADER: &str =
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

    /// A process in a fake procfs: namespace link, `net/*` (for namespace representatives),
    /// `fd` links, `comm` and `cgroup`.
    #[expect(clippy::too_many_arguments, reason = "a fake process is this list of files")]
    fn process(root: &Path, pid: u32, ns: &str, tcp: &str, fib: &str, sockets: &[u64], comm: &str, cgroup: &str) {
        let d = root.join(pid.to_string());
        std::fs::create_dir_all(d.join("ns")).expect("dir");
        std::fs::create_dir_all(d.join("net")).expect("dir");
        std::fs::create_dir_all(d.join("fd")).expect("dir");
        symlink(format!("net:[{ns}]"), d.join("ns/net")).expect("ns link");
        std::fs::write(d.join("net/tcp"), format!("{HEADER}{tcp}")).expect("tcp");
        std::fs::write(d.join("net/fib_trie"), fib).expect("fib");
        for (fd, inode) in sockets.iter().enumerate() {
            symlink(format!("socket:[{inode}]"), d.join(format!("fd/{}", fd + 3))).expect("fd link");
        }
        symlink("/dev/null", d.join("fd/0")).expect("fd link");
        std::fs::write(d.join("comm"), format!("{comm}\n")).expect("comm");
        std::fs::write(d.join("cgroup"), cgroup).expect("cgroup");
    }

    fn fib(ip: &str) -> String {
        format!("Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- {ip}\n        /32 host LOCAL\n     |-- 127.0.0.1\n        /32 host LOCAL\n")
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn namespaces_listeners_and_pods_from_a_fake_procfs() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path();
        // Host namespace: sshd-like listener on 0.0.0.0:8080 and a client connection.
        let host_tcp = "   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 100 1\n\
                        1: 0100000A:C350 0501F40A:0050 01 00000000:00000000 00:00000000 00000000     0        0 101 1\n";
        process(root, 10, "1", host_tcp, &fib("10.0.0.1"), &[100], "hostd", "0::/system.slice/hostd.service\n");
        process(root, 11, "1", "", "", &[101], "curl", "0::/user.slice\n");
        // A pod's namespace: wildcard listener on :80, same port number as nothing on the host.
        let pod_tcp =
            "   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 200 1\n\
                       1: 0501F40A:0050 0100000A:C350 01 00000000:00000000 00:00000000 00000000     0        0 201 1\n\
                       2: 0501F40A:0051 0100000A:C351 06 00000000:00000000 00:00000000 00000000     0        0 0 1\n\
                       bogus line\n";
        let cg = "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod7e1b2f4c_9a3d_4e2b_8c1f_0d5e6a7b8c9d.slice/cri-containerd-3f1c2a9e8b7d6c5f.scope\n";
        process(root, 20, "2", pod_tcp, &fib("10.244.1.5"), &[], "pause", cg);
        process(root, 21, "2", pod_tcp, &fib("10.244.1.5"), &[200, 201], "nginx", cg);
        symlink("10", root.join("self")).expect("self");
        std::fs::create_dir_all(root.join("not-a-pid")).expect("dir");

        let (t, report) = scan(root, 100).expect("scan");
        assert_eq!(
            (report.processes, report.namespaces, report.sockets, report.bad_lines, report.sockets_over_cap),
            (4, 2, 4, 1, 0)
        );
        let nginx = t.listen.get(&sa("10.244.1.5:80")).expect("pod listener");
        assert_eq!((nginx.pid, nginx.name.as_deref()), (21, Some("nginx")));
        assert_eq!(nginx.cgroup.pod_uid.as_deref(), Some("7e1b2f4c-9a3d-4e2b-8c1f-0d5e6a7b8c9d"));
        assert_eq!(t.conns.get(&(sa("10.244.1.5:80"), sa("10.0.0.1:50000"))).map(|p| p.pid), Some(21));
        assert_eq!(t.conns.get(&(sa("10.0.0.1:50000"), sa("10.244.1.5:80"))).map(|p| p.pid), Some(11));
        // The pod's wildcard listener is not the host's and vice versa; loopback goes to the host.
        assert_eq!(t.listen.get(&sa("10.0.0.1:8080")).map(|p| p.pid), Some(10));
        assert!(!t.listen.contains_key(&sa("10.0.0.1:80")) && !t.listen.contains_key(&sa("10.244.1.5:8080")));
        assert_eq!(t.listen.get(&sa("127.0.0.1:80")).map(|p| p.pid), Some(21));
        assert_eq!(t.listen.get(&sa("127.0.0.1:8080")).map(|p| p.pid), Some(10));
        assert!(t.local_ips.contains(&"10.244.1.5".parse::<IpAddr>().expect("ip")));
        // The cap counts what it left out.
        let (t, report) = scan(root, 2).expect("scan");
        assert_eq!((report.sockets, report.sockets_over_cap), (2, 2));
        assert!(t.conns.len() + t.listen.len() >= 1);
        assert!(scan(&root.join("missing"), 10).is_err());
    }
}
