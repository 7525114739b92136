//! Table tests of every rule, precedence, sampling windows, the endpoint cap, env fallbacks,
//! config errors and hostile input; a proptest that `decide` is total.

use super::*;
use reassembly::exchange::ConnInfo;
use reassembly::{Body, Flags, Headers, Request, Response, Version};
use std::net::SocketAddr;

const SEC: u64 = 1_000_000;

/// An exchange `method target` with `Host: host` (none when `None`) between the given sockets
/// (also used by other modules' tests).
pub(crate) fn ex_full(method: &str, target: &str, host: Option<&str>, client: &str, server: &str) -> HttpExchange {
    let mut headers = Headers::new();
    if let Some(h) = host {
        headers.push("Host", h);
    }
    let body = |s: &str| Body {
        data: s.as_bytes().to_vec(),
        wire_len: s.len() as u64,
        decoded_len: s.len() as u64,
        ..Body::default()
    };
    HttpExchange {
        conn: ConnInfo {
            client: client.parse::<SocketAddr>().unwrap(),
            server: server.parse::<SocketAddr>().unwrap(),
            vni: 0,
        },
        depth: 1,
        request: Request {
            ts: Timestamp(0),
            method: method.into(),
            target: target.into(),
            version: Version::Http11,
            headers,
            body: body("{\"q\":1}"),
        },
        response: Some(Response {
            ts: Timestamp(0),
            version: Version::Http11,
            status: 200,
            reason: "OK".into(),
            headers: Headers::new(),
            body: body("{\"ok\":true}"),
            interim: vec![],
        }),
        flags: Flags::default(),
    }
}

fn ex(method: &str, target: &str, host: &str) -> HttpExchange {
    ex_full(method, target, Some(host), "10.0.0.1:40000", "10.0.0.2:8080")
}

fn filter(cfg: FilterConfig) -> Filter {
    Filter::new(cfg).unwrap()
}

fn rule(hosts: &[&str], paths: &[&str], methods: &[&str]) -> Rule {
    let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
    Rule { hosts: v(hosts), paths: v(paths), methods: v(methods) }
}

fn toml_cfg(s: &str) -> Result<FilterConfig, toml::de::Error> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        filter: FilterConfig,
    }
    toml::from_str::<File>(s).map(|f| f.filter)
}

/// `decide` at t=0 on a default filter with `cfg` tweaks.
fn d(cfg: &FilterConfig, e: &HttpExchange) -> Decision {
    filter(cfg.clone()).decide(Timestamp(0), e)
}

const KEEP: Decision = Decision::Keep;
fn drop(r: Reason) -> Decision {
    Decision::Drop(r)
}

#[test]
fn defaults_keep_ordinary_traffic() {
    let cfg = FilterConfig::default();
    assert_eq!(d(&cfg, &ex("GET", "/api/users?x=1", "api.example.com")), KEEP);
    assert_eq!(d(&cfg, &ex("post", "/api/users", "api.example.com")), KEEP);
    // IP hosts are kept unless asked (Akto's default).
    assert_eq!(d(&cfg, &ex("GET", "/", "10.0.0.2:8080")), KEEP);
}

#[test]
fn non_standard_methods() {
    let cfg = FilterConfig::default();
    for m in ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "TRACK", "PATCH", "patch", "Get"] {
        assert_eq!(d(&cfg, &ex(m, "/", "a.com")), KEEP, "{m}");
    }
    for m in ["PROPFIND", "PRI", "FOO", "", "GET ", "MKCOL"] {
        assert_eq!(d(&cfg, &ex(m, "/", "a.com")), drop(Reason::NonStandardMethod), "{m:?}");
    }
    let off = FilterConfig { drop_non_standard_methods: false, ..FilterConfig::default() };
    assert_eq!(d(&off, &ex("PROPFIND", "/", "a.com")), KEEP);
}

