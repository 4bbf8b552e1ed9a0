//! `riposte intel`: indicators read from files (STIX bundles, CSV,
//! blocklists), looked up for a person, and extracted from reports.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use riposte_intel::{defang, extract, refang};
pub use riposte_server::intel::load;

use crate::cli::ReportFormat;

#[derive(Subcommand, Debug)]
pub enum IntelCommand {
    /// What the indicator files say of a value (an address, a domain, a hash...).
    Lookup(LookupArgs),
    /// The indicators, CVEs and ATT&CK techniques a report names.
    Extract(ExtractArgs),
    /// Fetch every feed of the configuration now (`intel.feeds`); `serve`
    /// loads what was fetched.
    Pull(PullArgs),
}

#[derive(Args, Debug)]
pub struct PullArgs {
    #[command(flatten)]
    pub config: crate::serve::ConfigArgs,
    /// No progress bar (it is shown only on a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Args, Debug)]
pub struct LookupArgs {
    /// The value (defanged forms are read too).
    pub value: String,
    /// Indicator files: STIX bundles and MISP events (`.json`), CSV (`.csv`,
    /// with an `indicator`, `value` or `ioc` column), or blocklists (one
    /// value a line). Without them: the configuration's files and the
    /// pulled copies of its feeds, as `serve` matches them.
    #[arg(long = "intel", short = 'i', value_name = "FILE")]
    pub intel: Vec<PathBuf>,
    /// Scores decay by its `intel.decay` models.
    #[command(flatten)]
    pub config: crate::serve::ConfigArgs,
    #[arg(long, short = 'f', value_enum, default_value_t)]
    pub format: ReportFormat,
}

#[derive(Copy, Clone, Debug, Default, clap::ValueEnum)]
pub enum ExtractFormat {
    /// A line per value, for a person.
    #[default]
    Text,
    Json,
    /// A STIX 2.1 bundle.
    Stix,
}

#[derive(Args, Debug)]
pub struct ExtractArgs {
    /// Reports: text, Markdown, HTML or PDF (its text layer).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[arg(long, short = 'f', value_enum, default_value_t)]
    pub format: ExtractFormat,
}

pub fn run(command: IntelCommand) -> Result<u8> {
    match command {
        IntelCommand::Lookup(args) => lookup(args),
        IntelCommand::Extract(args) => run_extract(args),
        IntelCommand::Pull(args) => run_pull(args),
    }
}

fn run_pull(args: PullArgs) -> Result<u8> {
    let config = args.config.load()?;
    if config.intel.feeds.is_empty() {
        eprintln!("no feed is configured (intel.feeds)");
        return Ok(crate::exit::OK);
    }
    let progress = (!args.no_progress && io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::with_draw_target(Some(config.intel.feeds.len() as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} feeds  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let started = Instant::now();
    let pulled =
        crate::serve::runtime()?.block_on(riposte_server::intel::pull(&config.intel.feeds, &config.data_dir, |name| {
            if let Some(bar) = &progress {
                // Counted as done when the next one starts.
                if !bar.message().is_empty() {
                    bar.inc(1);
                }
                bar.set_message(format!("pulling {name}"));
            }
        }));
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let mut failed = 0;
    for feed in &pulled {
        match &feed.outcome {
            Ok(count) => println!("{:<24} {count} indicators", feed.name),
            Err(reason) => {
                failed += 1;
                println!("{:<24} failed, the last good copy stays: {reason}", feed.name);
            }
        }
    }
    let indicators: usize = pulled.iter().filter_map(|feed| feed.outcome.as_ref().ok()).sum();
    println!(
        "{} feeds pulled, {failed} failed, {indicators} indicators in {:.1} s; copies in {}",
        pulled.len() - failed,
        started.elapsed().as_secs_f64(),
        riposte_server::intel::feed_dir(&config.data_dir).display()
    );
    Ok(if failed == 0 { crate::exit::OK } else { crate::exit::CONFIG_ERROR })
}

fn lookup(args: LookupArgs) -> Result<u8> {
    let config = args.config.load()?;
    let loaded = if args.intel.is_empty() {
        riposte_server::intel::load_configured(&config.intel, &config.data_dir)?.with_context(
            || "no indicators to look in: give --intel FILE, or --config with intel.files or intel.feeds (pulled)",
        )?
    } else {
        let mut loaded = load(&args.intel)?;
        loaded.set.set_policy(config.intel.decay.policy());
        loaded
    };
    for skipped in loaded.skipped.iter().take(5) {
        eprintln!("warning: left out: {skipped}");
    }
    let found = loaded.set.lookup(&args.value);
    let now = riposte_server::pipeline::now_ms();
    let mut out = io::stdout().lock();
    match args.format {
        ReportFormat::Json => {
            let records: Vec<serde_json::Value> = found
                .iter()
                .map(|&id| {
                    serde_json::json!({
                        "indicator": loaded.set.get(id),
                        "score": (loaded.set.score(id, now) * 10.0).round() / 10.0,
                        "live": loaded.set.is_live(id, now),
                    })
                })
                .collect();
            serde_json::to_writer_pretty(&mut out, &serde_json::json!({"value": args.value, "matches": records}))?;
            writeln!(out)?;
        }
        ReportFormat::Text => {
            if found.is_empty() {
                writeln!(out, "{}: no indicator among {} loaded", defang(&refang(&args.value)), loaded.set.len())?;
            }
            for &id in &found {
                let indicator = loaded.set.get(id);
                let score = loaded.set.score(id, now);
                let state = if indicator.revoked {
                    "revoked"
                } else if loaded.set.is_live(id, now) {
                    "live"
                } else {
                    "expired"
                };
                writeln!(
                    out,
                    "{} {}  ({state}, score {score:.0} of confidence {})",
                    indicator.kind,
                    defang(&indicator.value),
                    indicator.confidence
                )?;
                writeln!(out, "  sources  {}", indicator.sources.join(", "))?;
                if !indicator.tags.is_empty() {
                    writeln!(out, "  tags     {}", indicator.tags.join(", "))?;
                }
                for link in &indicator.context {
                    let id = link.id.as_deref().map(|id| format!(" ({id})")).unwrap_or_default();
                    writeln!(out, "  {:<8} {}{id}", format!("{:?}", link.kind).to_lowercase(), link.name)?;
                }
            }
        }
    }
    Ok(if found.is_empty() { crate::exit::OK } else { crate::exit::FINDINGS })
}

/// Text of a report: HTML tags removed and common entities decoded.
fn report_text(text: &str) -> String {
    if !text.contains('<') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    for ch in text.chars() {
        match ch {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            ch if !in_tag => out.push(ch),
            _ => {}
        }
    }
    out.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
}

/// The text of a PDF (its text layer: a scanned report has none).
fn pdf_text(content: &[u8]) -> Result<String> {
    // The PDF reader panics on some malformed files: a bad report is an
    // error, not a crash.
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let read = std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem(content));
    std::panic::set_hook(quiet);
    match read {
        Ok(Ok(text)) => Ok(text),
        Ok(Err(error)) => Err(anyhow::anyhow!("not a readable PDF: {error}")),
        Err(_) => Err(anyhow::anyhow!("not a readable PDF (its structure is broken)")),
    }
}

fn run_extract(args: ExtractArgs) -> Result<u8> {
    let mut text = String::new();
    for file in &args.files {
        let content = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        if content.starts_with(b"%PDF-") {
            text.push_str(&pdf_text(&content).with_context(|| format!("cannot read the text of {}", file.display()))?);
        } else {
            text.push_str(&report_text(&String::from_utf8_lossy(&content)));
        }
        text.push('\n');
    }
    let found = extract(&text);
    let mut out = io::stdout().lock();
    match args.format {
        ExtractFormat::Text => {
            for (kind, value) in &found.indicators {
                writeln!(out, "{:<8} {}", kind.name(), defang(value))?;
            }
            for cve in &found.cves {
                writeln!(out, "cve      {cve}")?;
            }
            for technique in &found.techniques {
                writeln!(out, "attack   {technique}")?;
            }
            eprintln!(
                "{} indicators, {} CVEs, {} techniques; {} benign values left out",
                found.indicators.len(),
                found.cves.len(),
                found.techniques.len(),
                found.benign.len()
            );
        }
        ExtractFormat::Json => {
            let indicators: Vec<serde_json::Value> = found
                .indicators
                .iter()
                .map(|(kind, value)| serde_json::json!({"type": kind, "value": value}))
                .collect();
            let json = serde_json::json!({
                "indicators": indicators,
                "cves": found.cves,
                "techniques": found.techniques,
                "benign": found.benign,
            });
            serde_json::to_writer_pretty(&mut out, &json)?;
            writeln!(out)?;
        }
        ExtractFormat::Stix => {
            let created = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into());
            serde_json::to_writer_pretty(&mut out, &riposte_intel::stix::bundle_of(&found, &created))?;
            writeln!(out)?;
        }
    }
    Ok(if found.indicators.is_empty() { crate::exit::OK } else { crate::exit::FINDINGS })
}
