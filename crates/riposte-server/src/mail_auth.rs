//! SPF, DKIM and DMARC verified with `mail-auth`, against the system's DNS
//! or against recorded TXT records only (for tests, for reproducing a
//! verdict later, and for hosts that must not query DNS).
//!
//! The results go to `riposte_mail::analyze` as [`Verified`]; this module is
//! the I/O edge of that pure analysis.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::dmarc::Dmarc;
use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::spf::Spf;
use mail_auth::{
    AuthenticatedMessage, DkimResult, DmarcResult, Error as AuthError, MX, MessageAuthenticator, Parameters,
    ResolverCache, SpfResult, Txt,
};
use riposte_mail::{ArcCheck, AuthResult, DkimCheck, Verified};

#[derive(Debug, thiserror::Error)]
pub enum MailAuthError {
    #[error("cannot read DNS records from {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}, line {line}: {reason}")]
    Record { path: String, line: usize, reason: String },
    #[error("cannot set up a DNS resolver: {0}")]
    Resolver(String),
}

/// What the sending host said in SMTP, which SPF judges.
#[derive(Clone, Debug)]
pub struct Envelope {
    pub client_ip: IpAddr,
    pub helo: String,
    /// The `MAIL FROM` address (empty for bounces).
    pub mail_from: String,
}

/// TXT records by name, parsed as what their name says they are (a DKIM
/// key under `_domainkey`, a DMARC policy under `_dmarc`, SPF elsewhere).
/// Names are kept as mail-auth asks for them: lower-case, ending in a dot.
#[derive(Clone, Default)]
pub struct RecordedDns {
    records: HashMap<Box<str>, Txt>,
}

impl RecordedDns {
    /// Adds a record (parts of a long record joined as DNS joins them).
    pub fn insert(&mut self, name: &str, text: &[u8]) {
        let name = format!("{}.", name.trim().trim_end_matches('.').to_ascii_lowercase());
        let parsed = if name.contains("._domainkey.") {
            DomainKey::parse(text).map(|key| Txt::DomainKey(Arc::new(key)))
        } else if name.starts_with("_dmarc.") {
            Dmarc::parse(text).map(|policy| Txt::Dmarc(Arc::new(policy)))
        } else {
            Spf::parse(text).map(|spf| Txt::Spf(Arc::new(spf)))
        };
        // A name may hold several TXT records (SPF beside a site
        // verification): the first that parses is the answer, as in DNS.
        match (self.records.get(name.as_str()), parsed) {
            (Some(Txt::Error(_)) | None, Ok(txt)) => {
                self.records.insert(name.into_boxed_str(), txt);
            }
            (None, Err(error)) => {
                self.records.insert(name.into_boxed_str(), Txt::Error(error));
            }
            (Some(_), _) => {}
        }
    }

    /// Adds the records of zone-file lines (`name [ttl] [IN] TXT "part"
    /// "part"`, parentheses across lines, `;` comments) or tinydns lines
    /// (`'name:text:ttl`, `\NNN` octal escapes), both as found in the wild;
    /// the error names a line.
    pub fn add_text(&mut self, text: &str) -> Result<(), (usize, String)> {
        let mut pending: Option<(usize, String)> = None;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            if let Some(tinydns) = raw.strip_prefix('\'') {
                let mut fields = tinydns.splitn(3, ':');
                let (Some(name), Some(value)) = (fields.next(), fields.next()) else {
                    return Err((line, "a tinydns TXT line is 'name:text:ttl".into()));
                };
                self.insert(name, &unescape_octal(value));
                continue;
            }
            let content = strip_comment(raw);
            let (start, record) = match pending.take() {
                Some((start, mut record)) => {
                    record.push(' ');
                    record.push_str(content);
                    (start, record)
                }
                None if content.trim().is_empty() => continue,
                None => (line, content.to_owned()),
            };
            let (opened, closed) = unquoted_parentheses(&record);
            if opened > closed {
                pending = Some((start, record));
                continue;
            }
            let record = without_unquoted_parentheses(&record);
            let (name, text) = zone_txt(&record).map_err(|reason| (start, reason))?;
            self.insert(&name, &text);
        }
        match pending {
            Some((start, _)) => Err((start, "the record's parenthesis is never closed".into())),
            None => Ok(()),
        }
    }
}

