//! A message as the checks read it: addresses, authentication results, the
//! text of every body (nested messages included) and every attachment, with
//! limits so that a hostile message cannot take unbounded time or memory.

use mail_parser::{MessageParser, MimeHeaders, PartType};

/// How much of a message is read.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Messages inside messages (`message/rfc822`) followed this deep.
    pub max_depth: usize,
    /// Parts read in all.
    pub max_parts: usize,
    /// Bytes of body text kept for the checks.
    pub max_text_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_depth: 4, max_parts: 500, max_text_bytes: 2 << 20 }
    }
}

/// An address with its display name, lower-cased.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mailbox {
    pub name: String,
    pub address: String,
}

impl Mailbox {
    /// The part after `@`.
    pub fn domain(&self) -> &str {
        self.address.rsplit_once('@').map_or("", |(_, domain)| domain)
    }
}

/// An attachment (or inline binary part).
#[derive(Clone, Debug, Default)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// What the checks read of a message.
#[derive(Clone, Debug, Default)]
pub struct Mail {
    pub from: Option<Mailbox>,
    /// Entries in the From header (more than one is rare and odd).
    pub from_entries: usize,
    pub reply_to: Option<Mailbox>,
    pub return_path: Option<String>,
    /// The To and Cc addresses, lower-cased.
    pub recipients: Vec<String>,
    pub subject: String,
    /// The `Message-ID`, without its angle brackets (empty when absent).
    pub message_id: String,
    /// `Authentication-Results` values, top (most recent) first.
    pub authentication_results: Vec<String>,
    /// `Received-SPF` values, top first.
    pub received_spf: Vec<String>,
    pub list_id: bool,
    /// The header by which a filter on the way already called it spam
    /// (`X-Spam-Flag: YES`, `X-Spam-Status: Yes`, Exchange's spam confidence
    /// level 5 or more). Only a spam mark is read: a sender could forge
    /// these headers, but forging one can only make its message look worse.
    pub spam_mark: Option<String>,
    /// Plain-text bodies.
    pub texts: Vec<String>,
    /// HTML bodies (and HTML attachments are in `attachments`).
    pub htmls: Vec<String>,
    pub attachments: Vec<Attachment>,
    /// What was left unread and why (limits reached, a part that did not parse).
    pub cut: Vec<String>,
}

/// Parses `raw` (`None`: not a message at all: none of the headers every
/// message has).
pub fn parse(raw: &[u8], limits: &Limits) -> Option<Mail> {
    let message = MessageParser::default().parse(raw)?;
    // A message names at least one of these; text without them is not one.
    let known = ["From", "To", "Subject", "Date", "Received", "Message-ID", "Return-Path"];
    if !message.headers_raw().any(|(name, _)| known.iter().any(|known| name.eq_ignore_ascii_case(known))) {
        return None;
    }
    let from_entries = message.from().map_or(0, |from| from.iter().filter(|addr| addr.address().is_some()).count());
    let mut mail = Mail {
        from: message.from().and_then(sender),
        from_entries,
        reply_to: message.reply_to().and_then(|to| to.first()).map(mailbox),
        return_path: message.return_address().map(|address| address.trim_matches(['<', '>']).to_ascii_lowercase()),
        recipients: [message.to(), message.cc()]
            .into_iter()
            .flatten()
            .flat_map(|addresses| addresses.iter())
            .filter_map(|addr| addr.address())
            .take(100)
            .map(|address| address.trim().to_ascii_lowercase())
            .collect(),
        subject: message.subject().unwrap_or("").to_owned(),
        message_id: message.message_id().unwrap_or("").to_owned(),
        list_id: message.header_raw("List-Id").is_some(),
        spam_mark: spam_mark(&message),
        ..Mail::default()
    };
    for (name, value) in message.headers_raw() {
        if name.eq_ignore_ascii_case("Authentication-Results") {
            mail.authentication_results.push(value.trim().to_ascii_lowercase());
        } else if name.eq_ignore_ascii_case("Received-SPF") {
            mail.received_spf.push(value.trim().to_ascii_lowercase());
        }
    }
    let mut parts = 0;
    let mut text_bytes = 0;
    read_parts(&message, 0, limits, &mut parts, &mut text_bytes, &mut mail);
    Some(mail)
}

/// Exchange's spam confidence level from which a message is spam (5 and 6:
/// spam; 7 to 9: high confidence spam; -1 to 4: not spam).
const EXCHANGE_SPAM_LEVEL: i32 = 5;

