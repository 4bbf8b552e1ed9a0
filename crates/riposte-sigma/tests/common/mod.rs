//! Helpers shared by the integration tests: finding the corpus, loading rules.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use riposte_sigma::{Engine, EngineBuilder, LoadReport, Mapping, parse_file};

/// `../shared/corpus/<relative>` from the repository root, if present.
pub fn corpus(relative: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus").join(relative);
    root.exists().then_some(root)
}

/// The corpus path or a skip message (the test then returns early).
pub fn corpus_or_skip(relative: &str, test: &str) -> Option<PathBuf> {
    let found = corpus(relative);
    if found.is_none() {
        eprintln!("SKIPPED {test}: ../shared/corpus/{relative} is absent");
    }
    found
}

/// Every `.yml` file under `dir`, sorted.
pub fn rule_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable rule directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "yml" || ext == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Loads every rule under `dirs` into an engine.
pub fn load(dirs: &[PathBuf]) -> (Engine, LoadReport) {
    let mut builder = EngineBuilder::new(Mapping::builtin());
    for dir in dirs {
        for file in rule_files(dir) {
            let text = std::fs::read_to_string(&file).expect("readable rule");
            let parsed = parse_file(&file.display().to_string(), &text, builder.placeholders());
            builder.add(parsed);
        }
    }
    builder.build(|_| Ok(()))
}
