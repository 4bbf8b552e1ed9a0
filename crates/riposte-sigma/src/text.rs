//! Sigma string values: escaping, wildcards, case folding and glob matching.
//!
//! A Sigma string is literal text with two wildcards, `*` (any run of
//! characters, newlines included) and `?` (exactly one character). A
//! backslash escapes `*`, `?` and itself; before any other character it is a
//! literal backslash, so Windows paths need no doubling.
//!
//! Case-insensitive comparison folds both sides with Unicode lower-casing
//! (`char::to_lowercase`), the same function for values and patterns, so the
//! index and the direct matchers always agree.

use std::sync::OnceLock;

use memchr::memmem;

/// One piece of a parsed Sigma string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    Literal(String),
    /// `*`
    Any,
    /// `?`
    One,
}

/// A Sigma string after escape processing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SigmaString {
    pieces: Vec<Piece>,
}

impl SigmaString {
    /// Parses a rule value, applying Sigma's escaping rules.
    pub(crate) fn parse(raw: &str) -> Self {
        let mut string = SigmaString::default();
        let mut escaped = false;
        for ch in raw.chars() {
            if escaped {
                escaped = false;
                if !matches!(ch, '*' | '?' | '\\') {
                    string.push_char('\\');
                }
                string.push_char(ch);
                continue;
            }
            match ch {
                '\\' => escaped = true,
                '*' => string.pieces.push(Piece::Any),
                '?' => string.pieces.push(Piece::One),
                _ => string.push_char(ch),
            }
        }
        if escaped {
            string.push_char('\\');
        }
        string
    }

    /// A string with no wildcards.
    pub(crate) fn literal(text: &str) -> Self {
        let mut string = SigmaString::default();
        if !text.is_empty() {
            string.pieces.push(Piece::Literal(text.to_owned()));
        }
        string
    }

    fn push_char(&mut self, ch: char) {
        if let Some(Piece::Literal(text)) = self.pieces.last_mut() {
            text.push(ch);
        } else {
            self.pieces.push(Piece::Literal(ch.to_string()));
        }
    }

    pub(crate) fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    pub(crate) fn from_pieces(pieces: Vec<Piece>) -> Self {
        let mut string = SigmaString::default();
        for piece in pieces {
            match piece {
                Piece::Literal(text) => {
                    for ch in text.chars() {
                        string.push_char(ch);
                    }
                }
                wildcard => string.pieces.push(wildcard),
            }
        }
        string
    }

    pub(crate) fn has_wildcards(&self) -> bool {
        self.pieces.iter().any(|piece| !matches!(piece, Piece::Literal(_)))
    }

    /// The text when there are no wildcards.
    pub(crate) fn as_literal(&self) -> Option<String> {
        if self.has_wildcards() {
            return None;
        }
        Some(
            self.pieces.iter().map(|piece| if let Piece::Literal(text) = piece { text.as_str() } else { "" }).collect(),
        )
    }

    pub(crate) fn starts_with_any(&self) -> bool {
        matches!(self.pieces.first(), Some(Piece::Any))
    }

    pub(crate) fn ends_with_any(&self) -> bool {
        matches!(self.pieces.last(), Some(Piece::Any))
    }

    pub(crate) fn prepend_any(&mut self) {
        if !self.starts_with_any() {
            self.pieces.insert(0, Piece::Any);
        }
    }

    pub(crate) fn append_any(&mut self) {
        if !self.ends_with_any() {
            self.pieces.push(Piece::Any);
        }
    }