impl ResolverCache<Box<str>, Txt> for RecordedDns {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        // Everything not recorded does not exist: nothing is asked of DNS.
        let missing = || Txt::Error(AuthError::DnsRecordNotFound(ResponseCode::NXDomain));
        Some(self.records.get(name).cloned().unwrap_or_else(missing))
    }

    fn remove<Q>(&self, _: &Q) -> Option<Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        None
    }

    fn insert(&self, _: Box<str>, _: Txt, _: Instant) {}
}

/// Each character of a zone-file line with whether it is inside a quoted
/// string (a `\"` inside one does not end it).
fn quoting(line: &str) -> impl Iterator<Item = (usize, char, bool)> + '_ {
    let (mut quoted, mut escaped) = (false, false);
    line.char_indices().map(move |(at, ch)| {
        let inside = quoted;
        if escaped {
            escaped = false;
        } else if quoted && ch == '\\' {
            escaped = true;
        } else if ch == '"' {
            quoted = !quoted;
        }
        (at, ch, inside || ch == '"')
    })
}

fn strip_comment(line: &str) -> &str {
    match quoting(line).find(|&(_, ch, quoted)| ch == ';' && !quoted) {
        Some((at, _, _)) => &line[..at],
        None => line,
    }
}

/// Parentheses that group a record's lines, not those inside its data.
fn unquoted_parentheses(record: &str) -> (usize, usize) {
    quoting(record).filter(|&(_, _, quoted)| !quoted).fold((0, 0), |(opened, closed), (_, ch, _)| match ch {
        '(' => (opened + 1, closed),
        ')' => (opened, closed + 1),
        _ => (opened, closed),
    })
}

fn without_unquoted_parentheses(record: &str) -> String {
    quoting(record).filter(|&(_, ch, quoted)| quoted || (ch != '(' && ch != ')')).map(|(_, ch, _)| ch).collect()
}

/// `name [ttl] [IN] TXT "part" "part"` → (name, joined parts).
fn zone_txt(record: &str) -> Result<(String, Vec<u8>), String> {
    let mut words = record.split_whitespace();
    let name = words.next().ok_or("empty record")?.to_owned();
    let mut rest = record.trim_start()[name.len()..].trim_start();
    loop {
        let word = rest.split_whitespace().next().ok_or("no TXT in the record")?;
        rest = rest[word.len()..].trim_start();
        if word.eq_ignore_ascii_case("TXT") {
            break;
        }
        if !(word.eq_ignore_ascii_case("IN") || word.bytes().all(|byte| byte.is_ascii_digit())) {
            return Err(format!("only TXT records are read, not {word}"));
        }
    }
    let mut text = Vec::new();
    let mut parts = 0;
    let mut chars = rest.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '"' => {
                parts += 1;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => {
                            // `\DDD` is a byte in decimal (RFC 1035); otherwise
                            // the next character stands for itself.
                            let digits: String = chars.clone().take(3).collect();
                            if digits.len() == 3
                                && digits.bytes().all(|byte| byte.is_ascii_digit())
                                && let Ok(byte) = digits.parse::<u8>()
                            {
                                text.push(byte);
                                chars.nth(2);
                            } else if let Some(escaped) = chars.next() {
                                text.extend_from_slice(escaped.encode_utf8(&mut [0; 4]).as_bytes());
                            }
                        }
                        Some(other) => text.extend_from_slice(other.encode_utf8(&mut [0; 4]).as_bytes()),
                        None => return Err("a quoted part is never closed".into()),
                    }
                }
            }
            ch if ch.is_whitespace() => {}
            _ => return Err("TXT data must be quoted".into()),
        }
    }
    if parts == 0 {
        return Err("the TXT record has no data".into());
    }
    Ok((name, text))
}

fn unescape_octal(value: &str) -> Vec<u8> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'\\'
            && let Some(digits) = bytes.get(at + 1..at + 4)
            && digits.iter().all(|digit| (b'0'..=b'7').contains(digit))
        {
            out.push(digits.iter().fold(0u8, |value, digit| value.wrapping_mul(8) + (digit - b'0')));
            at += 4;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    out
}

type NoCache<K, V> = mail_auth::common::cache::NoCache<K, V>;

/// mail-auth's parameters with the recorded TXT answers (if any) and no
/// other caches.
type Lookup<'a, P> = Parameters<
    'a,
    P,
    RecordedDns,
    NoCache<Box<str>, Arc<[MX]>>,
    NoCache<Box<str>, Arc<[std::net::Ipv4Addr]>>,
    NoCache<Box<str>, Arc<[std::net::Ipv6Addr]>>,
    NoCache<IpAddr, Arc<[Box<str>]>>,
>;

