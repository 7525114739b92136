//! Workload attribution: which process, and on Kubernetes which pod, an exchange belongs to.
//!
//! * [`procfs`] — pure parsers: `/proc/net/tcp{,6}`, `fd` links, `cgroup` (pod UID), local
//!   addresses (`fib_trie`, `if_inet6`), `comm`;
//! * [`scan`] — reads `/proc` into a socket → process table (every network namespace: with
//!   `hostPID` the pods' processes are visible, each pod in its own namespace);
//! * [`k8s`] — pure: the `PodList` decoding and the index by pod IP and UID;
//! * [`api`] — the Kubernetes API client (the only HTTP here);
//! * [`config`] — flags, typed configuration, errors.
//!
//! [`Attributor::lookup`] never does I/O: it reads two snapshots (socket table, pod index)
//! that background threads replace, so the shards pay a hash lookup per exchange. A lookup
//! that finds no process for a local address asks the procfs thread for a rescan (a channel of
//! one, never waiting), which rescans at most every `min_interval`.
//!
//! Bounded: sockets per scan (`max_sockets`), pods (`max_pods`), registered connections
//! (`max_registered`, expiring after `register_ttl`); what a cap cost is counted
//! (`akto_tap_workload_*`). Nothing here is fatal at run time: an unreadable `/proc` or an
//! unreachable API server is logged once per change of state and counted, and lookups answer
//! with what is known.

pub mod api;
pub mod config;
pub mod k8s;
pub mod procfs;
pub mod scan;
#[cfg(test)]
mod tests_live;

pub use config::{WorkloadArgs, WorkloadConfig, WorkloadError};
pub use k8s::PodMeta;

use crate::metrics::MetricSet;
use procfs::canonical;
use scan::{ProcInfo, SockTable};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Who an exchange belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// The process (server side when local, else client side).
    pub pid: Option<u32>,
    /// Its `comm`.
    pub process_name: Option<String>,
    /// Its pod (from its cgroup, else from the server or client IP).
    pub pod: Option<Arc<PodMeta>>,
}

impl Workload {
    /// The `tag` entries of the workload: `namespace`, `pod`, `node` and each label as
    /// `label.<key>` (flat strings, as Akto reads `tag`).
    pub fn tags(&self) -> Vec<(String, String)> {
        let Some(p) = &self.pod else { return Vec::new() };
        let mut out = vec![("namespace".to_string(), p.namespace.clone()), ("pod".to_string(), p.name.clone())];
        if let Some(n) = &p.node {
            out.push(("node".into(), n.clone()));
        }
        out.extend(p.labels.iter().map(|(k, v)| (format!("label.{k}"), v.clone())));
        out
    }
}

/// Counters (atomics, updated where things happen).
#[derive(Debug, Default)]
struct Counters {
    lookups_process: AtomicU64,
    lookups_pod_only: AtomicU64,
    lookups_none: AtomicU64,
    lookups_pod: AtomicU64,
    registered_hits: AtomicU64,
    rescan_requests: AtomicU64,
    rescans: AtomicU64,
    rescan_errors: AtomicU64,
    sockets: AtomicU64,
    sockets_over_cap: AtomicU64,
    bad_lines: AtomicU64,
    fd_denied: AtomicU64,
    inferred: AtomicU64,
    scan_micros: AtomicU64,
    k8s_refreshes: AtomicU64,
    k8s_errors: [AtomicU64; K8S_REASONS.len()],
    k8s_up: AtomicU64,
    pods: AtomicU64,
    pods_over_cap: AtomicU64,
    registered: AtomicU64,
    registered_evicted: AtomicU64,
    registered_expired: AtomicU64,
}

const K8S_REASONS: [&str; 5] = ["token", "unreachable", "denied", "status", "decode"];

