//! What an organisation's judged mail says in words: a Bayesian text
//! classifier in the manner of SpamBayes and SpamAssassin's Bayes, learned
//! only from analysts' verdicts, never shipped pre-trained.
//!
//! A message becomes a set of tokens (the words a person reads, the
//! subject's words again, the domains its links and sender use, the kinds
//! of its attachments). Each token's phishing probability comes from how
//! many judged messages of each kind held it, pulled towards "unknown"
//! while it has been seen rarely (Robinson's estimate); the strongest
//! tokens of a message are combined with Fisher's chi-square method, which
//! says "unsure" when the evidence points both ways instead of forcing a
//! side. The tokens that decided are the finding's evidence.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::domain::registered;
use crate::language::language_of;
use crate::links::Link;
use crate::message::Mail;

/// Verdicts of each kind needed before the classifier speaks: fewer make
/// it say more about the few messages judged than about mail.
pub const MIN_JUDGED: u64 = 50;
/// Verdicts of each kind needed in a message's language (when it can be
/// named) before the classifier judges it: what mail judged in one
/// language teaches says little of another, and an organisation whose
/// judged legitimate mail is all English would find every French
/// newsletter "unlike its mail".
pub const MIN_JUDGED_IN_LANGUAGE: u64 = 20;
/// The token naming a message's language (`lang:de`); it says whether the
/// classifier may judge, and takes no part in judging.
pub const LANGUAGE_TOKEN: &str = "lang:";

/// Whether a language with these verdicts (messages judged phishing and
/// legitimate in it) was judged enough both ways for the classifier to
/// judge messages in it.
pub fn judged_both_ways(phishing: u64, legitimate: u64) -> bool {
    phishing >= MIN_JUDGED_IN_LANGUAGE && legitimate >= MIN_JUDGED_IN_LANGUAGE
}
/// Tokens an organisation's counts keep at most (about 40 MB in memory);
/// past that the rarest are forgotten, down to nine tenths of it.
pub const MAX_KEPT: u64 = 500_000;
/// Tokens taken from one message, first seen first: words and the like,
/// and apart from them, of its links.
pub const MAX_TOKENS: usize = 2_000;
pub const MAX_LINK_TOKENS: usize = 300;
/// Tokens that decide one message, the strongest.
const MAX_DECIDING: usize = 150;
/// A token nearer "unknown" than this does not take part.
const MIN_STRENGTH: f64 = 0.1;
/// Robinson's prior: a token seen on few messages is pulled towards
/// `UNKNOWN` with the strength of `PRIOR_STRENGTH` messages.
const PRIOR_STRENGTH: f64 = 0.45;
const UNKNOWN: f64 = 0.5;

/// How many judged messages held each token.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WordCounts {
    /// Messages judged phishing and legitimate whose words were counted.
    pub phishing: u64,
    pub legitimate: u64,
    /// Per token: (messages judged phishing, messages judged legitimate).
    pub tokens: HashMap<String, (u64, u64)>,
}

/// Tokens with their probability of phishing.
pub type Leaning = Vec<(String, f64)>;

/// What the classifier says of one message.
#[derive(Clone, Debug, PartialEq)]
pub struct Resemblance {
    /// From 0 (like the mail judged legitimate) to 1 (like the phishing).
    pub phishing: f64,
    /// The tokens that pulled hardest each way, strongest first.
    pub phishing_tokens: Vec<String>,
    pub legitimate_tokens: Vec<String>,
}

impl WordCounts {
    /// Counts one judged message's tokens (as [`tokens`] gives them).
    pub fn record(&mut self, tokens: &[String], phishing: bool) {
        *if phishing { &mut self.phishing } else { &mut self.legitimate } += 1;
        for token in tokens {
            let counts = self.tokens.entry(token.clone()).or_default();
            *if phishing { &mut counts.0 } else { &mut counts.1 } += 1;
        }
    }

    /// Whether enough has been judged of both kinds for the classifier to speak.
    pub fn ready(&self) -> bool {
        self.phishing >= MIN_JUDGED && self.legitimate >= MIN_JUDGED
    }

