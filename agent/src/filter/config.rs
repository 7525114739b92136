//! Configuration of the filter stage: the `[filter]` table of the config file.
//!
//! Defaults live here and nowhere else ([`FilterConfig::default`] and the `DEFAULT_*`
//! constants). Everything is checked once, by [`super::Filter::new`], which turns a bad pattern
//! into a [`super::FilterError`] naming the rule (`exclude[1].paths[0]`).
//!
//! # Pattern syntax
//!
//! * **hosts**: an exact host name or IP (`api.example.com`, `10.0.0.7`, `::1` or `[::1]`), a
//!   `*.suffix` wildcard that matches any host *under* the suffix (`*.example.com` matches
//!   `a.example.com` and `a.b.example.com`, not `example.com` itself: list both), or `*` for any
//!   host. Case-insensitive; a trailing dot is ignored. Ports are never part of the match: the
//!   exchange's `Host` port is removed before matching, and a pattern with a port is an error.
//! * **paths**: a glob matched against the whole path of the request-target, without the query
//!   string or fragment, as sent (no percent-decoding). It must start with `/`. `*` matches any
//!   run of characters within one segment (not `/`); `**` must be a whole segment and matches any
//!   number of segments, including none (`/api/**` matches `/api`, `/api/` and `/api/v1/users`;
//!   `/a/**/b` matches `/a/b` and `/a/x/y/b`). Every other character is literal. There is no
//!   implicit prefix match: `/api` matches only `/api`; write `/api/**` for the subtree.
//! * **methods**: method names, compared case-insensitively (`get` = `GET`).
//!
//! # Rules and precedence
//!
//! A rule matches an exchange when every condition it lists matches: one of its `hosts`, one of
//! its `paths`, one of its `methods` (a list left out is no condition). An exchange is dropped
//! when it matches any `exclude` rule (reason `excluded`), otherwise when `include` rules exist
//! and it matches none of them (reason `not_included`). **Exclude wins** over include.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Envoy/Istio sidecar ports whose traffic is the proxy's own, not the application's: 15000
/// (Envoy admin), 15004 (pilot-agent debug), 15020 (pilot-agent merged metrics and health),
/// 15021 (sidecar readiness), 15090 (Envoy Prometheus stats). Not 15001/15006: those carry the
/// application's redirected traffic.
pub const DEFAULT_ENVOY_PORTS: [u16; 5] = [15000, 15004, 15020, 15021, 15090];
/// Default exchanges per endpoint per window that keep their bodies.
pub const DEFAULT_BODIES_PER_WINDOW: u32 = 10;
/// Default sampling window, in seconds (Akto's `TIME_BUCKET_DURATION_MINUTES` = 10).
pub const DEFAULT_WINDOW_SECS: u64 = 600;
/// Default cap on endpoints tracked by the sampler, per capture shard (Akto's
/// `LRU_CACHE_CAPACITY`).
pub const DEFAULT_MAX_ENDPOINTS: usize = 100_000;

/// Environment variable of Akto's collectors for [`FilterConfig::drop_ip_hosts`].
pub const ENV_IGNORE_IP_TRAFFIC: &str = "AKTO_IGNORE_IP_TRAFFIC";
/// Environment variable of Akto's collectors for [`FilterConfig::drop_cloud_metadata`].
pub const ENV_IGNORE_CLOUD_METADATA: &str = "AKTO_IGNORE_CLOUD_METADATA_CALLS";
/// Environment variable of Akto's collectors for [`FilterConfig::drop_envoy_sidecar`].
pub const ENV_IGNORE_ENVOY_PROXY: &str = "AKTO_IGNORE_ENVOY_PROXY_CALLS";

/// The `[filter]` table: which exchanges become Akto records, and which keep their bodies.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilterConfig {
    /// Keep only exchanges matching at least one of these rules (`[[filter.include]]`); none =
    /// keep everything not excluded.
    pub include: Vec<Rule>,
    /// Drop exchanges matching any of these rules (`[[filter.exclude]]`); exclude wins over
    /// include.
    pub exclude: Vec<Rule>,
    /// Drop exchanges whose `Host` is missing, empty, or an IP literal (`10.0.0.7:8080`,
    /// `[::1]:8080`), as Akto's `CheckIfIp` does (reason `ip_host`). Unset: the
    /// `AKTO_IGNORE_IP_TRAFFIC` environment variable, else `false`.
    pub drop_ip_hosts: Option<bool>,
    /// Drop calls to the cloud instance-metadata service: host or server address
    /// `169.254.169.254`, `fd00:ec2::254`, `100.100.100.200`, or host
    /// `metadata.google.internal` (reason `cloud_metadata`). Their responses carry instance
    /// credentials. Unset: `AKTO_IGNORE_CLOUD_METADATA_CALLS`, else `true` (Akto's default is
    /// off; on here because forwarding cloud credentials to an API inventory is never wanted).
    pub drop_cloud_metadata: Option<bool>,
    /// Drop methods other than `GET HEAD POST PUT DELETE CONNECT OPTIONS TRACE TRACK PATCH`
    /// (case-insensitive), Akto's `methodsMap` (reason `non_standard_method`).
    pub drop_non_standard_methods: bool,
    /// Drop the Envoy/Istio sidecar's own calls (reason `envoy_sidecar`): connections from
    /// `127.0.0.6` or `::6` (Istio's inbound-passthrough source address: the sidecar's copy of an inbound
    /// request, the check of Akto's `AKTO_IGNORE_ENVOY_PROXY_CALLS`), requests to one of
    /// `envoy_ports`, and health checks with `User-Agent: Envoy/HC...`. Unset:
    /// `AKTO_IGNORE_ENVOY_PROXY_CALLS`, else `true`.
    pub drop_envoy_sidecar: Option<bool>,
    /// Server ports treated as the sidecar's own when `drop_envoy_sidecar` is on; `[]` disables
    /// the port check (e.g. when an application listens on 15000).
    pub envoy_ports: Vec<u16>,
    /// Per-endpoint body sampling.
    pub sampling: SamplingConfig,
}

