//! The checks and the verdict. Each check that holds gives a [`Finding`]
//! with what it saw; the verdict comes from the sum of their weights, so a
//! person can see why and disagree finding by finding.

use crate::attachment::{Content, RISKY_EXTENSIONS, double_extension, extension, inspect};
use crate::auth::{AuthResult, Verified};
use crate::domain::{
    brands, imitated, is_freemail, is_open_hosting, is_shortener, is_under, protected_domains, registered,
};
use crate::language::{Wording, contains_words, wording};
use crate::links::{self, Link, Shown, asks_for_credentials, has_form, host_of, html_links, text_links};
use crate::message::Mail;
use crate::words::{Resemblance, WordCounts, tokens};

/// What the organisation tells the checks.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// The organisation's own domains (look-alikes of them are suspect).
    pub own_domains: Vec<String>,
    /// Indicators that links, the sender's domain and attachments' hashes
    /// are looked up in.
    pub intel: Option<std::sync::Arc<riposte_intel::IndicatorSet>>,
    /// The time indicators are judged at (decay), in ms since the epoch.
    pub now_ms: i64,
    /// What the organisation knows of the sender (`None`: no history is kept).
    pub history: Option<History>,
    /// SPF, DKIM and DMARC as the caller verified them; what is not there is
    /// read from the receiving host's headers.
    pub verified: Verified,
    /// What the organisation's analysts have judged: checks reweighed by it.
    pub learned: Option<std::sync::Arc<crate::learn::Verdicts>>,
    /// Forwarders and mailing lists whose verified ARC seal is trusted to
    /// say how a message authenticated before they changed it.
    pub trusted_arc_sealers: Vec<String>,
}

/// A sender's past with the organisation, learned from its mail and from
/// analysts' verdicts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// Messages seen from it before this one.
    pub messages: i64,
    /// Earlier messages analysts judged legitimate, and phishing.
    pub legitimate: i64,
    pub phishing: i64,
    /// Messages seen before from the sender's registered domain.
    pub domain_messages: i64,
}

/// Most an analyst's trust in a sender takes off a score: a trusted
/// sender's mail with a program attached or a look-alike link still shows.
const MOST_TRUST: f64 = 3.0;

/// Where the classifier of judged words decides on its own, as SpamBayes
/// does by default: from 0.9 a message is like the phishing analysts
/// judged (enough for a verdict by itself), to 0.2 like their legitimate
/// mail; between, it is unsure and says nothing.
const PHISHING_CUTOFF: f64 = 0.9;
const LEGITIMATE_CUTOFF: f64 = 0.2;

/// One check that held.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Finding {
    /// `area.check`, e.g. `links.text_href_mismatch`.
    pub check: &'static str,
    /// What was seen, for a person.
    pub evidence: String,
    pub weight: f64,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Clean,
    Suspicious,
    Phishing,
    /// Carries something that runs or installs (an executable, macros, a disk image).
    Malicious,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Clean => "clean",
            Verdict::Suspicious => "suspicious",
            Verdict::Phishing => "phishing",
            Verdict::Malicious => "malicious",
        }
    }
}

/// A message's findings, score and verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    pub score: f64,
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
}

/// Score from which a message is suspicious, and phishing.
pub const SUSPICIOUS_FROM: f64 = 3.0;
pub const PHISHING_FROM: f64 = 5.0;

/// Checks whose finding alone makes a message malicious.
const MALICIOUS_CHECKS: &[&str] = &[
    "attachment.executable",
    "attachment.office_macros",
    "attachment.disk_image",
    "attachment.shortcut",
    "intel.attachment",
];

/// Words of a link's text that ask the reader to act on an account, in the
/// languages of [`crate::language`].
const CALLS_TO_ACTION: &[&str] = &[
    "verify",
    "log in",
    "login",
    "sign in",
    "confirm",
    "update",
    "view document",
    "unlock",
    "review",
    "validate",
    "claim",
    "password",
    "verifizieren",
    "bestätigen",
    "anmelden",
    "einloggen",
    "aktualisieren",
    "entsperren",
    "passwort",
    "verifieer",
    "bevestig",
    "inloggen",
    "bijwerken",
    "wachtwoord",
    "vérifier",
    "confirmer",
    "se connecter",
    "mettre à jour",
    "mot de passe",
    "verificar",
    "confirmar",
    "iniciar sesión",
    "actualizar",
    "contraseña",
    "acessar",
    "atualizar",
    "regularizar",
    "senha",
];

