//! EVTX decoding alone: every record of the attack samples in
//! `../shared/corpus/evtx`, read and flattened into events on one thread.
//! Run with `cargo bench -p riposte-ingest`.

use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use riposte_event::Event;
use riposte_ingest::{EvtxDecoder, EvtxFile, RecordError, Sink};

/// Counts what it is given and keeps nothing, so only decoding is measured.
#[derive(Default)]
struct Count {
    events: u64,
    fields: u64,
    skipped: u64,
}

impl Sink for Count {
    fn event(&mut self, event: &mut Event, _bytes: u64) {
        self.events += 1;
        self.fields += event.len() as u64;
    }

    fn skipped(&mut self, _error: RecordError) {
        self.skipped += 1;
    }
}

fn evtx_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable corpus") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            evtx_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "evtx") {
            out.push(path);
        }
    }
}

fn decode_all(files: &[EvtxFile], decoder: &mut EvtxDecoder, buffer: &mut Vec<u8>) -> Count {
    let mut sink = Count::default();
    for file in files {
        for index in 0..file.chunk_count() {
            if let Ok(true) = file.read_chunk(index, buffer) {
                decoder.decode_chunk(file.path(), index, std::mem::take(buffer), &mut sink);
            }
        }
    }
    sink
}

fn bench_evtx(c: &mut Criterion) {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/evtx");
    if !corpus.exists() {
        eprintln!("SKIPPED evtx decoding bench: {} is absent", corpus.display());
        return;
    }
    let mut paths = Vec::new();
    evtx_files(&corpus, &mut paths);
    paths.sort();
    let files: Vec<EvtxFile> = paths.iter().map(|path| EvtxFile::open(path).expect("EVTX file")).collect();
    let bytes: u64 = paths.iter().map(|path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)).sum();
    let mut decoder = EvtxDecoder::new();
    let mut buffer = Vec::new();
    let first = decode_all(&files, &mut decoder, &mut buffer);
    eprintln!(
        "evtx corpus: {} files, {} records, {} fields, {} skipped, {:.1} MiB",
        files.len(),
        first.events,
        first.fields,
        first.skipped,
        bytes as f64 / 1048576.0
    );

    let mut group = c.benchmark_group("decode");
    group.sample_size(20);
    group.throughput(Throughput::Elements(first.events));
    group.bench_function("evtx_corpus_events", |b| b.iter(|| decode_all(&files, &mut decoder, &mut buffer)));
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("evtx_corpus_bytes", |b| b.iter(|| decode_all(&files, &mut decoder, &mut buffer)));
    group.finish();
}

criterion_group!(benches, bench_evtx);
criterion_main!(benches);
