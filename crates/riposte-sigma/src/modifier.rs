//! Value modifiers: from `field|mod|mod: values` to matchers.
//!
//! Whatever order the rule writes them in, modifiers act in one pipeline:
//! placeholders are expanded, the value is parsed as a Sigma string, `windash`
//! adds its variants, encodings (`utf16*`, `base64*`) apply in the order
//! written, then wildcards are placed (`contains`, `startswith`, `endswith`)
//! and the case mode chosen. Orders that cannot mean anything (an encoding
//! after a wildcard, a regex flag without `re`) are load errors.

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ipnet::IpNet;
use regex::RegexBuilder;
use riposte_event::Symbol;

use crate::matcher::{CompareOp, Matcher, TimePart};
use crate::text::{Piece, SigmaString, TextKind, fold};
use crate::yaml::Yaml;

/// Largest compiled regex, in bytes (the `regex` crate's default limit; Unicode
/// classes under counted repetition, such as `\\w{1,64}`, need several MiB).
pub const REGEX_SIZE_LIMIT: usize = 10 << 20;
/// Most `windash` positions in one value (each multiplies the variants by 5).
const WINDASH_MAX_POSITIONS: usize = 5;
/// Most variants one value may expand to (placeholders, windash).
const MAX_VARIANTS: usize = 4_096;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Modifier {
    Contains,
    StartsWith,
    EndsWith,
    All,
    Exists,
    Cased,
    Neq,
    Windash,
    Re,
    ReIgnoreCase,
    ReMultiLine,
    ReDotAll,
    Base64,
    Base64Offset,
    Utf16Le,
    Utf16Be,
    Utf16,
    Lt,
    Lte,
    Gt,
    Gte,
    Time(TimePart),
    Cidr,
    Expand,
    FieldRef,
}

impl Modifier {
    pub(crate) fn parse(name: &str) -> Option<Modifier> {
        Some(match name {
            "contains" => Modifier::Contains,
            "startswith" => Modifier::StartsWith,
            "endswith" => Modifier::EndsWith,
            "all" => Modifier::All,
            "exists" => Modifier::Exists,
            "cased" => Modifier::Cased,
            "neq" => Modifier::Neq,
            "windash" => Modifier::Windash,
            "re" => Modifier::Re,
            "i" | "ignorecase" => Modifier::ReIgnoreCase,
            "m" | "multiline" => Modifier::ReMultiLine,
            "s" | "dotall" => Modifier::ReDotAll,
            "base64" => Modifier::Base64,
            "base64offset" => Modifier::Base64Offset,
            "utf16le" | "wide" => Modifier::Utf16Le,
            "utf16be" => Modifier::Utf16Be,
            "utf16" => Modifier::Utf16,
            "lt" => Modifier::Lt,
            "lte" => Modifier::Lte,
            "gt" => Modifier::Gt,
            "gte" => Modifier::Gte,
            "minute" => Modifier::Time(TimePart::Minute),
            "hour" => Modifier::Time(TimePart::Hour),
            "day" => Modifier::Time(TimePart::Day),
            "week" => Modifier::Time(TimePart::Week),
            "month" => Modifier::Time(TimePart::Month),
            "year" => Modifier::Time(TimePart::Year),
            "cidr" => Modifier::Cidr,
            "expand" => Modifier::Expand,
            "fieldref" => Modifier::FieldRef,
            _ => return None,
        })
    }
}

impl fmt::Display for Modifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Modifier::Contains => "contains",
            Modifier::StartsWith => "startswith",
            Modifier::EndsWith => "endswith",
            Modifier::All => "all",
            Modifier::Exists => "exists",
            Modifier::Cased => "cased",
            Modifier::Neq => "neq",
            Modifier::Windash => "windash",
            Modifier::Re => "re",
            Modifier::ReIgnoreCase => "i",
            Modifier::ReMultiLine => "m",
            Modifier::ReDotAll => "s",
            Modifier::Base64 => "base64",
            Modifier::Base64Offset => "base64offset",
            Modifier::Utf16Le => "utf16le",
            Modifier::Utf16Be => "utf16be",
            Modifier::Utf16 => "utf16",
            Modifier::Lt => "lt",
            Modifier::Lte => "lte",
            Modifier::Gt => "gt",
            Modifier::Gte => "gte",
            Modifier::Time(TimePart::Minute) => "minute",
            Modifier::Time(TimePart::Hour) => "hour",
            Modifier::Time(TimePart::Day) => "day",
            Modifier::Time(TimePart::Week) => "week",
            Modifier::Time(TimePart::Month) => "month",
            Modifier::Time(TimePart::Year) => "year",
            Modifier::Cidr => "cidr",
            Modifier::Expand => "expand",
            Modifier::FieldRef => "fieldref",
        };
        f.write_str(name)
    }
}

