//! Retro-hunt at scale: N stored events (each with an address, a domain and
//! its parent among its observables) in a fresh SQLite store, then one new
//! domain indicator and one new network (/20) looked for in all of them.
//!
//! ```sh
//! cargo run --release -p riposte-store --example retro_hunt -- 10000000
//! ```

use std::time::Instant;

use std::net::{IpAddr, Ipv4Addr};

use riposte_intel::normalize::{address_key, network_range};
use riposte_store::{NewEvent, ObservableSearch, SqliteStore, Store};

fn address(seq: i64) -> Ipv4Addr {
    Ipv4Addr::new(10, ((seq >> 16) & 255) as u8, ((seq >> 8) & 255) as u8, (seq & 255) as u8)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let events: i64 = std::env::args().nth(1).and_then(|text| text.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(&dir.path().join("retro.db")).await.expect("a store");
    let started = Instant::now();
    let batch = 5_000;
    let mut seq = 0;
    while seq < events {
        let chunk: Vec<NewEvent> = (seq..(seq + batch).min(events))
            .map(|seq| NewEvent {
                seq,
                received_ms: 1_795_946_400_000 + seq,
                source: "load".into(),
                matched: false,
                body: serde_json::value::to_raw_value(&serde_json::json!({"EventID": 22, "QueryName": format!("host{}.site{}.example", seq, seq % 50_000), "DestinationIp": address(seq).to_string()})).expect("JSON"),
                observables: vec![
                    address_key(IpAddr::V4(address(seq))),
                    format!("host{}.site{}.example", seq, seq % 50_000),
                    format!("site{}.example", seq % 50_000),
                ],
            })
            .collect();
        store.record(&[], &chunk, None).await.expect("stored");
        seq += batch;
    }
    let loaded = started.elapsed();
    // A new indicator: one site, seen in events / 50,000 events.
    let started = Instant::now();
    let domain = ObservableSearch { values: vec!["site4242.example".to_owned()], ..ObservableSearch::default() };
    let found = store.events_with_observables(&domain, 0).await.expect("a search");
    let searched = started.elapsed();
    println!(
        "{events} events stored in {:.1} s ({:.0}/s); one new domain indicator found in {} of them in {:.3} s",
        loaded.as_secs_f64(),
        events as f64 / loaded.as_secs_f64(),
        found.len(),
        searched.as_secs_f64()
    );
    // A new network: 4,096 addresses, each in events / 16.7M events.
    let started = Instant::now();
    let network = "10.1.16.0/20".parse().expect("a network");
    let cidr = ObservableSearch { ranges: vec![network_range(network)], ..ObservableSearch::default() };
    let found = store.events_with_observables(&cidr, 0).await.expect("a search");
    println!(
        "one new network indicator (/20) found in {} events in {:.3} s",
        found.len(),
        started.elapsed().as_secs_f64()
    );
}
