//! From the spool to the store: every spooled record is decoded, matched
//! against the running rules on all cores, and its results stored; only then
//! does the spool's checkpoint move past it.
//!
//! A crash anywhere replays the records after the checkpoint. Their events
//! are stored again under the same sequence numbers and their detections
//! under the same keys, which the store recognises: nothing is lost and no
//! alert is counted twice.
//!
//! Correlation rules run on the pipeline thread, in spool order, after a
//! batch is matched. Their state is stored with every batch that changed it,
//! tagged with the batch's last sequence number; at start it is read back and
//! replayed records it already holds are not fed to it again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rayon::prelude::*;
use riposte_event::{Event, JsonDecoder, LogSource};
use riposte_ingest::{CefDecoder, Dialect, Dialects, SyslogDecoder};
use riposte_sigma::{CorrelationMatch, Correlator, CorrelatorConfig, Snapshot};
use riposte_store::{AnyStore, CorrelationState, NewDetection, NewEvent, Store};
use time::OffsetDateTime;

use crate::alert;
use crate::config::{AlertsConfig, Config, FileFormat, SourceConfig};
use crate::metrics::Metrics;
use crate::rules::LoadedRules;
use crate::ruleset::RuleSet;
use crate::spool::{Spool, Spooled};

/// How often the window of recent unmatched events is refreshed.
const RAW_SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// An event claiming to happen this long after it arrived is taken at its
/// arrival: one wrong clock must not move event time (and so close every
/// correlation window) into the future.
const EVENT_TIME_AHEAD_LIMIT_MS: i64 = 3_600_000;

/// The name of the HTTP ingest source.
pub const HTTP_SOURCE: &str = "http";

/// How a source's records are read.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Decoder {
    /// One JSON object (records of known tools recognised).
    Json,
    /// One JSON object of the named tool.
    JsonOf(Dialect),
    /// A syslog message (a CEF message read too).
    Syslog,
    /// A line of a syslog file (a `<PRI>` is not needed).
    SyslogFile,
    /// A CEF record.
    Cef,
    /// A plain line, kept as `message`.
    Line,
}

#[derive(Clone, Debug)]
struct SourceKind {
    decoder: Decoder,
    logsource: Option<Arc<LogSource>>,
}

/// How each configured source's records are decoded.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    kinds: BTreeMap<String, SourceKind>,
}

impl Sources {
    pub fn from_config(config: &Config) -> Sources {
        let mut kinds = BTreeMap::new();
        kinds.insert(HTTP_SOURCE.to_owned(), SourceKind { decoder: Decoder::Json, logsource: None });
        for source in &config.sources {
            let decoder = match source {
                SourceConfig::SyslogUdp { .. } | SourceConfig::SyslogTcp { .. } => Decoder::Syslog,
                // Zeek and audit logs are decoded by their file's reader and spooled as JSON.
                SourceConfig::File { format: FileFormat::Json | FileFormat::Zeek | FileFormat::Auditd, .. } => {
                    Decoder::Json
                }
                SourceConfig::File { format: FileFormat::Lines, .. } => Decoder::Line,
                SourceConfig::File { format: FileFormat::Syslog, .. } => Decoder::SyslogFile,
                SourceConfig::File { format: FileFormat::Cef, .. } => Decoder::Cef,
                SourceConfig::File { format: FileFormat::Suricata, .. } => Decoder::JsonOf(Dialect::Suricata),
                SourceConfig::File { format: FileFormat::Wazuh, .. } => Decoder::JsonOf(Dialect::Wazuh),
                SourceConfig::File { format: FileFormat::Falco, .. } => Decoder::JsonOf(Dialect::Falco),
                SourceConfig::File { format: FileFormat::Winlogbeat, .. } => Decoder::JsonOf(Dialect::Winlogbeat),
            };
            let configured = source.logsource().and_then(|text| LogSource::parse(text).ok());
            let logsource = match source {
                SourceConfig::File { format: FileFormat::Auditd, .. } => configured.or_else(|| {
                    Some(LogSource { product: Some("linux".into()), service: Some("auditd".into()), category: None })
                }),
                _ => configured,
            }
            .map(Arc::new);
            kinds.insert(source.name().to_owned(), SourceKind { decoder, logsource });
        }
        Sources { kinds }
    }

    fn kind(&self, source: &str, payload: &[u8]) -> SourceKind {
        self.kinds.get(source).cloned().unwrap_or_else(|| {
            // A source no longer configured (its records still spooled): guess.
            let decoder = match payload.trim_ascii_start().first() {
                Some(b'{') => Decoder::Json,
                Some(b'<') => Decoder::Syslog,
                _ => Decoder::Line,
            };
            SourceKind { decoder, logsource: None }
        })
    }
}

