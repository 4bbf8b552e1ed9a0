//! Which files to read, and as what.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use crate::dialect::Dialect;
use crate::error::IngestError;

/// How a file's records are encoded.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// Windows event log.
    Evtx,
    /// JSON lines, NDJSON, or JSON documents (objects, arrays of objects).
    Json,
    /// Zeek's tab-separated logs (`#separator` header).
    Zeek,
    /// ArcSight CEF records, one a line.
    Cef,
    /// Linux audit logs.
    Auditd,
    /// Syslog lines (RFC 5424 or 3164), CEF messages included.
    Syslog,
}

/// What the user asked the inputs to be read as.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum FormatChoice {
    /// Recognise each file by its first bytes.
    #[default]
    Auto,
    Evtx,
    Json,
    Zeek,
    Cef,
    Auditd,
    Syslog,
    /// JSON records of one tool, read as its whatever their shape.
    JsonOf(Dialect),
}

/// A file to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    pub path: PathBuf,
    pub format: Format,
    /// Compressed with gzip (not EVTX).
    pub gzip: bool,
    /// Size on disk, in bytes.
    pub size: u64,
    /// The tool whose JSON records these are, when the user said so
    /// (otherwise records are recognised by their shape).
    pub dialect: Option<Dialect>,
}

/// The inputs found under the paths given.
#[derive(Debug, Default)]
pub struct Discovery {
    pub inputs: Vec<Input>,
    /// Paths that could not be read or recognised.
    pub errors: Vec<IngestError>,
    /// Files met while walking directories that are not logs (images, scripts...).
    pub ignored: usize,
}

const EVTX_MAGIC: &[u8] = b"ElfFile\0";
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];

/// What a file's first bytes say it is (`gunzipped`: the first bytes of
/// its content, when it is gzip).
fn sniff(head: &[u8], gunzipped: Option<&[u8]>) -> Option<(Format, bool)> {
    if head.starts_with(EVTX_MAGIC) {
        return Some((Format::Evtx, false));
    }
    if head.starts_with(GZIP_MAGIC) {
        // Compressed JSON was the only compressed input before content sniffing.
        return Some((gunzipped.and_then(sniff_text).unwrap_or(Format::Json), true));
    }
    sniff_text(head).map(|format| (format, false))
}

/// A line as syslog daemons write files: `Nov 29 10:00:00 host tag: ...`,
/// or an RFC 3339 time, a host and `tag:`.
fn syslog_file_line(line: &[u8]) -> bool {
    const MONTHS: [&[u8]; 12] =
        [b"Jan ", b"Feb ", b"Mar ", b"Apr ", b"May ", b"Jun ", b"Jul ", b"Aug ", b"Sep ", b"Oct ", b"Nov ", b"Dec "];
    let bsd = MONTHS.iter().any(|month| line.starts_with(month))
        && line.len() > 16
        && line[9] == b':'
        && line[12] == b':'
        && line[15] == b' ';
    let iso = line.len() > 20
        && line[..4].iter().all(u8::is_ascii_digit)
        && line[4] == b'-'
        && line[10] == b'T'
        && line.split(|byte| *byte == b' ').nth(2).is_some_and(|tag| tag.ends_with(b":") || tag.contains(&b'['));
    bsd || iso
}

/// What the first bytes of a text log say it is.
fn sniff_text(head: &[u8]) -> Option<Format> {
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let start = text.iter().position(|byte| !byte.is_ascii_whitespace())?;
    let text = &text[start..];
    let first_line = text.split(|byte| *byte == b'\n').next().unwrap_or(text);
    let syslog_priority = text.strip_prefix(b"<").is_some_and(|rest| {
        let digits = rest.iter().take_while(|byte| byte.is_ascii_digit()).count();
        (1..=3).contains(&digits) && rest.get(digits) == Some(&b'>')
    });
    match text[0] {
        b'{' | b'[' => Some(Format::Json),
        _ if text.starts_with(b"#separator") => Some(Format::Zeek),
        _ if text.starts_with(b"CEF:") => Some(Format::Cef),
        _ if text.starts_with(b"type=") && memchr::memmem::find(first_line, b" msg=audit(").is_some() => {
            Some(Format::Auditd)
        }
        _ if text.starts_with(b"node=") && memchr::memmem::find(first_line, b" type=").is_some() => {
            Some(Format::Auditd)
        }
        _ if syslog_priority || syslog_file_line(first_line) => Some(Format::Syslog),
        _ => None,
    }
}

