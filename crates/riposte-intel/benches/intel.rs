//! Indicators at scale: 1,000,000 of mixed kinds read from a plain
//! blocklist into a set (time per indicator), then observables of events
//! looked up against them. Run with `cargo bench -p riposte-intel`;
//! figures are in docs/PERFORMANCE.md.

use std::net::IpAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use riposte_intel::{IndicatorSet, read_blocklist};

const INDICATORS: usize = 1_000_000;
const LOOKUPS: usize = 100_000;

/// A blocklist of 1,000,000 values: 40% addresses, 5% networks, 30%
/// domains, 15% SHA-256 and 10% URLs.
fn blocklist() -> String {
    let mut text = String::with_capacity(INDICATORS * 40);
    for index in 0..INDICATORS {
        let line = match index % 20 {
            0..=7 => {
                format!("{}.{}.{}.{}", 1 + (index >> 24) % 223, (index >> 16) & 255, (index >> 8) & 255, index & 255)
            }
            8 => format!("{}.{}.{}.0/24", 100 + (index >> 16) % 100, (index >> 8) & 255, index & 255),
            9..=14 => format!("host{index}.bad{}.example", index % 5_000),
            15..=17 => format!("{:064x}", (index as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834)),
            _ => format!("http://bad{}.example/payload/{index}.bin", index % 5_000),
        };
        text.push_str(&line);
        text.push('\n');
    }
    text
}

fn bench(c: &mut Criterion) {
    let text = blocklist();
    let mut group = c.benchmark_group("intel");
    group.sample_size(10);
    group.throughput(Throughput::Elements(INDICATORS as u64));
    group.bench_function("load_1m_mixed", |b| {
        b.iter(|| {
            let (indicators, report) = read_blocklist(&text, "bench", None);
            assert_eq!(report.read, INDICATORS);
            let mut set = IndicatorSet::new();
            for indicator in indicators {
                set.insert(indicator);
            }
            set
        })
    });

    let (indicators, _) = read_blocklist(&text, "bench", None);
    let mut set = IndicatorSet::new();
    for indicator in indicators {
        set.insert(indicator);
    }
    // Observables as events carry them: half the addresses and names known.
    let addresses: Vec<IpAddr> = (0..LOOKUPS)
        .map(|index| {
            let index = index * 7;
            format!("{}.{}.{}.{}", 1 + (index >> 24) % 223, (index >> 16) & 255, (index >> 8) & 255, (index * 3) & 255)
                .parse()
                .unwrap()
        })
        .collect();
    let names: Vec<String> = (0..LOOKUPS)
        .map(|index| format!("cdn{}.host{}.bad{}.example", index % 3, index * 3, (index * 3) % 5_000))
        .collect();
    let mut found = Vec::new();
    group.throughput(Throughput::Elements((LOOKUPS * 2) as u64));
    group.bench_function("lookup_ip_and_domain_1m_loaded", |b| {
        b.iter(|| {
            found.clear();
            for (address, name) in addresses.iter().zip(&names) {
                set.match_ip(*address, &mut found);
                set.match_domain(name, &mut found);
            }
            found.len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
