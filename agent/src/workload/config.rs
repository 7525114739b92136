//! Settings of workload attribution: the `capture` flags and the typed configuration they
//! resolve to (environment of an in-cluster pod included).

use std::path::PathBuf;
use std::time::Duration;

/// Default service-account token of an in-cluster pod.
pub const SA_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// Default CA of the API server for an in-cluster pod.
pub const SA_CA: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

/// `--workload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkloadMode {
    /// Processes from procfs (Linux); Kubernetes pods when running in a cluster or `--k8s-api`
    /// is set.
    Auto,
    /// No attribution.
    Off,
}

/// Workload attribution flags of `capture`.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkloadArgs {
    /// Workload attribution (`process_id`, `process_name`, pod namespace/name/labels/node in `tag`).
    #[arg(long = "workload", value_enum, default_value = "auto")]
    pub workload: WorkloadMode,
    /// How often the socket → process table is rebuilt from procfs, seconds (also on a lookup
    /// miss, at most every `--workload-min-rescan-ms`).
    #[arg(long, default_value_t = 10.0)]
    pub workload_rescan_secs: f64,
    /// Least time between two procfs scans, milliseconds (lookup misses ask for a scan).
    #[arg(long, default_value_t = 1000)]
    pub workload_min_rescan_ms: u64,
    /// Most sockets kept in the socket → process table (the rest are counted).
    #[arg(long, default_value_t = 200_000)]
    pub workload_max_sockets: usize,
    /// Most connections registered by a path that knows their process (TLS uprobes).
    #[arg(long, default_value_t = 16_384)]
    pub workload_max_registered: usize,
    /// How long a registered connection is remembered, seconds.
    #[arg(long, default_value_t = 600)]
    pub workload_register_ttl_secs: u64,
    /// Kubernetes API server URL (default in a cluster: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT).
    #[arg(long)]
    pub k8s_api: Option<String>,
    /// Bearer token file for the API server (default in a cluster: the service account's).
    #[arg(long)]
    pub k8s_token_file: Option<PathBuf>,
    /// CA certificate (PEM) of the API server (default in a cluster: the service account's).
    #[arg(long)]
    pub k8s_ca_file: Option<PathBuf>,
    /// This node's name: only its pods are listed (downward API `spec.nodeName`; `NODE_NAME`
    /// is read too; default: the host name).
    #[arg(long, env = "AKTO_TAP_NODE_NAME")]
    pub node_name: Option<String>,
    /// How often this node's pods are listed, seconds.
    #[arg(long, default_value_t = 30.0)]
    pub k8s_refresh_secs: f64,
    /// Most pods kept (the rest are counted).
    #[arg(long, default_value_t = 5000)]
    pub k8s_max_pods: usize,
    /// Time limit of one API request, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub k8s_timeout_secs: f64,
}

/// procfs scanning.
#[derive(Debug, Clone)]
pub struct ProcConfig {
    /// The procfs mount (`/proc`; tests point elsewhere).
    pub root: PathBuf,
    /// Periodic rescan.
    pub interval: Duration,
    /// Least time between scans.
    pub min_interval: Duration,
    /// Most sockets per scan.
    pub max_sockets: usize,
}

/// The Kubernetes API client.
#[derive(Debug, Clone)]
pub struct K8sConfig {
    /// Base URL, `https://host:port` (or `http://` for tests).
    pub api: String,
    /// Bearer token file, read at every refresh (projected tokens rotate).
    pub token_file: Option<PathBuf>,
    /// CA (PEM) for `https`; the system roots when `None`.
    pub ca_file: Option<PathBuf>,
    /// Node whose pods are listed.
    pub node: String,
    /// Refresh period.
    pub refresh: Duration,
    /// Most pods kept.
    pub max_pods: usize,
    /// Time limit of one request.
    pub timeout: Duration,
}

