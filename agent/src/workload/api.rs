//! The Kubernetes API client: the only file of this module that talks HTTP.
//!
//! One call, `GET /api/v1/pods?fieldSelector=spec.nodeName=<node>` (paged with `limit` and
//! `continue`), repeated every `--k8s-refresh-secs`. `ureq` (already the agent's blocking
//! client, see `threats/http.rs`) does it on one background thread; kube-rs would bring an
//! async runtime, hyper, tower and the generated API types for this single list call, so it
//! is not used. A watch would cut the latency of new pods; the periodic list keeps the client
//! trivial and its memory bounded by `--k8s-max-pods`.

use super::config::{K8sConfig, WorkloadError};
use super::k8s::{parse_pod_list, PodEntry};

/// Pods per page.
const PAGE: usize = 500;
/// Largest response body accepted per page.
const MAX_BODY: u64 = 64 << 20;

/// Why a refresh failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The token file could not be read.
    #[error("token file: {0}")]
    Token(String),
    /// No connection (refused, DNS, TLS).
    #[error("API server unreachable: {0}")]
    Unreachable(String),
    /// 401 or 403: the token or the RBAC rules.
    #[error("API server refused the service account (HTTP {0}): check the token and the ClusterRole (pods: list)")]
    Denied(u16),
    /// Another HTTP status.
    #[error("API server answered HTTP {0}")]
    Status(u16),
    /// The body is not a `PodList`.
    #[error("bad pod list: {0}")]
    Decode(String),
}

impl ApiError {
    /// The `reason` label of `akto_tap_workload_k8s_errors_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::Token(_) => "token",
            ApiError::Unreachable(_) => "unreachable",
            ApiError::Denied(_) => "denied",
            ApiError::Status(_) => "status",
            ApiError::Decode(_) => "decode",
        }
    }
}

/// A configured client.
#[derive(Debug)]
pub struct Client {
    cfg: K8sConfig,
    agent: ureq::Agent,
}

impl Client {
    /// Builds the client (reads the CA now: a bad CA file is a configuration error).
    pub fn new(cfg: K8sConfig) -> Result<Client, WorkloadError> {
        let roots = match &cfg.ca_file {
            Some(path) => {
                let ca_err = |reason: String| WorkloadError::Ca { path: path.clone(), reason };
                let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
                let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
                    .filter_map(|item| match item {
                        Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                        Ok(_) => None,
                        Err(e) => Some(Err(e)),
                    })
                    .collect::<Result<_, _>>()
                    .map_err(|e| ca_err(e.to_string()))?;
                if certs.is_empty() {
                    return Err(ca_err("no certificate in the file".into()));
                }
                ureq::tls::RootCerts::new_with_certs(&certs)
            }
            None => ureq::tls::RootCerts::PlatformVerifier,
        };
        let tls = ureq::tls::TlsConfig::builder().provider(ureq::tls::TlsProvider::NativeTls).root_certs(roots).build();
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(cfg.timeout))
            .http_status_as_error(false)
            .tls_config(tls)
            .user_agent(concat!("akto-tap/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(Client { cfg, agent })
    }

    /// Lists this node's pods, at most `max_pods` (+1 to know that some did not fit); the second
    /// value is `true` when the list was cut.
    pub fn list_pods(&self) -> Result<(Vec<PodEntry>, bool), ApiError> {
        let token = match &self.cfg.token_file {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .map_err(|e| ApiError::Token(format!("{}: {e}", p.display())))?
                    .trim()
                    .to_string(),
            ),
            None => None,
        };
        let url = format!("{}/api/v1/pods", self.cfg.api);
        let selector = format!("spec.nodeName={}", self.cfg.node);
        let mut pods = Vec::new();
        let mut cont: Option<String> = None;
        loop {
            let mut req = self.agent.get(&url).query("fieldSelector", &selector).query("limit", PAGE.to_string());
            if let Some(c) = &cont {
                req = req.query("continue", c);
            }
            if let Some(t) = &token {
                req = req.header("authorization", format!("Bearer {t}"));
            }
            let mut resp = req.call().map_err(|e| ApiError::Unreachable(e.to_string()))?;
            match resp.status().as_u16() {
                200 => {}
                s @ (401 | 403) => return Err(ApiError::Denied(s)),
                s => return Err(ApiError::Status(s)),
            }
            let body = resp
                .body_mut()
                .with_config()
                .limit(MAX_BODY)
                .read_to_vec()
                .map_err(|e| ApiError::Decode(e.to_string()))?;
            let page = parse_pod_list(&body).map_err(|e| ApiError::Decode(e.to_string()))?;
            pods.extend(page.pods);
            if pods.len() > self.cfg.max_pods {
                return Ok((pods, true));
            }
            match page.cont {
                Some(c) if cont.as_ref() != Some(&c) => cont = Some(c),
                _ => return Ok((pods, false)),
            }
        }
    }
}
