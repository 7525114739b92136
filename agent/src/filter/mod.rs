//! Filters and sampling: which reconstructed exchanges become Akto records, and which keep
//! their bodies (issue 8).
//!
//! Pure: no I/O, no clock (the capture time is passed in), no threads, no locks. One [`Filter`]
//! per capture shard; shards' [`FilterStats`] are summed with [`FilterStats::merge`].
//!
//! [`Filter::decide`] applies, in this order, and stops at the first that drops:
//!
//! | # | rule | reason | switch |
//! |---|---|---|---|
//! | 1 | method not one of Akto's `GET HEAD POST PUT DELETE CONNECT OPTIONS TRACE TRACK PATCH` | `non_standard_method` | `drop_non_standard_methods` |
//! | 2 | cloud metadata host or server address | `cloud_metadata` | `drop_cloud_metadata` / `AKTO_IGNORE_CLOUD_METADATA_CALLS` |
//! | 3 | Envoy/Istio sidecar's own call | `envoy_sidecar` | `drop_envoy_sidecar` / `AKTO_IGNORE_ENVOY_PROXY_CALLS` |
//! | 4 | Host missing, empty or an IP literal | `ip_host` | `drop_ip_hosts` / `AKTO_IGNORE_IP_TRAFFIC` |
//! | 5 | matches an `exclude` rule | `excluded` | `[[filter.exclude]]` |
//! | 6 | `include` rules exist and none matches | `not_included` | `[[filter.include]]` |
//! | 7 | endpoint past its sampling budget, `after_limit = "drop"` | `sampled` | `[filter.sampling]` |
//!
//! Rules 1–4 are Akto's collector drops (reference/akto.md §1.7, `shouldProcessRequest`); the
//! cloud-metadata rule runs before the IP rule so `169.254.169.254` is counted as what it is.
//! Past the sampling budget with `after_limit = "strip_bodies"` the answer is
//! [`Decision::StripBodies`]: the caller applies [`strip_bodies`] and sends the record.
//!
//! Envoy sidecar detection (decided from Akto's `mirroring-api-logging` sources and Istio's
//! port list): a connection from `127.0.0.6` or `::6` (what Akto checks: Istio's sidecar forwards inbound
//! requests to the application from that address, so that hop duplicates the inbound request);
//! a server port in `envoy_ports` (admin, stats, health: the proxy's own endpoints); a
//! `User-Agent` starting `Envoy/HC` (Envoy's active health checks). Akto's optional module
//! filter (`x-envoy-peer-metadata-id` must match `.*sidecar.*`) is not applied: it drops
//! gateway-to-service traffic, which is real API traffic.

pub mod config;
mod pattern;
mod sample;
#[cfg(test)]
pub(crate) mod tests;

#[cfg_attr(not(test), expect(unused_imports, reason = "public API for the config file: the lead wires it in"))]
pub use config::SamplingConfig;
pub use config::{AfterLimit, FilterConfig, Rule};
pub use pattern::path_template;

use pattern::CompiledRule;
use reassembly::{HttpExchange, Timestamp};
use sample::{Sampled, Sampler};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Request header added to a record whose bodies were removed by sampling.
pub const SAMPLED_HEADER: &str = "x-akto-tap-sampled";
/// Akto's own header for the same thing (its collectors set it when they skip a body): tells
/// Akto's runtime not to replace stored samples with this body-less one.
pub const AKTO_SKIP_SAMPLE_HEADER: &str = "x-akto-skip-sample-update";

/// Methods Akto's collectors keep (`methodsMap`).
const STANDARD_METHODS: [&str; 10] =
    ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "TRACK", "PATCH"];
/// Cloud instance-metadata addresses: AWS/GCP/Azure/OpenStack IPv4, AWS IPv6, Alibaba.
const METADATA_IPS: [IpAddr; 3] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
];
/// Cloud instance-metadata host names.
const METADATA_HOSTS: [&str; 1] = ["metadata.google.internal"];
/// Source addresses of Istio's inbound passthrough: `127.0.0.6` (Akto's `EnvoyProxyIp`) and its
/// IPv6 counterpart `::6` (dual-stack meshes).
const ENVOY_INBOUND_SOURCES: [IpAddr; 2] =
    [IpAddr::V4(Ipv4Addr::new(127, 0, 0, 6)), IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 6))];