#[test]
fn ip_literal_hosts() {
    let cfg = FilterConfig { drop_ip_hosts: Some(true), ..FilterConfig::default() };
    for h in [
        "10.0.0.2",
        "10.0.0.2:8080",
        "[::1]",
        "[::1]:8080",
        "::1",
        "fe80::1%eth0",
        "[2001:db8::1]:443",
        "",
        "  ",
        "127.0.0.1.",
    ] {
        assert_eq!(d(&cfg, &ex("GET", "/", h)), drop(Reason::IpHost), "{h:?}");
    }
    // No Host header at all.
    let no_host = ex_full("GET", "/", None, "10.0.0.1:1", "10.0.0.2:80");
    assert_eq!(d(&cfg, &no_host), drop(Reason::IpHost));
    for h in ["api.example.com", "api.example.com:8080", "localhost", "1.2.3.4.nip.io", "[bad", "10.0.0.256"] {
        assert_eq!(d(&cfg, &ex("GET", "/", h)), KEEP, "{h:?}");
    }
    // An absolute-form target's authority wins over Host (RFC 9112 §3.2.2).
    assert_eq!(d(&cfg, &ex("GET", "http://10.1.1.1:80/x", "api.example.com")), drop(Reason::IpHost));
    assert_eq!(d(&cfg, &ex("GET", "http://user:pw@api.example.com/x", "10.0.0.1")), KEEP);
}

#[test]
fn cloud_metadata() {
    let cfg = FilterConfig::default();
    for h in [
        "169.254.169.254",
        "169.254.169.254:80",
        "metadata.google.internal",
        "Metadata.Google.Internal.",
        "[fd00:ec2::254]",
        "100.100.100.200",
    ] {
        assert_eq!(d(&cfg, &ex("GET", "/latest/meta-data/", h)), drop(Reason::CloudMetadata), "{h:?}");
    }
    // By server address even with another Host, IPv4-mapped included.
    let e = ex_full("GET", "/latest/api/token", Some("imds"), "10.0.0.1:1", "169.254.169.254:80");
    assert_eq!(d(&cfg, &e), drop(Reason::CloudMetadata));
    let e = ex_full("GET", "/", Some("imds"), "[::ffff:10.0.0.1]:1", "[::ffff:169.254.169.254]:80");
    assert_eq!(d(&cfg, &e), drop(Reason::CloudMetadata));
    // Counted as metadata, not as an IP host, when both rules are on.
    let both = FilterConfig { drop_ip_hosts: Some(true), ..FilterConfig::default() };
    assert_eq!(d(&both, &ex("GET", "/", "169.254.169.254")), drop(Reason::CloudMetadata));
    let off = FilterConfig { drop_cloud_metadata: Some(false), ..FilterConfig::default() };
    assert_eq!(d(&off, &ex("GET", "/", "169.254.169.254")), KEEP);
    assert_eq!(d(&cfg, &ex("GET", "/", "metadata.google.internal.evil.com")), KEEP);
}

