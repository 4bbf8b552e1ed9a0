//! Matches the decoded corpus with the SigmaHQ Windows rules a number of
//! times, for profilers (`valgrind --tool=callgrind`, `perf`): the bench
//! without criterion's timing loop.
//! `cargo run --release -p riposte-sigma --example match_passes -- [PASSES]`;
//! `ONLY="windows / sysmon / process_creation"` keeps the events of one
//! log-source class, `CLASSES=1` lists the classes, `BY_CLASS=1` times each,
//! `DETECTED=1` lists the rules detected most often.

#[path = "../benches/corpus/mod.rs"]
mod corpus;

use std::path::Path;
use std::time::Instant;

use riposte_event::Event;
use riposte_sigma::{Engine, Scratch};

use crate::corpus::{build, decode, read_rules, sorted_files};

/// One pass over every event, values forgotten first (a profiler's
/// `--toggle-collect` target).
#[inline(never)]
fn timed_pass(engine: &Engine, events: &mut [Event], scratch: &mut Scratch, out: &mut Vec<usize>) -> usize {
    scratch.forget_values();
    let mut detections = 0;
    for event in events.iter_mut() {
        engine.matches(event, scratch, out);
        detections += out.len();
    }
    detections
}

fn main() {
    let passes: usize = std::env::args().nth(1).and_then(|arg| arg.parse().ok()).unwrap_or(10);
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    let engine = build(&read_rules(&sorted_files(&corpus.join("sigma/rules/windows"), "yml")));
    let mut events = decode(&corpus.join("evtx"));
    let mut scratch = engine.new_scratch();
    let mut out = Vec::new();
    for event in events.iter_mut() {
        engine.matches(event, &mut scratch, &mut out);
    }
    if let Ok(only) = std::env::var("ONLY") {
        events.retain(|event| {
            let (product, services, categories) = engine.log_sources(event);
            format!("{} / {} / {}", product.unwrap_or_default(), services.join(","), categories.join(",")) == only
        });
    }
    if std::env::var_os("DETECTED").is_some() {
        let mut counts = vec![0usize; engine.rules().len()];
        for event in events.iter_mut() {
            engine.matches(event, &mut scratch, &mut out);
            out.iter().for_each(|&rule| counts[rule] += 1);
        }
        let mut ranked: Vec<(usize, &str)> =
            counts.iter().zip(engine.rules()).map(|(&count, rule)| (count, rule.meta.title.as_str())).collect();
        ranked.sort_by_key(|&(count, _)| std::cmp::Reverse(count));
        for (count, title) in ranked.iter().take(30) {
            println!("{count:6} {title}");
        }
    }
    if std::env::var_os("CLASSES").is_some() {
        for row in engine.class_report() {
            println!("{row:?}");
        }
    }
    if std::env::var_os("BY_CLASS").is_some() {
        let mut groups: std::collections::BTreeMap<String, Vec<Event>> = Default::default();
        for event in &events {
            let (product, services, categories) = engine.log_sources(event);
            let key = format!("{} / {} / {}", product.unwrap_or_default(), services.join(","), categories.join(","));
            groups.entry(key).or_default().push(event.clone());
        }
        let mut rows = Vec::new();
        for (key, mut group) in groups {
            let started = Instant::now();
            let mut candidates = 0;
            for _ in 0..passes {
                candidates += timed_pass(&engine, &mut group, &mut scratch, &mut out);
            }
            let total = started.elapsed().as_secs_f64() / passes as f64;
            rows.push((total, key, group.len(), candidates / passes));
        }
        rows.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (total, key, count, detections) in rows {
            println!(
                "{:8.2} ms {:6} events {:7.0} ns/event {detections:5} det  {key}",
                total * 1e3,
                count,
                total * 1e9 / count as f64
            );
        }
    }
    let started = Instant::now();
    let mut detections = 0;
    for _ in 0..passes {
        detections += timed_pass(&engine, &mut events, &mut scratch, &mut out);
    }
    let seconds = started.elapsed().as_secs_f64();
    let matched = (events.len() * passes) as f64;
    println!(
        "{} rules, {matched} events, {detections} detections, {:.0} events/s",
        engine.rules().len(),
        matched / seconds
    );
}
