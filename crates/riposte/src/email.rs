//! `riposte email analyze`: a verdict, a score and the findings behind them
//! for each message of `.eml` files, mbox files and Maildir (or any) folders.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use riposte_mail::{Analysis, Limits, Settings, Verdict, analyze, parse};

use crate::terminal::shown;

#[derive(Subcommand, Debug)]
pub enum EmailCommand {
    /// Judge messages: `.eml` files, mbox files, folders (Maildir included).
    Analyze(AnalyzeArgs),
    /// Messages `serve` held back: list, show, release, delete.
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// Judge an IMAP mailbox's new messages; phishing is moved to a
    /// quarantine folder (`--release` moves a message back).
    Imap(ImapArgs),
    /// Teach `serve`'s store verdicts in bulk: folders of the
    /// organisation's mail known to be phishing and known to be legitimate
    /// (audited; as an analyst's verdicts, without sender history).
    Learn(LearnArgs),
    /// What verdicts have taught: checks' factors and the words the
    /// classifier leans on most.
    Learned(LearnedArgs),
}

#[derive(Args, Debug)]
pub struct LearnArgs {
    /// Messages judged phishing (`.eml`, mbox, folders).
    #[arg(long, value_name = "PATH")]
    pub phishing: Vec<PathBuf>,
    /// Messages judged legitimate.
    #[arg(long, value_name = "PATH")]
    pub legitimate: Vec<PathBuf>,
    #[command(flatten)]
    pub config: crate::serve::ConfigArgs,
}

#[derive(Args, Debug)]
pub struct LearnedArgs {
    /// Words shown each way.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// One JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: crate::serve::ConfigArgs,
}

#[derive(Args, Debug)]
pub struct ImapArgs {
    /// The server, `host:port` (IMAPS: TLS from the first byte).
    #[arg(long)]
    pub address: String,
    #[arg(long)]
    pub user: String,
    /// The environment variable holding the password (never an argument).
    #[arg(long, value_name = "VAR", default_value = "RIPOSTE_IMAP_PASSWORD")]
    pub password_env: String,
    /// Plain IMAP without TLS (only for a server on this machine).
    #[arg(long)]
    pub no_tls: bool,
    /// The CA certificate(s) the server's certificate must chain to
    /// (default: the public web roots).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    #[arg(long, default_value = "INBOX")]
    pub folder: String,
    #[arg(long, default_value = "Quarantine")]
    pub quarantine_folder: String,
    /// Keep watching (IDLE where the server offers it) instead of judging
    /// what is there and stopping.
    #[arg(long)]
    pub watch: bool,
    /// Move the held message with this Message-ID back, and stop.
    #[arg(long, value_name = "MESSAGE_ID")]
    pub release: Option<String>,
    #[command(flatten)]
    pub judge: JudgeArgs,
}

/// How messages are judged and shown: `email analyze` and `email imap`.
#[derive(Args, Debug)]
pub struct JudgeArgs {
    /// The organisation's own domains: names imitating them are suspect.
    #[arg(long = "own-domain", value_name = "DOMAIN")]
    pub own_domains: Vec<String>,
    /// Indicator files (as `hunt --intel`): links, the sender's domain and
    /// attachments' SHA-256 are looked up in them.
    #[arg(long = "intel", short = 'i', value_name = "FILE")]
    pub intel: Vec<PathBuf>,
    #[arg(long, short = 'f', value_enum, default_value_t)]
    pub format: EmailFormat,
}

impl JudgeArgs {
    /// The analysis settings these options give (no sender history, and
    /// nothing learned unless `analyze --learned` reads it from the store).
    fn settings(&self) -> Result<Settings> {
        Ok(Settings {
            own_domains: self.own_domains.iter().map(|domain| domain.to_ascii_lowercase()).collect(),
            intel: crate::cli::intel_set(&self.intel, 5)?,
            now_ms: riposte_server::pipeline::now_ms(),
            history: None,
            verified: Default::default(),
            learned: None,
            trusted_arc_sealers: Vec::new(),
        })
    }
}