#[test]
fn envoy_sidecar() {
    let cfg = FilterConfig::default();
    // Istio's inbound passthrough source.
    let e = ex_full("GET", "/api", Some("svc"), "127.0.0.6:50000", "10.0.0.2:8080");
    assert_eq!(d(&cfg, &e), drop(Reason::EnvoySidecar));
    let e = ex_full("GET", "/api", Some("svc"), "[::6]:50000", "[fd00::2]:8080");
    assert_eq!(d(&cfg, &e), drop(Reason::EnvoySidecar));
    let e = ex_full("GET", "/api", Some("svc"), "127.0.0.7:50000", "10.0.0.2:8080");
    assert_eq!(d(&cfg, &e), KEEP);
    // Sidecar ports.
    for port in [15000, 15004, 15020, 15021, 15090] {
        let e = ex_full("GET", "/stats/prometheus", Some("x"), "10.0.0.1:1", &format!("10.0.0.2:{port}"));
        assert_eq!(d(&cfg, &e), drop(Reason::EnvoySidecar), "{port}");
    }
    for port in [15001, 15006, 8080] {
        let e = ex_full("GET", "/api", Some("x"), "10.0.0.1:1", &format!("10.0.0.2:{port}"));
        assert_eq!(d(&cfg, &e), KEEP, "{port}");
    }
    // Health checks.
    let mut e = ex("GET", "/healthz", "svc");
    e.request.headers.push("user-agent", "Envoy/HC");
    assert_eq!(d(&cfg, &e), drop(Reason::EnvoySidecar));
    let mut e = ex("GET", "/healthz", "svc");
    e.request.headers.push("User-Agent", "curl/8.0 Envoy/HC");
    assert_eq!(d(&cfg, &e), KEEP);
    // Switched off, or ports emptied.
    let off = FilterConfig { drop_envoy_sidecar: Some(false), ..FilterConfig::default() };
    let e = ex_full("GET", "/api", Some("svc"), "127.0.0.6:50000", "10.0.0.2:15000");
    assert_eq!(d(&off, &e), KEEP);
    let no_ports = FilterConfig { envoy_ports: vec![], ..FilterConfig::default() };
    let e = ex_full("GET", "/api", Some("svc"), "10.0.0.1:1", "10.0.0.2:15000");
    assert_eq!(d(&no_ports, &e), KEEP);
}

#[test]
fn wildcard_and_exact_hosts() {
    let cfg = FilterConfig {
        include: vec![rule(&["*.example.com", "API.other.io", "[::1]", "10.0.0.9"], &[], &[])],
        ..FilterConfig::default()
    };
    let f = |h: &str| d(&cfg, &ex("GET", "/", h));
    assert_eq!(f("a.example.com"), KEEP);
    assert_eq!(f("a.b.example.com:8443"), KEEP);
    assert_eq!(f("A.EXAMPLE.COM."), KEEP);
    assert_eq!(f("example.com"), drop(Reason::NotIncluded));
    assert_eq!(f("badexample.com"), drop(Reason::NotIncluded));
    assert_eq!(f("api.other.io"), KEEP);
    assert_eq!(f("x.api.other.io"), drop(Reason::NotIncluded));
    assert_eq!(f("[::1]:8080"), KEEP);
    assert_eq!(f("::1"), KEEP);
    assert_eq!(f("10.0.0.9:80"), KEEP);
    assert_eq!(f(""), drop(Reason::NotIncluded));
    let any = FilterConfig { exclude: vec![rule(&["*"], &[], &["DELETE"])], ..FilterConfig::default() };
    assert_eq!(d(&any, &ex("DELETE", "/", "whatever")), drop(Reason::Excluded));
    assert_eq!(d(&any, &ex("DELETE", "/", "")), drop(Reason::Excluded));
}

#[test]
fn paths_and_methods() {
    let cfg = FilterConfig {
        exclude: vec![rule(&[], &["/healthz", "/metrics/**", "/static/*.js"], &[]), rule(&[], &[], &["options"])],
        ..FilterConfig::default()
    };
    let f = |m: &str, t: &str| d(&cfg, &ex(m, t, "a.com"));
    assert_eq!(f("GET", "/healthz"), drop(Reason::Excluded));
    assert_eq!(f("GET", "/healthz?full=1"), drop(Reason::Excluded));
    assert_eq!(f("GET", "/healthz/deep"), KEEP);
    assert_eq!(f("GET", "/metrics"), drop(Reason::Excluded));
    assert_eq!(f("GET", "/metrics/a/b"), drop(Reason::Excluded));
    assert_eq!(f("GET", "/metricsx"), KEEP);
    assert_eq!(f("GET", "/static/app.js"), drop(Reason::Excluded));
    assert_eq!(f("GET", "/static/js/app.js"), KEEP);
    assert_eq!(f("GET", "http://a.com/healthz"), drop(Reason::Excluded));
    assert_eq!(f("OPTIONS", "/api"), drop(Reason::Excluded));
    assert_eq!(f("Options", "/api"), drop(Reason::Excluded));
    assert_eq!(f("GET", "/api"), KEEP);
}

