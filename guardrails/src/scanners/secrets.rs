//! Secrets: provider token formats, private keys, JWTs, and generic assignments.
//!
//! Provider rules follow the public gitleaks / detect-secrets rule shapes (MIT / Apache-2.0;
//! TruffleHog's AGPL rules were not used): AWS, GCP, Azure, GitHub, GitLab, Slack, Stripe,
//! OpenAI, Anthropic, Hugging Face, npm, SendGrid, JWT (header decoded and checked), PEM private
//! key blocks, passwords in URLs and `Authorization` headers.
//!
//! Generic rules read text as configuration (`key = value`, `key: value`, `"key": "value"`,
//! INI continuation lines, YAML nesting):
//! * a value under a *strong* keyword (password, secret, private/api key, … — the detect-secrets
//!   keyword list) counts unless it is a placeholder (`${VAR}`, `<your-key>`, `changeme`, …); the
//!   keyword carries over to INI continuation lines and nested YAML keys;
//! * a value under a *weak* keyword (token, credential, access key, …) needs entropy ≥ 3.0 and
//!   16+ characters;
//! * any assigned value that looks random counts: base64 alphabet, 20+ characters, entropy ≥ the
//!   configured limit (4.5), or hex with letters and digits, 10+ characters, entropy ≥ 3.0.
//!   Keys naming identifiers (`…_id`, `uuid`, `hash`, `sha`, `etag`, `commit`, …) and UUID values
//!   are skipped.
//!
//! Lines carrying `pragma: allowlist secret` or `gitleaks:allow` are skipped when configured.

use base64::Engine as _;
use regex::Regex;

use super::{compile, entropy, Hit};
use crate::error::PolicyError;
use crate::policy::SecretsPolicy;

struct ProviderRule {
    id: &'static str,
    re: Regex,
    /// Capture group holding the secret (0 = whole match).
    group: usize,
    score: f32,
    reason: &'static str,
    /// Cheap substring that must be present (case-sensitive) before running the regex.
    needle: &'static str,
}

impl std::fmt::Debug for ProviderRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderRule").field("id", &self.id).finish()
    }
}

/// The compiled secrets scanner.
#[derive(Debug)]
pub struct SecretsScanner {
    rules: Vec<ProviderRule>,
    /// All provider patterns in one automaton: one pass tells which rules need a capture pass.
    rule_set: regex::RegexSet,
    /// Literals at least one of which every provider pattern requires: most text has none, and
    /// the literal search (Teddy / Aho-Corasick) is much cheaper than the set's automaton.
    needles: Regex,
    needles_ci: Regex,
    private_key: Regex,
    line_assignment: Regex,
    strong: Regex,
    weak: Regex,
    id_key: Regex,
    uuid: Regex,
}

const PROVIDERS: &[(&str, &str, usize, f32, &str, &str)] = &[
    ("aws_access_key_id", r"\b((?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b", 1, 1.0, "AWS access key id", ""),
    (
        "aws_secret_access_key",
        r#"(?i)\baws_?(?:secret)?_?(?:access)?_?key\b["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})\b"#,
        1,
        1.0,
        "AWS secret access key",
        "",
    ),
    ("gcp_api_key", r"\b(AIza[0-9A-Za-z_-]{35})\b", 1, 1.0, "Google Cloud API key", "AIza"),
    (
        "gcp_service_account",
        r#""type"\s*:\s*"service_account""#,
        0,
        0.8,
        "Google Cloud service-account key file",
        "service_account",
    ),
    ("google_oauth_token", r"\b(ya29\.[0-9A-Za-z_-]{20,})", 1, 0.95, "Google OAuth access token", "ya29."),
    ("azure_storage_key", r"(?i)AccountKey=([A-Za-z0-9+/]{86}==)", 1, 1.0, "Azure storage account key", ""),
    (
        "azure_client_secret",
        r"(?:^|[^A-Za-z0-9_~.-])([A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34})(?:$|[^A-Za-z0-9_~.-])",
        1,
        0.95,
        "Azure AD client secret",
        "Q~",
    ),
    (
        "azure_sas_token",
        r"\bsv=\d{4}-\d{2}-\d{2}&[^\s\x22']{0,300}?\bsig=([A-Za-z0-9%/+=]{30,})",
        1,
        0.95,
        "Azure shared access signature",
        "sig=",
    ),
    ("github_token", r"\b(gh[pousr]_[A-Za-z0-9]{36,})\b", 1, 1.0, "GitHub token", "gh"),
    (
        "github_fine_grained_pat",
        r"\b(github_pat_[A-Za-z0-9_]{82})\b",
        1,
        1.0,
        "GitHub fine-grained personal access token",
        "github_pat_",
    ),
    (
        "gitlab_token",
        r"\b(gl(?:pat|ptt|dt|rt|cbt|oas|ft|imt|soat|agent)-[A-Za-z0-9_-]{20,})\b",
        1,
        1.0,
        "GitLab token",
        "gl",
    ),
    (
        "gitlab_runner_token",
        r"\b(GR1348941[A-Za-z0-9_-]{20,})\b",
        1,
        1.0,
        "GitLab runner registration token",
        "GR1348941",
    ),
    ("slack_token", r"\b(xox[abposer]-(?:\d+-)?[A-Za-z0-9-]{10,})\b", 1, 1.0, "Slack token", "xox"),
    ("slack_app_token", r"\b(xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+)\b", 1, 1.0, "Slack app-level token", "xapp-"),
    (
        "slack_webhook",
        r"(https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_-]{20,})",
        1,
        1.0,
        "Slack webhook URL",
        "hooks.slack.com",
    ),
    (
        "stripe_secret_key",
        r"\b((?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,99})\b",
        1,
        1.0,
        "Stripe secret or restricted key",
        "_",
    ),
    (
        "openai_api_key",
        r"\b(sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{16,}T3BlbkFJ[A-Za-z0-9_-]{16,})",
        1,
        1.0,
        "OpenAI API key",
        "T3BlbkFJ",
    ),
    (
        "openai_api_key",
        r"\b(sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,})",
        1,
        0.95,
        "OpenAI project or service key",
        "sk-",
    ),
    ("openai_api_key", r"\b(sk-[A-Za-z0-9]{48})\b", 1, 0.9, "OpenAI API key (legacy format)", "sk-"),
    (
        "anthropic_api_key",
        r"\b(sk-ant-(?:api|admin|sid)\d{2}-[A-Za-z0-9_-]{32,})",
        1,
        1.0,
        "Anthropic API key",
        "sk-ant-",
    ),
    ("huggingface_token", r"\b(hf_[A-Za-z0-9]{34,40})\b", 1, 0.95, "Hugging Face access token", "hf_"),
    ("npm_token", r"\b(npm_[A-Za-z0-9]{36})\b", 1, 1.0, "npm access token", "npm_"),
    ("sendgrid_api_key", r"\b(SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43})\b", 1, 1.0, "SendGrid API key", "SG."),
    ("pypi_token", r"\b(pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,})", 1, 1.0, "PyPI upload token", "pypi-"),
    ("jwt", r"\b(eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})", 1, 0.9, "JSON Web Token", "eyJ"),
    (
        "url_password",
        r"\b[a-zA-Z][a-zA-Z0-9+.-]+://[^\s:/@\x22']{1,64}:([^\s:/@\x22']{3,128})@[A-Za-z0-9.-]+",
        1,
        0.85,
        "password in a URL",
        "://",
    ),
    (
        "authorization_header",
        r"(?i)\bauthorization\b[\x22']?\s*[:=]\s*[\x22']?(?:bearer|basic|token)\s+([A-Za-z0-9._~+/=-]{16,})",
        1,
        0.85,
        "credential in an Authorization header",
        "",
    ),
];

