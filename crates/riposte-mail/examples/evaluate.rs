//! The analyser over the corpus's phishing and legitimate messages, read in
//! place: the confusion matrix, the most common reasons, and throughput.
//!
//! ```sh
//! cargo run --release -p riposte-mail --example evaluate -- ../shared/corpus/email
//! ```
//!
//! With `LEARN=1`, the weights an organisation would learn from verdicts
//! are measured on mail they were not learned from, k-fold (`FOLDS`, 10 by
//! default): analysts' verdicts are the sets' labels, and each message is
//! judged by what the other folds taught. The project's own legitimate
//! messages flagged by what the whole corpus taught are listed with their
//! findings; with `MISSED=1` too the phishing messages the folds did not
//! flag, with their language and findings.

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
        // Flagged at even and at odd positions: checks written while reading
        // only the even half's messages are judged by the odd half.
        let mut flagged_by_half = [0usize; 2];
        for (position, file) in files.iter().enumerate() {
            let raw = std::fs::read(file).expect("readable");
            let started = Instant::now();
            let verdict = match parse(&raw, &Limits::default()) {
                Some(mail) => {
                    let analysis = analyze(&mail, &settings);
                    for finding in &analysis.findings {
                        *reasons.entry(finding.check).or_default() += 1;
                    }
                    // `EXPLAIN=phishing:clean` lists the phishing messages judged clean, and so on
                    // (`EXPLAIN_HALF=even` or `odd`: only those at even or odd positions).
                    if std::env::var("EXPLAIN")
                        .is_ok_and(|wanted| wanted == format!("{set}:{}", analysis.verdict.as_str()))
                        && std::env::var("EXPLAIN_HALF").map_or(true, |half| match half.as_str() {
                            "even" => position % 2 == 0,
                            "odd" => position % 2 == 1,
                            _ => true,
                        })
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
            if matches!(verdict, Verdict::Phishing | Verdict::Malicious) {
                flagged_by_half[position % 2] += 1;
            }
        }
        let flagged = verdicts.get("phishing").copied().unwrap_or(0) + verdicts.get("malicious").copied().unwrap_or(0);
        println!(
            "{set}: {} messages; {verdicts:?}; phishing or malicious: {flagged} ({:.1}%)",
            files.len(),
            100.0 * flagged as f64 / files.len() as f64
        );
        let halves = [files.len().div_ceil(2), files.len() / 2];
        println!(
            "  flagged at even positions {} / {} ({:.1}%), at odd positions {} / {} ({:.1}%)",
            flagged_by_half[0],
            halves[0],
            100.0 * flagged_by_half[0] as f64 / halves[0].max(1) as f64,
            flagged_by_half[1],
            halves[1],
            100.0 * flagged_by_half[1] as f64 / halves[1].max(1) as f64
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

/// A labelled set of parsed messages (`None`: not a message).
struct Set {
    name: &'static str,
    phishing: bool,
    mails: Vec<Option<riposte_mail::Mail>>,
}

/// What `sets` teach, leaving out the messages of fold `fold` (`None`: all).
fn taught(sets: &[&Set], folds: usize, fold: Option<usize>) -> Settings {
    let mut verdicts = riposte_mail::Verdicts::default();
    for set in sets {
        for (at, mail) in set.mails.iter().enumerate() {
            let Some(mail) = mail.as_ref().filter(|_| fold.is_none_or(|fold| at % folds != fold)) else { continue };
            let analysis = analyze(mail, &Settings::default());
            verdicts.record_message(mail, &analysis, set.phishing);
        }
    }
    Settings { learned: Some(std::sync::Arc::new(verdicts)), ..Settings::default() }
}

fn held_out(root: &Path) {
    let (Some(phishing), Some(ham)) = (messages_of(root, "phishing"), messages_of(root, "ham")) else {
        eprintln!("SKIPPED: {}/phishing or ham is absent", root.display());
        return;
    };
    let own_messages = messages_of(Path::new(env!("CARGO_MANIFEST_DIR")), "tests/legitimate").unwrap_or_default();
    let set = |name, phishing, messages: &[(String, Vec<u8>)]| Set {
        name,
        phishing,
        mails: messages.iter().map(|(_, raw)| parse(raw, &Limits::default())).collect(),
    };
    let (phishing, ham, own) =
        (set("phishing", true, &phishing), set("ham", false, &ham), set("own", false, &own_messages));
    let folds: usize = std::env::var("FOLDS").ok().and_then(|folds| folds.parse().ok()).unwrap_or(10).max(2);
    let base = Settings::default();

    // 1. The corpus alone, k-fold: analysts judged every message but those
    // of one fold, which is then judged with what they taught; every
    // message is judged once, by what never saw it. The project's own
    // legitimate messages are judged by what all of the corpus taught.
    let corpus = [&phishing, &ham];
    let mut judged: Vec<(String, &str, Verdict)> = Vec::new();
    let mut reasons: BTreeMap<(&str, &'static str), usize> = BTreeMap::new();
    let mut analysing = Duration::ZERO;
    for fold in 0..folds {
        let learned = taught(&corpus, folds, Some(fold));
        for set in corpus {
            for mail in set.mails.iter().skip(fold).step_by(folds) {
                let verdict = mail.as_ref().map_or(Verdict::Suspicious, |mail| {
                    let started = Instant::now();
                    let analysis = analyze(mail, &learned);
                    analysing += started.elapsed();
                    for finding in &analysis.findings {
                        *reasons.entry((set.name, finding.check)).or_default() += 1;
                    }
                    if std::env::var_os("MISSED").is_some()
                        && set.phishing
                        && !matches!(analysis.verdict, Verdict::Phishing | Verdict::Malicious)
                    {
                        let tokens = riposte_mail::tokens_of(mail);
                        let language = tokens
                            .iter()
                            .find_map(|token| token.strip_prefix(riposte_mail::words::LANGUAGE_TOKEN))
                            .unwrap_or("unnamed");
                        println!("missed ({language}, score {:.1}): {:?}", analysis.score, mail.subject);
                        for finding in &analysis.findings {
                            println!("    {}: {}", finding.check, finding.evidence);
                        }
                    }
                    analysis.verdict
                });
                judged.push(("corpus, learned".into(), set.name, verdict));
                let unlearned = mail.as_ref().map_or(Verdict::Suspicious, |mail| analyze(mail, &base).verdict);
                judged.push(("corpus, no learning".into(), set.name, unlearned));
            }
        }
    }
    let learned = taught(&corpus, folds, None);
    for (mail, (name, _)) in own.mails.iter().zip(&own_messages) {
        let verdict = mail.as_ref().map_or(Verdict::Suspicious, |mail| {
            let analysis = analyze(mail, &learned);
            if matches!(analysis.verdict, Verdict::Phishing | Verdict::Malicious) {
                let checks: Vec<&str> = analysis.findings.iter().map(|finding| finding.check).collect();
                println!("own message flagged by what the corpus taught: {name} {checks:?}");
            }
            analysis.verdict
        });
        judged.push(("corpus, learned".into(), own.name, verdict));
        let unlearned = mail.as_ref().map_or(Verdict::Suspicious, |mail| analyze(mail, &base).verdict);
        judged.push(("corpus, no learning".into(), own.name, unlearned));
    }

    // 2. An organisation whose judged legitimate mail includes today's
    // (the project's own messages), k-fold over all three sets.
    let all = [&phishing, &ham, &own];
    for fold in 0..folds {
        let learned = taught(&all, folds, Some(fold));
        for set in all {
            for mail in set.mails.iter().skip(fold).step_by(folds) {
                let verdict = mail.as_ref().map_or(Verdict::Suspicious, |mail| analyze(mail, &learned).verdict);
                judged.push(("corpus and own mail, learned".into(), set.name, verdict));
            }
        }
    }

    let mut table: BTreeMap<(&str, &str), [usize; 4]> = BTreeMap::new();
    for (how, set, verdict) in &judged {
        table.entry((how.as_str(), set)).or_default()[*verdict as usize] += 1;
    }
    println!("{folds}-fold; verdicts clean / suspicious / phishing / malicious; flagged = phishing or malicious");
    for ((how, set), counts) in &table {
        let total: usize = counts.iter().sum();
        let flagged = counts[Verdict::Phishing as usize] + counts[Verdict::Malicious as usize];
        println!(
            "{how:<30} {set:<9} {counts:?}  flagged {flagged}/{total} ({:.2}%)",
            100.0 * flagged as f64 / total.max(1) as f64
        );
    }
    if let Some(words) = learned.learned.as_ref().map(|learned| &learned.words) {
        println!("languages named in the corpus (phishing, legitimate): {:?}", words.languages());
    }
    let judged_learned = phishing.mails.iter().chain(&ham.mails).flatten().count();
    println!(
        "judging with what was learned ({} tokens): {:.0} messages/s (parsed already; one thread)",
        learned.learned.as_ref().map_or(0, |learned| learned.words.tokens.len()),
        judged_learned as f64 / analysing.as_secs_f64()
    );
    for set in ["phishing", "ham"] {
        let mut common: Vec<_> = reasons.iter().filter(|((name, _), _)| *name == set).collect();
        common.sort_by_key(|(_, count)| std::cmp::Reverse(**count));
        let shown: Vec<String> = common.iter().take(10).map(|((_, check), count)| format!("{check} {count}")).collect();
        println!("most common reasons, corpus, learned, {set}: {}", shown.join(", "));
    }
}
