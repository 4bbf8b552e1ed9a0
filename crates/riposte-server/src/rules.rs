//! Loading rule sets: from directories (in parallel) or the built-in starter
//! pack, with the user's selection by level, status and tag.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use riposte_sigma::{
    Engine, EngineBuilder, LoadReport, Mapping, ParsedFile, Placeholders, RuleMeta, Status, parse_file,
};
use riposte_sigma::{Level, MAX_RULE_FILE_BYTES};

/// Why a rule set could not be loaded at all (a single bad rule is not an
/// error: it is reported in the load report and the others run).
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("cannot read rules at {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("cannot read mapping {path}: {error}")]
    ReadMapping { path: PathBuf, error: std::io::Error },
    #[error("invalid mapping {path}: {error}")]
    Mapping { path: PathBuf, error: riposte_sigma::MappingError },
    #[error("cannot read placeholders {path}: {error}")]
    ReadPlaceholders { path: PathBuf, error: std::io::Error },
    #[error("{path}: expected a map of placeholder names to lists of values ({reason})")]
    Placeholders { path: PathBuf, reason: String },
}

type Result<T, E = RulesError> = std::result::Result<T, E>;

/// The starter pack: original rules for common techniques, built in.
pub const STARTER_PACK: &[(&str, &str)] = &[
    ("proc_creation_mimikatz_commands.yml", include_str!("../rules/proc_creation_mimikatz_commands.yml")),
    (
        "proc_creation_powershell_encoded_command.yml",
        include_str!("../rules/proc_creation_powershell_encoded_command.yml"),
    ),
    (
        "proc_creation_powershell_download_cradle.yml",
        include_str!("../rules/proc_creation_powershell_download_cradle.yml"),
    ),
    ("proc_creation_certutil_download_decode.yml", include_str!("../rules/proc_creation_certutil_download_decode.yml")),
    ("proc_creation_shadow_copy_deletion.yml", include_str!("../rules/proc_creation_shadow_copy_deletion.yml")),
    ("proc_creation_net_user_add.yml", include_str!("../rules/proc_creation_net_user_add.yml")),
    ("proc_creation_schtasks_create.yml", include_str!("../rules/proc_creation_schtasks_create.yml")),
    ("proc_creation_regsvr32_scriptlet.yml", include_str!("../rules/proc_creation_regsvr32_scriptlet.yml")),
    ("proc_creation_mshta_script.yml", include_str!("../rules/proc_creation_mshta_script.yml")),
    ("proc_creation_comsvcs_minidump.yml", include_str!("../rules/proc_creation_comsvcs_minidump.yml")),
    ("proc_creation_psexec_service.yml", include_str!("../rules/proc_creation_psexec_service.yml")),
    ("proc_creation_wmic_remote_process.yml", include_str!("../rules/proc_creation_wmic_remote_process.yml")),
    ("proc_creation_domain_recon.yml", include_str!("../rules/proc_creation_domain_recon.yml")),
    ("proc_creation_office_spawns_shell.yml", include_str!("../rules/proc_creation_office_spawns_shell.yml")),
    ("proc_access_lsass_memory.yml", include_str!("../rules/proc_access_lsass_memory.yml")),
    ("win_security_log_cleared.yml", include_str!("../rules/win_security_log_cleared.yml")),
    ("win_system_log_cleared.yml", include_str!("../rules/win_system_log_cleared.yml")),
    ("win_system_suspicious_service_install.yml", include_str!("../rules/win_system_suspicious_service_install.yml")),
    ("win_security_kerberoasting_rc4.yml", include_str!("../rules/win_security_kerberoasting_rc4.yml")),
    ("win_security_dcsync.yml", include_str!("../rules/win_security_dcsync.yml")),
    ("win_security_pass_the_hash_logon.yml", include_str!("../rules/win_security_pass_the_hash_logon.yml")),
    ("win_security_privileged_group_change.yml", include_str!("../rules/win_security_privileged_group_change.yml")),
    ("registry_set_run_key_suspicious_target.yml", include_str!("../rules/registry_set_run_key_suspicious_target.yml")),
    ("file_event_lsass_dump_file.yml", include_str!("../rules/file_event_lsass_dump_file.yml")),
    ("ps_script_offensive_frameworks.yml", include_str!("../rules/ps_script_offensive_frameworks.yml")),
    (
        "network_connection_script_host_public_ip.yml",
        include_str!("../rules/network_connection_script_host_public_ip.yml"),
    ),
    ("create_remote_thread_into_lsass.yml", include_str!("../rules/create_remote_thread_into_lsass.yml")),
    ("pipe_created_c2_default_names.yml", include_str!("../rules/pipe_created_c2_default_names.yml")),
];