/// Literals implied by the provider patterns, one of which each pattern requires (see
/// `needles_cover_providers`): the case-sensitive ones, and those of the `(?i)` patterns (two
/// searches are several times faster than one mixed automaton).
const PROVIDER_NEEDLES: &str = concat!(
    "A3T|AKIA|ASIA|ABIA|ACCA|AIza|service_account|ya29\\.|[0-9]Q~|sig=|gh[pousr]_|github_pat_|",
    "gl(?:pat|ptt|dt|rt|cbt|oas|ft|imt|soat|agent)-|GR1348941|xox|xapp-|hooks\\.slack\\.com|[sr]k_(?:live|test)_|sk-|",
    "hf_|npm_|SG\\.|pypi-|eyJ|://"
);
const PROVIDER_NEEDLES_CI: &str = "(?i)aws|accountkey=|authorization";

const STRONG_KW: &str = r"(?i)(?:api_?key|apikey|auth_?key|service_?key|account_?key|db_?key|database_?key|priv_?key|private_?key|client_?key|client_?secret|db_?pass|database_?pass|key_?pass|password|passwd|passphrase|pwd|secret|contrase[ñn]a|mot_?de_?passe)";
const WEAK_KW: &str = r"(?i)(?:token|credentials?|creds|access_?key|auth|signing_?key|encryption_?key|_key$|^key$)";

impl SecretsScanner {
    /// Compiles the rules.
    pub fn new() -> Result<SecretsScanner, PolicyError> {
        let mut rules = Vec::new();
        for &(id, pat, group, score, reason, needle) in PROVIDERS {
            rules.push(ProviderRule { id, re: compile(id, pat)?, group, score, reason, needle });
        }
        let pats: Vec<&str> = PROVIDERS.iter().map(|p| p.1).collect();
        Ok(SecretsScanner {
            rule_set: super::compile_set("secret providers", &pats)?,
            needles: compile("secret needles", PROVIDER_NEEDLES)?,
            needles_ci: compile("secret needles", PROVIDER_NEEDLES_CI)?,
            rules,
            private_key: compile("private key", r"-----BEGIN[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----")?,
            line_assignment: compile(
                "line assignment",
                r#"^\s*(?:export\s+)?["']?([A-Za-z_][A-Za-z0-9_.\-]{0,80})["']?\s*(?:=>|:=|=|:)(.*)$"#,
            )?,
            strong: compile("strong keyword", STRONG_KW)?,
            weak: compile("weak keyword", WEAK_KW)?,
            id_key: compile(
                "id key",
                r"(?i)(?:^|[_.\-])(?:id|ids|uuid|guid|hash|sha\d*|md5|digest|checksum|etag|commit|rev|revision|version|nonce|color|colour|name|type|url|uri|path|file|prefix|format|length|size|count|ttl|expires?|expiry|enabled|endpoint|page|cursor|next|continuation|sync|csrf)$|[a-z0-9]Id$|^(?:id|uuid|guid)$",
            )?,
            uuid: compile("uuid", r"(?i)^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")?,
        })
    }