/// A worker's decoders.
#[derive(Default)]
struct Decoders {
    json: JsonDecoder,
    dialects: Dialects,
    syslog: SyslogDecoder,
    cef: CefDecoder,
    symbols: riposte_event::SymbolCache,
}

impl Decoders {
    fn decode(&mut self, kind: &SourceKind, payload: &[u8], event: &mut Event) -> Result<(), String> {
        match kind.decoder {
            Decoder::Json => {
                self.json.decode_into(payload, event).map_err(|error| error.to_string())?;
                if kind.logsource.is_none() {
                    self.dialects.complete(event, None);
                }
            }
            Decoder::Syslog => {
                self.syslog
                    .decode_into(payload, OffsetDateTime::now_utc(), event)
                    .map_err(|error| error.to_string())?;
                riposte_ingest::lines::add_cef_message(&mut self.cef, event)?;
            }
            Decoder::SyslogFile => {
                self.syslog
                    .decode_file_line(payload, OffsetDateTime::now_utc(), event)
                    .map_err(|error| error.to_string())?;
                riposte_ingest::lines::add_cef_message(&mut self.cef, event)?;
            }
            Decoder::Cef => self.cef.decode_into(payload, event)?,
            Decoder::JsonOf(dialect) => {
                self.json.decode_into(payload, event).map_err(|error| error.to_string())?;
                if kind.logsource.is_none() {
                    self.dialects.complete_as(event, dialect, None);
                }
            }
            Decoder::Line => {
                event.clear();
                let text = String::from_utf8_lossy(payload);
                event.push_str(self.symbols.get("message"), "message", text.trim_end_matches(['\r', '\n']));
            }
        }
        if event.logsource.is_none() {
            event.logsource = kind.logsource.clone();
        }
        Ok(())
    }
}

/// A batch matched, waiting to be stored.
struct Processed {
    events: Vec<NewEvent>,
    detections: Vec<NewDetection>,
    /// The correlation state after it, when it changed.
    correlation: Option<CorrelationState>,
    /// Its last spool sequence number.
    last: u64,
    /// When its oldest record arrived.
    oldest: i64,
}

/// What one record gave.
struct Outcome {
    seq: u64,
    received_ms: i64,
    /// When it happened (when it arrived, if it does not say).
    time_ms: i64,
    source: String,
    /// The event and the rules it matched, when a correlation reads them.
    correlate: Option<(Event, Vec<usize>)>,
    /// Its observables, when it is stored and retro-hunts are on.
    observables: Vec<String>,
    /// The event as JSON, when it is to be stored (matched, or among the
    /// raw events kept).
    event: Option<Box<serde_json::value::RawValue>>,
    detections: Vec<NewDetection>,
    /// Why it could not be decoded, and the start of it.
    failure: Option<(String, Vec<u8>)>,
}

/// What a detection thread works with, kept from batch to batch: the
/// matcher's scratch warms over many events (its classes, the values it has
/// scanned), and rayon asks for fresh state for every piece of a batch.
struct Worker {
    scratch: riposte_sigma::Scratch,
    decoders: Decoders,
    event: Event,
    matched: Vec<usize>,
    hits: Vec<riposte_intel::Hit>,
}

/// Idle workers; a lease returns its worker when dropped.
#[derive(Default)]
struct Workers {
    idle: std::sync::Mutex<Vec<Worker>>,
}

struct Lease<'a> {
    worker: Option<Worker>,
    workers: &'a Workers,
}

impl Workers {
    fn lease(&self, engine: &riposte_sigma::Engine) -> Lease<'_> {
        let idle = self.idle.lock().unwrap_or_else(|poison| poison.into_inner()).pop();
        let worker = idle.unwrap_or_else(|| Worker {
            scratch: engine.new_scratch(),
            decoders: Decoders::default(),
            event: Event::new(),
            matched: Vec::new(),
            hits: Vec::new(),
        });
        Lease { worker: Some(worker), workers: self }
    }
}

impl std::ops::Deref for Lease<'_> {
    type Target = Worker;
    fn deref(&self) -> &Worker {
        self.worker.as_ref().expect("a lease holds its worker until dropped")
    }
}

impl std::ops::DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut Worker {
        self.worker.as_mut().expect("a lease holds its worker until dropped")
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            self.workers.idle.lock().unwrap_or_else(|poison| poison.into_inner()).push(worker);
        }
    }
}

