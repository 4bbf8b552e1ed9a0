//! Literals that every match of a regex contains, for the rule index.
//!
//! A prefix set is not enough: `\w+`x`` or `(?i)set.*&&.*invoke` have no
//! finite prefixes, yet every match holds a backtick, or `invoke`. This walks
//! the regex's syntax tree and keeps, for each part, the best set of
//! alternatives one of which every match of that part contains; a
//! concatenation keeps the best of its parts, joining adjacent fixed texts
//! (`set` then `&&` is the text `set&&` only when nothing lies between).

use regex_syntax::hir::{Class, Hir, HirKind};

/// Most alternatives kept in one set (a larger set is worth little).
const MAX_ALTERNATIVES: usize = 64;

/// Literals (lower-cased ASCII) one of which every match of `pattern`
/// contains, or `None` when no useful set is known (the index then
/// evaluates the rule for every event of its log source).
pub(crate) fn required_literals(pattern: &str, ignore_case: bool) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::ParserBuilder::new().case_insensitive(ignore_case).build().parse(pattern).ok()?;
    let mut set = required(&hir)?;
    set.sort();
    Some(set)
}

/// Drops texts that hold another text of the set: wherever they are, that
/// one is too (`ab` and `abc` need only `ab`).
fn minimal(mut set: Set) -> Set {
    set.sort_by_key(Vec::len);
    set.dedup();
    let mut kept: Set = Vec::with_capacity(set.len());
    for text in set {
        if !kept.iter().any(|shorter| memchr::memmem::find(&text, shorter).is_some()) {
            kept.push(text);
        }
    }
    kept
}

type Set = Vec<Vec<u8>>;

/// Longest text a fixed set holds (longer ones are cut by the index anyway).
const MAX_TEXT: usize = 256;

/// The best set for `hir`: one of its texts is in every match.
fn required(hir: &Hir) -> Option<Set> {
    if let Some(set) = fixed(hir) {
        return (!set.iter().any(Vec::is_empty)).then(|| minimal(set));
    }
    match hir.kind() {
        HirKind::Capture(capture) => required(&capture.sub),
        HirKind::Repetition(repetition) if repetition.min >= 1 => required(&repetition.sub),
        HirKind::Concat(parts) => {
            let mut best: Option<Set> = None;
            let mut keep = |candidate: Set| {
                let candidate = minimal(candidate);
                if !candidate.iter().any(Vec::is_empty)
                    && best.as_ref().is_none_or(|best| strength(&candidate) > strength(best))
                {
                    best = Some(candidate);
                }
            };
            // Adjacent parts that match fixed texts join into one run.
            let mut run: Set = vec![Vec::new()];
            for part in parts {
                match fixed(part) {
                    Some(texts) => match product(&run, &texts) {
                        Some(longer) => run = longer,
                        None => keep(std::mem::replace(&mut run, texts)),
                    },
                    None => {
                        keep(std::mem::replace(&mut run, vec![Vec::new()]));
                        if let Some(set) = required(part) {
                            keep(set);
                        }
                    }
                }
            }
            keep(run);
            best
        }
        HirKind::Alternation(branches) => {
            let mut union: Set = Vec::new();
            for branch in branches {
                union.extend(required(branch)?);
                if union.len() > MAX_ALTERNATIVES {
                    return None;
                }
            }
            Some(minimal(union))
        }
        _ => None,
    }
}

/// How selective a set is: its shortest text (long texts count alike), then
/// fewer alternatives.
fn strength(set: &[Vec<u8>]) -> (usize, std::cmp::Reverse<usize>) {
    let shortest = set.iter().map(|text| text.len().min(16)).min().unwrap_or(0);
    (shortest, std::cmp::Reverse(set.len()))
}

/// Every text `hir` matches, lower-cased, when they are few and short
/// (`(?i)ab` is `ab`, `a[bc]?` is `a`, `ab`, `ac`). Non-ASCII text gives
/// `None`: folding it the way values are folded is not certain to agree
/// with the regex.
fn fixed(hir: &Hir) -> Option<Set> {
    match hir.kind() {
        HirKind::Empty => Some(vec![Vec::new()]),
        HirKind::Literal(literal) => literal.0.is_ascii().then(|| vec![literal.0.to_ascii_lowercase()]),
        HirKind::Class(class) => letters(class).map(|bytes| bytes.into_iter().map(|byte| vec![byte]).collect()),
        HirKind::Capture(capture) => fixed(&capture.sub),
        HirKind::Repetition(repetition) => {
            let texts = fixed(&repetition.sub)?;
            match (repetition.min, repetition.max) {
                (0, Some(1)) => {
                    let mut optional = texts;
                    optional.push(Vec::new());
                    Some(optional)
                }
                (min, Some(max)) if min == max && min <= 16 => {
                    (0..min).try_fold(vec![Vec::new()], |run, _| product(&run, &texts))
                }
                _ => None,
            }
        }
        HirKind::Concat(parts) => parts.iter().try_fold(vec![Vec::new()], |run, part| product(&run, &fixed(part)?)),
        HirKind::Alternation(branches) => {
            let mut union: Set = Vec::new();
            for branch in branches {
                union.extend(fixed(branch)?);
                if union.len() > MAX_ALTERNATIVES {
                    return None;
                }
            }
            Some(union)
        }
        _ => None,
    }
}