/// Judges a parsed message.
pub fn analyze(mail: &Mail, settings: &Settings) -> Analysis {
    let mut findings = Vec::new();
    // A check counts once; what else it saw joins its evidence (once: four
    // links to the same shortener are one piece of evidence).
    let mut add = |check: &'static str, weight: f64, evidence: String| match findings
        .iter_mut()
        .find(|found: &&mut Finding| found.check == check)
    {
        Some(found) if found.evidence.split("; ").any(|piece| piece == evidence) => {}
        Some(found) if found.evidence.len() < 400 => {
            found.evidence.push_str("; ");
            found.evidence.push_str(&evidence);
        }
        Some(_) => {}
        None => findings.push(Finding { check, evidence, weight }),
    };
    let protected = protected_domains(&settings.own_domains);
    let from_domain = mail.from.as_ref().map_or("", |from| from.domain()).to_owned();

    authentication(mail, &settings.verified, &settings.trusted_arc_sealers, &mut add);
    sender(mail, &from_domain, &protected, &mut add);

    let Reading { text: reading, links, shown } = read(mail);
    for (html, shown) in mail.htmls.iter().zip(&shown) {
        if mail.texts.is_empty()
            && shown.text.split_whitespace().count() < 15
            && html.to_ascii_lowercase().contains("<img")
        {
            add("html.image_only", 1.0, "the message is a picture with almost no text".into());
        }
        // A hiding style anywhere, a stylesheet's too: what its classes hide
        // is not left out of the shown text, which reads inline styles only.
        let lower = html.to_ascii_lowercase().replace(' ', "");
        if ["font-size:0", "display:none", "visibility:hidden"].iter().any(|style| lower.contains(style))
            && (shown.hidden_words > 0 || shown.text.split_whitespace().count() > 0)
        {
            // Newsletters hide a preview line the same way: a hint, no more.
            add("html.hidden_text", 0.5, "the body hides part of its text".into());
        }
        if asks_for_credentials(html) {
            add("html.password_form", 3.0, "the message body asks for a password".into());
        } else if has_form(html) {
            add("html.form", 1.5, "the message body holds a form".into());
        }
    }
    link_checks(&links, &from_domain, &protected, &mut add);
    for attachment in &mail.attachments {
        attachment_checks(attachment, &mut add);
    }
    // Wording only counts where it could lead elsewhere: a password reset
    // from an authenticated sender whose links all stay home is its job.
    let home = registered(&from_domain);
    let authenticated = match settings.verified.dmarc {
        Some(result) => result == AuthResult::Pass,
        None => mail
            .authentication_results
            .first()
            .is_some_and(|results| method_results(results, "dmarc").any(|result| result == "pass")),
    };
    let stays_home = !home.is_empty()
        && links.iter().all(|link| link.host().is_empty() || registered(&link.host()) == home)
        && mail.reply_to.as_ref().is_none_or(|reply_to| registered(reply_to.domain()) == home);
    let wording_counts = !(authenticated && stays_home);
    let worded = if wording_counts { wording(&reading) } else { Vec::new() };
    let lured = !worded.is_empty();
    for (category, phrase) in worded {
        match category {
            Wording::CredentialLure => add("language.credential_lure", 2.0, format!("says {phrase:?}")),
            Wording::Urgency => add("language.urgency", 1.0, format!("says {phrase:?}")),
            Wording::PaymentFraud => add("language.payment_fraud", 1.5, format!("says {phrase:?}")),
            Wording::Scam => add("language.scam", 2.0, format!("says {phrase:?}")),
        }
    }
    // The subject is what gets the click: a lure there counts again.
    if let Some((_, phrase)) = wording(&mail.subject).first().filter(|_| wording_counts) {
        add("language.subject_lure", 1.5, format!("the subject says {phrase:?}"));
    }
    if let Some(token) = random_token(&mail.subject) {
        add("language.subject_random_token", 1.5, format!("the subject carries the machine-made token {token:?}"));
    }
    if is_freemail(&from_domain) && lured {
        add("sender.freemail_lure", 1.5, format!("a lure from a free mailbox ({from_domain})"));
    }
    if let Some(word) = mixed_script_word(&mail.subject) {
        add("language.mixed_script", 3.0, format!("the subject writes {word:?} with letters of several alphabets"));
    }
    for (place, text) in [("the subject", mail.subject.as_str()), ("the text", reading.as_str())] {
        if let Some(hidden) = hidden_inside_word(text) {
            add(
                "language.hidden_characters",
                2.5,
                format!("{place} hides U+{:04X} inside a word, to break it up for filters", u32::from(hidden)),
            );
        }
    }
    let decorated = decorated_letters(&mail.subject);
    if decorated >= 4 {
        add(
            "language.decorated_letters",
            2.0,
            format!("the subject piles marks on {decorated} letters (P͓̽l͓̽e͓̽a͓̽s͓̽e͓̽), which word filters do not read"),
        );
    }
    let styled = mail.subject.chars().filter(|ch| ('\u{1d400}'..='\u{1d7ff}').contains(ch)).count();
    if styled >= 3 {
        add(
            "language.styled_letters",
            2.0,
            format!(
                "the subject writes {styled} letters as mathematical symbols (𝗹𝗶𝗸𝗲 𝘁𝗵𝗶𝘀), which word filters do not read"
            ),
        );
    }
    let subject = mail.subject.trim_start().to_ascii_uppercase();
    let subject_mark = ["[SPAM]", "***SPAM***"].into_iter().find(|mark| subject.starts_with(mark));
    if let Some(mark) = mail.spam_mark.as_deref().or(subject_mark) {
        add("message.spam_flagged", 2.0, format!("a filter on the way already marked it as spam: {mark}"));
    }
    for cut in &mail.cut {
        add("message.cut", 0.5, cut.clone());
    }
    if let (Some(history), Some(from)) = (&settings.history, &mail.from) {
        if history.phishing > 0 {
            let weight = (2.0 + history.phishing as f64).min(5.0);
            add(
                "history.judged_phishing",
                weight,
                format!("analysts judged {} earlier messages from {} phishing", history.phishing, from.address),
            );
        } else if history.legitimate > 0 {
            let weight = -(history.legitimate as f64).min(MOST_TRUST);
            add(
                "history.judged_legitimate",
                weight,
                format!("analysts judged {} earlier messages from {} legitimate", history.legitimate, from.address),
            );
        } else if history.messages == 0 && history.domain_messages == 0 {
            let domain = registered(from.domain());
            add("history.new_sender_domain", 1.5, format!("the first message the organisation has had from {domain}"));
        } else if history.messages == 0 {
            add("history.first_time_sender", 1.0, format!("the first message from {}", from.address));
        }
    }
    if let Some(intel) = &settings.intel {
        intel_checks(intel, settings.now_ms, mail, &from_domain, &links, &mut add);
    }

    if let Some(learned) = &settings.learned {
        let tokens = if learned.words.ready() { tokens(mail, &reading, &links) } else { Vec::new() };
        if let Some(resemblance) = learned.words.resemblance(&tokens) {
            resembles(&resemblance, &learned.words, &mut add);
        }
        for finding in &mut findings {
            if let Some(factor) = learned.factor(finding.check).filter(|factor| (factor - 1.0).abs() > 0.01) {
                finding.weight = (finding.weight * factor * 10.0).round() / 10.0;
                finding.evidence.push_str(" (");
                finding.evidence.push_str(&learned.explain(finding.check, factor));
                finding.evidence.push(')');
            }
        }
    }
    let score: f64 = findings.iter().map(|finding| finding.weight).sum();
    let verdict = if findings.iter().any(|finding| MALICIOUS_CHECKS.contains(&finding.check)) {
        Verdict::Malicious
    } else if score >= PHISHING_FROM {
        Verdict::Phishing
    } else if score >= SUSPICIOUS_FROM {
        Verdict::Suspicious
    } else {
        Verdict::Clean
    };
    findings.sort_by(|a, b| b.weight.total_cmp(&a.weight));
    Analysis { score, verdict, findings }
}