#[test]
fn rule_conditions_are_anded() {
    // Drop only GET /health on *.internal.
    let cfg = FilterConfig { exclude: vec![rule(&["*.internal"], &["/health"], &["GET"])], ..FilterConfig::default() };
    assert_eq!(d(&cfg, &ex("GET", "/health", "svc.internal")), drop(Reason::Excluded));
    assert_eq!(d(&cfg, &ex("POST", "/health", "svc.internal")), KEEP);
    assert_eq!(d(&cfg, &ex("GET", "/health", "svc.public")), KEEP);
    assert_eq!(d(&cfg, &ex("GET", "/api", "svc.internal")), KEEP);
}

#[test]
fn exclude_wins_over_include() {
    let cfg = FilterConfig {
        include: vec![rule(&["*.example.com"], &[], &[]), rule(&[], &["/public/**"], &[])],
        exclude: vec![rule(&["admin.example.com"], &[], &[]), rule(&[], &["/public/secret"], &[])],
        ..FilterConfig::default()
    };
    assert_eq!(d(&cfg, &ex("GET", "/x", "api.example.com")), KEEP);
    assert_eq!(d(&cfg, &ex("GET", "/public/a", "other.io")), KEEP);
    assert_eq!(d(&cfg, &ex("GET", "/x", "other.io")), drop(Reason::NotIncluded));
    assert_eq!(d(&cfg, &ex("GET", "/x", "admin.example.com")), drop(Reason::Excluded));
    assert_eq!(d(&cfg, &ex("GET", "/public/secret", "api.example.com")), drop(Reason::Excluded));
}

#[test]
fn akto_rules_before_include_exclude() {
    let cfg =
        FilterConfig { include: vec![rule(&["*"], &[], &[])], drop_ip_hosts: Some(true), ..FilterConfig::default() };
    assert_eq!(d(&cfg, &ex("FOO", "/", "a.com")), drop(Reason::NonStandardMethod));
    assert_eq!(d(&cfg, &ex("GET", "/", "1.2.3.4")), drop(Reason::IpHost));
}

fn sampling(n: u32, window_secs: u64, after: AfterLimit, cap: usize) -> FilterConfig {
    FilterConfig {
        sampling: SamplingConfig {
            enabled: true,
            bodies_per_window: n,
            window_secs,
            after_limit: after,
            max_endpoints: cap,
        },
        ..FilterConfig::default()
    }
}

#[test]
fn sampling_first_n_per_endpoint_then_strip() {
    let mut f = filter(sampling(2, 60, AfterLimit::StripBodies, 100));
    let t = Timestamp(1000 * SEC);
    assert_eq!(f.decide(t, &ex("GET", "/users/1", "a.com")), KEEP);
    assert_eq!(f.decide(t, &ex("GET", "/users/2?x", "a.com:80")), KEEP);
    // Same endpoint: numeric segment collapsed, host port and case ignored.
    assert_eq!(f.decide(t, &ex("get", "/users/3", "A.com")), Decision::StripBodies);
    // Other endpoints have their own budget.
    assert_eq!(f.decide(t, &ex("POST", "/users/1", "a.com")), KEEP);
    assert_eq!(f.decide(t, &ex("GET", "/users/1", "b.com")), KEEP);
    assert_eq!(f.decide(t, &ex("GET", "/users/1/orders", "a.com")), KEEP);
    assert_eq!(f.decide(t, &ex("GET", "/users/550e8400-e29b-41d4-a716-446655440000", "a.com")), Decision::StripBodies);
    let s = f.stats();
    assert_eq!((s.exchanges, s.kept, s.bodies_stripped, s.sampling_endpoints_now), (7, 5, 2, 4));
}

