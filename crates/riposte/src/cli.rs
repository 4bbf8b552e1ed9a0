//! The `riposte` command line.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use riposte_event::LogSource;
use riposte_ingest::{Dialect, FormatChoice};
use riposte_sigma::{Level, Status};

use crate::exit;
use crate::hunt::output::{self, OutputFormat, TextStyle};
use crate::hunt::{HuntOptions, hunt};
use crate::rules::{self, RuleOptions, Selection};
use crate::serve::{self, AlertsCommand, AuditCommand, SendArgs, ServeArgs, TokenCommand};
use crate::update;

#[derive(Parser, Debug)]
#[command(name = "riposte", version, about = "Security automation: Sigma detection over event logs and streams")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Hunt for threats in log files with Sigma rules.
    Hunt(Box<HuntArgs>),
    /// Check, update and list Sigma rules.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Run the server: sources, streaming detection, alerts, the REST API.
    Serve(ServeArgs),
    /// Send events (JSON lines files) to a running server.
    Send(SendArgs),
    /// The alerts the server stored.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Threat intelligence: look values up in indicator files, extract
    /// indicators from reports.
    #[command(subcommand)]
    Intel(crate::intel::IntelCommand),
    /// Phishing analysis of e-mail messages.
    #[command(subcommand)]
    Email(crate::email::EmailCommand),
    /// Response playbooks: validate, test, run (or dry-run).
    #[command(subcommand)]
    Playbook(crate::playbook::PlaybookCommand),
    /// Playbook runs: list, show, approve, reject, cancel, undo.
    #[command(subcommand)]
    Run(crate::playbook::RunCommand),
    /// Secrets connectors need, kept encrypted in the data directory.
    #[command(subcommand)]
    Secret(crate::secret::SecretCommand),
}

#[derive(Args, Debug, Clone)]
pub struct RuleArgs {
    /// Rule directories or files (default: the built-in starter pack).
    #[arg(long = "rules", short = 'r', value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    /// A log-source mapping file to use instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// A YAML file of values for `%placeholder%`s (the `expand` modifier).
    #[arg(long, value_name = "FILE")]
    pub placeholders: Option<PathBuf>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct SelectionArgs {
    /// Use only rules at this level or above.
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    pub min_level: Option<Level>,
    /// Use only rules with these statuses (default: all but deprecated and unsupported).
    #[arg(long = "status", value_name = "STATUS", value_delimiter = ',', value_parser = parse_status)]
    pub statuses: Vec<Status>,
    /// Use only rules with one of these tags (`attack.t1059` selects its sub-techniques too).
    #[arg(long = "tag", value_name = "TAG", value_delimiter = ',')]
    pub tags: Vec<String>,
}

fn parse_level(text: &str) -> Result<Level, String> {
    text.parse()
}

fn parse_status(text: &str) -> Result<Status, String> {
    text.parse()
}

#[derive(Copy, Clone, Debug, Default, ValueEnum)]
pub enum InputFormatArg {
    #[default]
    Auto,
    Evtx,
    /// JSON lines or documents (Suricata EVE, Zeek, Wazuh, Falco and
    /// Winlogbeat records are recognised).
    Json,
    /// Zeek's tab-separated logs.
    Zeek,
    /// ArcSight CEF, one record a line.
    Cef,
    /// Linux audit logs.
    Auditd,
    /// Syslog lines (CEF messages are read too).
    Syslog,
    /// JSON of these tools, whatever each record's shape (`json` recognises
    /// them by their fields).
    Suricata,
    Wazuh,
    Falco,
    Winlogbeat,
}

#[derive(Copy, Clone, Debug, Default, ValueEnum)]
pub enum When {
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Args, Debug)]
pub struct HuntArgs {
    /// Log files and directories (walked recursively).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub rules: RuleArgs,
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t)]
    pub format: OutputFormat,
    /// Write detections to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// How to read the inputs.
    #[arg(long, value_enum, default_value_t)]
    pub input_format: InputFormatArg,
    /// The log source of JSON inputs, e.g. `product=linux,service=auditd`.
    #[arg(long, value_name = "SOURCE", value_parser = LogSource::parse)]
    pub logsource: Option<LogSource>,
    /// Indicator files (STIX bundles, MISP events, CSV, blocklists): every event's
    /// addresses, domains, URLs, hashes and e-mail addresses are matched.
    #[arg(long, short = 'i', value_name = "FILE")]
    pub intel: Vec<PathBuf>,
    /// Detections shown per rule in text output (0: all).
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Worker threads (default: one per core).
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
    /// Colour in text output.
    #[arg(long, value_enum, default_value_t)]
    pub color: When,
    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Report every skipped rule and record, not only the first ones.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// Load every rule and report which failed and why.
    Check(CheckArgs),
    /// Download the latest SigmaHQ rule release.
    Update(UpdateArgs),
}

