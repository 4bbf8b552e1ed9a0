//! Phishing analysis, the pure part: a message parsed once (nested parts,
//! encoded words and charsets by `mail-parser`), then judged by named checks
//! that each give a finding with its evidence and a weight, and a verdict
//! from their sum that a person can check finding by finding.
//! Reading mailboxes and holding messages back are the edges' job.

pub mod analyze;
pub mod attachment;
pub mod auth;
pub mod domain;
pub mod language;
pub mod learn;
pub mod links;
pub mod message;
pub mod words;

pub use analyze::{Analysis, Finding, History, Settings, Verdict, analyze, tokens_of};
pub use auth::{ArcCheck, AuthResult, DkimCheck, Verified};
pub use learn::{Taught, Verdicts};
pub use message::{Limits, Mail, parse};
pub use words::WordCounts;
