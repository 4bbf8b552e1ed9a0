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

/// What a person sees of an HTML body.
pub struct Shown {
    /// The text: tags, comments, scripts, styles and elements hidden by
    /// their inline style left out, common entities decoded.
    pub text: String,
    /// Words in the elements its inline style hides.
    pub hidden_words: usize,
}

/// Elements a browser shows within the line of text around them: text on
/// each side of their tags joins up (`Pay<b>Pal</b>` reads `PayPal`). The
/// tags of other elements separate words.
const INLINE: &[&str] = &[
    "a", "abbr", "b", "bdi", "bdo", "big", "cite", "code", "data", "dfn", "em", "font", "i", "kbd", "mark", "q", "s",
    "samp", "small", "span", "strike", "strong", "sub", "sup", "time", "tt", "u", "var", "wbr",
];
/// Elements without content or closing tag.
const VOID: &[&str] =
    &["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"];

/// The text a person reads in HTML (see [`Shown`]).
pub fn text_of(html: &str) -> String {
    shown(html).text
}

/// What a person sees of `html`. Text hidden by an inline style
/// (`display:none`, `font-size:0`...) is what filters are shown and readers
/// are not: padding to sway a classifier, or letters slipped into a word to
/// break it up (`Pay<span style="font-size:0">x</span>Pal`).
pub fn shown(html: &str) -> Shown {
    let lower = html.to_ascii_lowercase();
    let mut text = String::with_capacity(html.len() / 2);
    let mut hidden_words = 0;
    let mut at = 0;
    while at < html.len() {
        let Some(open) = lower[at..].find('<').map(|found| at + found) else {
            text.push_str(&html[at..]);
            break;
        };
        text.push_str(&html[at..open]);
        if lower[open..].starts_with("<!--") {
            at = lower[open + 4..].find("-->").map_or(html.len(), |end| open + 4 + end + 3);
            continue;
        }
        let Some(close) = lower[open..].find('>').map(|found| open + found) else { break };
        let tag = &lower[open + 1..close];
        let name = tag_name(tag);
        if !INLINE.contains(&name) {
            text.push(' ');
        }
        at = close + 1;
        if tag.starts_with('/') || tag.ends_with('/') || VOID.contains(&name) || name.is_empty() {
            continue;
        }
        if matches!(name, "script" | "style") {
            let closing = format!("</{name}");
            at = lower[at..].find(&closing).map_or(html.len(), |found| at + found);
        } else if tag.contains("style") && attribute(tag, "style").is_some_and(|style| hides(&style)) {
            let end = end_of_element(&lower, at, name);
            hidden_words += words_outside_tags(&html[at..end]);
            at = end;
        }
    }
    Shown { text: decode_entities(&text), hidden_words }
}

/// The words of HTML outside its tags: runs of characters with a letter
/// outside an entity (`&nbsp;`) in them. A cheap look: what comments and
/// scripts hold counts too.
fn words_outside_tags(html: &str) -> usize {
    let (mut words, mut in_tag, mut in_entity, mut in_word, mut lettered) = (0, false, false, false, false);
    for ch in html.chars().chain([' ']) {
        match ch {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if in_tag => {}
            _ if ch.is_whitespace() => {
                words += usize::from(in_word && lettered);
                (in_word, lettered, in_entity) = (false, false, false);
            }
            '&' => in_entity = true,
            ';' if in_entity => in_entity = false,
            _ => {
                in_word = true;
                lettered |= ch.is_alphabetic() && !in_entity;
            }
        }
        if ch == '<' {
            words += usize::from(in_word && lettered);
            (in_word, lettered) = (false, false);
        }
    }
    words
}

/// Whether an inline style hides its element's text.
fn hides(style: &str) -> bool {
    let style: String = style.chars().filter(|ch| !ch.is_whitespace()).collect::<String>().to_ascii_lowercase();
    let zero = |value: &str| {
        let number = &value[..value.find(|ch: char| !(ch.is_ascii_digit() || ch == '.')).unwrap_or(value.len())];
        number.parse::<f64>().is_ok_and(|number| number == 0.0)
    };
    let mut clipped = false;
    let mut no_height = false;
    for declaration in style.split(';') {
        let Some((property, value)) = declaration.split_once(':') else { continue };
        match property {
            "display" if value.starts_with("none") => return true,
            "visibility" if value.starts_with("hidden") => return true,
            "font-size" | "opacity" if zero(value) => return true,
            "max-height" | "height" if zero(value) => no_height = true,
            "overflow" if value.starts_with("hidden") => clipped = true,
            _ => {}
        }
    }
    clipped && no_height
}