#[test]
fn sampling_window_rolls_over() {
    let mut f = filter(sampling(1, 10, AfterLimit::Drop, 100));
    let e = ex("GET", "/a", "a.com");
    assert_eq!(f.decide(Timestamp(100 * SEC), &e), KEEP);
    assert_eq!(f.decide(Timestamp(105 * SEC), &e), drop(Reason::Sampled));
    assert_eq!(f.decide(Timestamp(110 * SEC - 1), &e), drop(Reason::Sampled));
    // The window is 10 s from the endpoint's first exchange.
    assert_eq!(f.decide(Timestamp(110 * SEC), &e), KEEP);
    assert_eq!(f.decide(Timestamp(111 * SEC), &e), drop(Reason::Sampled));
    // Time going backwards stays in the current window.
    assert_eq!(f.decide(Timestamp(50 * SEC), &e), drop(Reason::Sampled));
    assert_eq!(f.decide(Timestamp(125 * SEC), &e), KEEP);
    assert_eq!(f.stats().dropped_sampled, 4);
}

#[test]
fn sampling_zero_bodies_and_disabled() {
    let mut f = filter(sampling(0, 10, AfterLimit::StripBodies, 100));
    assert_eq!(f.decide(Timestamp(0), &ex("GET", "/a", "a.com")), Decision::StripBodies);
    let mut off = filter(FilterConfig::default());
    for _ in 0..1000 {
        assert_eq!(off.decide(Timestamp(0), &ex("GET", "/a", "a.com")), KEEP);
    }
    assert_eq!(off.stats().sampling_endpoints_now, 0);
}

#[test]
fn sampling_endpoint_cap() {
    let mut f = filter(sampling(1, 10, AfterLimit::StripBodies, 3));
    let t0 = Timestamp(0);
    for p in ["/a", "/b", "/c"] {
        assert_eq!(f.decide(t0, &ex("GET", p, "h")), KEEP, "{p}");
    }
    // Full: a fourth endpoint is untracked and treated as over the limit, every time.
    assert_eq!(f.decide(t0, &ex("GET", "/d", "h")), Decision::StripBodies);
    assert_eq!(f.decide(Timestamp(5 * SEC), &ex("GET", "/d", "h")), Decision::StripBodies);
    // Tracked endpoints keep working.
    assert_eq!(f.decide(Timestamp(11 * SEC), &ex("GET", "/a", "h")), KEEP);
    let s = f.stats();
    assert_eq!((s.sampling_untracked, s.sampling_endpoints_now, s.sampling_endpoints_expired), (2, 3, 0));
    // After the window, the sweep frees the expired endpoints (/b, /c; /a restarted at 11 s).
    assert_eq!(f.decide(Timestamp(12 * SEC), &ex("GET", "/d", "h")), KEEP);
    let s = f.stats();
    assert_eq!((s.sampling_untracked, s.sampling_endpoints_now, s.sampling_endpoints_expired), (2, 2, 2));
    assert_eq!(f.decide(Timestamp(12 * SEC), &ex("GET", "/e", "h")), KEEP);
    // Full again; a window after the last sweep, the next sweep frees all three.
    assert_eq!(f.decide(Timestamp(30 * SEC), &ex("GET", "/f", "h")), KEEP);
    assert_eq!(f.stats().sampling_endpoints_expired, 5);
    assert_eq!(f.decide(Timestamp(31 * SEC), &ex("GET", "/g", "h")), KEEP);
    assert_eq!(f.decide(Timestamp(31 * SEC), &ex("GET", "/h", "h")), KEEP);
    // Sweeps run at most once per window: full at 32 s, the last sweep was at 30 s.
    assert_eq!(f.decide(Timestamp(32 * SEC), &ex("GET", "/i", "h")), Decision::StripBodies);
    let s = f.stats();
    assert_eq!((s.sampling_untracked, s.sampling_endpoints_now, s.sampling_endpoints_expired), (3, 3, 5));
}

#[test]
fn sampling_cap_bounds_a_spray() {
    let mut f = filter(sampling(5, 60, AfterLimit::Drop, 1000));
    for i in 0..20_000u32 {
        f.decide(Timestamp(u64::from(i)), &ex("GET", &format!("/spray/x{i}y"), "h"));
    }
    let s = f.stats();
    assert_eq!(s.sampling_endpoints_now, 1000);
    assert_eq!(s.kept, 1000);
    assert_eq!(s.dropped_sampled, 19_000);
    assert_eq!(s.sampling_untracked, 19_000);
}

