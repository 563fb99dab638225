//! Counters and gauges, rendered in the Prometheus text format. Every
//! metric name is a constant here.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use headwater_log::stats::{
    LogStats, APPENDED_BYTES, APPENDED_RECORDS, BACKPRESSURE, BACKPRESSURE_EPISODES, DISK_BYTES,
    FSYNCS, RETENTION_DELETED_BYTES,
};

pub const SOURCE_EVENTS: &str = "headwater_source_events_total";
pub const SINK_EVENTS: &str = "headwater_sink_events_total";
pub const SINK_REJECTED: &str = "headwater_sink_rejected_total";
pub const ERRORS: &str = "headwater_errors_total";
pub const RETRIES: &str = "headwater_retries_total";
pub const LOG_END_OFFSET: &str = "headwater_log_end_offset";
pub const SINK_LAG_RECORDS: &str = "headwater_sink_lag_records";
pub const SINK_LAG_SECONDS: &str = "headwater_sink_lag_seconds";
pub const SINK_COMMITTED_OFFSET: &str = "headwater_sink_committed_offset";
pub const COMPONENT_UP: &str = "headwater_component_up";
pub const SOURCE_LAG_BYTES: &str = "headwater_source_lag_bytes";
pub const TRANSFORM_OUTCOMES: &str = "headwater_transform_events_total";

const HELP: [(&str, &str, &str); 19] = [
    (
        SOURCE_EVENTS,
        "counter",
        "Change events a source appended to the log.",
    ),
    (
        SINK_EVENTS,
        "counter",
        "Change events a sink was given from the log.",
    ),
    (
        SINK_REJECTED,
        "counter",
        "Records a sink rejected for good (sent to the dead-letter topic).",
    ),
    (ERRORS, "counter", "Component failures, by error kind."),
    (RETRIES, "counter", "Component restarts after a failure."),
    (
        LOG_END_OFFSET,
        "gauge",
        "Offset after the last durable record of a partition.",
    ),
    (
        SINK_LAG_RECORDS,
        "gauge",
        "Durable records a sink has not committed yet.",
    ),
    (
        SINK_LAG_SECONDS,
        "gauge",
        "Age of the oldest record a sink has not committed yet.",
    ),
    (
        SINK_COMMITTED_OFFSET,
        "gauge",
        "A sink's committed offset (next record to deliver).",
    ),
    (
        COMPONENT_UP,
        "gauge",
        "1 while a component runs, 0 while it waits to retry or has stopped.",
    ),
    (
        SOURCE_LAG_BYTES,
        "gauge",
        "How far a source is behind its database: bytes of WAL its PostgreSQL slot holds back, or of MySQL binlog after its durable checkpoint.",
    ),
    (
        TRANSFORM_OUTCOMES,
        "counter",
        "Events a transform left out (outcome skipped_update) or sent to the source's dead-letter topic (dead_lettered).",
    ),
    (APPENDED_RECORDS, "counter", "Records appended to the log."),
    (APPENDED_BYTES, "counter", "Bytes appended to the log."),
    (FSYNCS, "counter", "fsync calls of the log's writer."),
    (DISK_BYTES, "gauge", "Bytes of the log's segment files."),
    (
        BACKPRESSURE,
        "gauge",
        "1 while appends wait because the log's disk use is over log.max_disk.",
    ),
    (
        BACKPRESSURE_EPISODES,
        "counter",
        "Times appends started waiting for disk space (log.max_disk).",
    ),
    (
        RETENTION_DELETED_BYTES,
        "counter",
        "Bytes of segments deleted by retention.",
    ),
];

type Labels = Vec<(String, String)>;

#[derive(Default)]
pub struct Metrics {
    values: Mutex<BTreeMap<(&'static str, Labels), f64>>,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl Metrics {
    pub fn add(&self, name: &'static str, pairs: &[(&str, &str)], n: u64) {
        let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        *values.entry((name, labels(pairs))).or_default() += n as f64;
    }

    pub fn set(&self, name: &'static str, pairs: &[(&str, &str)], value: f64) {
        let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        values.insert((name, labels(pairs)), value);
    }

    pub fn get(&self, name: &'static str, pairs: &[(&str, &str)]) -> f64 {
        let values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        values.get(&(name, labels(pairs))).copied().unwrap_or(0.0)
    }

    /// Takes the log's own counters (read when `/metrics` is scraped).
    pub fn set_log_stats(&self, stats: LogStats) {
        for (name, value) in [
            (APPENDED_RECORDS, stats.appended_records as f64),
            (APPENDED_BYTES, stats.appended_bytes as f64),
            (FSYNCS, stats.fsyncs as f64),
            (DISK_BYTES, stats.disk_bytes as f64),
            (BACKPRESSURE, f64::from(u8::from(stats.backpressure))),
            (BACKPRESSURE_EPISODES, stats.backpressure_episodes as f64),
            (
                RETENTION_DELETED_BYTES,
                stats.retention_deleted_bytes as f64,
            ),
        ] {
            self.set(name, &[], value);
        }
    }

    /// The Prometheus text exposition of everything recorded.
    pub fn render(&self) -> String {
        let values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for (name, kind, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for ((_, labels), value) in values
                .range((name, Vec::new())..)
                .take_while(|((n, _), _)| *n == name)
            {
                out.push_str(name);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let v = v
                            .replace('\\', "\\\\")
                            .replace('"', "\\\"")
                            .replace('\n', "\\n");
                        let _ = write!(out, "{k}=\"{v}\"");
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {value}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.add(SOURCE_EVENTS, &[("source", "shop")], 3);
        m.add(SOURCE_EVENTS, &[("source", "shop")], 2);
        m.set(
            SINK_LAG_RECORDS,
            &[("sink", "a\"b"), ("topic", "t"), ("partition", "0")],
            7.0,
        );
        let text = m.render();
        assert!(
            text.contains("headwater_source_events_total{source=\"shop\"} 5\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "headwater_sink_lag_records{sink=\"a\\\"b\",topic=\"t\",partition=\"0\"} 7\n"
            ),
            "{text}"
        );
        assert!(text.contains("# TYPE headwater_errors_total counter"));
    }

    #[test]
    fn renders_the_logs_counters() {
        let m = Metrics::default();
        m.set_log_stats(LogStats {
            appended_records: 12,
            backpressure: true,
            ..LogStats::default()
        });
        let text = m.render();
        assert!(
            text.contains("headwater_log_appended_records_total 12\n"),
            "{text}"
        );
        assert!(
            text.contains("headwater_log_disk_backpressure 1\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE headwater_log_disk_bytes gauge"),
            "{text}"
        );
    }
}