    /// Compiles into a text matcher: the common shapes become plain
    /// comparisons, anything else a glob.
    pub(crate) fn compile(&self, cased: bool) -> TextPattern {
        let fold_text = |text: &str| if cased { text.to_owned() } else { fold(text) };
        // Runs of `*` mean one `*`.
        let mut pieces: Vec<Piece> = Vec::with_capacity(self.pieces.len());
        for piece in &self.pieces {
            if *piece == Piece::Any && pieces.last() == Some(&Piece::Any) {
                continue;
            }
            pieces.push(match piece {
                Piece::Literal(text) => Piece::Literal(fold_text(text)),
                other => other.clone(),
            });
        }
        let literal = |piece: &Piece| match piece {
            Piece::Literal(text) => Some(text.clone()),
            _ => None,
        };
        let shape = match pieces.as_slice() {
            [] => Some((TextKind::Equals, String::new())),
            [Piece::Any] => Some((TextKind::Contains, String::new())),
            [single] => literal(single).map(|text| (TextKind::Equals, text)),
            [Piece::Any, last] => literal(last).map(|text| (TextKind::EndsWith, text)),
            [first, Piece::Any] => literal(first).map(|text| (TextKind::StartsWith, text)),
            [Piece::Any, middle, Piece::Any] => literal(middle).map(|text| (TextKind::Contains, text)),
            _ => None,
        };
        match shape {
            Some((kind, text)) => TextPattern::new(kind, text.into_bytes().into_boxed_slice(), cased),
            None => {
                let glob = Glob::new(&pieces);
                let text = glob.longest_literal().to_owned().into_bytes().into_boxed_slice();
                TextPattern { kind: TextKind::Glob, text, glob: Some(glob), cased, searcher: OnceLock::new() }
            }
        }
    }
}

/// Lower-cases `text` for case-insensitive comparison.
pub(crate) fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    fold_into(text, &mut out);
    out
}

/// Lower-cases `text` into `out` (cleared first).
/// Appends `text` lower-cased the way [`fold_into`] does to `out`.
pub(crate) fn fold_append(text: &str, out: &mut Vec<u8>) {
    if text.is_ascii() {
        // Branch-free, so that it runs many bytes at a time.
        out.extend(text.bytes().map(|byte| byte | (u8::from(byte.is_ascii_uppercase()) << 5)));
    } else {
        let mut buffer = [0u8; 4];
        for lower in text.chars().flat_map(char::to_lowercase) {
            out.extend_from_slice(lower.encode_utf8(&mut buffer).as_bytes());
        }
    }
}

pub(crate) fn fold_into(text: &str, out: &mut String) {
    out.clear();
    if text.is_ascii() {
        out.push_str(text);
        out.make_ascii_lowercase();
    } else {
        out.extend(text.chars().flat_map(char::to_lowercase));
    }
}

/// How a text pattern is placed in the value.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum TextKind {
    Equals,
    StartsWith,
    EndsWith,
    Contains,
    Glob,
}

/// A compiled text comparison. For every kind but `Glob`, `text` is the whole
/// pattern; for `Glob` it is its longest literal run (for the index).
#[derive(Clone, Debug)]
pub(crate) struct TextPattern {
    pub kind: TextKind,
    /// Folded unless `cased`.
    pub text: Box<[u8]>,
    pub glob: Option<Glob>,
    pub cased: bool,
    /// For `Contains`: the searcher, prepared once (preparing one costs more
    /// than most searches) when first needed (most patterns of a large rule
    /// set are never evaluated: the index rules them out).
    searcher: OnceLock<Box<memmem::Finder<'static>>>,
}

impl PartialEq for TextPattern {
    fn eq(&self, other: &Self) -> bool {
        (self.kind, &self.text, &self.glob, self.cased) == (other.kind, &other.text, &other.glob, other.cased)
    }
}

impl Eq for TextPattern {}

impl TextPattern {
    /// A pattern of one of the plain kinds (not `Glob`).
    pub(crate) fn new(kind: TextKind, text: Box<[u8]>, cased: bool) -> TextPattern {
        TextPattern { kind, text, glob: None, cased, searcher: OnceLock::new() }
    }

    /// Compares against a value that is already folded when the pattern is
    /// case-insensitive.
    pub(crate) fn matches_prepared(&self, value: &str) -> bool {
        let value = value.as_bytes();
        let text = &*self.text;
        match self.kind {
            TextKind::Equals => value == text,
            TextKind::StartsWith => value.starts_with(text),
            TextKind::EndsWith => value.ends_with(text),
            TextKind::Contains => {
                text.is_empty()
                    || self
                        .searcher
                        .get_or_init(|| Box::new(memmem::Finder::new(text).into_owned()))
                        .find(value)
                        .is_some()
            }
            TextKind::Glob => self.glob.as_ref().is_some_and(|glob| glob.matches(value)),
        }
    }

    /// Compares against a raw value, folding it first when needed.
    pub(crate) fn matches(&self, value: &str, scratch: &mut String) -> bool {
        if self.cased {
            self.matches_prepared(value)
        } else {
            fold_into(value, scratch);
            self.matches_prepared(scratch)
        }
    }
}