/// The counters at one moment (for `/metrics` and tests).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkloadStats {
    /// Lookups that found a process.
    pub lookups_process: u64,
    /// Lookups that found a pod but no process.
    pub lookups_pod_only: u64,
    /// Lookups that found nothing.
    pub lookups_none: u64,
    /// Lookups that found a pod (with or without a process).
    pub lookups_pod: u64,
    /// Lookups answered by a registered connection.
    pub registered_hits: u64,
    /// Rescans asked for by lookups that missed a local process.
    pub rescan_requests: u64,
    /// procfs scans done.
    pub rescans: u64,
    /// procfs scans that failed (`/proc` unreadable).
    pub rescan_errors: u64,
    /// Sockets in the current table.
    pub sockets: u64,
    /// Sockets left out of a scan by `max_sockets`.
    pub sockets_over_cap: u64,
    /// `net/tcp*` lines that did not parse.
    pub bad_lines: u64,
    /// Processes whose `fd` directory could not be listed, last scan.
    pub fd_denied: u64,
    /// Sockets attributed to the only candidate process of their namespace, last scan.
    pub inferred: u64,
    /// Duration of the last scan, microseconds.
    pub scan_micros: u64,
    /// Pod lists fetched.
    pub k8s_refreshes: u64,
    /// Failed pod lists by reason.
    pub k8s_errors: Vec<(&'static str, u64)>,
    /// 1 when the last pod list succeeded.
    pub k8s_up: u64,
    /// Pods indexed.
    pub pods: u64,
    /// Pods left out by `max_pods` (last list).
    pub pods_over_cap: u64,
    /// Registered connections held.
    pub registered: u64,
    /// Registrations evicted by `max_registered`.
    pub registered_evicted: u64,
    /// Registrations expired.
    pub registered_expired: u64,
}

impl WorkloadStats {
    /// Failed pod lists, all reasons.
    #[cfg(test)]
    pub fn k8s_errors_total(&self) -> u64 {
        self.k8s_errors.iter().map(|(_, n)| n).sum()
    }

    /// Adds the `akto_tap_workload_*` metrics.
    pub fn add_metrics(&self, m: &mut MetricSet) {
        let help = "Workload lookups (one per record), by what they found.";
        m.counter("workload_lookups_total", help, &[("result", "process")], self.lookups_process);
        m.counter("workload_lookups_total", help, &[("result", "pod_only")], self.lookups_pod_only);
        m.counter("workload_lookups_total", help, &[("result", "none")], self.lookups_none);
        m.counter("workload_lookups_pod_total", "Workload lookups that found a Kubernetes pod.", &[], self.lookups_pod);
        m.counter(
            "workload_registered_hits_total",
            "Workload lookups answered by a registered connection (TLS uprobes).",
            &[],
            self.registered_hits,
        );
        m.counter(
            "workload_rescan_requests_total",
            "procfs rescans asked for by lookups that missed a local process.",
            &[],
            self.rescan_requests,
        );
        m.counter("workload_rescans_total", "procfs scans of sockets and processes.", &[], self.rescans);
        m.counter("workload_rescan_errors_total", "procfs scans that failed.", &[], self.rescan_errors);
        m.gauge("workload_sockets", "Sockets in the socket-to-process table.", &[], self.sockets as f64);
        m.counter(
            "workload_sockets_over_cap_total",
            "Sockets left out of a scan by --workload-max-sockets.",
            &[],
            self.sockets_over_cap,
        );
        m.counter(
            "workload_procfs_bad_lines_total",
            "Lines of /proc/*/net/tcp* that did not parse.",
            &[],
            self.bad_lines,
        );
        m.gauge(
            "workload_fd_denied",
            "Processes whose fd directory the last scan could not list (another uid without CAP_DAC_READ_SEARCH).",
            &[],
            self.fd_denied as f64,
        );
        m.gauge(
            "workload_sockets_inferred",
            "Sockets the last scan attributed to the only candidate process of their network namespace.",
            &[],
            self.inferred as f64,
        );
        m.gauge("workload_scan_seconds", "Duration of the last procfs scan.", &[], self.scan_micros as f64 / 1e6);
        m.counter(
            "workload_k8s_refreshes_total",
            "Pod lists fetched from the Kubernetes API.",
            &[],
            self.k8s_refreshes,
        );
        for (reason, n) in &self.k8s_errors {
            m.counter("workload_k8s_errors_total", "Failed pod lists, by reason.", &[("reason", reason)], *n);
        }
        m.gauge("workload_k8s_up", "1 when the last pod list succeeded.", &[], self.k8s_up as f64);
        m.gauge("workload_pods", "Pods of this node indexed.", &[], self.pods as f64);
        m.counter("workload_pods_over_cap_total", "Pods left out by --k8s-max-pods.", &[], self.pods_over_cap);
        m.gauge("workload_registered", "Connections registered with their process.", &[], self.registered as f64);
        m.counter(
            "workload_registered_evicted_total",
            "Registrations evicted by --workload-max-registered.",
            &[],
            self.registered_evicted,
        );
        m.counter("workload_registered_expired_total", "Registrations expired.", &[], self.registered_expired);
    }
}

