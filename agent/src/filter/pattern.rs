//! Host, path and method patterns (syntax in [`super::config`]), compiled once; and the views of
//! an exchange they are matched against (host without port, path without query).
//!
//! Matching is linear in the input: hosts are compared as strings, paths run through one
//! `regex` automaton per rule (no backtracking), so a hostile megabyte-long path costs one pass.

use super::config::Rule;
use super::FilterError;
use regex::Regex;
use std::borrow::Cow;
use std::net::IpAddr;

/// A compiled host pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// `*`.
    Any,
    /// Exact name, lowercased, without trailing dot or brackets.
    Exact(String),
    /// `*.suffix`: stored as `.suffix`, lowercased.
    Suffix(String),
}

impl HostPattern {
    fn parse(raw: &str) -> Result<HostPattern, &'static str> {
        let p = raw.trim();
        if p.is_empty() {
            return Err("empty host pattern");
        }
        if p == "*" {
            return Ok(HostPattern::Any);
        }
        let (wild, rest) = match p.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, p),
        };
        let rest = rest.strip_suffix('.').unwrap_or(rest);
        // `[::1]` is written like a Host header; store the bare address.
        let rest = match rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            Some(inner) => inner,
            None => rest,
        };
        if rest.is_empty() {
            return Err("nothing after `*.`");
        }
        if rest.contains('*') {
            return Err("`*` is allowed only as a leading `*.` label or alone");
        }
        if let Some(c) = rest.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':'))) {
            return Err(match c {
                '/' => "a host pattern has no path; put it in `paths`",
                '[' | ']' => "unbalanced brackets",
                _ => "invalid character (letters, digits, `-`, `.`, `_`, `:` only)",
            });
        }
        if rest.matches(':').count() == 1 {
            return Err("ports are not matched: remove `:PORT`");
        }
        let rest = rest.to_ascii_lowercase();
        Ok(if wild { HostPattern::Suffix(format!(".{rest}")) } else { HostPattern::Exact(rest) })
    }

    /// `host` is already normalized (lowercase, no port, no brackets, no trailing dot).
    fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Exact(h) => h == host,
            HostPattern::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
        }
    }
}

/// Translates a path glob into an anchored regular expression.
fn glob_to_regex(glob: &str) -> Result<String, &'static str> {
    if !glob.starts_with('/') {
        return Err("a path pattern starts with `/`");
    }
    if glob.contains(['?', '#']) {
        return Err("paths are matched without the query string or fragment; remove `?`/`#`");
    }
    if glob.contains("***") {
        return Err("`***` is not a pattern; use `*` or `**`");
    }
    let mut re = String::from("^");
    for seg in glob[1..].split('/') {
        if seg == "**" {
            // Zero or more whole segments: `/api/**` matches `/api` and `/api/...`; in the middle,
            // `/a/**/b` matches `/a/b` and `/a/x/y/b` (the next segment supplies its own `/`).
            re.push_str("(?:/.*)?");
            continue;
        }
        if seg.contains("**") {
            return Err("`**` must be a whole segment (`/a/**/b`), use `*` within a segment");
        }
        re.push('/');
        let mut parts = seg.split('*');
        if let Some(first) = parts.next() {
            re.push_str(&regex::escape(first));
        }
        for part in parts {
            re.push_str("[^/]*");
            re.push_str(&regex::escape(part));
        }
    }
    re.push('$');
    Ok(re)
}

