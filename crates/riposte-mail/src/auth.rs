//! SPF, DKIM, DMARC and ARC results that the caller verified.
//!
//! Verifying needs DNS, which is I/O: the edge (`riposte-server`'s
//! `mail_auth`) verifies a message with `mail-auth` and hands the results to
//! [`crate::analyze`]. Where a method was not verified, the analysis reads
//! what the receiving host recorded in the message's headers instead.

use serde::Serialize;

/// The outcome of one method, in the words of RFC 8601.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthResult {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    TempError,
    PermError,
}

impl AuthResult {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthResult::Pass => "pass",
            AuthResult::Fail => "fail",
            AuthResult::SoftFail => "softfail",
            AuthResult::Neutral => "neutral",
            AuthResult::None => "none",
            AuthResult::TempError => "temperror",
            AuthResult::PermError => "permerror",
        }
    }

    /// Whether the result speaks against the message (not merely unknown).
    pub fn failed(self) -> bool {
        matches!(self, AuthResult::Fail | AuthResult::SoftFail | AuthResult::PermError)
    }
}

/// One DKIM signature's verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DkimCheck {
    /// The signing domain (`d=`) and selector (`s=`).
    pub domain: String,
    pub selector: String,
    pub result: AuthResult,
    /// Why it did not pass, for a person (empty when it did).
    pub reason: String,
}

/// What was verified; `None` for a method that was not (no envelope for
/// SPF, say).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// One entry per signature; empty when the message is not signed.
    pub dkim: Option<Vec<DkimCheck>>,
    pub spf: Option<AuthResult>,
    pub dmarc: Option<AuthResult>,
    /// The ARC chain, when the message carries one.
    pub arc: Option<ArcCheck>,
}

/// An ARC chain's verification (RFC 8617): whether every seal and message
/// signature verifies, and who sealed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ArcCheck {
    pub result: AuthResult,
    /// The sealing domains (`d=`), first hop first.
    pub sealers: Vec<String>,
    /// What the last sealer recorded on arrival (its
    /// `ARC-Authentication-Results`, lower-cased).
    pub last_results: String,
    /// Why it did not pass, for a person (empty when it did).
    pub reason: String,
}
