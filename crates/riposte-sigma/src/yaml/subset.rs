//! A fast parser for the block-style subset of YAML that rules are written in.
//!
//! Guarantee: for any text, it either declines (`None`) or returns exactly
//! the documents the full parser (`serde_saphyr`) returns. Whatever is rare,
//! ambiguous or not worth the risk (anchors, tags, explicit keys, multi-line
//! quoted scalars, exotic numbers, invalid YAML...) is declined, and the
//! full parser handles it, errors included. A test holds it to this on every
//! YAML file of the SigmaHQ repository and on mutations of them.
//!
//! Why: the full parser reads about 20 MB/s; rule loading is a start-up cost
//! of every hunt and every reload, and most of it was YAML.

use super::Yaml;

/// One line of the text, split from its indentation.
#[derive(Clone, Copy)]
struct Line<'a> {
    /// Leading spaces.
    indent: usize,
    /// The rest, without a trailing `\r`.
    text: &'a str,
}

impl Line<'_> {
    fn is_blank(&self) -> bool {
        let text = self.text.trim_start_matches([' ', '\t']);
        text.is_empty() || text.starts_with('#')
    }
}

/// The documents of `text`, or `None` to let the full parser decide.
pub(super) fn parse(text: &str) -> Option<Vec<Yaml>> {
    if text.starts_with('\u{feff}') {
        return None;
    }
    let mut documents = Vec::new();
    let mut lines = Vec::new();
    for raw in text.lines() {
        let text = raw.trim_start_matches(' ');
        let line = Line { indent: raw.len() - text.len(), text };
        if line.indent == 0 && is_marker(text, "---") {
            documents.push(document(&lines)?);
            lines.clear();
            continue;
        }
        if line.indent == 0 && (is_marker(text, "...") || text.starts_with('%')) {
            return None;
        }
        // A tab where indentation could be is not worth interpreting.
        if text.starts_with('\t') && !line.is_blank() {
            return None;
        }
        lines.push(line);
    }
    documents.push(document(&lines)?);
    Some(documents)
}

/// Whether `text` is the marker alone, or followed by a comment. (`--- x`
/// is not, and is declined as a line the subset cannot read.)
fn is_marker(text: &str, marker: &str) -> bool {
    text.strip_prefix(marker).is_some_and(|rest| only_comment(rest).is_some())
}

fn document(lines: &[Line<'_>]) -> Option<Yaml> {
    let mut parser = Parser { lines, pos: 0 };
    let Some(first) = parser.peek() else { return Some(Yaml::Null) };
    if first.text.starts_with("---") {
        return None;
    }
    let node = parser.node(first.indent, None)?;
    // Everything must have been read: a line left over is a structure the
    // subset does not know (or an error for the full parser to name).
    parser.peek().is_none().then_some(node)
}

struct Parser<'l, 'a> {
    lines: &'l [Line<'a>],
    pos: usize,
}

