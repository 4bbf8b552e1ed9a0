//! `riposte playbook` (validate, test, run) and `riposte run` (list, show,
//! approve, reject, cancel, undo): the playbook language checked before
//! anything runs, replay tests, dry runs, and runs as the store keeps them.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use riposte_playbook::replay::{self, TestFile};
use riposte_playbook::{Catalog, Library, LoadError};
use riposte_server::auth::AuditFiles;
use riposte_server::config::Config;
use riposte_server::playbooks::{self, PlaybookConfig, READY, READY_TESTS, Runner};
use riposte_store::{NewRun, RunStatus, Store};
use serde_json::{Map, Value, json};

use crate::exit;
use crate::serve::{ConfigArgs, open_store, runtime};

#[derive(Subcommand, Debug)]
pub enum PlaybookCommand {
    /// Check playbooks before anything runs: every problem with its file and line.
    Validate(ValidateArgs),
    /// Replay the recorded cases next to playbooks (`NAME.test.yml`).
    Test(TestArgs),
    /// Start a run by hand, or show what a run would do (`--dry-run`).
    Run(RunArgs),
    /// The actions playbooks may use: inputs, whether they change anything,
    /// their inverse, the secrets their connector needs.
    Actions(ActionsArgs),
}

#[derive(Args, Debug)]
pub struct ActionsArgs {
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// This configuration's connectors (default: every type under its own
    /// and its conventional name).
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Subcommand, Debug)]
pub enum RunCommand {
    /// Runs, newest first.
    List(RunListArgs),
    /// A run and its journal.
    Show(RunIdArgs),
    /// Approve a waiting step.
    Approve(DecideArgs),
    /// Reject a waiting step.
    Reject(DecideArgs),
    /// Stop a run where it is.
    Cancel(RunIdArgs),
    /// Run the inverses of a run's actions now (of one step when given).
    Undo(UndoArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// Playbook files or directories.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Check actions against this configuration's connectors (default:
    /// every connector type under its own and its conventional name).
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Args, Debug)]
pub struct TestArgs {
    /// Directories (or files) of playbooks and their `.test.yml` cases.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Also replay the ready playbooks' own cases.
    #[arg(long)]
    pub ready: bool,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// A playbook's id (ready or configured) or file.
    #[arg(value_name = "PLAYBOOK")]
    pub playbook: String,
    /// Show what the run would do with these inputs, acting on nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// An alert (JSON file, as the API shows alerts) to run on.
    #[arg(long, value_name = "FILE")]
    pub alert: Option<PathBuf>,
    /// An input (NAME=VALUE; VALUE is JSON when it reads as JSON).
    #[arg(long = "input", value_name = "NAME=VALUE")]
    pub inputs: Vec<String>,
    /// For a dry run: what a step answers (STEP=JSON).
    #[arg(long = "output", value_name = "STEP=JSON")]
    pub outputs: Vec<String>,
    /// More playbook directories.
    #[arg(long = "playbooks", value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Who starts the run (default: $USER).
    #[arg(long)]
    pub by: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Args, Debug)]
pub struct RunListArgs {
    #[arg(long)]
    pub playbook: Option<String>,
    /// running, waiting, completed, failed or cancelled.
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Args, Debug)]
pub struct RunIdArgs {
    pub run: String,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Args, Debug)]
pub struct DecideArgs {
    pub run: String,
    /// The waiting step's path (`riposte run show` lists them; `isolate#approval`).
    pub path: String,
    /// Who decides (an approver group member; default: $USER).
    #[arg(long)]
    pub by: Option<String>,
    #[arg(long)]
    pub comment: Option<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Args, Debug)]
pub struct UndoArgs {
    pub run: String,
    /// Only this step.
    pub step: Option<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

fn user(given: &Option<String>) -> String {
    given.clone().or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "cli".to_owned())
}