/// Connections registered by pid, bounded.
#[derive(Debug, Default)]
struct Registry {
    /// Connection → (pid, its name when the scan did not know the pid yet, expiry).
    map: HashMap<(SocketAddr, SocketAddr), (u32, Option<String>, Instant)>,
}

/// State shared by the handle and the background threads.
#[derive(Debug)]
struct Shared {
    table: RwLock<Arc<SockTable>>,
    pods: RwLock<Arc<k8s::PodIndex>>,
    registry: Mutex<Registry>,
    counters: Counters,
    max_registered: usize,
    register_ttl: Duration,
    /// Asks the procfs thread for a rescan (capacity 1: `try_send`, never waits).
    rescan: Mutex<Option<SyncSender<()>>>,
    stopped: AtomicBool,
}

/// Stops the background threads when the last handle goes.
#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    _stop: SyncSender<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Relaxed);
        if let Ok(mut r) = self.shared.rescan.lock() {
            r.take();
        }
    }
}

/// Finds the workload of connections. Cheap to clone; `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Attributor {
    inner: Option<Arc<Inner>>,
}

impl Default for Attributor {
    fn default() -> Self {
        Attributor::disabled()
    }
}

fn read<T>(l: &RwLock<Arc<T>>) -> Option<Arc<T>> {
    l.read().ok().map(|g| Arc::clone(&g))
}

impl Attributor {
    /// No attribution: every lookup answers `None`.
    pub fn disabled() -> Attributor {
        Attributor { inner: None }
    }

    /// Scans procfs once (so the first exchanges are attributed), then starts the refresh
    /// threads.
    pub fn start(cfg: WorkloadConfig) -> Result<Attributor, WorkloadError> {
        let client = cfg.k8s.clone().map(api::Client::new).transpose()?;
        let (rescan_tx, rescan_rx) = mpsc::sync_channel::<()>(1);
        let (stop_tx, stop_rx) = mpsc::sync_channel::<()>(1);
        let shared = Arc::new(Shared {
            table: RwLock::new(Arc::new(SockTable::default())),
            pods: RwLock::new(Arc::new(k8s::PodIndex::default())),
            registry: Mutex::new(Registry::default()),
            counters: Counters::default(),
            max_registered: cfg.max_registered,
            register_ttl: cfg.register_ttl,
            rescan: Mutex::new(cfg.procfs.is_some().then_some(rescan_tx)),
            stopped: AtomicBool::new(false),
        });
        if let Some(p) = cfg.procfs.clone() {
            let mut last_error = None;
            rescan(&shared, &p, &mut last_error);
            let s = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("akto-tap-workload-proc".into())
                .spawn(move || proc_thread(&s, &p, &rescan_rx, last_error))?;
        }
        if let (Some(client), Some(k)) = (client, cfg.k8s) {
            let s = Arc::clone(&shared);
            tracing::info!(api = %k.api, node = %k.node, "workload attribution: listing this node's pods every {:?}", k.refresh);
            std::thread::Builder::new()
                .name("akto-tap-workload-k8s".into())
                .spawn(move || k8s_thread(&s, &client, &k, &stop_rx))?;
        }
        Ok(Attributor { inner: Some(Arc::new(Inner { shared, _stop: stop_tx })) })
    }

    /// An attributor over given snapshots, without background threads (tests of its users).
    #[cfg(test)]
    pub(crate) fn with_snapshots(table: SockTable, pods: Vec<k8s::PodEntry>, max_registered: usize) -> Attributor {
        let cfg = WorkloadConfig { procfs: None, k8s: None, max_registered, register_ttl: Duration::from_secs(60) };
        let a = Attributor::start(cfg).expect("start");
        if let Some(inner) = &a.inner {
            *inner.shared.table.write().expect("lock") = Arc::new(table);
            *inner.shared.pods.write().expect("lock") = Arc::new(k8s::PodIndex::build(pods, 100).0);
        }
        a
    }