    /// Judges a message's tokens (`None` until [`WordCounts::ready`]).
    pub fn resemblance(&self, tokens: &[String]) -> Option<Resemblance> {
        if !self.ready() || !self.knows_language_of(tokens) {
            return None;
        }
        let mut deciding: Vec<(f64, &str)> = tokens
            .iter()
            .filter(|token| !token.starts_with(LANGUAGE_TOKEN))
            .filter_map(|token| {
                let probability = self.probability(token)?;
                ((probability - UNKNOWN).abs() >= MIN_STRENGTH).then_some((probability, token.as_str()))
            })
            .collect();
        deciding.sort_by(|a, b| (b.0 - UNKNOWN).abs().total_cmp(&(a.0 - UNKNOWN).abs()).then(a.1.cmp(b.1)));
        deciding.truncate(MAX_DECIDING);
        if deciding.is_empty() {
            return Some(Resemblance { phishing: UNKNOWN, phishing_tokens: Vec::new(), legitimate_tokens: Vec::new() });
        }
        // Fisher: -2 Σ ln p is chi-square with 2n degrees of freedom when
        // the p are uniform; how far from that each side is, is the evidence.
        let (mut ln_phishing, mut ln_legitimate) = (0.0, 0.0);
        for (probability, _) in &deciding {
            ln_legitimate += probability.ln();
            ln_phishing += (1.0 - probability).ln();
        }
        let degrees = 2 * deciding.len();
        let phishing_evidence = 1.0 - chi_square_tail(-2.0 * ln_phishing, degrees);
        let legitimate_evidence = 1.0 - chi_square_tail(-2.0 * ln_legitimate, degrees);
        let phishing = ((phishing_evidence - legitimate_evidence + 1.0) / 2.0).clamp(0.0, 1.0);
        let side = |toward_phishing: bool| {
            deciding
                .iter()
                .filter(|(probability, _)| (*probability > UNKNOWN) == toward_phishing)
                .take(6)
                .map(|(_, token)| (*token).to_owned())
                .collect()
        };
        Some(Resemblance { phishing, phishing_tokens: side(true), legitimate_tokens: side(false) })
    }

    /// Whether enough of both kinds was judged in the language of the
    /// message whose tokens these are: yes when it has none named, and
    /// while no language has been judged enough both ways (verdicts counted
    /// before languages were named hold none: the classifier judges as it
    /// did until the new ones establish one).
    pub fn knows_language_of(&self, tokens: &[String]) -> bool {
        let judged = |token: &str| {
            self.tokens.get(token).is_some_and(|&(phishing, legitimate)| judged_both_ways(phishing, legitimate))
        };
        let Some(language) = tokens.iter().find(|token| token.starts_with(LANGUAGE_TOKEN)) else { return true };
        judged(language) || !crate::language::languages().any(|other| judged(&format!("{LANGUAGE_TOKEN}{other}")))
    }

    /// The languages named in judged messages, with the messages of each
    /// kind judged in them, most judged first.
    pub fn languages(&self) -> Vec<(String, u64, u64)> {
        let mut languages: Vec<(String, u64, u64)> = self
            .tokens
            .iter()
            .filter_map(|(token, &(phishing, legitimate))| {
                Some((token.strip_prefix(LANGUAGE_TOKEN)?.to_owned(), phishing, legitimate))
            })
            .collect();
        languages.sort_by(|a, b| (b.1 + b.2).cmp(&(a.1 + a.2)).then_with(|| a.0.cmp(&b.0)));
        languages
    }

    /// The `top` tokens leaning hardest toward phishing and toward
    /// legitimate mail, among those seen on enough judged messages to
    /// mean something, with their probability of phishing.
    pub fn strongest(&self, top: usize) -> (Leaning, Leaning) {
        let seen_enough = (self.phishing + self.legitimate).div_ceil(100).max(3);
        let mut leaning: Vec<(f64, &str)> = self
            .tokens
            .iter()
            .filter(|(token, (phishing, legitimate))| {
                phishing + legitimate >= seen_enough && !token.starts_with(LANGUAGE_TOKEN)
            })
            .filter_map(|(token, _)| Some((self.probability(token)?, token.as_str())))
            .collect();
        leaning.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        let rounded =
            |(probability, token): &(f64, &str)| ((*token).to_owned(), (probability * 1000.0).round() / 1000.0);
        let phishing =
            leaning.iter().take(top).filter(|(probability, _)| *probability > UNKNOWN).map(rounded).collect();
        let legitimate =
            leaning.iter().rev().take(top).filter(|(probability, _)| *probability < UNKNOWN).map(rounded).collect();
        (phishing, legitimate)
    }