#[derive(Subcommand, Debug)]
pub enum QuarantineCommand {
    /// Held (or formerly held) messages, newest first.
    List(QuarantineListArgs),
    /// A held message's original bytes, on standard output.
    Show(QuarantineIdArgs),
    /// Let a held message go (audited).
    Release(QuarantineIdArgs),
    /// Delete a held message's bytes; its record and hash stay (audited).
    Delete(QuarantineIdArgs),
}

#[derive(Args, Debug)]
pub struct QuarantineListArgs {
    /// held, released or deleted.
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: crate::serve::ConfigArgs,
}

#[derive(Args, Debug)]
pub struct QuarantineIdArgs {
    pub id: i64,
    #[command(flatten)]
    pub config: crate::serve::ConfigArgs,
}

#[derive(Copy, Clone, Debug, Default, clap::ValueEnum)]
pub enum EmailFormat {
    /// For a person: each message's verdict and its reasons.
    #[default]
    Text,
    /// One JSON document a message, a line each.
    Jsonl,
}

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub judge: JudgeArgs,
    /// Print clean messages too (text format).
    #[arg(long)]
    pub all: bool,
    #[arg(long)]
    pub no_progress: bool,
    /// Verify DKIM signatures (and SPF and DMARC with `--client-ip`) with
    /// the system's DNS, rather than trusting the receiving host's headers.
    #[arg(long, conflicts_with = "dns_records")]
    pub dns: bool,
    /// Verify against these recorded TXT records only (zone-file or tinydns
    /// lines); nothing is asked of DNS.
    #[arg(long = "dns-records", value_name = "FILE")]
    pub dns_records: Vec<PathBuf>,
    /// The SMTP client's address, for SPF (and so DMARC).
    #[arg(long, value_name = "IP", requires = "mail_from")]
    pub client_ip: Option<std::net::IpAddr>,
    /// The name the SMTP client gave in HELO/EHLO.
    #[arg(long, value_name = "NAME", default_value = "")]
    pub helo: String,
    /// The SMTP `MAIL FROM` address.
    #[arg(long, value_name = "ADDRESS")]
    pub mail_from: Option<String>,
    /// A forwarder or mailing list (domain) whose verified ARC seal vouches
    /// for how a message authenticated before it changed it (with
    /// `--dns` or `--dns-records`).
    #[arg(long = "trusted-arc-sealer", value_name = "DOMAIN")]
    pub trusted_arc_sealers: Vec<String>,
    /// Judge with what analysts' verdicts taught (read from `serve`'s store).
    #[arg(long)]
    pub learned: bool,
    #[command(flatten)]
    pub config: crate::serve::ConfigArgs,
}

/// Verifies messages' authentication when asked to, on a runtime of its own.
struct Verifier {
    auth: riposte_server::mail_auth::MailAuth,
    envelope: Option<riposte_server::mail_auth::Envelope>,
    runtime: tokio::runtime::Runtime,
}

impl Verifier {
    fn from_args(args: &AnalyzeArgs) -> Result<Option<Verifier>> {
        use riposte_server::mail_auth::{Envelope, MailAuth};
        let Some(auth) = MailAuth::configured(args.dns, &args.dns_records)? else {
            return Ok(None);
        };
        let envelope = args.client_ip.map(|client_ip| Envelope {
            client_ip,
            helo: args.helo.clone(),
            mail_from: args.mail_from.clone().unwrap_or_default(),
        });
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(Some(Verifier { auth, envelope, runtime }))
    }

    fn verify(&self, raw: &[u8]) -> riposte_mail::Verified {
        self.runtime.block_on(self.auth.verify(raw, self.envelope.as_ref()))
    }
}

/// One message and where it came from.
struct Source {
    place: String,
    raw: Vec<u8>,
}

pub fn run(command: EmailCommand) -> Result<u8> {
    match command {
        EmailCommand::Analyze(args) => run_analyze(args),
        EmailCommand::Quarantine(command) => run_quarantine(command),
        EmailCommand::Imap(args) => run_imap(args),
        EmailCommand::Learn(args) => run_learn(args),
        EmailCommand::Learned(args) => run_learned(args),
    }
}