/// The catalog playbooks are checked against: the configuration's
/// connectors when one is given, else every type under its default names.
fn catalog(config: &ConfigArgs) -> Result<(Catalog, Option<Config>)> {
    if config.config.is_none() {
        return Ok((playbooks::default_catalog(), None));
    }
    let loaded = config.load()?;
    let mut catalog = Catalog::default();
    for (name, connector) in &loaded.playbooks.connectors {
        for spec in riposte_connectors::specs(connector.kind(), name) {
            catalog.add(spec);
        }
    }
    for spec in playbooks::builtin_specs() {
        catalog.add(spec);
    }
    Ok((catalog, Some(loaded)))
}

/// Reads every file `list` finds under `paths` (playbooks, or their tests).
fn sources(paths: &[PathBuf], list: fn(&Path) -> std::io::Result<Vec<PathBuf>>) -> Result<Vec<(String, String)>> {
    let mut sources = Vec::new();
    for path in paths {
        let files = list(path).with_context(|| format!("cannot read {}", path.display()))?;
        for file in files {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            sources.push((file.display().to_string(), text));
        }
    }
    Ok(sources)
}

pub fn run(command: PlaybookCommand) -> Result<u8> {
    match command {
        PlaybookCommand::Validate(args) => validate(args),
        PlaybookCommand::Test(args) => test(args),
        PlaybookCommand::Run(args) => start(args),
        PlaybookCommand::Actions(args) => actions(args),
    }
}

fn actions(args: ActionsArgs) -> Result<u8> {
    let (catalog, _) = catalog(&args.config)?;
    let mut out = std::io::stdout().lock();
    if args.format == Format::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(&catalog.actions().collect::<Vec<_>>())?)?;
        return Ok(exit::OK);
    }
    for spec in catalog.actions() {
        let inputs: Vec<String> = spec
            .inputs
            .iter()
            .map(|input| if input.required { input.name.clone() } else { format!("[{}]", input.name) })
            .collect();
        let kind = if spec.changes { "action" } else { "enrich" };
        let inverse = spec.inverse.as_ref().map_or_else(String::new, |inverse| format!("  undo: {inverse}"));
        writeln!(out, "{kind:<7} {:<32} {}{inverse}", spec.name, inputs.join(" "))?;
    }
    Ok(exit::OK)
}

fn validate(args: ValidateArgs) -> Result<u8> {
    let (catalog, _) = catalog(&args.config)?;
    let sources = sources(&args.paths, playbooks::playbook_files)?;
    let (library, errors) = Library::load(sources.iter().map(|(file, text)| (file.as_str(), text.as_str())), &catalog);
    let broken: std::collections::BTreeSet<&str> = errors.iter().map(|error| error.file.as_str()).collect();
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            let report = json!({
                "playbooks": sources.len(),
                "valid": library.len(),
                "errors": errors,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        }
        Format::Text => {
            for error in &errors {
                writeln!(out, "{error}")?;
            }
            writeln!(out, "{} playbooks, {} valid, {} with errors", sources.len(), library.len(), broken.len())?;
        }
    }
    Ok(if errors.is_empty() { exit::OK } else { exit::RULE_ERROR })
}

