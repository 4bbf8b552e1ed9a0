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
    /// Words in the elements left out for their inline style.
    pub hidden_words: usize,
}

/// Elements whose tags separate the text around them (a line or a box of
/// its own); the tags of every other element join it, as a browser shows
/// it (`Pay<b>Pal</b>` reads `PayPal`).
const SEPARATING: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "br",
    "button",
    "caption",
    "center",
    "dd",
    "details",
    "dialog",
    "dir",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "frame",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "header",
    "hgroup",
    "hr",
    "html",
    "iframe",
    "img",
    "input",
    "legend",
    "li",
    "main",
    "menu",
    "nav",
    "ol",
    "option",
    "p",
    "pre",
    "section",
    "select",
    "summary",
    "table",
    "tbody",
    "td",
    "textarea",
    "tfoot",
    "th",
    "thead",
    "title",
    "tr",
    "ul",
];
/// Elements without content or end tag.
const VOID: &[&str] = &[
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image", "img", "input", "keygen",
    "link", "meta", "param", "source", "track", "wbr",
];
/// Ordinary elements of text, whose nesting a browser does not rearrange
/// (no tables, lists, links or forms): a hidden element is left out only
/// when it and everything in it are of these.
const PLAIN: &[&str] = &[
    "abbr",
    "article",
    "b",
    "big",
    "blockquote",
    "center",
    "cite",
    "code",
    "div",
    "em",
    "font",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "i",
    "mark",
    "p",
    "q",
    "s",
    "section",
    "small",
    "span",
    "strike",
    "strong",
    "sub",
    "sup",
    "tt",
    "u",
    "var",
];
/// Elements whose content a browser reads as text, not markup, up to their
/// end tag (scripts and stylesheets, which are not shown, apart).
const RAW_TEXT: &[&str] = &["iframe", "noembed", "noframes", "noscript", "plaintext", "textarea", "title", "xmp"];
/// What puts a browser's reading of the rest out of this reader's reach
/// (option lists, foreign content, templates, `noscript`, which mail read
/// without scripts parses as markup, a security policy that may turn inline
/// styles off): where one is, nothing is hidden. (Raw text is read as text
/// wherever it is, and no hidden element may hold it.)
const UNSURE: &[&str] = &["<math", "<noscript", "<select", "<svg", "<template", "content-security-policy"];

/// The text a person reads in HTML (see [`Shown`]).
pub fn text_of(html: &str) -> String {
    shown(html).text
}

/// What a person sees of `html`. Text hidden by an inline style
/// (`display:none`, `font-size:0`...) is what filters are shown and readers
/// are not: padding to sway a classifier, or letters slipped into a word to
/// break it up (`Pay<span style="font-size:0">x</span>Pal`). Where it
/// cannot be sure what a browser would hide, it reads: text wrongly read
/// costs less than text wrongly hidden, which would hide a lure.
pub fn shown(html: &str) -> Shown {
    let lower = html.to_ascii_lowercase();
    // A stylesheet's `!important` outranks an inline style: with one,
    // inline hiding says nothing for sure.
    let inline_styles_hold = !overrides_inline_styles(&lower) && !UNSURE.iter().any(|tag| lower.contains(tag));
    // In SVG and MathML a script or style element holds markup, which may
    // be shown: with them in the document, none is skipped.
    let foreign = lower.contains("<svg") || lower.contains("<math");
    let mut text = String::with_capacity(html.len() / 2);
    let mut hidden_words = 0;
    // Bytes the search for hidden elements' ends may read: a document of
    // hidden elements never closed would otherwise be read once for each.
    let mut budget = 2 * html.len() + 4096;
    let mut at = 0;
    while let Some(open) = lower[at..].find('<').map(|found| at + found) {
        text.push_str(&html[at..open]);
        at = match markup_at(&lower, open) {
            Markup::Text => {
                text.push('<');
                open + 1
            }
            Markup::Comment(end) => end,
            Markup::Unclosed => html.len(),
            // Raw text up to their end tag (a `/` before the `>` of the start
            // tag does not make them empty).
            Markup::Tag(tag) if !tag.closing && matches!(tag.name, "script" | "style") && !foreign => {
                end_of_raw_text(&lower, tag.end, tag.name)
            }
            // Text up to their end tag, markup or not: read as it is.
            Markup::Tag(tag) if !tag.closing && RAW_TEXT.contains(&tag.name) => {
                let end = if tag.name == "plaintext" { html.len() } else { end_of_raw_text(&lower, tag.end, tag.name) };
                text.push(' ');
                text.push_str(&html[tag.end..end]);
                end
            }
            Markup::Tag(tag) => {
                let hidden = if inline_styles_hold && tag.opens() {
                    tag.style.and_then(hiding).and_then(|hiding| hidden_end(&lower, &tag, hiding, &mut budget))
                } else {
                    None
                };
                match hidden {
                    Some(end) => {
                        hidden_words += words_outside_tags(&html[tag.end..end]);
                        end
                    }
                    None => {
                        if SEPARATING.contains(&tag.name) {
                            text.push(' ');
                        }
                        tag.end
                    }
                }
            }
        };
    }
    text.push_str(&html[at..]);
    Shown { text: decode_entities(&text), hidden_words }
}