fn run_learn(args: LearnArgs) -> Result<u8> {
    if args.phishing.is_empty() && args.legitimate.is_empty() {
        anyhow::bail!("nothing to learn from: give --phishing and/or --legitimate messages");
    }
    // Counted here, written in one transaction.
    let mut verdicts = riposte_mail::Verdicts::default();
    let mut unreadable = 0u64;
    let settings = Settings::default();
    for (paths, phishing) in [(&args.phishing, true), (&args.legitimate, false)] {
        let mut files = Vec::new();
        for path in paths {
            collect(path, &mut files).with_context(|| format!("cannot read {}", path.display()))?;
        }
        for file in &files {
            for source in messages_of(file).with_context(|| format!("cannot read {}", file.display()))? {
                let Some(mail) = parse(&source.raw, &Limits::default()) else {
                    eprintln!("{}: not a message (no header could be read), left out", source.place);
                    unreadable += 1;
                    continue;
                };
                verdicts.record_message(&mail, &analyze(&mail, &settings), phishing);
            }
        }
    }
    let (phishing, legitimate) = (verdicts.words.phishing, verdicts.words.legitimate);
    if phishing + legitimate == 0 {
        anyhow::bail!("no message could be read: nothing was learned");
    }
    let (checks, words) = riposte_server::quarantine::verdict_rows(&verdicts);
    let config = args.config.load()?;
    let data_dir = config.data_dir.clone();
    crate::serve::runtime()?.block_on(async move {
        use riposte_store::Store;
        let store = crate::serve::open_store(&config).await?;
        let audit = riposte_server::auth::AuditFiles::open(&data_dir).context("cannot open the audit key")?;
        let entry = riposte_store::NewAudit {
            actor: "cli".into(),
            action: "mail.learn".into(),
            target: "verdicts".into(),
            detail: serde_json::json!({"phishing": phishing, "legitimate": legitimate, "words": words.len()})
                .to_string(),
        };
        let written = store.learn_verdicts(&checks, &words, &entry, &audit.key).await?;
        audit.keep_head(&written);
        let forgotten = store.prune_word_verdicts(riposte_mail::words::MAX_KEPT).await?;
        if forgotten > 0 {
            eprintln!("{forgotten} of the rarest words forgotten: at most {} are kept", riposte_mail::words::MAX_KEPT);
        }
        println!(
            "learned from {phishing} phishing and {legitimate} legitimate messages ({} words, {} checks){}",
            words.len() - 1,
            checks.len() - 1,
            if unreadable > 0 { format!("; {unreadable} unreadable left out") } else { String::new() }
        );
        Ok(crate::exit::OK)
    })
}

fn run_learned(args: LearnedArgs) -> Result<u8> {
    let config = args.config.load()?;
    let taught = crate::serve::runtime()?.block_on(async {
        let store = crate::serve::open_store(&config).await?;
        anyhow::Ok(riposte_server::quarantine::learned(&store).await?.taught(args.top))
    })?;
    let mut out = io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&taught)?)?;
        return Ok(crate::exit::OK);
    }
    writeln!(out, "verdicts: {} phishing, {} legitimate", taught.phishing, taught.legitimate)?;
    for check in &taught.checks {
        let factor = check.factor.map_or_else(|| "(not yet)".to_owned(), |factor| format!("×{factor:.2}"));
        writeln!(out, "  {:<34} {factor:<10} {} / {}", check.check, check.phishing, check.legitimate)?;
    }
    let words = &taught.words;
    writeln!(
        out,
        "words of {} phishing and {} legitimate messages: {} tokens; the classifier {}",
        words.phishing,
        words.legitimate,
        words.tokens,
        if words.speaks {
            "speaks".to_owned()
        } else {
            format!("waits for {} judged messages of each kind", riposte_mail::words::MIN_JUDGED)
        }
    )?;
    if words.languages.is_empty() {
        writeln!(out, "  languages: none named in judged mail yet; messages in every language are judged")?;
    } else {
        let least = riposte_mail::words::MIN_JUDGED_IN_LANGUAGE;
        let languages: Vec<String> = words
            .languages
            .iter()
            .map(|(language, phishing, legitimate)| {
                let judged =
                    if riposte_mail::words::judged_both_ways(*phishing, *legitimate) { "judged" } else { "not judged" };
                format!("{} {phishing} / {legitimate} ({judged})", shown(language))
            })
            .collect();
        writeln!(out, "  languages (phishing / legitimate; judged from {least} of each): {}", languages.join(", "))?;
    }
    for (side, tokens) in [("phishing", &words.phishing_tokens), ("legitimate", &words.legitimate_tokens)] {
        let shown: Vec<String> =
            tokens.iter().map(|(token, probability)| format!("{} {probability:.3}", shown(token))).collect();
        writeln!(out, "  leaning {side}: {}", shown.join(", "))?;
    }
    Ok(crate::exit::OK)
}