/// The first header by which a filter on the way called the message spam.
/// Every copy is read: a sender can add a copy saying "no" below the
/// receiving filter's "yes", and one saying "yes" only harms its own mail.
fn spam_mark(message: &mail_parser::Message<'_>) -> Option<String> {
    message.headers_raw().find_map(|(name, value)| {
        let value = value.trim();
        if name.eq_ignore_ascii_case("X-Spam-Flag") && value.eq_ignore_ascii_case("yes") {
            Some(format!("X-Spam-Flag: {value}"))
        } else if name.eq_ignore_ascii_case("X-Spam-Status")
            && value.get(..3).is_some_and(|answer| answer.eq_ignore_ascii_case("yes"))
        {
            Some(format!("X-Spam-Status: {}", value.split(',').next().unwrap_or(value)))
        } else if name.eq_ignore_ascii_case("X-MS-Exchange-Organization-SCL") {
            let level = value.parse::<i32>().ok().filter(|level| *level >= EXCHANGE_SPAM_LEVEL)?;
            Some(format!(
                "X-MS-Exchange-Organization-SCL: {level} (Exchange's spam confidence level; spam from {EXCHANGE_SPAM_LEVEL})"
            ))
        } else {
            None
        }
    })
}

/// The first From entry with an address, named as a mail client shows it:
/// an unquoted comma in a display name (`Doe, John <j@x>`, or a brand
/// written twice before an address of no name) splits it into name-only
/// entries and the real one, whose names are joined again.
fn sender(from: &mail_parser::Address<'_>) -> Option<Mailbox> {
    let entries: Vec<&mail_parser::Addr<'_>> = from.iter().collect();
    let at = entries.iter().position(|addr| addr.address().is_some())?;
    let mut sender = mailbox(entries[at]);
    let names: Vec<&str> = entries[..at]
        .iter()
        .rev()
        .take_while(|addr| addr.address().is_none())
        .filter_map(|addr| addr.name().map(str::trim))
        .filter(|name| !name.is_empty())
        .collect();
    if !names.is_empty() {
        let mut joined: Vec<&str> = names.into_iter().rev().collect();
        joined.extend(Some(sender.name.as_str()).filter(|name| !name.is_empty()));
        sender.name = joined.join(", ");
    }
    Some(sender)
}

fn mailbox(addr: &mail_parser::Addr<'_>) -> Mailbox {
    Mailbox {
        name: addr.name().unwrap_or("").trim().to_owned(),
        address: addr.address().unwrap_or("").trim().to_ascii_lowercase(),
    }
}

fn read_parts(
    message: &mail_parser::Message<'_>,
    depth: usize,
    limits: &Limits,
    parts: &mut usize,
    text_bytes: &mut usize,
    mail: &mut Mail,
) {
    for part in &message.parts {
        *parts += 1;
        if *parts > limits.max_parts {
            mail.cut.push(format!("more than {} parts: the rest was not read", limits.max_parts));
            return;
        }
        let name = part.attachment_name().unwrap_or("").to_owned();
        let content_type = part
            .content_type()
            .map(|kind| format!("{}/{}", kind.ctype(), kind.subtype().unwrap_or("")).to_ascii_lowercase())
            .unwrap_or_default();
        let is_attachment = part
            .content_disposition()
            .is_some_and(|disposition| disposition.ctype().eq_ignore_ascii_case("attachment"))
            || !name.is_empty();
        let mut keep_text = |text: &str, into_html: bool, mail: &mut Mail| {
            let room = limits.max_text_bytes.saturating_sub(*text_bytes);
            if room == 0 {
                mail.cut.push(format!("more than {} bytes of text: the rest was not read", limits.max_text_bytes));
                return;
            }
            let end = text.floor_char_boundary(room);
            *text_bytes += end;
            if into_html { mail.htmls.push(text[..end].to_owned()) } else { mail.texts.push(text[..end].to_owned()) }
        };
        match &part.body {
            PartType::Text(text) if !is_attachment => keep_text(text, false, mail),
            PartType::Html(html) if !is_attachment => keep_text(html, true, mail),
            PartType::Text(_) | PartType::Html(_) | PartType::Binary(_) | PartType::InlineBinary(_) => {
                mail.attachments.push(Attachment { name, content_type, bytes: part.contents().to_vec() });
            }
            PartType::Message(inner) => {
                if depth + 1 > limits.max_depth {
                    mail.cut.push(format!("a message nested more than {} deep was not read", limits.max_depth));
                } else {
                    read_parts(inner, depth + 1, limits, parts, text_bytes, mail);
                }
            }
            PartType::Multipart(_) => {}
        }
    }
}