/// What starts at a `<` of (lower-cased) HTML.
enum Markup<'a> {
    /// Nothing: the `<` is text (`1 < 2`).
    Text,
    /// A comment (or what a browser reads as one), ending before this.
    Comment(usize),
    Tag(Tag<'a>),
    /// A tag never closed: a browser shows nothing more.
    Unclosed,
}

/// A start or end tag.
struct Tag<'a> {
    name: &'a str,
    closing: bool,
    self_closing: bool,
    /// Its `style` attribute's value.
    style: Option<&'a str>,
    /// Just after its `>`.
    end: usize,
}

impl Tag<'_> {
    /// Whether it starts an element that has content.
    fn opens(&self) -> bool {
        !self.closing && !self.self_closing && !VOID.contains(&self.name)
    }
}

fn is_html_space(byte: u8) -> bool {
    matches!(byte, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

/// Reads the markup at `open` as a browser does: quoted attribute values
/// may hold `>`; `<!-->`, `<!--->` and `--!>` end comments; `<!`, `<?` and
/// `</` before what is not a letter start bogus comments.
fn markup_at(lower: &str, open: usize) -> Markup<'_> {
    let bytes = lower.as_bytes();
    let rest = &lower[open..];
    if let Some(body) = rest.strip_prefix("<!--") {
        let end = if body.starts_with('>') {
            4 + 1
        } else if body.starts_with("->") {
            4 + 2
        } else {
            // The first `>` after `--` or `--!` (one pass over the `>`s: a
            // search for each ending would read a document of comments to
            // its end once per comment).
            body.match_indices('>')
                .find(|&(at, _)| body[..at].ends_with("--") || body[..at].ends_with("--!"))
                .map_or(rest.len(), |(at, _)| 4 + at + 1)
        };
        return Markup::Comment(open + end);
    }
    if rest.starts_with("<![cdata[") {
        // Text in SVG and MathML; elsewhere a bogus comment. Read.
        return Markup::Text;
    }
    let mut at = open + 1;
    let closing = bytes.get(at) == Some(&b'/');
    at += usize::from(closing);
    if !bytes.get(at).is_some_and(u8::is_ascii_alphabetic) {
        if closing || matches!(bytes.get(open + 1), Some(b'!' | b'?')) {
            return Markup::Comment(rest.find('>').map_or(lower.len(), |end| open + end + 1));
        }
        return Markup::Text;
    }
    let name_start = at;
    while at < bytes.len() && !is_html_space(bytes[at]) && !matches!(bytes[at], b'/' | b'>') {
        at += 1;
    }
    let name = &lower[name_start..at];
    let (mut style, mut self_closing) = (None, false);
    loop {
        while at < bytes.len() && is_html_space(bytes[at]) {
            at += 1;
        }
        match bytes.get(at) {
            None => return Markup::Unclosed,
            Some(b'>') => return Markup::Tag(Tag { name, closing, self_closing, style, end: at + 1 }),
            Some(b'/') => {
                at += 1;
                self_closing = bytes.get(at) == Some(&b'>');
                continue;
            }
            _ => {}
        }
        let attribute_start = at;
        at += 1;
        while at < bytes.len() && !is_html_space(bytes[at]) && !matches!(bytes[at], b'/' | b'>' | b'=') {
            at += 1;
        }
        let attribute = &lower[attribute_start..at];
        while at < bytes.len() && is_html_space(bytes[at]) {
            at += 1;
        }
        if bytes.get(at) != Some(&b'=') {
            continue;
        }
        at += 1;
        while at < bytes.len() && is_html_space(bytes[at]) {
            at += 1;
        }
        let value = match bytes.get(at) {
            Some(&quote @ (b'"' | b'\'')) => {
                let Some(length) = lower[at + 1..].find(char::from(quote)) else { return Markup::Unclosed };
                let value = &lower[at + 1..at + 1 + length];
                at += length + 2;
                value
            }
            _ => {
                let start = at;
                while at < bytes.len() && !is_html_space(bytes[at]) && bytes[at] != b'>' {
                    at += 1;
                }
                &lower[start..at]
            }
        };
        // Of an attribute written twice, a browser keeps the first.
        if attribute == "style" && style.is_none() {
            style = Some(value);
        }
    }
}

/// Whether a stylesheet of the document may override inline styles or
/// show hidden text: one with `!` (`!important`, in any spelling), `@`
/// (imports, animations) or a first line or letter's style in it, or one
/// linked, whose rules are unknown.
fn overrides_inline_styles(lower: &str) -> bool {
    let mut at = 0;
    while let Some(found) = lower[at..].find("<style").map(|found| at + found) {
        let body = found + "<style".len();
        let end = end_of_raw_text(lower, body, "style");
        let sheet = &lower[body..end];
        if sheet.contains(['!', '@']) || sheet.contains("first-l") {
            return true;
        }
        at = end.max(body);
    }
    lower.contains("<link") && lower.contains("stylesheet")
}

/// Where the raw text of a `name` element (a script, a stylesheet) that
/// starts at `from` ends: at `</name` followed by a space, `/` or `>`.
fn end_of_raw_text(lower: &str, from: usize, name: &str) -> usize {
    let closing = format!("</{name}");
    lower[from..]
        .match_indices(&closing)
        .map(|(at, _)| from + at)
        .find(|&at| {
            lower
                .as_bytes()
                .get(at + closing.len())
                .is_none_or(|&byte| is_html_space(byte) || matches!(byte, b'/' | b'>'))
        })
        .unwrap_or(lower.len())
}

/// How an inline style hides its element.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Hiding {
    /// The element and everything in it (`display:none`, `opacity:0`):
    /// nothing inside can show itself.
    Subtree,
    /// Its own text (`font-size:0`, `visibility:hidden`), which an element
    /// inside, or a stylesheet's rule for one, may show again.
    OwnText,
}