#[derive(Copy, Clone, Debug, Default, ValueEnum)]
pub enum ReportFormat {
    #[default]
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Rule directories or files.
    #[arg(required = true, value_name = "DIR")]
    pub paths: Vec<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub placeholders: Option<PathBuf>,
    #[arg(long, short = 'f', value_enum, default_value_t)]
    pub format: ReportFormat,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Where the release archive is.
    #[arg(long, default_value = update::DEFAULT_URL)]
    pub url: String,
    /// Where to unpack the rules (replaced as a whole once the download is complete).
    #[arg(long, default_value = update::DEFAULT_DIR)]
    pub dir: PathBuf,
}

/// Parses the arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => exit::code(code),
        Err(error) => {
            if error
                .chain()
                .any(|cause| cause.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe))
            {
                return exit::code(exit::OK);
            }
            eprintln!("error: {error:#}");
            exit::code(exit::CONFIG_ERROR)
        }
    }
}

pub fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Hunt(args) => run_hunt(*args),
        Command::Rules(RulesCommand::Check(args)) => run_check(args),
        Command::Rules(RulesCommand::Update(args)) => update::run(&args.url, &args.dir),
        Command::Serve(args) => serve::run_serve(args),
        Command::Send(args) => serve::run_send(args),
        Command::Alerts(command) => serve::run_alerts(command),
        Command::Token(command) => serve::run_token(command),
        Command::Audit(command) => serve::run_audit(command),
        Command::Intel(command) => crate::intel::run(command),
        Command::Email(command) => crate::email::run(command),
        Command::Playbook(command) => crate::playbook::run(command),
        Command::Run(command) => crate::playbook::run_runs(command),
        Command::Secret(command) => crate::secret::run(command),
    }
}

fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, ch) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The process's peak resident memory, where the system says.
fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The indicators of `--intel` files, when any are given.
pub(crate) fn intel_set(
    paths: &[PathBuf],
    shown: usize,
) -> Result<Option<std::sync::Arc<riposte_intel::IndicatorSet>>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let loaded = crate::intel::load(paths)?;
    for skipped in loaded.skipped.iter().take(shown) {
        eprintln!("warning: indicator left out: {skipped}");
    }
    eprintln!(
        "{} indicators from {} files ({} read)",
        thousands(loaded.set.len() as u64),
        paths.len(),
        thousands(loaded.read as u64)
    );
    Ok(Some(std::sync::Arc::new(loaded.set)))
}