    /// Scans `text`. `key_hint` is the JSON key the text was the value of (MCP arguments).
    pub fn scan(&self, text: &str, key_hint: Option<&str>, p: &SecretsPolicy) -> Vec<Hit> {
        let mut hits: Vec<Hit> = Vec::new();
        let matched =
            (self.needles_ci.is_match(text) || self.needles.is_match(text)).then(|| self.rule_set.matches(text));
        for (idx, r) in self.rules.iter().enumerate() {
            if !matched.as_ref().is_some_and(|m| m.matched(idx)) || (!r.needle.is_empty() && !text.contains(r.needle)) {
                continue;
            }
            for c in r.re.captures_iter(text) {
                let Some(m) = c.get(r.group).or_else(|| c.get(0)) else { continue };
                if r.id == "aws_access_key_id" && m.as_str().ends_with("EXAMPLE") {
                    continue;
                }
                if r.id == "jwt" && !jwt_header_ok(m.as_str()) {
                    continue;
                }
                if r.id == "url_password" && is_placeholder(m.as_str()) {
                    continue;
                }
                hits.push(Hit::new(r.id, r.score, m.start(), m.end(), r.reason));
            }
        }
        if memchr::memmem::find(text.as_bytes(), b"PRIVATE KEY").is_some() {
            // A block ends after the first `-----END` at or after its header's end, at the end
            // of the next `-----`. Headers before the same `-----END` share it, so the last
            // search is kept and no stretch of text is searched twice (searching the rest of
            // the text for each header was quadratic in headers without an end). The search for
            // `-----` after a marker stops at the next marker at the latest (it starts so).
            let mut last: Option<(usize, Option<usize>, Option<usize>)> = None; // (from, marker, end)
            for m in self.private_key.find_iter(text) {
                let block_end = match last {
                    Some((from, marker, end)) if from <= m.end() && marker.is_none_or(|k| k >= m.end()) => end,
                    _ => {
                        let marker =
                            memchr::memmem::find(&text.as_bytes()[m.end()..], b"-----END").map(|i| m.end() + i);
                        let end = marker.and_then(|k| {
                            memchr::memmem::find(&text.as_bytes()[k + 8..], b"-----").map(|j| k + 8 + j + 5)
                        });
                        last = Some((m.end(), marker, end));
                        end
                    }
                };
                hits.push(Hit::new(
                    "private_key",
                    1.0,
                    m.start(),
                    block_end.unwrap_or(m.end()),
                    "PEM private key block",
                ));
            }
        }
        if p.generic {
            if let Some(k) = key_hint {
                let v = text.trim();
                if !v.is_empty() && !v.contains(char::is_whitespace) {
                    let off = text.find(v).unwrap_or(0);
                    if let Some((kind, score, why)) = self.judge(k, v, true, p) {
                        hits.push(Hit::new(kind, score, off, off + v.len(), why));
                    }
                }
            }
            self.generic(text, p, &mut hits);
        }
        if p.honor_allowlist_pragma
            && (memchr::memmem::find(text.as_bytes(), b"allowlist secret").is_some()
                || memchr::memmem::find(text.as_bytes(), b"gitleaks:allow").is_some())
        {
            hits.retain(|h| {
                !line_of(text, h.start).contains("pragma: allowlist secret")
                    && !line_of(text, h.start).contains("gitleaks:allow")
            });
        }
        dedup_overlaps(&mut hits);
        hits
    }

    /// `true` when `key` contains a strong keyword. Every strong keyword contains `key`,
    /// `secret`, `pass`, `pwd` or `contrase`, so ASCII keys without one skip the automaton.
    fn is_strong(&self, key: &str) -> bool {
        if key.is_ascii() && !has_stem(key, false) {
            return false;
        }
        self.strong.is_match(key)
    }

    /// `true` when `key` contains a weak keyword (each contains `token`, `cred`, `auth` or `key`).
    fn is_weak(&self, key: &str) -> bool {
        if key.is_ascii() && !has_stem(key, true) {
            return false;
        }
        self.weak.is_match(key)
    }

