//! What starts a run: an alert matching a filter, a schedule, a webhook, or
//! a person. An incident trigger joins as one more variant; the runner only
//! sees the trigger's name and the JSON it hands to the run.

use std::fmt;

use serde::Serialize;

use crate::template::{Expr, Templates};

#[derive(Debug)]
pub enum Trigger {
    Alert(AlertFilter),
    Schedule(Cron),
    /// `POST /api/playbooks/hooks/{name}`, signed with the hook's secret from
    /// configuration (never in the playbook).
    Webhook {
        name: String,
    },
    Manual,
}

impl Trigger {
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Alert(_) => "alert",
            Trigger::Schedule(_) => "schedule",
            Trigger::Webhook { .. } => "webhook",
            Trigger::Manual => "manual",
        }
    }
}

const LEVELS: [&str; 5] = ["informational", "low", "medium", "high", "critical"];

/// Which alerts start a run. Every part given must hold.
#[derive(Debug, Default)]
pub struct AlertFilter {
    pub min_level: Option<String>,
    /// Rule ids, any of them.
    pub rules: Vec<String>,
    /// ATT&CK technique ids, any of them; `T1110` also takes `T1110.001`.
    pub techniques: Vec<String>,
    /// An expression over `alert`.
    pub when: Option<Expr>,
}

impl AlertFilter {
    pub fn level_known(level: &str) -> bool {
        LEVELS.contains(&level)
    }

    /// Whether `alert` (the API's alert JSON) passes; an expression that
    /// cannot be evaluated on it does not pass.
    pub fn matches(&self, alert: &serde_json::Value, templates: &Templates) -> bool {
        let text = |name: &str| alert.get(name).and_then(serde_json::Value::as_str).unwrap_or("");
        if let Some(min_level) = &self.min_level {
            let rank = |level: &str| LEVELS.iter().position(|known| *known == level);
            if rank(text("level")) < rank(min_level) {
                return false;
            }
        }
        if !self.rules.is_empty() && !self.rules.iter().any(|rule| rule == text("rule_id")) {
            return false;
        }
        if !self.techniques.is_empty() {
            let techniques = alert.get("techniques").and_then(serde_json::Value::as_array);
            let has = |wanted: &str| {
                techniques.into_iter().flatten().filter_map(serde_json::Value::as_str).any(|technique| {
                    technique.eq_ignore_ascii_case(wanted)
                        || technique.get(..wanted.len()).is_some_and(|head| head.eq_ignore_ascii_case(wanted))
                            && technique.as_bytes().get(wanted.len()) == Some(&b'.')
                })
            };
            if !self.techniques.iter().any(|wanted| has(wanted)) {
                return false;
            }
        }
        match &self.when {
            Some(when) => {
                let context = crate::template::context(serde_json::json!({ "alert": alert }));
                templates.test(when, &context).unwrap_or(false)
            }
            None => true,
        }
    }
}

/// A five-field cron schedule (minute, hour, day of month, month, day of
/// week), in UTC. Fields take `*`, numbers, ranges `a-b`, lists `a,b` and
/// steps `*/n` or `a-b/n`; day of week 0 or 7 is Sunday. As in cron, when
/// both day fields are restricted a day matching either runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cron {
    pub text: String,
    #[serde(skip)]
    minutes: u64,
    #[serde(skip)]
    hours: u32,
    #[serde(skip)]
    days: u32,
    #[serde(skip)]
    months: u16,
    #[serde(skip)]
    weekdays: u8,
    #[serde(skip)]
    any_day: bool,
    #[serde(skip)]
    any_weekday: bool,
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Cron {
    pub fn parse(text: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(format!("a schedule has five fields (minute hour day month weekday), not {}", fields.len()));
        };
        let weekdays = field(weekday, 0, 7, "weekday")?;
        Ok(Cron {
            text: text.to_owned(),
            minutes: field(minute, 0, 59, "minute")?,
            hours: field(hour, 0, 23, "hour")? as u32,
            days: field(day, 1, 31, "day")? as u32,
            months: field(month, 1, 12, "month")? as u16,
            // Sunday is 0 and 7.
            weekdays: ((weekdays | (weekdays >> 7)) & 0x7f) as u8,
            any_day: day == "*",
            any_weekday: weekday == "*",
        })
    }

    /// The first minute strictly after `after_ms` (Unix milliseconds, UTC)
    /// that the schedule names, within the next five years.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let mut minute = after_ms.div_euclid(60_000) + 1;
        let limit = minute + 5 * 366 * 1440;
        while minute < limit {
            let day_number = minute.div_euclid(1440);
            let (_, month, day) = civil_from_days(day_number);
            let weekday = (day_number + 4).rem_euclid(7) as u32; // 1970-01-01 was a Thursday
            if self.months & (1 << month) == 0 {
                minute = (day_number + 1) * 1440;
                continue;
            }
            let day_ok = self.days & (1 << day) != 0;
            let weekday_ok = self.weekdays & (1 << weekday) != 0;
            let runs_today = match (self.any_day, self.any_weekday) {
                (true, true) => true,
                (false, true) => day_ok,
                (true, false) => weekday_ok,
                (false, false) => day_ok || weekday_ok,
            };
            if !runs_today {
                minute = (day_number + 1) * 1440;
                continue;
            }
            let of_day = minute.rem_euclid(1440);
            if self.hours & (1 << (of_day / 60)) == 0 {
                minute = minute - of_day % 60 + 60;
                continue;
            }
            if self.minutes & (1 << (of_day % 60)) == 0 {
                minute += 1;
                continue;
            }
            return Some(minute * 60_000);
        }
        None
    }
}

