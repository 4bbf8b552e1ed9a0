//! Retro-hunt at scale: N stored events (each with an address, a domain and
//! its parent among its observables) in a fresh SQLite store, then one new
//! indicator looked for in all of them.
//!
//! ```sh
//! cargo run --release -p riposte-store --example retro_hunt -- 10000000
//! ```

use std::time::Instant;

use riposte_store::{NewEvent, SqliteStore, Store};

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
                body: serde_json::json!({"EventID": 22, "QueryName": format!("host{}.site{}.example", seq, seq % 50_000), "DestinationIp": format!("10.{}.{}.{}", (seq >> 16) & 255, (seq >> 8) & 255, seq & 255)}),
                observables: vec![
                    format!("10.{}.{}.{}", (seq >> 16) & 255, (seq >> 8) & 255, seq & 255),
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
    let found = store.events_with_observables(&["site4242.example".to_owned()], 0).await.expect("a search");
    let searched = started.elapsed();
    println!(
        "{events} events stored in {:.1} s ({:.0}/s); one new indicator found in {} of them in {:.3} s",
        loaded.as_secs_f64(),
        events as f64 / loaded.as_secs_f64(),
        found.len(),
        searched.as_secs_f64()
    );
}
