//! Correlation throughput: detections of one rule fed to a correlation with
//! 100,000 groups, ten detections per millisecond of event time; each group
//! sees one every ten seconds, each time with another user, so its windows
//! fill, fire and start over. Run with `cargo bench -p riposte-sigma --bench correlation`;
//! figures are in docs/PERFORMANCE.md.

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use riposte_event::{Event, LogSource};
use riposte_sigma::{Correlator, CorrelatorConfig, EngineBuilder, Mapping};

const GROUPS: usize = 100_000;
/// Detections per group in the replayed stream.
const ROUNDS: usize = 5;

const RULE: &str = "title: Failed logon\nname: failed_logon\nlogsource: {product: test}\ndetection:\n  selection: {kind: failed_logon}\n  condition: selection\n";

fn bench(c: &mut Criterion, name: &str, correlation: &str) {
    let mut builder = EngineBuilder::new(Mapping::builtin());
    builder.add_file("rule.yml", RULE);
    builder.add_file("correlation.yml", correlation);
    let (engine, report) = builder.build(|_| Ok(()));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let mut scratch = engine.new_scratch();
    let mut matched = Vec::new();
    let events: Vec<Event> = (0..GROUPS * ROUNDS)
        .map(|index| {
            let host = index % GROUPS;
            let mut event = Event::new()
                .with("kind", "failed_logon")
                .with("IpAddress", format!("10.{}.{}.{}", host >> 16, (host >> 8) & 255, host & 255))
                .with("TargetUserName", format!("user{}", index / GROUPS));
            event.logsource = Some(Arc::new(LogSource::product("test")));
            engine.matches(&mut event, &mut scratch, &mut matched);
            assert_eq!(matched, [0]);
            event
        })
        .collect();
    let mut correlator = Correlator::new(&engine, &CorrelatorConfig::default());
    let mut clock: i64 = 0;
    let mut out = Vec::new();
    let mut group = c.benchmark_group("correlation");
    group.sample_size(10);
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function(name, |b| {
        b.iter(|| {
            for event in &events {
                clock += 1;
                correlator.observe(event, &[0], clock / 10, &mut out);
            }
            out.clear();
        })
    });
    group.finish();
    assert!(correlator.stats().matches > 0, "the windows must fire during the bench");
}

fn correlations(c: &mut Criterion) {
    bench(
        c,
        "event_count_100k_groups",
        "title: Brute force\ncorrelation:\n  type: event_count\n  rules: failed_logon\n  group-by: [IpAddress]\n  timespan: 1m\n  condition: {gte: 5}\n",
    );
    bench(
        c,
        "value_count_100k_groups",
        "title: Spraying\ncorrelation:\n  type: value_count\n  rules: failed_logon\n  group-by: [IpAddress]\n  timespan: 1m\n  condition: {field: TargetUserName, gte: 5}\n",
    );
}

criterion_group!(benches, correlations);
criterion_main!(benches);