    /// Decides whether `value` assigned to `key` is a secret.
    fn judge(
        &self,
        key: &str,
        value: &str,
        inherited_strong: bool,
        p: &SecretsPolicy,
    ) -> Option<(&'static str, f32, &'static str)> {
        let _ = inherited_strong;
        if value.len() < 4 {
            return None;
        }
        // Without a strong keyword only the weak-keyword rule (16+ bytes) and the entropy rules
        // (all-hex 10+, base64 alphabet 20+) can fire: rule those out cheaply first.
        if !self.is_strong(key) {
            let n = value.len();
            let hexy = n >= 10 && value.bytes().all(|b| b.is_ascii_hexdigit());
            let b64y = n >= 20
                && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'_' | b'-'));
            if !(hexy || b64y || (n >= 16 && self.is_weak(key))) {
                return None;
            }
        }
        if is_placeholder(value) || self.uuid.is_match(value) {
            return None;
        }
        if self.id_key.is_match(key) {
            return None;
        }
        if self.is_strong(key) {
            if value.chars().all(|c| c.is_ascii_digit()) && value.len() < 6 {
                return None;
            }
            return Some(("keyword_secret", 0.8, "value assigned to a password/secret/key name"));
        }
        if self.is_weak(key) && value.len() >= 16 && entropy(value) >= 3.0 && mixed_classes(value) {
            return Some(("keyword_secret", 0.75, "random-looking value assigned to a token/credential name"));
        }
        self.high_entropy(value, p)
    }

    fn high_entropy(&self, value: &str, p: &SecretsPolicy) -> Option<(&'static str, f32, &'static str)> {
        let is_hex = value.len() >= 10 && value.bytes().all(|b| b.is_ascii_hexdigit());
        if is_hex {
            let letters = value.bytes().any(|b| b.is_ascii_alphabetic());
            let digits = value.bytes().any(|b| b.is_ascii_digit());
            if letters && digits && entropy(value) >= p.hex_entropy {
                return Some(("high_entropy_hex", 0.6, "high-entropy hex value in an assignment"));
            }
            return None;
        }
        let b64 = value.len() >= 20
            && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'_' | b'-'));
        if b64 && entropy(value) >= p.base64_entropy {
            return Some(("high_entropy_base64", 0.6, "high-entropy base64 value in an assignment"));
        }
        None
    }

    /// Line-oriented generic pass with keyword inheritance through indentation.
    fn generic(&self, text: &str, p: &SecretsPolicy, hits: &mut Vec<Hit>) {
        // Stack of (indent, key) for the enclosing assignments.
        let mut stack: Vec<(usize, String)> = Vec::new();
        let mut offset = 0usize;
        for line in lines_inclusive(text) {
            let line_start = offset;
            offset += line.len();
            let body = line.trim_end_matches(['\n', '\r']);
            let trimmed = body.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') || trimmed.starts_with("//") {
                continue;
            }
            let indent = body.len() - trimmed.len();
            // Prose lines without any assignment character and no enclosing key: nothing to do.
            if stack.is_empty() && memchr::memchr2(b'=', b':', body.as_bytes()).is_none() {
                continue;
            }
            while stack.last().is_some_and(|(i, _)| *i >= indent) {
                stack.pop();
            }
            let strong_parent = stack.iter().any(|(_, k)| self.is_strong(k) && !self.id_key.is_match(k));
            if let Some(c) = self.line_assignment.captures(body) {
                let (Some(k), Some(_)) = (c.get(1), c.get(2)) else { continue };
                stack.push((indent, k.as_str().to_string()));
            } else if let Some((_, parent)) = stack.last() {
                // Continuation value (INI multi-line value or a YAML block scalar line).
                if trimmed.starts_with("- ") || trimmed.starts_with('[') {
                    continue;
                }
                let v = trimmed.trim_matches(|c| c == '"' || c == '\'');
                if v.contains(char::is_whitespace) {
                    continue;
                }
                let key = if strong_parent { "secret" } else { parent.as_str() };
                if let Some((kind, score, why)) = self.judge(key, v, strong_parent, p) {
                    let s = line_start + indent + trimmed.find(v).unwrap_or(0);
                    hits.push(Hit::new(kind, score, s, s + v.len(), why));
                }
                continue;
            }
            // Inline assignments on this line (JSON objects, query strings, `k=v; k2=v2`).
            for (_, (ks, ke), (vs, ve)) in assignments(body) {
                let (Some(key), Some(value)) = (body.get(ks..ke), body.get(vs..ve)) else { continue };
                // Too short to be judged a secret unless a (possibly inherited) strong keyword
                // names it (see `judge`).
                if value.len() < 4 || (value.len() < 10 && !strong_parent && !self.is_strong(key)) {
                    continue;
                }
                let (v_start, v_end) = (vs, ve);
                if value.is_empty() {
                    continue;
                }
                let effective = if strong_parent && !self.id_key.is_match(key) && self.weak.find(key).is_none() {
                    // `password:` → `  secure: …` — the enclosing key names a secret.
                    if self.is_strong(key) {
                        key
                    } else {
                        "secret"
                    }
                } else {
                    key
                };
                if let Some((kind, score, why)) = self.judge(effective, value, strong_parent, p) {
                    hits.push(Hit::new(kind, score, line_start + v_start, line_start + v_end, why));
                }
            }
        }
    }
}

/// The inline assignment pattern (key, separator, value; quotes optional, YAML `!!binary` tag
/// skipped), as a regex. [`assignments`] implements it by hand (several times faster on JSON,
/// where nearly every byte starts a candidate); the test `hand_matcher_equals_regex` holds the two
/// equal.
#[cfg(test)]
const ASSIGNMENT: &str = r#"(?m)(?:^|[\s{,;(&?])["']?([A-Za-z_][A-Za-z0-9_.\-]{0,80})["']?[ \t]*(?:=>|:=|=|:)[ \t]*(?:!![a-z]+[ \t]+)?["']?([^\s"',;&}{\[\]()<>]*)"#;