/// What a person reads of a message: the subject and every body as text,
/// each HTML body's text on its own, and every link.
struct Reading {
    text: String,
    links: Vec<Link>,
    /// What is shown of each of `Mail::htmls`, in order.
    shown: Vec<Shown>,
}

fn read(mail: &Mail) -> Reading {
    let mut links = Vec::new();
    let mut text = mail.subject.clone();
    for body in &mail.texts {
        text_links(body, &mut links);
        text.push('\n');
        text.push_str(body);
    }
    let mut shown = Vec::with_capacity(mail.htmls.len());
    for html in &mail.htmls {
        html_links(html, &mut links);
        let read = links::shown(html);
        text.push('\n');
        text.push_str(&read.text);
        shown.push(read);
    }
    Reading { text, links, shown }
}

/// The tokens the classifier of judged mail counts for `mail`.
pub fn tokens_of(mail: &Mail) -> Vec<String> {
    let Reading { text, links, .. } = read(mail);
    tokens(mail, &text, &links)
}

/// The classifier's say as a finding: only when it leans clearly one way,
/// bounded like an analyst's trust in a sender, with the tokens that decided.
fn resembles(resemblance: &Resemblance, counts: &WordCounts, add: &mut impl FnMut(&'static str, f64, String)) {
    let leaning = resemblance.phishing;
    let (check, weight, tokens, kind) = if leaning >= PHISHING_CUTOFF {
        ("learned.resembles_phishing", PHISHING_FROM, &resemblance.phishing_tokens, "phishing")
    } else if leaning <= 0.01 {
        ("learned.resembles_legitimate", -MOST_TRUST, &resemblance.legitimate_tokens, "legitimate")
    } else if leaning <= LEGITIMATE_CUTOFF {
        ("learned.resembles_legitimate", -2.0, &resemblance.legitimate_tokens, "legitimate")
    } else {
        return;
    };
    add(
        check,
        weight,
        format!(
            "its words are like those of the mail analysts judged {kind} (probability of phishing {leaning:.3}, from {} phishing and {} legitimate verdicts): {}",
            counts.phishing,
            counts.legitimate,
            tokens.join(", ")
        ),
    );
}

/// The results of `method` in an `Authentication-Results` value: the word
/// after each `method=` that starts a result (after `;` or whitespace), not
/// one inside a property such as `smtp.mailfrom=dmarc=pass@evil.example`.
fn method_results<'a>(results: &'a str, method: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    results.match_indices(method).filter_map(move |(at, _)| {
        let before = results[..at].chars().next_back();
        if !before.is_none_or(|ch| ch == ';' || ch.is_whitespace()) {
            return None;
        }
        let rest = results[at + method.len()..].strip_prefix('=')?;
        rest.split(|ch: char| !ch.is_ascii_alphanumeric()).next()
    })
}

