//! The typed policy: which scanners run, on which direction, with which threshold and action.
//!
//! Every section has the same four switches as Akto's guardrail policies (reference/akto.md §4.3):
//! `enabled`, `apply_on_request`, `apply_on_response` (camelCase aliases accepted) and `action`
//! (`block`, `redact` — Akto's `mask` is accepted as an alias — or `report`). Defaults live in
//! the `Default` impls below and nowhere else.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::PolicyError;

/// Which way a body travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Client to server (MCP requests and notifications from the client, user prompts).
    Request,
    /// Server to client (tool results, `tools/list`, resources, prompts).
    Response,
}

/// What a scanner's finding asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Only report the finding; the verdict stays `allow` because of it.
    Report,
    /// Replace the matched span (Akto's `mask`).
    #[serde(alias = "mask")]
    Redact,
    /// Block the whole body.
    Block,
}

/// PII entity types with validation (names follow Presidio in findings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiType {
    /// E-mail address (RFC 5322 dot-atom local part, a domain with an alphabetic TLD).
    #[serde(alias = "email_address")]
    Email,
    /// Phone number: E.164 and common national formats (bare digit groups need context words).
    #[serde(alias = "phone_number")]
    Phone,
    /// Payment card number: known issuer prefix, 12 to 19 digits, Luhn checksum.
    CreditCard,
    /// IBAN: country length table and ISO 13616 mod-97 check digits.
    #[serde(alias = "iban_code")]
    Iban,
    /// US social security number: area/group/serial rules, well-known samples rejected.
    #[serde(alias = "ssn")]
    UsSsn,
    /// IPv4 (octets ≤ 255) or IPv6 address.
    #[serde(alias = "ip")]
    IpAddress,
}

impl PiiType {
    /// Every supported type, in a stable order.
    pub const ALL: [PiiType; 6] =
        [PiiType::Email, PiiType::Phone, PiiType::CreditCard, PiiType::Iban, PiiType::UsSsn, PiiType::IpAddress];

    /// The Presidio-style entity name used in findings and redaction tokens.
    pub fn entity(self) -> &'static str {
        match self {
            PiiType::Email => "EMAIL_ADDRESS",
            PiiType::Phone => "PHONE_NUMBER",
            PiiType::CreditCard => "CREDIT_CARD",
            PiiType::Iban => "IBAN_CODE",
            PiiType::UsSsn => "US_SSN",
            PiiType::IpAddress => "IP_ADDRESS",
        }
    }
}

/// Input-size and work caps. Exceeding one fails open: the rest is not scanned, the verdict says so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Bytes of a body that are scanned; the remainder is skipped (flag `input_truncated`).
    pub max_input_bytes: usize,
    /// Work budget in scanner-bytes (each scanner charges the bytes it reads): the deterministic
    /// stand-in for a time cap. When spent, remaining segments and scanners are skipped
    /// (flag `work_budget_exhausted`). The default allows every scanner over `max_input_bytes`.
    pub max_work: u64,
    /// JSON-RPC messages per body (batch entries plus SSE events) that are looked at.
    pub max_messages: usize,
    /// Text segments per body that are scanned (flag `segments_truncated`).
    pub max_segments: usize,
    /// Nesting depth followed when extracting text from tool arguments and structured content.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_input_bytes: 1 << 20, max_work: 16 << 20, max_messages: 1024, max_segments: 8192, max_depth: 32 }
    }
}

macro_rules! switches_default {
    ($enabled:expr, $action:expr) => {
        ScannerSwitches { enabled: $enabled, apply_on_request: true, apply_on_response: true, action: $action }
    };
}

/// The four switches every scanner section has (kept as a private helper type; the sections
/// repeat the fields so that `deny_unknown_fields` keeps working without `flatten`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScannerSwitches {
    pub enabled: bool,
    pub apply_on_request: bool,
    pub apply_on_response: bool,
    pub action: Action,
}

impl ScannerSwitches {
    pub(crate) fn applies(&self, dir: Direction) -> bool {
        self.enabled
            && match dir {
                Direction::Request => self.apply_on_request,
                Direction::Response => self.apply_on_response,
            }
    }
}

macro_rules! switches_impl {
    ($t:ty) => {
        impl $t {
            pub(crate) fn switches(&self) -> ScannerSwitches {
                ScannerSwitches {
                    enabled: self.enabled,
                    apply_on_request: self.apply_on_request,
                    apply_on_response: self.apply_on_response,
                    action: self.action,
                }
            }
        }
    };
}