/// Whether `m` is an HTTP method token (RFC 9110 §9.1: a `token`).
fn is_token(m: &str) -> bool {
    !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A compiled include/exclude rule.
#[derive(Debug, Clone)]
pub(super) struct CompiledRule {
    hosts: Vec<HostPattern>,
    /// All path globs of the rule as one alternation; `None` when the rule lists no paths.
    paths: Option<Regex>,
    /// Uppercased.
    methods: Vec<String>,
}

impl CompiledRule {
    /// Compiles `rule`; `name` (`exclude[1]`) is used in errors.
    pub(super) fn compile(name: &str, rule: &Rule) -> Result<CompiledRule, FilterError> {
        if rule.hosts.is_empty() && rule.paths.is_empty() && rule.methods.is_empty() {
            return Err(FilterError::EmptyRule { rule: name.to_string() });
        }
        let hosts = rule
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                HostPattern::parse(h).map_err(|why| FilterError::Pattern {
                    rule: format!("{name}.hosts[{i}]"),
                    pattern: h.clone(),
                    why: why.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut alternatives = Vec::with_capacity(rule.paths.len());
        for (i, p) in rule.paths.iter().enumerate() {
            let re = glob_to_regex(p).map_err(|why| FilterError::Pattern {
                rule: format!("{name}.paths[{i}]"),
                pattern: p.clone(),
                why: why.to_string(),
            })?;
            alternatives.push(format!("(?:{re})"));
        }
        let paths = if alternatives.is_empty() {
            None
        } else {
            let joined = alternatives.join("|");
            Some(Regex::new(&joined).map_err(|e| FilterError::Pattern {
                rule: format!("{name}.paths"),
                pattern: rule.paths.join(", "),
                why: e.to_string(),
            })?)
        };
        let methods = rule
            .methods
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let t = m.trim();
                if is_token(t) {
                    Ok(t.to_ascii_uppercase())
                } else {
                    Err(FilterError::Pattern {
                        rule: format!("{name}.methods[{i}]"),
                        pattern: m.clone(),
                        why: "not a method name (an HTTP token)".to_string(),
                    })
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CompiledRule { hosts, paths, methods })
    }

    /// Whether every listed condition matches. `host` normalized, `path` without query.
    pub(super) fn matches(&self, host: &str, path: &str, method: &str) -> bool {
        (self.methods.is_empty() || self.methods.iter().any(|m| m.eq_ignore_ascii_case(method)))
            && (self.hosts.is_empty() || self.hosts.iter().any(|h| h.matches(host)))
            && self.paths.as_ref().is_none_or(|re| re.is_match(path))
    }
}

/// Splits an absolute-form request-target (`http://host:port/path?q`) into authority and the
/// rest; `None` for origin-form (`/path`), asterisk-form and authority-form.
fn split_absolute(target: &str) -> Option<(&str, &str)> {
    let colon = target.find("://")?;
    let scheme = &target[..colon];
    if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')) {
        return None;
    }
    let after = &target[colon + 3..];
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let authority = &after[..end];
    // Drop userinfo (`user:pass@host`).
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Some((authority, &after[end..]))
}

/// The authority the request was addressed to: the absolute-form target's when there is one
/// (RFC 9112 §3.2.2: it overrides Host), else the `Host` header, else `""`.
pub(super) fn authority<'a>(target: &'a str, host_header: Option<&'a str>) -> &'a str {
    match split_absolute(target) {
        Some((a, _)) if !a.is_empty() => a,
        _ => host_header.unwrap_or("").trim(),
    }
}

/// Host of an authority, without port or IPv6 brackets, lowercased, trailing dot removed:
/// `Api.X.com:8080` → `api.x.com`, `[::1]:8080` → `::1`, `::1` (unbracketed) → `::1`.
pub(super) fn normalize_host(authority: &str) -> Cow<'_, str> {
    let a = authority.trim();
    let host = if let Some(rest) = a.strip_prefix('[') {
        rest.split_once(']').map_or(rest, |(inner, _)| inner)
    } else if a.matches(':').count() == 1 {
        a.split_once(':').map_or(a, |(h, _)| h)
    } else {
        a
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// Whether a normalized host is an IP literal (IPv4, IPv6, IPv6 with a `%zone`).
pub(super) fn is_ip_literal(host: &str) -> bool {
    let addr = host.split_once('%').map_or(host, |(a, _)| a);
    addr.parse::<IpAddr>().is_ok()
}

/// Path of a request-target without scheme, authority, query and fragment: `/a/b?x` → `/a/b`,
/// `http://h/a?x` → `/a`, `http://h` → `/`, `*` → `*`.
pub(super) fn request_path(target: &str) -> &str {
    let rest = match split_absolute(target) {
        Some((_, rest)) if rest.is_empty() || rest.starts_with(['?', '#']) => return "/",
        Some((_, rest)) => rest,
        None => target,
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    &rest[..end]
}

/// Whether a path segment is an identifier rather than a name: all digits, a UUID
/// (8-4-4-4-12 hex), or at least 16 hex digits (object ids, hashes).
fn is_param_segment(seg: &str) -> bool {
    let b = seg.as_bytes();
    if b.is_empty() {
        return false;
    }
    if b.iter().all(u8::is_ascii_digit) {
        return true;
    }
    if b.len() >= 16 && b.iter().all(u8::is_ascii_hexdigit) {
        return true;
    }
    b.len() == 36
        && b.iter()
            .enumerate()
            .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { *c == b'-' } else { c.is_ascii_hexdigit() })
}

/// Longest segment kept verbatim in a template; longer ones are opaque tokens → `{param}`.
const MAX_TEMPLATE_SEGMENT: usize = 64;

/// The path template of an endpoint: numeric, UUID, long hex and over-long segments replaced by
/// `{param}`. `/users/42/orders/9f1c…` → `/users/{param}/orders/{param}`.
pub fn path_template(path: &str) -> String {
    let mut out = String::with_capacity(path.len().min(256));
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if is_param_segment(seg) || seg.len() > MAX_TEMPLATE_SEGMENT {
            out.push_str("{param}");
        } else {
            out.push_str(seg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_translation() {
        let m = |g: &str, p: &str| Regex::new(&glob_to_regex(g).unwrap()).unwrap().is_match(p);
        assert!(m("/api", "/api"));
        assert!(!m("/api", "/api/x"));
        assert!(!m("/api", "/apix"));
        assert!(m("/api/**", "/api"));
        assert!(m("/api/**", "/api/"));
        assert!(m("/api/**", "/api/v1/users"));
        assert!(!m("/api/**", "/apix"));
        assert!(m("/a/**/b", "/a/b"));
        assert!(m("/a/**/b", "/a/x/y/b"));
        assert!(!m("/a/**/b", "/a/x/y/c"));
        assert!(m("/users/*", "/users/42"));
        assert!(m("/users/*", "/users/"));
        assert!(!m("/users/*", "/users/42/orders"));
        assert!(m("/*.json", "/openapi.json"));
        assert!(!m("/*.json", "/a/openapi.json"));
        assert!(m("/**", "/"));
        assert!(m("/**", "/anything/at/all"));
        // Regex metacharacters are literal.
        assert!(m("/a.b+(c)", "/a.b+(c)"));
        assert!(!m("/a.b", "/aXb"));
    }

    #[test]
    fn templates() {
        assert_eq!(path_template("/users/42/orders"), "/users/{param}/orders");
        assert_eq!(path_template("/u/550e8400-e29b-41d4-a716-446655440000"), "/u/{param}");
        assert_eq!(path_template("/o/507f1f77bcf86cd799439011"), "/o/{param}");
        assert_eq!(path_template("/o/deadbeef"), "/o/deadbeef");
        assert_eq!(path_template("/v1/users"), "/v1/users");
        assert_eq!(path_template("/"), "/");
        assert_eq!(path_template(""), "");
        assert_eq!(path_template(&format!("/t/{}", "a".repeat(65))), "/t/{param}");
        assert_eq!(path_template("/a//b/"), "/a//b/");
    }
}