/// Parses `key SEP value` of the [`ASSIGNMENT`] pattern from `q` (just after the prefix byte):
/// returns the key and value ranges; the match ends at the value's end. Every element of the
/// pattern is deterministic given its start (see `hand_matcher_equals_regex`).
///
/// `key = Some((s, e))`: `b[s..e]` is known to be a run of key bytes with no key byte at `e` (the
/// caller read it backwards), so a key starting at `s` ends at `e` (at most 81 bytes) unread.
fn parse_assignment(b: &[u8], q: usize, key: Option<(usize, usize)>) -> Option<((usize, usize), (usize, usize))> {
    let mut p = q;
    if matches!(b.get(p), Some(b'"' | b'\'')) {
        p += 1;
    }
    let ks = p;
    if !b.get(p).is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_') {
        return None;
    }
    match key {
        Some((s, e)) if s == ks && e - s <= 81 => p = e,
        _ => {
            p += 1;
            while p < b.len() && p - ks < 81 && is_key_byte(b[p]) {
                p += 1;
            }
        }
    }
    let ke = p;
    if matches!(b.get(p), Some(b'"' | b'\'')) {
        p += 1;
    }
    while matches!(b.get(p), Some(b' ' | b'\t')) {
        p += 1;
    }
    match (b.get(p), b.get(p + 1)) {
        (Some(b'='), Some(b'>')) | (Some(b':'), Some(b'=')) => p += 2,
        (Some(b'=' | b':'), _) => p += 1,
        _ => return None,
    }
    while matches!(b.get(p), Some(b' ' | b'\t')) {
        p += 1;
    }
    // `(?:!![a-z]+[ \t]+)?`
    if b.get(p) == Some(&b'!') && b.get(p + 1) == Some(&b'!') {
        let mut q = p + 2;
        while b.get(q).is_some_and(u8::is_ascii_lowercase) {
            q += 1;
        }
        if q > p + 2 && matches!(b.get(q), Some(b' ' | b'\t')) {
            while matches!(b.get(q), Some(b' ' | b'\t')) {
                q += 1;
            }
            p = q;
        }
    }
    if matches!(b.get(p), Some(b'"' | b'\'')) {
        p += 1;
    }
    let vs = p;
    while p < b.len() && is_value_byte(b[p]) {
        p += 1;
    }
    Some(((ks, ke), (vs, p)))
}

/// The matches of the `assignment` pattern in one line (no `\n` inside), in order, without the
/// regex: `(match start, key range, value range)`; a match ends at its value's end.
///
/// Every match has a separator (`=` or `:`) right after its key, so only separator bytes are
/// visited: the key is read backwards from each, then the match is re-parsed forwards from its
/// start exactly as the pattern reads it. Separators inside an earlier match's value are skipped.
fn assignments(line: &str) -> impl Iterator<Item = (usize, (usize, usize), (usize, usize))> + '_ {
    let b = line.as_bytes();
    let mut from = 0usize;
    let mut last_end = 0usize;
    std::iter::from_fn(move || {
        while let Some(off) = b.get(from..).and_then(|t| memchr::memchr2(b'=', b':', t)) {
            let sep = from + off;
            from = sep + 1;
            // Backwards: spaces, an optional quote, the key run, an optional quote.
            let mut k = sep;
            while k > last_end && matches!(b[k - 1], b' ' | b'\t') {
                k -= 1;
            }
            if k > last_end && matches!(b[k - 1], b'"' | b'\'') {
                k -= 1;
            }
            let key_end = k;
            while k > last_end && is_key_byte(b[k - 1]) {
                k -= 1;
            }
            if k == key_end {
                continue;
            }
            let mut q = k;
            if q > last_end && matches!(b[q - 1], b'"' | b'\'') {
                q -= 1;
            }
            // `^` is tried before a consumed separator byte (and only at the line's start).
            let start = if q == 0 {
                0
            } else if q > last_end && is_prefix_byte(b[q - 1]) {
                q - 1
            } else {
                continue;
            };
            let found = if start == 0 { parse_assignment(b, 0, Some((k, key_end))) } else { None }.or_else(|| {
                if is_prefix_byte(b[start]) {
                    parse_assignment(b, start + 1, Some((k, key_end)))
                } else {
                    None
                }
            });
            if let Some((key, value)) = found {
                last_end = value.1;
                from = from.max(value.1);
                return Some((start, key, value));
            }
        }
        None
    })
}

/// `text.split_inclusive('\n')`, with the newline search done by `memchr`.
fn lines_inclusive(text: &str) -> impl Iterator<Item = &str> + '_ {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = memchr::memchr(b'\n', rest.as_bytes()).map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        rest = tail;
        Some(line)
    })
}

/// `[\s{,;(&?]` (ASCII `\s`).
fn is_prefix_byte(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0B' | b'\x0C' | b'\r' | b' ' | b'{' | b',' | b';' | b'(' | b'&' | b'?')
}

/// Bytes the assignment pattern accepts in a value (`[^\s"',;&}{\[\]()<>]`; non-ASCII included).
#[inline]
fn is_value_byte(b: u8) -> bool {
    BYTE_CLASS[usize::from(b)] & VALUE != 0
}

/// Bytes of a key (`[A-Za-z0-9_.\-]`).
#[inline]
fn is_key_byte(b: u8) -> bool {
    BYTE_CLASS[usize::from(b)] & KEY != 0
}

const VALUE: u8 = 1;
const KEY: u8 = 2;
/// [`is_value_byte`] and [`is_key_byte`] as one table.
const BYTE_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        if !matches!(
            b,
            b'\t'
                | b'\n'
                | b'\x0B'
                | b'\x0C'
                | b'\r'
                | b' '
                | b'"'
                | b'\''
                | b','
                | b';'
                | b'&'
                | b'}'
                | b'{'
                | b'['
                | b']'
                | b'('
                | b')'
                | b'<'
                | b'>'
        ) {
            t[i] |= VALUE;
        }
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-') {
            t[i] |= KEY;
        }
        i += 1;
    }
    t
};