fn run_hunt(args: HuntArgs) -> Result<u8> {
    if let Some(threads) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .build_global()
            .context("cannot start worker threads")?;
    }
    let rule_options = RuleOptions {
        paths: args.rules.rules.clone(),
        mapping: args.rules.mapping.clone(),
        placeholders: args.rules.placeholders.clone(),
        selection: Selection {
            min_level: args.selection.min_level,
            statuses: args.selection.statuses.clone(),
            tags: args.selection.tags.clone(),
            ..Selection::default()
        },
    };
    let loaded = rules::load(&rule_options)?;
    let report = &loaded.report;
    let shown = if args.verbose { usize::MAX } else { 5 };
    for error in report.errors.iter().take(shown) {
        eprintln!("warning: rule not loaded: {error}");
    }
    for warning in report.warnings.iter().take(shown) {
        eprintln!("warning: {warning}");
    }
    if args.verbose {
        for skipped in &report.skipped {
            eprintln!("skipped rule: {}: {:?}: {}", skipped.file, skipped.title, skipped.reason);
        }
    }
    if loaded.engine.rules().is_empty() {
        eprintln!(
            "error: no rule could be used ({} failed to load, {} were left out by the selection)",
            report.errors.len(),
            report.skipped.len()
        );
        return Ok(exit::RULE_ERROR);
    }
    let progress = (!args.no_progress && io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let options = HuntOptions {
        paths: args.paths.clone(),
        format: match args.input_format {
            InputFormatArg::Auto => FormatChoice::Auto,
            InputFormatArg::Evtx => FormatChoice::Evtx,
            InputFormatArg::Json => FormatChoice::Json,
            InputFormatArg::Zeek => FormatChoice::Zeek,
            InputFormatArg::Cef => FormatChoice::Cef,
            InputFormatArg::Auditd => FormatChoice::Auditd,
            InputFormatArg::Syslog => FormatChoice::Syslog,
            InputFormatArg::Suricata => FormatChoice::JsonOf(Dialect::Suricata),
            InputFormatArg::Wazuh => FormatChoice::JsonOf(Dialect::Wazuh),
            InputFormatArg::Falco => FormatChoice::JsonOf(Dialect::Falco),
            InputFormatArg::Winlogbeat => FormatChoice::JsonOf(Dialect::Winlogbeat),
        },
        logsource: args.logsource.clone(),
        intel: intel_set(&args.intel, shown)?,
    };
    let result = hunt(&loaded.engine, &options, progress.as_ref());
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    let stats = &result.stats;
    for error in stats.input_errors.iter().take(shown) {
        eprintln!("warning: input not read: {error}");
    }
    for error in stats.skipped_samples.iter().take(shown) {
        eprintln!("warning: record skipped: {error}");
    }
    if result.inputs.is_empty() && !stats.input_errors.is_empty() {
        bail!("no input could be read");
    }

    let to_terminal = args.output.is_none() && io::stdout().is_terminal();
    let color = match args.color {
        When::Always => true,
        When::Never => false,
        When::Auto => to_terminal && std::env::var_os("NO_COLOR").is_none(),
    };
    let style = TextStyle { color, limit: args.limit };
    match &args.output {
        Some(path) => {
            let file = File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
            let mut out = BufWriter::new(file);
            output::write(&mut out, args.format, &loaded.engine, &result, style)
                .with_context(|| format!("cannot write {}", path.display()))?;
            out.flush().with_context(|| format!("cannot write {}", path.display()))?;
        }
        None => {
            let stdout = io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            output::write(&mut out, args.format, &loaded.engine, &result, style)?;
            out.flush()?;
        }
    }

    let seconds = stats.elapsed.as_secs_f64().max(1e-9);
    let rules_fired = {
        let mut rules: Vec<usize> = result.detections.iter().map(|detection| detection.rule).collect();
        rules.sort_unstable();
        rules.dedup();
        rules.len()
    };
    let mut summary = format!(
        "{} files, {} events, {:.1} MiB in {:.2} s ({} events/s, {:.1} MiB/s) · rules: {} loaded, {} failed, {} skipped in {:.2} s · {} detections from {} rules · {} records skipped",
        thousands(result.inputs.len() as u64),
        thousands(stats.events),
        mib(stats.bytes),
        seconds,
        thousands((stats.events as f64 / seconds) as u64),
        mib(stats.bytes) / seconds,
        thousands(report.loaded as u64),
        thousands(report.errors.len() as u64),
        thousands(report.skipped.len() as u64),
        loaded.elapsed.as_secs_f64(),
        thousands(result.detections.len() as u64),
        thousands(rules_fired as u64),
        thousands(stats.skipped_records),
    );
    if !result.native.is_empty() {
        summary.push_str(&format!(" · {} alerts of other tools", thousands(result.native.len() as u64)));
    }
    if !args.intel.is_empty() {
        summary.push_str(&format!(" · {} threat-intelligence matches", thousands(result.intel.len() as u64)));
    }
    if !loaded.engine.correlations().is_empty() {
        let correlation = &stats.correlation;
        summary.push_str(&format!(
            " · {} correlation matches from {} detections",
            thousands(result.correlations.len() as u64),
            thousands(correlation.detections)
        ));
        for (count, what) in [
            (stats.untimed_detections, "without a time"),
            (correlation.missing_group, "without a group-by field"),
            (correlation.not_numeric, "without a numeric value"),
            (correlation.evicted, "windows evicted at the group limit"),
        ] {
            if count > 0 {
                summary.push_str(&format!(", {} {what}", thousands(count)));
            }
        }
    }
    if let Some(peak) = peak_memory() {
        summary.push_str(&format!(" · peak memory {:.0} MiB", mib(peak)));
    }
    eprintln!("{summary}");
    if !args.verbose
        && (report.errors.len() > shown || stats.skipped_records > shown as u64 || !report.skipped.is_empty())
    {
        eprintln!("(--verbose lists every skipped rule and record)");
    }
    let findings = !result.detections.is_empty()
        || !result.correlations.is_empty()
        || !result.native.is_empty()
        || !result.intel.is_empty();
    let code = if findings { exit::FINDINGS } else { exit::OK };
    // The process ends here: freeing the rule set and the detections one
    // allocation at a time would only delay the exit.
    std::mem::forget(loaded);
    std::mem::forget(result);
    Ok(code)
}

