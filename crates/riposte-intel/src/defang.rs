//! Defanged indicators, as reports write them so that nobody clicks them
//! (`hxxp://evil[.]example`, `bob[at]evil(.)example`), turned back into
//! their real form, and the reverse.

/// The real form of a defanged text: `hxxp`/`hXXp`/`fxp` schemes, `[.]`,
/// `(.)`, `{.}`, `[dot]`, `(dot)`, `[:]`, `[://]`, `[at]`, `(at)`, `[@]`
/// and `\.`. Text that is not defanged comes back unchanged.
pub fn refang(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        let rest = &text[index..];
        if let Some((real, used)) = defanged_token(rest) {
            out.push_str(real);
            index += used;
            continue;
        }
        let ch = rest.chars().next().expect("not at the end");
        out.push(ch);
        index += ch.len_utf8();
    }
    out
}

/// A defanged token at the start of `text`: its real form and its length.
fn defanged_token(text: &str) -> Option<(&'static str, usize)> {
    const TOKENS: &[(&str, &str)] = &[
        ("[://]", "://"),
        ("[:]//", "://"),
        ("[.]", "."),
        ("(.)", "."),
        ("{.}", "."),
        ("[dot]", "."),
        ("(dot)", "."),
        ("{dot}", "."),
        (" [dot] ", "."),
        ("[:]", ":"),
        ("[at]", "@"),
        ("(at)", "@"),
        ("{at}", "@"),
        ("[@]", "@"),
        (" [at] ", "@"),
        ("\\.", "."),
    ];
    for (defanged, real) in TOKENS {
        if text.len() >= defanged.len() && text.as_bytes()[..defanged.len()].eq_ignore_ascii_case(defanged.as_bytes()) {
            return Some((real, defanged.len()));
        }
    }
    // Schemes: hxxp, hxxps, hXXp, fxp, fxps (at a word start).
    for (defanged, real) in [("hxxps", "https"), ("hxxp", "http"), ("fxps", "ftps"), ("fxp", "ftp")] {
        if text.len() > defanged.len()
            && text.as_bytes()[..defanged.len()].eq_ignore_ascii_case(defanged.as_bytes())
            && (text[defanged.len()..].starts_with("://")
                || text[defanged.len()..].starts_with("[://]")
                || text[defanged.len()..].starts_with("[:]"))
        {
            return Some((real, defanged.len()));
        }
    }
    None
}

/// A value written so that it cannot be followed: `http` as `hxxp`, every
/// `.` of the host as `[.]`, `@` as `[at]`.
pub fn defang(value: &str) -> String {
    let (scheme, rest) = match value.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, value),
    };
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (host, path) = rest.split_at(host_end);
    let mut out = String::with_capacity(value.len() + 8);
    if let Some(scheme) = scheme {
        out.push_str(&scheme.replacen("tt", "xx", 1).replacen("TT", "XX", 1).replacen("ftp", "fxp", 1));
        out.push_str("://");
    }
    out.push_str(&host.replace('.', "[.]").replace('@', "[at]"));
    out.push_str(path);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_defanged_forms() {
        for (defanged, real) in [
            ("hxxp://evil[.]example/a.ps1", "http://evil.example/a.ps1"),
            ("hXXps[://]evil(.)example", "https://evil.example"),
            ("evil[dot]example", "evil.example"),
            ("bob[at]evil{.}example", "bob@evil.example"),
            ("198.51.100[.]7", "198.51.100.7"),
            ("fxp://files[.]evil[.]example", "ftp://files.evil.example"),
            ("evil\\.example", "evil.example"),
            ("no change here", "no change here"),
            ("naïve[.]example", "naïve.example"),
        ] {
            assert_eq!(refang(defanged), real, "{defanged}");
        }
    }

    #[test]
    fn defanged_values_cannot_be_followed() {
        assert_eq!(defang("http://evil.example/a.b"), "hxxp://evil[.]example/a.b");
        assert_eq!(defang("https://evil.example"), "hxxps://evil[.]example");
        assert_eq!(defang("bob@evil.example"), "bob[at]evil[.]example");
        assert_eq!(defang("198.51.100.7"), "198[.]51[.]100[.]7");
    }
}
