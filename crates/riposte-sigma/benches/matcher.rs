//! The matcher alone, and rule loading alone, on the real corpus: the
//! SigmaHQ rules in `../shared/corpus/sigma` against every record of the
//! attack samples in `../shared/corpus/evtx`, decoded before timing starts.
//! Run with `cargo bench -p riposte-sigma`; figures are in docs/PERFORMANCE.md.

mod corpus;

use std::path::{Path, PathBuf};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use riposte_event::Event;
use riposte_sigma::Engine;

use crate::corpus::{build, decode, read_rules, sorted_files};

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