fn test(args: TestArgs) -> Result<u8> {
    if args.paths.is_empty() && !args.ready {
        bail!("give playbook directories, or --ready for the ready playbooks' own cases");
    }
    let catalog = playbooks::default_catalog();
    let mut tests = sources(&args.paths, playbooks::playbook_test_files)?;
    let mut sources = sources(&args.paths, playbooks::playbook_files)?;
    if args.ready {
        sources.extend(READY.iter().map(|(file, text)| ((*file).to_owned(), (*text).to_owned())));
        tests.extend(READY_TESTS.iter().map(|(file, text)| ((*file).to_owned(), (*text).to_owned())));
    }
    let (library, errors) = Library::load(sources.iter().map(|(file, text)| (file.as_str(), text.as_str())), &catalog);
    let mut out = std::io::stdout().lock();
    for error in &errors {
        writeln!(out, "{error}")?;
    }
    // A test file is for the playbook in the file of the same name.
    let ids_by_stem: HashMap<String, String> =
        library.playbooks().map(|playbook| (stem(&playbook.file).to_owned(), playbook.id.clone())).collect();
    let (mut passed, mut failed) = (0, 0);
    for (file, text) in &tests {
        let cases: TestFile = match serde_saphyr::from_str(text) {
            Ok(cases) => cases,
            Err(error) => {
                writeln!(out, "FAIL  {file}: {error}")?;
                failed += 1;
                continue;
            }
        };
        let playbook = cases.playbook.clone().or_else(|| ids_by_stem.get(stem(file)).cloned()).unwrap_or_default();
        for case in &cases.cases {
            match replay::check(&library, &playbook, case) {
                Ok(_) => {
                    passed += 1;
                    writeln!(out, "ok    {file}: {}", case.name)?;
                }
                Err(problems) => {
                    failed += 1;
                    writeln!(out, "FAIL  {file}: {}", case.name)?;
                    for problem in problems {
                        writeln!(out, "      {problem}")?;
                    }
                }
            }
        }
    }
    writeln!(out, "{} cases, {passed} passed, {failed} failed", passed + failed)?;
    Ok(if failed == 0 && errors.is_empty() { exit::OK } else { exit::FINDINGS })
}

/// A file's name without its directories and `.test.yml` / `.yml`.
fn stem(file: &str) -> &str {
    let name = file.rsplit('/').next().unwrap_or(file);
    let name = name.strip_suffix(".yml").or_else(|| name.strip_suffix(".yaml")).unwrap_or(name);
    name.strip_suffix(".test").unwrap_or(name)
}

/// `NAME=VALUE` pairs, VALUE as JSON when it reads as JSON.
fn pairs(given: &[String], what: &str) -> Result<Map<String, Value>> {
    given
        .iter()
        .map(|pair| {
            let (name, value) = pair.split_once('=').with_context(|| format!("{what} {pair:?} is not NAME=VALUE"))?;
            let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
            Ok((name.trim().to_owned(), value))
        })
        .collect()
}

