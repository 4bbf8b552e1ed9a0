//! `riposte rules update`: the latest SigmaHQ rule release, downloaded and
//! unpacked with limits on size and on where files may go.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use zip::ZipArchive;

use crate::exit;

pub const DEFAULT_URL: &str = "https://github.com/SigmaHQ/sigma/releases/latest/download/sigma_all_rules.zip";
pub const DEFAULT_DIR: &str = "riposte-data/sigma";

/// Largest archive downloaded.
pub const MAX_DOWNLOAD_BYTES: u64 = 256 << 20;
/// Most entries an archive may hold.
pub const MAX_ENTRIES: usize = 100_000;
/// Largest single file unpacked.
pub const MAX_FILE_BYTES: u64 = 4 << 20;
/// Most bytes unpacked in all.
pub const MAX_UNPACKED_BYTES: u64 = 1 << 30;

/// What an unpacked archive held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Unpacked {
    pub files: usize,
    pub rules: usize,
    pub bytes: u64,
}

pub fn run(url: &str, dir: &Path) -> Result<u8> {
    let archive = download(url)?;
    let unpacked = unpack(&archive, dir)?;
    println!(
        "downloaded {:.1} MiB from {url}; unpacked {} files ({} rules) into {}",
        archive.len() as f64 / (1024.0 * 1024.0),
        unpacked.files,
        unpacked.rules,
        dir.display()
    );
    println!("hunt with them: riposte hunt PATH --rules {}", dir.display());
    Ok(exit::OK)
}

/// Downloads `url` into memory, refusing more than [`MAX_DOWNLOAD_BYTES`].
pub fn download(url: &str) -> Result<Vec<u8>> {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        bail!("{url}: only http and https URLs can be downloaded");
    }
    // One crypto provider for the whole process (ring); installing twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the download runtime")?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .user_agent(concat!("riposte/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(20))
            .timeout(Duration::from_secs(600))
            .build()
            .context("cannot build the HTTP client")?;
        let mut response = client.get(url).send().await.with_context(|| format!("cannot download {url}"))?;
        let status = response.status();
        if !status.is_success() {
            bail!("{url}: the server answered {status}");
        }
        if let Some(length) = response.content_length()
            && length > MAX_DOWNLOAD_BYTES
        {
            bail!("{url}: the archive is {length} bytes, more than the {MAX_DOWNLOAD_BYTES} allowed");
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.with_context(|| format!("download of {url} was interrupted"))? {
            if body.len() as u64 + chunk.len() as u64 > MAX_DOWNLOAD_BYTES {
                bail!("{url}: the archive is larger than the {MAX_DOWNLOAD_BYTES} bytes allowed");
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    })
}

/// Unpacks a zip archive into `dir`, replacing it only once every entry has
/// been checked and written. Entries that would land outside `dir`, links,
/// and archives over the limits are refused as a whole.
pub fn unpack(archive: &[u8], dir: &Path) -> Result<Unpacked> {
    let mut zip = ZipArchive::new(Cursor::new(archive)).context("the download is not a zip archive")?;
    if zip.len() > MAX_ENTRIES {
        bail!("the archive has {} entries, more than the {MAX_ENTRIES} allowed", zip.len());
    }
    let parent = match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let name = dir.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_else(|| "sigma".into());
    let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).with_context(|| format!("cannot clear {}", staging.display()))?;
    }
    let result = unpack_into(&mut zip, &staging);
    let unpacked = match result {
        Ok(unpacked) => unpacked,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(error);
        }
    };
    // Swap the new rules in: the old directory goes only once the new one is whole.
    let previous = parent.join(format!(".{name}.previous-{}", std::process::id()));
    if dir.exists() {
        std::fs::rename(dir, &previous).with_context(|| format!("cannot move the old {} aside", dir.display()))?;
    }
    if let Err(error) = std::fs::rename(&staging, dir) {
        if previous.exists() {
            let _ = std::fs::rename(&previous, dir);
        }
        return Err(error).with_context(|| format!("cannot put the new rules in {}", dir.display()));
    }
    if previous.exists() {
        std::fs::remove_dir_all(&previous)
            .with_context(|| format!("cannot remove the old rules at {}", previous.display()))?;
    }
    Ok(unpacked)
}