#[test]
fn strip_bodies_flags_the_request() {
    let mut e = ex("POST", "/a", "a.com");
    strip_bodies(&mut e);
    assert!(e.request.body.data.is_empty());
    assert!(e.response.as_ref().unwrap().body.data.is_empty());
    assert_eq!(e.request.body.wire_len, 7);
    assert_eq!(e.request_header(SAMPLED_HEADER), Some("true"));
    assert_eq!(e.request_header(AKTO_SKIP_SAMPLE_HEADER), Some("true"));
}

#[test]
fn stats_fields_and_reasons() {
    let mut f = filter(FilterConfig { drop_ip_hosts: Some(true), ..FilterConfig::default() });
    f.decide(Timestamp(0), &ex("FOO", "/", "a.com"));
    f.decide(Timestamp(0), &ex("GET", "/", "1.2.3.4"));
    f.decide(Timestamp(0), &ex("GET", "/", "a.com"));
    let s = f.stats();
    let fields = s.fields();
    let get = |n: &str| fields.iter().find(|(k, _, _)| *k == n).map(|(_, _, v)| *v);
    assert_eq!(get("exchanges"), Some(3));
    assert_eq!(get("kept"), Some(1));
    assert_eq!(get("dropped_non_standard_method"), Some(1));
    assert_eq!(get("dropped_ip_host"), Some(1));
    assert!(fields.iter().all(|(_, help, _)| !help.is_empty()));
    let dropped = s.dropped();
    assert_eq!(dropped.len(), Reason::ALL.len());
    assert_eq!(dropped.iter().map(|(_, n)| n).sum::<u64>(), 2);
    // Every reason's counter is a field named `dropped_<reason>`.
    for r in Reason::ALL {
        assert!(fields.iter().any(|(k, _, _)| *k == format!("dropped_{}", r.name())), "{}", r.name());
    }
    let mut total = FilterStats::default();
    total.merge(&s);
    total.merge(&s);
    assert_eq!(total.exchanges, 6);
}

#[test]
fn env_fallbacks() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    };
    // Unset in the file: env decides.
    let mut c = FilterConfig::default();
    c.apply_env(&env(&[
        ("AKTO_IGNORE_IP_TRAFFIC", "true"),
        ("AKTO_IGNORE_CLOUD_METADATA_CALLS", "FALSE"),
        ("AKTO_IGNORE_ENVOY_PROXY_CALLS", "0"),
    ]))
    .unwrap();
    assert_eq!((c.drop_ip_hosts, c.drop_cloud_metadata, c.drop_envoy_sidecar), (Some(true), Some(false), Some(false)));
    assert_eq!(d(&c, &ex("GET", "/", "1.2.3.4")), drop(Reason::IpHost));
    assert_eq!(d(&c, &ex("GET", "/", "metadata.google.internal")), KEEP);
    // Set in the file: the file wins.
    let mut c = FilterConfig { drop_ip_hosts: Some(false), ..FilterConfig::default() };
    c.apply_env(&env(&[("AKTO_IGNORE_IP_TRAFFIC", "true")])).unwrap();
    assert_eq!(c.drop_ip_hosts, Some(false));
    // Nothing set: defaults.
    let mut c = FilterConfig::default();
    c.apply_env(&env(&[("AKTO_IGNORE_IP_TRAFFIC", " ")])).unwrap();
    assert_eq!((c.drop_ip_hosts(), c.drop_cloud_metadata(), c.drop_envoy_sidecar()), (false, true, true));
    // Garbage: an error naming the variable.
    let mut c = FilterConfig::default();
    let err = c.apply_env(&env(&[("AKTO_IGNORE_CLOUD_METADATA_CALLS", "sometimes")])).unwrap_err();
    assert_eq!(err, FilterError::Env { name: "AKTO_IGNORE_CLOUD_METADATA_CALLS", value: "sometimes".into() });
    assert!(err.to_string().contains("AKTO_IGNORE_CLOUD_METADATA_CALLS"));
}