/// Every text of `left` followed by every text of `right`, if not too many
/// or too long.
fn product(left: &[Vec<u8>], right: &[Vec<u8>]) -> Option<Set> {
    if left.len() * right.len() > MAX_ALTERNATIVES {
        return None;
    }
    let mut out = Vec::with_capacity(left.len() * right.len());
    for head in left {
        for tail in right {
            if head.len() + tail.len() > MAX_TEXT {
                return None;
            }
            let mut text = head.clone();
            text.extend_from_slice(tail);
            if !out.contains(&text) {
                out.push(text);
            }
        }
    }
    Some(out)
}

/// The lower-case ASCII characters a small class holds once folded (how
/// case-insensitive regexes spell letters: `(?i)k` is `[Kk\u{212A}]`, all
/// `k` once folded). `None` when the class is large or holds a character
/// that does not fold to ASCII (`(?i)s` holds `ſ`, which folds to itself).
fn letters(class: &Class) -> Option<Vec<u8>> {
    const MOST: u32 = 8;
    let mut chars: Vec<char> = Vec::new();
    match class {
        Class::Unicode(class) => {
            for range in class.iter() {
                if (range.end() as u32) - (range.start() as u32) >= MOST {
                    return None;
                }
                chars.extend(range.start()..=range.end());
            }
        }
        Class::Bytes(class) => {
            for range in class.iter() {
                if u32::from(range.end() - range.start()) >= MOST {
                    return None;
                }
                chars.extend((range.start()..=range.end()).map(char::from));
            }
        }
    }
    if chars.len() > MOST as usize {
        return None;
    }
    let mut bytes = Vec::new();
    for c in chars {
        let mut folded = c.to_lowercase();
        let (Some(lower), None) = (folded.next(), folded.next()) else { return None };
        if !lower.is_ascii() {
            return None;
        }
        if !bytes.contains(&(lower as u8)) {
            bytes.push(lower as u8);
        }
    }
    (bytes.len() <= 4).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(pattern: &str, ignore_case: bool) -> Option<Vec<String>> {
        required_literals(pattern, ignore_case)
            .map(|set| set.into_iter().map(|text| String::from_utf8(text).unwrap()).collect())
    }

    #[test]
    fn inner_texts_of_unbounded_starts() {
        assert_eq!(texts(r"\w+`(?:\w+|-|.)`[\w+|\s]", false), Some(vec!["`".into()]));
        assert_eq!(
            texts(r"(?:set).*&&\s?set.*(?:environment|invoke|\$\{?input).*&&.*", false),
            Some(vec!["$input".into(), "${input".into(), "environment".into(), "invoke".into()])
        );
        assert_eq!(
            texts(r#"\.exe["']?\s+[^"]{0,64}werfaultsecure\.exe["']?\s+\d{2,10}"#, false),
            Some(vec!["werfaultsecure.exe".into()])
        );
        // `(?i)s` may be `ſ`, which values keep: texts break there.
        assert_eq!(
            texts(r#"(?i)\.exe["']?\s+[^"]{0,64}werfaultsecure\.exe["']?\s+\d{2,10}"#, false),
            Some(vec!["ecure.exe".into()])
        );
    }

    #[test]
    fn case_insensitive_letters_join_into_text() {
        assert_eq!(texts("Mimi(katz|dogz)", true), Some(vec!["mimidogz".into(), "mimikatz".into()]));
        // The Kelvin sign is a `k` once folded.
        assert_eq!(texts("(?i)kerbero", false), Some(vec!["kerbero".into()]));
        assert_eq!(texts("a{3}b", false), Some(vec!["aaab".into()]));
        assert_eq!(texts(r#"x["']?y"#, false), Some(vec!["x\"y".into(), "x'y".into(), "xy".into()]));
    }

    #[test]
    fn nothing_required_when_a_branch_may_be_empty() {
        assert_eq!(texts(".*", false), None);
        assert_eq!(texts("a|.*", false), None);
        assert_eq!(texts("(abc)?x*", false), None);
        assert_eq!(texts("(?:abc)*", false), None);
        // Non-ASCII text is left to evaluation.
        assert_eq!(texts("(?i)é", false), None);
    }

    #[test]
    fn every_required_text_is_in_every_match() {
        // Spot check of the guarantee on texts the regexes match.
        for (pattern, haystack) in [
            (r"(?i)(?:set).*&&\s?set.*(?:environment|invoke).*&&.*", "SET x=1&& Set y=INVOKE&&echo"),
            (r"\w+`(?:\w+|-|.)`[\w+|\s]", "IN`V`oke"),
            (r"(?i)cmd(\.exe)? /c (echo|type) \w+", "CMD /C TYPE secret"),
        ] {
            let regex = regex::RegexBuilder::new(pattern).build().unwrap();
            assert!(regex.is_match(haystack));
            let folded = haystack.to_ascii_lowercase();
            let set = texts(pattern, false).unwrap();
            assert!(set.iter().any(|text| folded.contains(text.as_str())), "{pattern}: {set:?}");
        }
    }
}
