//! The configuration file (TOML) of the long-running commands, and its reference.
//!
//! The file mirrors the command-line flags, so there is one definition of every setting: the
//! clap arguments. Each flag `--some-flag` of `capture`/`ingest` is key `some_flag` in the
//! command's section (`[capture]` or `[ingest]`), except these, grouped by component:
//! `[kafka]` (the `--kafka-*` flags without the prefix, and `spool_*`), `[record]`
//! (`account_id`, `daemonset_id`, `max_body_bytes` of `capture`), `[metrics]` (`listen`),
//! `[log]` (`format`, `level`), `[tls]` (`--tls` is `mode`, the `--tls-*` flags without the
//! prefix), `[guardrails]` (`--guardrails` is `mode`, the `--guard-*` flags without the prefix,
//! and the `--threat-*` flags) and `[workload]` (`--workload` is `mode`, the `--workload-*` flags
//! without the prefix, `--k8s-*` and `--node-name`). `[filter]` holds the filter and
//! sampling rules (typed in `crate::filter::config`, also refusing unknown keys with their line).
//!
//! Precedence: flag on the command line > file > environment variable > default. Unknown keys
//! and bad values are refused with their line. `akto-tap config check FILE` validates a file;
//! `akto-tap config reference` prints the table the README carries (a test keeps them equal).

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Commands that take `--config`.
pub const COMMANDS: [&str; 2] = ["capture", "ingest"];

/// Sections whose content is typed elsewhere (not flags).
const TYPED_SECTIONS: [&str; 1] = ["filter"];

/// Where a flag lives in the file.
#[derive(Debug, Clone)]
pub struct Key {
    /// Section.
    pub section: String,
    /// Key in the section.
    pub key: String,
    /// The clap argument.
    pub arg: clap::Arg,
}

impl Key {
    fn id(&self) -> &str {
        self.arg.get_id().as_str()
    }

    fn long(&self) -> String {
        self.arg.get_long().map_or_else(|| self.id().to_string(), str::to_string)
    }
}

/// A bad configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not readable.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A key or value the command does not accept.
    #[error("{path}:{line}: {message}")]
    Key {
        /// The file.
        path: PathBuf,
        /// 1-based line of the key.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// The file keys of a command, derived from its flags.
pub fn keys(cmd: &Command) -> Vec<Key> {
    let name = cmd.get_name().to_string();
    cmd.get_arguments()
        .filter(|a| !matches!(a.get_id().as_str(), "config" | "help" | "version") && !a.is_positional())
        .map(|a| {
            let id = a.get_id().as_str();
            let (section, key) = match id {
                "metrics_listen" => ("metrics".to_string(), "listen".to_string()),
                "log_format" => ("log".into(), "format".into()),
                "log_level" => ("log".into(), "level".into()),
                "spool_dir" | "spool_max_mib" | "spool_fsync" => ("kafka".into(), id.into()),
                "account_id" | "daemonset_id" | "max_body_bytes" if name == "capture" => ("record".into(), id.into()),
                "guardrails" => ("guardrails".into(), "mode".into()),
                "tls" => ("tls".into(), "mode".into()),
                _ if id.starts_with("tls_") => ("tls".into(), id["tls_".len()..].into()),
                _ if id.starts_with("guard_") => ("guardrails".into(), id["guard_".len()..].into()),
                _ if id.starts_with("threat_") => ("guardrails".into(), id.into()),
                "workload" => ("workload".into(), "mode".into()),
                "node_name" => ("workload".into(), id.into()),
                _ if id.starts_with("workload_") => ("workload".into(), id["workload_".len()..].into()),
                _ if id.starts_with("k8s_") => ("workload".into(), id.into()),
                _ => match id.strip_prefix("kafka_") {
                    Some(k) => ("kafka".into(), k.into()),
                    None => (name.clone(), id.into()),
                },
            };
            Key { section, key, arg: a.clone() }
        })
        .collect()
}

/// The line of `section.key` in the text (1-based), for messages.
fn line_of(text: &str, section: &str, key: &str) -> usize {
    let mut current = String::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(h) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
            current = h.trim().to_string();
            if key.is_empty() && current == section {
                return i + 1;
            }
            continue;
        }
        if current == section && !key.is_empty() {
            if let Some((k, _)) = line.split_once('=') {
                if k.trim().trim_matches('"') == key {
                    return i + 1;
                }
            }
        }
    }
    1
}

