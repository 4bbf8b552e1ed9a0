//! `riposte hunt`: Sigma rules over log files, on all cores.
//!
//! Inputs are cut into work units (ranges of EVTX chunks, whole JSON files)
//! that rayon spreads over its threads; each worker owns a decoder and a
//! matcher scratch, so the hot loop shares nothing but the compiled rules.
//! Correlation rules run afterwards, over the detections of every file in
//! event-time order.

pub mod output;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use rayon::prelude::*;
use riposte_event::{Event, LogSource};
use riposte_ingest::evtx::CHUNK_SIZE;
use riposte_ingest::{
    EvtxDecoder, EvtxFile, Format, FormatChoice, IngestError, Input, JsonReader, LineReader, NativeAlert, RecordError,
    Sink, discover, native_alert,
};
use riposte_intel::{Hit, IndicatorSet, IntelMatch, describe, match_event};
use riposte_sigma::{CorrelationMatch, Correlator, CorrelatorConfig, CorrelatorStats, Engine, Scratch};
use time::OffsetDateTime;

/// Serial numbers of events with detections (see [`Detection::event_serial`]).
static NEXT_EVENT_SERIAL: AtomicU64 = AtomicU64::new(1);

/// EVTX chunks per work unit (1 MiB): small enough to balance, large enough
/// that scheduling costs nothing.
const CHUNKS_PER_UNIT: u64 = 16;
/// Skipped records kept for the report (all are counted).
const SKIPPED_SAMPLES: usize = 1_000;

#[derive(Clone, Debug, Default)]
pub struct HuntOptions {
    pub paths: Vec<PathBuf>,
    pub format: FormatChoice,
    /// The log source of JSON inputs, when their records do not say.
    pub logsource: Option<LogSource>,
    /// Indicators every event's observables are matched against.
    pub intel: Option<Arc<IndicatorSet>>,
}

/// An event observable that threat intelligence names.
#[derive(Clone, Debug)]
pub struct IntelDetection {
    /// `intel:<kind>:<value>`.
    pub rule_id: String,
    /// What matched and who says so, for a person.
    pub title: String,
    /// From the best decayed score among the indicators matched.
    pub level: riposte_sigma::Level,
    pub techniques: Vec<String>,
    /// The observable and the indicators it matched, scored at hunt time.
    pub intel: IntelMatch,
    pub input: usize,
    pub record_id: Option<u64>,
    pub timestamp: Option<OffsetDateTime>,
    pub event: Event,
}

impl IntelDetection {
    fn new(set: &IndicatorSet, hit: &Hit, now_ms: i64, input: usize, event: &Event) -> IntelDetection {
        let described = describe(set, hit, now_ms);
        IntelDetection {
            rule_id: described.rule_id,
            title: described.title,
            level: described.level.parse().unwrap_or(riposte_sigma::Level::Medium),
            techniques: described.techniques,
            intel: described.intel,
            input,
            record_id: event.record_id,
            timestamp: event.timestamp,
            event: event.clone(),
        }
    }
}

/// One rule matching one event.
#[derive(Clone, Debug)]
pub struct Detection {
    /// Index of the rule in the engine.
    pub rule: usize,
    /// Index of the input in [`HuntResult::inputs`].
    pub input: usize,
    pub record_id: Option<u64>,
    pub timestamp: Option<OffsetDateTime>,
    /// Tells apart events that share a time and record number (several hosts'
    /// records in one JSON file): unique within a hunt.
    pub event_serial: u64,
    pub event: Event,
}

/// An alert another tool raised (Wazuh, Falco), found in the inputs.
#[derive(Clone, Debug)]
pub struct NativeDetection {
    pub alert: NativeAlert,
    pub input: usize,
    pub record_id: Option<u64>,
    pub timestamp: Option<OffsetDateTime>,
    pub event: Event,
}

/// What a hunt read and how fast.
#[derive(Clone, Debug, Default)]
pub struct HuntStats {
    pub events: u64,
    /// Size of the inputs on disk.
    pub bytes: u64,
    pub skipped_records: u64,
    /// The first skipped records, for the report.
    pub skipped_samples: Vec<RecordError>,
    /// Inputs that could not be read at all.
    pub input_errors: Vec<String>,
    /// Files met in directories that are not logs.
    pub ignored_files: usize,
    /// What the correlation rules saw (all zero without correlation rules).
    pub correlation: CorrelatorStats,
    /// Detections a correlation rule would have read, but whose event has no time.
    pub untimed_detections: u64,
    pub elapsed: Duration,
}

pub struct HuntResult {
    pub inputs: Vec<Input>,
    /// Sorted by time, then input and record. Detections of rules that only
    /// feed correlations (without `generate`) are left out.
    pub detections: Vec<Detection>,
    /// Correlation rules whose condition held, in the order they did.
    pub correlations: Vec<CorrelationMatch>,
    /// Alerts of other tools (Wazuh, Falco) in the inputs, by time.
    pub native: Vec<NativeDetection>,
    /// Observables threat intelligence names, by time.
    pub intel: Vec<IntelDetection>,
    pub stats: HuntStats,
}