impl Default for FilterConfig {
    fn default() -> Self {
        FilterConfig {
            include: Vec::new(),
            exclude: Vec::new(),
            drop_ip_hosts: None,
            drop_cloud_metadata: None,
            drop_non_standard_methods: true,
            drop_envoy_sidecar: None,
            envoy_ports: DEFAULT_ENVOY_PORTS.to_vec(),
            sampling: SamplingConfig::default(),
        }
    }
}

/// One include or exclude rule; every listed condition must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rule {
    /// Host patterns (exact, `*.suffix` or `*`); any one matches.
    pub hosts: Vec<String>,
    /// Path globs (`*` within a segment, `**` whole segments); any one matches.
    pub paths: Vec<String>,
    /// Methods, case-insensitive; any one matches.
    pub methods: Vec<String>,
}

/// Per-endpoint sampling. An endpoint is method + host (without port) + path template, where
/// numeric, UUID and long hex segments are collapsed to `{param}` (`GET api.x /users/{param}`).
///
/// The first `bodies_per_window` exchanges of an endpoint in a window keep their bodies; later
/// ones get `after_limit`. A window starts with the endpoint's first exchange and lasts
/// `window_secs`; the count restarts with the first exchange after it. Each capture shard
/// samples on its own, so with S shards an endpoint keeps up to S × `bodies_per_window` bodies
/// per window.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingConfig {
    /// Sample at all. Off: every exchange keeps its bodies.
    pub enabled: bool,
    /// Exchanges per endpoint per window that keep their bodies (0: none do).
    pub bodies_per_window: u32,
    /// Length of a window, in seconds (at least 1).
    pub window_secs: u64,
    /// What happens to an exchange past the limit.
    pub after_limit: AfterLimit,
    /// Endpoints tracked at most, per capture shard (at least 1). When the table is full,
    /// endpoints whose window ended are swept out (at most once per window); an endpoint that
    /// still finds no room is not tracked, its exchanges get `after_limit` and are counted in
    /// `sampling_untracked`. (Not LRU: under a spray of unique paths LRU would give every
    /// exchange a fresh budget, so the cap would stop bounding the bodies sent.)
    pub max_endpoints: usize,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        SamplingConfig {
            enabled: false,
            bodies_per_window: DEFAULT_BODIES_PER_WINDOW,
            window_secs: DEFAULT_WINDOW_SECS,
            after_limit: AfterLimit::StripBodies,
            max_endpoints: DEFAULT_MAX_ENDPOINTS,
        }
    }
}

impl SamplingConfig {
    /// The window as a duration.
    pub fn window(&self) -> Duration {
        Duration::from_secs(self.window_secs)
    }
}

/// What happens to an exchange past its endpoint's sampling limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterLimit {
    /// Send the record without bodies, flagged with `x-akto-tap-sampled: true` (and Akto's
    /// `x-akto-skip-sample-update: true`), so Akto still counts and discovers the endpoint.
    #[default]
    StripBodies,
    /// Do not send it; only count it (reason `sampled`).
    Drop,
}

impl FilterConfig {
    /// Fills the switches left unset with Akto's environment variables
    /// (`AKTO_IGNORE_IP_TRAFFIC`, `AKTO_IGNORE_CLOUD_METADATA_CALLS`,
    /// `AKTO_IGNORE_ENVOY_PROXY_CALLS`): `true`/`1`/`yes` or `false`/`0`/`no`, any case; empty
    /// is unset. A value set in the file wins. Anything else is an error naming the variable.
    pub fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), super::FilterError> {
        for (slot, name) in [
            (&mut self.drop_ip_hosts, ENV_IGNORE_IP_TRAFFIC),
            (&mut self.drop_cloud_metadata, ENV_IGNORE_CLOUD_METADATA),
            (&mut self.drop_envoy_sidecar, ENV_IGNORE_ENVOY_PROXY),
        ] {
            if slot.is_none() {
                *slot = env_bool(env, name)?;
            }
        }
        Ok(())
    }

    /// `drop_ip_hosts` with its default applied.
    pub fn drop_ip_hosts(&self) -> bool {
        self.drop_ip_hosts.unwrap_or(false)
    }
    /// `drop_cloud_metadata` with its default applied.
    pub fn drop_cloud_metadata(&self) -> bool {
        self.drop_cloud_metadata.unwrap_or(true)
    }
    /// `drop_envoy_sidecar` with its default applied.
    pub fn drop_envoy_sidecar(&self) -> bool {
        self.drop_envoy_sidecar.unwrap_or(true)
    }
}

fn env_bool(env: &impl Fn(&str) -> Option<String>, name: &'static str) -> Result<Option<bool>, super::FilterError> {
    let Some(value) = env(name) else {
        return Ok(None);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "true" | "1" | "yes" => Ok(Some(true)),
        "false" | "0" | "no" => Ok(Some(false)),
        _ => Err(super::FilterError::Env { name, value }),
    }
}
