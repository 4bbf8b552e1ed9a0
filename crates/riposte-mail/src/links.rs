//! Links in a message: URLs written in text, and HTML anchors with the text
//! a person sees beside where they really go; and HTML read as text.

/// A link found in a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Where it goes (`href`, or the URL as written in text).
    pub target: String,
    /// What a person sees (the anchor's text; empty for a URL in text).
    pub shown: String,
}

impl Link {
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
        out.push(Link { target: text[start..end].trim_end_matches(['.', ',', ';']).to_owned(), shown: String::new() });
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
            out.push(Link { target, shown: text_of(inner).trim().to_owned() });
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
}