impl<'a> Parser<'_, 'a> {
    /// The next line that is not blank or a comment.
    fn peek(&mut self) -> Option<Line<'a>> {
        while let Some(line) = self.lines.get(self.pos) {
            if !line.is_blank() {
                return Some(*line);
            }
            self.pos += 1;
        }
        None
    }

    /// The node whose first line is the next one, at `indent`. `parent` is
    /// the indentation of the enclosing collection (for scalars on their own
    /// line), `None` at the root.
    fn node(&mut self, indent: usize, parent: Option<usize>) -> Option<Yaml> {
        let line = self.peek()?;
        if is_sequence_entry(line.text) {
            return self.sequence(indent);
        }
        if let Some((key, rest)) = split_key(line.text)? {
            self.pos += 1;
            return self.mapping(indent, Some((key, rest)));
        }
        // A scalar on its own line (`key:` then the value below).
        let parent = parent?;
        self.pos += 1;
        self.inline_value(line.text, parent)
    }

    fn sequence(&mut self, indent: usize) -> Option<Yaml> {
        let mut items = Vec::new();
        while let Some(line) = self.peek() {
            if line.indent < indent {
                break;
            }
            if line.indent > indent || !is_sequence_entry(line.text) {
                // Indentless sequences end where their parent's next key is.
                if line.indent == indent && split_key(line.text)?.is_some() {
                    break;
                }
                return None;
            }
            self.pos += 1;
            let rest = &line.text[1..];
            let content = rest.trim_start_matches(' ');
            let column = indent + 1 + (rest.len() - content.len());
            if content.is_empty() || content.starts_with('#') {
                items.push(self.value_below(indent)?);
            } else if is_sequence_entry(content) || content.starts_with('\t') {
                return None;
            } else if let Some((key, value)) = split_key(content)? {
                items.push(self.mapping(column, Some((key, value)))?);
            } else {
                items.push(self.inline_value(content, indent)?);
            }
        }
        Some(Yaml::Seq(items))
    }

    /// A mapping at `indent`; `first` is its first entry when that was on a
    /// line already consumed (`- key: value`, or found by `node`).
    fn mapping(&mut self, indent: usize, first: Option<(String, &'a str)>) -> Option<Yaml> {
        let mut entries: Vec<(String, Yaml)> = Vec::new();
        let mut pending = first;
        loop {
            let (key, rest) = match pending.take() {
                Some(entry) => entry,
                None => {
                    let Some(line) = self.peek() else { break };
                    if line.indent < indent {
                        break;
                    }
                    if line.indent > indent {
                        return None;
                    }
                    if is_sequence_entry(line.text) {
                        // A sequence at a mapping's indentation ends it (the
                        // parent of an indentless sequence takes it) or is wrong.
                        break;
                    }
                    let entry = split_key(line.text)??;
                    self.pos += 1;
                    entry
                }
            };
            let value = self.value_after_colon(indent, rest)?;
            if entries.iter().any(|(name, _)| *name == key) {
                return None;
            }
            entries.push((key, value));
        }
        Some(Yaml::Map(entries))
    }

    /// The value after `key:` of a mapping at `indent`.
    fn value_after_colon(&mut self, indent: usize, rest: &'a str) -> Option<Yaml> {
        let rest = rest.trim_start_matches([' ', '\t']);
        if !rest.is_empty() && !rest.starts_with('#') {
            return self.inline_value(rest, indent);
        }
        match self.peek() {
            Some(next) if next.indent == indent && is_sequence_entry(next.text) => self.sequence(indent),
            _ => self.value_below(indent),
        }
    }

    /// The node on the lines below a collection entry at `indent`, null when
    /// they are not indented deeper.
    fn value_below(&mut self, indent: usize) -> Option<Yaml> {
        match self.peek() {
            Some(next) if next.indent > indent => self.node(next.indent, Some(indent)),
            _ => Some(Yaml::Null),
        }
    }

    /// A value that starts within a line, inside a collection at `indent`.
    fn inline_value(&mut self, text: &'a str, indent: usize) -> Option<Yaml> {
        if is_sequence_entry(text) {
            return None;
        }
        let first = text.as_bytes()[0];
        match first {
            b'|' | b'>' => self.block_scalar(text, indent),
            b'[' | b'{' => self.flow(text, indent),
            b'\'' | b'"' => {
                let (value, rest) = quoted(text)?;
                only_comment(rest)?;
                self.no_continuation(indent)?;
                Some(Yaml::String(value))
            }
            b'&' | b'*' | b'!' | b'%' | b'@' | b'`' | b'?' | b',' | b']' | b'}' | b'#' | b':' => None,
            _ => {
                let value = strip_comment(text).trim_end_matches([' ', '\t']);
                if value.contains(": ") || value.contains(":\t") || value.ends_with(':') {
                    return None;
                }
                self.no_continuation(indent)?;
                resolve(value)
            }
        }
    }

    /// Multi-line scalars are declined: the next line must not continue one.
    fn no_continuation(&self, indent: usize) -> Option<()> {
        // Comment lines end a plain scalar, but blank lines do not; any deeper
        // line after a scalar is a continuation (or an error).
        let mut index = self.pos;
        while let Some(line) = self.lines.get(index) {
            if line.text.trim_start_matches([' ', '\t']).is_empty() {
                index += 1;
                continue;
            }
            if line.text.starts_with('#') && line.indent <= indent {
                return Some(());
            }
            return (line.indent <= indent).then_some(());
        }
        Some(())
    }

    /// `|` and `>` scalars, with `-` and `+` chomping.
    fn block_scalar(&mut self, header: &str, indent: usize) -> Option<Yaml> {
        let literal = header.starts_with('|');
        let indicators = header[1..].split([' ', '\t']).next().unwrap_or("");
        let chomp = match indicators {
            "" => Chomp::Clip,
            "-" => Chomp::Strip,
            "+" => Chomp::Keep,
            _ => return None,
        };
        only_comment(&header[1 + indicators.len()..])?;
        // Content lines are raw: `#` in them is text.
        let mut body: Vec<&str> = Vec::new();
        let mut content_indent = None;
        let mut trailing_blank = 0;
        while let Some(line) = self.lines.get(self.pos) {
            let blank = line.text.is_empty();
            if line.text.trim_start_matches([' ', '\t']).is_empty() && !blank {
                return None;
            }
            if blank {
                // Leading empty lines, and spaces beyond the content's
                // indentation, are text of their own: declined.
                if content_indent.is_none_or(|wanted| line.indent > wanted) {
                    return None;
                }
                trailing_blank += 1;
                self.pos += 1;
                continue;
            }
            let wanted = *content_indent.get_or_insert(line.indent);
            if line.indent < wanted || wanted <= indent {
                break;
            }
            if line.text.starts_with('\t') {
                return None;
            }
            // Lines indented deeper than the first keep their spaces (and
            // fold differently): rare in rules, declined.
            if line.indent > wanted {
                return None;
            }
            body.extend(std::iter::repeat_n("", trailing_blank));
            trailing_blank = 0;
            body.push(line.text);
            self.pos += 1;
        }
        if body.is_empty() {
            return None;
        }
        let mut text = if literal { body.join("\n") } else { fold(&body) };
        match chomp {
            Chomp::Strip => {}
            Chomp::Clip => text.push('\n'),
            Chomp::Keep => {
                text.push('\n');
                text.extend(std::iter::repeat_n('\n', trailing_blank));
            }
        }
        // Trailing blank lines are not the scalar's when it is not kept;
        // either way they have been read.
        Some(Yaml::String(text))
    }

    /// A flow collection, possibly over several lines.
    fn flow(&mut self, text: &'a str, indent: usize) -> Option<Yaml> {
        let mut joined = String::from(text);
        loop {
            if let Some((value, rest)) = flow_node(&joined) {
                only_comment(rest)?;
                return Some(value);
            }
            // Unbalanced: take the next line, when it is a deeper one without
            // comments (folding comments across lines is not worth the risk).
            let next = self.lines.get(self.pos)?;
            if next.indent <= indent || next.text.contains('#') || next.text.trim().is_empty() {
                return None;
            }
            self.pos += 1;
            joined.push(' ');
            joined.push_str(next.text);
            if joined.len() > 64 * 1024 {
                return None;
            }
        }
    }
}

