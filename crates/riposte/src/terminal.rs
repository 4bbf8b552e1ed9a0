//! Text from events and messages (field values, names, hosts, evidence) as
//! a person should read it on a terminal: control and invisible characters
//! escaped, so that a terminal shows them instead of obeying them (an
//! attacker writes the logs and the mail); quotes, apostrophes and
//! backslashes as they are.

/// `text` with its control and invisible characters escaped (`\n`,
/// `\u{1b}`, a right-to-left override as `\u{202e}`).
pub fn shown(text: &str) -> String {
    let escaped = text.escape_debug().to_string();
    let mut out = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some(quoted @ ('"' | '\'' | '\\')) => out.push(quoted),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// [`shown`] of the first `limit` characters of `text`, and `…` when it
/// has more.
pub fn shown_within(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((cut, _)) => shown(&text[..cut]) + "…",
        None => shown(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_shown_as_written_and_controls_are_escaped() {
        let plain = r#"the receiving host's "Authentication-Results" for C:\Users\a.exe"#;
        assert_eq!(shown(plain), plain);
        assert_eq!(shown("Überweisung für Zoë"), "Überweisung für Zoë");
        assert_eq!(shown("red\u{1b}[31m alert\n"), r"red\u{1b}[31m alert\n");
        // A right-to-left override would turn `exe.pdf` around on screen.
        assert_eq!(shown("invoice\u{202e}fdp.exe"), r"invoice\u{202e}fdp.exe");
        assert_eq!(shown("ends with \\"), "ends with \\");
    }

    #[test]
    fn values_are_kept_on_one_line_and_bounded() {
        assert_eq!(shown_within("a\nb\tc", 10), r"a\nb\tc");
        assert_eq!(shown_within("abcdef", 3), "abc…");
        assert_eq!(shown_within("abc", 3), "abc");
        assert_eq!(shown_within("x\u{7}y", 10), r"x\u{7}y");
        // Cut by characters, not bytes.
        assert_eq!(shown_within("ééé", 2), "éé…");
    }
}
