//! Prometheus metrics (`akto_tap_*`), `/healthz` and `/readyz` for the long-running commands.
//!
//! Every counter already lives where it is counted (atomics in the pipeline and the Kafka sink,
//! the engines' `Stats`, the kernel's per-CPU maps); a scrape takes a snapshot of each and
//! renders the text exposition format. The renderer is written here rather than taken from
//! `prometheus-client` because that crate's model is a registry of metric objects updated in
//! place: mirroring each existing counter into it would count everything twice.

pub mod server;

use std::fmt::Write as _;

/// Counter or gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic.
    Counter,
    /// Goes up and down.
    Gauge,
}

#[derive(Debug)]
struct Family {
    name: String,
    help: String,
    kind: Kind,
    samples: Vec<(Vec<(String, String)>, f64)>,
}

/// One scrape's worth of metrics, rendered in the Prometheus text format (version 0.0.4).
#[derive(Debug, Default)]
pub struct MetricSet {
    families: Vec<Family>,
}

impl MetricSet {
    /// An empty set.
    pub fn new() -> MetricSet {
        MetricSet::default()
    }

    fn family(&mut self, name: &str, help: &str, kind: Kind) -> &mut Family {
        let full = format!("akto_tap_{name}");
        if let Some(i) = self.families.iter().position(|f| f.name == full) {
            return &mut self.families[i];
        }
        self.families.push(Family { name: full, help: help.to_string(), kind, samples: Vec::new() });
        let last = self.families.len() - 1;
        &mut self.families[last]
    }

    /// Adds a sample; `name` without the `akto_tap_` prefix (counters should end in `_total`).
    pub fn add(&mut self, kind: Kind, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        let labels = labels.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect();
        self.family(name, help, kind).samples.push((labels, value));
    }

    /// A counter sample.
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        self.add(Kind::Counter, name, help, labels, value as f64);
    }

    /// A gauge sample.
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.add(Kind::Gauge, name, help, labels, value);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        for f in &self.families {
            let kind = match f.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(&f.help));
            let _ = writeln!(out, "# TYPE {} {kind}", f.name);
            for (labels, v) in &f.samples {
                out.push_str(&f.name);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, val)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{k}=\"{}\"", escape_label(val));
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {}", fmt_value(*v));
            }
        }
        out
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Adds a reassembly engine's counters (`*_now` fields are gauges).
pub fn add_engine(m: &mut MetricSet, s: &reassembly::Stats) {
    for (name, help, value) in s.fields() {
        if let Some(base) = name.strip_suffix("_now") {
            m.gauge(&format!("engine_{base}"), help, &[], value as f64);
        } else {
            m.counter(&format!("engine_{name}_total"), help, &[], value);
        }
    }
}

/// Adds the Kafka sink's counters.
pub fn add_kafka(m: &mut MetricSet, s: &crate::kafka::Snapshot) {
    m.counter("kafka_records_accepted_total", "Records handed to the Kafka sink.", &[], s.accepted);
    m.counter("kafka_records_delivered_total", "Records acknowledged by the broker.", &[], s.delivered);
    m.counter("kafka_records_replayed_total", "Records delivered from the on-disk spool.", &[], s.replayed);
    m.counter("kafka_records_spooled_total", "Records written to the on-disk spool.", &[], s.spooled);
    m.counter("kafka_records_retried_total", "Records returned with a retriable error (and spooled).", &[], s.retried);
    m.counter(
        "kafka_records_truncated_total",
        "Records whose payloads were cut to fit message.max.bytes.",
        &[],
        s.truncated,
    );
    m.counter("kafka_spool_dropped_total", "Records refused by the spool's size cap (lost).", &[], s.spool_dropped);
    m.gauge("kafka_spool_bytes", "Bytes waiting in the spool.", &[], s.spool_bytes as f64);
    m.gauge(
        "kafka_broker_up",
        "1 while the broker answers, 0 while records go to the spool.",
        &[],
        if s.broker_down { 0.0 } else { 1.0 },
    );
    if s.failures.is_empty() {
        m.counter(
            "kafka_records_failed_total",
            "Records given up with a non-retriable error, by reason.",
            &[("reason", "none")],
            0,
        );
    }
    for (reason, n) in &s.failures {
        m.counter(
            "kafka_records_failed_total",
            "Records given up with a non-retriable error, by reason.",
            &[("reason", reason)],
            *n,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format_with_escaping_and_grouping() {
        let mut m = MetricSet::new();
        m.counter("drops_total", "Packets dropped, by cause.", &[("cause", "ring_full")], 3);
        m.gauge("queue_depth", "Batches queued.\nper shard", &[("shard", "0")], 2.5);
        m.counter("drops_total", "Packets dropped, by cause.", &[("cause", "a\"b\\c")], 0);
        let text = m.render();
        assert_eq!(
            text,
            "# HELP akto_tap_drops_total Packets dropped, by cause.\n# TYPE akto_tap_drops_total counter\n\
             akto_tap_drops_total{cause=\"ring_full\"} 3\nakto_tap_drops_total{cause=\"a\\\"b\\\\c\"} 0\n\
             # HELP akto_tap_queue_depth Batches queued.\\nper shard\n# TYPE akto_tap_queue_depth gauge\n\
             akto_tap_queue_depth{shard=\"0\"} 2.5\n"
        );
    }

    #[test]
    fn engine_counters_and_gauges() {
        let mut m = MetricSet::new();
        add_engine(&mut m, &reassembly::Stats::default());
        let text = m.render();
        assert!(text.contains("# TYPE akto_tap_engine_packets_total counter"));
        assert!(text.contains("# TYPE akto_tap_engine_flows gauge"));
    }
}