/// Prompt injection and jailbreak detection (rules combined with the linear model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InjectionPolicy {
    /// Run this scanner.
    pub enabled: bool,
    /// Scan client-to-server bodies.
    #[serde(alias = "applyOnRequest")]
    pub apply_on_request: bool,
    /// Scan server-to-client bodies (tool results are where indirect injections arrive).
    #[serde(alias = "applyOnResponse")]
    pub apply_on_response: bool,
    /// What a finding does to the verdict.
    pub action: Action,
    /// Combined score (rules noisy-OR model probability) at or above which a segment is flagged.
    pub threshold: f32,
    /// Decode base64 and hex runs and scan the decoded text too.
    pub decode_encoded: bool,
}

impl Default for InjectionPolicy {
    fn default() -> Self {
        let s = switches_default!(true, Action::Block);
        InjectionPolicy {
            enabled: s.enabled,
            apply_on_request: s.apply_on_request,
            apply_on_response: s.apply_on_response,
            action: s.action,
            threshold: crate::scanners::injection::DEFAULT_THRESHOLD,
            decode_encoded: true,
        }
    }
}
switches_impl!(InjectionPolicy);

/// Hidden text: Unicode tags, zero-width and bidi controls, variation-selector smuggling, ANSI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HiddenTextPolicy {
    /// Run this scanner.
    pub enabled: bool,
    /// Scan client-to-server bodies.
    #[serde(alias = "applyOnRequest")]
    pub apply_on_request: bool,
    /// Scan server-to-client bodies.
    #[serde(alias = "applyOnResponse")]
    pub apply_on_response: bool,
    /// What a finding does to the verdict (`redact` strips the invisible characters).
    pub action: Action,
    /// Findings scoring below this are dropped (a lone zero-width space scores 0.4).
    pub threshold: f32,
    /// Also flag ANSI/VT escape sequences (terminal control in tool output).
    pub ansi: bool,
}

impl Default for HiddenTextPolicy {
    fn default() -> Self {
        HiddenTextPolicy {
            enabled: true,
            apply_on_request: true,
            apply_on_response: true,
            action: Action::Block,
            threshold: 0.5,
            ansi: true,
        }
    }
}
switches_impl!(HiddenTextPolicy);

/// Tool poisoning in `tools/list` descriptions and schemas, and rug pulls between listings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolPoisoningPolicy {
    /// Run this scanner.
    pub enabled: bool,
    /// Scan client-to-server bodies (tool definitions normally travel in responses).
    #[serde(alias = "applyOnRequest")]
    pub apply_on_request: bool,
    /// Scan server-to-client bodies.
    #[serde(alias = "applyOnResponse")]
    pub apply_on_response: bool,
    /// What a finding does to the verdict.
    pub action: Action,
    /// Rule score at or above which a description is flagged.
    pub threshold: f32,
    /// Compare against the pinned listing in [`crate::McpContext`] and flag changed tools.
    pub rug_pull: bool,
}

impl Default for ToolPoisoningPolicy {
    fn default() -> Self {
        ToolPoisoningPolicy {
            enabled: true,
            apply_on_request: true,
            apply_on_response: true,
            action: Action::Block,
            threshold: 0.5,
            rug_pull: true,
        }
    }
}
switches_impl!(ToolPoisoningPolicy);

/// PII with validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PiiPolicy {
    /// Run this scanner.
    pub enabled: bool,
    /// Scan client-to-server bodies.
    #[serde(alias = "applyOnRequest")]
    pub apply_on_request: bool,
    /// Scan server-to-client bodies.
    #[serde(alias = "applyOnResponse")]
    pub apply_on_response: bool,
    /// Default action for every type (overridden per type by `type_actions`).
    pub action: Action,
    /// Types that are detected.
    pub types: Vec<PiiType>,
    /// Per-type action overrides (Akto's `piiTypes[].behavior`).
    pub type_actions: BTreeMap<PiiType, Action>,
}

impl Default for PiiPolicy {
    fn default() -> Self {
        PiiPolicy {
            enabled: true,
            apply_on_request: true,
            apply_on_response: true,
            action: Action::Redact,
            types: PiiType::ALL.to_vec(),
            type_actions: BTreeMap::new(),
        }
    }
}
switches_impl!(PiiPolicy);