/// A wildcard pattern: segments of literal text and `?`, separated by `*`.
/// Each segment has a fixed length in characters, so placing every middle
/// segment at its leftmost match is always optimal: matching is linear in
/// practice, never exponential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Glob {
    segments: Vec<Vec<Piece>>,
    anchored_start: bool,
    anchored_end: bool,
}

impl Glob {
    fn new(pieces: &[Piece]) -> Self {
        let mut segments = vec![Vec::new()];
        for piece in pieces {
            match piece {
                Piece::Any => segments.push(Vec::new()),
                other => segments.last_mut().map(|segment| segment.push(other.clone())).unwrap_or_default(),
            }
        }
        Glob {
            anchored_start: !matches!(pieces.first(), Some(Piece::Any)),
            anchored_end: !matches!(pieces.last(), Some(Piece::Any)),
            segments,
        }
    }

    fn longest_literal(&self) -> &str {
        self.segments
            .iter()
            .flatten()
            .filter_map(|piece| if let Piece::Literal(text) = piece { Some(text.as_str()) } else { None })
            .max_by_key(|text| text.len())
            .unwrap_or("")
    }

    /// Where `segment` ends when it starts at `at`, if it matches there.
    fn match_at(segment: &[Piece], value: &[u8], mut at: usize) -> Option<usize> {
        for piece in segment {
            match piece {
                Piece::Literal(text) => {
                    if !value[at..].starts_with(text.as_bytes()) {
                        return None;
                    }
                    at += text.len();
                }
                Piece::One => at += char_len(value, at)?,
                Piece::Any => unreachable!("segments hold no `*`"),
            }
        }
        Some(at)
    }

    /// Where a floating segment may start, from `at` on: every character
    /// boundary, or only where its first byte is when it begins with a
    /// literal (found with `memchr`, instead of trying every position; the
    /// first byte of a character is never inside another).
    fn starts<'v>(segment: &[Piece], value: &'v [u8], at: usize) -> impl Iterator<Item = usize> + 'v {
        let first = match segment.first() {
            Some(Piece::Literal(text)) => text.as_bytes().first().copied(),
            _ => None,
        };
        // One of the two, without boxing either.
        let (found, every) = match first {
            Some(byte) => (Some(memchr::memchr_iter(byte, &value[at..]).map(move |offset| at + offset)), None),
            None => (None, Some((at..=value.len()).filter(move |start| is_char_boundary(value, *start)))),
        };
        found.into_iter().flatten().chain(every.into_iter().flatten())
    }

    pub(crate) fn matches(&self, value: &[u8]) -> bool {
        let last = self.segments.len() - 1;
        let mut at = 0;
        for (index, segment) in self.segments.iter().enumerate() {
            let is_first = index == 0;
            let is_last = index == last;
            if is_first && self.anchored_start {
                match Self::match_at(segment, value, 0) {
                    Some(end) if !(is_last && self.anchored_end) || end == value.len() => at = end,
                    _ => return false,
                }
                continue;
            }
            if is_last && self.anchored_end {
                // The last segment must end the value: try starts from `at` on.
                return Self::starts(segment, value, at)
                    .any(|start| Self::match_at(segment, value, start) == Some(value.len()));
            }
            match Self::starts(segment, value, at).find_map(|start| Self::match_at(segment, value, start)) {
                Some(end) => at = end,
                None => return false,
            }
        }
        true
    }
}

fn is_char_boundary(value: &[u8], at: usize) -> bool {
    at == value.len() || value.get(at).is_some_and(|byte| (*byte as i8) >= -0x40)
}

