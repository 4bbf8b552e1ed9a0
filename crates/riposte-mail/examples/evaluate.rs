//! The analyser over the corpus's phishing and legitimate messages, read in
//! place: the confusion matrix, the most common reasons, and throughput.
//!
//! ```sh
//! cargo run --release -p riposte-mail --example evaluate -- ../shared/corpus/email
//! ```
//!
//! With `LEARN=1`, the weights an organisation would learn from verdicts
//! are measured on mail they were not learned from: analysts' verdicts are
//! the labels of the messages at even positions (sorted by name) of both
//! sets, and only the messages at odd positions are judged, once without
//! and once with what was learned.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use riposte_mail::{Limits, Settings, Verdict, analyze, parse};

fn main() {
    let root = std::env::args().nth(1).unwrap_or_else(|| "../shared/corpus/email".to_owned());
    if std::env::var_os("LEARN").is_some() {
        return held_out(Path::new(&root));
    }
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

/// The sorted messages of a set, as (name, bytes), or `None` when absent.
fn messages_of(root: &Path, set: &str) -> Option<Vec<(String, Vec<u8>)>> {
    let dir = root.join(set);
    let mut files: Vec<_> = std::fs::read_dir(&dir).ok()?.flatten().map(|entry| entry.path()).collect();
    files.sort();
    Some(files.into_iter().map(|file| (file.display().to_string(), std::fs::read(&file).expect("readable"))).collect())
}

fn held_out(root: &Path) {
    let (Some(phishing), Some(ham)) = (messages_of(root, "phishing"), messages_of(root, "ham")) else {
        eprintln!("SKIPPED: {}/phishing or ham is absent", root.display());
        return;
    };
    // Learning: analysts judge the even half, as they would in the console.
    let mut verdicts = riposte_mail::Verdicts::default();
    let base = Settings::default();
    for (set, is_phishing) in [(&phishing, true), (&ham, false)] {
        for (_, raw) in set.iter().step_by(2) {
            if let Some(mail) = parse(raw, &Limits::default()) {
                let analysis = analyze(&mail, &base);
                verdicts.record(analysis.findings.iter().map(|finding| finding.check), is_phishing);
            }
        }
    }
    let learned = Settings { learned: Some(std::sync::Arc::new(verdicts.clone())), ..Settings::default() };
    println!("learned from {} phishing and {} legitimate verdicts:", verdicts.phishing, verdicts.legitimate);
    for check in verdicts.checks.keys() {
        if let Some(factor) = verdicts.factor(check) {
            println!("  {check:<32} ×{factor:.2}");
        }
    }
    for (name, settings) in [("without learning", &base), ("with learning", &learned)] {
        let flagged = |set: &[(String, Vec<u8>)]| {
            let judged: Vec<Verdict> = set
                .iter()
                .skip(1)
                .step_by(2)
                .map(|(_, raw)| {
                    parse(raw, &Limits::default()).map_or(Verdict::Suspicious, |mail| analyze(&mail, settings).verdict)
                })
                .collect();
            let count = judged.iter().filter(|verdict| **verdict >= Verdict::Phishing).count();
            (count, judged.len())
        };
        let ((caught, phish_total), (false_alarms, ham_total)) = (flagged(&phishing), flagged(&ham));
        println!(
            "{name}, held-out half: phishing flagged {caught}/{phish_total} ({:.1}%), legitimate flagged {false_alarms}/{ham_total} ({:.2}%)",
            100.0 * caught as f64 / phish_total as f64,
            100.0 * false_alarms as f64 / ham_total as f64
        );
    }
}