/// Verifies messages: with the system's resolver, or from recorded records
/// alone.
pub struct MailAuth {
    authenticator: MessageAuthenticator,
    recorded: Option<RecordedDns>,
    /// Forwarders whose verified ARC seal vouches for how a message
    /// authenticated before them (`email.trusted_arc_sealers`).
    pub trusted_arc_sealers: Vec<String>,
}

impl MailAuth {
    /// Asks the DNS servers of the system's configuration.
    pub fn system() -> Result<MailAuth, MailAuthError> {
        let authenticator =
            MessageAuthenticator::new_system_conf().map_err(|error| MailAuthError::Resolver(error.to_string()))?;
        Ok(MailAuth { authenticator, recorded: None, trusted_arc_sealers: Vec::new() })
    }

    /// What `serve`'s configuration asks for: `None` when verification is off.
    pub fn from_config(config: &crate::config::EmailConfig) -> Result<Option<MailAuth>, MailAuthError> {
        let mut auth = MailAuth::configured(config.dns, &config.dns_records)?;
        if let Some(auth) = &mut auth {
            auth.trusted_arc_sealers =
                config.trusted_arc_sealers.iter().map(|domain| domain.to_ascii_lowercase()).collect();
        }
        Ok(auth)
    }

    /// The system's DNS when `dns`, else the records of these files when
    /// there are any, else `None` (verification off): `serve`'s `email`
    /// settings and `email analyze`'s options alike.
    pub fn configured(dns: bool, record_files: &[std::path::PathBuf]) -> Result<Option<MailAuth>, MailAuthError> {
        if dns {
            return MailAuth::system().map(Some);
        }
        if record_files.is_empty() {
            return Ok(None);
        }
        let mut records = RecordedDns::default();
        for path in record_files {
            let text = std::fs::read_to_string(path)
                .map_err(|source| MailAuthError::Read { path: path.display().to_string(), source })?;
            records.add_text(&text).map_err(|(line, reason)| MailAuthError::Record {
                path: path.display().to_string(),
                line,
                reason,
            })?;
        }
        MailAuth::recorded(records).map(Some)
    }

    /// Answers from `records` only: nothing is ever sent to a DNS server.
    pub fn recorded(records: RecordedDns) -> Result<MailAuth, MailAuthError> {
        let authenticator =
            MessageAuthenticator::new(ResolverConfig::from_parts(None, vec![], vec![]), ResolverOpts::default())
                .map_err(|error| MailAuthError::Resolver(error.to_string()))?;
        Ok(MailAuth { authenticator, recorded: Some(records), trusted_arc_sealers: Vec::new() })
    }

