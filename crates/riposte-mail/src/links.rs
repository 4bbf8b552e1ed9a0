//! Links in a message: URLs written in text, and HTML anchors with the text
//! a person sees beside where they really go; and HTML read as text.

/// A link found in a body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Link {
    /// Where it goes (`href`, or the URL as written in text), unwrapped
    /// from mail-security rewriting and open redirectors (see [`unwrap`]).
    pub target: String,
    /// What a person sees (the anchor's text; empty for a URL in text).
    pub shown: String,
    /// The open redirector it passed through, if any (`www.google.com`).
    pub redirector: Option<String>,
}

impl Link {
    /// A link to `href` shown as `shown`, unwrapped to its destination.
    pub fn to(href: &str, shown: String) -> Link {
        let mut link = Link { target: href.to_owned(), shown, redirector: None };
        // Wrapped at most a few times (a scanner around a redirector).
        for _ in 0..3 {
            let Some((inner, wrapper)) = unwrap(&link.target) else { break };
            if wrapper == Wrapper::OpenRedirect {
                link.redirector = Some(host_of(&link.target));
            }
            link.target = inner;
        }
        link
    }

    /// The target's host, lower-cased (empty when it has none).
    pub fn host(&self) -> String {
        host_of(&self.target)
    }
}

/// The host of a URL (`scheme://[user@]host[:port]/...`), lower-cased.
pub fn host_of(url: &str) -> String {
    let Some((_, rest)) = url.split_once("://") else { return String::new() };
    // A backslash ends the authority as browsers read it (`evil\\@good`).
    let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = if authority.starts_with('[') {
        authority.split(']').next().unwrap_or("").trim_start_matches('[')
    } else {
        authority.split(':').next().unwrap_or("")
    };
    // No name is longer than 253 bytes: a longer one is not a host.
    let host = &host[..host.floor_char_boundary(253)];
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Who stands between a link and where it goes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Wrapper {
    /// A mail-security service that rewrites every link to scan it when
    /// clicked (Microsoft Safe Links, Proofpoint URL Defense, Barracuda Link
    /// Protection): the link is its destination, judged as such.
    Scanner,
    /// A well-known site that sends anyone anywhere (`google.com/url`,
    /// `l.facebook.com`, `youtube.com/redirect`): phishing borrows its name.
    OpenRedirect,
}

/// The destination a wrapped link leads to, and who wrapped it; `None`
/// for a link that is not wrapped (or whose destination is not a web URL).
pub fn unwrap(url: &str) -> Option<(String, Wrapper)> {
    let host = host_of(url);
    let rest = url.split_once("://")?.1;
    let path = rest.find(['/', '?']).map_or("", |at| &rest[at..]);
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let param = |name: &str| {
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == name).then(|| percent_decoded(value))
        })
    };
    let registered = crate::domain::registered(&host);
    let (inner, wrapper) = if host.ends_with(".safelinks.protection.outlook.com") {
        (param("url")?, Wrapper::Scanner)
    } else if host == "urldefense.proofpoint.com" && path.starts_with("/v2/url") {
        (proofpoint_v2(&param("u")?), Wrapper::Scanner)
    } else if host == "urldefense.com" && path.starts_with("/v3/__") {
        let inner = &rest[rest.find("/v3/__")? + 6..];
        (inner[..inner.find("__;").unwrap_or(inner.len())].to_owned(), Wrapper::Scanner)
    } else if host == "linkprotect.cudasvc.com" {
        (param("a")?, Wrapper::Scanner)
    } else if registered.split('.').next() == Some("google") && path == "/url" {
        (param("q").or_else(|| param("url"))?, Wrapper::OpenRedirect)
    } else if matches!(host.as_str(), "l.facebook.com" | "lm.facebook.com") && path == "/l.php" {
        (param("u")?, Wrapper::OpenRedirect)
    } else if registered == "youtube.com" && path == "/redirect" {
        (param("q")?, Wrapper::OpenRedirect)
    } else if registered == "linkedin.com" && path.starts_with("/redir/redirect") {
        (param("url")?, Wrapper::OpenRedirect)
    } else if host == "away.vk.com" && path == "/away.php" {
        (param("to")?, Wrapper::OpenRedirect)
    } else {
        return None;
    };
    let lower = inner.get(..8).unwrap_or(&inner).to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://")).then_some((inner, wrapper))
}