    /// `false` for [`Attributor::disabled`].
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The workload of a connection, from the current snapshots. Never does I/O; a miss on a
    /// local address asks for a (rate-limited) background rescan.
    pub fn lookup(&self, client: SocketAddr, server: SocketAddr) -> Option<Workload> {
        let s = &self.inner.as_ref()?.shared;
        let c = &s.counters;
        let (cl, sv) = (canonical(client), canonical(server));
        let table = read(&s.table)?;
        // Registrations are rare (TLS connections): no lock when there are none.
        let registered = if c.registered.load(Relaxed) > 0 { self.registered_pid(cl, sv) } else { None };
        let mut registered_name = None;
        let server_proc = || {
            table.conns.get(&(sv, cl)).or_else(|| table.listen.get(&sv)).or_else(|| table.listen_any.get(&sv.port()))
        };
        // (pid, what the scan knows of it, whether it is the server's).
        let proc: Option<(u32, Option<Arc<ProcInfo>>, bool)> = match registered {
            Some((pid, name)) => {
                c.registered_hits.fetch_add(1, Relaxed);
                registered_name = name;
                Some((pid, table.procs.get(&pid).cloned(), false))
            }
            None => server_proc()
                .map(|p| (p.pid, Some(Arc::clone(p)), true))
                .or_else(|| table.conns.get(&(cl, sv)).map(|p| (p.pid, Some(Arc::clone(p)), false))),
        };
        let pods = read(&s.pods)?;
        // The process's pod; else the server's pod by IP; the client's only when the process is
        // not the server (a server process outside any pod is a host service, not a pod's).
        let by_uid =
            proc.as_ref().and_then(|(_, p, _)| p.as_ref()?.cgroup.pod_uid.as_ref()).and_then(|u| pods.by_uid.get(u));
        let server_is_proc = proc.as_ref().is_some_and(|(_, _, server)| *server);
        let pod = by_uid
            .or_else(|| pods.by_ip.get(&sv.ip()))
            .or_else(|| if server_is_proc { None } else { pods.by_ip.get(&cl.ip()) })
            .cloned();
        let info_missing = proc.as_ref().is_none_or(|(_, p, _)| p.is_none());
        if info_missing && (table.local_ips.contains(&sv.ip()) || table.local_ips.contains(&cl.ip())) {
            self.request_rescan();
        }
        if pod.is_some() {
            c.lookups_pod.fetch_add(1, Relaxed);
        }
        match (proc, pod) {
            (None, None) => {
                c.lookups_none.fetch_add(1, Relaxed);
                None
            }
            (None, pod) => {
                c.lookups_pod_only.fetch_add(1, Relaxed);
                Some(Workload { pid: None, process_name: None, pod })
            }
            (Some((pid, info, _)), pod) => {
                c.lookups_process.fetch_add(1, Relaxed);
                Some(Workload {
                    pid: Some(pid),
                    process_name: info.and_then(|i| i.name.clone()).or(registered_name),
                    pod,
                })
            }
        }
    }

    fn registered_pid(&self, client: SocketAddr, server: SocketAddr) -> Option<(u32, Option<String>)> {
        let s = &self.inner.as_ref()?.shared;
        let reg = s.registry.lock().ok()?;
        match reg.map.get(&(client, server)) {
            Some((pid, name, expires)) if *expires > Instant::now() => Some((*pid, name.clone())),
            _ => None,
        }
    }

    fn request_rescan(&self) {
        let Some(inner) = &self.inner else { return };
        if let Ok(r) = inner.shared.rescan.lock() {
            if let Some(tx) = r.as_ref() {
                // A full channel means a rescan is already pending.
                if tx.try_send(()).is_ok() {
                    inner.shared.counters.rescan_requests.fetch_add(1, Relaxed);
                }
            }
        }
    }