pub struct Pipeline {
    pub spool: Arc<Spool>,
    pub store: AnyStore,
    pub rules: Arc<RuleSet>,
    pub metrics: Arc<Metrics>,
    pub sources: Sources,
    pub alerts: AlertsConfig,
    pub batch: usize,
    pub raw_events: u64,
    pub threads: Option<usize>,
    pub correlation: CorrelatorConfig,
    /// Indicators every event's observables are matched against.
    pub intel: Arc<crate::intel::IntelState>,
}

/// The correlator of the running rules.
struct Correlating {
    rules: Arc<LoadedRules>,
    correlator: Correlator,
    /// Records up to this sequence number are already in the restored state.
    restored_until: u64,
}

impl Pipeline {
    /// Runs until `stop` is set (finishing the batch in hand). Blocking: give
    /// it a thread of its own; `runtime` runs the store's futures.
    pub fn run(self, runtime: tokio::runtime::Handle, stop: Arc<AtomicBool>) {
        let pool = match rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads.unwrap_or(0))
            .thread_name(|index| format!("riposte-detect-{index}"))
            .build()
        {
            Ok(pool) => pool,
            Err(error) => {
                tracing::error!(%error, "cannot start detection threads");
                return;
            }
        };
        // Storing a batch overlaps with matching the next one: a writer
        // thread stores batches in order and only then moves the checkpoint.
        let this = Arc::new(self);
        let mut correlating = this.restore_correlations(&runtime);
        let (to_writer, batches) = std::sync::mpsc::sync_channel::<Processed>(2);
        let writer = {
            let (this, stop) = (this.clone(), stop.clone());
            std::thread::Builder::new().name("riposte-store".into()).spawn(move || this.write(batches, &runtime, &stop))
        };
        let writer = match writer {
            Ok(writer) => writer,
            Err(error) => {
                tracing::error!(%error, "cannot start the store writer");
                return;
            }
        };
        let workers = Workers::default();
        let mut reader = this.spool.reader();
        let mut last_raw_sample = std::time::Instant::now() - RAW_SAMPLE_EVERY;
        while !stop.load(Ordering::Relaxed) {
            let batch = match reader.next_batch(this.batch, Duration::from_millis(100)) {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::error!(%error, "cannot read the spool");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            this.update_spool_gauges();
            let Some(last) = batch.last().map(|record| record.seq) else { continue };
            // Unmatched events are kept as a window of the most recent ones,
            // refreshed at most once a second: writing every one would cost
            // more than matching it.
            let keep_from = if this.raw_events > 0 && last_raw_sample.elapsed() >= RAW_SAMPLE_EVERY {
                last_raw_sample = std::time::Instant::now();
                (last + 1).saturating_sub(this.raw_events)
            } else {
                u64::MAX
            };
            this.follow_reloads(&mut correlating);
            let outcomes = pool.install(|| this.process(&batch, keep_from, &correlating, &workers));
            let (correlated, correlation) = this.correlate(&mut correlating, &outcomes, last);
            let (events, mut detections) = this.collect(outcomes);
            detections.extend(correlated);
            let oldest = batch.iter().map(|record| record.record.received_ms).min().unwrap_or_else(now_ms);
            if to_writer.send(Processed { events, detections, correlation, last, oldest }).is_err() {
                break;
            }
        }
        drop(to_writer);
        let _ = writer.join();
    }

