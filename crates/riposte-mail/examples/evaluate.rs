//! The analyser over the corpus's phishing and legitimate messages, read in
//! place: the confusion matrix, the most common reasons, and throughput.
//!
//! ```sh
//! cargo run --release -p riposte-mail --example evaluate -- ../shared/corpus/email
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use riposte_mail::{Limits, Settings, Verdict, analyze, parse};

fn main() {
    let root = std::env::args().nth(1).unwrap_or_else(|| "../shared/corpus/email".to_owned());
    let settings = Settings::default();
    let mut elapsed = Duration::ZERO;
    let (mut messages, mut bytes) = (0u64, 0u64);
    for set in ["phishing", "ham"] {
        let dir = Path::new(&root).join(set);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            eprintln!("SKIPPED: {} is absent", dir.display());
            return;
        };
        let mut files: Vec<_> = entries.flatten().map(|entry| entry.path()).collect();
        files.sort();
        let mut verdicts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for file in &files {
            let raw = std::fs::read(file).expect("readable");
            let started = Instant::now();
            let verdict = match parse(&raw, &Limits::default()) {
                Some(mail) => {
                    let analysis = analyze(&mail, &settings);
                    for finding in &analysis.findings {
                        *reasons.entry(finding.check).or_default() += 1;
                    }
                    // `EXPLAIN=phishing:clean` lists the phishing messages judged clean, and so on.
                    if std::env::var("EXPLAIN")
                        .is_ok_and(|wanted| wanted == format!("{set}:{}", analysis.verdict.as_str()))
                    {
                        let from = mail.from.as_ref().map_or("", |from| from.address.as_str());
                        let checks: Vec<&str> = analysis.findings.iter().map(|finding| finding.check).collect();
                        eprintln!("{} | {from} | {} | {checks:?}", file.display(), mail.subject);
                    }
                    analysis.verdict
                }
                None => Verdict::Suspicious,
            };
            elapsed += started.elapsed();
            messages += 1;
            bytes += raw.len() as u64;
            *verdicts.entry(verdict.as_str()).or_default() += 1;
        }
        let flagged = verdicts.get("phishing").copied().unwrap_or(0) + verdicts.get("malicious").copied().unwrap_or(0);
        println!(
            "{set}: {} messages; {verdicts:?}; phishing or malicious: {flagged} ({:.1}%)",
            files.len(),
            100.0 * flagged as f64 / files.len() as f64
        );
        let mut common: Vec<_> = reasons.into_iter().collect();
        common.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
        println!("  most common reasons: {:?}", &common[..common.len().min(10)]);
    }
    println!(
        "{messages} messages, {:.1} MB analysed in {:.2} s: {:.0} messages/s, {:.1} MB/s (one thread)",
        bytes as f64 / 1e6,
        elapsed.as_secs_f64(),
        messages as f64 / elapsed.as_secs_f64(),
        bytes as f64 / 1e6 / elapsed.as_secs_f64()
    );
}