impl PiiPolicy {
    /// The action for one type.
    pub fn action_for(&self, t: PiiType) -> Action {
        self.type_actions.get(&t).copied().unwrap_or(self.action)
    }
}

/// Secrets: provider tokens, private keys, JWTs, keyword-context and high-entropy assignments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsPolicy {
    /// Run this scanner.
    pub enabled: bool,
    /// Scan client-to-server bodies.
    #[serde(alias = "applyOnRequest")]
    pub apply_on_request: bool,
    /// Scan server-to-client bodies.
    #[serde(alias = "applyOnResponse")]
    pub apply_on_response: bool,
    /// What a finding does to the verdict.
    pub action: Action,
    /// Also report generic assignments (`password = …`, high-entropy values) besides provider rules.
    pub generic: bool,
    /// Shannon entropy (bits/char) above which a base64-alphabet value of 20+ chars counts.
    pub base64_entropy: f32,
    /// Shannon entropy above which a hex value (not all digits) in an assignment counts.
    pub hex_entropy: f32,
    /// Skip lines carrying `pragma: allowlist secret` or `gitleaks:allow`.
    pub honor_allowlist_pragma: bool,
}

impl Default for SecretsPolicy {
    fn default() -> Self {
        SecretsPolicy {
            enabled: true,
            apply_on_request: true,
            apply_on_response: true,
            action: Action::Redact,
            generic: true,
            base64_entropy: 4.5,
            hex_entropy: 3.0,
            honor_allowlist_pragma: true,
        }
    }
}
switches_impl!(SecretsPolicy);

/// One deny-list regex (Akto `regexPatternsV2`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenyRegex {
    /// Pattern in the `regex` crate's syntax, matched case-insensitively against the raw text.
    pub pattern: String,
    /// Action for this pattern; the section's `action` when absent.
    #[serde(default)]
    pub action: Option<Action>,
}

/// One denied topic (Akto `deniedTopics`): lexical, matched on normalized text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenyTopic {
    /// Topic name, reported as the finding type.
    #[serde(alias = "topic")]
    pub name: String,
    /// Phrases any one of which marks the topic (Akto `samplePhrases`).
    #[serde(default, alias = "samplePhrases")]
    pub phrases: Vec<String>,
    /// Keywords; `min_keywords` distinct ones in one segment mark the topic.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Distinct keywords needed (ignored when `keywords` is empty).
    #[serde(default = "default_min_keywords")]
    pub min_keywords: usize,
}

fn default_min_keywords() -> usize {
    2
}

/// Configurable deny-lists: substrings, regexes, topics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DenyPolicy {
    /// Run this scanner.
    pub enabled: bool,
    /// Scan client-to-server bodies.
    #[serde(alias = "applyOnRequest")]
    pub apply_on_request: bool,
    /// Scan server-to-client bodies.
    #[serde(alias = "applyOnResponse")]
    pub apply_on_response: bool,
    /// Default action for every entry.
    pub action: Action,
    /// Substrings matched case-insensitively on normalized text (homoglyphs and leetspeak folded).
    pub substrings: Vec<String>,
    /// Match substrings only at word boundaries.
    pub whole_words: bool,
    /// Regexes matched against the raw text.
    pub regexes: Vec<DenyRegex>,
    /// Topics.
    pub topics: Vec<DenyTopic>,
}

impl Default for DenyPolicy {
    fn default() -> Self {
        DenyPolicy {
            enabled: true,
            apply_on_request: true,
            apply_on_response: true,
            action: Action::Block,
            substrings: Vec::new(),
            whole_words: true,
            regexes: Vec::new(),
            topics: Vec::new(),
        }
    }
}
switches_impl!(DenyPolicy);

/// The whole policy. `Policy::default()` enables every scanner on both directions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Message for blocked responses (Akto `blockedMessage`); empty means the caller's default.
    #[serde(alias = "blockedMessage")]
    pub blocked_message: String,
    /// Size and work caps.
    pub limits: Limits,
    /// Prompt injection and jailbreak.
    pub injection: InjectionPolicy,
    /// Hidden text.
    pub hidden_text: HiddenTextPolicy,
    /// Tool poisoning and rug pulls.
    pub tool_poisoning: ToolPoisoningPolicy,
    /// PII.
    pub pii: PiiPolicy,
    /// Secrets.
    pub secrets: SecretsPolicy,
    /// Deny-lists.
    pub deny: DenyPolicy,
}