#[test]
fn invalid_config_errors_name_the_rule() {
    let bad = |include: Vec<Rule>, exclude: Vec<Rule>| {
        Filter::new(FilterConfig { include, exclude, ..FilterConfig::default() }).unwrap_err()
    };
    let cases: Vec<(Rule, &str)> = vec![
        (rule(&[""], &[], &[]), "exclude[1].hosts[0]"),
        (rule(&["a.com", "api.com:8080"], &[], &[]), "exclude[1].hosts[1]"),
        (rule(&["a*.com"], &[], &[]), "exclude[1].hosts[0]"),
        (rule(&["*."], &[], &[]), "exclude[1].hosts[0]"),
        (rule(&["a.com/x"], &[], &[]), "exclude[1].hosts[0]"),
        (rule(&["a b"], &[], &[]), "exclude[1].hosts[0]"),
        (rule(&[], &["api/x"], &[]), "exclude[1].paths[0]"),
        (rule(&[], &["/ok", "/a**"], &[]), "exclude[1].paths[1]"),
        (rule(&[], &["/a/***"], &[]), "exclude[1].paths[0]"),
        (rule(&[], &["/a?b=1"], &[]), "exclude[1].paths[0]"),
        (rule(&[], &[""], &[]), "exclude[1].paths[0]"),
        (rule(&[], &[], &["GET", "BAD METHOD"]), "exclude[1].methods[1]"),
        (rule(&[], &[], &[""]), "exclude[1].methods[0]"),
    ];
    for (r, at) in cases {
        let err = bad(vec![], vec![rule(&["ok.com"], &[], &[]), r.clone()]);
        match &err {
            FilterError::Pattern { rule, .. } => assert_eq!(rule, at, "{r:?}"),
            other => panic!("{r:?}: {other:?}"),
        }
        assert!(err.to_string().starts_with(&format!("filter.{at}:")), "{err}");
    }
    assert_eq!(bad(vec![Rule::default()], vec![]), FilterError::EmptyRule { rule: "include[0]".into() });
    let s = |f: fn(&mut SamplingConfig)| {
        let mut c = FilterConfig::default();
        f(&mut c.sampling);
        Filter::new(c).unwrap_err()
    };
    assert!(matches!(s(|c| c.window_secs = 0), FilterError::Sampling { field: "window_secs", .. }));
    assert!(matches!(s(|c| c.window_secs = u64::MAX), FilterError::Sampling { field: "window_secs", .. }));
    assert!(matches!(s(|c| c.max_endpoints = 0), FilterError::Sampling { field: "max_endpoints", .. }));
}

#[test]
fn toml_schema() {
    let c = toml_cfg(
        r#"
        [filter]
        drop_ip_hosts = true
        drop_cloud_metadata = true
        drop_non_standard_methods = true
        drop_envoy_sidecar = false
        envoy_ports = [15000, 15090]

        [[filter.include]]
        hosts = ["*.example.com"]

        [[filter.exclude]]
        paths = ["/healthz", "/metrics/**"]
        methods = ["OPTIONS"]

        [filter.sampling]
        enabled = true
        bodies_per_window = 5
        window_secs = 300
        after_limit = "drop"
        max_endpoints = 5000
        "#,
    )
    .unwrap();
    assert_eq!(c.include, vec![rule(&["*.example.com"], &[], &[])]);
    assert_eq!(c.exclude[0].methods, vec!["OPTIONS"]);
    assert_eq!(c.sampling.after_limit, AfterLimit::Drop);
    assert_eq!(c.sampling.window(), std::time::Duration::from_secs(300));
    assert_eq!(c.drop_envoy_sidecar, Some(false));
    Filter::new(c).unwrap();
    // Empty table = defaults.
    assert_eq!(toml_cfg("[filter]\n").unwrap(), FilterConfig::default());
    // Unknown keys rejected, at every level, with the line.
    for bad in [
        "[filter]\ndrop_ip = true\n",
        "[filter]\n[[filter.exclude]]\npath = [\"/x\"]\n",
        "[filter]\n[filter.sampling]\nlimit = 3\n",
        "[filter]\n[filter.sampling]\nafter_limit = \"count\"\n",
    ] {
        let e = toml_cfg(bad).unwrap_err().to_string();
        assert!(e.contains("line"), "{e}");
    }
}