/// `true` when `hay` contains, ASCII case-insensitively, one of the strong keyword stems (`key`,
/// `secret`, `pass`, `pwd`, `contrase`; `weak` = false) or the weak ones (`key`, `token`, `cred`,
/// `auth`; `weak` = true). One pass: each byte selects the stems that start with it.
fn has_stem(hay: &str, weak: bool) -> bool {
    let b = hay.as_bytes();
    let at = |i: usize, n: &[u8]| b.get(i..i + n.len()).is_some_and(|w| w.eq_ignore_ascii_case(n));
    // Most bytes start no stem: one table test each.
    let starts = if weak { STEM_WEAK } else { STEM_STRONG };
    (0..b.len()).any(|i| {
        STEM_START[usize::from(b[i])] & starts != 0
            && match (b[i] | 0x20, weak) {
                (b'k', _) => at(i, b"key"),
                (b's', false) => at(i, b"secret"),
                (b'p', false) => at(i, b"pass") || at(i, b"pwd"),
                (b'c', false) => at(i, b"contrase"),
                (b't', true) => at(i, b"token"),
                (b'c', true) => at(i, b"cred"),
                (b'a', true) => at(i, b"auth"),
                _ => false,
            }
    })
}

const STEM_STRONG: u8 = 1;
const STEM_WEAK: u8 = 2;
/// First letters of the stems of [`has_stem`], either case: `k`, `s`, `p`, `c` (strong) and `k`,
/// `t`, `c`, `a` (weak).
const STEM_START: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let l = (i as u8).to_ascii_lowercase();
        if matches!(l, b'k' | b's' | b'p' | b'c') {
            t[i] |= STEM_STRONG;
        }
        if matches!(l, b'k' | b't' | b'c' | b'a') {
            t[i] |= STEM_WEAK;
        }
        i += 1;
    }
    t
};