impl Policy {
    /// Parses a JSON policy.
    pub fn from_json(s: &str) -> Result<Policy, PolicyError> {
        let p: Policy = serde_json::from_str(s)?;
        p.validate()?;
        Ok(p)
    }

    /// Parses a TOML policy.
    pub fn from_toml(s: &str) -> Result<Policy, PolicyError> {
        let p: Policy = toml::from_str(s)?;
        p.validate()?;
        Ok(p)
    }

    /// Checks ranges that serde cannot express (thresholds in `0..=1`, non-zero limits).
    pub fn validate(&self) -> Result<(), PolicyError> {
        for (scanner, value) in [
            ("injection", self.injection.threshold),
            ("hidden_text", self.hidden_text.threshold),
            ("tool_poisoning", self.tool_poisoning.threshold),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(PolicyError::Threshold { scanner, value });
            }
        }
        let l = &self.limits;
        for (field, v) in [
            ("max_input_bytes", l.max_input_bytes as u64),
            ("max_work", l.max_work),
            ("max_messages", l.max_messages as u64),
            ("max_segments", l.max_segments as u64),
            ("max_depth", l.max_depth as u64),
        ] {
            if v == 0 {
                return Err(PolicyError::ZeroLimit { field });
            }
        }
        Ok(())
    }

    /// Builds a policy from Akto guardrail policies as the dashboard serves them
    /// (`fetchGuardrailPolicies` → `guardrailPolicies[]`, reference/akto.md §4.3). Active
    /// policies are merged; the second value lists the settings this crate cannot honour
    /// (harmful-content categories need a content-safety model this crate does not ship).
    pub fn from_akto(policies: &[AktoGuardrailsPolicy]) -> (Policy, Vec<String>) {
        let mut p = Policy::default();
        let mut unsupported = Vec::new();
        // Start from "nothing applies" and let each active policy switch things on.
        let mut on_request = false;
        let mut on_response = false;
        let mut injection_level: Option<f32> = None;
        let mut pii_actions: BTreeMap<PiiType, Action> = BTreeMap::new();
        let mut secrets_action: Option<Action> = None;
        for a in policies.iter().filter(|a| a.active.unwrap_or(true)) {
            on_request |= a.apply_on_request.unwrap_or(true);
            on_response |= a.apply_on_response.unwrap_or(false);
            if p.blocked_message.is_empty() {
                if let Some(m) = &a.blocked_message {
                    p.blocked_message = m.clone();
                }
            }
            if let Some(cf) = &a.content_filtering {
                if let Some(pa) = &cf.prompt_attacks {
                    let t = match pa.level.as_deref().map(str::to_ascii_uppercase).as_deref() {
                        Some("LOW") => 0.8,
                        Some("HIGH") => 0.3,
                        _ => crate::scanners::injection::DEFAULT_THRESHOLD,
                    };
                    injection_level = Some(injection_level.map_or(t, |x: f32| x.min(t)));
                }
                if cf.harmful_categories.as_ref().is_some_and(|v| !v.is_null()) {
                    unsupported.push(format!("{}: contentFiltering.harmfulCategories", a.name_or_id()));
                }
            }
            for t in &a.pii_types {
                let action = match t.behavior.as_deref() {
                    Some("mask") | Some("redact") => Action::Redact,
                    _ => Action::Block,
                };
                match t.kind.to_ascii_lowercase().as_str() {
                    "email" | "email_address" => merge_action(&mut pii_actions, PiiType::Email, action),
                    "phone" | "phone_number" => merge_action(&mut pii_actions, PiiType::Phone, action),
                    "credit_card" | "creditcard" => merge_action(&mut pii_actions, PiiType::CreditCard, action),
                    "iban" | "iban_code" => merge_action(&mut pii_actions, PiiType::Iban, action),
                    "ssn" | "us_ssn" => merge_action(&mut pii_actions, PiiType::UsSsn, action),
                    "ip_address" | "ip" => merge_action(&mut pii_actions, PiiType::IpAddress, action),
                    "api_key" | "password" | "secret" | "token" => {
                        secrets_action = Some(secrets_action.map_or(action, |x| x.max(action)));
                    }
                    other => unsupported.push(format!("{}: piiTypes {other}", a.name_or_id())),
                }
            }
            for r in &a.regex_patterns_v2 {
                let action = match r.action.as_deref() {
                    Some("mask") | Some("redact") => Action::Redact,
                    _ => Action::Block,
                };
                p.deny.regexes.push(DenyRegex { pattern: r.pattern.clone(), action: Some(action) });
            }
            for t in &a.denied_topics {
                p.deny.topics.push(DenyTopic {
                    name: t.topic.clone(),
                    phrases: t.sample_phrases.clone(),
                    keywords: Vec::new(),
                    min_keywords: default_min_keywords(),
                });
            }
        }
        let set_dirs = |enabled: bool, req: &mut bool, resp: &mut bool, e: &mut bool| {
            *req = on_request;
            *resp = on_response;
            *e = enabled;
        };
        let inj = &mut p.injection;
        set_dirs(injection_level.is_some(), &mut inj.apply_on_request, &mut inj.apply_on_response, &mut inj.enabled);
        if let Some(t) = injection_level {
            inj.threshold = t;
        }
        // Akto applies prompt-attack filters to requests only.
        inj.apply_on_response = false;
        let pii = &mut p.pii;
        set_dirs(!pii_actions.is_empty(), &mut pii.apply_on_request, &mut pii.apply_on_response, &mut pii.enabled);
        pii.types = pii_actions.keys().copied().collect();
        pii.type_actions = pii_actions;
        let sec = &mut p.secrets;
        set_dirs(secrets_action.is_some(), &mut sec.apply_on_request, &mut sec.apply_on_response, &mut sec.enabled);
        if let Some(a) = secrets_action {
            sec.action = a;
        }
        let deny = &mut p.deny;
        let any_deny = !deny.regexes.is_empty() || !deny.topics.is_empty();
        set_dirs(any_deny, &mut deny.apply_on_request, &mut deny.apply_on_response, &mut deny.enabled);
        // Hidden text and tool poisoning are MCP-protocol protections Akto runs regardless of
        // the content policy; they stay on with their defaults.
        (p, unsupported)
    }

    /// Parses Akto's `{"guardrailPolicies": [...]}` (or a bare array / single object) and converts.
    pub fn from_akto_json(s: &str) -> Result<(Policy, Vec<String>), PolicyError> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape {
            Wrapped {
                #[serde(rename = "guardrailPolicies")]
                guardrail_policies: Vec<AktoGuardrailsPolicy>,
            },
            List(Vec<AktoGuardrailsPolicy>),
            One(Box<AktoGuardrailsPolicy>),
        }
        let list = match serde_json::from_str::<Shape>(s)? {
            Shape::Wrapped { guardrail_policies } => guardrail_policies,
            Shape::List(l) => l,
            Shape::One(o) => vec![*o],
        };
        let (p, u) = Policy::from_akto(&list);
        p.validate()?;
        Ok((p, u))
    }
}