/// Values for `%name%` placeholders of the `expand` modifier.
pub type Placeholders = HashMap<String, Vec<String>>;

/// A detection item: one field (or none, for keywords) and what it must match.
#[derive(Clone, Debug)]
pub(crate) struct Item {
    /// `None` for keyword searches over every value of the event.
    pub field: Option<Symbol>,
    pub matchers: Vec<Matcher>,
    /// `all`: every matcher must hold, instead of any.
    pub all: bool,
    /// `neq`: the item holds when the matchers do not.
    pub negate: bool,
}

/// Compiles `key: value` of a detection map. `key` is `field|mod|...` (an
/// empty field means a keyword search).
pub(crate) fn compile_item(key: &str, value: &Yaml, placeholders: &Placeholders) -> Result<Item, String> {
    let mut parts = key.split('|');
    let field = parts.next().unwrap_or_default().trim();
    let mut modifiers = Vec::new();
    for name in parts {
        let modifier = Modifier::parse(name).ok_or_else(|| format!("unknown modifier {name:?} in {key:?}"))?;
        if modifiers.contains(&modifier) {
            return Err(format!("modifier {name:?} is repeated in {key:?}"));
        }
        modifiers.push(modifier);
    }
    let values: Vec<&Yaml> = match value {
        Yaml::Seq(items) => items.iter().collect(),
        Yaml::Map(_) => {
            return Err(format!("the value of {key:?} is a map; expected a value or a list of values"));
        }
        scalar => vec![scalar],
    };
    let field_symbol = (!field.is_empty()).then(|| Symbol::intern(field));
    let plan = Plan::new(&modifiers).map_err(|reason| format!("{reason} in {key:?}"))?;
    let mut matchers = Vec::new();
    if values.is_empty() {
        // An empty list means "no value", like null.
        matchers.push(Matcher::Null);
    }
    for value in values {
        plan.matchers(value, field_symbol.is_none(), placeholders, &mut matchers)
            .map_err(|reason| format!("{reason} in {key:?}"))?;
    }
    if field_symbol.is_none()
        && matchers.iter().any(|matcher| {
            matches!(matcher, Matcher::Null | Matcher::Empty | Matcher::Exists(_) | Matcher::FieldRef { .. })
        })
    {
        return Err(format!("{key:?}: a keyword search needs text values"));
    }
    Ok(Item { field: field_symbol, matchers, all: plan.all, negate: plan.negate })
}

/// What the modifiers of one key ask for.
#[derive(Default)]
struct Plan {
    kind: Kind,
    all: bool,
    negate: bool,
    cased: bool,
    windash: bool,
    expand: bool,
    placement: Option<TextKind>,
    encodings: Vec<Modifier>,
    regex_flags: (bool, bool, bool),
}

#[derive(Default, PartialEq)]
enum Kind {
    #[default]
    Text,
    Regex,
    Cidr,
    Exists,
    FieldRef,
    Compare(CompareOp),
    Time(TimePart, CompareOp),
}