fn start(args: RunArgs) -> Result<u8> {
    let (catalog, config) = catalog(&args.config)?;
    let config = config.unwrap_or_default();
    // The library `serve` would load (ready playbooks, the configured
    // directories), with the given directories and file beside it.
    let mut playbooks_config = PlaybookConfig { ready: true, ..config.playbooks.clone() };
    playbooks_config.dirs.extend(args.dirs.iter().cloned());
    let as_file = Path::new(&args.playbook);
    let mut wanted = args.playbook.clone();
    if as_file.is_file() {
        let text = std::fs::read_to_string(as_file).with_context(|| format!("cannot read {}", as_file.display()))?;
        let playbook = riposte_playbook::load(&args.playbook, &text, &catalog).map_err(report)?;
        wanted = playbook.id.clone();
        // Its directory too, for the playbooks it runs.
        let parent = as_file.parent().filter(|parent| !parent.as_os_str().is_empty());
        playbooks_config.dirs.push(parent.map_or_else(|| as_file.to_owned(), Path::to_owned));
    }
    let (library, errors, _) = playbooks::load_library(&playbooks_config, &catalog);
    // A directory that cannot be read is an error of the command, as before.
    if let Some(error) =
        errors.iter().find(|error| playbooks_config.dirs.iter().any(|dir| dir.display().to_string() == error.file))
    {
        bail!("cannot read {}: {}", error.file, error.reason);
    }
    if library.get(&wanted).is_none() {
        if let Some(error) =
            errors.iter().find(|error| error.file.ends_with(&format!("{wanted}.yml")) || error.file == args.playbook)
        {
            bail!("{error}");
        }
        bail!(
            "no playbook {wanted} (ready ones: {})",
            READY.iter().map(|(file, _)| stem(file)).collect::<Vec<_>>().join(", ")
        );
    }
    let trigger = match &args.alert {
        Some(file) => {
            let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
            let alert: Value = serde_json::from_str(&text).with_context(|| format!("{}: not JSON", file.display()))?;
            riposte_playbook::run::alert_trigger(alert)
        }
        None => riposte_playbook::run::manual_trigger(&user(&args.by)),
    };
    let inputs = pairs(&args.inputs, "--input")?;
    if args.dry_run {
        let outputs: HashMap<String, Value> = pairs(&args.outputs, "--output")?.into_iter().collect();
        let (outcome, trace) = runtime()?
            .block_on(playbooks::dry_run(&library, &wanted, &trigger, &inputs, outputs))
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        let mut out = std::io::stdout().lock();
        if args.format == Format::Json {
            writeln!(out, "{}", serde_json::to_string_pretty(&json!({"outcome": outcome, "trace": trace}))?)?;
        } else {
            writeln!(out, "dry run of {wanted} (nothing is acted on):")?;
            for step in &trace {
                let detail = match step.what.as_str() {
                    "action" | "enrich" => {
                        format!("  {} {}", step.detail["action"].as_str().unwrap_or_default(), step.detail["inputs"])
                    }
                    "approval" => format!(
                        "  asks {} : {}",
                        step.detail["approvers"],
                        step.detail["message"].as_str().unwrap_or_default()
                    ),
                    _ => String::new(),
                };
                writeln!(out, "  {}{detail}", replay::line(step))?;
            }
            writeln!(out, "outcome: {}", serde_json::to_value(&outcome)?)?;
        }
        return Ok(match outcome {
            riposte_playbook::Outcome::Failed { .. } => exit::FINDINGS,
            _ => exit::OK,
        });
    }
    // A real run: the store keeps it, and `riposte serve` takes it up.
    let by = user(&args.by);
    runtime()?.block_on(async move {
        let store = open_store(&config).await?;
        let run = NewRun {
            id: playbooks::new_run_id(),
            playbook: wanted.clone(),
            trigger,
            inputs: Value::Object(inputs),
            requested_by: Some(by),
            dedup_key: None,
        };
        store.create_run(&run).await?;
        println!("{}", run.id);
        eprintln!(
            "run {} of {wanted} started; `riposte serve` takes it up (see `riposte run show {}`)",
            run.id, run.id
        );
        Ok(exit::OK)
    })
}