    /// A token's phishing probability (`None`: never judged).
    fn probability(&self, token: &str) -> Option<f64> {
        let &(phishing, legitimate) = self.tokens.get(token)?;
        let in_phishing = phishing as f64 / self.phishing.max(1) as f64;
        let in_legitimate = legitimate as f64 / self.legitimate.max(1) as f64;
        if in_phishing + in_legitimate == 0.0 {
            return None;
        }
        let raw = in_phishing / (in_phishing + in_legitimate);
        let seen = (phishing + legitimate) as f64;
        Some((PRIOR_STRENGTH * UNKNOWN + seen * raw) / (PRIOR_STRENGTH + seen))
    }
}

/// The probability that a chi-square variable with `degrees` (even)
/// degrees of freedom is at least `value`.
fn chi_square_tail(value: f64, degrees: usize) -> f64 {
    let half = value / 2.0;
    let mut term = (-half).exp();
    let mut sum = term;
    for i in 1..degrees / 2 {
        term *= half / i as f64;
        sum += term;
    }
    sum.min(1.0)
}

/// The tokens of a message, each once: the words read in `text` (which
/// begins with the subject) and their pairs, the subject's words again as
/// `subject:word`, the sender's display name as `name:word`, `from:`,
/// `reply-to:` and `link:` registered domains, the words of links' paths
/// as `url:word`, and `attachment:` content types.
///
/// Words are lower-cased runs of 3 to 24 letters; numbers are left out
/// (they say when a message was written more than what it is). The
/// recipients' own addresses say who received a message, not what it is:
/// their parts are left out, and a message naming its recipient's address
/// (`Dear alice@corp.example`) gets the one token `names:recipient`.
pub fn tokens(mail: &Mail, text: &str, links: &[Link]) -> Vec<String> {
    let recipient: HashSet<String> = mail.recipients.iter().flat_map(|address| words(address)).collect();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    // Links have a budget of their own: a message stuffed with (hidden)
    // links cannot crowd its words out, nor words its links.
    let mut link_tokens = 0;
    let mut push = |token: String, out: &mut Vec<String>| {
        let is_link = token.starts_with("link:") || token.starts_with("url:");
        let room = if is_link { link_tokens < MAX_LINK_TOKENS } else { out.len() - link_tokens < MAX_TOKENS };
        if room && !seen.contains(&token) {
            link_tokens += usize::from(is_link);
            seen.insert(token.clone());
            out.push(token);
        }
    };
    if let Some(language) = language_of(text) {
        push(format!("{LANGUAGE_TOKEN}{language}"), &mut out);
    }
    if let Some(from) = &mail.from {
        let domain = registered(from.domain());
        if mail.recipients.contains(&from.address) {
            push("from:recipient".to_owned(), &mut out);
        } else if !domain.is_empty() {
            push(format!("from:{domain}"), &mut out);
        }
        for word in words(&from.name).filter(|word| !recipient.contains(word)) {
            push(format!("name:{word}"), &mut out);
        }
    }
    if let Some(reply_to) = &mail.reply_to {
        let domain = registered(reply_to.domain());
        if !domain.is_empty() && !mail.recipients.contains(&reply_to.address) {
            push(format!("reply-to:{domain}"), &mut out);
        }
    }
    for attachment in &mail.attachments {
        push(format!("attachment:{}", attachment.content_type), &mut out);
    }
    for link in links {
        let domain = registered(&link.host()).to_owned();
        if !domain.is_empty() {
            push(format!("link:{domain}"), &mut out);
        }
        let path =
            link.target.split_once("://").map_or("", |(_, rest)| rest.split_once('/').map_or("", |(_, path)| path));
        for word in words(path).filter(|word| !recipient.contains(word)) {
            push(format!("url:{word}"), &mut out);
        }
    }
    for word in words(&mail.subject).filter(|word| !recipient.contains(word)) {
        push(format!("subject:{word}"), &mut out);
    }
    let lower = text.to_lowercase();
    if mail.recipients.iter().any(|address| lower.contains(address.as_str())) {
        push("names:recipient".to_owned(), &mut out);
    }
    let mut previous: Option<String> = None;
    for word in words(text) {
        if recipient.contains(&word) {
            previous = None;
            continue;
        }
        if let Some(previous) = &previous {
            push(format!("{previous} {word}"), &mut out);
        }
        push(word.clone(), &mut out);
        previous = Some(word);
    }
    out
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|ch: char| !ch.is_alphanumeric())
        .filter(|word| (3..=24).contains(&word.chars().count()) && word.chars().all(char::is_alphabetic))
        .map(str::to_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words_of(text: &str) -> Vec<String> {
        words(text).collect::<HashSet<_>>().into_iter().collect()
    }

    fn trained() -> WordCounts {
        let mut counts = WordCounts::default();
        for _ in 0..MIN_JUDGED {
            counts.record(&words_of("verify your account password now suspended"), true);
            counts.record(&words_of("minutes of the meeting attached see you on tuesday"), false);
        }
        counts
    }

    #[test]
    fn the_classifier_speaks_only_after_enough_verdicts_of_both_kinds() {
        let mut counts = WordCounts::default();
        for _ in 0..MIN_JUDGED {
            counts.record(&words_of("verify your account"), true);
        }
        assert_eq!(counts.resemblance(&words_of("verify your account")), None);
        for _ in 0..MIN_JUDGED - 1 {
            counts.record(&words_of("lunch on friday"), false);
        }
        assert!(!counts.ready());
        counts.record(&words_of("lunch on friday"), false);
        assert!(counts.resemblance(&words_of("verify your account")).is_some());
    }

    #[test]
    fn the_classifier_judges_only_languages_judged_both_ways() {
        let in_language = |language: &str, words: &str| {
            let mut tokens = words_of(words);
            tokens.push(format!("{LANGUAGE_TOKEN}{language}"));
            tokens
        };
        // Verdicts counted before languages were named: judged as before.
        let mut counts = trained();
        assert!(counts.resemblance(&in_language("en", "please verify your password")).is_some());
        assert!(counts.resemblance(&in_language("de", "bitte passwort bestätigen")).is_some());
        // Then English is judged both ways, one verdict short of enough.
        for _ in 0..MIN_JUDGED_IN_LANGUAGE - 1 {
            counts.record(&in_language("en", "verify your account password now suspended"), true);
            counts.record(&in_language("en", "minutes of the meeting attached see you on tuesday"), false);
        }
        counts.record(&in_language("en", "verify your account password now suspended"), true);
        assert!(counts.resemblance(&in_language("de", "bitte passwort bestätigen")).is_some());
        counts.record(&in_language("en", "minutes of the meeting attached see you on tuesday"), false);
        // Now a language is established: German, judged phishing only, is not judged.
        for _ in 0..MIN_JUDGED {
            counts.record(&in_language("de", "bestätigen konto passwort gesperrt"), true);
        }
        let newsletter = in_language("de", "unser newsletter neue produkte angebote");
        assert!(!counts.knows_language_of(&newsletter));
        assert_eq!(counts.resemblance(&newsletter), None);
        // Nor Dutch, judged legitimate only.
        for _ in 0..MIN_JUDGED {
            counts.record(&in_language("nl", "notulen van de vergadering"), false);
        }
        assert_eq!(counts.resemblance(&in_language("nl", "bevestig uw wachtwoord")), None);
        // Nor a language never judged; English and unnamed messages are.
        assert_eq!(counts.resemblance(&in_language("fr", "veuillez confirmer votre compte")), None);
        assert!(counts.resemblance(&in_language("en", "please verify your password")).is_some());
        assert!(counts.resemblance(&words_of("please verify your password")).is_some());
        // Legitimate German mail one short of enough, then enough.
        for _ in 0..MIN_JUDGED_IN_LANGUAGE - 1 {
            counts.record(&in_language("de", "protokoll der sitzung am dienstag"), false);
        }
        assert_eq!(counts.resemblance(&in_language("de", "bitte passwort bestätigen")), None);
        counts.record(&in_language("de", "protokoll der sitzung am dienstag"), false);
        let judged = counts.resemblance(&in_language("de", "bitte passwort bestätigen konto gesperrt")).unwrap();
        assert!(judged.phishing > 0.9, "{judged:?}");
        // The language token says whether to judge, not which way.
        let mut deciding = judged.phishing_tokens.iter().chain(&judged.legitimate_tokens);
        assert!(!deciding.any(|token| token.starts_with(LANGUAGE_TOKEN)), "{judged:?}");
        let (phishing, legitimate) = counts.strongest(100);
        assert!(!phishing.iter().chain(&legitimate).any(|(token, _)| token.starts_with(LANGUAGE_TOKEN)));
        assert_eq!(counts.languages()[0], ("de".to_owned(), MIN_JUDGED, MIN_JUDGED_IN_LANGUAGE));
    }

    #[test]
    fn a_message_s_tokens_name_its_language() {
        let mail = Mail { subject: "Your order".into(), ..Mail::default() };
        let text = "Your order has shipped and you can track it with the link in this message; please keep it.";
        assert!(tokens(&mail, text, &[]).contains(&format!("{LANGUAGE_TOKEN}en")));
        assert!(!tokens(&mail, "Your order has shipped.", &[]).iter().any(|token| token.starts_with(LANGUAGE_TOKEN)));
    }

    #[test]
    fn messages_resemble_what_they_share_words_with() {
        let counts = trained();
        let phish = counts.resemblance(&words_of("please verify your password")).unwrap();
        assert!(phish.phishing > 0.99, "{phish:?}");
        assert!(phish.phishing_tokens.contains(&"verify".to_owned()), "{phish:?}");
        assert!(phish.legitimate_tokens.is_empty());
        let meeting = counts.resemblance(&words_of("the meeting minutes for tuesday")).unwrap();
        assert!(meeting.phishing < 0.01, "{meeting:?}");
        assert!(meeting.legitimate_tokens.contains(&"meeting".to_owned()), "{meeting:?}");
        // Words never judged say nothing.
        let unknown = counts.resemblance(&words_of("zebra quantum violin")).unwrap();
        assert_eq!(unknown.phishing, UNKNOWN);
        // Evidence both ways is unsure, not a side.
        let mixed = counts.resemblance(&words_of("verify password suspended meeting tuesday minutes")).unwrap();
        assert!((0.2..0.8).contains(&mixed.phishing), "{mixed:?}");
    }

    #[test]
    fn a_rare_token_weighs_less_than_a_common_one() {
        let mut counts = trained();
        counts.record(&words_of("verify zanzibar"), true);
        // Seen on one phishing message only, against `verify` on all of them.
        let rare = counts.probability("zanzibar").unwrap();
        let common = counts.probability("verify").unwrap();
        assert!(rare < common && rare > UNKNOWN, "{rare} {common}");
        assert_eq!(counts.probability("never"), None);
        // The strongest are those seen enough: `zanzibar` (once) is not one.
        let (phishing, legitimate) = counts.strongest(3);
        assert_eq!(
            phishing.iter().map(|(token, _)| token.as_str()).collect::<Vec<_>>(),
            ["verify", "account", "now"],
            "verify was seen once more"
        );
        assert!(phishing.iter().all(|(_, probability)| *probability > 0.99));
        assert_eq!(legitimate.len(), 3);
        assert!(
            legitimate.iter().all(|(token, _)| "attached meeting minutes see the tuesday you".contains(token.as_str()))
        );
    }

    #[test]
    fn chi_square_tail_matches_known_values() {
        // P(X ≥ 2) with 2 degrees of freedom is e^-1; with 4 it is 2e^-1.
        assert!((chi_square_tail(2.0, 2) - (-1.0f64).exp()).abs() < 1e-12);
        assert!((chi_square_tail(2.0, 4) - 2.0 * (-1.0f64).exp()).abs() < 1e-12);
        assert_eq!(chi_square_tail(0.0, 10), 1.0);
        assert!(chi_square_tail(1_000.0, 10) < 1e-100);
    }

    #[test]
    fn tokens_are_words_subjects_domains_and_attachment_kinds() {
        let mail = Mail {
            subject: "Urgent: Account 12345".into(),
            from: Some(crate::message::Mailbox { name: String::new(), address: "a@mail.evil.example".into() }),
            attachments: vec![crate::message::Attachment {
                name: "x.html".into(),
                content_type: "text/html".into(),
                bytes: Vec::new(),
            }],
            ..Mail::default()
        };
        let links = [Link::to("https://login.phish.example/x", String::new())];
        let found = tokens(&mail, "Urgent: Account 12345\nPlease log in at ÉCOLE a1b2 it", &links);
        for expected in [
            "from:evil.example",
            "attachment:text/html",
            "link:phish.example",
            "subject:urgent",
            "subject:account",
            "urgent",
            "please",
            "école",
        ] {
            assert!(found.contains(&expected.to_owned()), "{expected} missing from {found:?}");
        }
        // Numbers, words mixed with digits and words shorter than three letters are left out; each token once.
        assert!(!found.iter().any(|token| token.contains("12345") || token == "a1b2" || token == "it"), "{found:?}");
        assert_eq!(found.iter().filter(|token| *token == "urgent").count(), 1);
    }
}
