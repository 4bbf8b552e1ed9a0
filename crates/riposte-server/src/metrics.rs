//! The server's metrics, in Prometheus' text format at `/metrics`. Every
//! metric is named here.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters per source.
#[derive(Default)]
struct SourceCounters {
    received: u64,
    decoded: u64,
    failed: u64,
    dropped: u64,
    /// The last bad message, for the operator.
    sample: Option<String>,
}

#[derive(Default)]
pub struct Metrics {
    sources: Mutex<BTreeMap<String, SourceCounters>>,
    detections: Mutex<BTreeMap<String, u64>>,
    pub alerts_created: AtomicU64,
    pub detections_duplicate: AtomicU64,
    pub batches: AtomicU64,
    pub store_errors: AtomicU64,
    /// Milliseconds from arrival to stored alert, of the last batch.
    pub lag_ms: AtomicU64,
    pub spool_depth: AtomicU64,
    pub spool_bytes: AtomicU64,
    pub rule_reloads: AtomicU64,
    pub rules_loaded: AtomicU64,
    pub http_rejected: AtomicU64,
    /// Open correlation windows (groups), all correlation rules together.
    pub correlation_groups: AtomicU64,
    /// Detections too late for their correlation windows.
    pub correlation_late: AtomicU64,
    /// Correlation groups dropped at the group limit.
    pub correlation_evicted: AtomicU64,
    /// Indicators in the running threat-intelligence set.
    pub intel_indicators: AtomicU64,
    /// Feed pulls that failed (the last good copy stayed).
    pub intel_pull_errors: AtomicU64,
}

/// Reads one counter of a source.
type Read = fn(&SourceCounters) -> u64;

/// Longest sample of a bad message kept.
const SAMPLE_BYTES: usize = 512;

impl Metrics {
    fn source(&self, source: &str, update: impl FnOnce(&mut SourceCounters)) {
        let mut sources = self.sources.lock().unwrap_or_else(|poison| poison.into_inner());
        update(sources.entry(source.to_owned()).or_default());
    }

    pub fn received(&self, source: &str, count: u64) {
        self.source(source, |counters| counters.received += count);
    }

    pub fn decoded(&self, source: &str, count: u64) {
        self.source(source, |counters| counters.decoded += count);
    }

    /// A message that could not be decoded, and why.
    pub fn failed(&self, source: &str, reason: &str, message: &[u8]) {
        let mut sample = format!("{reason}: {}", String::from_utf8_lossy(&message[..message.len().min(SAMPLE_BYTES)]));
        sample.truncate(SAMPLE_BYTES * 2);
        self.source(source, |counters| {
            counters.failed += 1;
            counters.sample = Some(sample);
        });
    }

    pub fn dropped(&self, source: &str, count: u64) {
        self.source(source, |counters| counters.dropped += count);
    }

    pub fn detection(&self, rule_id: &str) {
        let mut detections = self.detections.lock().unwrap_or_else(|poison| poison.into_inner());
        *detections.entry(rule_id.to_owned()).or_default() += 1;
    }

    /// The last bad message of each source that had one.
    pub fn samples(&self) -> BTreeMap<String, String> {
        let sources = self.sources.lock().unwrap_or_else(|poison| poison.into_inner());
        sources.iter().filter_map(|(name, counters)| Some((name.clone(), counters.sample.clone()?))).collect()
    }

    /// Events decoded, per source (for tests and the readiness report).
    pub fn decoded_count(&self, source: &str) -> u64 {
        let sources = self.sources.lock().unwrap_or_else(|poison| poison.into_inner());
        sources.get(source).map_or(0, |counters| counters.decoded)
    }

    pub fn failed_count(&self, source: &str) -> u64 {
        let sources = self.sources.lock().unwrap_or_else(|poison| poison.into_inner());
        sources.get(source).map_or(0, |counters| counters.failed)
    }