/// One setting from the file.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its key.
    pub key: Key,
    /// Its value.
    pub value: toml::Value,
    /// Its line.
    pub line: usize,
}

/// A parsed file: flag settings and the typed sections.
#[derive(Debug, Default)]
pub struct FileConfig {
    /// Settings that are flags.
    pub entries: Vec<Entry>,
    /// `[filter]`, when present.
    pub filter: Option<toml::Table>,
}

/// Parses a file for `cmd`, refusing unknown sections and keys.
pub fn parse(path: &Path, text: &str, cmd: &Command) -> Result<FileConfig, ConfigError> {
    let table: toml::Table =
        toml::from_str(text).map_err(|e| ConfigError::Syntax { path: path.into(), message: e.to_string() })?;
    let keys = keys(cmd);
    let mut out = FileConfig::default();
    for (section, content) in &table {
        let toml::Value::Table(content) = content else {
            return Err(ConfigError::Key {
                path: path.into(),
                line: line_of(text, "", section),
                message: format!("`{section}` must be a section ([{section}]), not a value"),
            });
        };
        if TYPED_SECTIONS.contains(&section.as_str()) {
            out.filter = Some(content.clone());
            continue;
        }
        let known: Vec<&Key> = keys.iter().filter(|k| &k.section == section).collect();
        if known.is_empty() {
            let mut sections: Vec<&str> = keys.iter().map(|k| k.section.as_str()).chain(TYPED_SECTIONS).collect();
            sections.sort_unstable();
            sections.dedup();
            return Err(ConfigError::Key {
                path: path.into(),
                line: line_of(text, section, ""),
                message: format!(
                    "unknown section [{section}] for `{}` (sections: {})",
                    cmd.get_name(),
                    sections.join(", ")
                ),
            });
        }
        for (k, v) in content {
            let line = line_of(text, section, k);
            let Some(key) = known.iter().find(|x| &x.key == k) else {
                let names: Vec<&str> = known.iter().map(|x| x.key.as_str()).collect();
                return Err(ConfigError::Key {
                    path: path.into(),
                    line,
                    message: format!("unknown key `{k}` in [{section}] (known: {})", names.join(", ")),
                });
            };
            out.entries.push(Entry { key: (*key).clone(), value: v.clone(), line });
        }
    }
    // Each value must be one the flag accepts: checked alone, so the error names its line.
    for e in &out.entries {
        let args = entry_args(e).map_err(|m| ConfigError::Key { path: path.into(), line: e.line, message: m })?;
        let mut argv: Vec<OsString> = vec![cmd.get_name().into()];
        argv.extend(args);
        if let Err(err) = cmd.clone().try_get_matches_from(argv) {
            let msg = err.render().to_string();
            let first = msg.lines().next().unwrap_or("invalid value").trim_start_matches("error: ").to_string();
            return Err(ConfigError::Key {
                path: path.into(),
                line: e.line,
                message: format!("{}.{}: {first}", e.key.section, e.key.key),
            });
        }
    }
    Ok(out)
}

fn scalar(v: &toml::Value) -> Result<String, String> {
    match v {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        other => Err(format!("expected a string, number or boolean, found {}", other.type_str())),
    }
}

/// The command-line arguments that say what an entry says.
fn entry_args(e: &Entry) -> Result<Vec<OsString>, String> {
    let long = e.key.long();
    let name = format!("{}.{}", e.key.section, e.key.key);
    match e.key.arg.get_action() {
        ArgAction::SetTrue => match e.value {
            toml::Value::Boolean(true) => Ok(vec![format!("--{long}").into()]),
            toml::Value::Boolean(false) => Ok(vec![]),
            _ => Err(format!("{name}: expected true or false")),
        },
        _ => match &e.value {
            toml::Value::Array(items) => {
                let vals: Vec<String> =
                    items.iter().map(scalar).collect::<Result<_, _>>().map_err(|m| format!("{name}: {m}"))?;
                if vals.is_empty() {
                    return Ok(vec![]);
                }
                if e.key.arg.get_value_delimiter().is_some() {
                    Ok(vec![format!("--{long}={}", vals.join(",")).into()])
                } else if matches!(e.key.arg.get_action(), ArgAction::Append) {
                    Ok(vals.into_iter().map(|v| format!("--{long}={v}").into()).collect())
                } else {
                    Err(format!("{name}: takes one value, not a list"))
                }
            }
            v => Ok(vec![format!("--{long}={}", scalar(v).map_err(|m| format!("{name}: {m}"))?).into()]),
        },
    }
}