fn merge_action(map: &mut BTreeMap<PiiType, Action>, t: PiiType, a: Action) {
    let e = map.entry(t).or_insert(a);
    *e = (*e).max(a);
}

/// Akto's `GuardrailsPolicy` as served by the dashboard. External data: unknown fields are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AktoGuardrailsPolicy {
    /// Policy id.
    #[serde(default)]
    pub id: Option<serde_json::Value>,
    /// Policy name.
    #[serde(default)]
    pub name: Option<String>,
    /// Inactive policies are skipped.
    #[serde(default)]
    pub active: Option<bool>,
    /// Scan requests.
    #[serde(default)]
    pub apply_on_request: Option<bool>,
    /// Scan responses.
    #[serde(default)]
    pub apply_on_response: Option<bool>,
    /// Message for blocked calls.
    #[serde(default)]
    pub blocked_message: Option<String>,
    /// Content filters (prompt attacks, harmful categories).
    #[serde(default)]
    pub content_filtering: Option<AktoContentFiltering>,
    /// Denied topics.
    #[serde(default)]
    pub denied_topics: Vec<AktoDeniedTopic>,
    /// PII types with block/mask behaviour.
    #[serde(default)]
    pub pii_types: Vec<AktoPiiType>,
    /// Regex patterns with actions.
    #[serde(default)]
    pub regex_patterns_v2: Vec<AktoRegexPattern>,
}

impl AktoGuardrailsPolicy {
    fn name_or_id(&self) -> String {
        match (&self.name, &self.id) {
            (Some(n), _) => n.clone(),
            (None, Some(id)) => id.to_string(),
            (None, None) => "policy".to_string(),
        }
    }
}

