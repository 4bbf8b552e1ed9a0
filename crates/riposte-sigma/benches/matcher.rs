//! The matcher alone, and rule loading alone, on the real corpus: the
//! SigmaHQ rules in `../shared/corpus/sigma` against every record of the
//! attack samples in `../shared/corpus/evtx`, decoded before timing starts.
//! Run with `cargo bench -p riposte-sigma`; figures are in docs/PERFORMANCE.md.

use std::path::{Path, PathBuf};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use riposte_event::Event;
use riposte_ingest::{Collect, EvtxDecoder, EvtxFile};
use riposte_sigma::{Engine, EngineBuilder, Mapping};

fn files_under(dir: &Path, extension: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable corpus") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files_under(&path, extension, out);
        } else if path.extension().is_some_and(|ext| ext == extension) {
            out.push(path);
        }
    }
}

fn sorted_files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    files_under(dir, extension, &mut files);
    files.sort();
    files
}

/// Rule files as (name, text), read once so loading is measured without the disk.
fn read_rules(paths: &[PathBuf]) -> Vec<(String, String)> {
    paths.iter().map(|path| (path.display().to_string(), std::fs::read_to_string(path).expect("rule file"))).collect()
}

fn build(rules: &[(String, String)]) -> Engine {
    let mut builder = EngineBuilder::new(Mapping::builtin());
    for (name, text) in rules {
        builder.add_file(name, text);
    }
    builder.build(|_| Ok(())).0
}

fn decode(corpus: &Path) -> Vec<Event> {
    let mut decoder = EvtxDecoder::new();
    let mut sink = Collect::default();
    let mut buffer = Vec::new();
    for path in sorted_files(corpus, "evtx") {
        let file = EvtxFile::open(&path).expect("EVTX file");
        for index in 0..file.chunk_count() {
            if let Ok(true) = file.read_chunk(index, &mut buffer) {
                decoder.decode_chunk(&path, index, std::mem::take(&mut buffer), &mut sink);
            }
        }
    }
    sink.events
}

/// Matches every event once; returns the number of detections. The values
/// remembered from the previous pass are forgotten first: each pass costs
/// what the first sight of these events costs.
fn match_all(
    engine: &Engine,
    events: &mut [Event],
    scratch: &mut riposte_sigma::Scratch,
    out: &mut Vec<usize>,
) -> usize {
    scratch.forget_values();
    let mut detections = 0;
    for event in events.iter_mut() {
        engine.matches(event, scratch, out);
        detections += out.len();
    }
    detections
}

fn bench_matcher(c: &mut Criterion) {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    if !corpus.join("sigma/rules").exists() || !corpus.join("evtx").exists() {
        eprintln!("SKIPPED matcher bench: ../shared/corpus/sigma/rules or ../shared/corpus/evtx is absent");
        return;
    }
    let all_rules = sorted_files(&corpus.join("sigma/rules"), "yml");
    let windows: Vec<PathBuf> =
        all_rules.iter().filter(|path| path.starts_with(corpus.join("sigma/rules/windows"))).cloned().collect();
    let one =
        vec![corpus.join("sigma/rules/windows/process_creation/proc_creation_win_hktl_mimikatz_command_line.yml")];
    // A spread over every Windows log source, not the first folder only.
    let hundred: Vec<PathBuf> = windows.iter().step_by(windows.len() / 100).take(100).cloned().collect();
    let sets = [
        ("1_rule", read_rules(&one)),
        ("100_rules", read_rules(&hundred)),
        ("windows_rules", read_rules(&windows)),
        ("all_rules", read_rules(&all_rules)),
    ];

    let mut events = decode(&corpus.join("evtx"));
    let mut group = c.benchmark_group("match");
    group.throughput(Throughput::Elements(events.len() as u64));
    for (name, rules) in &sets {
        let engine = build(rules);
        let mut scratch = engine.new_scratch();
        let mut out = Vec::new();
        // Warm: every log-source class built, every alias in place.
        let detections = match_all(&engine, &mut events, &mut scratch, &mut out);
        eprintln!(
            "{name}: {} rules, {} events, {detections} detections, {:?}",
            engine.rules().len(),
            events.len(),
            engine.stats()
        );
        for row in engine.index_report().iter().filter(|row| row.0 == "*" || row.3 > 200) {
            eprintln!("  {row:?}");
        }
        group.bench_with_input(BenchmarkId::new("corpus_events", name), &engine, |b, engine| {
            b.iter(|| match_all(engine, &mut events, &mut scratch, &mut out))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    let (_, all) = &sets[3];
    group.throughput(Throughput::Elements(all.len() as u64));
    group.bench_function("sigmahq_rules_one_thread", |b| b.iter(|| build(all)));
    group.finish();
}

criterion_group!(benches, bench_matcher);
criterion_main!(benches);
