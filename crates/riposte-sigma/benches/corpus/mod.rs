//! The corpus as the matcher's bench and the `match_passes` example read
//! it: rule files and EVTX records, found under a folder and sorted.

use std::path::{Path, PathBuf};

use riposte_event::Event;
use riposte_ingest::{Collect, EvtxDecoder, EvtxFile};
use riposte_sigma::{Engine, EngineBuilder, Mapping};

pub fn files_under(dir: &Path, extension: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable corpus") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files_under(&path, extension, out);
        } else if path.extension().is_some_and(|ext| ext == extension) {
            out.push(path);
        }
    }
}

pub fn sorted_files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    files_under(dir, extension, &mut files);
    files.sort();
    files
}

/// Rule files as (name, text), read once so loading is measured without the disk.
pub fn read_rules(paths: &[PathBuf]) -> Vec<(String, String)> {
    paths.iter().map(|path| (path.display().to_string(), std::fs::read_to_string(path).expect("rule file"))).collect()
}

pub fn build(rules: &[(String, String)]) -> Engine {
    let mut builder = EngineBuilder::new(Mapping::builtin());
    for (name, text) in rules {
        builder.add_file(name, text);
    }
    builder.build(|_| Ok(())).0
}

pub fn decode(corpus: &Path) -> Vec<Event> {
    let mut decoder = EvtxDecoder::new();
    let mut sink = Collect::default();
    let mut buffer = Vec::new();
    for path in sorted_files(corpus, "evtx") {
        let file = EvtxFile::open(&path).expect("EVTX file");
        for index in 0..file.chunk_count() {
            if let Ok(true) = file.read_chunk(index, &mut buffer) {
                decoder.decode_chunk(&path, index, std::mem::take(&mut buffer), &mut sink);
            }
        }
    }
    sink.events
}