enum Unit {
    Evtx {
        input: usize,
        first: u64,
        count: u64,
    },
    Json {
        input: usize,
    },
    /// Zeek, CEF, audit and syslog files: line by line.
    Lines {
        input: usize,
    },
}

impl Unit {
    /// Bytes of input the unit covers, for progress.
    fn bytes(&self, inputs: &[Input]) -> u64 {
        match self {
            Unit::Evtx { count, .. } => count * CHUNK_SIZE,
            Unit::Json { input } | Unit::Lines { input } => inputs[*input].size,
        }
    }
}

/// A worker's share of the results.
#[derive(Default)]
struct Partial {
    detections: Vec<Detection>,
    native: Vec<NativeDetection>,
    intel: Vec<IntelDetection>,
    events: u64,
    skipped_records: u64,
    skipped_samples: Vec<RecordError>,
    input_errors: Vec<String>,
}

impl Partial {
    fn merge(mut self, other: Partial) -> Partial {
        self.detections.extend(other.detections);
        self.native.extend(other.native);
        self.intel.extend(other.intel);
        self.events += other.events;
        self.skipped_records += other.skipped_records;
        let room = SKIPPED_SAMPLES.saturating_sub(self.skipped_samples.len());
        self.skipped_samples.extend(other.skipped_samples.into_iter().take(room));
        self.input_errors.extend(other.input_errors);
        self
    }
}

struct Worker<'a> {
    engine: &'a Engine,
    scratch: Scratch,
    matched: Vec<usize>,
    evtx: EvtxDecoder,
    json: JsonReader,
    lines: LineReader,
    partial: Partial,
    input: usize,
    chunk: Vec<u8>,
    intel: Option<Arc<IndicatorSet>>,
    hits: Vec<Hit>,
    /// When the hunt started: indicators expired by then are left out.
    now_ms: i64,
}

impl Sink for Worker<'_> {
    fn event(&mut self, event: &mut Event, _bytes: u64) {
        self.partial.events += 1;
        self.engine.matches(event, &mut self.scratch, &mut self.matched);
        let event_serial = if self.matched.is_empty() { 0 } else { NEXT_EVENT_SERIAL.fetch_add(1, Ordering::Relaxed) };
        for &rule in &self.matched {
            self.partial.detections.push(Detection {
                rule,
                input: self.input,
                record_id: event.record_id,
                timestamp: event.timestamp,
                event_serial,
                event: event.clone(),
            });
        }
        if let Some(set) = &self.intel {
            self.hits.clear();
            match_event(set, event, self.now_ms, &mut self.hits);
            for hit in &self.hits {
                self.partial.intel.push(IntelDetection::new(set, hit, self.now_ms, self.input, event));
            }
        }
        if let Some(alert) = native_alert(event) {
            self.partial.native.push(NativeDetection {
                alert,
                input: self.input,
                record_id: event.record_id,
                timestamp: event.timestamp,
                event: event.clone(),
            });
        }
    }

    fn skipped(&mut self, error: RecordError) {
        self.partial.skipped_records += 1;
        if self.partial.skipped_samples.len() < SKIPPED_SAMPLES {
            self.partial.skipped_samples.push(error);
        }
    }
}

impl<'a> Worker<'a> {
    fn new(engine: &'a Engine, logsource: Option<Arc<LogSource>>, intel: Option<Arc<IndicatorSet>>) -> Self {
        Worker {
            engine,
            scratch: engine.new_scratch(),
            matched: Vec::new(),
            evtx: EvtxDecoder::new(),
            json: JsonReader::new(logsource.clone()),
            lines: LineReader::new(logsource),
            partial: Partial::default(),
            input: 0,
            chunk: Vec::new(),
            intel,
            hits: Vec::new(),
            now_ms: riposte_server::pipeline::now_ms(),
        }
    }

    fn run(&mut self, unit: &Unit, inputs: &[Input]) {
        match *unit {
            Unit::Evtx { input, first, count } => {
                self.input = input;
                let path = &inputs[input].path;
                let file = match EvtxFile::open(path) {
                    Ok(file) => file,
                    Err(error) => {
                        // Reported once, by the unit holding the first chunk.
                        if first == 0 {
                            self.partial.input_errors.push(error.to_string());
                        }
                        return;
                    }
                };
                for index in first..first + count {
                    let mut buffer = std::mem::take(&mut self.chunk);
                    match file.read_chunk(index, &mut buffer) {
                        Ok(true) => {
                            let mut decoder = std::mem::take(&mut self.evtx);
                            decoder.decode_chunk(path, index, buffer, self);
                            self.evtx = decoder;
                        }
                        Ok(false) => self.chunk = buffer,
                        Err(error) => {
                            self.chunk = buffer;
                            self.skipped(error);
                        }
                    }
                }
            }
            Unit::Json { input } => {
                self.input = input;
                let mut reader = std::mem::take(&mut self.json);
                if let Err(error) = reader.read(&inputs[input], self) {
                    self.partial.input_errors.push(error.to_string());
                }
                self.json = reader;
            }
            Unit::Lines { input } => {
                self.input = input;
                let mut reader = std::mem::take(&mut self.lines);
                if let Err(error) = reader.read(&inputs[input], self) {
                    self.partial.input_errors.push(error.to_string());
                }
                self.lines = reader;
            }
        }
    }
}