/// Which rules of a set to use.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Leave out rules below this level (rules with no level count as informational).
    pub min_level: Option<Level>,
    /// Keep only rules with one of these statuses; by default every status but
    /// deprecated and unsupported.
    pub statuses: Vec<Status>,
    /// Keep only rules with one of these tags (`attack.t1059` also selects
    /// `attack.t1059.001`).
    pub tags: Vec<String>,
    /// Rules turned off (through the API), by id.
    pub disabled: std::collections::BTreeSet<String>,
}

impl Selection {
    /// `Ok` to keep a rule, or why it is left out.
    pub fn check(&self, meta: &RuleMeta) -> Result<(), String> {
        if meta.id.as_ref().is_some_and(|id| self.disabled.contains(id)) {
            return Err("disabled".into());
        }
        let level = meta.level.unwrap_or(Level::Informational);
        if let Some(min_level) = self.min_level
            && level < min_level
        {
            return Err(format!("level {level} is below --min-level {min_level}"));
        }
        match (meta.status, self.statuses.is_empty()) {
            (Some(status @ (Status::Deprecated | Status::Unsupported)), true) => {
                return Err(format!("status {status} (name it with --status to use it)"));
            }
            (status, false) if !status.is_some_and(|status| self.statuses.contains(&status)) => {
                let status = status.map_or("none".to_owned(), |status| status.to_string());
                return Err(format!("status {status} is not one of --status"));
            }
            _ => {}
        }
        if !self.tags.is_empty() {
            let wanted = |tag: &String| {
                self.tags.iter().any(|selected| {
                    let selected = selected.to_ascii_lowercase();
                    let tag = tag.to_ascii_lowercase();
                    tag == selected || tag.strip_prefix(&selected).is_some_and(|rest| rest.starts_with('.'))
                })
            };
            if !meta.tags.iter().any(wanted) {
                return Err("no tag matches --tag".into());
            }
        }
        Ok(())
    }
}

/// Where rules come from, and how to read them.
#[derive(Clone, Debug, Default)]
pub struct RuleOptions {
    /// Rule directories or files; empty means the starter pack.
    pub paths: Vec<PathBuf>,
    /// A log-source mapping file replacing the built-in one.
    pub mapping: Option<PathBuf>,
    /// A YAML file of placeholder values for the `expand` modifier.
    pub placeholders: Option<PathBuf>,
    pub selection: Selection,
}

/// A loaded rule set.
pub struct LoadedRules {
    pub engine: Engine,
    pub report: LoadReport,
    /// Rule files read.
    pub files: usize,
    pub elapsed: Duration,
}

/// Every rule file under `paths` (files as given, directories recursively).
pub fn rule_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path).map_err(|error| RulesError::Read { path: path.clone(), error })?;
        if !metadata.is_dir() {
            files.push(path.clone());
            continue;
        }
        let mut found = Vec::new();
        collect_yaml(path, &mut found).map_err(|error| RulesError::Read { path: path.clone(), error })?;
        // By bytes: comparing paths component by component is much slower,
        // and any fixed order will do.
        found.sort_unstable_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
        files.extend(found);
    }
    Ok(files)
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_dir() {
            collect_yaml(&path, out)?;
        } else if kind.is_file() && path.extension().is_some_and(|ext| ext == "yml" || ext == "yaml") {
            out.push(path);
        }
    }
    Ok(())
}

pub fn load_mapping(path: Option<&Path>) -> Result<Mapping> {
    match path {
        None => Ok(Mapping::builtin()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|error| RulesError::ReadMapping { path: path.to_path_buf(), error })?;
            Mapping::from_yaml(&text).map_err(|error| RulesError::Mapping { path: path.to_path_buf(), error })
        }
    }
}

pub fn load_placeholders(path: Option<&Path>) -> Result<Placeholders> {
    let Some(path) = path else { return Ok(Placeholders::new()) };
    let text = std::fs::read_to_string(path)
        .map_err(|error| RulesError::ReadPlaceholders { path: path.to_path_buf(), error })?;
    serde_saphyr::from_str(&text)
        .map_err(|error| RulesError::Placeholders { path: path.to_path_buf(), reason: error.to_string() })
}