impl Plan {
    fn new(modifiers: &[Modifier]) -> Result<Plan, String> {
        let mut plan = Plan::default();
        let mut placed = false;
        for &modifier in modifiers {
            let set_kind = |plan: &mut Plan, kind: Kind| -> Result<(), String> {
                match (&plan.kind, &kind) {
                    (Kind::Text, _) => {
                        plan.kind = kind;
                        Ok(())
                    }
                    (Kind::Time(part, CompareOp::Eq), Kind::Compare(op)) => {
                        plan.kind = Kind::Time(*part, *op);
                        Ok(())
                    }
                    _ => Err(format!("modifier {modifier} cannot be combined with the ones before it")),
                }
            };
            match modifier {
                Modifier::Contains | Modifier::StartsWith | Modifier::EndsWith => {
                    if placed {
                        return Err("only one of contains, startswith, endswith may be used".into());
                    }
                    placed = true;
                    plan.placement = Some(match modifier {
                        Modifier::Contains => TextKind::Contains,
                        Modifier::StartsWith => TextKind::StartsWith,
                        _ => TextKind::EndsWith,
                    });
                }
                Modifier::All => plan.all = true,
                Modifier::Neq => plan.negate = true,
                Modifier::Cased => plan.cased = true,
                Modifier::Windash => plan.windash = true,
                Modifier::Expand => plan.expand = true,
                Modifier::Base64 | Modifier::Base64Offset | Modifier::Utf16Le | Modifier::Utf16Be | Modifier::Utf16 => {
                    if placed {
                        return Err(format!("{modifier} must come before contains, startswith and endswith"));
                    }
                    plan.encodings.push(modifier);
                }
                Modifier::Re => set_kind(&mut plan, Kind::Regex)?,
                Modifier::ReIgnoreCase | Modifier::ReMultiLine | Modifier::ReDotAll => {
                    if plan.kind != Kind::Regex {
                        return Err(format!("regex flag {modifier} needs the re modifier before it"));
                    }
                    match modifier {
                        Modifier::ReIgnoreCase => plan.regex_flags.0 = true,
                        Modifier::ReMultiLine => plan.regex_flags.1 = true,
                        _ => plan.regex_flags.2 = true,
                    }
                }
                Modifier::Cidr => set_kind(&mut plan, Kind::Cidr)?,
                Modifier::Exists => set_kind(&mut plan, Kind::Exists)?,
                Modifier::FieldRef => set_kind(&mut plan, Kind::FieldRef)?,
                Modifier::Lt | Modifier::Lte | Modifier::Gt | Modifier::Gte => {
                    let op = match modifier {
                        Modifier::Lt => CompareOp::Lt,
                        Modifier::Lte => CompareOp::Lte,
                        Modifier::Gt => CompareOp::Gt,
                        _ => CompareOp::Gte,
                    };
                    set_kind(&mut plan, Kind::Compare(op))?;
                }
                Modifier::Time(part) => set_kind(&mut plan, Kind::Time(part, CompareOp::Eq))?,
            }
        }
        // What each kind of value accepts.
        let text_only = |plan: &Plan, what: &str| -> Result<(), String> {
            if plan.windash || !plan.encodings.is_empty() || plan.expand {
                return Err(format!("{what} values take no windash, expand or encoding modifiers"));
            }
            Ok(())
        };
        match plan.kind {
            Kind::Text => {}
            Kind::Regex => {
                if plan.windash || !plan.encodings.is_empty() || plan.cased {
                    return Err("re takes no windash, encoding or cased modifiers".into());
                }
            }
            Kind::Cidr | Kind::Exists | Kind::Compare(_) | Kind::Time(..) => {
                text_only(&plan, "these")?;
                if plan.placement.is_some() || plan.cased {
                    return Err("contains, startswith, endswith and cased apply to text values only".into());
                }
            }
            Kind::FieldRef => text_only(&plan, "fieldref")?,
        }
        if let Some(last) = plan.encodings.last()
            && !matches!(last, Modifier::Base64 | Modifier::Base64Offset)
        {
            return Err(format!("{last} must be followed by base64 or base64offset"));
        }
        Ok(plan)
    }

    fn matchers(
        &self,
        value: &Yaml,
        keyword: bool,
        placeholders: &Placeholders,
        out: &mut Vec<Matcher>,
    ) -> Result<(), String> {
        match self.kind {
            Kind::Exists => {
                let Yaml::Bool(expected) = value else {
                    return Err(format!("exists needs true or false, found {}", value.kind()));
                };
                out.push(Matcher::Exists(*expected));
                Ok(())
            }
            Kind::Compare(op) => {
                out.push(Matcher::Compare { op, value: number(value)?, part: None });
                Ok(())
            }
            Kind::Time(part, op) => {
                out.push(Matcher::Compare { op, value: number(value)?, part: Some(part) });
                Ok(())
            }
            Kind::Cidr => {
                let text = scalar(value)?;
                let network: IpNet = text
                    .parse()
                    .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{text:?} is not an IPv4 or IPv6 network"))?;
                // A network written with host bits set means its network.
                out.push(Matcher::Cidr(network.trunc()));
                Ok(())
            }
            Kind::FieldRef => {
                let other = scalar(value)?;
                if other.contains(['*', '?']) {
                    return Err(format!("fieldref names a field, {other:?} has wildcards"));
                }
                out.push(Matcher::FieldRef {
                    other: Symbol::intern(&other),
                    kind: self.placement.unwrap_or(TextKind::Equals),
                    cased: self.cased,
                });
                Ok(())
            }
            Kind::Regex => {
                for pattern in self.expanded(value, placeholders)? {
                    out.push(self.regex(&pattern)?);
                }
                Ok(())
            }
            Kind::Text => self.text_matchers(value, keyword, placeholders, out),
        }
    }