/// Everything the attributor needs.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// procfs, when on.
    pub procfs: Option<ProcConfig>,
    /// Kubernetes, when on.
    pub k8s: Option<K8sConfig>,
    /// Most registered connections.
    pub max_registered: usize,
    /// How long a registration lasts.
    pub register_ttl: Duration,
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// A setting is out of range.
    #[error("{flag}: {reason}")]
    Invalid {
        /// The flag.
        flag: &'static str,
        /// Why.
        reason: String,
    },
    /// The CA file cannot be read or is not PEM.
    #[error("--k8s-ca-file {path}: {reason}")]
    Ca {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A background thread could not start.
    #[error("cannot start a workload thread: {0}")]
    Thread(#[from] std::io::Error),
}

fn secs(flag: &'static str, v: f64) -> Result<Duration, WorkloadError> {
    Duration::try_from_secs_f64(v)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or(WorkloadError::Invalid { flag, reason: format!("expected a positive number of seconds, got {v}") })
}

impl WorkloadArgs {
    /// Resolves the flags with the environment (`env` is `std::env::var` outside tests).
    /// `None` when attribution is off.
    pub fn resolve(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<WorkloadConfig>, WorkloadError> {
        if self.workload == WorkloadMode::Off {
            return Ok(None);
        }
        let procfs = cfg!(target_os = "linux").then(|| -> Result<ProcConfig, WorkloadError> {
            Ok(ProcConfig {
                root: PathBuf::from("/proc"),
                interval: secs("--workload-rescan-secs", self.workload_rescan_secs)?,
                min_interval: Duration::from_millis(self.workload_min_rescan_ms),
                max_sockets: self.workload_max_sockets,
            })
        });
        let procfs = procfs.transpose()?;
        let in_cluster = env("KUBERNETES_SERVICE_HOST").filter(|h| !h.is_empty()).map(|host| {
            let port = env("KUBERNETES_SERVICE_PORT").filter(|p| !p.is_empty()).unwrap_or_else(|| "443".into());
            let host = if host.contains(':') { format!("[{host}]") } else { host };
            format!("https://{host}:{port}")
        });
        let k8s = match self.k8s_api.clone().or(in_cluster) {
            None => None,
            Some(api) => {
                let api = api.trim_end_matches('/').to_string();
                if !(api.starts_with("https://") || api.starts_with("http://")) {
                    return Err(WorkloadError::Invalid {
                        flag: "--k8s-api",
                        reason: format!("expected an http:// or https:// URL, got {api:?}"),
                    });
                }
                let exists = |p: &str| std::path::Path::new(p).exists().then(|| PathBuf::from(p));
                let node = self
                    .node_name
                    .clone()
                    .or_else(|| env("NODE_NAME"))
                    .filter(|n| !n.is_empty())
                    .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string()))
                    .filter(|n| !n.is_empty())
                    .ok_or(WorkloadError::Invalid {
                        flag: "--node-name",
                        reason: "this node's name is unknown (set --node-name or NODE_NAME)".into(),
                    })?;
                Some(K8sConfig {
                    token_file: self.k8s_token_file.clone().or_else(|| exists(SA_TOKEN)),
                    ca_file: self.k8s_ca_file.clone().or_else(|| {
                        if api.starts_with("https://") {
                            exists(SA_CA)
                        } else {
                            None
                        }
                    }),
                    api,
                    node,
                    refresh: secs("--k8s-refresh-secs", self.k8s_refresh_secs)?,
                    max_pods: self.k8s_max_pods,
                    timeout: secs("--k8s-timeout-secs", self.k8s_timeout_secs)?,
                })
            }
        };
        Ok(Some(WorkloadConfig {
            procfs,
            k8s,
            max_registered: self.workload_max_registered,
            register_ttl: Duration::from_secs(self.workload_register_ttl_secs),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        w: WorkloadArgs,
    }

    fn args(a: &[&str]) -> WorkloadArgs {
        T::try_parse_from(std::iter::once("t").chain(a.iter().copied())).expect("args").w
    }

    #[test]
    fn kubernetes_only_in_a_cluster_or_when_asked() {
        let none = |_: &str| None;
        let cfg = args(&[]).resolve(&none).expect("ok").expect("on");
        assert!(cfg.k8s.is_none(), "outside a cluster nothing is attempted");
        assert!(args(&["--workload", "off"]).resolve(&none).expect("ok").is_none());
        let env = |k: &str| match k {
            "KUBERNETES_SERVICE_HOST" => Some("fd00::1".to_string()),
            "KUBERNETES_SERVICE_PORT" => Some("6443".to_string()),
            "NODE_NAME" => Some("n7".to_string()),
            _ => None,
        };
        let k = args(&[]).resolve(&env).expect("ok").expect("on").k8s.expect("k8s");
        assert_eq!((k.api.as_str(), k.node.as_str()), ("https://[fd00::1]:6443", "n7"));
        let k = args(&["--k8s-api", "http://127.0.0.1:1/", "--node-name", "n1", "--k8s-token-file", "/t"])
            .resolve(&none)
            .expect("ok")
            .expect("on")
            .k8s
            .expect("k8s");
        assert_eq!((k.api.as_str(), k.node.as_str(), k.ca_file), ("http://127.0.0.1:1", "n1", None));
        assert_eq!(k.token_file, Some(PathBuf::from("/t")));
        assert!(args(&["--k8s-api", "127.0.0.1:1"]).resolve(&none).is_err());
        assert!(args(&["--k8s-api", "http://x", "--k8s-refresh-secs", "0"]).resolve(&none).is_err());
    }
}