fn run_imap(args: ImapArgs) -> Result<u8> {
    use riposte_server::imap::{ImapConfig, Mailbox};
    let password = std::env::var(&args.password_env)
        .with_context(|| format!("the password is read from ${}, which is not set", args.password_env))?;
    let config = ImapConfig {
        address: args.address.clone(),
        tls: !args.no_tls,
        ca_file: args.ca_file.clone(),
        user: args.user.clone(),
        password,
        folder: args.folder.clone(),
        quarantine_folder: args.quarantine_folder.clone(),
    };
    let settings = args.judge.settings()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut mailbox = Mailbox::connect(&config).await?;
        if let Some(message_id) = &args.release {
            let id = message_id.trim_matches(['<', '>']);
            let found = mailbox.release(id).await?;
            mailbox.logout().await?;
            if !found {
                eprintln!("no message <{id}> in {}", config.quarantine_folder);
                return Ok(crate::exit::CONFIG_ERROR);
            }
            println!("<{id}> moved back to {}", config.folder);
            return Ok(crate::exit::OK);
        }
        let mut out = io::stdout().lock();
        let mut found_phishing = false;
        loop {
            for message in mailbox.unchecked().await? {
                let place = format!("imap://{}/{};uid={}", config.address, config.folder, message.uid);
                let source = Source { place, raw: message.raw };
                let Some(mail) = parse(&source.raw, &Limits::default()) else {
                    writeln!(out, "{}: not a message (no header could be read)", source.place)?;
                    mailbox.mark_checked(message.uid).await?;
                    continue;
                };
                let analysis = analyze(&mail, &settings);
                let view = AnalyzeView { format: args.judge.format, all: true };
                write_analysis(&mut out, &view, &source, &mail.subject, &analysis, None)?;
                // Marked before it moves: a released message stays judged.
                mailbox.mark_checked(message.uid).await?;
                if analysis.verdict >= Verdict::Phishing {
                    found_phishing = true;
                    mailbox.quarantine(message.uid).await?;
                    writeln!(out, "  moved to {}", config.quarantine_folder)?;
                }
                out.flush()?;
            }
            if !args.watch {
                break;
            }
            mailbox = mailbox.wait(Duration::from_secs(29 * 60)).await?;
        }
        mailbox.logout().await?;
        Ok(if found_phishing { crate::exit::FINDINGS } else { crate::exit::OK })
    })
}

/// How results are written: the format, and whether clean ones are shown.
struct AnalyzeView {
    format: EmailFormat,
    all: bool,
}

