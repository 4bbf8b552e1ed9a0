//! What an attachment really is, by its first bytes rather than its name.

/// The kinds of content that matter for phishing and malware.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// A Windows (MZ) or Linux (ELF) program, or a Mach-O one.
    Executable,
    /// An Office document in the old format (OLE) holding VBA macros.
    OfficeWithMacros,
    /// An Office Open XML document (zip) holding `vbaProject.bin`.
    OpenXmlWithMacros,
    /// A zip whose entries are encrypted (the password is usually in the mail).
    EncryptedArchive,
    Archive,
    /// An ISO 9660 disk image (mounts as a drive, bypassing mark-of-the-web).
    DiskImage,
    /// A Windows shortcut.
    Shortcut,
    Html,
    Pdf,
    Other,
}

/// Sniffs `bytes`.
pub fn sniff(bytes: &[u8]) -> Content {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if starts(b"MZ") || starts(b"\x7fELF") || starts(&[0xcf, 0xfa, 0xed, 0xfe]) || starts(&[0xca, 0xfe, 0xba, 0xbe]) {
        return Content::Executable;
    }
    if starts(&[0x4c, 0x00, 0x00, 0x00, 0x01, 0x14, 0x02, 0x00]) {
        return Content::Shortcut;
    }
    if starts(&[0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]) {
        // OLE: macros live in a `_VBA_PROJECT` stream (its name in UTF-16).
        let marker = "_VBA_PROJECT".encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>();
        return if contains(bytes, &marker) { Content::OfficeWithMacros } else { Content::Other };
    }
    if starts(b"PK\x03\x04") {
        // Local file header flag bit 0: the entry is encrypted.
        if bytes.len() > 8 && bytes[6] & 1 == 1 {
            return Content::EncryptedArchive;
        }
        if contains(bytes, b"vbaProject.bin") {
            return Content::OpenXmlWithMacros;
        }
        return Content::Archive;
    }
    if starts(b"Rar!\x1a\x07") || starts(b"7z\xbc\xaf\x27\x1c") || starts(&[0x1f, 0x8b]) {
        return Content::Archive;
    }
    if bytes.len() > 0x8006 && &bytes[0x8001..0x8006] == b"CD001" {
        return Content::DiskImage;
    }
    if starts(b"%PDF-") {
        return Content::Pdf;
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_ascii_lowercase();
    if head.contains("<html") || head.contains("<!doctype html") || head.contains("<form") || head.contains("<script") {
        return Content::Html;
    }
    Content::Other
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// What a zip holds, read from its directory (names and sizes, no data
/// inflated) and, for zips inside it, one level further when their size and
/// compression ratio are within bounds: a zip bomb is named, not opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchiveContents {
    /// Entry names, nested ones as `outer.zip/inner.exe`.
    pub names: Vec<String>,
    pub encrypted: bool,
    /// Why part of it was not read.
    pub cut: Vec<String>,
}

/// Largest inflated size of a nested zip that is opened.
const NESTED_MAX_BYTES: u64 = 16 << 20;
/// Largest inflated / compressed ratio an entry may claim before it is called a bomb.
const MAX_RATIO: u64 = 200;
/// Entries listed at most.
const MAX_ENTRIES: usize = 10_000;

pub fn archive_contents(bytes: &[u8]) -> ArchiveContents {
    let mut contents = ArchiveContents::default();
    let mut inflate_budget = NESTED_MAX_BYTES;
    list_zip(bytes, "", 0, &mut inflate_budget, &mut contents);
    contents
}

/// `inflate_budget`: bytes that nested zips may still inflate to, shared by
/// all of them (entries of one zip may all point at the same data).
fn list_zip(bytes: &[u8], prefix: &str, depth: usize, inflate_budget: &mut u64, contents: &mut ArchiveContents) {
    let mut archive = match zip::ZipArchive::new(std::io::Cursor::new(bytes)) {
        Ok(archive) => archive,
        Err(error) => {
            contents.cut.push(format!("{prefix}: not a readable zip ({error})"));
            return;
        }
    };
    for index in 0..archive.len() {
        // One budget of names for the whole attachment, nested zips included.
        if contents.names.len() >= MAX_ENTRIES {
            contents.cut.push(format!("more than {MAX_ENTRIES} entries: the rest was not listed"));
            return;
        }
        let Ok(entry) = archive.by_index_raw(index) else { continue };
        let name = format!("{prefix}{}", entry.name().unwrap_or_default());
        let (size, compressed) = (entry.size(), entry.compressed_size().max(1));
        contents.encrypted |= entry.encrypted();
        let nested = name.to_ascii_lowercase().ends_with(".zip");
        drop(entry);
        let bomb = size / compressed > MAX_RATIO;
        if bomb && size > 1 << 20 {
            contents.cut.push(format!("{name}: claims {size} bytes from {compressed} (a bomb?): not opened"));
        } else if nested && depth == 0 && !bomb && size <= *inflate_budget {
            *inflate_budget -= size;
            let mut inner = Vec::new();
            if let Ok(mut file) = archive.by_index(index) {
                use std::io::Read;
                let _ = (&mut file).take(size).read_to_end(&mut inner);
            }
            list_zip(&inner, &format!("{name}/"), depth + 1, inflate_budget, contents);
        } else if nested {
            contents.cut.push(format!("{name}: a zip nested deeper or larger than read"));
        }
        contents.names.push(name);
    }
}

/// Extensions that run when opened on Windows.
pub const RISKY_EXTENSIONS: &[&str] = &[
    "exe", "scr", "com", "pif", "bat", "cmd", "js", "jse", "vbs", "vbe", "wsf", "wsh", "hta", "ps1", "msi", "lnk",
    "iso", "img", "vhd", "vhdx", "jar", "cpl", "dll", "reg", "one", "xll", "docm", "xlsm", "pptm",
];

/// The name's extension, lower-cased.
pub fn extension(name: &str) -> Option<String> {
    let (_, extension) = name.rsplit_once('.')?;
    Some(extension.trim().to_ascii_lowercase())
}

/// A document-looking name that ends in a risky extension (`invoice.pdf.exe`).
pub fn double_extension(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let mut parts = lower.rsplit('.');
    let (Some(last), Some(before)) = (parts.next(), parts.next()) else { return false };
    parts.next().is_some()
        && RISKY_EXTENSIONS.contains(&last)
        && ["pdf", "doc", "docx", "xls", "xlsx", "txt", "jpg", "png", "zip"].contains(&before)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_content() {
        assert_eq!(sniff(b"MZ\x90\x00rest"), Content::Executable);
        assert_eq!(sniff(b"PK\x03\x04\x14\x00\x01\x00rest"), Content::EncryptedArchive);
        assert_eq!(sniff(b"PK\x03\x04\x14\x00\x00\x00word/vbaProject.bin"), Content::OpenXmlWithMacros);
        assert_eq!(sniff(b"<!DOCTYPE html><form action=x>"), Content::Html);
        assert!(double_extension("Invoice.PDF.exe") && !double_extension("setup.exe"));
    }
}