/// ASCII case-insensitive substring test on a short string (`needle` lowercase).
#[cfg(test)]
fn contains_ci(hay: &str, needle: &[u8]) -> bool {
    hay.as_bytes().windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

fn mixed_classes(v: &str) -> bool {
    let lower = v.bytes().any(|b| b.is_ascii_lowercase());
    let upper = v.bytes().any(|b| b.is_ascii_uppercase());
    let digit = v.bytes().any(|b| b.is_ascii_digit());
    (lower as u8 + upper as u8 + digit as u8) >= 2
}

fn is_placeholder(v: &str) -> bool {
    let l = v.trim_matches(|c| c == '"' || c == '\'').to_ascii_lowercase();
    const EXACT: &[&str] = &[
        "none",
        "null",
        "nil",
        "true",
        "false",
        "undefined",
        "changeme",
        "change_me",
        "password",
        "secret",
        "example",
        "test",
        "dummy",
        "sample",
        "redacted",
        "string",
        "str",
        "required",
        "optional",
        "empty",
        "hidden",
        "masked",
        "placeholder",
        "your_password",
        "yourpassword",
        "mypassword",
        "token",
        "apikey",
        "api_key",
    ];
    if EXACT.contains(&l.as_str()) {
        return true;
    }
    const PREFIX: &[&str] = &[
        "${",
        "$",
        "<",
        "{{",
        "%(",
        "%",
        "***",
        "xxx",
        "...",
        "env(",
        "env.",
        "process.env",
        "os.environ",
        "getenv",
        "[redacted",
        "[masked",
        "vault:",
        "secret:",
        "ref+",
        "arn:",
    ];
    if PREFIX.iter().any(|p| l.starts_with(p)) {
        return true;
    }
    l.contains("your_")
        || l.contains("your-")
        || l.contains("example")
        || l.contains("placeholder")
        || l.contains("redacted")
        || l.chars().all(|c| c == '*' || c == 'x' || c == '.')
}

fn jwt_header_ok(tok: &str) -> bool {
    let head = tok.split('.').next().unwrap_or("");
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(head.trim_end_matches('=')) else {
        return false;
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return false };
    v.get("alg").is_some() || v.get("typ").is_some()
}

fn line_of(text: &str, pos: usize) -> &str {
    let pos = super::floor_boundary(text, pos);
    let s = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let e = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
    &text[s..e]
}

/// Keeps the strongest hit among overlapping ones (provider rules beat generic ones).
/// Keeps the best of overlapping hits: by score, then by start, each hit is kept unless it
/// overlaps one kept before; the kept hits come out ordered by span.
///
/// The kept spans are in a map ordered by (start, end), so a hit is checked against the kept
/// spans that start before its end, from the nearest back, until one ends at or before its
/// start: kept spans do not overlap, so the ones before that one end before it too. Comparing
/// each hit with every kept one was quadratic: 26,000 `password: ` assignments in a 256 KB body
/// took most of a second.
fn dedup_overlaps(hits: &mut Vec<Hit>) {
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.start.cmp(&b.start)));
    // Keyed by (start, end, order kept): equal spans stay in the order they were kept.
    let mut kept: std::collections::BTreeMap<(usize, usize, usize), Hit> = std::collections::BTreeMap::new();
    for (order, h) in hits.drain(..).enumerate() {
        let overlaps = kept
            .range(..(h.end, 0, 0))
            .rev()
            .take_while(|((_, end, _), _)| *end > h.start)
            .any(|((start, end, _), _)| h.start < *end && *start < h.end);
        if !overlaps {
            kept.insert((h.start, h.end, order), h);
        }
    }
    hits.extend(kept.into_values());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition `dedup_overlaps` implements: each hit, best first, against every kept one.
    fn dedup_overlaps_by_definition(hits: &mut Vec<Hit>) {
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.start.cmp(&b.start)));
        let mut kept: Vec<Hit> = Vec::with_capacity(hits.len());
        for h in hits.drain(..) {
            if !kept.iter().any(|k| h.start < k.end && k.start < h.end) {
                kept.push(h);
            }
        }
        kept.sort_by_key(|h| (h.start, h.end));
        *hits = kept;
    }

    proptest::proptest! {
        /// Same hits kept, in the same order, as the definition: spans that nest, touch, repeat
        /// and are empty, with tied scores.
        #[test]
        fn dedup_overlaps_equals_its_definition(
            spans in proptest::collection::vec((0usize..60, 0usize..12, 0u8..4), 0..80),
        ) {
            let hits: Vec<Hit> = spans
                .iter()
                .enumerate()
                .map(|(i, &(start, len, score))| {
                    Hit::new("t", f32::from(score) / 4.0, start, start + len, if i % 2 == 0 { "even" } else { "odd" })
                })
                .collect();
            let (mut fast, mut reference) = (hits.clone(), hits);
            dedup_overlaps(&mut fast);
            dedup_overlaps_by_definition(&mut reference);
            let key = |h: &Hit| (h.start, h.end, h.score.to_bits(), h.reason.clone());
            proptest::prop_assert_eq!(fast.iter().map(key).collect::<Vec<_>>(), reference.iter().map(key).collect::<Vec<_>>());
        }
    }

    proptest::proptest! {
        /// Private key blocks end where searching the rest of the text from each header says:
        /// texts of headers, end markers, dashes and filler in any order.
        #[test]
        fn private_key_blocks_end_as_searched_from_each_header(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "-----BEGIN PRIVATE KEY-----", "-----BEGIN RSA PRIVATE KEY-----", "-----END", "-----END PRIVATE KEY-----",
                "-----", "--", "MIIEow", "\n", " ", "é",
            ]), 0..40),
        ) {
            let text: String = parts.concat();
            let s = SecretsScanner::new().expect("compile");
            let want: Vec<(usize, usize)> = s
                .private_key
                .find_iter(&text)
                .map(|m| {
                    let end = text[m.end()..]
                        .find("-----END")
                        .and_then(|i| text[m.end() + i + 8..].find("-----").map(|j| m.end() + i + 8 + j + 5))
                        .unwrap_or(m.end());
                    (m.start(), end)
                })
                .collect();
            let got: Vec<(usize, usize)> = s
                .scan(&text, None, &SecretsPolicy { generic: false, ..SecretsPolicy::default() })
                .iter()
                .filter(|h| h.kind == "private_key")
                .map(|h| (h.start, h.end))
                .collect();
            // Blocks that overlap keep the first (dedup_overlaps): compare after the same rule.
            let mut hits: Vec<Hit> = want.iter().map(|&(a, b)| Hit::new("private_key", 1.0, a, b, "")).collect();
            dedup_overlaps(&mut hits);
            proptest::prop_assert_eq!(got, hits.iter().map(|h| (h.start, h.end)).collect::<Vec<_>>());
        }
    }

    #[test]
    fn lines_inclusive_equals_split_inclusive() {
        for t in ["", "\n", "a", "a\n", "a\nb", "\n\na\r\nb\n", "x\ny\n\n"] {
            assert_eq!(lines_inclusive(t).collect::<Vec<_>>(), t.split_inclusive('\n').collect::<Vec<_>>(), "{t:?}");
        }
    }

    #[test]
    fn one_pass_keyword_test_equals_substring_tests() {
        let strong: &[&[u8]] = &[b"key", b"secret", b"pass", b"pwd", b"contrase"];
        let weak: &[&[u8]] = &[b"key", b"token", b"cred", b"auth"];
        for key in [
            "",
            "k",
            "ke",
            "key",
            "KEY",
            "api_Key",
            "SeCrEt_x",
            "passwd",
            "xpwd",
            "Contrasena",
            "token",
            "pw",
            "kkey",
            "sec",
            "ss_pass_",
            "db.PWD",
            "ACCESS_TOKEN",
            "credS",
            "oauth",
            "Authorization",
            "tok",
            "cre",
            "KKKey",
            "@key",
        ] {
            assert_eq!(has_stem(key, false), strong.iter().any(|n| contains_ci(key, n)), "{key}");
            assert_eq!(has_stem(key, true), weak.iter().any(|n| contains_ci(key, n)), "{key}");
        }
        for b in 0u8..=255 {
            assert_eq!(is_key_byte(b), b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'), "{b}");
        }
    }

    fn scan(text: &str) -> Vec<(String, String)> {
        let s = SecretsScanner::new().expect("compile");
        s.scan(text, None, &SecretsPolicy::default())
            .into_iter()
            .map(|h| (h.kind, text[h.start..h.end].to_string()))
            .collect()
    }

    #[test]
    fn provider_tokens() {
        let gh = format!("ghp_{}", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8");
        let table: Vec<(String, &str)> = vec![
            ("key: AKIAZ3MPLE5ABCDEFGHQ".to_string(), "aws_access_key_id"),
            (format!("token {gh}"), "github_token"),
            ("glpat-abcdefghij0123456789".to_string(), "gitlab_token"),
            ("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx".to_string(), "slack_token"),
            (format!("{}_live_{}", "sk", "4eC39HqLyjWDarjtT1zdp7dc"), "stripe_secret_key"),
            (format!("sk-proj-{}T3BlbkFJ{}", "abcdEFGHijklMNOP1234", "qrstUVWXyz5678ABCDef"), "openai_api_key"),
            (format!("sk-ant-api03-{}", "x".repeat(20) + "Yz09_-AbCdEfGhIjKlMnOp"), "anthropic_api_key"),
            ("AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY".to_string(), "gcp_api_key"),
            ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U".to_string(), "jwt"),
            ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----".to_string(), "private_key"),
            ("postgres://admin:s3cr3tP4ss@db.internal:5432/app".to_string(), "url_password"),
        ];
        for (text, kind) in &table {
            let got = scan(text);
            assert!(got.iter().any(|(k, _)| k == kind), "{text:?} → {got:?}");
        }
    }

    /// Every provider pattern implies one of the needles: a needle-free text cannot match.
    #[test]
    fn needles_cover_providers() {
        let s = SecretsScanner::new().expect("compile");
        let samples = [
            "key: AKIAZ3MPLE5ABCDEFGHQ",
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzzzzzzzz",
            "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
            r#""type": "service_account""#,
            "ya29.a0AfH6SMBxxxxxxxxxxxxxxxxxxxx",
            "AccountKey=abc",
            "abc1Q~abcdefghijabcdefghijabcdefghij12",
            "sv=2020-01-01&sig=abcdefghijabcdefghijabcdefghij12",
            "glpat-abcdefghij0123456789",
            "GR1348941abcdefghij0123456789",
            "xapp-1-A1-1-abc",
            "https://hooks.slack.com/services/abcdefghijabcdefghijab",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "sk-abcdefghijabcdefghijabcdefghijabcdefghijabcdefgh",
            "hf_abcdefghijabcdefghijabcdefghijabcd",
            "npm_abcdefghijabcdefghijabcdefghijabcdef",
            "SG.abcdefghijabcdefghijab.abcdefghijabcdefghijabcdefghijabcdefghijabc",
            "pypi-AgEIcHlwaS5vcmcabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij",
            "Authorization: Bearer abcdefghijabcdefgh",
            "postgres://admin:s3cr3tP4ss@db.internal:5432/app",
        ];
        for t in samples {
            if s.rule_set.is_match(t) {
                assert!(
                    s.needles.is_match(t) || s.needles_ci.is_match(t),
                    "{t:?} matches a provider rule but no needle"
                );
            }
        }
        // Every provider rule begins with (or requires) a needle: check each rule's own literal.
        assert_eq!(PROVIDERS.len(), s.rule_set.len());
    }

    /// The hand matcher finds exactly the regex's matches and capture groups.
    #[test]
    fn hand_matcher_equals_regex() {
        let assignment = compile("assignment", ASSIGNMENT).expect("compile");
        let mut texts: Vec<String> = vec![
            r#"{"user": "bob", "api_key": "Zx81kq0PmA77", "n":1,"x" :=  'y', a=>b}"#.into(),
            "k: !!binary   QUJD\nk2: !!x\nk3: !!binary\n?q=1&token=abc;z=(w)".into(),
            format!("{}=v {}: w", "a".repeat(100), "b".repeat(81)),
            "export FOO=bar\n  key:\"quoted value\" 'single':'v2' \"k\"= \"\" x:\ty".into(),
            "url: http://x.y/p?a=1&b=2 (c=3) [d=4] <e=5> é=6 _k.v-w=7 {x=ü€} ,=a ,a=".into(),
            crate::scanners::tests_corpus_json(),
        ];
        let alphabet: Vec<char> = "ab_K9.-=:>!\"' \t\r{,;(&?}[]<>xé".chars().collect();
        let mut state = 0xDEAD_BEEF_1234_5678u64;
        for len in 0..600 {
            let mut t = String::new();
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                t.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            texts.push(t);
        }
        for text in &texts {
            for line in text.split('\n') {
                let want: Vec<_> = assignment
                    .captures_iter(line)
                    .map(|c| {
                        let (Some(m), Some(k), Some(v)) = (c.get(0), c.get(1), c.get(2)) else { panic!("groups") };
                        (m.start(), (k.start(), k.end()), (v.start(), v.end()))
                    })
                    .collect();
                let got: Vec<_> = assignments(line).collect();
                assert_eq!(got, want, "{line:?}");
            }
        }
    }

    #[test]
    fn generic_assignments() {
        assert_eq!(scan("db_password = hunter22")[0].1, "hunter22");
        assert_eq!(scan(r#"{"user": "bob", "api_key": "Zx81kq0PmA77"}"#)[0].1, "Zx81kq0PmA77");
        assert_eq!(scan("password:\n    secure: thequickbrownfoxjumpsoverthelazydog")[0].0, "keyword_secret");
        assert_eq!(scan("secret_stuff =\n    hunter2\n")[0].1, "hunter2");
    }

    #[test]
    fn hard_negatives() {
        for text in [
            "password = ${DB_PASSWORD}",
            "api_key: <your-api-key>",
            "password: changeme",
            "request_id = 9f8e7d6c5b4a3f2e1d0c",
            "uuid: '203db13e-70c7-462b-9a3d-bf32640cb0be'",
            "AKIAIOSFODNN7EXAMPLE",
            "the password is stored in the vault",
            "password = 12345678901234  # pragma: allowlist secret",
            "eyJub3QiOiJqd3QifQ.eyJub3QiOiJqd3QifQ.abcdefghijk", // header without alg/typ
            "items:\n  - 234567890a\n",
            "commit: 3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f",
        ] {
            assert!(scan(text).is_empty(), "{text:?} → {:?}", scan(text));
        }
    }
}