fn run_quarantine(command: QuarantineCommand) -> Result<u8> {
    use riposte_store::{QuarantineStatus, Store};
    let config = match &command {
        QuarantineCommand::List(args) => args.config.load()?,
        QuarantineCommand::Show(args) | QuarantineCommand::Release(args) | QuarantineCommand::Delete(args) => {
            args.config.load()?
        }
    };
    let data_dir = config.data_dir.clone();
    let dir = data_dir.join("quarantine");
    crate::serve::runtime()?.block_on(async move {
        let store = crate::serve::open_store(&config).await?;
        let mut out = io::stdout().lock();
        match command {
            QuarantineCommand::List(args) => {
                let status = args
                    .status
                    .as_deref()
                    .map(str::parse::<QuarantineStatus>)
                    .transpose()
                    .map_err(anyhow::Error::msg)?;
                let held = store.quarantined(status, args.limit).await?;
                if held.is_empty() && !args.json {
                    writeln!(out, "no quarantined messages")?;
                }
                for message in &held {
                    if args.json {
                        writeln!(out, "{}", serde_json::to_string(message)?)?;
                    } else {
                        writeln!(
                            out,
                            "{:>5}  {:<9} {:<10} {:>5.1}  {}  \"{}\"  ({})",
                            message.id,
                            message.status,
                            message.verdict,
                            message.score,
                            shown(&message.sender),
                            shown(&message.subject),
                            message.origin
                        )?;
                    }
                }
                Ok(crate::exit::OK)
            }
            QuarantineCommand::Show(args) => {
                let held = store
                    .quarantined_message(args.id)
                    .await?
                    .with_context(|| format!("no quarantined message {}", args.id))?;
                let path = riposte_server::quarantine::message_path(&dir, &held.sha256);
                let raw = std::fs::read(&path)
                    .with_context(|| format!("message {} is {}: its bytes are not kept", args.id, held.status))?;
                out.write_all(&raw)?;
                Ok(crate::exit::OK)
            }
            QuarantineCommand::Release(args) => {
                settle(&store, &data_dir, &dir, config.email.imap.as_ref(), args.id, QuarantineStatus::Released).await
            }
            QuarantineCommand::Delete(args) => {
                settle(&store, &data_dir, &dir, None, args.id, QuarantineStatus::Deleted).await
            }
        }
    })
}

/// Releases or deletes a held message as the local administrator, audited
/// (a released one moved back to the configured mailbox, if it is there).
async fn settle(
    store: &riposte_store::AnyStore,
    data_dir: &Path,
    dir: &Path,
    imap: Option<&riposte_server::imap::ImapConfig>,
    id: i64,
    status: riposte_store::QuarantineStatus,
) -> Result<u8> {
    let audit = riposte_server::auth::AuditFiles::open(data_dir).context("cannot open the audit key")?;
    let lock = tokio::sync::Mutex::new(());
    let settled = riposte_server::quarantine::settle(store, &audit, &lock, dir, imap, id, status, "cli").await?;
    println!("message {id} ({}) is {}", shown(&settled.sender), settled.status);
    Ok(crate::exit::OK)
}