/// How a `style` attribute's value (lower-cased) hides its element, if it
/// surely does: each property's last declaration counts, as in CSS, and a
/// value that is not plainly valid hides nothing (a browser ignores it).
/// Anything beyond plain declarations — `!important`, brackets, escapes,
/// entities, comments, quotes — makes it unsure.
fn hiding(style: &str) -> Option<Hiding> {
    let plain = |ch: char| {
        ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | ':' | ';' | '%' | '-' | '#' | ',')
    };
    if !style.bytes().all(|byte| plain(char::from(byte)) || is_html_space(byte)) {
        return None;
    }
    let mut declared: Vec<(&str, &str)> = Vec::new();
    for declaration in style.split(';') {
        let Some((property, value)) = declaration.split_once(':') else { continue };
        // The only spaces the check above lets through are HTML's.
        declared.push((property.trim(), value.trim()));
    }
    let value = |property: &str| declared.iter().rev().find(|(name, _)| *name == property).map(|(_, value)| *value);
    if value("display") == Some("none") || value("opacity").is_some_and(|value| is_zero(value, &["", "%"])) {
        Some(Hiding::Subtree)
    } else if value("font-size").is_some_and(|value| is_zero(value, LENGTH_UNITS))
        || value("visibility") == Some("hidden")
    {
        Some(Hiding::OwnText)
    } else {
        None
    }
}

const LENGTH_UNITS: &[&str] = &["", "%", "px", "pt", "pc", "em", "rem", "ex", "ch", "vw", "vh", "cm", "mm", "in", "q"];

/// Whether a CSS value is a zero with one of `units` (`0`, `0.0`, `.0px`;
/// not `0.`, `-0` or `0e1`, which this need not know).
fn is_zero(value: &str, units: &[&str]) -> bool {
    let digits = value.find(|ch: char| !(ch.is_ascii_digit() || ch == '.')).unwrap_or(value.len());
    let (number, unit) = value.split_at(digits);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, "0"));
    let zeros = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte == b'0');
    (zeros(whole) || (whole.is_empty() && !fraction.is_empty())) && zeros(fraction) && units.contains(&unit)
}