/// `compauth=fail` and its reason code when one follows it (`reason=001`).
fn compauth(results: &str) -> String {
    let reason = results
        .split("compauth=fail")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|rest| rest.split_once("reason="))
        .map(|(_, code)| code.split(|ch: char| !ch.is_ascii_alphanumeric()).next().unwrap_or(""))
        .filter(|code| !code.is_empty());
    match reason {
        Some(code) => format!("compauth=fail (reason {code})"),
        None => "compauth=fail".to_owned(),
    }
}

/// SPF, DKIM, DMARC and ARC: as verified where they were, otherwise as the
/// receiving host recorded them (its `Authentication-Results`, the top one)
/// or `Received-SPF`. A forwarder or list breaks SPF and often DKIM; when a
/// sealer the organisation trusts recorded DMARC passing on arrival and
/// handed the message over with a chain that verifies, those failures are
/// its changes, not the sender's: they are set aside, and a finding says so.
fn authentication(
    mail: &Mail,
    verified: &Verified,
    trusted_sealers: &[String],
    add: &mut impl FnMut(&'static str, f64, String),
) {
    let mut failures: Vec<(&'static str, f64, String)> = Vec::new();
    authentication_failures(mail, verified, &mut |check, weight, evidence| failures.push((check, weight, evidence)));
    let arc = verified.arc.as_ref();
    if let Some(arc) = arc.filter(|arc| arc.result.failed()) {
        add(
            "auth.arc_fail",
            1.5,
            format!("the ARC chain sealed by {} does not verify: {}", arc.sealers.join(", "), arc.reason),
        );
    } else if arc.is_none()
        && let Some(failed) = mail
            .authentication_results
            .first()
            .and_then(|results| method_results(results, "arc").find(|verdict| matches!(*verdict, "fail" | "permerror")))
    {
        add("auth.arc_fail", 1.5, format!("arc={failed} in the receiving host's Authentication-Results"));
    }
    // It vouches only for what it recorded: DMARC passing when the message
    // reached it (a spoof it relayed was recorded failing, and still fails).
    let vouching = arc
        .filter(|arc| arc.result == AuthResult::Pass)
        .filter(|arc| method_results(&arc.last_results, "dmarc").any(|result| result == "pass"))
        .and_then(|arc| arc.sealers.last())
        .filter(|sealer| is_under(sealer, trusted_sealers));
    match vouching {
        Some(sealer) if !failures.is_empty() => {
            let set_aside: Vec<&str> = failures.iter().map(|(check, ..)| *check).collect();
            add(
                "auth.arc_vouched",
                0.0,
                format!(
                    "{} set aside: {sealer}, a trusted forwarder, recorded dmarc=pass when the message reached it and sealed that with an ARC chain that verifies",
                    set_aside.join(", ")
                ),
            );
        }
        _ => failures.into_iter().for_each(|(check, weight, evidence)| add(check, weight, evidence)),
    }
}

fn authentication_failures(mail: &Mail, verified: &Verified, add: &mut impl FnMut(&'static str, f64, String)) {
    if let Some(signatures) = &verified.dkim {
        // One good signature is enough: forwarders often break another.
        if !signatures.iter().any(|signature| signature.result == AuthResult::Pass) {
            let failed: Vec<String> = signatures
                .iter()
                .filter(|signature| signature.result.failed())
                .map(|signature| {
                    format!(
                        "the DKIM signature of {} (selector {}) does not verify: {}",
                        signature.domain, signature.selector, signature.reason
                    )
                })
                .collect();
            if !failed.is_empty() {
                add("auth.dkim_fail", 1.5, failed.join("; "));
            }
        }
    }
    if let Some(spf) = verified.spf.filter(|spf| spf.failed()) {
        add("auth.spf_fail", 1.5, format!("spf={} for the sending host", spf.as_str()));
    }
    if let Some(dmarc) = verified.dmarc.filter(|dmarc| dmarc.failed()) {
        add(
            "auth.dmarc_fail",
            2.5,
            format!("dmarc={}: no SPF or DKIM pass aligned with the From domain", dmarc.as_str()),
        );
    }
    if let Some(results) = mail.authentication_results.first() {
        let failed = |method| {
            method_results(results, method).find(|verdict| matches!(*verdict, "fail" | "softfail" | "permerror"))
        };
        for (method, check, weight, done) in [
            ("spf", "auth.spf_fail", 1.5, verified.spf.is_some()),
            ("dkim", "auth.dkim_fail", 1.5, verified.dkim.is_some()),
            ("dmarc", "auth.dmarc_fail", 2.5, verified.dmarc.is_some()),
        ] {
            if let Some(failed) = failed(method).filter(|_| !done) {
                add(check, weight, format!("{method}={failed} in the receiving host's Authentication-Results"));
            }
        }
        // Microsoft's composite authentication also fails a From domain that
        // publishes no DMARC policy (or `p=none`) when nothing else vouches
        // for the sender; its DMARC failures are already counted above.
        if verified.dmarc.is_none()
            && failed("dmarc").is_none()
            && method_results(results, "compauth").any(|verdict| verdict == "fail")
        {
            add(
                "auth.compauth_fail",
                2.0,
                format!("{} in the receiving host's Authentication-Results", compauth(results)),
            );
        }
    } else if let Some(spf) = mail.received_spf.first()
        && verified.spf.is_none()
        && (spf.starts_with("fail") || spf.starts_with("softfail"))
    {
        add("auth.spf_fail", 1.5, format!("Received-SPF: {}", spf.split_whitespace().next().unwrap_or("")));
    }
}

fn sender(mail: &Mail, from_domain: &str, protected: &[String], add: &mut impl FnMut(&'static str, f64, String)) {
    let Some(from) = mail.from.as_ref().filter(|from| from.address.contains('@')) else {
        add("sender.missing", 2.0, "no From address".into());
        return;
    };
    if mail.from_entries > 1 {
        add("sender.several_from", 1.5, format!("the From header holds {} entries", mail.from_entries));
    }
    let local = from.address.split('@').next().unwrap_or("");
    if looks_random(local) {
        add("sender.random_name", 1.5, format!("{} looks machine-made", from.address));
    }
    if let Some(problem) = malformed_domain(from_domain) {
        add("sender.malformed_address", 2.0, format!("the From address {} {problem}", from.address.escape_debug()));
    } else if let Some(label) = machine_made_label(registered(from_domain)) {
        add("sender.random_domain", 2.0, format!("{label} in {from_domain} looks machine-made"));
    } else if from_domain.split('.').filter(|label| label.len() == 1).count() >= 4 {
        add("sender.random_domain", 2.0, format!("{from_domain} is spelt out one character a label"));
    }
    // Mass phishing addresses its target by address, where a person or a
    // service that knows them uses their name.
    let subject = mail.subject.to_ascii_lowercase();
    if let Some(address) =
        mail.recipients.iter().find(|address| address.contains('@') && subject.contains(address.as_str()))
    {
        add("language.subject_names_recipient", 1.5, format!("the subject names the recipient's address {address}"));
    }
    let name = from.name.to_lowercase();
    // A display name holding another address: `"service@paypal.com" <x@evil.example>`.
    if let Some(shown) = name.split_whitespace().find(|word| word.contains('@') && word.contains('.')) {
        let shown = shown.trim_matches(|ch: char| !ch.is_ascii_alphanumeric() && ch != '@' && ch != '.' && ch != '-');
        let shown_domain = shown.rsplit_once('@').map_or("", |(_, domain)| domain);
        if !shown_domain.is_empty() && registered(shown_domain) != registered(from_domain) {
            add(
                "sender.display_name_address",
                3.0,
                format!("the name shows {shown} but the address is {}", from.address),
            );
        }
    }
    // A display name naming a brand that does not send from there.
    if let Some(brand) = brands().iter().find(|brand| {
        brand.name.len() >= 4 && contains_words(&name, &brand.name) && !is_under(from_domain, &brand.domains)
    }) {
        add(
            "sender.display_name_brand",
            2.5,
            format!("the name says {:?} but the address is {}", brand.name, from.address),
        );
    }
    if is_freemail(from_domain)
        && ["support", "security", "service", "team", "bank", "admin", "billing", "account", "helpdesk", "notification"]
            .iter()
            .any(|word| contains_words(&name, word))
    {
        add(
            "sender.freemail_organisation",
            2.0,
            format!("{:?} writes from a free mailbox ({})", from.name, from.address),
        );
    }
    if let Some(brand) = imitated(from_domain, protected) {
        add("lookalike.sender_domain", 4.0, format!("{from_domain} imitates {brand}"));
    }
    if from_domain.split('.').any(|label| label.starts_with("xn--")) {
        add("lookalike.punycode_sender", 2.0, format!("{from_domain} is an internationalised (punycode) name"));
    }
    if let Some(reply_to) = &mail.reply_to
        && !reply_to.domain().is_empty()
        && registered(reply_to.domain()) != registered(from_domain)
        && !mail.list_id
    {
        let weight = if is_freemail(reply_to.domain()) { 2.0 } else { 1.0 };
        add(
            "sender.reply_to_elsewhere",
            weight,
            format!("replies go to {} , not to {}", reply_to.address, from.address),
        );
    }
}

fn link_checks(
    links: &[Link],
    from_domain: &str,
    protected: &[String],
    add: &mut impl FnMut(&'static str, f64, String),
) {
    for link in links {
        let target = link.target.trim();
        let lower = target.to_ascii_lowercase();
        if lower.starts_with("javascript:") || lower.starts_with("data:text/html") {
            let shown: String = target.chars().take(40).collect();
            add("links.script_or_data", 3.0, format!("a link runs {shown}"));
            continue;
        }
        let host = link.host();
        if host.is_empty() {
            continue;
        }
        if host.parse::<std::net::IpAddr>().is_ok() {
            add("links.ip_address", 2.0, format!("a link goes to the address {host}"));
        }
        if let Some(redirector) = &link.redirector {
            add("links.redirect", 1.5, format!("a link passes through the open redirector {redirector} to {host}"));
        }
        if is_shortener(&host) {
            add("links.shortener", 1.0, format!("a link hides its destination behind {host}"));
        }
        if is_open_hosting(&host) {
            add("links.open_hosting", 2.0, format!("a link goes to {host}, where anyone can publish"));
        }
        // A call to action that leads away from the sender.
        let action = link.shown.to_lowercase();
        if !from_domain.is_empty()
            && registered(&host) != registered(from_domain)
            && CALLS_TO_ACTION.iter().any(|word| action.contains(word))
        {
            add(
                "links.action_elsewhere",
                1.5,
                format!("{:?} leads to {host}, not to the sender's {from_domain}", link.shown),
            );
        }
        if let Some(brand) = imitated(&host, protected) {
            add("lookalike.link_host", 4.0, format!("a link goes to {host}, which imitates {brand}"));
        }
        if host.split('.').any(|label| label.starts_with("xn--")) {
            add("lookalike.punycode_link", 2.0, format!("a link goes to the internationalised name {host}"));
        }
        // A brand's domain written into another host (`paypal.com.secure-login.example`).
        if let Some(brand) = protected.iter().find(|domain| {
            let inside = host.starts_with(&format!("{domain}.")) || host.contains(&format!(".{domain}."));
            // `amazon.com.au` is Amazon's own, under another suffix.
            let brand_name = domain.split('.').next().unwrap_or(domain);
            let own = registered(&host).split('.').next() == Some(brand_name);
            inside && !own && !is_under(&host, std::slice::from_ref(domain))
        }) {
            add("links.brand_in_host", 3.0, format!("{host} carries {brand} in its name"));
        }
        // The text shows one place, the link goes to another.
        let shown = link.shown.to_ascii_lowercase();
        let shown_host = if shown.contains("://") {
            host_of(&shown)
        } else if shown.starts_with("www.") {
            host_of(&format!("http://{shown}"))
        } else {
            String::new()
        };
        if !shown_host.is_empty() && shown_host.contains('.') && registered(&shown_host) != registered(&host) {
            add("links.text_href_mismatch", 3.0, format!("a link shows {shown_host} but goes to {host}"));
        }
    }
}

fn attachment_checks(attachment: &crate::message::Attachment, add: &mut impl FnMut(&'static str, f64, String)) {
    let name = if attachment.name.is_empty() { "(unnamed)" } else { &attachment.name };
    let (content, listed) = inspect(&attachment.bytes);
    match content {
        Content::Executable => add("attachment.executable", 6.0, format!("{name} is a program")),
        Content::OfficeWithMacros | Content::OpenXmlWithMacros => {
            add("attachment.office_macros", 5.0, format!("{name} is an Office document with macros"))
        }
        Content::DiskImage => add("attachment.disk_image", 5.0, format!("{name} is a disk image")),
        Content::Shortcut => add("attachment.shortcut", 5.0, format!("{name} is a Windows shortcut")),
        Content::EncryptedArchive | Content::Archive if let Some(contents) = listed => {
            if contents.encrypted {
                add("attachment.encrypted_archive", 3.0, format!("{name} is an archive with a password"));
            }
            if let Some(risky) = contents
                .names
                .iter()
                .find(|entry| extension(entry).is_some_and(|extension| RISKY_EXTENSIONS.contains(&extension.as_str())))
            {
                add("attachment.archive_runs", 4.0, format!("{name} holds {risky}, which runs when opened"));
            }
            for cut in contents.cut {
                add("message.cut", 0.5, format!("{name}: {cut}"));
            }
        }
        Content::Html => {
            let text = String::from_utf8_lossy(&attachment.bytes);
            if asks_for_credentials(&text) || has_form(&text) {
                add("attachment.html_form", 4.0, format!("{name} is a web page with a form"));
            } else {
                add("attachment.html", 2.0, format!("{name} is a web page"));
            }
        }
        _ => {}
    }
    if let Some(extension) = extension(name)
        && RISKY_EXTENSIONS.contains(&extension.as_str())
    {
        add("attachment.risky_extension", 3.0, format!("{name} runs when opened (.{extension})"));
    }
    if double_extension(name) {
        add("attachment.double_extension", 3.0, format!("{name} hides its real extension"));
    }
}

/// An invisible character between two Latin letters: a zero-width space,
/// non-joiner or joiner, a word joiner, a Unicode tag or variation selector
/// (U+E0000 to U+E01EF), or a combining overlay. People do not type them
/// there; they split `Coinbase` so that a filter reading words does not see
/// it. Between letters of other scripts they are writing (Persian puts a
/// non-joiner inside words), and a joiner between emoji composes them; a
/// soft hyphen is how HTML hyphenates long words.
fn hidden_inside_word(text: &str) -> Option<char> {
    let hidden = |ch: char| {
        matches!(ch, '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}' | '\u{0334}'..='\u{0338}')
            || ('\u{e0000}'..='\u{e01ef}').contains(&ch)
    };
    let mut chars = text.chars().peekable();
    let mut before = None;
    while let Some(ch) = chars.next() {
        if hidden(ch) && before.is_some_and(|before: char| before.is_ascii_alphabetic()) {
            // Skip a run of them to the next visible character.
            while chars.peek().is_some_and(|next| hidden(*next)) {
                chars.next();
            }
            if chars.peek().is_some_and(char::is_ascii_alphabetic) {
                return Some(ch);
            }
        }
        before = Some(ch);
    }
    None
}

/// A word mixing Latin letters with Cyrillic or Greek look-alikes
/// (`Lоsе` with a Cyrillic `о`): written to slip past filters, never by a
/// person typing.
fn mixed_script_word(text: &str) -> Option<&str> {
    text.split(|ch: char| !ch.is_alphabetic()).find(|word| {
        let latin = word.chars().any(|ch| ch.is_ascii_alphabetic());
        let other = word.chars().any(|ch| matches!(ch, '\u{0370}'..='\u{03ff}' | '\u{0400}'..='\u{04ff}'));
        latin && other
    })
}

/// What threat intelligence says of the sender's domain, the links and the
/// attachments (by SHA-256).
fn intel_checks(
    intel: &riposte_intel::IndicatorSet,
    now_ms: i64,
    mail: &Mail,
    from_domain: &str,
    links: &[Link],
    add: &mut impl FnMut(&'static str, f64, String),
) {
    use sha2::Digest as _;
    let named = |found: Vec<riposte_intel::IndicatorId>| {
        found
            .into_iter()
            .filter(|&id| intel.is_live(id, now_ms))
            .map(|id| intel.get(id))
            .next()
            .map(|indicator| format!("{} {} ({})", indicator.kind, indicator.value, indicator.sources.join(", ")))
    };
    if !from_domain.is_empty()
        && let Some(indicator) = named(intel.lookup(from_domain))
    {
        add("intel.sender", 4.0, format!("the sender's domain is known: {indicator}"));
    }
    for link in links {
        if let Some(indicator) = named(intel.lookup(&link.target)) {
            add("intel.link", 5.0, format!("a link is known: {indicator}"));
            break;
        }
    }
    for attachment in &mail.attachments {
        let digest = hex::encode(sha2::Sha256::digest(&attachment.bytes));
        let found = intel.exact_id(riposte_intel::IndicatorKind::Sha256, &digest).into_iter().collect();
        if let Some(indicator) = named(found) {
            add("intel.attachment", 6.0, format!("{} is known: {indicator}", attachment.name));
        }
    }
}

/// A word of eight or more letters and digits mixing lower case, upper
/// case and digits (`G3ejrKKzNc30o7qJhZ`): a tracking or evasion token no
/// person writes in a subject (order numbers are digits, or upper case).
fn random_token(text: &str) -> Option<&str> {
    text.split(|ch: char| !ch.is_ascii_alphanumeric()).find(|word| {
        word.len() >= 8
            && word.bytes().any(|byte| byte.is_ascii_lowercase())
            && word.bytes().filter(u8::is_ascii_uppercase).count() >= 2
            && word.bytes().any(|byte| byte.is_ascii_digit())
    })
}

/// Plain Latin letters carrying two or more combining marks each
/// (`P͓̽l͓̽e͓̽a͓̽s͓̽e͓̽`): no language writes them so, a single accent written
/// as a separate mark (`é` as `e` and U+0301) is not counted.
fn decorated_letters(text: &str) -> usize {
    let mut decorated = 0;
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        if !ch.is_ascii_alphabetic() {
            continue;
        }
        let mut marks = 0;
        while chars.peek().is_some_and(|next| ('\u{0300}'..='\u{036f}').contains(next)) {
            chars.next();
            marks += 1;
        }
        if marks >= 2 {
            decorated += 1;
        }
    }
    decorated
}

/// What is wrong with a From domain no mail system would write: a space or
/// bracket in it, a trailing dot, or a top-level label that is not letters
/// of some alphabet (`example.eu-new`; `почта.рф` is fine).
fn malformed_domain(domain: &str) -> Option<&'static str> {
    if domain.is_empty() {
        return None;
    }
    if domain
        .contains(|ch: char| ch.is_whitespace() || matches!(ch, '<' | '>' | '(' | ')' | ',' | ';' | '"' | '@' | '%'))
    {
        return Some("has a domain with characters no domain holds");
    }
    if domain.ends_with('.') {
        return Some("ends its domain with a dot");
    }
    // A name with no dot at all is left alone: it is how mail inside one
    // network (and anonymised samples) name hosts.
    let (_, top) = domain.rsplit_once('.')?;
    if top.chars().count() < 2 || !top.chars().all(char::is_alphabetic) && !top.starts_with("xn--") {
        return Some("has a domain with no real top-level domain");
    }
    None
}

/// The first label of a registered domain that letters and digits
/// alternate in, as generated names do (`nkn5zun99r.com`), unlike names
/// people choose, where digits stand together (`office365`, `4fast`).
fn machine_made_label(registered: &str) -> Option<&str> {
    // Internationalised names in punycode mix letters and digits by design.
    let label = registered.split('.').next().filter(|label| !label.starts_with("xn--"))?;
    let switches =
        label.as_bytes().windows(2).filter(|pair| pair[0].is_ascii_digit() != pair[1].is_ascii_digit()).count();
    (label.len() >= 6 && switches >= 3).then_some(label)
}

/// A mailbox name of letters with almost no vowels (`qydnqycysp`), as
/// throwaway senders are made.
fn looks_random(local: &str) -> bool {
    let letters: Vec<char> = local.chars().filter(char::is_ascii_alphabetic).collect();
    if letters.len() < 7 || letters.len() != local.len() {
        return false;
    }
    let vowels = letters.iter().filter(|ch| "aeiou".contains(**ch)).count();
    let mut run = 0;
    let longest_consonants = letters.iter().fold(0, |longest, ch| {
        run = if "aeiouy".contains(*ch) { 0 } else { run + 1 };
        longest.max(run)
    });
    vowels * 5 < letters.len() || longest_consonants >= 5
}
