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
    if is_rar_or_7z(bytes) {
        return inspect(bytes).0;
    }
    if starts(&[0x1f, 0x8b]) {
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

/// What `bytes` are and, for a zip, RAR or 7-Zip archive, what it holds:
/// listed once, here, since telling an encrypted RAR or 7-Zip from another
/// needs the listing (`None` for anything else, a gzip stream included).
pub fn inspect(bytes: &[u8]) -> (Content, Option<ArchiveContents>) {
    if is_rar_or_7z(bytes) {
        let contents = archive_contents(bytes);
        let content = if contents.encrypted { Content::EncryptedArchive } else { Content::Archive };
        return (content, Some(contents));
    }
    let content = sniff(bytes);
    let zip = matches!(content, Content::Archive | Content::EncryptedArchive) && bytes.starts_with(b"PK");
    (content, zip.then(|| archive_contents(bytes)))
}

fn is_rar_or_7z(bytes: &[u8]) -> bool {
    bytes.starts_with(b"Rar!\x1a\x07") || bytes.starts_with(SEVEN_ZIP)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// What an archive holds. A zip is read from its directory (names and
/// sizes, no data inflated) and, for zips inside it, one level further when
/// their size and compression ratio are within bounds: a zip bomb is named,
/// not opened. A RAR is read from its block headers; of a 7-Zip archive
/// only whether its names are encrypted.
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

/// What a zip, RAR or 7-Zip archive holds, as far as can be read without
/// unpacking anything but nested zips (see [`ArchiveContents`]).
pub fn archive_contents(bytes: &[u8]) -> ArchiveContents {
    let mut contents = ArchiveContents::default();
    if bytes.starts_with(b"Rar!\x1a\x07\x01\x00") {
        list_rar5(bytes, &mut contents);
    } else if bytes.starts_with(b"Rar!\x1a\x07\x00") {
        list_rar4(bytes, &mut contents);
    } else if bytes.starts_with(SEVEN_ZIP) {
        inspect_7z(bytes, &mut contents);
    } else {
        let mut inflate_budget = NESTED_MAX_BYTES;
        list_zip(bytes, "", 0, &mut inflate_budget, &mut contents);
    }
    contents
}

const SEVEN_ZIP: &[u8] = b"7z\xbc\xaf\x27\x1c";

/// A RAR 5 variable-length integer: 7 bits a byte, low bits first.
fn rar_vint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// RAR 5: block headers are stored as they are (unless the archive
/// encrypts them, which needs the password), so names and each file's
/// encryption record are read without unpacking.
fn list_rar5(bytes: &[u8], contents: &mut ArchiveContents) {
    const ARCHIVE_ENCRYPTION: u64 = 4;
    const FILE: u64 = 2;
    const END: u64 = 5;
    const FILE_ENCRYPTION_RECORD: u64 = 1;
    let mut at = 8;
    // Every block counts, read or not: a run of unreadable headers is bounded too.
    for _ in 0..MAX_ENTRIES {
        if at >= bytes.len() {
            return;
        }
        let block = at + 4; // after the header's CRC32
        let mut cursor = block;
        let Some(header_size) = rar_vint(bytes, &mut cursor) else { break };
        let header_end = cursor.saturating_add(usize::try_from(header_size).unwrap_or(usize::MAX));
        if header_end > bytes.len() {
            contents.cut.push("the RAR archive is cut short: the rest was not listed".into());
            return;
        }
        let header = &bytes[..header_end];
        let (Some(kind), Some(flags)) = (rar_vint(header, &mut cursor), rar_vint(header, &mut cursor)) else { break };
        let extra_size = if flags & 1 != 0 { rar_vint(header, &mut cursor) } else { Some(0) };
        let data_size = if flags & 2 != 0 { rar_vint(header, &mut cursor) } else { Some(0) };
        let (Some(extra_size), Some(data_size)) = (extra_size, data_size) else { break };
        match kind {
            ARCHIVE_ENCRYPTION => {
                contents.encrypted = true;
                contents.cut.push("the RAR archive encrypts its list of names: it needs the password".into());
                return;
            }
            END => return,
            FILE => {
                let name = (|| {
                    let file_flags = rar_vint(header, &mut cursor)?;
                    rar_vint(header, &mut cursor)?; // unpacked size
                    rar_vint(header, &mut cursor)?; // attributes
                    cursor += if file_flags & 2 != 0 { 4 } else { 0 } + if file_flags & 4 != 0 { 4 } else { 0 };
                    rar_vint(header, &mut cursor)?; // compression
                    rar_vint(header, &mut cursor)?; // host system
                    let length = usize::try_from(rar_vint(header, &mut cursor)?).ok()?;
                    let name = header.get(cursor..cursor.checked_add(length)?)?;
                    Some(String::from_utf8_lossy(name).into_owned())
                })();
                match name {
                    Some(name) => contents.names.push(name),
                    None => cut_once(contents, "a RAR file header could not be read"),
                }
                // The extra area ends the header, and never starts before it:
                // look there for an encryption record.
                let mut extra =
                    header_end.saturating_sub(usize::try_from(extra_size).unwrap_or(usize::MAX)).max(cursor);
                while extra < header_end {
                    let Some(size) = rar_vint(header, &mut extra) else { break };
                    let record_end = extra.saturating_add(usize::try_from(size).unwrap_or(usize::MAX));
                    let mut inside = extra;
                    if rar_vint(header, &mut inside) == Some(FILE_ENCRYPTION_RECORD) {
                        contents.encrypted = true;
                    }
                    extra = record_end;
                }
            }
            _ => {}
        }
        at = header_end.saturating_add(usize::try_from(data_size).unwrap_or(usize::MAX));
    }
    contents.cut.push(format!("more than {MAX_ENTRIES} RAR blocks: the rest was not listed"));
}

/// Notes why part of an archive was not read, once however often it happens.
fn cut_once(contents: &mut ArchiveContents, why: &str) {
    if !contents.cut.iter().any(|cut| cut == why) {
        contents.cut.push(why.to_owned());
    }
}

/// RAR 1.5 to 4: fixed-size block headers, a file's data after its header.
fn list_rar4(bytes: &[u8], contents: &mut ArchiveContents) {
    const MAIN: u8 = 0x73;
    const FILE: u8 = 0x74;
    const END: u8 = 0x7b;
    let u16_at = |at: usize| bytes.get(at..at + 2).map(|two| u16::from_le_bytes([two[0], two[1]]));
    let u32_at = |at: usize| bytes.get(at..at + 4).map(|four| u32::from_le_bytes([four[0], four[1], four[2], four[3]]));
    let mut at = 7;
    for _ in 0..MAX_ENTRIES {
        let (Some(&kind), Some(flags), Some(size)) = (bytes.get(at + 2), u16_at(at + 3), u16_at(at + 5)) else {
            return;
        };
        let size = usize::from(size);
        if size < 7 {
            contents.cut.push("a RAR block header could not be read".into());
            return;
        }
        let added = if flags & 0x8000 != 0 { u32_at(at + 7).map_or(0, |added| added as usize) } else { 0 };
        match kind {
            MAIN if flags & 0x0080 != 0 => {
                contents.encrypted = true;
                contents.cut.push("the RAR archive encrypts its list of names: it needs the password".into());
                return;
            }
            FILE => {
                contents.encrypted |= flags & 0x0004 != 0;
                let name_at = at + 32 + if flags & 0x0100 != 0 { 8 } else { 0 };
                // The name lies inside its own header, never past it.
                let name = u16_at(at + 26)
                    .map(|length| name_at + usize::from(length))
                    .filter(|name_end| *name_end <= at + size)
                    .and_then(|name_end| bytes.get(name_at..name_end));
                match name {
                    // A Unicode name follows the plain one after a zero byte.
                    Some(name) => contents.names.push(
                        String::from_utf8_lossy(name.split(|byte| *byte == 0).next().unwrap_or(name)).into_owned(),
                    ),
                    None => cut_once(contents, "a RAR file header could not be read"),
                }
            }
            END => return,
            _ => {}
        }
        let Some(next) = at.checked_add(size).and_then(|next| next.checked_add(added)) else { return };
        at = next;
    }
    contents.cut.push(format!("more than {MAX_ENTRIES} RAR blocks: the rest was not listed"));
}

/// 7-Zip keeps its list of names at the end, nearly always compressed:
/// only whether that list is encrypted (an AES coder) is read, and the
/// names are reported as not listed.
fn inspect_7z(bytes: &[u8], contents: &mut ArchiveContents) {
    const AES_CODER: &[u8] = &[0x06, 0xf1, 0x07, 0x01];
    let u64_at = |at: usize| bytes.get(at..at + 8).map(|eight| u64::from_le_bytes(eight.try_into().unwrap_or([0; 8])));
    let (Some(offset), Some(size)) = (u64_at(12), u64_at(20)) else {
        contents.cut.push("the 7-Zip archive is cut short".into());
        return;
    };
    let start = usize::try_from(offset).ok().and_then(|offset| offset.checked_add(32));
    let end = start.zip(usize::try_from(size).ok()).and_then(|(start, size)| start.checked_add(size));
    let Some(header) = start.zip(end).and_then(|(start, end)| bytes.get(start..end)) else {
        contents.cut.push("the 7-Zip archive is cut short: its list of names is missing".into());
        return;
    };
    if contains(header, AES_CODER) {
        contents.encrypted = true;
        contents.cut.push("the 7-Zip archive encrypts its list of names: it needs the password".into());
    } else {
        contents.cut.push("a 7-Zip archive: its names are compressed and were not listed".into());
    }
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

    fn vint(mut value: u64, out: &mut Vec<u8>) {
        loop {
            let low = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                out.push(low);
                return;
            }
            out.push(low | 0x80);
        }
    }

    /// A RAR 5 block as the format describes it (the CRC is not checked).
    fn rar5_block(kind: u64, fields: &[u8], extra: &[u8], data: &[u8]) -> Vec<u8> {
        let flags = u64::from(!extra.is_empty()) | if data.is_empty() { 0 } else { 2 };
        let mut header = Vec::new();
        vint(kind, &mut header);
        vint(flags, &mut header);
        if !extra.is_empty() {
            vint(extra.len() as u64, &mut header);
        }
        if !data.is_empty() {
            vint(data.len() as u64, &mut header);
        }
        header.extend_from_slice(fields);
        header.extend_from_slice(extra);
        let mut block = vec![0; 4];
        vint(header.len() as u64, &mut block);
        block.extend(header);
        block.extend_from_slice(data);
        block
    }

    fn rar5_file(name: &str, encrypted: bool) -> Vec<u8> {
        let mut fields = Vec::new();
        for value in [0, 3, 0x20, 0, 0] {
            vint(value, &mut fields); // flags, unpacked size, attributes, compression, host
        }
        vint(name.len() as u64, &mut fields);
        fields.extend_from_slice(name.as_bytes());
        // An encryption record: size, type 1, then its (here meaningless) fields.
        let extra: &[u8] = if encrypted { &[3, 1, 0, 0] } else { &[] };
        rar5_block(2, &fields, extra, b"xyz")
    }

    fn rar5(blocks: &[Vec<u8>]) -> Vec<u8> {
        let mut archive = b"Rar!\x1a\x07\x01\x00".to_vec();
        archive.extend(rar5_block(1, &[0], &[], &[]));
        blocks.iter().for_each(|block| archive.extend(block));
        archive.extend(rar5_block(5, &[0], &[], &[]));
        archive
    }

    #[test]
    fn rar5_archives_are_listed_from_their_headers() {
        let plain = rar5(&[rar5_file("docs/readme.txt", false), rar5_file("docs/invoice.pdf.exe", false)]);
        let contents = archive_contents(&plain);
        assert_eq!(contents.names, ["docs/readme.txt", "docs/invoice.pdf.exe"]);
        assert!(!contents.encrypted && contents.cut.is_empty(), "{contents:?}");
        assert_eq!(sniff(&plain), Content::Archive);
        let locked = rar5(&[rar5_file("a.txt", false), rar5_file("payload.js", true)]);
        assert!(archive_contents(&locked).encrypted);
        assert_eq!(sniff(&locked), Content::EncryptedArchive);
        // Headers encrypted: nothing can be listed, and that says why.
        let mut hidden = b"Rar!\x1a\x07\x01\x00".to_vec();
        hidden.extend(rar5_block(4, &[0, 0], &[], &[]));
        hidden.extend_from_slice(&[0x55; 64]);
        let contents = archive_contents(&hidden);
        assert!(
            contents.encrypted && contents.names.is_empty() && contents.cut[0].contains("password"),
            "{contents:?}"
        );
        // Cut short, or garbage after the signature: reported, never a panic.
        let short = &plain[..plain.len() - 20];
        assert!(
            archive_contents(short).cut.iter().any(|cut| cut.contains("cut short")),
            "{:?}",
            archive_contents(short)
        );
        for length in 0..plain.len() {
            let _ = archive_contents(&plain[..length]);
        }
        let mut garbage = b"Rar!\x1a\x07\x01\x00".to_vec();
        garbage.extend_from_slice(&[0xff; 40]);
        let _ = archive_contents(&garbage);
    }

    #[test]
    fn crafted_rar_headers_cost_little() {
        // RAR 5: a first block whose data is a long run of tiny records, then
        // many file headers that claim an extra area reaching back before them.
        // Read from where the extra area claimed to start, the data before
        // would hold an encryption record (size 3, type 1), and every header
        // would walk all that came before it.
        let mut quadratic = b"Rar!\x1a\x07\x01\x00".to_vec();
        let mut data = vec![0; 40_000];
        data[1_000..1_004].copy_from_slice(&[3, 1, 0, 0]);
        quadratic.extend(rar5_block(1, &[0], &[], &data));
        let mut claiming = vec![0, 0, 0, 0, 8, 2, 1];
        vint(1 << 40, &mut claiming);
        for _ in 0..3_000 {
            quadratic.extend(&claiming);
        }
        let contents = archive_contents(&quadratic);
        assert!(!contents.encrypted, "an extra area is read inside its own header only");
        assert_eq!(contents.cut, ["a RAR file header could not be read"], "said once");
        // RAR 4: a name may not run past its own header into the next ones.
        let mut long_names = b"Rar!\x1a\x07\x00".to_vec();
        for _ in 0..2_000 {
            let mut block = vec![0x41; 257];
            block[2] = 0x74;
            block[3..5].copy_from_slice(&0x0202u16.to_le_bytes());
            block[5..7].copy_from_slice(&257u16.to_le_bytes());
            block[26..28].copy_from_slice(&u16::MAX.to_le_bytes());
            long_names.extend(block);
        }
        let contents = archive_contents(&long_names);
        assert!(contents.names.iter().map(String::len).sum::<usize>() < long_names.len(), "{}", contents.names.len());
    }

    fn rar4_file(name: &str, encrypted: bool) -> Vec<u8> {
        let data = b"packed";
        let flags: u16 = 0x8000 | if encrypted { 0x0004 } else { 0 };
        let size = 32 + name.len() as u16;
        let mut block = vec![0, 0, 0x74];
        block.extend(flags.to_le_bytes());
        block.extend(size.to_le_bytes());
        block.extend((data.len() as u32).to_le_bytes()); // packed size
        block.extend(6u32.to_le_bytes()); // unpacked size
        block.push(2); // host
        block.extend([0; 4]); // CRC
        block.extend([0; 4]); // time
        block.extend([29, 0x30]); // version, method
        block.extend((name.len() as u16).to_le_bytes());
        block.extend(0x20u32.to_le_bytes());
        block.extend_from_slice(name.as_bytes());
        block.extend_from_slice(data);
        block
    }

    #[test]
    fn rar4_archives_are_listed_from_their_headers() {
        let mut archive = b"Rar!\x1a\x07\x00".to_vec();
        archive.extend([0, 0, 0x73, 0, 0, 13, 0, 0, 0, 0, 0, 0, 0]);
        archive.extend(rar4_file("scan.pdf", false));
        archive.extend(rar4_file("scan.pdf.scr", true));
        archive.extend([0, 0, 0x7b, 0, 0, 7, 0]);
        let contents = archive_contents(&archive);
        assert_eq!(contents.names, ["scan.pdf", "scan.pdf.scr"]);
        assert!(contents.encrypted, "{contents:?}");
        for length in 0..archive.len() {
            let _ = archive_contents(&archive[..length]);
        }
        // The main header's flag: every header is encrypted.
        let mut hidden = b"Rar!\x1a\x07\x00".to_vec();
        hidden.extend([0, 0, 0x73, 0x80, 0, 13, 0, 0, 0, 0, 0, 0, 0]);
        assert!(archive_contents(&hidden).encrypted);
    }

    fn seven_zip(next_header: &[u8]) -> Vec<u8> {
        let packed = [0x42; 16];
        let mut archive = SEVEN_ZIP.to_vec();
        archive.extend([0, 4, 0, 0, 0, 0]);
        archive.extend((packed.len() as u64).to_le_bytes());
        archive.extend((next_header.len() as u64).to_le_bytes());
        archive.extend([0; 4]);
        archive.extend(packed);
        archive.extend_from_slice(next_header);
        archive
    }

    #[test]
    fn seven_zip_says_whether_its_names_are_encrypted() {
        // An encoded header whose coders are AES then LZMA.
        let encrypted = seven_zip(&[
            0x17, 0x06, 0x00, 0x01, 0x0b, 0x01, 0x02, 0x24, 0x06, 0xf1, 0x07, 0x01, 0x21, 0x03, 0x01, 0x01,
        ]);
        let contents = archive_contents(&encrypted);
        assert!(contents.encrypted && contents.cut[0].contains("password"), "{contents:?}");
        assert_eq!(sniff(&encrypted), Content::EncryptedArchive);
        let compressed = seven_zip(&[0x17, 0x06, 0x00, 0x01, 0x0b, 0x01, 0x01, 0x23, 0x03, 0x01, 0x01]);
        let contents = archive_contents(&compressed);
        assert!(!contents.encrypted && contents.cut[0].contains("not listed"), "{contents:?}");
        // An offset past the end is cut short, not a panic.
        let mut lying = compressed.clone();
        lying[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(archive_contents(&lying).cut[0].contains("cut short"));
    }
}