/// Cuts the inputs into work units, largest first (for balance).
fn units(inputs: &[Input], errors: &mut Vec<String>) -> Vec<Unit> {
    let mut units = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        match input.format {
            Format::Evtx => match EvtxFile::open(&input.path) {
                Ok(file) => {
                    let chunks = file.chunk_count();
                    let mut first = 0;
                    while first < chunks {
                        let count = CHUNKS_PER_UNIT.min(chunks - first);
                        units.push(Unit::Evtx { input: index, first, count });
                        first += count;
                    }
                }
                Err(error) => errors.push(error.to_string()),
            },
            Format::Json => units.push(Unit::Json { input: index }),
            Format::Zeek | Format::Cef | Format::Auditd | Format::Syslog => units.push(Unit::Lines { input: index }),
        }
    }
    units.sort_by_key(|unit| std::cmp::Reverse(unit.bytes(inputs)));
    units
}

/// Runs `engine` over the inputs `options` names. `progress` advances by bytes.
pub fn hunt(engine: &Engine, options: &HuntOptions, progress: Option<&ProgressBar>) -> HuntResult {
    let started = Instant::now();
    let discovery = discover(&options.paths, options.format);
    let inputs = discovery.inputs;
    let mut input_errors: Vec<String> = discovery.errors.iter().map(IngestError::to_string).collect();
    let units = units(&inputs, &mut input_errors);
    let bytes: u64 = inputs.iter().map(|input| input.size).sum();
    if let Some(progress) = progress {
        progress.set_length(units.iter().map(|unit| unit.bytes(&inputs)).sum());
    }
    let logsource = options.logsource.clone().map(Arc::new);
    let partial = units
        .par_iter()
        .fold(
            || Worker::new(engine, logsource.clone(), options.intel.clone()),
            |mut worker, unit| {
                worker.run(unit, &inputs);
                if let Some(progress) = progress {
                    progress.inc(unit.bytes(&inputs));
                }
                worker
            },
        )
        .map(|worker| worker.partial)
        .reduce(Partial::default, Partial::merge);
    let mut detections = partial.detections;
    detections.sort_by_key(|detection| {
        (detection.timestamp, detection.input, detection.record_id, detection.event_serial, detection.rule)
    });
    let correlated = correlate(engine, &mut detections);
    let mut native = partial.native;
    native.sort_by_key(|found| (found.timestamp, found.input, found.record_id));
    let mut intel = partial.intel;
    intel.sort_by_key(|found| (found.timestamp, found.input, found.record_id));
    input_errors.extend(partial.input_errors);
    let stats = HuntStats {
        events: partial.events,
        bytes,
        skipped_records: partial.skipped_records,
        skipped_samples: partial.skipped_samples,
        input_errors,
        ignored_files: discovery.ignored,
        correlation: correlated.stats,
        untimed_detections: correlated.untimed,
        elapsed: started.elapsed(),
    };
    HuntResult { inputs, detections, correlations: correlated.matches, native, intel, stats }
}

#[derive(Default)]
struct Correlated {
    matches: Vec<CorrelationMatch>,
    stats: CorrelatorStats,
    untimed: u64,
}

/// Runs the correlation rules over `detections` (sorted by time), then
/// drops the detections of rules that only feed correlations.
fn correlate(engine: &Engine, detections: &mut Vec<Detection>) -> Correlated {
    let mut correlator = Correlator::new(engine, &CorrelatorConfig::default());
    if correlator.is_empty() {
        return Correlated::default();
    }
    let mut correlated = Correlated::default();
    let mut rules = Vec::new();
    // The detections of one event are next to each other: feed them together.
    for same_event in detections.chunk_by(|a, b| a.event_serial == b.event_serial) {
        rules.clear();
        rules.extend(same_event.iter().map(|detection| detection.rule).filter(|&rule| correlator.uses_rule(rule)));
        if rules.is_empty() {
            continue;
        }
        let first = &same_event[0];
        match first.timestamp {
            Some(time) => {
                let ms = i64::try_from(time.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
                correlator.observe(&first.event, &rules, ms, &mut correlated.matches);
            }
            None => correlated.untimed += 1,
        }
    }
    correlator.finish(&mut correlated.matches);
    detections.retain(|detection| correlator.reports_rule(detection.rule));
    correlated.matches.retain(|found| correlator.reports_correlation(found.correlation));
    correlated.stats = correlator.stats();
    correlated
}