fn read_and_parse(path: &Path, placeholders: &Placeholders) -> ParsedFile {
    let name = path.display().to_string();
    let unreadable = |reason: String| ParsedFile {
        errors: vec![riposte_sigma::LoadError {
            file: name.clone(),
            line: None,
            rule_id: None,
            rule_title: None,
            reason,
        }],
        ..ParsedFile::default()
    };
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.len() > MAX_RULE_FILE_BYTES as u64 => {
            return unreadable(format!("file is larger than {MAX_RULE_FILE_BYTES} bytes"));
        }
        Err(error) => return unreadable(format!("cannot read: {error}")),
        Ok(_) => {}
    }
    match std::fs::read_to_string(path) {
        Ok(text) => parse_file(&name, &text, placeholders),
        Err(error) => unreadable(format!("cannot read: {error}")),
    }
}

/// Loads the rules `options` name (reading and parsing files on all cores).
pub fn load(options: &RuleOptions) -> Result<LoadedRules> {
    let started = Instant::now();
    let mapping = load_mapping(options.mapping.as_deref())?;
    let placeholders = load_placeholders(options.placeholders.as_deref())?;
    let mut builder = EngineBuilder::new(mapping).with_placeholders(placeholders);
    let files = if options.paths.is_empty() {
        for (name, text) in STARTER_PACK {
            builder.add_file(&format!("builtin:{name}"), text);
        }
        STARTER_PACK.len()
    } else {
        let paths = rule_files(&options.paths)?;
        let placeholders = builder.placeholders();
        let parsed: Vec<ParsedFile> = paths.par_iter().map(|path| read_and_parse(path, placeholders)).collect();
        for file in parsed {
            builder.add(file);
        }
        paths.len()
    };
    let (engine, report) = builder.build(|meta| options.selection.check(meta));
    Ok(LoadedRules { engine, report, files, elapsed: started.elapsed() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(level: Option<Level>, status: Option<Status>, tags: &[&str]) -> RuleMeta {
        RuleMeta { level, status, tags: tags.iter().map(|tag| tag.to_string()).collect(), ..RuleMeta::default() }
    }

    #[test]
    fn selection_by_level_status_and_tag() {
        let default = Selection::default();
        assert!(default.check(&meta(None, None, &[])).is_ok());
        assert!(default.check(&meta(None, Some(Status::Deprecated), &[])).unwrap_err().contains("--status"));
        let high = Selection { min_level: Some(Level::High), ..Selection::default() };
        assert!(high.check(&meta(Some(Level::Critical), None, &[])).is_ok());
        assert!(high.check(&meta(Some(Level::Medium), None, &[])).unwrap_err().contains("below --min-level high"));
        assert!(high.check(&meta(None, None, &[])).is_err());
        let stable = Selection { statuses: vec![Status::Stable, Status::Deprecated], ..Selection::default() };
        assert!(stable.check(&meta(None, Some(Status::Stable), &[])).is_ok());
        assert!(stable.check(&meta(None, Some(Status::Deprecated), &[])).is_ok());
        assert!(stable.check(&meta(None, Some(Status::Test), &[])).is_err());
        assert!(stable.check(&meta(None, None, &[])).is_err());
        let tagged = Selection { tags: vec!["attack.t1059".into()], ..Selection::default() };
        assert!(tagged.check(&meta(None, None, &["attack.t1059.001"])).is_ok());
        assert!(tagged.check(&meta(None, None, &["attack.T1059"])).is_ok());
        assert!(tagged.check(&meta(None, None, &["attack.t10590"])).is_err());
    }

    #[test]
    fn starter_pack_loads_completely() {
        let loaded = load(&RuleOptions::default()).unwrap();
        assert!(loaded.report.errors.is_empty(), "{:?}", loaded.report.errors);
        assert!(loaded.report.warnings.is_empty(), "{:?}", loaded.report.warnings);
        assert_eq!(loaded.engine.rules().len(), STARTER_PACK.len());
        assert_eq!(loaded.report.unmapped, 0, "every starter rule has a mapped log source");
        for rule in loaded.engine.rules() {
            assert!(
                rule.meta.level.is_some() && rule.meta.status.is_some() && rule.meta.id.is_some(),
                "{}",
                rule.meta.title
            );
            assert!(!rule.meta.techniques.is_empty(), "{} names no technique", rule.meta.title);
            assert!(rule.meta.techniques.iter().all(|technique| technique.name.is_some()), "{}", rule.meta.title);
        }
    }
}