fn report(errors: Vec<LoadError>) -> anyhow::Error {
    anyhow::anyhow!("{}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))
}

pub fn run_runs(command: RunCommand) -> Result<u8> {
    match command {
        RunCommand::List(args) => {
            let config = args.config.load()?;
            let status = match &args.status {
                Some(text) => Some(text.parse::<RunStatus>().map_err(|reason| anyhow::anyhow!(reason))?),
                None => None,
            };
            runtime()?.block_on(async move {
                let store = open_store(&config).await?;
                let runs = store.runs(args.playbook.as_deref(), status, args.limit).await?;
                let mut out = std::io::stdout().lock();
                if runs.is_empty() {
                    writeln!(out, "no runs")?;
                }
                for run in runs {
                    writeln!(
                        out,
                        "{:<36} {:<10} {:<24} {}",
                        run.id,
                        run.status.as_str(),
                        run.playbook,
                        outcome_text(&run.outcome)
                    )?;
                }
                Ok(exit::OK)
            })
        }
        RunCommand::Show(args) => {
            let config = args.config.load()?;
            runtime()?.block_on(async move {
                let store = open_store(&config).await?;
                let run = store.run(&args.run).await?.with_context(|| format!("no run {}", args.run))?;
                let mut out = std::io::stdout().lock();
                writeln!(
                    out,
                    "run {} of {}: {} {}",
                    run.id,
                    run.playbook,
                    run.status.as_str(),
                    outcome_text(&run.outcome)
                )?;
                for step in store.run_steps(&run.id).await? {
                    let entry = &step.entry;
                    let detail = match step.state.as_str() {
                        "failed" => entry["error"].as_str().unwrap_or_default().to_owned(),
                        "waiting" if entry["output"].get("approvers").is_some() => {
                            format!(
                                "waits for {} : {}",
                                entry["output"]["approvers"],
                                entry["output"]["message"].as_str().unwrap_or_default()
                            )
                        }
                        _ => compact(&entry["output"]),
                    };
                    writeln!(out, "  {:<28} {:<8} {detail}", step.path, step.state)?;
                }
                for undo in store.pending_undos(Some(&run.id), None).await? {
                    writeln!(
                        out,
                        "  undo {:<23} {} {}",
                        undo.path,
                        undo.action,
                        undo.due_ms.map_or("(by hand)".to_owned(), |due| format!("due at {due}"))
                    )?;
                }
                Ok(exit::OK)
            })
        }
        RunCommand::Approve(args) => decide(args, true),
        RunCommand::Reject(args) => decide(args, false),
        RunCommand::Cancel(args) => {
            let config = args.config.load()?;
            runtime()?.block_on(async move {
                let runner = offline_runner(&config).await?;
                runner.cancel(&args.run, &user(&None)).await.map_err(|error| anyhow::anyhow!("{error}"))?;
                eprintln!("run {} cancelled", args.run);
                Ok(exit::OK)
            })
        }
        RunCommand::Undo(args) => {
            let config = args.config.load()?;
            runtime()?.block_on(async move {
                let store = open_store(&config).await?;
                let audit = Arc::new(AuditFiles::open(&config.data_dir).context("cannot open the audit key")?);
                let vault = riposte_connectors::Vault::open(&config.data_dir)?;
                let (runner, _, _) = Runner::new(
                    &config.playbooks,
                    store,
                    audit,
                    Arc::new(tokio::sync::Mutex::new(())),
                    Vec::new(),
                    Some(&vault),
                )
                .map_err(|error| anyhow::anyhow!("{error}"))?;
                let results = runner
                    .undo(&args.run, args.step.as_deref(), &user(&None))
                    .await
                    .map_err(|error| anyhow::anyhow!("{error}"))?;
                let mut failed = false;
                for (undo, result) in results {
                    match result {
                        Ok(_) => println!("undone  {} ({})", undo.path, undo.action),
                        Err(error) => {
                            failed = true;
                            println!("FAILED  {} ({}): {}", undo.path, undo.action, error.message);
                        }
                    }
                }
                Ok(if failed { exit::FINDINGS } else { exit::OK })
            })
        }
    }
}

async fn offline_runner(config: &Config) -> Result<Runner> {
    let store = open_store(config).await?;
    let audit = Arc::new(AuditFiles::open(&config.data_dir).context("cannot open the audit key")?);
    Runner::offline(&config.playbooks, store, audit, Arc::new(tokio::sync::Mutex::new(())))
        .map_err(|error| anyhow::anyhow!("{error}"))
}

fn decide(args: DecideArgs, approve: bool) -> Result<u8> {
    let config = args.config.load()?;
    runtime()?.block_on(async move {
        let runner = offline_runner(&config).await?;
        let by = user(&args.by);
        runner
            .decide(&args.run, &args.path, approve, &by, false, args.comment.as_deref())
            .await
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        eprintln!("{} {} of run {} as {by}", if approve { "approved" } else { "rejected" }, args.path, args.run);
        Ok(exit::OK)
    })
}

fn outcome_text(outcome: &Value) -> String {
    match outcome.get("error").and_then(Value::as_str) {
        Some(error) => error.to_owned(),
        None => String::new(),
    }
}

/// A value on one line, cut short.
fn compact(value: &Value) -> String {
    let text = if value.is_null() { String::new() } else { value.to_string() };
    if text.chars().count() > 100 { format!("{}…", text.chars().take(100).collect::<String>()) } else { text }
}