    /// The raw string variants of a value after `expand`.
    fn expanded(&self, value: &Yaml, placeholders: &Placeholders) -> Result<Vec<String>, String> {
        let text = scalar(value)?;
        if self.expand { expand(&text, placeholders) } else { Ok(vec![text]) }
    }

    fn regex(&self, pattern: &str) -> Result<Matcher, String> {
        let (ignore_case, multi_line, dot_all) = self.regex_flags;
        let anchored = match self.placement {
            Some(TextKind::StartsWith) => format!("^(?:{pattern})"),
            Some(TextKind::EndsWith) => format!("(?:{pattern})$"),
            _ => pattern.to_owned(),
        };
        let pcre = crate::pcre::ascii_perl_classes(&anchored);
        let regex = RegexBuilder::new(pcre.as_deref().unwrap_or(&anchored))
            .case_insensitive(ignore_case)
            .multi_line(multi_line)
            .dot_matches_new_line(dot_all)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|error| format!("regex {pattern:?} does not compile: {}", one_line(&error.to_string())))?;
        let required =
            crate::literals::required_literals(pcre.as_deref().unwrap_or(&anchored), ignore_case).unwrap_or_default();
        Ok(Matcher::Regex { regex, required })
    }

    fn text_matchers(
        &self,
        value: &Yaml,
        keyword: bool,
        placeholders: &Placeholders,
        out: &mut Vec<Matcher>,
    ) -> Result<(), String> {
        let mut strings: Vec<SigmaString> = match value {
            Yaml::Null => {
                if self.placement.is_some() || !self.encodings.is_empty() {
                    return Err("null cannot be combined with contains, startswith, endswith or encodings".into());
                }
                out.push(Matcher::Null);
                return Ok(());
            }
            Yaml::String(text)
                if text.is_empty() && self.placement.is_none() && !keyword && self.encodings.is_empty() =>
            {
                out.push(Matcher::Empty);
                return Ok(());
            }
            Yaml::String(_) => {
                self.expanded(value, placeholders)?.iter().map(|text| SigmaString::parse(text)).collect()
            }
            // Numbers and booleans are compared as the text they print as.
            other => vec![SigmaString::literal(&scalar(other)?)],
        };
        if self.windash {
            strings = strings.iter().map(windash).collect::<Result<Vec<_>, _>>()?.into_iter().flatten().collect();
        }
        let mut encoded_case_sensitive = false;
        if !self.encodings.is_empty() {
            let mut bytes: Vec<Vec<u8>> = Vec::with_capacity(strings.len());
            for string in &strings {
                let text = string
                    .as_literal()
                    .ok_or_else(|| format!("{} needs a value without wildcards", self.encodings[0]))?;
                bytes.push(text.into_bytes());
            }
            for encoding in &self.encodings {
                bytes = bytes.iter().flat_map(|data| encode(*encoding, data)).collect();
            }
            bytes.retain(|data| !data.is_empty());
            if bytes.is_empty() {
                return Err("the value is too short to encode".into());
            }
            // Base64 text is case-sensitive: folding it would match other bytes.
            encoded_case_sensitive = true;
            strings = bytes.into_iter().map(|data| SigmaString::literal(&String::from_utf8_lossy(&data))).collect();
        }
        let cased = self.cased || encoded_case_sensitive;
        for mut string in strings {
            match self.placement {
                Some(TextKind::Contains) => {
                    string.prepend_any();
                    string.append_any();
                }
                Some(TextKind::StartsWith) => string.append_any(),
                Some(TextKind::EndsWith) => string.prepend_any(),
                _ if keyword => {
                    // Keywords are found anywhere in a value.
                    string.prepend_any();
                    string.append_any();
                }
                _ => {}
            }
            out.push(Matcher::Text(string.compile(cased)));
        }
        Ok(())
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn scalar(value: &Yaml) -> Result<String, String> {
    value.scalar_text().ok_or_else(|| format!("expected a value, found {}", value.kind()))
}

fn number(value: &Yaml) -> Result<f64, String> {
    let text = scalar(value)?;
    crate::matcher::parse_number(&text).ok_or_else(|| format!("expected a number, found {text:?}"))
}

/// `%name%` placeholders replaced by every configured value (`\%` is a
/// literal percent sign).
pub(crate) fn expand(text: &str, placeholders: &Placeholders) -> Result<Vec<String>, String> {
    let mut variants = vec![String::new()];
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("\\%") {
            variants.iter_mut().for_each(|variant| variant.push('%'));
            rest = after;
            continue;
        }
        if let Some(after) = rest.strip_prefix('%')
            && let Some(end) = after.find('%')
            && end > 0
            && after[..end].chars().all(|ch| ch.is_alphanumeric() || ch == '_')
        {
            let name = &after[..end];
            let values =
                placeholders.get(name).ok_or_else(|| format!("placeholder %{name}% has no values configured"))?;
            if values.is_empty() {
                return Err(format!("placeholder %{name}% has an empty list of values"));
            }
            if variants.len() * values.len() > MAX_VARIANTS {
                return Err(format!("placeholders expand to more than {MAX_VARIANTS} values"));
            }
            variants = variants
                .iter()
                .flat_map(|variant| values.iter().map(move |value| format!("{variant}{value}")))
                .collect();
            rest = &after[end + 1..];
            continue;
        }
        let ch = rest.chars().next().unwrap_or_default();
        variants.iter_mut().for_each(|variant| variant.push(ch));
        rest = &rest[ch.len_utf8()..];
    }
    Ok(variants)
}