/// The byte length of the UTF-8 character at `at`.
fn char_len(value: &[u8], at: usize) -> Option<usize> {
    let first = *value.get(at)?;
    let len = match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xff => 4,
        _ => 1,
    };
    (at + len <= value.len()).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(text: &str) -> Piece {
        Piece::Literal(text.to_owned())
    }

    #[test]
    fn escaping_follows_the_specification() {
        use Piece::{Any, One};
        let cases: Vec<(&str, Vec<Piece>)> = vec![
            (r"C:\Windows\System32\cmd.exe", vec![lit(r"C:\Windows\System32\cmd.exe")]),
            (r"C:\\Windows", vec![lit(r"C:\Windows")]),
            (r"foo\*bar", vec![lit("foo*bar")]),
            (r"foo\\*bar", vec![lit(r"foo\"), Any, lit("bar")]),
            (r"foo\\\*bar", vec![lit(r"foo\*bar")]),
            (r"a\\\b", vec![lit(r"a\\b")]),
            (r"a\\\\b", vec![lit(r"a\\b")]),
            (r"\?", vec![lit("?")]),
            (r"\%x%", vec![lit(r"\%x%")]),
            (r"end\", vec![lit(r"end\")]),
            ("prog?.exe", vec![lit("prog"), One, lit(".exe")]),
            ("*", vec![Any]),
        ];
        for (raw, pieces) in cases {
            assert_eq!(SigmaString::parse(raw).pieces(), pieces.as_slice(), "{raw}");
        }
    }

    fn matches(pattern: &str, value: &str) -> bool {
        SigmaString::parse(pattern).compile(false).matches(value, &mut String::new())
    }

    #[test]
    fn shapes_compile_to_plain_comparisons() {
        assert_eq!(SigmaString::parse("*abc*").compile(false).kind, TextKind::Contains);
        assert_eq!(SigmaString::parse("**abc").compile(false).kind, TextKind::EndsWith);
        assert_eq!(SigmaString::parse("ABC*").compile(false).kind, TextKind::StartsWith);
        assert_eq!(&*SigmaString::parse("ABC*").compile(false).text, b"abc");
        assert_eq!(&*SigmaString::parse("ABC*").compile(true).text, b"ABC");
        assert_eq!(SigmaString::parse("a*b").compile(false).kind, TextKind::Glob);
        assert_eq!(SigmaString::parse("a?").compile(false).kind, TextKind::Glob);
    }

    #[test]
    fn matching_is_case_insensitive_and_anchored() {
        assert!(matches(r"C:\Windows\System32\cmd.exe", r"c:\windows\system32\CMD.EXE"));
        assert!(!matches(r"cmd.exe", r"C:\cmd.exe"), "no wildcard means equality");
        assert!(matches(r"*\cmd.exe", r"C:\cmd.exe"));
        assert!(matches("prog?.exe", "progA.exe"));
        assert!(!matches("prog?.exe", "prog.exe"));
        assert!(!matches("prog?.exe", "progAB.exe"));
        assert!(matches("prog?.exe", "progÄ.exe"), "? is one character, not one byte");
        assert!(matches("antivirus_V*.exe", "antivirus_V21.2.1.exe"));
        assert!(matches("a*b*c", "a-b-b-c"));
        assert!(!matches("a*b*c", "a-b-b-cd"));
        assert!(matches("*a*b", "xxaxxb"));
        assert!(matches("a*", "a\nline"));
        assert!(matches("*", ""));
        assert!(matches("", ""));
        assert!(!matches("", "x"));
        assert!(matches("ÄRGER*", "ärger und mehr"));
        assert!(matches("*İ*", "i̇"), "both sides fold the same way");
        assert!(matches(r"*foo\*bar", "x foo*bar"));
        assert!(!matches(r"*foo\*bar", "x fooXbar"));
        assert!(matches("a*a", "aa"));
        assert!(!matches("a*a", "a"));
        assert!(matches("?*?", "ab"));
        assert!(!matches("?*?", "a"));
    }

    #[test]
    fn cased_matching() {
        let pattern = SigmaString::parse("*Foo*").compile(true);
        assert!(pattern.matches("xFooy", &mut String::new()));
        assert!(!pattern.matches("xfooy", &mut String::new()));
    }

    proptest::proptest! {
        #[test]
        fn glob_agrees_with_a_regex(pattern in "[abé*?]{0,8}", value in "[abé]{0,10}") {
            let sigma = SigmaString::parse(&pattern).compile(false);
            let regex: String = pattern.chars().map(|ch| match ch { '*' => "(?s:.*)".to_string(), '?' => "(?s:.)".to_string(), other => other.to_string() }).collect();
            let regex = regex::Regex::new(&format!("^(?:{regex})$")).unwrap();
            proptest::prop_assert_eq!(sigma.matches(&value, &mut String::new()), regex.is_match(&value));
        }
    }
}
