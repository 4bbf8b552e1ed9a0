//! Helpers shared by the integration tests of `riposte`.

#![allow(dead_code)]

pub mod dovecot;

use std::path::{Path, PathBuf};

use riposte::rules::{self, LoadedRules, RuleOptions, Selection};
use riposte_event::Event;
use riposte_ingest::{Collect, EvtxDecoder, EvtxFile, Format, Input, JsonReader};
use riposte_sigma::Status;

/// `../shared/corpus/<relative>` from the repository root, if present.
pub fn corpus(relative: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus").join(relative);
    path.exists().then(|| path.canonicalize().expect("corpus path"))
}

/// The corpus path, or `None` after saying the test is skipped.
pub fn corpus_or_skip(relative: &str, test: &str) -> Option<PathBuf> {
    let found = corpus(relative);
    if found.is_none() {
        eprintln!("SKIPPED {test}: ../shared/corpus/{relative} is absent");
    }
    found
}

/// Loads rules from directories, every status included.
pub fn load_rules(dirs: &[PathBuf]) -> LoadedRules {
    let options = RuleOptions {
        paths: dirs.to_vec(),
        selection: Selection { statuses: Status::ALL.to_vec(), ..Selection::default() },
        ..RuleOptions::default()
    };
    rules::load(&options).expect("rules load")
}

/// Every event of an EVTX file, in file order.
pub fn evtx_events(path: &Path) -> Collect {
    let file = EvtxFile::open(path).expect("EVTX file");
    let mut decoder = EvtxDecoder::new();
    let mut sink = Collect::default();
    let mut buffer = Vec::new();
    for index in 0..file.chunk_count() {
        match file.read_chunk(index, &mut buffer) {
            Ok(true) => {
                decoder.decode_chunk(path, index, std::mem::take(&mut buffer), &mut sink);
            }
            Ok(false) => {}
            Err(error) => sink.skipped.push(error),
        }
    }
    sink
}

/// Every event of a JSON file.
pub fn json_events(path: &Path) -> Collect {
    let input = Input { path: path.to_path_buf(), format: Format::Json, gzip: false, size: 0, dialect: None };
    let mut sink = Collect::default();
    JsonReader::default().read(&input, &mut sink).expect("JSON file");
    sink
}

/// Every `.evtx` file under `dir`, sorted.
pub fn evtx_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable directory") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "evtx") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Ids of the rules `events` match, one entry per (event, rule).
pub fn matched_ids(loaded: &LoadedRules, events: &mut [Event]) -> Vec<Vec<String>> {
    let mut scratch = loaded.engine.new_scratch();
    let mut matched = Vec::new();
    events
        .iter_mut()
        .map(|event| {
            loaded.engine.matches(event, &mut scratch, &mut matched);
            matched.iter().filter_map(|&rule| loaded.engine.rule(rule).meta.id.clone()).collect()
        })
        .collect()
}