    fn parameters<P>(&self, params: P) -> Lookup<'_, P> {
        Parameters {
            params,
            cache_txt: self.recorded.as_ref(),
            cache_mx: None,
            cache_ptr: None,
            cache_ipv4: None,
            cache_ipv6: None,
        }
    }

    /// Whether the From domain, or its organisation's domain, publishes a
    /// DMARC policy.
    async fn publishes_dmarc(&self, message: &AuthenticatedMessage<'_>) -> bool {
        let Some(domain) = message.from.first().and_then(|from| from.rsplit_once('@')).map(|(_, domain)| domain) else {
            return false;
        };
        for name in [domain, riposte_mail::domain::registered(domain)] {
            let found = self.authenticator.txt_lookup::<Dmarc>(format!("_dmarc.{name}"), self.recorded.as_ref()).await;
            if found.is_ok() {
                return true;
            }
        }
        false
    }

    /// DKIM for every signature; SPF and DMARC when the envelope is known
    /// (DMARC needs SPF's result as well as DKIM's).
    pub async fn verify(&self, raw: &[u8], envelope: Option<&Envelope>) -> Verified {
        let Some(message) = AuthenticatedMessage::parse(raw) else {
            return Verified::default();
        };
        let dkim = self.authenticator.verify_dkim(self.parameters(&message)).await;
        let signatures = dkim
            .iter()
            .map(|output| {
                let (domain, selector) = output
                    .signature()
                    .map_or((String::new(), String::new()), |signature| (signature.d.clone(), signature.s.clone()));
                let (result, reason) = signature_result(output.result());
                DkimCheck { domain, selector, result, reason }
            })
            .collect();
        let arc = if message.as_headers.is_empty() && message.ams_headers.is_empty() {
            None
        } else {
            let chain = self.authenticator.verify_arc(self.parameters(&message)).await;
            let (result, reason) = signature_result(chain.result());
            let mut seals: Vec<(u32, String)> = message
                .as_headers
                .iter()
                .filter_map(|seal| seal.header.as_ref().ok())
                .map(|seal| (seal.i, seal.d.clone()))
                .collect();
            seals.sort();
            let last_results = message
                .aar_headers
                .iter()
                .filter_map(|header| header.header.as_ref().ok().map(|results| (results.i, header.value)))
                .max_by_key(|(instance, _)| *instance)
                .map(|(_, value)| String::from_utf8_lossy(value).to_lowercase())
                .unwrap_or_default();
            Some(ArcCheck {
                result,
                sealers: seals.into_iter().map(|(_, domain)| domain).collect(),
                last_results,
                reason,
            })
        };
        let mut verified = Verified { dkim: Some(signatures), spf: None, dmarc: None, arc };
        let Some(envelope) = envelope else { return verified };
        let spf = self
            .authenticator
            .verify_spf(self.parameters(mail_auth::spf::verify::SpfParameters::verify_mail_from(
                envelope.client_ip,
                &envelope.helo,
                "localhost",
                &envelope.mail_from,
            )))
            .await;
        verified.spf = Some(match spf.result() {
            SpfResult::Pass => AuthResult::Pass,
            SpfResult::Fail => AuthResult::Fail,
            SpfResult::SoftFail => AuthResult::SoftFail,
            SpfResult::Neutral => AuthResult::Neutral,
            SpfResult::TempError => AuthResult::TempError,
            SpfResult::PermError => AuthResult::PermError,
            SpfResult::None => AuthResult::None,
        });
        let mail_from_domain = envelope.mail_from.rsplit_once('@').map_or(envelope.helo.as_str(), |(_, domain)| domain);
        let dmarc = self
            .authenticator
            .verify_dmarc(
                self.parameters(
                    mail_auth::dmarc::verify::DmarcParameters::new(&message, &dkim, mail_from_domain, &spf)
                        .with_domain_suffix_fn(riposte_mail::domain::registered),
                ),
            )
            .await;
        let results = [dmarc.dkim_result(), dmarc.spf_result()];
        let unauthenticated = results.iter().all(|result| **result == DmarcResult::None);
        verified.dmarc = Some(if unauthenticated {
            // mail-auth reports neither result when nothing passed at all;
            // with a policy published that is a DMARC failure (RFC 7489 §6.6.2).
            if self.publishes_dmarc(&message).await { AuthResult::Fail } else { AuthResult::None }
        } else if results.contains(&&DmarcResult::Pass) {
            AuthResult::Pass
        } else if results.iter().any(|result| matches!(result, DmarcResult::Fail(_))) {
            AuthResult::Fail
        } else if results.iter().any(|result| matches!(result, DmarcResult::PermError(_))) {
            AuthResult::PermError
        } else if results.iter().any(|result| matches!(result, DmarcResult::TempError(_))) {
            AuthResult::TempError
        } else {
            AuthResult::None
        });
        verified
    }
}

/// A DKIM signature's or an ARC chain's result, and why it did not pass.
fn signature_result(result: &DkimResult) -> (AuthResult, String) {
    match result {
        DkimResult::Pass => (AuthResult::Pass, String::new()),
        // The content changed after signing: a failure, whatever mail-auth calls it.
        DkimResult::Neutral(error @ (AuthError::FailedBodyHashMatch | AuthError::FailedVerification)) => {
            (AuthResult::Fail, error.to_string())
        }
        DkimResult::Neutral(error) => (AuthResult::Neutral, error.to_string()),
        DkimResult::Fail(error) => (AuthResult::Fail, error.to_string()),
        DkimResult::PermError(error) => (AuthResult::PermError, error.to_string()),
        DkimResult::TempError(error) => (AuthResult::TempError, error.to_string()),
        DkimResult::None => (AuthResult::None, String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_lines_keep_their_data_whole() {
        let record = r#"a.example.net. 300 IN TXT ( "v=spf1 (note) ; \" x\032y" "-all" )"#;
        let (opened, closed) = unquoted_parentheses(record);
        assert_eq!((opened, closed), (1, 1));
        let (name, text) = zone_txt(&without_unquoted_parentheses(strip_comment(record))).unwrap();
        assert_eq!(name, "a.example.net.");
        assert_eq!(String::from_utf8(text).unwrap(), "v=spf1 (note) ; \" x y-all");
        assert_eq!(strip_comment(r#"a TXT "x" ; a comment"#), r#"a TXT "x" "#);
    }
}