/// Akto `contentFiltering`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AktoContentFiltering {
    /// Harmful-content categories (not supported by this crate; reported as unsupported).
    #[serde(default)]
    pub harmful_categories: Option<serde_json::Value>,
    /// Prompt-attack filter with a level.
    #[serde(default)]
    pub prompt_attacks: Option<AktoPromptAttacks>,
}

/// Akto `promptAttacks`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AktoPromptAttacks {
    /// `LOW`, `MEDIUM` or `HIGH` sensitivity.
    #[serde(default)]
    pub level: Option<String>,
}

/// Akto `deniedTopics[]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AktoDeniedTopic {
    /// Topic name.
    pub topic: String,
    /// Sample phrases.
    #[serde(default)]
    pub sample_phrases: Vec<String>,
}

/// Akto `piiTypes[]`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AktoPiiType {
    /// Type name (`email`, `phone`, `ssn`, `credit_card`, `ip_address`, `api_key`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// `block` or `mask`.
    #[serde(default)]
    pub behavior: Option<String>,
}

/// Akto `regexPatternsV2[]`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AktoRegexPattern {
    /// The pattern.
    pub pattern: String,
    /// `block` or `mask`.
    #[serde(default)]
    pub action: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(Policy::from_json(r#"{"injection": {"treshold": 0.4}}"#).is_err());
        assert!(Policy::from_toml("[pii]\nenable = true\n").is_err());
    }

    #[test]
    fn toml_and_json_agree() {
        let j = Policy::from_json(
            r#"{"pii": {"action": "mask", "types": ["email", "credit_card"]}, "injection": {"threshold": 0.7, "applyOnResponse": false}}"#,
        )
        .expect("json");
        let t = Policy::from_toml(
            "[pii]\naction = \"redact\"\ntypes = [\"email\", \"credit_card\"]\n[injection]\nthreshold = 0.7\napply_on_response = false\n",
        )
        .expect("toml");
        assert_eq!(j, t);
        assert_eq!(j.pii.action, Action::Redact);
        assert!(!j.injection.apply_on_response);
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        assert!(matches!(
            Policy::from_json(r#"{"injection": {"threshold": 1.5}}"#),
            Err(PolicyError::Threshold { .. })
        ));
        assert!(matches!(
            Policy::from_json(r#"{"limits": {"max_work": 0}}"#),
            Err(PolicyError::ZeroLimit { field: "max_work" })
        ));
    }

    #[test]
    fn akto_policy_converts() {
        let (p, unsupported) = Policy::from_akto_json(
            r#"{"guardrailPolicies": [{"id": "p1", "name": "default", "active": true,
                "applyOnRequest": true, "applyOnResponse": true, "blockedMessage": "nope",
                "contentFiltering": {"promptAttacks": {"level": "HIGH"}, "harmfulCategories": {"hate": "HIGH"}},
                "deniedTopics": [{"topic": "crypto", "samplePhrases": ["buy bitcoin"]}],
                "piiTypes": [{"type": "email", "behavior": "mask"}, {"type": "ssn", "behavior": "block"},
                             {"type": "api_key", "behavior": "block"}],
                "regexPatternsV2": [{"pattern": "secret-\\d+", "action": "mask"}],
                "someFutureField": 1}]}"#,
        )
        .expect("akto");
        assert_eq!(p.blocked_message, "nope");
        assert!(p.injection.enabled && (p.injection.threshold - 0.3).abs() < 1e-6);
        assert!(!p.injection.apply_on_response);
        assert_eq!(p.pii.types, vec![PiiType::Email, PiiType::UsSsn]);
        assert_eq!(p.pii.action_for(PiiType::Email), Action::Redact);
        assert_eq!(p.pii.action_for(PiiType::UsSsn), Action::Block);
        assert!(p.secrets.enabled && p.secrets.action == Action::Block);
        assert_eq!(p.deny.regexes[0].action, Some(Action::Redact));
        assert_eq!(p.deny.topics[0].phrases, vec!["buy bitcoin".to_string()]);
        assert_eq!(unsupported.len(), 1);
        let (q, _) = Policy::from_akto_json(r#"[{"active": false, "piiTypes": [{"type": "email"}]}]"#).expect("list");
        assert!(!q.pii.enabled);
    }
}