enum Chomp {
    Clip,
    Strip,
    Keep,
}

/// Folds the lines of a `>` scalar: a line break between two lines becomes a
/// space, each empty line a newline.
fn fold(lines: &[&str]) -> String {
    let mut text = String::new();
    let mut empty_run = 0;
    let mut started = false;
    for line in lines {
        if line.is_empty() {
            empty_run += 1;
            continue;
        }
        if started {
            if empty_run == 0 {
                text.push(' ');
            } else {
                text.extend(std::iter::repeat_n('\n', empty_run));
            }
        }
        empty_run = 0;
        started = true;
        text.push_str(line);
    }
    text
}

/// `- item`, `-` alone.
fn is_sequence_entry(text: &str) -> bool {
    text == "-" || text.starts_with("- ") || text.starts_with("-\t")
}

/// The key and the text after its colon, for a line that is a mapping entry;
/// `Some(None)` for a line that is not one; `None` to decline.
#[allow(clippy::option_option)]
fn split_key(text: &str) -> Option<Option<(String, &str)>> {
    match text.as_bytes()[0] {
        b'\'' | b'"' => {
            let (key, rest) = quoted(text)?;
            let rest = rest.trim_start_matches(' ');
            match rest.strip_prefix(':') {
                Some(after) if after.is_empty() || after.starts_with([' ', '\t']) => Some(Some((key, after))),
                // A quoted scalar alone on a line, or a syntax error.
                _ => Some(None),
            }
        }
        b'?' | b'&' | b'*' | b'!' | b'|' | b'>' | b'%' | b'@' | b'`' | b'{' | b'[' | b'#' | b',' | b']' | b'}' => {
            if text.starts_with("? ") || text == "?" || text.starts_with(['&', '*', '!']) {
                None
            } else {
                Some(None)
            }
        }
        _ => {
            let bytes = text.as_bytes();
            for (index, &byte) in bytes.iter().enumerate() {
                match byte {
                    b'#' if index > 0 && matches!(bytes[index - 1], b' ' | b'\t') => return Some(None),
                    b':' => {
                        let after = &text[index + 1..];
                        if after.is_empty() || after.starts_with([' ', '\t']) {
                            let key = text[..index].trim_end_matches([' ', '\t']);
                            if key.is_empty() {
                                return None;
                            }
                            return Some(Some((key.to_owned(), after)));
                        }
                    }
                    _ => {}
                }
            }
            Some(None)
        }
    }
}