/// Arguments for every file setting not given on the command line.
pub fn args_from_file(file: &FileConfig, given: &ArgMatches) -> Vec<OsString> {
    let mut out = Vec::new();
    for e in &file.entries {
        if given.value_source(e.key.id()) == Some(ValueSource::CommandLine) {
            continue;
        }
        // Checked by `parse`.
        out.extend(entry_args(e).unwrap_or_default());
    }
    out
}

/// The markdown reference of every file key (generated from the flags, so it cannot drift).
pub fn reference(root: &Command) -> String {
    let mut s = String::new();
    for name in COMMANDS {
        let Some(cmd) = root.find_subcommand(name) else { continue };
        s.push_str(&format!("\n#### `akto-tap {name} --config FILE`\n\n| key | flag | environment | default | meaning |\n|---|---|---|---|---|\n"));
        let mut keys = keys(cmd);
        keys.sort_by(|a, b| (a.section != name, &a.section, &a.key).cmp(&(b.section != name, &b.section, &b.key)));
        for k in keys {
            let env = k.arg.get_env().map(|e| format!("`{}`", e.to_string_lossy())).unwrap_or_default();
            let defaults: Vec<String> =
                k.arg.get_default_values().iter().map(|d| d.to_string_lossy().into_owned()).collect();
            let default = if defaults.is_empty() { String::new() } else { format!("`{}`", defaults.join(",")) };
            let help =
                k.arg.get_help().map(|h| h.to_string().replace('\n', " ").replace('|', "\\|")).unwrap_or_default();
            s.push_str(&format!("| `[{}] {}` | `--{}` | {env} | {default} | {help} |\n", k.section, k.key, k.long()));
        }
    }
    s.push_str("\n`capture` also takes a `[filter]` section: see \"Filters and sampling\".\n");
    s
}

/// Markers around the generated reference in README.md.
pub const README_BEGIN: &str =
    "<!-- config-reference:begin (generated by `akto-tap config reference --update README.md`) -->";
/// End marker.
pub const README_END: &str = "<!-- config-reference:end -->";

