//! How much an indicator is still worth: a score that falls with the time
//! since it was last seen, following the polynomial model MISP documents
//! (`score = base × (1 − (t / lifetime)^(1 / speed))`), with a model per
//! kind and per source, expiry below a threshold or after `valid_until`,
//! and revocation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::indicator::{Indicator, IndicatorKind};

const DAY_MS: f64 = 86_400_000.0;

/// One decay curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecayModel {
    /// Days after which the score is 0.
    pub lifetime_days: f64,
    /// MISP's decay speed: above 1 the score drops early and then slowly;
    /// below 1 it stays high and drops near the end of the lifetime.
    pub speed: f64,
    /// Below this score (0–100) the indicator is no longer live.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
}

fn default_threshold() -> f64 {
    20.0
}

impl DecayModel {
    /// The score, from `base` (the confidence), `age_ms` after last seen.
    pub fn score(&self, base: f64, age_ms: i64) -> f64 {
        let age_days = (age_ms.max(0) as f64) / DAY_MS;
        if self.lifetime_days <= 0.0 || age_days >= self.lifetime_days {
            return 0.0;
        }
        let speed = self.speed.max(0.01);
        base * (1.0 - (age_days / self.lifetime_days).powf(1.0 / speed))
    }
}

/// Decay models by kind and by source (a source's model wins).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecayPolicy {
    pub default: DecayModel,
    pub by_kind: BTreeMap<IndicatorKind, DecayModel>,
    pub by_source: BTreeMap<String, DecayModel>,
}

impl Default for DecayPolicy {
    /// Addresses change hands in weeks, domains and URLs in months; a file
    /// hash never stops naming its file.
    fn default() -> Self {
        let model = |lifetime_days, speed| DecayModel { lifetime_days, speed, threshold: 20.0 };
        let by_kind = BTreeMap::from([
            (IndicatorKind::Ip, model(30.0, 2.0)),
            (IndicatorKind::Cidr, model(60.0, 2.0)),
            (IndicatorKind::Domain, model(180.0, 1.0)),
            (IndicatorKind::Url, model(90.0, 1.0)),
            (IndicatorKind::Md5, model(3650.0, 0.3)),
            (IndicatorKind::Sha1, model(3650.0, 0.3)),
            (IndicatorKind::Sha256, model(3650.0, 0.3)),
        ]);
        DecayPolicy { default: model(365.0, 1.0), by_kind, by_source: BTreeMap::new() }
    }
}

impl DecayPolicy {
    fn model(&self, indicator: &Indicator) -> DecayModel {
        indicator
            .sources
            .iter()
            .find_map(|source| self.by_source.get(source))
            .or_else(|| self.by_kind.get(&indicator.kind))
            .copied()
            .unwrap_or(self.default)
    }

    /// The indicator's score at `now` (ms): its confidence decayed since it
    /// was last (or first) seen; 0 when revoked or past `valid_until`.
    pub fn score(&self, indicator: &Indicator, now: i64) -> f64 {
        if indicator.revoked || indicator.valid_until.is_some_and(|until| until <= now) {
            return 0.0;
        }
        let base = f64::from(indicator.confidence);
        match indicator.last_seen.or(indicator.first_seen) {
            Some(seen) => self.model(indicator).score(base, now - seen),
            None => base,
        }
    }

    /// Whether the indicator should still be matched at `now`.
    pub fn is_live(&self, indicator: &Indicator, now: i64) -> bool {
        let score = self.score(indicator, now);
        score > 0.0 && score >= self.model(indicator).threshold
    }
}

/// A configuration's changes to the built-in [`DecayPolicy`]: each model
/// given replaces the built-in one of its kind (or the default); sources
/// have none built in.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecayOverrides {
    pub default: Option<DecayModel>,
    pub by_kind: BTreeMap<IndicatorKind, DecayModel>,
    pub by_source: BTreeMap<String, DecayModel>,
}

impl DecayOverrides {
    pub fn policy(&self) -> DecayPolicy {
        let mut policy = DecayPolicy::default();
        if let Some(default) = self.default {
            policy.default = default;
        }
        policy.by_kind.extend(self.by_kind.iter().map(|(kind, model)| (*kind, *model)));
        policy.by_source.extend(self.by_source.iter().map(|(source, model)| (source.clone(), *model)));
        policy
    }
}

/// A sighting refreshes an indicator: it was seen again at `time`.
pub fn sighting(indicator: &mut Indicator, time: i64) {
    indicator.last_seen = Some(indicator.last_seen.map_or(time, |seen| seen.max(time)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_fall_with_age_and_expire() {
        let model = DecayModel { lifetime_days: 30.0, speed: 1.0, threshold: 20.0 };
        assert_eq!(model.score(80.0, 0), 80.0);
        assert!((model.score(80.0, 15 * 86_400_000) - 40.0).abs() < 1e-9, "linear at speed 1");
        assert_eq!(model.score(80.0, 30 * 86_400_000), 0.0);
        let lasting = DecayModel { speed: 0.3, ..model };
        assert!(lasting.score(80.0, 15 * 86_400_000) > 70.0, "a low speed keeps the score up longer");
        let fading = DecayModel { speed: 3.0, ..model };
        assert!(fading.score(80.0, 15 * 86_400_000) < 20.0, "a high speed drops it early");

        let policy = DecayPolicy::default();
        let mut ip = Indicator::new(IndicatorKind::Ip, "198.51.100.7", "feed");
        ip.confidence = 90;
        ip.last_seen = Some(0);
        assert!(policy.is_live(&ip, 86_400_000));
        assert!(!policy.is_live(&ip, 20 * 86_400_000), "an address weeks old is below the threshold");
        sighting(&mut ip, 19 * 86_400_000);
        assert!(policy.is_live(&ip, 20 * 86_400_000), "seen again");
        ip.revoked = true;
        assert_eq!(policy.score(&ip, 29 * 86_400_000), 0.0);
        let mut hash = Indicator::new(IndicatorKind::Sha256, "ab".repeat(32), "feed");
        hash.last_seen = Some(0);
        assert!(policy.is_live(&hash, 365 * 86_400_000), "a hash lasts");
        hash.valid_until = Some(1_000);
        assert!(!policy.is_live(&hash, 2_000));
    }

    #[test]
    fn a_configuration_changes_only_what_it_names() {
        let overrides: DecayOverrides = serde_json::from_str(
            r#"{"by_kind": {"ip": {"lifetime_days": 7, "speed": 1}}, "by_source": {"honeypot": {"lifetime_days": 2, "speed": 1, "threshold": 50}}}"#,
        )
        .unwrap();
        let policy = overrides.policy();
        assert_eq!(policy.by_kind[&IndicatorKind::Ip], DecayModel { lifetime_days: 7.0, speed: 1.0, threshold: 20.0 });
        assert_eq!(policy.by_kind[&IndicatorKind::Domain], DecayPolicy::default().by_kind[&IndicatorKind::Domain]);
        let mut ip = Indicator::new(IndicatorKind::Ip, "198.51.100.7", "honeypot");
        ip.confidence = 100;
        ip.last_seen = Some(0);
        // A day old: 50 by the source's model, the threshold itself.
        assert!(policy.is_live(&ip, 86_400_000));
        assert!(!policy.is_live(&ip, 86_400_000 + 1), "the source's model wins over the kind's");
        assert!(serde_json::from_str::<DecayOverrides>(r#"{"by_kind": {"ipaddr": {}}}"#).is_err());
    }
}