fn read_head(path: &Path) -> Result<(Vec<u8>, u64), IngestError> {
    let mut file = File::open(path).map_err(|error| IngestError::io(path, error))?;
    let size = file.metadata().map_err(|error| IngestError::io(path, error))?.len();
    let mut head = Vec::with_capacity(512);
    file.by_ref().take(512).read_to_end(&mut head).map_err(|error| IngestError::io(path, error))?;
    Ok((head, size))
}

/// The first bytes of a gzip file's content (none when it cannot be read).
fn read_gunzipped_head(path: &Path) -> Option<Vec<u8>> {
    let file = File::open(path).ok()?;
    let mut head = Vec::with_capacity(512);
    flate2::read::MultiGzDecoder::new(file).take(512).read_to_end(&mut head).ok()?;
    Some(head)
}

/// Extensions of JSON logs picked up in directory walks (also with `.gz`);
/// other JSON files (notebooks, configuration) are not events.
const JSON_EXTENSIONS: &[&str] = &["json", "jsonl", "ndjson", "log"];

fn has_json_extension(path: &Path) -> bool {
    let name = path.file_name().map(|name| name.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    JSON_EXTENSIONS.iter().any(|extension| name.ends_with(&format!(".{extension}")))
}

fn has_evtx_extension(path: &Path) -> bool {
    path.extension().is_some_and(|extension| extension.eq_ignore_ascii_case("evtx"))
}

/// Recognises one file. `named`: the user named it (not found in a walk), so an
/// unrecognised file is an error rather than ignored.
fn classify(path: &Path, choice: FormatChoice, named: bool) -> Result<Option<Input>, IngestError> {
    let (head, size) = read_head(path)?;
    let gzip = head.starts_with(GZIP_MAGIC);
    let gunzipped = if gzip { read_gunzipped_head(path) } else { None };
    // In a walk, JSON needs a log's extension (other JSON files are not
    // events); the other formats are recognised by content alone.
    let sniffed = sniff(&head, gunzipped.as_deref())
        .filter(|(format, _)| named || *format != Format::Json || has_json_extension(path));
    let format = match choice {
        FormatChoice::Evtx => Some(Format::Evtx),
        FormatChoice::Json => Some(Format::Json),
        FormatChoice::Zeek => Some(Format::Zeek),
        FormatChoice::Cef => Some(Format::Cef),
        FormatChoice::Auditd => Some(Format::Auditd),
        FormatChoice::Syslog => Some(Format::Syslog),
        FormatChoice::JsonOf(_) => Some(Format::Json),
        FormatChoice::Auto => sniffed.map(|(format, _)| format),
    };
    let dialect = match choice {
        FormatChoice::JsonOf(dialect) => Some(dialect),
        _ => None,
    };
    match format {
        // An empty file named by the user is an input with nothing in it.
        Some(format) => {
            Ok(Some(Input { path: path.to_path_buf(), format, gzip: gzip && format != Format::Evtx, size, dialect }))
        }
        None if named && size > 0 => Err(IngestError::UnknownFormat { path: path.to_path_buf() }),
        // A log by its name that is not one by its content is damage worth
        // naming, even in a walk.
        None if size > 0 && has_evtx_extension(path) => {
            Err(IngestError::NotEvtx { path: path.to_path_buf(), reason: "no ElfFile signature".into() })
        }
        None if named => {
            Ok(Some(Input { path: path.to_path_buf(), format: Format::Json, gzip: false, size, dialect: None }))
        }
        None => Ok(None),
    }
}

/// Finds the inputs under `paths`: files as given, directories walked
/// recursively (in name order, symbolic links not followed, hidden entries
/// left out).
pub fn discover(paths: &[PathBuf], choice: FormatChoice) -> Discovery {
    let mut discovery = Discovery::default();
    for path in paths {
        let metadata = match std::fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(error) => {
                discovery.errors.push(IngestError::io(path, error));
                continue;
            }
        };
        if !metadata.is_dir() {
            match classify(path, choice, true) {
                Ok(Some(input)) => discovery.inputs.push(input),
                Ok(None) => discovery.ignored += 1,
                Err(error) => discovery.errors.push(error),
            }
            continue;
        }
        // Hidden files and directories (`.git`, `.vscode`) are not logs.
        let visible =
            |entry: &walkdir::DirEntry| entry.depth() == 0 || !entry.file_name().to_string_lossy().starts_with('.');
        for entry in WalkDir::new(path).follow_links(false).sort_by_file_name().into_iter().filter_entry(visible) {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    let at = error.path().unwrap_or(path).to_path_buf();
                    discovery.errors.push(IngestError::io(at, error.into()));
                    continue;
                }
            };
            if !entry.file_type().is_file() {
                continue;
            }
            // In a walk, EVTX files are recognised by content whatever the choice;
            // other files only when they look like JSON.
            let choice = if choice == FormatChoice::Evtx { FormatChoice::Auto } else { choice };
            match classify(entry.path(), choice, false) {
                Ok(Some(input)) => discovery.inputs.push(input),
                Ok(None) => discovery.ignored += 1,
                Err(error) => discovery.errors.push(error),
            }
        }
    }
    discovery
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_files_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, bytes).unwrap();
            path
        };
        write("a/log.evtx", b"ElfFile\0rest");
        write("a/b/events.jsonl", b"{\"a\":1}\n");
        write("a/b/doc.json", b"  [ {\"a\":1} ]");
        write("a/b/events.json.gz", &[0x1f, 0x8b, 8, 0]);
        write("a/readme.md", b"# notes");
        write("a/picture.png", &[0x89, b'P', b'N', b'G']);
        write("a/notebook.ipynb", b"{\"cells\": []}");
        write("a/damaged.evtx", b"not an event log");
        write("a/.vscode/settings.json", b"{\"editor\": 1}");
        let found = discover(&[dir.path().join("a")], FormatChoice::Auto);
        assert_eq!(found.errors.len(), 1, "{:?}", found.errors);
        assert!(found.errors[0].to_string().contains("damaged.evtx"), "{}", found.errors[0]);
        let names: Vec<(String, Format, bool)> = found
            .inputs
            .iter()
            .map(|input| (input.path.file_name().unwrap().to_string_lossy().into_owned(), input.format, input.gzip))
            .collect();
        assert_eq!(
            names,
            [
                ("doc.json".to_owned(), Format::Json, false),
                ("events.json.gz".to_owned(), Format::Json, true),
                ("events.jsonl".to_owned(), Format::Json, false),
                ("log.evtx".to_owned(), Format::Evtx, false),
            ]
        );
        assert_eq!(found.ignored, 3, "a JSON notebook in a walk is not a log");
        // A file the user names must be something we can read.
        let named = discover(&[dir.path().join("a/readme.md")], FormatChoice::Auto);
        assert!(matches!(named.errors[0], IngestError::UnknownFormat { .. }));
        assert!(named.errors[0].to_string().contains("--input-format"));
        let missing = discover(&[dir.path().join("nope")], FormatChoice::Auto);
        assert!(matches!(missing.errors[0], IngestError::Io { .. }));
        let forced = discover(&[dir.path().join("a/readme.md")], FormatChoice::Json);
        assert_eq!(forced.inputs[0].format, Format::Json);
    }
}