/// Where the hidden element `tag` starts ends (just after its end tag),
/// when a browser surely ends it there: it and everything in it are plain
/// elements of text, balanced, none of which a browser would close on its
/// own or move (a block inside a paragraph or an inline element, a
/// paragraph in a paragraph, a heading in a heading), and for a hiding of its own
/// text only, it holds nothing but text. Otherwise `None`: it is read (as
/// when the search would read more than `budget` bytes).
fn hidden_end(lower: &str, tag: &Tag, hiding: Hiding, budget: &mut usize) -> Option<usize> {
    if !PLAIN.contains(&tag.name) {
        return None;
    }
    let mut open = OpenElements::default();
    open.push(tag.name);
    let mut at = tag.end;
    loop {
        // Reading to the end of the document without an answer spends the
        // budget: it cannot be charged by the byte once read.
        let Some(found) = lower[at..].find('<').map(|found| at + found) else {
            *budget = 0;
            return None;
        };
        let (next, inner) = match markup_at(lower, found) {
            Markup::Text => (found + 1, None),
            Markup::Comment(end) => (end, None),
            Markup::Unclosed => {
                *budget = 0;
                return None;
            }
            Markup::Tag(inner) => (inner.end, Some(inner)),
        };
        *budget = budget.checked_sub(next - at)?;
        at = next;
        let Some(inner) = inner else { continue };
        if inner.closing {
            if !open.pop(inner.name) {
                return None;
            }
            if open.names.is_empty() {
                return Some(inner.end);
            }
            continue;
        }
        if hiding == Hiding::OwnText {
            return None;
        }
        if VOID.contains(&inner.name) || inner.self_closing {
            // A line break or a picture is at home anywhere; a rule or a
            // field would close a paragraph.
            if !matches!(inner.name, "br" | "wbr" | "img") {
                return None;
            }
            continue;
        }
        if !PLAIN.contains(&inner.name) || open.would_close_for(inner.name) {
            return None;
        }
        open.push(inner.name);
    }
}

/// Plain elements a browser closes when another of their kind starts (the
/// paragraph first). Links and list items close each other too, but are
/// never plain.
const SAME_KIND_CLOSES: [&[&str]; 2] = [&["p"], &["h1", "h2", "h3", "h4", "h5", "h6"]];

/// The elements open inside a hidden one, with counts kept as they change
/// (one never closed can leave thousands open).
#[derive(Default)]
struct OpenElements<'a> {
    names: Vec<&'a str>,
    inline: usize,
    of_kind: [usize; SAME_KIND_CLOSES.len()],
}

impl<'a> OpenElements<'a> {
    fn kind(name: &str) -> Option<usize> {
        SAME_KIND_CLOSES.iter().position(|kind| kind.contains(&name))
    }

    fn push(&mut self, name: &'a str) {
        self.inline += usize::from(!SEPARATING.contains(&name));
        if let Some(kind) = Self::kind(name) {
            self.of_kind[kind] += 1;
        }
        self.names.push(name);
    }

    /// Closes the innermost element if it is `name` (whether it was).
    fn pop(&mut self, name: &str) -> bool {
        if self.names.last() != Some(&name) {
            return false;
        }
        self.names.pop();
        self.inline -= usize::from(!SEPARATING.contains(&name));
        if let Some(kind) = Self::kind(name) {
            self.of_kind[kind] -= 1;
        }
        true
    }

    /// Whether starting `name` would make a browser close what is open: one
    /// of its kind, or, for a block, a paragraph or an inline element.
    fn would_close_for(&self, name: &str) -> bool {
        let block = SEPARATING.contains(&name);
        Self::kind(name).is_some_and(|kind| self.of_kind[kind] > 0)
            || (block && (self.inline > 0 || self.of_kind[0] > 0))
    }
}

