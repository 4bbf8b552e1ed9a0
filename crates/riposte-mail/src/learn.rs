//! Weights an organisation learns from its analysts' verdicts.
//!
//! Each verdict counts the checks that held on the judged message. A check
//! found in a larger share of the messages judged phishing than of those
//! judged legitimate weighs more for that organisation, a check found
//! mostly on legitimate mail weighs less: its weight is multiplied by the
//! square root of the smoothed likelihood ratio, bounded to
//! [`LOWEST_FACTOR`, `HIGHEST_FACTOR`], once it has been seen on enough
//! judged messages. Each changed finding says so in its evidence.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::words::{Leaning, WordCounts};

/// Bounds of a learned factor: learning can halve or double a weight, no more.
pub const LOWEST_FACTOR: f64 = 0.5;
pub const HIGHEST_FACTOR: f64 = 2.0;
/// Judged messages a check must have been found on before it is reweighed.
pub const MIN_SEEN: u64 = 5;

/// How often each check held on messages analysts judged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Verdicts {
    pub phishing: u64,
    pub legitimate: u64,
    /// Per check: (on messages judged phishing, on messages judged legitimate).
    pub checks: BTreeMap<String, (u64, u64)>,
    /// The words of the judged messages whose bytes were there to read.
    #[serde(default)]
    pub words: WordCounts,
}

impl Verdicts {
    /// Counts one judged message and the checks that held on it.
    pub fn record<'a>(&mut self, checks: impl IntoIterator<Item = &'a str>, phishing: bool) {
        *if phishing { &mut self.phishing } else { &mut self.legitimate } += 1;
        let mut seen: Vec<&str> = checks.into_iter().filter(|check| learnable(check)).collect();
        seen.sort_unstable();
        seen.dedup();
        for check in seen {
            let counts = self.checks.entry(check.to_owned()).or_default();
            *if phishing { &mut counts.0 } else { &mut counts.1 } += 1;
        }
    }

    /// Counts one judged message: the checks its analysis found, and its words.
    pub fn record_message(&mut self, mail: &crate::Mail, analysis: &crate::Analysis, phishing: bool) {
        self.record(analysis.findings.iter().map(|finding| finding.check), phishing);
        self.words.record(&crate::tokens_of(mail), phishing);
    }

    /// The factor learned for `check`, if it has one.
    pub fn factor(&self, check: &str) -> Option<f64> {
        // Counts kept by a store may name any check; these are never reweighed.
        if !learnable(check) {
            return None;
        }
        let &(phishing, legitimate) = self.checks.get(check)?;
        if phishing + legitimate < MIN_SEEN || self.phishing == 0 || self.legitimate == 0 {
            return None;
        }
        // Laplace-smoothed shares; the square root keeps one organisation's
        // few verdicts from swinging a weight too far.
        let in_phishing = (phishing as f64 + 1.0) / (self.phishing as f64 + 2.0);
        let in_legitimate = (legitimate as f64 + 1.0) / (self.legitimate as f64 + 2.0);
        Some((in_phishing / in_legitimate).sqrt().clamp(LOWEST_FACTOR, HIGHEST_FACTOR))
    }

    /// Why `check` weighs what it does, for its finding's evidence.
    pub fn explain(&self, check: &str, factor: f64) -> String {
        let (phishing, legitimate) = self.checks.get(check).copied().unwrap_or_default();
        format!(
            "weight ×{factor:.2} learned from analysts' verdicts: on {phishing} of {} messages judged phishing, {legitimate} of {} judged legitimate",
            self.phishing, self.legitimate
        )
    }
}

/// What an organisation's verdicts taught, for a person: each check's
/// counts and factor, and the words the classifier leans on most.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Taught {
    pub phishing: u64,
    pub legitimate: u64,
    pub checks: Vec<CheckTaught>,
    pub words: WordsTaught,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckTaught {
    pub check: String,
    pub phishing: u64,
    pub legitimate: u64,
    /// The weight's factor (`None`: not seen on enough judged messages).
    pub factor: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WordsTaught {
    /// Judged messages whose words were counted.
    pub phishing: u64,
    pub legitimate: u64,
    pub tokens: usize,
    /// Whether enough was judged of both kinds for the classifier to speak.
    pub speaks: bool,
    /// Languages named in judged messages: the messages judged phishing and
    /// legitimate in each (the classifier judges a message in a named
    /// language only with `MIN_JUDGED_IN_LANGUAGE` of both).
    pub languages: Vec<(String, u64, u64)>,
    /// The tokens seen most that lean hardest each way, with their
    /// probability of phishing.
    pub phishing_tokens: Leaning,
    pub legitimate_tokens: Leaning,
}

impl Verdicts {
    /// What was taught, with the `top` words each way.
    pub fn taught(&self, top: usize) -> Taught {
        let checks = self
            .checks
            .iter()
            .map(|(check, &(phishing, legitimate))| CheckTaught {
                check: check.clone(),
                phishing,
                legitimate,
                factor: self.factor(check),
            })
            .collect();
        let (phishing_tokens, legitimate_tokens) = self.words.strongest(top);
        Taught {
            phishing: self.phishing,
            legitimate: self.legitimate,
            checks,
            words: WordsTaught {
                phishing: self.words.phishing,
                legitimate: self.words.legitimate,
                tokens: self.words.tokens.len(),
                speaks: self.words.ready(),
                languages: self.words.languages(),
                phishing_tokens,
                legitimate_tokens,
            },
        }
    }
}

/// Checks that stand for the sender's own history, and the classifier of
/// judged words, are not reweighed: they already are what analysts said.
fn learnable(check: &str) -> bool {
    !check.starts_with("history.") && !check.starts_with("learned.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_are_bounded_and_need_enough_verdicts() {
        let mut verdicts = Verdicts::default();
        for _ in 0..20 {
            verdicts.record(["html.hidden_text", "language.urgency"], true);
        }
        for _ in 0..20 {
            verdicts.record(["language.urgency"], false);
        }
        // Found on every phish and no legitimate message: doubled, no more.
        assert_eq!(verdicts.factor("html.hidden_text"), Some(HIGHEST_FACTOR));
        // Found on both alike: unchanged.
        assert!((verdicts.factor("language.urgency").unwrap() - 1.0).abs() < 1e-9);
        verdicts.record(["links.shortener"], true);
        // Seen once: not enough to learn from.
        assert_eq!(verdicts.factor("links.shortener"), None);
        assert_eq!(verdicts.factor("never.seen"), None);
        for _ in 0..30 {
            verdicts.record(["sender.reply_to_elsewhere"], false);
        }
        assert_eq!(verdicts.factor("sender.reply_to_elsewhere"), Some(LOWEST_FACTOR));
        // History is not learned (it is the analysts' word already).
        verdicts.record(["history.judged_phishing"], true);
        assert!(!verdicts.checks.contains_key("history.judged_phishing"));
        // Nor is it, or the classifier's finding, when a store counted them.
        verdicts.checks.insert("learned.resembles_phishing".into(), (40, 0));
        verdicts.checks.insert("history.judged_legitimate".into(), (0, 40));
        assert_eq!(verdicts.factor("learned.resembles_phishing"), None);
        assert_eq!(verdicts.factor("history.judged_legitimate"), None);
        let explained = verdicts.explain("html.hidden_text", 2.0);
        assert!(explained.contains("on 20 of 22 messages judged phishing, 0 of 50 judged legitimate"), "{explained}");
    }
}