/// Replaces the text between the markers of `doc` with `reference`.
pub fn splice(doc: &str, reference: &str) -> Option<String> {
    let start = doc.find(README_BEGIN)? + README_BEGIN.len();
    let end = doc[start..].find(README_END)? + start;
    Some(format!("{}\n{}\n{}", &doc[..start], reference.trim(), &doc[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn root() -> Command {
        crate::Cli::command()
    }

    fn capture() -> Command {
        root().find_subcommand("capture").cloned().unwrap()
    }

    #[test]
    fn the_shipped_configs_are_valid() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let path = repo.join("deploy/systemd/config.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        parse(&path, &text, &capture()).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn unknown_keys_and_sections_name_their_line() {
        let text = "[capture]\nbackend = \"pcap\"\n\n[capture]\n";
        assert!(matches!(parse(Path::new("x"), text, &capture()), Err(ConfigError::Syntax { .. })));
        let text = "[capture]\nbackend = \"pcap\"\nbackedn = \"ebpf\"\n";
        let e = parse(Path::new("c.toml"), text, &capture()).unwrap_err().to_string();
        assert!(e.starts_with("c.toml:3: unknown key `backedn` in [capture]"), "{e}");
        let e = parse(Path::new("c.toml"), "[kafak]\nbrokers = \"x\"\n", &capture()).unwrap_err().to_string();
        assert!(e.starts_with("c.toml:1: unknown section [kafak]"), "{e}");
        let e = parse(Path::new("c.toml"), "backend = \"pcap\"\n", &capture()).unwrap_err().to_string();
        assert!(e.contains("must be a section"), "{e}");
    }

    #[test]
    fn bad_values_name_their_line_and_key() {
        let text = "[capture]\n# comment\nbackend = \"xdp\"\n";
        let e = parse(Path::new("c.toml"), text, &capture()).unwrap_err().to_string();
        assert!(e.starts_with("c.toml:3: capture.backend:") && e.contains("xdp"), "{e}");
        let e = parse(Path::new("c.toml"), "[capture]\nports = [80, \"http\"]\n", &capture()).unwrap_err().to_string();
        assert!(e.starts_with("c.toml:2: capture.ports:"), "{e}");
        let e = parse(Path::new("c.toml"), "[capture]\npromisc = \"yes\"\n", &capture()).unwrap_err().to_string();
        assert!(e.contains("expected true or false"), "{e}");
        let e =
            parse(Path::new("c.toml"), "[capture]\nbackend = [\"a\", \"b\"]\n", &capture()).unwrap_err().to_string();
        assert!(e.contains("one value"), "{e}");
    }

    #[test]
    fn command_line_beats_file_beats_default() {
        let text = "[capture]\nbackend = \"pcap\"\nports = [80, 8080]\nworkers = 3\n[record]\naccount_id = \"42\"\n[kafka]\ntopic = \"t\"\n";
        let file = parse(Path::new("c.toml"), text, &capture()).unwrap();
        let given = capture().try_get_matches_from(["capture", "--workers", "1"]).unwrap();
        let mut args: Vec<String> =
            args_from_file(&file, &given).into_iter().map(|a| a.to_string_lossy().into_owned()).collect();
        args.sort();
        assert_eq!(args, ["--account-id=42", "--backend=pcap", "--kafka-topic=t", "--ports=80,8080"]);
    }

    #[test]
    fn guardrails_flags_live_in_their_section() {
        let text = "[guardrails]\nmode = \"async\"\nqueue = 8\nkafka_topic = \"g\"\nthreat_backend_url = \"http://127.0.0.1:1\"\n";
        let file = parse(Path::new("c.toml"), text, &capture()).expect("parse");
        let given = capture().try_get_matches_from(["capture"]).expect("matches");
        let mut args: Vec<String> =
            args_from_file(&file, &given).into_iter().map(|a| a.to_string_lossy().into_owned()).collect();
        args.sort();
        assert_eq!(
            args,
            [
                "--guard-kafka-topic=g",
                "--guard-queue=8",
                "--guardrails=async",
                "--threat-backend-url=http://127.0.0.1:1"
            ]
        );
        let e = parse(Path::new("c.toml"), "[guardrails]\nmode = \"sync\"\n", &capture())
            .expect_err("bad mode")
            .to_string();
        assert!(e.starts_with("c.toml:2: guardrails.mode:"), "{e}");
    }

    #[test]
    fn workload_flags_live_in_their_section() {
        let text =
            "[workload]\nmode = \"off\"\nrescan_secs = 5\nk8s_api = \"http://127.0.0.1:1\"\nnode_name = \"n1\"\n";
        let file = parse(Path::new("c.toml"), text, &capture()).expect("parse");
        let given = capture().try_get_matches_from(["capture"]).expect("matches");
        let mut args: Vec<String> =
            args_from_file(&file, &given).into_iter().map(|a| a.to_string_lossy().into_owned()).collect();
        args.sort();
        assert_eq!(
            args,
            ["--k8s-api=http://127.0.0.1:1", "--node-name=n1", "--workload-rescan-secs=5", "--workload=off"]
        );
        let e =
            parse(Path::new("c.toml"), "[workload]\nmode = \"on\"\n", &capture()).expect_err("bad mode").to_string();
        assert!(e.starts_with("c.toml:2: workload.mode:"), "{e}");
    }

    #[test]
    fn every_flag_has_a_unique_key() {
        for name in COMMANDS {
            let cmd = root().find_subcommand(name).cloned().unwrap();
            let mut seen: Vec<(String, String)> = keys(&cmd).into_iter().map(|k| (k.section, k.key)).collect();
            let n = seen.len();
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), n, "{name}: two flags map to one key");
        }
    }

    #[test]
    fn readme_reference_is_current() {
        let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        let doc = std::fs::read_to_string(&readme).unwrap();
        let current = splice(&doc, &reference(&root())).expect("README has the config-reference markers");
        assert!(
            current == doc,
            "README.md's configuration reference is out of date: run `akto-tap config reference --update README.md`"
        );
    }
}