    /// Stores processed batches in order, each before its checkpoint moves.
    fn write(
        &self,
        batches: std::sync::mpsc::Receiver<Processed>,
        runtime: &tokio::runtime::Handle,
        stop: &AtomicBool,
    ) {
        let mut written: u64 = 0;
        for batch in batches {
            loop {
                match runtime.block_on(self.store.record(&batch.detections, &batch.events, batch.correlation.as_ref()))
                {
                    Ok(recorded) => {
                        self.metrics.alerts_created.fetch_add(recorded.created, Ordering::Relaxed);
                        self.metrics.detections_duplicate.fetch_add(recorded.duplicates, Ordering::Relaxed);
                        break;
                    }
                    Err(error) => {
                        // Nothing is committed: the same batch is tried again.
                        self.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(%error, "cannot store a batch; retrying");
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
            if let Err(error) = self.spool.commit(batch.last) {
                tracing::error!(%error, "cannot move the spool checkpoint");
            }
            self.metrics.lag_ms.store(now_ms().saturating_sub(batch.oldest).max(0) as u64, Ordering::Relaxed);
            self.metrics.batches.fetch_add(1, Ordering::Relaxed);
            self.update_spool_gauges();
            written += 1;
            if written.is_multiple_of(16)
                && let Err(error) = runtime.block_on(self.store.prune_events(self.raw_events))
            {
                tracing::warn!(%error, "cannot prune old events");
            }
        }
    }

    fn update_spool_gauges(&self) {
        self.metrics.spool_depth.store(self.spool.depth(), Ordering::Relaxed);
        self.metrics.spool_bytes.store(self.spool.bytes(), Ordering::Relaxed);
    }

    fn window_ms(&self, rule_id: &str) -> i64 {
        let window = self.alerts.suppression_per_rule.get(rule_id).copied().unwrap_or(self.alerts.suppression);
        i64::try_from(window.as_millis()).unwrap_or(i64::MAX)
    }

    /// The correlator of the running rules, with the state last stored.
    fn restore_correlations(&self, runtime: &tokio::runtime::Handle) -> Correlating {
        let rules = self.rules.current();
        let mut correlator = Correlator::new(&rules.engine, &self.correlation);
        let mut restored_until = 0;
        match runtime.block_on(self.store.correlation_state()) {
            Ok(None) => {}
            Ok(Some(stored)) => match serde_json::from_str::<Snapshot>(&stored.state) {
                Ok(snapshot) => {
                    let groups = correlator.restore(snapshot);
                    restored_until = u64::try_from(stored.seq).unwrap_or(0);
                    tracing::info!(groups, seq = stored.seq, "correlation windows restored");
                }
                Err(error) => tracing::warn!(%error, "stored correlation state unreadable; starting empty"),
            },
            Err(error) => tracing::warn!(%error, "cannot read the correlation state; starting empty"),
        }
        self.metrics.correlation_groups.store(correlator.groups() as u64, Ordering::Relaxed);
        Correlating { rules, correlator, restored_until }
    }

    /// After a rule reload, a correlator for the new rules takes over the
    /// open windows of the correlations it still has.
    fn follow_reloads(&self, correlating: &mut Correlating) {
        let rules = self.rules.current();
        if Arc::ptr_eq(&rules, &correlating.rules) {
            return;
        }
        let mut correlator = Correlator::new(&rules.engine, &self.correlation);
        correlator.restore(correlating.correlator.snapshot());
        correlating.rules = rules;
        correlating.correlator = correlator;
    }

    /// Feeds a matched batch to the correlator, in spool order. Returns the
    /// detections of correlation matches, and the state to store when the
    /// batch changed it.
    fn correlate(
        &self,
        correlating: &mut Correlating,
        outcomes: &[Outcome],
        last: u64,
    ) -> (Vec<NewDetection>, Option<CorrelationState>) {
        let Correlating { rules, correlator, restored_until } = correlating;
        if correlator.is_empty() {
            return (Vec::new(), None);
        }
        let before = correlator.stats();
        let mut found: Vec<CorrelationMatch> = Vec::new();
        let mut detections = Vec::new();
        for outcome in outcomes.iter().filter(|outcome| outcome.failure.is_none() && outcome.seq > *restored_until) {
            match &outcome.correlate {
                Some((event, matched)) => correlator.observe(event, matched, outcome.time_ms, &mut found),
                None => correlator.advance(outcome.time_ms, &mut found),
            }
            for found in found.drain(..) {
                if !correlator.reports_correlation(found.correlation) {
                    continue;
                }
                let correlation = &rules.engine.correlations()[found.correlation];
                let window = self.window_ms(&alert::correlation_key(correlation));
                let detection = alert::correlation_detection(correlation, &found, outcome.seq, window);
                self.metrics.detection(&detection.rule_id);
                detections.push(detection);
            }
        }
        let after = correlator.stats();
        self.metrics.correlation_groups.store(correlator.groups() as u64, Ordering::Relaxed);
        self.metrics.correlation_late.store(after.late, Ordering::Relaxed);
        self.metrics.correlation_evicted.store(after.evicted, Ordering::Relaxed);
        let changed = (after.detections, after.matches) != (before.detections, before.matches);
        let state = changed.then(|| match serde_json::to_string(&correlator.snapshot()) {
            Ok(state) => Some(CorrelationState { seq: i64::try_from(last).unwrap_or(i64::MAX), state }),
            Err(error) => {
                tracing::error!(%error, "cannot serialise the correlation state");
                None
            }
        });
        (detections, state.flatten())
    }

    /// Decodes and matches a batch on all cores; unmatched events from
    /// `keep_from` on are kept too.
    fn process(&self, batch: &[Spooled], keep_from: u64, correlating: &Correlating, workers: &Workers) -> Vec<Outcome> {
        let engine = &correlating.rules.engine;
        let correlator = &correlating.correlator;
        let intel = self.intel.current();
        batch
            .par_iter()
            .map_init(
                || workers.lease(engine),
                |worker, spooled| {
                    let Worker { scratch, decoders, event, matched, hits } = &mut **worker;
                    let record = &spooled.record;
                    let mut outcome = Outcome {
                        seq: spooled.seq,
                        received_ms: record.received_ms,
                        time_ms: record.received_ms,
                        source: record.source.clone(),
                        correlate: None,
                        observables: Vec::new(),
                        event: None,
                        detections: Vec::new(),
                        failure: None,
                    };
                    let kind = self.sources.kind(&record.source, &record.payload);
                    if let Err(reason) = decoders.decode(&kind, &record.payload, event) {
                        let sample = record.payload[..record.payload.len().min(512)].to_vec();
                        outcome.failure = Some((reason, sample));
                        return outcome;
                    }
                    engine.matches(event, scratch, matched);
                    if let Some(time) = event.timestamp {
                        let time_ms = i64::try_from(time.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
                        if time_ms <= record.received_ms.saturating_add(EVENT_TIME_AHEAD_LIMIT_MS) {
                            outcome.time_ms = time_ms;
                        }
                    }
                    if matched.iter().any(|&rule| correlator.uses_rule(rule)) {
                        outcome.correlate = Some((event.clone(), matched.clone()));
                    }
                    for &rule in matched.iter().filter(|&&rule| correlator.reports_rule(rule)) {
                        let rule = engine.rule(rule);
                        let window = self.window_ms(&alert::rule_key(rule));
                        outcome.detections.push(alert::detection(
                            rule,
                            event,
                            spooled.seq,
                            &record.origin,
                            record.received_ms,
                            window,
                        ));
                    }
                    if let Some(native) = riposte_ingest::native_alert(event) {
                        let window = self.window_ms(&native.rule_id);
                        outcome.detections.push(alert::native_detection(
                            &native,
                            event,
                            spooled.seq,
                            &record.origin,
                            record.received_ms,
                            window,
                        ));
                    }
                    if let Some(set) = &intel {
                        hits.clear();
                        let now = now_ms();
                        riposte_intel::match_event(set, event, now, hits);
                        // The other detections of the event carry what intel says of it.
                        let mut enrichment = Vec::new();
                        for hit in hits.iter() {
                            let described = riposte_intel::describe(set, hit, now);
                            let window = self.window_ms(&described.rule_id);
                            let detection = alert::intel_detection(
                                described,
                                event,
                                spooled.seq,
                                &record.origin,
                                record.received_ms,
                                window,
                            );
                            enrichment.extend(detection.intel.iter().cloned());
                            outcome.detections.push(detection);
                        }
                        let raised_here = outcome.detections.len() - hits.len();
                        for detection in &mut outcome.detections[..raised_here] {
                            detection.intel.clone_from(&enrichment);
                        }
                    }
                    if !outcome.detections.is_empty() || outcome.correlate.is_some() || spooled.seq >= keep_from {
                        outcome.event = Some(event.to_json_text());
                        if self.intel.retro_hunting() {
                            riposte_intel::observable_values(event, &mut outcome.observables);
                        }
                    }
                    outcome
                },
            )
            .collect()
    }

    /// The events to store and every detection; metrics on the way.
    fn collect(&self, outcomes: Vec<Outcome>) -> (Vec<NewEvent>, Vec<NewDetection>) {
        let mut events = Vec::new();
        let mut detections = Vec::new();
        let mut per_source: BTreeMap<&str, u64> = BTreeMap::new();
        for outcome in &outcomes {
            if let Some((reason, _)) = &outcome.failure {
                tracing::debug!(source = %outcome.source, seq = outcome.seq, %reason, "record not decoded");
                continue;
            }
            *per_source.entry(outcome.source.as_str()).or_default() += 1;
        }
        for (source, count) in per_source {
            self.metrics.decoded(source, count);
        }
        for outcome in outcomes {
            if let Some((reason, sample)) = &outcome.failure {
                self.metrics.failed(&outcome.source, reason, sample);
                continue;
            }
            let Some(body) = outcome.event else { continue };
            let matched = !outcome.detections.is_empty() || outcome.correlate.is_some();
            for detection in &outcome.detections {
                self.metrics.detection(&detection.rule_id);
            }
            events.push(NewEvent {
                seq: i64::try_from(outcome.seq).unwrap_or(i64::MAX),
                received_ms: outcome.received_ms,
                source: outcome.source,
                matched,
                body,
                observables: outcome.observables,
            });
            detections.extend(outcome.detections);
        }
        (events, detections)
    }
}

pub fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}