    /// Registers the process of a connection (a path that knows it, e.g. TLS uprobes). Kept for
    /// `register_ttl`; at `max_registered` expired entries go first, then the oldest. A pid the
    /// last scan did not see gets its name read now (`/proc/PID/comm`, on the caller's thread),
    /// so the connection's first records carry it before the next scan.
    pub fn register(&self, client: SocketAddr, server: SocketAddr, pid: u32) {
        let Some(inner) = &self.inner else { return };
        let s = &inner.shared;
        if s.max_registered == 0 {
            return;
        }
        let unknown = read(&s.table).is_some_and(|t| !t.procs.contains_key(&pid));
        let name = if unknown {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|n| n.trim_end().to_string())
        } else {
            None
        };
        let Ok(mut reg) = s.registry.lock() else { return };
        let now = Instant::now();
        let key = (canonical(client), canonical(server));
        if reg.map.len() >= s.max_registered && !reg.map.contains_key(&key) {
            let before = reg.map.len();
            reg.map.retain(|_, (_, _, exp)| *exp > now);
            s.counters.registered_expired.fetch_add((before - reg.map.len()) as u64, Relaxed);
            if reg.map.len() >= s.max_registered {
                let oldest = reg.map.iter().min_by_key(|(_, (_, _, exp))| *exp).map(|(k, _)| *k);
                if let Some(k) = oldest {
                    reg.map.remove(&k);
                    s.counters.registered_evicted.fetch_add(1, Relaxed);
                }
            }
        }
        reg.map.insert(key, (pid, name, now + s.register_ttl));
        s.counters.registered.store(reg.map.len() as u64, Relaxed);
        drop(reg);
        // The pod (cgroup) comes from the next scan when this pid is new.
        if unknown {
            self.request_rescan();
        }
    }

    /// The counters now.
    pub fn stats(&self) -> WorkloadStats {
        let Some(inner) = &self.inner else { return WorkloadStats::default() };
        let c = &inner.shared.counters;
        let l = |a: &AtomicU64| a.load(Relaxed);
        WorkloadStats {
            lookups_process: l(&c.lookups_process),
            lookups_pod_only: l(&c.lookups_pod_only),
            lookups_none: l(&c.lookups_none),
            lookups_pod: l(&c.lookups_pod),
            registered_hits: l(&c.registered_hits),
            rescan_requests: l(&c.rescan_requests),
            rescans: l(&c.rescans),
            rescan_errors: l(&c.rescan_errors),
            sockets: l(&c.sockets),
            sockets_over_cap: l(&c.sockets_over_cap),
            bad_lines: l(&c.bad_lines),
            fd_denied: l(&c.fd_denied),
            inferred: l(&c.inferred),
            scan_micros: l(&c.scan_micros),
            k8s_refreshes: l(&c.k8s_refreshes),
            k8s_errors: K8S_REASONS.iter().zip(&c.k8s_errors).map(|(r, n)| (*r, l(n))).collect(),
            k8s_up: l(&c.k8s_up),
            pods: l(&c.pods),
            pods_over_cap: l(&c.pods_over_cap),
            registered: l(&c.registered),
            registered_evicted: l(&c.registered_evicted),
            registered_expired: l(&c.registered_expired),
        }
    }
}

/// One procfs scan, published as the new table.
fn rescan(s: &Shared, cfg: &config::ProcConfig, last_error: &mut Option<String>) {
    let started = Instant::now();
    let c = &s.counters;
    match scan::scan(&cfg.root, cfg.max_sockets) {
        Ok((table, report)) => {
            c.rescans.fetch_add(1, Relaxed);
            c.sockets.store(report.sockets as u64, Relaxed);
            c.sockets_over_cap.fetch_add(report.sockets_over_cap as u64, Relaxed);
            c.bad_lines.fetch_add(report.bad_lines as u64, Relaxed);
            c.fd_denied.store(report.fd_denied as u64, Relaxed);
            c.inferred.store(report.inferred as u64, Relaxed);
            c.scan_micros.store(started.elapsed().as_micros() as u64, Relaxed);
            if last_error.take().is_some() {
                tracing::info!("workload attribution: procfs readable again");
            }
            if let Ok(mut t) = s.table.write() {
                *t = Arc::new(table);
            }
        }
        Err(e) => {
            c.rescan_errors.fetch_add(1, Relaxed);
            let msg = e.to_string();
            if last_error.as_deref() != Some(msg.as_str()) {
                tracing::warn!(root = %cfg.root.display(), error = %msg, "workload attribution: cannot scan procfs; records carry no process");
                *last_error = Some(msg);
            }
        }
    }
}