/// A single- or double-quoted scalar that ends on its line: its value and
/// the text after the closing quote.
fn quoted(text: &str) -> Option<(String, &str)> {
    let quote = text.as_bytes()[0];
    let body = &text[1..];
    let mut value = String::new();
    if quote == b'\'' {
        let mut rest = body;
        loop {
            let end = rest.find('\'')?;
            value.push_str(&rest[..end]);
            rest = &rest[end + 1..];
            match rest.strip_prefix('\'') {
                Some(after) => {
                    value.push('\'');
                    rest = after;
                }
                None => return Some((value, rest)),
            }
        }
    }
    let mut chars = body.char_indices();
    while let Some((index, c)) = chars.next() {
        match c {
            '"' => return Some((value, &body[index + 1..])),
            '\\' => {
                let (_, escape) = chars.next()?;
                let simple = match escape {
                    '0' => '\0',
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    't' | '\t' => '\t',
                    'n' => '\n',
                    'v' => '\u{b}',
                    'f' => '\u{c}',
                    'r' => '\r',
                    'e' => '\u{1b}',
                    ' ' => ' ',
                    '"' => '"',
                    '/' => '/',
                    '\\' => '\\',
                    'N' => '\u{85}',
                    '_' => '\u{a0}',
                    'L' => '\u{2028}',
                    'P' => '\u{2029}',
                    'x' | 'u' | 'U' => {
                        let digits = match escape {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let start = index + 2;
                        let hex = body.get(start..start + digits)?;
                        let code = u32::from_str_radix(hex, 16).ok()?;
                        for _ in 0..digits {
                            chars.next();
                        }
                        char::from_u32(code)?
                    }
                    _ => return None,
                };
                value.push(simple);
            }
            _ => value.push(c),
        }
    }
    None
}

/// `Some` when `rest` is only whitespace and maybe a comment.
fn only_comment(rest: &str) -> Option<()> {
    let trimmed = rest.trim_start_matches([' ', '\t']);
    (trimmed.is_empty() || (trimmed.starts_with('#') && trimmed.len() < rest.len())).then_some(())
}

/// A plain scalar's text before a comment (` #`).
fn strip_comment(text: &str) -> &str {
    let bytes = text.as_bytes();
    for index in 1..bytes.len() {
        if bytes[index] == b'#' && matches!(bytes[index - 1], b' ' | b'\t') {
            return &text[..index];
        }
    }
    text
}

/// A flow node at the start of `text` (after spaces): the value and the rest.
fn flow_node(text: &str) -> Option<(Yaml, &str)> {
    let text = text.trim_start_matches([' ', '\t']);
    match *text.as_bytes().first()? {
        b'[' => {
            let mut items = Vec::new();
            let mut rest = &text[1..];
            loop {
                rest = rest.trim_start_matches([' ', '\t']);
                if let Some(after) = rest.strip_prefix(']') {
                    return Some((Yaml::Seq(items), after));
                }
                let (item, after) = flow_node(rest)?;
                // `[a: b]` is a map inside a sequence: declined.
                let after = after.trim_start_matches([' ', '\t']);
                items.push(item);
                rest = match after.as_bytes().first()? {
                    b',' => &after[1..],
                    b']' => after,
                    _ => return None,
                };
            }
        }
        b'{' => {
            let mut entries: Vec<(String, Yaml)> = Vec::new();
            let mut rest = &text[1..];
            loop {
                rest = rest.trim_start_matches([' ', '\t']);
                if let Some(after) = rest.strip_prefix('}') {
                    return Some((Yaml::Map(entries), after));
                }
                let (key, after) = flow_key(rest)?;
                let after = after.trim_start_matches([' ', '\t']).strip_prefix(':')?;
                if !after.starts_with([' ', '\t']) {
                    return None;
                }
                let (value, after) = flow_node(after)?;
                if entries.iter().any(|(name, _)| *name == key) {
                    return None;
                }
                entries.push((key, value));
                let after = after.trim_start_matches([' ', '\t']);
                rest = match after.as_bytes().first()? {
                    b',' => &after[1..],
                    b'}' => after,
                    _ => return None,
                };
            }
        }
        b'\'' | b'"' => {
            let (value, rest) = quoted(text)?;
            Some((Yaml::String(value), rest))
        }
        b'&' | b'*' | b'!' | b'%' | b'@' | b'`' | b'?' | b'#' | b'|' | b'>' | b',' | b':' | b'-' => {
            // `-1` is a number, `- x` is not flow at all: only the former.
            if text.starts_with('-') && text.as_bytes().get(1).is_some_and(|b| b.is_ascii_alphanumeric()) {
                flow_plain(text)
            } else {
                None
            }
        }
        _ => flow_plain(text),
    }
}

/// A plain scalar in a flow collection: up to `,`, `]`, `}` (or a colon, which
/// is declined).
fn flow_plain(text: &str) -> Option<(Yaml, &str)> {
    let end = text.find([',', ']', '}', '[', '{', '#', ':'])?;
    if matches!(text.as_bytes()[end], b'[' | b'{' | b'#' | b':') {
        return None;
    }
    let value = text[..end].trim_end_matches([' ', '\t']);
    Some((resolve(value)?, &text[end..]))
}

fn flow_key(text: &str) -> Option<(String, &str)> {
    match *text.as_bytes().first()? {
        b'\'' | b'"' => quoted(text),
        _ => {
            let end = text.find([':', ',', ']', '}', '[', '{', '#'])?;
            if text.as_bytes()[end] != b':' {
                return None;
            }
            let key = text[..end].trim_end_matches([' ', '\t']);
            (!key.is_empty()).then(|| (key.to_owned(), &text[end..]))
        }
    }
}

/// The value of a plain scalar, as the full parser types it (YAML 1.2 core
/// schema with the options of `parse_documents`); `None` for spellings that
/// are not worth getting exactly right here (exponents, hex, infinities).
fn resolve(plain: &str) -> Option<Yaml> {
    match plain {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Yaml::Null),
        "true" | "True" | "TRUE" => return Some(Yaml::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Yaml::Bool(false)),
        _ => {}
    }
    let first = plain.as_bytes()[0];
    if first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.') {
        let unsigned = plain.strip_prefix('-').unwrap_or(plain);
        if !unsigned.is_empty() && unsigned.bytes().all(|byte| byte.is_ascii_digit()) {
            if unsigned.len() > 1 && unsigned.starts_with('0') {
                // Leading zeros keep their spelling as text; signed ones are rarer.
                return (unsigned.len() == plain.len()).then(|| Yaml::String(plain.to_owned()));
            }
            if unsigned.len() > 18 || plain == "-0" {
                return None;
            }
            return Some(Yaml::Int(plain.to_owned()));
        }
        if let Some((whole, fraction)) = unsigned.split_once('.')
            && !whole.is_empty()
            && !fraction.is_empty()
            && whole.bytes().all(|byte| byte.is_ascii_digit())
            && fraction.bytes().all(|byte| byte.is_ascii_digit())
            && !(whole.len() > 1 && whole.starts_with('0'))
        {
            return plain.parse().ok().map(Yaml::Float);
        }
        let lower = plain.to_ascii_lowercase();
        if first == b'+'
            || plain.parse::<f64>().is_ok()
            || lower.starts_with("0x")
            || lower.starts_with("0o")
            || lower.starts_with("0b")
            || lower.trim_start_matches(['-', '+']).starts_with(".inf")
            || lower.starts_with(".nan")
        {
            return None;
        }
    }
    Some(Yaml::String(plain.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(text: &str) -> Result<Vec<Yaml>, String> {
        super::super::parse_full(text)
    }

    /// The subset agrees with the full parser, or declines.
    fn check(text: &str) -> bool {
        match parse(text) {
            Some(fast) => {
                let fast: Vec<Yaml> = fast.into_iter().filter(|document| *document != Yaml::Null).collect();
                assert_eq!(Ok(fast), full(text), "the subset parser disagrees on:\n{text}");
                true
            }
            None => false,
        }
    }

    #[test]
    fn typical_rule_shapes() {
        let rule = "title: Test # a comment\nid: 5\ntags:\n- attack.t1059\n- 'x'\nlogsource:\n    product: windows\ndetection:\n    selection:\n        - Image|endswith:\n            - '\\a.exe'\n            - \"\\\\b.exe\"\n          CommandLine|contains|all: [a, 'b c', \"d\"]\n        - User: null\n    filter: {a: 1, b: -2.5}\n    condition: selection and not filter\ndescription: |\n    line one\n    # not a comment\n\n    line three\nnote: >-\n    folded\n    text\n\n    here\nfalsepositives:\n    - Unknown\nlevel: high\n---\ntitle: second\n";
        assert!(check(rule), "declined");
        let docs = parse(rule).unwrap();
        assert_eq!(docs[0].get("description"), Some(&Yaml::String("line one\n# not a comment\n\nline three\n".into())));
        assert_eq!(docs[0].get("note"), Some(&Yaml::String("folded text\nhere".into())));
    }

    #[test]
    fn declines_what_it_does_not_know() {
        for text in [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "? a\n: b\n",
            "a: 'multi\n  line'\n",
            "a: plain\n  continued\n",
            "a: 1e3\n",
            "a: 0x1F\n",
            "a: .inf\n",
            "a: b: c\n",
            "a: 1\na: 2\n",
            "a:\n\t- x\n",
            "%YAML 1.2\n---\na: 1\n",
            "a: [1, 2\n",
            "  a: 1\n b: 2\n",
        ] {
            assert!(parse(text).is_none(), "accepted {text:?}");
        }
    }

    #[test]
    fn scalars_are_typed_like_the_full_parser() {
        for text in [
            "a: 1\nb: -7\nc: 010\nd: 1_000\ne: 2.5\nf: yes\ng: ~\nh:\ni: True\nj: 1.2.3\nk: 2023-01-05\nl: C:\\Windows\\x.exe\nm: http://x/y#z\nn: a #comment\n",
            "a: '' \nb: \"\"\nc: 'it''s'\nd: \"\\x41\\u00e9\\t\"\ne: -enc\nf: '-'\n",
            "list:\n  - 1\n  - a\n  -\n  - b\n",
            "k: [ ]\nl: {}\nm: [a, [b, c], {d: e}]\nn: [\n  a,\n  b ]\n",
            "1: a\nnull: b\n'quoted key': c\n\"dq\": d\nkey with spaces: e\n",
            "seq:\n- a\n- b: 1\n  c: 2\nnext: 3\n",
            "a:\n  b\nc: |-\n  x\n\n",
        ] {
            assert!(check(text), "declined {text:?}");
        }
    }

    /// A small deterministic generator for the mutations below.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, bound: usize) -> usize {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % bound.max(1)
        }
    }

    fn mutate(text: &str, random: &mut Lcg) -> String {
        let mut at = random.below(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let (head, tail) = text.split_at(at);
        let lines: Vec<&str> = text.lines().collect();
        let line = random.below(lines.len());
        match random.below(9) {
            0 => head.to_owned(),
            1 => format!("{head}{}", tail.chars().skip(1).collect::<String>()),
            2 => format!("{head}\t{tail}"),
            3 => format!("{head}: {tail}"),
            4 => format!("{head}#{tail}"),
            5 => format!("{head}'{tail}"),
            6 => format!("{head}\n{tail}"),
            7 => {
                let mut copy = lines.clone();
                copy.insert(line, lines.get(line).copied().unwrap_or(""));
                copy.join("\n")
            }
            _ => {
                let mut copy: Vec<String> = lines.iter().map(|line| line.to_string()).collect();
                if let Some(changed) = copy.get_mut(line) {
                    *changed = changed.strip_prefix("  ").map(str::to_owned).unwrap_or_else(|| format!("  {changed}"));
                }
                copy.join("\n")
            }
        }
    }

    fn yaml_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable directory") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                yaml_files(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "yml" || ext == "yaml") {
                out.push(path);
            }
        }
    }

    /// Every YAML file of the SigmaHQ repository (rules, fixtures, configs),
    /// and ten mutations of each: the subset agrees with the full parser or
    /// declines, and it reads nearly every real file itself.
    #[test]
    fn agrees_with_the_full_parser_on_the_sigmahq_repository() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/sigma");
        if !root.exists() {
            eprintln!(
                "SKIPPED agrees_with_the_full_parser_on_the_sigmahq_repository: ../shared/corpus/sigma is absent"
            );
            return;
        }
        let mut files = Vec::new();
        yaml_files(&root, &mut files);
        files.sort();
        let mut random = Lcg(7);
        let (mut read, mut mutants_read, mut mutants) = (0, 0, 0);
        let mut declined = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).expect("UTF-8 rule file");
            if check(&text) {
                read += 1;
            } else {
                declined.push(file.display().to_string());
            }
            for _ in 0..10 {
                let mutant = mutate(&text, &mut random);
                mutants += 1;
                mutants_read += usize::from(check(&mutant));
            }
        }
        eprintln!(
            "{read} of {} files read by the subset parser; {mutants_read} of {mutants} mutants; declined: {:#?}",
            files.len(),
            &declined[..declined.len().min(20)]
        );
        assert!(read * 100 >= files.len() * 97, "the subset parser reads only {read} of {} files", files.len());
    }
}