fn run_check(args: CheckArgs) -> Result<u8> {
    let options = RuleOptions {
        paths: args.paths,
        mapping: args.mapping,
        placeholders: args.placeholders,
        selection: Selection::default(),
    };
    let files = rules::rule_files(&options.paths)?.len();
    // Check every rule, whatever its status.
    let everything =
        RuleOptions { selection: Selection { statuses: Status::ALL.to_vec(), ..Selection::default() }, ..options };
    let loaded = rules::load(&everything)?;
    let report = &loaded.report;
    let total = report.loaded + report.errors.len();
    let mut out = io::stdout().lock();
    match args.format {
        ReportFormat::Text => {
            for error in &report.errors {
                writeln!(out, "{error}")?;
            }
            for warning in &report.warnings {
                writeln!(out, "warning: {warning}")?;
            }
            writeln!(
                out,
                "{} rules, {} loaded, {} failed",
                thousands(total as u64),
                thousands(report.loaded as u64),
                thousands(report.errors.len() as u64)
            )?;
        }
        ReportFormat::Json => {
            let json = serde_json::json!({
                "files": files,
                "rules": total,
                "loaded": report.loaded,
                "failed": report.errors.len(),
                "errors": report.errors,
                "warnings": report.warnings,
                "unmapped": report.unmapped,
            });
            serde_json::to_writer_pretty(&mut out, &json)?;
            writeln!(out)?;
        }
    }
    Ok(if report.errors.is_empty() { exit::OK } else { exit::RULE_ERROR })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn command_line_parses() {
        let cli = Cli::try_parse_from([
            "riposte",
            "hunt",
            "logs",
            "--rules",
            "a",
            "-r",
            "b",
            "--min-level",
            "high",
            "--status",
            "stable,test",
            "--format",
            "jsonl",
        ])
        .unwrap();
        let Command::Hunt(args) = cli.command else { panic!("not hunt") };
        assert_eq!(args.rules.rules.len(), 2);
        assert_eq!(args.selection.min_level, Some(Level::High));
        assert_eq!(args.selection.statuses, [Status::Stable, Status::Test]);
        assert_eq!(args.format, OutputFormat::Jsonl);
        assert!(Cli::try_parse_from(["riposte", "hunt", "x", "--min-level", "severe"]).is_err());
        assert!(Cli::try_parse_from(["riposte", "hunt", "x", "--logsource", "vendor=x"]).is_err());
    }
}