/// The dash characters `windash` tries at each position.
const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];

/// Every variant of a string where each `-` or `/` that starts a command-line
/// flag (not after a word character, before one) is replaced by each of
/// [`DASHES`].
fn windash(string: &SigmaString) -> Result<Vec<SigmaString>, String> {
    let is_word = |ch: char| ch.is_alphanumeric() || ch == '_';
    // Positions as (piece index, char index).
    let mut positions = Vec::new();
    for (piece_index, piece) in string.pieces().iter().enumerate() {
        if let Piece::Literal(text) = piece {
            let chars: Vec<char> = text.chars().collect();
            for (index, &ch) in chars.iter().enumerate() {
                let after_word = index > 0 && is_word(chars[index - 1]);
                let before_word = chars.get(index + 1).is_some_and(|&next| is_word(next));
                if matches!(ch, '-' | '/') && !after_word && before_word {
                    positions.push((piece_index, index));
                }
            }
        }
    }
    if positions.len() > WINDASH_MAX_POSITIONS {
        return Err(format!("windash: more than {WINDASH_MAX_POSITIONS} flag dashes in one value"));
    }
    let count = DASHES.len().pow(positions.len() as u32);
    let mut variants = Vec::with_capacity(count);
    for mut combination in 0..count {
        let mut pieces: Vec<Piece> = string.pieces().to_vec();
        for &(piece_index, char_index) in &positions {
            let dash = DASHES[combination % DASHES.len()];
            combination /= DASHES.len();
            if let Piece::Literal(text) = &mut pieces[piece_index] {
                *text =
                    text.chars().enumerate().map(|(index, ch)| if index == char_index { dash } else { ch }).collect();
            }
        }
        variants.push(SigmaString::from_pieces(pieces));
    }
    Ok(variants)
}

fn encode(encoding: Modifier, data: &[u8]) -> Vec<Vec<u8>> {
    let utf16 = |big_endian: bool, bom: bool| {
        let text = String::from_utf8_lossy(data);
        let mut out = Vec::with_capacity(data.len() * 2 + 2);
        if bom {
            out.extend_from_slice(&[0xff, 0xfe]);
        }
        for unit in text.encode_utf16() {
            out.extend_from_slice(&if big_endian { unit.to_be_bytes() } else { unit.to_le_bytes() });
        }
        out
    };
    match encoding {
        Modifier::Utf16Le => vec![utf16(false, false)],
        Modifier::Utf16Be => vec![utf16(true, false)],
        Modifier::Utf16 => vec![utf16(false, true)],
        Modifier::Base64 => vec![BASE64.encode(data).into_bytes()],
        Modifier::Base64Offset => base64_offsets(data),
        _ => vec![data.to_vec()],
    }
}