/// A cron field as a bit set of the values it names.
fn field(text: &str, low: u32, high: u32, name: &str) -> Result<u64, String> {
    let bad = || format!("schedule {name} field {text:?} is not a cron field ({low}-{high})");
    let mut set = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (range, step.parse::<u32>().ok().filter(|step| *step > 0).ok_or_else(bad)?),
            None => (part, 1),
        };
        let (from, to) = if range == "*" {
            (low, high)
        } else if let Some((from, to)) = range.split_once('-') {
            (from.parse().map_err(|_| bad())?, to.parse().map_err(|_| bad())?)
        } else {
            let single: u32 = range.parse().map_err(|_| bad())?;
            (single, if step > 1 { high } else { single })
        };
        if from < low || to > high || from > to {
            return Err(bad());
        }
        for value in (from..=to).step_by(step as usize) {
            set |= 1 << value;
        }
    }
    Ok(set)
}

/// (year, month 1-12, day 1-31) of a day counted from 1970-01-01
/// (Howard Hinnant's civil-from-days algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-30 10:07 UTC, a Monday.
    const NOW: i64 = 1_796_033_220_000;

    fn next(text: &str) -> i64 {
        Cron::parse(text).unwrap().next_after(NOW).unwrap()
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(NOW / 86_400_000), (2026, 11, 30));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn schedules() {
        assert_eq!(next("* * * * *"), NOW + 60_000);
        assert_eq!(next("*/15 * * * *"), NOW + 8 * 60_000);
        assert_eq!(next("0 * * * *"), NOW + 53 * 60_000);
        // 02:30 tomorrow.
        assert_eq!(next("30 2 * * *"), NOW - (10 * 60 + 7) * 60_000 + 86_400_000 + 150 * 60_000);
        // The 1st of next month (December), midnight.
        assert_eq!(next("0 0 1 * *"), NOW - (10 * 60 + 7) * 60_000 + 86_400_000);
        // Sunday (0 and 7 alike): 2026-12-06.
        let sunday = NOW - (10 * 60 + 7) * 60_000 + 6 * 86_400_000;
        assert_eq!(next("0 0 * * 0"), sunday);
        assert_eq!(next("0 0 * * 7"), sunday);
        // Either day field: the 3rd (Thursday) comes before Sunday.
        assert_eq!(next("0 0 3 * 0"), NOW - (10 * 60 + 7) * 60_000 + 3 * 86_400_000);
        assert_eq!(next("0 9-17/4 * * 1-5"), NOW - (10 * 60 + 7) * 60_000 + 13 * 3_600_000);
    }

    #[test]
    fn bad_schedules_say_which_field() {
        assert!(Cron::parse("* * * *").unwrap_err().contains("five fields"));
        assert!(Cron::parse("61 * * * *").unwrap_err().contains("minute"));
        assert!(Cron::parse("* * 0 * *").unwrap_err().contains("day"));
        assert!(Cron::parse("* * * * mon").unwrap_err().contains("weekday"));
        assert!(Cron::parse("*/0 * * * *").is_err());
        // February 30th never comes.
        assert_eq!(Cron::parse("0 0 30 2 *").unwrap().next_after(NOW), None);
    }

    #[test]
    fn alert_filters() {
        let templates = Templates::default();
        let alert = serde_json::json!({"rule_id": "r1", "level": "high", "techniques": ["T1110.001"]});
        let filter = |min_level: Option<&str>, rules: &[&str], techniques: &[&str]| AlertFilter {
            min_level: min_level.map(str::to_owned),
            rules: rules.iter().map(|rule| rule.to_string()).collect(),
            techniques: techniques.iter().map(|technique| technique.to_string()).collect(),
            when: None,
        };
        assert!(filter(Some("medium"), &[], &[]).matches(&alert, &templates));
        assert!(!filter(Some("critical"), &[], &[]).matches(&alert, &templates));
        assert!(filter(None, &["r1", "r2"], &["T1110"]).matches(&alert, &templates));
        assert!(!filter(None, &[], &["T111"]).matches(&alert, &templates));
        assert!(!filter(None, &["r2"], &[]).matches(&alert, &templates));
        let (when, _) = templates.expression("alert.rule_id is startingwith('r')").unwrap();
        assert!(AlertFilter { when: Some(when), ..AlertFilter::default() }.matches(&alert, &templates));
        let (when, _) = templates.expression("alert.missing == 1").unwrap();
        assert!(!AlertFilter { when: Some(when), ..AlertFilter::default() }.matches(&alert, &templates));
    }
}