    pub fn dropped_count(&self, source: &str) -> u64 {
        let sources = self.sources.lock().unwrap_or_else(|poison| poison.into_inner());
        sources.get(source).map_or(0, |counters| counters.dropped)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        let sources = self.sources.lock().unwrap_or_else(|poison| poison.into_inner());
        let per_source: [(&str, &str, Read); 4] = [
            ("riposte_events_received_total", "Events (or messages) received, per source.", |c| c.received),
            ("riposte_events_decoded_total", "Events decoded and matched, per source.", |c| c.decoded),
            ("riposte_events_failed_total", "Messages that could not be decoded, per source.", |c| c.failed),
            ("riposte_events_dropped_total", "Messages dropped before the spool (UDP under load), per source.", |c| {
                c.dropped
            }),
        ];
        let mut lines = Vec::new();
        for (name, help, value) in per_source {
            family(&mut out, name, "counter", help);
            lines.clear();
            for (source, counters) in sources.iter() {
                lines.push(format!("{name}{{source=\"{}\"}} {}", escape(source), value(counters)));
            }
            for line in &lines {
                let _ = writeln!(out, "{line}");
            }
        }
        drop(sources);
        family(&mut out, "riposte_detections_total", "counter", "Detections, per rule.");
        let detections = self.detections.lock().unwrap_or_else(|poison| poison.into_inner());
        for (rule, count) in detections.iter() {
            let _ = writeln!(out, "riposte_detections_total{{rule_id=\"{}\"}} {count}", escape(rule));
        }
        drop(detections);
        let scalars: [(&str, &str, &str, &AtomicU64); 15] = [
            ("riposte_alerts_created_total", "counter", "Alerts created.", &self.alerts_created),
            (
                "riposte_detections_duplicate_total",
                "counter",
                "Detections already stored (replays).",
                &self.detections_duplicate,
            ),
            ("riposte_batches_total", "counter", "Batches matched and stored.", &self.batches),
            ("riposte_store_errors_total", "counter", "Batches the store refused (retried).", &self.store_errors),
            ("riposte_pipeline_lag_milliseconds", "gauge", "Arrival to stored result, last batch.", &self.lag_ms),
            ("riposte_spool_depth_events", "gauge", "Events spooled, not yet processed.", &self.spool_depth),
            ("riposte_spool_bytes", "gauge", "Bytes in the spool's segments.", &self.spool_bytes),
            ("riposte_rule_reloads_total", "counter", "Rule sets loaded.", &self.rule_reloads),
            ("riposte_rules_loaded", "gauge", "Rules in the running set.", &self.rules_loaded),
            (
                "riposte_http_rejected_total",
                "counter",
                "HTTP requests refused (limits, back-pressure).",
                &self.http_rejected,
            ),
            ("riposte_correlation_groups", "gauge", "Open correlation windows.", &self.correlation_groups),
            (
                "riposte_correlation_late_total",
                "counter",
                "Detections later than the allowed lateness, left out of correlations.",
                &self.correlation_late,
            ),
            (
                "riposte_correlation_evicted_total",
                "counter",
                "Correlation windows dropped at the group limit.",
                &self.correlation_evicted,
            ),
            ("riposte_intel_indicators", "gauge", "Indicators matched against every event.", &self.intel_indicators),
            (
                "riposte_intel_pull_errors_total",
                "counter",
                "Feed pulls that failed (the last good copy stayed).",
                &self.intel_pull_errors,
            ),
        ];
        for (name, kind, help, value) in scalars {
            family(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        out
    }
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::default();
        metrics.received("syslog-udp", 3);
        metrics.decoded("syslog-udp", 2);
        metrics.failed("syslog-udp", "no <PRI>", b"garbage");
        metrics.detection("rule-\"1\"");
        metrics.alerts_created.fetch_add(1, Ordering::Relaxed);
        let text = metrics.render();
        assert!(text.contains("riposte_events_received_total{source=\"syslog-udp\"} 3"), "{text}");
        assert!(text.contains("riposte_events_failed_total{source=\"syslog-udp\"} 1"));
        assert!(text.contains("riposte_detections_total{rule_id=\"rule-\\\"1\\\"\"} 1"));
        assert!(text.contains("# TYPE riposte_spool_depth_events gauge"));
        assert_eq!(metrics.samples()["syslog-udp"], "no <PRI>: garbage");
    }
}