#[test]
fn hostile_input() {
    let mut f = filter(FilterConfig {
        include: vec![rule(&["*.a.com", "*"], &["/**/x/*/y", "/*", "/a/**"], &[])],
        exclude: vec![rule(&[], &["/a/**/b/**/c"], &[])],
        drop_ip_hosts: Some(true),
        ..sampling(1, 1, AfterLimit::StripBodies, 16)
    });
    let huge = format!("/{}", "a/".repeat(500_000));
    let weird =
        ["\u{fffd}\u{fffd}/\0", "%00%ff", "/..;/../", "//", "?", "#", "http://", "http://[::1", "a://b@c@d/e", "*", ""];
    let hosts = [
        "",
        ":",
        "[",
        "]",
        "[]:",
        "[::1]:8080",
        "::",
        "a:b:c",
        "\u{fffd}.com",
        "x.a.com:99999999999",
        &"h".repeat(100_000),
    ];
    let t = Timestamp(0);
    for h in hosts {
        for p in weird.iter().copied().chain([huge.as_str()]) {
            let _ = f.decide(t, &ex("GET", p, h));
        }
    }
    let last = f.decide(t, &ex("GET", &huge, "x.a.com"));
    assert!(matches!(last, Decision::Keep | Decision::StripBodies), "{last:?}");
    let s = f.stats();
    assert!(s.exchanges > 0 && s.sampling_endpoints_now <= 16);
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,40}",
            "[/a-z0-9*.?#:\\[\\]@%-]{0,60}",
            Just(String::new()),
            "(http|https)://[a-z0-9.:\\[\\]@]{0,20}(/[a-z0-9]{0,5}){0,5}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// `decide` is total, and counts every exchange exactly once.
        #[test]
        fn decide_never_panics(method in text(), target in text(), host in proptest::option::of(text()), ua in text(), now in any::<u64>(),
                               cport in any::<u16>(), sport in any::<u16>(), v6 in any::<bool>()) {
            let (c, s) = if v6 { (format!("[::1]:{cport}"), format!("[fd00::1]:{sport}")) } else { (format!("127.0.0.6:{cport}"), format!("10.0.0.1:{sport}")) };
            let mut e = ex_full(&method, &target, host.as_deref(), &c, &s);
            e.request.headers.push("User-Agent", &ua);
            let mut f = filter(FilterConfig {
                include: vec![rule(&["*.example.com", "*"], &["/**", "/a/*/b"], &["GET", "post"])],
                exclude: vec![rule(&["x.example.com"], &["/**/secret/**"], &[])],
                drop_ip_hosts: Some(true),
                ..sampling(2, 5, AfterLimit::Drop, 8)
            });
            for i in 0..3u64 {
                let _ = f.decide(Timestamp(now.wrapping_add(i * 3 * SEC)), &e);
            }
            let st = f.stats();
            let dropped: u64 = st.dropped().iter().map(|(_, n)| n).sum();
            prop_assert_eq!(st.exchanges, 3);
            prop_assert_eq!(st.kept + st.bodies_stripped + dropped, 3);
        }

        /// Host normalization never panics and strips ports from `name:port`.
        #[test]
        fn host_port_removed(name in "[a-z][a-z0-9-]{0,20}(\\.[a-z0-9-]{1,10}){0,3}", port in any::<u16>()) {
            let a = format!("{name}:{port}");
            let host = pattern::normalize_host(&a);
            prop_assert_eq!(host.as_ref(), name.as_str());
        }
    }
}