/// Drops expired registrations (also done by `register` when the registry is full).
fn purge_expired(s: &Shared) {
    let Ok(mut reg) = s.registry.lock() else { return };
    let now = Instant::now();
    let before = reg.map.len();
    reg.map.retain(|_, (_, _, exp)| *exp > now);
    s.counters.registered_expired.fetch_add((before - reg.map.len()) as u64, Relaxed);
    s.counters.registered.store(reg.map.len() as u64, Relaxed);
}

fn proc_thread(s: &Shared, cfg: &config::ProcConfig, rx: &Receiver<()>, mut last_error: Option<String>) {
    let mut last = Instant::now();
    loop {
        match rx.recv_timeout(cfg.interval) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let since = last.elapsed();
        if since < cfg.min_interval {
            std::thread::sleep(cfg.min_interval - since);
        }
        if s.stopped.load(Relaxed) {
            return;
        }
        // Requests that arrived meanwhile are served by this scan.
        while rx.try_recv().is_ok() {}
        rescan(s, cfg, &mut last_error);
        purge_expired(s);
        last = Instant::now();
    }
}

fn k8s_thread(s: &Shared, client: &api::Client, cfg: &config::K8sConfig, stop: &Receiver<()>) {
    let c = &s.counters;
    let mut last_error: Option<&'static str> = None;
    loop {
        match client.list_pods() {
            Ok((pods, cut)) => {
                let (index, over) = k8s::PodIndex::build(pods, cfg.max_pods);
                c.k8s_refreshes.fetch_add(1, Relaxed);
                c.k8s_up.store(1, Relaxed);
                c.pods.store(index.len() as u64, Relaxed);
                if over > 0 || cut {
                    c.pods_over_cap.fetch_add(over.max(1) as u64, Relaxed);
                }
                if let Some(reason) = last_error.take() {
                    tracing::info!(previous = reason, pods = index.len(), "workload attribution: listing pods again");
                } else if c.k8s_refreshes.load(Relaxed) == 1 {
                    tracing::info!(pods = index.len(), node = %cfg.node, "workload attribution: pods of this node listed");
                }
                if let Ok(mut p) = s.pods.write() {
                    *p = Arc::new(index);
                }
            }
            Err(e) => {
                c.k8s_up.store(0, Relaxed);
                if let Some(i) = K8S_REASONS.iter().position(|r| *r == e.reason()) {
                    c.k8s_errors[i].fetch_add(1, Relaxed);
                }
                // Said once per change of state; the pod index already held is kept.
                if last_error != Some(e.reason()) {
                    tracing::warn!(api = %cfg.api, error = %e, "workload attribution: cannot list pods; records carry no pod tags until it works");
                    last_error = Some(e.reason());
                }
            }
        }
        match stop.recv_timeout(cfg.refresh) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    fn attributor_with(table: SockTable, pods: Vec<k8s::PodEntry>, max_registered: usize) -> Attributor {
        Attributor::with_snapshots(table, pods, max_registered)
    }

    fn proc(pid: u32, name: &str, pod: Option<&str>) -> Arc<ProcInfo> {
        Arc::new(ProcInfo {
            pid,
            name: Some(name.into()),
            cgroup: procfs::CgroupInfo { pod_uid: pod.map(str::to_string), container_id: None },
        })
    }

    fn pod(name: &str, uid: &str, ip: &str) -> k8s::PodEntry {
        k8s::PodEntry {
            meta: PodMeta {
                namespace: "ns".into(),
                name: name.into(),
                uid: uid.into(),
                labels: [("app".to_string(), name.to_string())].into(),
                node: Some("n1".into()),
            },
            ips: vec![ip.parse().expect("ip")],
        }
    }

    #[test]
    fn server_process_first_then_client_then_pod_ip() {
        let mut t = SockTable::default();
        t.listen.insert(sa("10.0.0.5:80"), proc(10, "nginx", Some("uid-web")));
        t.conns.insert((sa("10.0.0.9:40000"), sa("10.0.0.5:80")), proc(20, "curl", None));
        t.conns.insert((sa("10.0.0.9:40001"), sa("10.0.0.7:8080")), proc(21, "wget", None));
        let a = attributor_with(t, vec![pod("web", "uid-web", "10.0.0.5"), pod("api", "uid-api", "10.0.0.7")], 10);
        // Both ends local: the server wins, its pod from its cgroup.
        let w = a.lookup(sa("10.0.0.9:40000"), sa("10.0.0.5:80")).expect("found");
        assert_eq!(
            (w.pid, w.process_name.as_deref(), w.pod.as_ref().map(|p| p.name.as_str())),
            (Some(10), Some("nginx"), Some("web"))
        );
        // Server not local: the client process; the pod from the server IP.
        let w = a.lookup(sa("10.0.0.9:40001"), sa("10.0.0.7:8080")).expect("found");
        assert_eq!((w.pid, w.pod.as_ref().map(|p| p.name.as_str())), (Some(21), Some("api")));
        // No process, pod by IP; IPv4-mapped addresses are the same hosts.
        let w = a.lookup(sa("[::ffff:10.0.0.1]:1"), sa("[::ffff:10.0.0.7]:9")).expect("pod");
        assert_eq!((w.pid, w.pod.as_ref().map(|p| p.namespace.as_str())), (None, Some("ns")));
        assert_eq!(a.lookup(sa("1.1.1.1:1"), sa("2.2.2.2:2")), None);
        let st = a.stats();
        assert_eq!((st.lookups_process, st.lookups_pod_only, st.lookups_none, st.lookups_pod), (2, 1, 1, 3));
        // A host service (no pod) called by a pod: the process, not the caller's pod.
        let mut t = SockTable::default();
        t.listen.insert(sa("10.0.0.1:10250"), proc(30, "kubelet", None));
        let b = attributor_with(t, vec![pod("web", "uid-web", "10.0.0.5")], 10);
        let host = b.lookup(sa("10.0.0.5:5000"), sa("10.0.0.1:10250")).expect("kubelet");
        assert_eq!((host.pid, host.pod), (Some(30), None));
        // Without a process, the client's pod is the best there is.
        let caller = b.lookup(sa("10.0.0.5:5000"), sa("10.0.0.1:9")).expect("client pod");
        assert_eq!(caller.pod.map(|p| p.name.clone()).as_deref(), Some("web"));
        let tags = w.tags();
        assert!(
            tags.contains(&("label.app".into(), "api".into())) && tags.contains(&("node".into(), "n1".into())),
            "{tags:?}"
        );
    }

    #[test]
    fn registrations_win_and_are_bounded() {
        let mut t = SockTable::default();
        t.procs.insert(7, proc(7, "openssl", None));
        t.listen.insert(sa("10.0.0.5:443"), proc(10, "nginx", None));
        let a = attributor_with(t, Vec::new(), 2);
        a.register(sa("10.0.0.9:1"), sa("10.0.0.5:443"), 7);
        let w = a.lookup(sa("10.0.0.9:1"), sa("10.0.0.5:443")).expect("found");
        assert_eq!((w.pid, w.process_name.as_deref()), (Some(7), Some("openssl")));
        a.register(sa("10.0.0.9:2"), sa("10.0.0.5:443"), 8);
        a.register(sa("10.0.0.9:3"), sa("10.0.0.5:443"), 9);
        let st = a.stats();
        assert_eq!((st.registered, st.registered_evicted), (2, 1));
        assert_eq!(a.lookup(sa("10.0.0.9:3"), sa("10.0.0.5:443")).and_then(|w| w.pid), Some(9));
        assert!(a.clone().lookup(sa("10.0.0.9:2"), sa("10.0.0.5:443")).is_some());
    }

    #[test]
    fn disabled_answers_nothing() {
        let a = Attributor::disabled();
        a.register(sa("1.1.1.1:1"), sa("2.2.2.2:2"), 1);
        assert_eq!(a.lookup(sa("1.1.1.1:1"), sa("2.2.2.2:2")), None);
        assert_eq!(a.stats(), WorkloadStats::default());
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Attributor>();
    }
}