/// Where the element whose opening tag ends at `from` ends: after its
/// closing tag, or where a browser would close it without one — at the
/// closing tag of an element around it, or, for elements whose end tag may
/// be left out (`p`, `li`, `td`...), at an element that may not be inside
/// them. When unsure it ends early: text wrongly read costs less than text
/// wrongly hidden, which would let a stray end tag hide a lure.
fn end_of_element(lower: &str, from: usize, name: &str) -> usize {
    const BLOCKS: &[&str] = &[
        "address",
        "article",
        "aside",
        "blockquote",
        "div",
        "dl",
        "fieldset",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "ul",
    ];
    let closes_it = |opening: &str| match name {
        "p" => BLOCKS.contains(&opening),
        "li" => opening == "li",
        "td" | "th" => matches!(opening, "td" | "th" | "tr"),
        "tr" => opening == "tr",
        "dt" | "dd" => matches!(opening, "dt" | "dd"),
        "option" => opening == "option",
        _ => false,
    };
    let mut open: Vec<&str> = Vec::new();
    let mut at = from;
    while let Some(found) = lower[at..].find('<').map(|found| at + found) {
        if lower[found..].starts_with("<!--") {
            at = lower[found + 4..].find("-->").map_or(lower.len(), |end| found + 4 + end + 3);
            continue;
        }
        let Some(close) = lower[found..].find('>').map(|end| found + end) else { break };
        let tag = &lower[found + 1..close];
        let inner = tag_name(tag);
        at = close + 1;
        if inner.is_empty() || VOID.contains(&inner) || tag.ends_with('/') {
            continue;
        }
        if !tag.starts_with('/') {
            if open.is_empty() && closes_it(inner) {
                return found;
            }
            if matches!(inner, "script" | "style") {
                let closing = format!("</{inner}");
                at = lower[at..].find(&closing).map_or(lower.len(), |end| at + end);
            } else {
                open.push(inner);
            }
        } else if let Some(depth) = open.iter().rposition(|opened| *opened == inner) {
            open.truncate(depth);
        } else if inner == name {
            return at;
        } else {
            // The end of an element around this one closes it too.
            return found;
        }
    }
    lower.len()
}

/// The element name of a tag's text (after its `<`, before its `>`).
fn tag_name(tag: &str) -> &str {
    let name = tag.trim_start_matches('/');
    &name[..name.find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == ':' || ch == '-')).unwrap_or(name.len())]
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
    fn text_is_read_as_a_browser_shows_it() {
        let words = |html: &str| text_of(html).split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        // Inline elements join the text around them; other tags separate it.
        assert_eq!(words("Pay<b>Pal</b> <i>account</i>"), ["PayPal", "account"]);
        assert_eq!(
            words("one<br>two<p>three</p><div>four</div><td>five</td>"),
            ["one", "two", "three", "four", "five"]
        );
        // Elements hidden by their inline style, whatever the spelling.
        for style in [
            "display:none",
            "DISPLAY: None !important",
            "color:red; visibility : hidden",
            "font-size:0px",
            "font-size: 0",
            "opacity:0.0",
            "max-height:0; overflow:hidden; mso-hide:all",
        ] {
            let html = format!(r#"Pay<span style="{style}">xyz qwv</span>Pal"#);
            assert_eq!(words(&html), ["PayPal"], "{style}");
            assert_eq!(shown(&html).hidden_words, 2, "{style}");
        }
        for style in ["display:block", "font-size:0.5em", "opacity:0.8", "max-height:0", "mso-display:none"] {
            let html = format!(r#"Pay<span style="{style}">xyz</span>Pal"#);
            assert_eq!(words(&html), ["PayxyzPal"], "{style}");
            assert_eq!(shown(&html).hidden_words, 0, "{style}");
        }
        // A hidden element ends at its own closing tag, elements of the same
        // name nested in it counted; one never closed hides the rest.
        assert_eq!(words(r#"<div style="display:none"><div>a</div><div>b</div>c</div>shown"#), ["shown"]);
        assert_eq!(words(r#"before<div style="display:none"><div>a</div>b"#), ["before"]);
        // Or where a browser closes it: at the end of an element around it
        // (a stray end tag further on cannot stretch it over a lure), or at
        // what may not be inside it.
        assert_eq!(words(r#"<td><span style="display:none">pad</td><td>lure</span></td>"#), ["lure"]);
        assert_eq!(words(r#"<p style="display:none">pad<div>lure</div>"#), ["lure"]);
        assert_eq!(words(r#"<td style="display:none">pad<td>lure"#), ["lure"]);
        assert_eq!(words(r#"<li style="display:none">pad<b>x</b><li>lure"#), ["lure"]);
        assert_eq!(words(r#"<p style="display:none">pad<span>x</span><br>y</p>shown"#), ["shown"]);
        // Comments (and what Outlook alone reads in them) are not shown.
        assert_eq!(words("a<!-- <b>x</b> > y -->b<!--[if mso]>mso<![endif]-->c"), ["abc"]);
        assert_eq!(words("a<!-- never closed b"), ["a"]);
        // Hidden padding counts in words with letters.
        let padding = r#"<p>Your invoice</p><div style="display:none">the quick brown fox 123 &nbsp; jumps</div>"#;
        assert_eq!(shown(padding).hidden_words, 5);
        assert_eq!(words(padding), ["Your", "invoice"]);
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