/// `User-Agent` prefix of Envoy's active health checks.
const ENVOY_HEALTH_CHECK_AGENT: &str = "Envoy/HC";

/// Why an exchange was dropped. [`Reason::name`] is the stable metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Method outside Akto's list.
    NonStandardMethod,
    /// Cloud instance-metadata call.
    CloudMetadata,
    /// The Envoy/Istio sidecar's own call.
    EnvoySidecar,
    /// Host missing, empty, or an IP literal.
    IpHost,
    /// Matched an exclude rule.
    Excluded,
    /// Include rules exist and none matched.
    NotIncluded,
    /// Past the endpoint's sampling budget with `after_limit = "drop"`.
    Sampled,
}

impl Reason {
    /// Every reason, in evaluation order.
    pub const ALL: [Reason; 7] = [
        Reason::NonStandardMethod,
        Reason::CloudMetadata,
        Reason::EnvoySidecar,
        Reason::IpHost,
        Reason::Excluded,
        Reason::NotIncluded,
        Reason::Sampled,
    ];

    /// Stable name, the `reason` label of `akto_tap_filter_dropped_total`.
    pub fn name(self) -> &'static str {
        match self {
            Reason::NonStandardMethod => "non_standard_method",
            Reason::CloudMetadata => "cloud_metadata",
            Reason::EnvoySidecar => "envoy_sidecar",
            Reason::IpHost => "ip_host",
            Reason::Excluded => "excluded",
            Reason::NotIncluded => "not_included",
            Reason::Sampled => "sampled",
        }
    }
}

/// What to do with an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send it as is.
    Keep,
    /// Send it without bodies ([`strip_bodies`]).
    StripBodies,
    /// Do not send it.
    Drop(Reason),
}

/// A configuration the filter cannot run with. Raised once, by [`Filter::new`] or
/// [`FilterConfig::apply_env`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// A host, path or method pattern that does not parse.
    #[error("filter.{rule}: invalid pattern {pattern:?}: {why}")]
    Pattern {
        /// Where: `exclude[1].paths[0]`.
        rule: String,
        /// The pattern as written.
        pattern: String,
        /// What is wrong.
        why: String,
    },
    /// A rule with no condition (it would match every exchange).
    #[error("filter.{rule}: a rule needs at least one of hosts, paths, methods")]
    EmptyRule {
        /// Where: `include[0]`.
        rule: String,
    },
    /// A sampling setting out of range.
    #[error("filter.sampling.{field}: {why}")]
    Sampling {
        /// The key.
        field: &'static str,
        /// What is wrong.
        why: &'static str,
    },
    /// An environment variable that is not a boolean.
    #[error("environment variable {name}={value:?}: expected true or false")]
    Env {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
    },
}