fn run_analyze(args: AnalyzeArgs) -> Result<u8> {
    let mut files = Vec::new();
    for path in &args.paths {
        collect(path, &mut files).with_context(|| format!("cannot read {}", path.display()))?;
    }
    let verifier = Verifier::from_args(&args)?;
    let mut settings = args.judge.settings()?;
    settings.trusted_arc_sealers = args.trusted_arc_sealers.iter().map(|domain| domain.to_ascii_lowercase()).collect();
    if args.learned {
        let config = args.config.load()?;
        let learned = crate::serve::runtime()?.block_on(async {
            let store = crate::serve::open_store(&config).await?;
            anyhow::Ok(riposte_server::quarantine::learned(&store).await?)
        })?;
        settings.learned = Some(std::sync::Arc::new(learned));
    }
    let progress = (!args.no_progress && files.len() > 1 && io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::with_draw_target(Some(files.len() as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} files ({per_sec})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let started = Instant::now();
    let mut out = io::stdout().lock();
    let (mut messages, mut bytes, mut unreadable) = (0u64, 0u64, 0u64);
    let mut counts = [0u64; 4];
    for file in &files {
        for source in messages_of(file).with_context(|| format!("cannot read {}", file.display()))? {
            messages += 1;
            bytes += source.raw.len() as u64;
            let Some(mail) = parse(&source.raw, &Limits::default()) else {
                unreadable += 1;
                writeln!(out, "{}: not a message (no header could be read)", source.place)?;
                continue;
            };
            if let Some(verifier) = &verifier {
                settings.verified = verifier.verify(&source.raw);
            }
            let analysis = analyze(&mail, &settings);
            counts[analysis.verdict as usize] += 1;
            let verified = verifier.is_some().then_some(&settings.verified);
            let view = AnalyzeView { format: args.judge.format, all: args.all };
            write_analysis(&mut out, &view, &source, &mail.subject, &analysis, verified)?;
        }
        if let Some(bar) = &progress {
            bar.inc(1);
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "{messages} messages ({:.1} MB) in {elapsed:.2} s ({:.0} messages/s, {:.1} MB/s): {} malicious, {} phishing, {} suspicious, {} clean, {unreadable} unreadable",
        bytes as f64 / 1e6,
        messages as f64 / elapsed,
        bytes as f64 / 1e6 / elapsed,
        counts[Verdict::Malicious as usize],
        counts[Verdict::Phishing as usize],
        counts[Verdict::Suspicious as usize],
        counts[Verdict::Clean as usize],
    );
    let flagged = counts[Verdict::Malicious as usize] + counts[Verdict::Phishing as usize];
    Ok(if flagged > 0 { crate::exit::FINDINGS } else { crate::exit::OK })
}

fn write_analysis(
    out: &mut dyn Write,
    args: &AnalyzeView,
    source: &Source,
    subject: &str,
    analysis: &Analysis,
    verified: Option<&riposte_mail::Verified>,
) -> io::Result<()> {
    let place = source.place.as_str();
    match args.format {
        EmailFormat::Jsonl => {
            let mut record = serde_json::json!({
                "message": place,
                "subject": subject,
                "verdict": analysis.verdict.as_str(),
                "score": analysis.score,
                "findings": analysis.findings,
            });
            if let Some(verified) = verified {
                record["authentication"] = serde_json::json!(verified);
            }
            serde_json::to_writer(&mut *out, &record)?;
            writeln!(out)
        }
        EmailFormat::Text => {
            if analysis.verdict == Verdict::Clean && !args.all {
                return Ok(());
            }
            // Names and hosts come from the sender: control characters are shown, not obeyed.
            let place = shown(place);
            writeln!(
                out,
                "{:<10} {:>4.1}  {place}  \"{}\"",
                analysis.verdict.as_str().to_uppercase(),
                analysis.score,
                shown(subject)
            )?;
            for finding in &analysis.findings {
                writeln!(out, "  +{:<4} {:<32} {}", finding.weight, finding.check, shown(&finding.evidence))?;
            }
            if let Some(verified) = verified {
                let dkim: Vec<String> = verified
                    .dkim
                    .iter()
                    .flatten()
                    .map(|check| format!("dkim={} ({})", check.result.as_str(), shown(&check.domain)))
                    .collect();
                let method = |result: Option<riposte_mail::AuthResult>| result.map_or("-", |result| result.as_str());
                writeln!(
                    out,
                    "  verified: {} spf={} dmarc={}",
                    if dkim.is_empty() { "dkim=none".to_owned() } else { dkim.join(" ") },
                    method(verified.spf),
                    method(verified.dmarc)
                )?;
            }
            Ok(())
        }
    }
}

/// Files under `path` (every file of a folder, recursively).
fn collect(path: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    if path.is_dir() {
        // Links inside a folder are not followed (a `loop -> ..` would never end).
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|kind| !kind.is_symlink()))
            .map(|entry| entry.path())
            .collect();
        entries.sort();
        for entry in entries {
            collect(&entry, out)?;
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

/// The messages of a file: one, or each of an mbox (`From ` lines), read
/// as they come so that a large mailbox is never held whole.
fn messages_of(path: &Path) -> io::Result<Box<dyn Iterator<Item = Source>>> {
    use std::io::{BufRead, BufReader};
    let place = path.display().to_string();
    let mut reader = BufReader::new(std::fs::File::open(path)?);
    // An mbox starts with a `From ` line: read one message at a time.
    if !reader.fill_buf()?.starts_with(b"From ") {
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut raw)?;
        return Ok(Box::new(std::iter::once(Source { place, raw })));
    }
    let messages = mail_parser::mailbox::mbox::MessageIterator::new(reader).enumerate().map(move |(index, message)| {
        // A message the mbox reader cannot cut out is reported as unreadable.
        Source {
            place: format!("{place}#{}", index + 1),
            raw: message.map(|message| message.unwrap_contents()).unwrap_or_default(),
        }
    });
    Ok(Box::new(messages))
}