fn unpack_into(zip: &mut ZipArchive<Cursor<&[u8]>>, staging: &Path) -> Result<Unpacked> {
    std::fs::create_dir_all(staging).with_context(|| format!("cannot create {}", staging.display()))?;
    let mut unpacked = Unpacked::default();
    for index in 0..zip.len() {
        let mut entry = zip.by_index(index).context("corrupt archive entry")?;
        let raw_name = entry.name().context("archive entry with an unreadable name")?.into_owned();
        // Absolute names (`/etc/x`, `C:\x`) never occur in a genuine release.
        let absolute = raw_name.starts_with(['/', '\\']) || raw_name.as_bytes().get(1) == Some(&b':');
        let Some(relative) = entry.enclosed_name().filter(|_| !absolute) else {
            bail!("archive entry {raw_name:?} would be written outside the rules directory; archive refused");
        };
        if entry.is_symlink() {
            bail!("archive entry {raw_name:?} is a link; archive refused");
        }
        let target = staging.join(&relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&target).with_context(|| format!("cannot create {}", target.display()))?;
            continue;
        }
        if entry.size() > MAX_FILE_BYTES {
            bail!("archive entry {raw_name:?} is {} bytes, more than the {MAX_FILE_BYTES} allowed", entry.size());
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        // Sizes in headers can lie: count what decompression really yields.
        let mut content = Vec::new();
        entry
            .by_ref()
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut content)
            .with_context(|| format!("cannot unpack {raw_name:?}"))?;
        if content.len() as u64 > MAX_FILE_BYTES {
            bail!("archive entry {raw_name:?} unpacks to more than the {MAX_FILE_BYTES} bytes allowed");
        }
        unpacked.bytes += content.len() as u64;
        if unpacked.bytes > MAX_UNPACKED_BYTES {
            bail!("the archive unpacks to more than the {MAX_UNPACKED_BYTES} bytes allowed");
        }
        std::fs::write(&target, &content).with_context(|| format!("cannot write {}", target.display()))?;
        unpacked.files += 1;
        if target.extension().is_some_and(|ext| ext == "yml" || ext == "yaml") {
            unpacked.rules += 1;
        }
    }
    Ok(unpacked)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, content) in entries {
            writer.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            writer.write_all(content).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    #[test]
    fn unpacks_and_replaces_the_directory() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("sigma");
        std::fs::create_dir_all(dir.join("old")).unwrap();
        std::fs::write(dir.join("old/stale.yml"), "x").unwrap();
        let archive =
            zip_of(&[("rules/windows/a.yml", b"title: a"), ("rules/b.yaml", b"title: b"), ("LICENSE", b"DRL")]);
        let unpacked = unpack(&archive, &dir).unwrap();
        assert_eq!(unpacked, Unpacked { files: 3, rules: 2, bytes: 19 });
        assert_eq!(std::fs::read_to_string(dir.join("rules/windows/a.yml")).unwrap(), "title: a");
        assert!(!dir.join("old").exists(), "the old rules are gone");
        let leftovers: Vec<_> =
            std::fs::read_dir(root.path()).unwrap().map(|entry| entry.unwrap().file_name()).collect();
        assert_eq!(leftovers, ["sigma"], "no staging directory is left behind");
    }

    #[test]
    fn refuses_entries_outside_the_directory() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("sigma");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("keep.yml"), "kept").unwrap();
        for evil in ["../evil.yml", "/etc/evil.yml", "rules/../../evil.yml"] {
            let archive = zip_of(&[("rules/ok.yml", b"ok"), (evil, b"evil")]);
            let error = unpack(&archive, &dir).unwrap_err().to_string();
            assert!(error.contains("outside the rules directory"), "{evil}: {error}");
        }
        assert!(!root.path().join("evil.yml").exists());
        assert_eq!(std::fs::read_to_string(dir.join("keep.yml")).unwrap(), "kept", "a refused archive changes nothing");
    }

    #[test]
    fn refuses_oversized_entries_and_garbage() {
        let root = tempfile::tempdir().unwrap();
        let big = vec![b'a'; (MAX_FILE_BYTES + 1) as usize];
        let error = unpack(&zip_of(&[("big.yml", &big)]), &root.path().join("sigma")).unwrap_err();
        assert!(error.to_string().contains("more than"), "{error}");
        assert!(unpack(b"not a zip", &root.path().join("sigma")).unwrap_err().to_string().contains("not a zip"));
        assert!(download("ftp://example.org/x.zip").unwrap_err().to_string().contains("only http"));
    }
}