/// `%XX` escapes (and `+` for a space) decoded; invalid ones kept as written.
fn percent_decoded(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = |byte: u8| (byte as char).to_digit(16);
        match bytes[at] {
            b'%' if at + 2 < bytes.len() => match (hex(bytes[at + 1]), hex(bytes[at + 2])) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    at += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            byte => out.push(byte),
        }
        at += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Proofpoint's v2 encoding: `-XX` is the character with hex code XX, `_` is `/`.
fn proofpoint_v2(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut chars = encoded.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '_' => out.push('/'),
            '-' => {
                let code: String = chars.by_ref().take(2).collect();
                match u8::from_str_radix(&code, 16) {
                    Ok(byte) => out.push(byte as char),
                    Err(_) => {
                        out.push('-');
                        out.push_str(&code);
                    }
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Most characters of an anchor's text kept.
const SHOWN_MAX_BYTES: usize = 1_000;

/// URLs written in plain text.
pub fn text_links(text: &str, out: &mut Vec<Link>) {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find("http") {
        let start = from + found;
        let rest = &lower[start + 4..];
        if !(rest.starts_with("://") || rest.starts_with("s://")) {
            from = start + 4;
            continue;
        }
        let end = text[start..]
            .find(|ch: char| ch.is_whitespace() || matches!(ch, '"' | '\'' | '<' | '>' | ')' | ']'))
            .map_or(text.len(), |length| start + length);
        let target = text[start..end].trim_end_matches(['.', ',', ';']);
        out.push(Link::to(target, String::new()));
        from = end.max(start + 1);
    }
}

/// Anchors (`<a href=...>text</a>`), image maps and forms' actions of an
/// HTML body.
pub fn html_links(html: &str, out: &mut Vec<Link>) {
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find("<a") {
        let start = from + found;
        let Some(tag_end) = lower[start..].find('>').map(|at| start + at) else { break };
        let tag = &html[start..tag_end];
        // The anchor's text ends at its `</a`, or at the next anchor when it is never closed.
        // Both searches stop at the next anchor, so each byte is scanned a bounded number of times.
        let next_open = lower[tag_end + 1..].find("<a").map_or(lower.len(), |at| tag_end + 1 + at);
        let close = lower[tag_end..next_open].find("</a").map_or(next_open, |at| tag_end + at);
        let inner = &html[tag_end + 1..close.max(tag_end + 1)];
        let inner = &inner[..inner.floor_char_boundary(SHOWN_MAX_BYTES)];
        if let Some(target) = attribute(tag, "href") {
            let mut target = decode_entities(&target);
            // A scheme-relative link goes where the page's scheme would take it.
            if target.starts_with("//") {
                target.insert_str(0, "https:");
            }
            out.push(Link::to(&target, text_of(inner).trim().to_owned()));
        }
        from = tag_end + 1;
    }
}

/// The value of attribute `name` in a tag's text.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find(name) {
        let at = from + found;
        from = at + name.len();
        // A whole attribute name: not `data-href`.
        if at > 0 && !lower.as_bytes()[at - 1].is_ascii_whitespace() {
            continue;
        }
        let rest = tag[at + name.len()..].trim_start();
        let Some(rest) = rest.strip_prefix('=') else { continue };
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(quote @ ('"' | '\'')) => rest[1..].split(quote).next().unwrap_or(""),
            _ => rest.split(|ch: char| ch.is_whitespace() || ch == '>').next().unwrap_or(""),
        };
        return Some(value.trim().to_owned());
    }
    None
}

/// Whether an HTML document asks for a password or posts a form elsewhere.
pub fn asks_for_credentials(html: &str) -> bool {
    let lower = html.to_ascii_lowercase();
    lower.contains("type=\"password\"") || lower.contains("type='password'") || lower.contains("type=password")
}

pub fn has_form(html: &str) -> bool {
    html.to_ascii_lowercase().contains("<form")
}

/// The text a person reads in HTML: tags, scripts and styles left out,
/// common entities decoded.
pub fn text_of(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let mut out = String::with_capacity(html.len() / 2);
    let mut at = 0;
    while at < html.len() {
        let Some(open) = lower[at..].find('<').map(|found| at + found) else {
            out.push_str(&html[at..]);
            break;
        };
        out.push_str(&html[at..open]);
        // Skip what is not shown.
        let skipped = ["<script", "<style"].iter().find(|tag| lower[open..].starts_with(**tag));
        let end = match skipped {
            Some(tag) => {
                let closing = format!("</{}", &tag[1..]);
                lower[open..].find(&closing).map_or(lower.len(), |found| open + found)
            }
            None => open,
        };
        match lower[end..].find('>') {
            Some(close) => {
                out.push(' ');
                at = end + close + 1;
            }
            None => break,
        }
    }
    decode_entities(&out)
}

fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    // Numeric references first (`&#104;ttps`, `&#x3a;`).
    let mut decoded = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("&#") {
        decoded.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after.bytes().take(10).position(|byte| byte == b';');
        let number = end.and_then(|end| {
            let digits = &after[..end];
            match digits.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => digits.parse().ok(),
            }
        });
        match (number.and_then(char::from_u32), end) {
            (Some(ch), Some(end)) => {
                decoded.push(ch);
                rest = &after[end + 1..];
            }
            _ => {
                decoded.push_str("&#");
                rest = after;
            }
        }
    }
    decoded.push_str(rest);
    decoded
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_and_text() {
        let mut links = Vec::new();
        html_links(
            r#"<p>Sign in at <A class=x HREF="http://paypal.evil.example/login?a=1&amp;b=2">https://www.paypal.com</a></p><a data-href="x" href='https://ok.example/'>here</a>"#,
            &mut links,
        );
        assert_eq!(links[0].target, "http://paypal.evil.example/login?a=1&b=2");
        assert_eq!(links[0].shown, "https://www.paypal.com");
        assert_eq!(links[0].host(), "paypal.evil.example");
        assert_eq!(links[1].target, "https://ok.example/");
        let mut found = Vec::new();
        text_links("see https://user@Example.COM:8443/x. and (http://[2001:db8::1]/a)", &mut found);
        assert_eq!(found.iter().map(Link::host).collect::<Vec<_>>(), ["example.com", "2001:db8::1"]);
        assert_eq!(host_of("https://evil.example\\@www.paypal.com/"), "evil.example", "as a browser reads it");
        let mut odd = Vec::new();
        html_links("<a href=\"//evil.example/x\">a<a href=\"&#104;ttps://b.example/\">b</a>", &mut odd);
        assert_eq!(odd.iter().map(Link::host).collect::<Vec<_>>(), ["evil.example", "b.example"]);
        assert_eq!(odd[0].shown, "a", "an unclosed anchor ends at the next");
        assert_eq!(
            text_of("<style>p{}</style><b>Hello</b>&nbsp;you<script>x()</script>!")
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["Hello", "you", "!"]
        );
    }

    #[test]
    fn wrapped_links_are_judged_by_where_they_go() {
        // Microsoft Safe Links, Proofpoint (v2 and v3), Barracuda: scanners, unwrapped silently.
        for (wrapped, destination) in [
            (
                "https://eur01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fgithub.com%2Fsettings&data=05%7C01&reserved=0",
                "https://github.com/settings",
            ),
            (
                "https://urldefense.proofpoint.com/v2/url?u=https-3A__login.evil.example_a-3Fb-3D1&d=DwMF&c=x",
                "https://login.evil.example/a?b=1",
            ),
            ("https://urldefense.com/v3/__https://login.evil.example/a__;!!abc$", "https://login.evil.example/a"),
            ("https://linkprotect.cudasvc.com/url?a=https%3a%2f%2fshop.example%2f&c=E,1", "https://shop.example/"),
        ] {
            let link = Link::to(wrapped, "here".into());
            assert_eq!((link.target.as_str(), link.redirector.as_deref()), (destination, None), "{wrapped}");
        }
        // Open redirectors: unwrapped, and remembered.
        let link = Link::to("https://www.google.com/url?sa=t&q=https://paypa1.example/x&usg=1", String::new());
        assert_eq!(link.target, "https://paypa1.example/x");
        assert_eq!(link.redirector.as_deref(), Some("www.google.com"));
        // A scanner around a redirector: both taken off.
        let nested = "https://nam02.safelinks.protection.outlook.com/?url=https%3A%2F%2Fl.facebook.com%2Fl.php%3Fu%3Dhttps%253A%252F%252Fevil.example%252F";
        let link = Link::to(nested, String::new());
        assert_eq!(
            (link.target.as_str(), link.redirector.as_deref()),
            ("https://evil.example/", Some("l.facebook.com"))
        );
        // Not wrapped, or wrapping something that is not a web address: left as it is.
        for plain in [
            "https://www.google.com/search?q=https://x.example",
            "https://www.google.com/url?q=javascript:alert(1)",
            "https://example.com/?url=https://x.example",
        ] {
            assert_eq!(Link::to(plain, String::new()).target, plain);
        }
        assert_eq!(percent_decoded("a%2Fb+c%zz%4"), "a/b c%zz%4");
    }
}