/// The words of HTML outside its tags: runs of characters with a letter
/// outside an entity (`&nbsp;`) in them; tags do not end a word. A cheap
/// look: what comments and scripts hold counts too.
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
    }
    words
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
            ["Hello", "you!"],
            "a script takes no room"
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
            "DISPLAY: None",
            "color:red; visibility : hidden",
            "font-size:0px",
            "font-size: 0",
            "opacity:0.0",
            "display:none; max-height:0; overflow:hidden; mso-hide:all",
        ] {
            let html = format!(r#"Pay<span style="{style}">xyz qwv</span>Pal"#);
            assert_eq!(words(&html), ["PayPal"], "{style}");
            assert_eq!(shown(&html).hidden_words, 2, "{style}");
        }
        for style in
            ["display:block", "font-size:0.5em", "opacity:0.8", "max-height:0; overflow:hidden", "mso-display:none"]
        {
            let html = format!(r#"Pay<span style="{style}">xyz</span>Pal"#);
            assert_eq!(words(&html), ["PayxyzPal"], "{style}");
            assert_eq!(shown(&html).hidden_words, 0, "{style}");
        }
        // A hidden element ends at its own end tag, elements nested in it
        // balanced; one never closed is read.
        assert_eq!(words(r#"<div style="display:none"><div>a</div><div>b</div>c</div>shown"#), ["shown"]);
        assert_eq!(words(r#"<p style="display:none">pad<span>x</span><br>y</p>shown"#), ["shown"]);
        assert_eq!(words(r#"before<div style="display:none"><div>a</div>b"#), ["before", "a", "b"]);
        // Where a browser would end or move it elsewhere than its end tag
        // (a stray end tag further on, a block closing a paragraph, a list
        // item another, a rule, table cells), or where something inside may
        // show itself again, it is read: a lure is never hidden by mistake.
        for html in [
            r#"<td><span style="display:none">pad</td><td>lure</span></td>"#,
            r#"<p style="display:none">pad<div>lure</div>"#,
            r#"<p style="display:none">pad<hr>lure"#,
            r#"<td style="display:none">pad<td>lure"#,
            r#"<li style="display:none">pad<span>x<li>lure"#,
            r#"<div style="font-size:0">pad<p style="font-size:16px">lure</p></div>"#,
            r#"<span style="visibility:hidden">pad <b style="visibility:visible">lure</b></span>"#,
            r#"<style>.x{display:block !important}</style><div class=x style="display:none">pad lure</div>"#,
            r#"<style>.x{display:block ! important}</stylex></style><div class=x style="display:none">pad lure</div>"#,
            r#"<style>@import url(x.css);</style><div style="display:none">pad lure</div>"#,
            r#"<style>div::first-line{font-size:16px}</style><div style="font-size:0">pad lure</div>"#,
            // A link inside a link closes both; a list item another, across a box.
            r#"<a href=x>Click <span style="display:none">pad <a href=y>lure</a></span>"#,
            r#"<li>Hi<div style="display:none">pad<li>lure</li></div>"#,
            // Raw text, option lists: where these are, nothing is hidden.
            r#"<title><!--</title>lure"#,
            r#"<textarea><span style="display:none"></textarea>lure"#,
            r#"<noscript><b title="</noscript><span style=display:none>">lure</span>"#,
            r#"<meta http-equiv=content-security-policy content="style-src 'none'"><span style="display:none">lure</span>"#,
            r#"<select><option>Pick <span style="display:none">lure</span>"#,
        ] {
            assert!(text_of(html).contains("lure"), "{html}");
            assert_eq!(shown(html).hidden_words, 0, "{html}");
        }
        // A title, as most mail has, is read as text and hides nothing.
        assert_eq!(words(r#"<title>Club</title><div style="display:none"><p>pad</p></div>shown"#), ["Club", "shown"]);
        // The last declaration of a property counts; one a browser would
        // ignore (a value that is no value), or a comment, hides nothing.
        for style in [
            "display:none;display:block",
            "color:red/*;display:none*/",
            "display:nonex",
            "font-size:0x",
            "display:inline!important;display:none",
            "color:red{;display:none",
            "color:red&lbrace;display:none",
            "display:\u{a0}none",
            "font-size:0.",
            "opacity:0px",
        ] {
            assert_eq!(words(&format!(r#"<span style="{style}">lure</span>"#)), ["lure"], "{style}");
        }
        // Tags read as a browser reads them: a quoted `>` or `style` is an
        // attribute's value, `image` is void, `<` before a space is text.
        assert_eq!(words(r#"<span title=" style=display:none">lure</span>"#), ["lure"]);
        assert_eq!(words(r#"<img alt="><style>">lure"#), ["lure"]);
        assert_eq!(words(r#"<image style="display:none"><p>lure</p>"#), ["lure"]);
        assert_eq!(words("1 < 2 lure >"), ["1", "<", "2", "lure", ">"]);
        // A hidden element takes no room: the words around it join, as they
        // do around an element that is not a box of its own.
        assert_eq!(words(r#"Pass<div style="display:none">x</div>word Pass<ins></ins>word"#), ["Password", "Password"]);
        // Comments (and what Outlook alone reads in them) are not shown.
        assert_eq!(words("a<!-- <b>x</b> > y -->b<!--[if mso]>mso<![endif]-->c"), ["abc"]);
        assert_eq!(words("a<!-- never closed b"), ["a"]);
        assert_eq!(words("a<!-->b<!--->c<!-- x --!>d<!-- y --->e<!----->f"), ["abcdef"]);
        assert!(text_of("<svg><text><![CDATA[lure]]></text></svg>").contains("lure"));
        assert_eq!(words("<svg><style><b>lure</b></style></svg>"), ["lure"]);
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