/// The three encodings of `data` at byte offsets 0, 1 and 2 inside a larger
/// base64 text, with the characters that depend on neighbouring bytes cut.
pub(crate) fn base64_offsets(data: &[u8]) -> Vec<Vec<u8>> {
    const START_CUT: [usize; 3] = [0, 2, 3];
    const END_CUT: [usize; 3] = [0, 3, 2];
    (0..3)
        .map(|shift| {
            let mut shifted = vec![b' '; shift];
            shifted.extend_from_slice(data);
            let encoded = BASE64.encode(&shifted).into_bytes();
            let start = START_CUT[shift];
            let end = encoded.len().saturating_sub(END_CUT[(data.len() + shift) % 3]);
            encoded.get(start..end.max(start)).unwrap_or_default().to_vec()
        })
        .collect()
}

/// Lower-cases an index literal the way values are folded.
pub(crate) fn fold_bytes(bytes: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(bytes) {
        Ok(text) => fold(text).into_bytes(),
        Err(_) => bytes.to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use riposte_event::Event;

    use crate::matcher::Buffers;

    fn item(key: &str, yaml: &str) -> Item {
        let value = crate::yaml::parse_documents(&format!("v: {yaml}")).unwrap().remove(0);
        compile_item(key, value.get("v").unwrap(), &Placeholders::new()).unwrap()
    }

    fn error(key: &str, yaml: &str) -> String {
        let value = crate::yaml::parse_documents(&format!("v: {yaml}")).unwrap().remove(0);
        compile_item(key, value.get("v").unwrap(), &Placeholders::new()).unwrap_err()
    }

    fn eval(item: &Item, event: &Event) -> bool {
        let mut buffers = Buffers::for_event(event);
        let mut results = item.matchers.iter().map(|matcher| matcher.eval(event, item.field, &mut buffers));
        let hit = if item.all { results.all(|hit| hit) } else { results.any(|hit| hit) };
        hit != item.negate
    }

    fn texts(item: &Item) -> Vec<String> {
        item.matchers
            .iter()
            .map(|matcher| match matcher {
                Matcher::Text(text) => String::from_utf8_lossy(&text.text).into_owned(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn base64offset_variants_are_aligned() {
        let cases: [(&str, [&str; 3]); 4] = [
            ("foobar", ["Zm9vYmFy", "Zvb2Jhc", "mb29iYX"]),
            ("/bin/bash", ["L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"]),
            ("abcd", ["YWJjZ", "FiY2", "hYmNk"]),
            ("Invoke-Mimikatz", ["SW52b2tlLU1pbWlrYXR6", "ludm9rZS1NaW1pa2F0e", "JbnZva2UtTWltaWthdH"]),
        ];
        for (input, expected) in cases {
            let got: Vec<String> =
                base64_offsets(input.as_bytes()).into_iter().map(|v| String::from_utf8(v).unwrap()).collect();
            assert_eq!(got, expected, "{input}");
        }
        // A one-byte value has an empty variant, which must not match everything.
        let short = item("CommandLine|base64offset|contains", "a");
        assert_eq!(texts(&short), ["Y", "h"]);
    }

    #[test]
    fn utf16_encodings_before_base64() {
        assert_eq!(texts(&item("c|wide|base64offset|contains", "ping")), ["cABpAG4AZw", "AAaQBuAGcA", "wAGkAbgBnA"]);
        assert_eq!(texts(&item("c|utf16le|base64", "cmd")), ["YwBtAGQA"]);
        assert_eq!(texts(&item("c|utf16|base64", "cmd")), ["//5jAG0AZAA="]);
        assert_eq!(texts(&item("c|utf16be|base64offset|contains", "cmd")), ["AGMAbQBk", "BjAG0AZ", "AYwBtAG"]);
        assert_eq!(texts(&item("c|utf16|base64offset|contains", "cmd")), ["//5jAG0AZA", "/+YwBtAGQA", "//mMAbQBkA"]);
        assert!(error("c|wide", "cmd").contains("must be followed by base64"));
        assert!(error("c|contains|base64", "cmd").contains("must come before contains"));
        assert!(error("c|base64", "cm*d").contains("without wildcards"));
    }

    #[test]
    fn base64_matching_is_case_sensitive() {
        let found = item("CommandLine|base64offset|contains", "Invoke-Mimikatz");
        let event = Event::new().with("CommandLine", "powershell -e SW52b2tlLU1pbWlrYXR6");
        assert!(eval(&found, &event));
        let event = Event::new().with("CommandLine", "powershell -e sw52b2tllu1pbwlrYXR6");
        assert!(!eval(&found, &event));
    }

    #[test]
    fn windash_covers_all_five_dashes() {
        let windash = item("CommandLine|windash|contains", "' -exec bypass'");
        assert_eq!(windash.matchers.len(), 5);
        for dash in ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'] {
            let event = Event::new().with("CommandLine", format!("powershell {dash}Exec Bypass").as_str());
            assert!(eval(&windash, &event), "{dash}");
        }
        let event = Event::new().with("CommandLine", "powershell +exec bypass");
        assert!(!eval(&windash, &event));
        assert_eq!(item("c|windash", "'-a -b'").matchers.len(), 25);
        assert_eq!(item("c|windash", "'a/b'").matchers.len(), 1, "a slash after a word character is no flag");
        assert_eq!(item("c|windash", "'-- x'").matchers.len(), 1);
        assert_eq!(item("c|windash", "'-param-name'").matchers.len(), 5, "only the leading dash");
    }

    #[test]
    fn all_with_contains_needs_every_value() {
        let all = item("CommandLine|contains|all", "['net', 'user', '/add']");
        assert!(eval(&all, &Event::new().with("CommandLine", "net user bob P@ss /add")));
        assert!(!eval(&all, &Event::new().with("CommandLine", "net user bob")));
        let any = item("CommandLine|contains", "['net', 'nope']");
        assert!(eval(&any, &Event::new().with("CommandLine", "net user")));
    }

    #[test]
    fn neq_is_not_any_of_the_values() {
        let neq = item("User|neq", "['SYSTEM', 'LOCAL SERVICE']");
        assert!(eval(&neq, &Event::new().with("User", "bob")));
        assert!(!eval(&neq, &Event::new().with("User", "system")));
        assert!(eval(&neq, &Event::new()), "a missing field differs");
        let neq_ref = item("SubjectUserName|fieldref|neq", "TargetUserName");
        assert!(eval(&neq_ref, &Event::new().with("SubjectUserName", "a").with("TargetUserName", "b")));
        assert!(!eval(&neq_ref, &Event::new().with("SubjectUserName", "a").with("TargetUserName", "A")));
    }

    #[test]
    fn regex_with_flags_and_limits() {
        let plain = item("CommandLine|re", "'\\s-[eE]nc\\s'");
        assert!(eval(&plain, &Event::new().with("CommandLine", "ps -Enc abc")));
        assert!(!eval(&plain, &Event::new().with("CommandLine", "ps -ENC abc")), "case-sensitive by default");
        let insensitive = item("CommandLine|re|i", "'\\s-enc\\s'");
        assert!(eval(&insensitive, &Event::new().with("CommandLine", "ps -ENC abc")));
        let dot_all = item("x|re|s", "'a.b'");
        assert!(eval(&dot_all, &Event::new().with("x", "a\nb")));
        let not_dot_all = item("x|re", "'a.b'");
        assert!(!eval(&not_dot_all, &Event::new().with("x", "a\nb")));
        let multi_line = item("x|re|m", "'^b$'");
        assert!(eval(&multi_line, &Event::new().with("x", "a\nb\nc")));
        assert!(error("x|re", "'(?=x)'").contains("does not compile"));
        assert!(error("x|re", "'a{1000}{1000}'").contains("does not compile"), "size-bounded");
        assert!(error("x|i", "'a'").contains("needs the re modifier"));
        if let Matcher::Regex { required, .. } = &item("x|re|i", "'Mimi(katz|dogz)'").matchers[0] {
            assert_eq!(required, &vec![b"mimidogz".to_vec(), b"mimikatz".to_vec()]);
        } else {
            panic!("not a regex");
        }
        if let Matcher::Regex { required, .. } = &item("x|re", "'.*'").matchers[0] {
            assert!(required.is_empty(), "nothing is required of an empty-matching regex");
        }
    }

    #[test]
    fn cidr_numbers_times_exists() {
        let cidr = item("DestinationIp|cidr", "['10.0.0.0/8', '2a03:2880:f132:83:face:b00c::/96', '192.168.1.7']");
        assert!(eval(&cidr, &Event::new().with("DestinationIp", "10.200.1.1")));
        assert!(eval(&cidr, &Event::new().with("DestinationIp", "2a03:2880:f132:83:face:b00c:0:25de")));
        assert!(eval(&cidr, &Event::new().with("DestinationIp", "192.168.1.7")));
        assert!(!eval(&cidr, &Event::new().with("DestinationIp", "192.168.1.8")));
        assert!(error("x|cidr", "'10.0.0.0/33'").contains("network"));
        let gt = item("Port|gte", "1024");
        assert!(eval(&gt, &Event::new().with("Port", 1024)));
        assert!(!eval(&gt, &Event::new().with("Port", "80")));
        assert!(error("Port|gt", "'abc'").contains("number"));
        let hour = item("Time|hour|gte", "20");
        assert!(eval(&hour, &Event::new().with("Time", "2024-01-01T21:00:00Z")));
        assert!(!eval(&hour, &Event::new().with("Time", "2024-01-01T08:00:00Z")));
        let minute = item("Time|minute", "[0, 30]");
        assert!(eval(&minute, &Event::new().with("Time", "2024-01-01T21:30:10Z")));
        let exists = item("x|exists", "true");
        assert!(eval(&exists, &Event::new().with("x", "")));
        assert!(error("x|exists", "'yes'").contains("true or false"));
        assert!(error("x|gt|contains", "1").contains("text values only"));
        assert!(error("x|cidr|re", "'a'").contains("cannot be combined"));
    }

    #[test]
    fn expand_uses_configured_placeholders() {
        let mut placeholders = Placeholders::new();
        placeholders.insert("DomainControllers".into(), vec!["DC1".into(), "DC2*".into()]);
        let value = Yaml::String("%DomainControllers%".into());
        let expanded = compile_item("Computer|expand", &value, &placeholders).unwrap();
        assert!(eval(&expanded, &Event::new().with("Computer", "dc1")));
        assert!(eval(&expanded, &Event::new().with("Computer", "DC2.corp")));
        assert!(!eval(&expanded, &Event::new().with("Computer", "WS1")));
        assert!(
            compile_item("Computer|expand", &value, &Placeholders::new()).unwrap_err().contains("%DomainControllers%")
        );
        assert_eq!(expand(r"\%plain%x%", &placeholders).unwrap_err(), "placeholder %x% has no values configured");
        assert_eq!(expand("100%", &placeholders).unwrap(), ["100%"]);
        // Without expand, percent signs are literal.
        let literal = item("Computer", "'%DomainControllers%'");
        assert!(eval(&literal, &Event::new().with("Computer", "%DomainControllers%")));
    }

    #[test]
    fn scalar_kinds_and_errors() {
        assert!(eval(&item("EventID", "4688"), &Event::new().with("EventID", 4688)));
        assert!(eval(&item("EventID", "4688"), &Event::new().with("EventID", "4688")));
        assert!(eval(&item("Initiated", "true"), &Event::new().with("Initiated", "True")));
        assert!(eval(&item("Initiated", "'true'"), &Event::new().with("Initiated", true)));
        assert!(eval(&item("Image", "null"), &Event::new()));
        assert!(eval(&item("Image", "''"), &Event::new().with("Image", "")));
        assert!(eval(&item("Image", "[]"), &Event::new()));
        assert!(error("Image|bogus", "1").contains("unknown modifier \"bogus\""));
        assert!(error("Image|contains|contains", "1").contains("repeated"));
        assert!(error("Image|contains|endswith", "1").contains("only one of"));
        assert!(error("Image", "{a: 1}").contains("is a map"));
        assert!(error("|exists", "true").contains("keyword"));
    }

    #[test]
    fn escaped_wildcards_stay_literal() {
        let star = item("CommandLine|contains", r"'\*'");
        assert!(eval(&star, &Event::new().with("CommandLine", "dir *.txt")));
        assert!(!eval(&star, &Event::new().with("CommandLine", "dir a.txt")));
        let question = item("CommandLine|endswith", r"'\?'");
        assert!(eval(&question, &Event::new().with("CommandLine", "what?")));
        assert!(!eval(&question, &Event::new().with("CommandLine", "whatx")));
    }
}