macro_rules! counters {
    ($( $(#[doc = $doc:literal])* $name:ident ),* $(,)?) => {
        /// Filter counters (monotonic, except the `*_now` gauge).
        #[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
        pub struct FilterStats {
            $( $(#[doc = $doc])* pub $name: u64, )*
        }

        impl FilterStats {
            /// Adds another shard's counters to these.
            pub fn merge(&mut self, other: &FilterStats) {
                $( self.$name += other.$name; )*
            }

            /// Every counter as `(name, help, value)`.
            pub fn fields(&self) -> Vec<(&'static str, &'static str, u64)> {
                vec![$( (stringify!($name), concat!($($doc),*).trim_ascii(), self.$name), )*]
            }
        }
    };
}

counters! {
    /// Exchanges the filter decided on.
    exchanges,
    /// Exchanges kept with their bodies.
    kept,
    /// Exchanges kept with their bodies removed by sampling.
    bodies_stripped,
    /// Exchanges dropped: method not one of Akto's standard methods.
    dropped_non_standard_method,
    /// Exchanges dropped: call to the cloud instance-metadata service.
    dropped_cloud_metadata,
    /// Exchanges dropped: the Envoy/Istio sidecar's own call.
    dropped_envoy_sidecar,
    /// Exchanges dropped: Host missing, empty or an IP literal.
    dropped_ip_host,
    /// Exchanges dropped: matched an exclude rule.
    dropped_excluded,
    /// Exchanges dropped: matched no include rule.
    dropped_not_included,
    /// Exchanges dropped: past the endpoint's sampling budget (after_limit = drop).
    dropped_sampled,
    /// Exchanges whose endpoint could not be tracked (endpoint table full), treated as over the limit.
    sampling_untracked,
    /// Endpoints removed from the sampling table after their window ended (table full).
    sampling_endpoints_expired,
    /// Endpoints tracked by the sampler (gauge).
    sampling_endpoints_now,
}

impl FilterStats {
    /// Drops per reason, for `akto_tap_filter_dropped_total{reason=...}`.
    pub fn dropped(&self) -> Vec<(Reason, u64)> {
        Reason::ALL.iter().map(|&r| (r, *self.dropped_slot_ref(r))).collect()
    }

    fn dropped_slot_ref(&self, r: Reason) -> &u64 {
        match r {
            Reason::NonStandardMethod => &self.dropped_non_standard_method,
            Reason::CloudMetadata => &self.dropped_cloud_metadata,
            Reason::EnvoySidecar => &self.dropped_envoy_sidecar,
            Reason::IpHost => &self.dropped_ip_host,
            Reason::Excluded => &self.dropped_excluded,
            Reason::NotIncluded => &self.dropped_not_included,
            Reason::Sampled => &self.dropped_sampled,
        }
    }

    fn dropped_slot(&mut self, r: Reason) -> &mut u64 {
        match r {
            Reason::NonStandardMethod => &mut self.dropped_non_standard_method,
            Reason::CloudMetadata => &mut self.dropped_cloud_metadata,
            Reason::EnvoySidecar => &mut self.dropped_envoy_sidecar,
            Reason::IpHost => &mut self.dropped_ip_host,
            Reason::Excluded => &mut self.dropped_excluded,
            Reason::NotIncluded => &mut self.dropped_not_included,
            Reason::Sampled => &mut self.dropped_sampled,
        }
    }
}

/// The filter of one capture shard.
#[derive(Debug)]
pub struct Filter {
    include: Vec<CompiledRule>,
    exclude: Vec<CompiledRule>,
    drop_ip_hosts: bool,
    drop_cloud_metadata: bool,
    drop_non_standard_methods: bool,
    drop_envoy_sidecar: bool,
    envoy_ports: Vec<u16>,
    after_limit: AfterLimit,
    sampler: Option<Sampler>,
    stats: FilterStats,
}

impl Filter {
    /// Compiles a configuration (apply [`FilterConfig::apply_env`] first for the env
    /// fallbacks). Every pattern is checked; the first bad one is the error.
    pub fn new(cfg: FilterConfig) -> Result<Filter, FilterError> {
        Self::with_keys(cfg, ahash::RandomState::new())
    }

    fn with_keys(cfg: FilterConfig, keys: ahash::RandomState) -> Result<Filter, FilterError> {
        let compile = |kind: &str, rules: &[Rule]| {
            rules
                .iter()
                .enumerate()
                .map(|(i, r)| CompiledRule::compile(&format!("{kind}[{i}]"), r))
                .collect::<Result<Vec<_>, _>>()
        };
        let include = compile("include", &cfg.include)?;
        let exclude = compile("exclude", &cfg.exclude)?;
        let s = &cfg.sampling;
        if s.window_secs == 0 {
            return Err(FilterError::Sampling { field: "window_secs", why: "must be at least 1" });
        }
        if s.window_secs > 366 * 86_400 {
            return Err(FilterError::Sampling { field: "window_secs", why: "must be at most a year (31622400)" });
        }
        if s.max_endpoints == 0 {
            return Err(FilterError::Sampling { field: "max_endpoints", why: "must be at least 1" });
        }
        let sampler = s.enabled.then(|| Sampler::new(s, keys));
        Ok(Filter {
            include,
            exclude,
            drop_ip_hosts: cfg.drop_ip_hosts(),
            drop_cloud_metadata: cfg.drop_cloud_metadata(),
            drop_non_standard_methods: cfg.drop_non_standard_methods,
            drop_envoy_sidecar: cfg.drop_envoy_sidecar(),
            envoy_ports: cfg.envoy_ports,
            after_limit: cfg.sampling.after_limit,
            sampler,
            stats: FilterStats::default(),
        })
    }

    /// Decides what happens to `ex`, at capture time `now` (the sampling clock), and counts it.
    /// Never panics; linear in the size of the request line and headers.
    pub fn decide(&mut self, now: Timestamp, ex: &HttpExchange) -> Decision {
        let d = self.evaluate(now, ex);
        self.stats.exchanges += 1;
        match d {
            Decision::Keep => self.stats.kept += 1,
            Decision::StripBodies => self.stats.bodies_stripped += 1,
            Decision::Drop(r) => *self.stats.dropped_slot(r) += 1,
        }
        d
    }

    fn evaluate(&mut self, now: Timestamp, ex: &HttpExchange) -> Decision {
        let method = ex.request.method.as_str();
        if self.drop_non_standard_methods && !STANDARD_METHODS.iter().any(|m| m.eq_ignore_ascii_case(method)) {
            return Decision::Drop(Reason::NonStandardMethod);
        }
        let target = ex.request.target.as_str();
        let host = pattern::normalize_host(pattern::authority(target, ex.request_header("host")));
        if self.drop_cloud_metadata && is_metadata_call(&host, ex.conn.server.ip()) {
            return Decision::Drop(Reason::CloudMetadata);
        }
        if self.drop_envoy_sidecar && self.is_envoy_call(ex) {
            return Decision::Drop(Reason::EnvoySidecar);
        }
        if self.drop_ip_hosts && (host.is_empty() || pattern::is_ip_literal(&host)) {
            return Decision::Drop(Reason::IpHost);
        }
        let path = pattern::request_path(target);
        if self.exclude.iter().any(|r| r.matches(&host, path, method)) {
            return Decision::Drop(Reason::Excluded);
        }
        if !self.include.is_empty() && !self.include.iter().any(|r| r.matches(&host, path, method)) {
            return Decision::Drop(Reason::NotIncluded);
        }
        let Some(sampler) = self.sampler.as_mut() else {
            return Decision::Keep;
        };
        let key = sampler.key(method, &host, &path_template(path));
        match sampler.admit(now, key) {
            Sampled::Bodies => Decision::Keep,
            Sampled::OverLimit | Sampled::Untracked => match self.after_limit {
                AfterLimit::StripBodies => Decision::StripBodies,
                AfterLimit::Drop => Decision::Drop(Reason::Sampled),
            },
        }
    }

    fn is_envoy_call(&self, ex: &HttpExchange) -> bool {
        let client = canonical(ex.conn.client.ip());
        ENVOY_INBOUND_SOURCES.contains(&client)
            || self.envoy_ports.contains(&ex.conn.server.port())
            || ex.request_header("user-agent").is_some_and(|ua| {
                ua.get(..ENVOY_HEALTH_CHECK_AGENT.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(ENVOY_HEALTH_CHECK_AGENT))
            })
    }

    /// Counters so far, with the gauges current.
    pub fn stats(&self) -> FilterStats {
        let mut s = self.stats.clone();
        if let Some(sm) = &self.sampler {
            s.sampling_untracked = sm.counts.untracked;
            s.sampling_endpoints_expired = sm.counts.swept;
            s.sampling_endpoints_now = sm.len() as u64;
        }
        s
    }
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`, dual-stack sockets) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn is_metadata_call(host: &str, server: IpAddr) -> bool {
    let server = canonical(server);
    METADATA_IPS.contains(&server)
        || METADATA_HOSTS.contains(&host)
        || host.parse::<IpAddr>().is_ok_and(|ip| METADATA_IPS.contains(&canonical(ip)))
}

/// Removes the bodies of a sampled exchange and flags its request with [`SAMPLED_HEADER`] and
/// [`AKTO_SKIP_SAMPLE_HEADER`] (`true`). Wire and decoded lengths are kept.
pub fn strip_bodies(ex: &mut HttpExchange) {
    let clear = |b: &mut reassembly::Body| {
        b.data = Vec::new();
        b.sse = None;
        b.truncated = false;
    };
    clear(&mut ex.request.body);
    if let Some(r) = ex.response.as_mut() {
        clear(&mut r.body);
    }
    for name in [SAMPLED_HEADER, AKTO_SKIP_SAMPLE_HEADER] {
        ex.request.headers.push(name, "true");
    }
}
