//! Correlation rules over detection streams: every type, the examples of the
//! Sigma correlation specification, lateness, many groups and a restart.

use std::sync::Arc;
use std::time::Duration;

use riposte_event::{Event, LogSource};
use riposte_sigma::{CorrelationMatch, Correlator, CorrelatorConfig, Engine, EngineBuilder, Mapping, Scratch};

/// Detection rules on `product: test` events, by field `kind`.
const RULES: &str = r#"
title: Failed logon
name: failed_logon
id: 5638f7c0-ac70-491d-8465-2a65075e0d86
logsource: {product: test}
detection:
  selection: {kind: failed_logon}
  condition: selection
---
title: Successful logon
name: successful_logon
logsource: {product: test}
detection:
  selection: {kind: logon}
  condition: selection
---
title: Recon A
name: recon_cmd_a
logsource: {product: test}
detection:
  selection: {kind: whoami}
  condition: selection
---
title: Recon B
name: recon_cmd_b
logsource: {product: test}
detection:
  selection: {kind: ipconfig}
  condition: selection
---
title: Recon C
name: recon_cmd_c
logsource: {product: test}
detection:
  selection: {kind: netstat}
  condition: selection
---
title: Transfer
name: transfer
logsource: {product: test}
detection:
  selection: {kind: transfer}
  condition: selection
---
title: Internal error
name: internal_error
logsource: {product: test}
detection:
  selection: {kind: error}
  condition: selection
---
title: New network connection
name: new_network_connection
logsource: {product: test}
detection:
  selection: {kind: connection}
  condition: selection
"#;

struct Harness {
    engine: Engine,
    scratch: Scratch,
    correlator: Correlator,
    matched: Vec<usize>,
    out: Vec<CorrelationMatch>,
}

fn engine(correlations: &str) -> (Engine, riposte_sigma::LoadReport) {
    let mut builder = EngineBuilder::new(Mapping::builtin());
    builder.add_file("rules.yml", RULES);
    builder.add_file("correlations.yml", correlations);
    builder.build(|_| Ok(()))
}

fn harness_with(correlations: &str, config: CorrelatorConfig) -> Harness {
    let (engine, report) = engine(correlations);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let correlator = Correlator::new(&engine, &config);
    let scratch = engine.new_scratch();
    Harness { engine, scratch, correlator, matched: Vec::new(), out: Vec::new() }
}

fn harness(correlations: &str) -> Harness {
    harness_with(correlations, CorrelatorConfig::default())
}

/// An event of `kind` with extra fields.
fn event(kind: &str, fields: &[(&str, &str)]) -> Event {
    let mut event = Event::new().with("kind", kind);
    for (name, value) in fields {
        event = event.with(name, *value);
    }
    event.logsource = Some(Arc::new(LogSource::product("test")));
    event
}

impl Harness {
    /// Feeds an event at `seconds`; returns the titles of correlations that fired.
    fn feed(&mut self, seconds: i64, mut event: Event) -> Vec<String> {
        self.engine.matches(&mut event, &mut self.scratch, &mut self.matched);
        let before = self.out.len();
        self.correlator.observe(&event, &self.matched, seconds * 1000, &mut self.out);
        self.titles(before)
    }

    fn finish(&mut self) -> Vec<String> {
        let before = self.out.len();
        self.correlator.finish(&mut self.out);
        self.titles(before)
    }

    fn titles(&self, from: usize) -> Vec<String> {
        self.out[from..].iter().map(|found| self.engine.correlations()[found.correlation].meta.title.clone()).collect()
    }

    fn last(&self) -> &CorrelationMatch {
        self.out.last().expect("a match")
    }
}

const MANY_FAILED: &str = r#"
title: Many failed logons
id: 0e95725d-7320-415d-80f7-004da920fc11
correlation:
  type: event_count
  rules:
    - 5638f7c0-ac70-491d-8465-2a65075e0d86
  group-by:
    - ComputerName
  timespan: 1h
  condition:
    gte: 5
level: high
"#;

#[test]
fn event_count_fires_once_the_threshold_is_reached_within_the_timespan() {
    let mut h = harness(MANY_FAILED);
    for second in 0..4 {
        assert!(h.feed(second * 60, event("failed_logon", &[("ComputerName", "ws1")])).is_empty());
        // Another host's failures count for that host only.
        assert!(h.feed(second * 60, event("failed_logon", &[("ComputerName", "ws2")])).is_empty());
    }
    // A logon is not a failed logon.
    assert!(h.feed(250, event("logon", &[("ComputerName", "ws1")])).is_empty());
    assert_eq!(h.feed(300, event("failed_logon", &[("ComputerName", "ws1")])), ["Many failed logons"]);
    let found = h.last();
    assert_eq!(found.group, [("ComputerName".to_owned(), "ws1".to_owned())]);
    assert_eq!((found.value, found.events, found.first_ms, found.time_ms), (5.0, 5, 0, 300_000));
    // The group starts afresh after firing.
    assert!(h.feed(301, event("failed_logon", &[("ComputerName", "ws1")])).is_empty());
}

#[test]
fn event_count_forgets_what_left_the_window() {
    let mut h = harness(MANY_FAILED);
    for minute in [0, 20, 40, 59] {
        h.feed(minute * 60, event("failed_logon", &[("ComputerName", "ws1")]));
    }
    // Minute 61: the failure at minute 0 is more than an hour old.
    assert!(h.feed(61 * 60, event("failed_logon", &[("ComputerName", "ws1")])).is_empty());
    assert_eq!(h.feed(62 * 60, event("failed_logon", &[("ComputerName", "ws1")])), ["Many failed logons"]);
    assert_eq!(h.last().first_ms, 20 * 60 * 1000);
    assert_eq!(h.last().events, 5, "the detections in the window, not every one seen");
}

#[test]
fn events_without_a_group_by_field_are_counted_apart() {
    let mut h = harness(MANY_FAILED);
    for second in 0..10 {
        assert!(h.feed(second, event("failed_logon", &[])).is_empty());
    }
    assert_eq!(h.correlator.stats().missing_group, 10);
}

#[test]
fn value_count_counts_distinct_values() {
    let mut h = harness(
        r#"
title: Failed logons for many users
correlation:
  type: value_count
  rules: failed_logon
  group-by: [ComputerName, WorkstationName]
  timespan: 1d
  condition:
    field: User
    gte: 3
"#,
    );
    let failed =
        |user: &str| event("failed_logon", &[("ComputerName", "dc1"), ("WorkstationName", "ws7"), ("User", user)]);
    assert!(h.feed(0, failed("alice")).is_empty());
    assert!(h.feed(1, failed("alice")).is_empty(), "the same user again is not a new value");
    assert!(h.feed(2, failed("bob")).is_empty());
    assert_eq!(h.feed(3, failed("carol")), ["Failed logons for many users"]);
    assert_eq!(h.last().value, 3.0);
    assert_eq!(h.last().events, 4);
    assert_eq!(h.last().group.len(), 2);
}

const RECON: &str = r#"
title: Reconnaissance commands
correlation:
  type: temporal
  rules: [recon_cmd_a, recon_cmd_b, recon_cmd_c]
  group-by: [ComputerName, User]
  timespan: 5m
"#;

#[test]
fn temporal_needs_every_rule_within_the_timespan_in_any_order() {
    let mut h = harness(RECON);
    let on = |kind: &str| event(kind, &[("ComputerName", "ws1"), ("User", "eve")]);
    assert!(h.feed(0, on("netstat")).is_empty());
    assert!(h.feed(10, on("whoami")).is_empty());
    assert!(h.feed(11, on("whoami")).is_empty());
    assert_eq!(h.feed(20, on("ipconfig")), ["Reconnaissance commands"]);
    assert_eq!(h.last().value, 3.0);
    assert_eq!(h.last().first_ms, 0);
    // Spread over more than five minutes: not together.
    assert!(h.feed(1000, on("netstat")).is_empty());
    assert!(h.feed(1200, on("whoami")).is_empty());
    assert!(h.feed(1400, on("ipconfig")).is_empty());
    // The netstat of second 1000 has left the window: the match starts at 1200.
    assert_eq!(h.feed(1450, on("netstat")), ["Reconnaissance commands"]);
    assert_eq!(h.last().first_ms, 1_200_000);
}

#[test]
fn temporal_ordered_needs_the_order() {
    let mut h = harness(
        r#"
title: Brute force then success
correlation:
  type: temporal_ordered
  rules: [failed_logon, successful_logon]
  group-by: [User]
  timespan: 10m
"#,
    );
    let user = [("User", "bob")];
    assert!(h.feed(0, event("logon", &user)).is_empty(), "success before failure is not the pattern");
    assert!(h.feed(10, event("failed_logon", &user)).is_empty());
    assert_eq!(h.feed(20, event("logon", &user)), ["Brute force then success"]);
    assert_eq!(h.last().first_ms, 10_000, "the run starts with the failure");
    // Failure, then success more than ten minutes later: too far apart.
    assert!(h.feed(100, event("failed_logon", &user)).is_empty());
    assert!(h.feed(800, event("logon", &user)).is_empty());
}

#[test]
fn aliases_join_fields_of_different_names() {
    // The specification's example: an error on one side and a connection
    // from the other, joined on the two addresses.
    let mut h = harness(
        r#"
title: Internal error after a connection
correlation:
  type: temporal
  rules: [internal_error, new_network_connection]
  group-by: [internal_ip, remote_ip]
  timespan: 10s
  aliases:
    internal_ip:
      internal_error: destination.ip
      new_network_connection: source.ip
    remote_ip:
      internal_error: source.ip
      new_network_connection: destination.ip
"#,
    );
    assert!(h.feed(0, event("connection", &[("source.ip", "10.0.0.5"), ("destination.ip", "203.0.113.9")])).is_empty());
    // An error between other hosts does not join.
    assert!(h.feed(1, event("error", &[("destination.ip", "10.0.0.6"), ("source.ip", "203.0.113.9")])).is_empty());
    assert_eq!(
        h.feed(2, event("error", &[("destination.ip", "10.0.0.5"), ("source.ip", "203.0.113.9")])),
        ["Internal error after a connection"]
    );
    assert_eq!(
        h.last().group,
        [("internal_ip".to_owned(), "10.0.0.5".to_owned()), ("remote_ip".to_owned(), "203.0.113.9".to_owned())]
    );
}

#[test]
fn correlations_chain() {
    let mut h = harness(
        r#"
title: Many failed logons
name: many_failed
correlation:
  type: event_count
  rules: failed_logon
  group-by: [User]
  timespan: 1h
  condition: {gte: 3}
---
title: Brute force succeeded
correlation:
  type: temporal_ordered
  rules: [many_failed, successful_logon]
  group-by: [User]
  timespan: 1h
"#,
    );
    let user = [("User", "root")];
    for second in 0..2 {
        assert!(h.feed(second, event("failed_logon", &user)).is_empty());
    }
    assert_eq!(h.feed(2, event("failed_logon", &user)), ["Many failed logons"]);
    assert_eq!(h.feed(3, event("logon", &user)), ["Brute force succeeded"]);
    // `generate` is false: the referenced rules and the inner correlation do
    // not report on their own.
    let failed = h.engine.rules().iter().position(|rule| rule.meta.title == "Failed logon").unwrap();
    assert!(!h.correlator.reports_rule(failed));
    assert!(!h.correlator.reports_correlation(0));
    assert!(h.correlator.reports_correlation(1));
    let transfer = h.engine.rules().iter().position(|rule| rule.meta.title == "Transfer").unwrap();
    assert!(h.correlator.reports_rule(transfer), "an unreferenced rule reports");
}

#[test]
fn generate_keeps_referenced_rules_reporting() {
    let h = harness(
        "title: c\ncorrelation:\n  type: event_count\n  rules: failed_logon\n  timespan: 1m\n  condition: {gte: 2}\n  generate: true\n",
    );
    let failed = h.engine.rules().iter().position(|rule| rule.meta.title == "Failed logon").unwrap();
    assert!(h.correlator.reports_rule(failed));
}

#[test]
fn a_correlation_of_windows_judged_at_their_end_gets_them_in_order() {
    // Three or four failures in ten minutes (judged when the ten minutes are
    // over), then a logon: the inner match is dated at its window's end.
    let mut h = harness(
        r#"
title: A few failures
name: few_failures
correlation:
  type: event_count
  rules: failed_logon
  group-by: [User]
  timespan: 10m
  condition: {gte: 3, lte: 4}
---
title: Then a logon
correlation:
  type: temporal_ordered
  rules: [few_failures, successful_logon]
  group-by: [User]
  timespan: 1h
"#,
    );
    let user = [("User", "u")];
    for second in [0, 1, 2] {
        h.feed(second, event("failed_logon", &user));
    }
    assert!(h.feed(60, event("logon", &user)).is_empty(), "the logon comes before the window is judged");
    assert_eq!(h.feed(601, event("logon", &[("User", "other")])), ["A few failures"]);
    assert_eq!(h.last().time_ms, 600_000, "dated at the window's end");
    assert_eq!(h.feed(700, event("logon", &user)), ["Then a logon"]);
}

#[test]
fn a_correlation_of_a_correlation_needs_its_group_by_fields() {
    let (built, report) = engine(
        "title: Inner
name: inner
correlation:
  type: event_count
  rules: failed_logon
  group-by: [User]
  timespan: 1m
  condition: {gte: 2}
---
title: Outer
correlation:
  type: event_count
  rules: inner
  group-by: [ComputerName]
  timespan: 1h
  condition: {gte: 2}
",
    );
    let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("Outer") && errors[0].contains("ComputerName") && errors[0].contains("inner"),
        "{errors:?}"
    );
    assert_eq!(built.correlations().len(), 1);
}

#[test]
fn correlations_sharing_an_identity_keep_their_own_windows() {
    // Two correlations with the same title and no id: a snapshot must not mix them.
    let twice = "title: Same
correlation:
  type: event_count
  rules: failed_logon
  group-by: [User]
  timespan: 1h
  condition: {gte: 3}
---
title: Same
correlation:
  type: event_count
  rules: failed_logon
  group-by: [ComputerName]
  timespan: 1h
  condition: {gte: 3}
";
    let mut h = harness(twice);
    h.feed(0, event("failed_logon", &[("User", "a"), ("ComputerName", "c")]));
    h.feed(1, event("failed_logon", &[("User", "a"), ("ComputerName", "c")]));
    let snapshot = h.correlator.snapshot();
    let mut h = harness(twice);
    assert_eq!(h.correlator.restore(snapshot), 2);
    assert_eq!(h.correlator.groups(), 2);
    let fired = h.feed(2, event("failed_logon", &[("User", "a"), ("ComputerName", "c")]));
    assert_eq!(fired, ["Same", "Same"]);
}

fn transfers(h: &mut Harness, amounts: &[(i64, &str)]) -> Vec<String> {
    let mut fired = Vec::new();
    for &(second, amount) in amounts {
        fired.extend(h.feed(second, event("transfer", &[("account", "a1"), ("bytes", amount)])));
    }
    fired
}

#[test]
fn value_sum_and_value_avg() {
    let sum = "title: Exfiltration\ncorrelation:\n  type: value_sum\n  rules: transfer\n  group-by: [account]\n  timespan: 1h\n  condition: {field: bytes, gt: 1000}\n";
    let mut h = harness(sum);
    assert!(transfers(&mut h, &[(0, "400"), (1, "500")]).is_empty());
    assert_eq!(transfers(&mut h, &[(2, "200")]), ["Exfiltration"]);
    assert_eq!(h.last().value, 1100.0);
    // Not a number: counted, not summed.
    assert!(transfers(&mut h, &[(3, "lots")]).is_empty());
    assert_eq!(h.correlator.stats().not_numeric, 1);

    // A sum past the largest number stays a number, and the state still saves.
    let bounded = "title: Huge\ncorrelation:\n  type: value_sum\n  rules: transfer\n  group-by: [account]\n  timespan: 1h\n  condition: {field: bytes, lt: 10}\n";
    let mut h = harness(bounded);
    transfers(&mut h, &[(0, "1e308"), (1, "1e308")]);
    let saved = serde_json::to_string(&h.correlator.snapshot()).unwrap();
    let mut restored = harness(bounded);
    assert_eq!(restored.correlator.restore(serde_json::from_str(&saved).unwrap()), 1, "{saved}");

    let avg = "title: Big transfers\ncorrelation:\n  type: value_avg\n  rules: transfer\n  group-by: [account]\n  timespan: 1h\n  condition: {field: bytes, gte: 500}\n";
    let mut h = harness(avg);
    assert!(transfers(&mut h, &[(0, "100"), (1, "300")]).is_empty());
    assert_eq!(transfers(&mut h, &[(2, "1400")]), ["Big transfers"]);
    assert_eq!(h.last().value, 600.0);
}

#[test]
fn value_percentile_and_value_median() {
    let percentile = "title: Slow tail\ncorrelation:\n  type: value_percentile\n  rules: transfer\n  group-by: [account]\n  timespan: 1h\n  condition: {field: bytes, percentile: 90, gte: 900}\n";
    let mut h = harness(percentile);
    let small: Vec<(i64, &str)> = (0..9).map(|second| (second, "100")).collect();
    assert!(transfers(&mut h, &small).is_empty());
    // Ten values, one of them 1000: the 90th percentile interpolates to 190.
    assert!(transfers(&mut h, &[(9, "1000")]).is_empty());
    // Eleven values, two of them 1000: the 90th percentile is 1000.
    assert_eq!(transfers(&mut h, &[(10, "1000")]), ["Slow tail"]);
    assert_eq!(h.last().value, 1000.0);

    let median = "title: Median\ncorrelation:\n  type: value_median\n  rules: transfer\n  group-by: [account]\n  timespan: 1h\n  condition: {field: bytes, gte: 25}\n";
    let mut h = harness(median);
    assert!(transfers(&mut h, &[(0, "10")]).is_empty());
    // Median of 10 and 40 is 25.
    assert_eq!(transfers(&mut h, &[(1, "40")]), ["Median"]);
    assert_eq!(h.last().value, 25.0);
}

#[test]
fn an_upper_bound_is_judged_when_the_window_ends() {
    // Between 3 and 4 failures in ten minutes: only the end of the window can tell.
    let mut h = harness(
        "title: A few failures\ncorrelation:\n  type: event_count\n  rules: failed_logon\n  group-by: [User]\n  timespan: 10m\n  condition: {gte: 3, lte: 4}\n",
    );
    for second in [0, 60, 120] {
        assert!(h.feed(second, event("failed_logon", &[("User", "a")])).is_empty());
    }
    for second in [0, 60, 120, 180, 240] {
        assert!(h.feed(second, event("failed_logon", &[("User", "b")])).is_empty());
    }
    // Event time passes the end of both windows (opened at 0, ten minutes long).
    let fired = h.feed(601, event("logon", &[("User", "c")]));
    assert_eq!(fired, ["A few failures"], "a had 3, b had 5");
    assert_eq!(h.last().group[0].1, "a");
    assert_eq!(h.last().value, 3.0);

    // `lt`: a window with too few detections is judged at the end of input.
    let mut h = harness(
        "title: Quiet\ncorrelation:\n  type: event_count\n  rules: failed_logon\n  group-by: [User]\n  timespan: 1h\n  condition: {lt: 2}\n",
    );
    assert!(h.feed(0, event("failed_logon", &[("User", "a")])).is_empty());
    assert_eq!(h.finish(), ["Quiet"]);
}

#[test]
fn out_of_order_detections_within_the_allowed_lateness_count() {
    let config = CorrelatorConfig { allowed_lateness: Duration::from_secs(30), ..CorrelatorConfig::default() };
    let mut h = harness_with(
        "title: Order\ncorrelation:\n  type: temporal_ordered\n  rules: [failed_logon, successful_logon]\n  group-by: [User]\n  timespan: 1m\n",
        config.clone(),
    );
    // The success arrives first but happened after the failure.
    assert!(h.feed(20, event("logon", &[("User", "u")])).is_empty());
    assert!(h.feed(10, event("failed_logon", &[("User", "u")])).is_empty(), "held back for the lateness");
    // Time moves on past the lateness: the two are replayed in order.
    assert_eq!(h.feed(55, event("logon", &[("User", "other")])), ["Order"]);
    assert_eq!(h.correlator.stats().late, 0);

    // Beyond the lateness: counted as late, not counted in the window.
    let mut h = harness_with(MANY_FAILED, config);
    h.feed(1000, event("failed_logon", &[("ComputerName", "ws1")]));
    h.feed(900, event("failed_logon", &[("ComputerName", "ws1")]));
    assert_eq!(h.correlator.stats().late, 1);
    assert_eq!(h.correlator.stats().detections, 2);
}

#[test]
fn a_hundred_thousand_groups_and_a_cap() {
    let two = "title: Twice\ncorrelation:\n  type: event_count\n  rules: failed_logon\n  group-by: [User]\n  timespan: 1h\n  condition: {gte: 2}\n";
    let mut h = harness(two);
    let users: Vec<String> = (0..100_000).map(|index| format!("user{index}")).collect();
    for user in &users {
        h.feed(0, event("failed_logon", &[("User", user)]));
    }
    assert_eq!(h.correlator.groups(), 100_000);
    for user in &users {
        h.feed(1, event("failed_logon", &[("User", user)]));
    }
    assert_eq!(h.out.len(), 100_000);
    assert_eq!(h.correlator.groups(), 0, "fired groups start afresh");
    assert_eq!(h.correlator.stats().evicted, 0);

    // With room for 1,000 groups, the least recently seen make way.
    let config = CorrelatorConfig { max_groups: 1_000, ..CorrelatorConfig::default() };
    let mut h = harness_with(two, config);
    for user in &users[..5_000] {
        h.feed(0, event("failed_logon", &[("User", user)]));
    }
    assert_eq!(h.correlator.groups(), 1_000);
    assert_eq!(h.correlator.stats().evicted, 4_000);
    // The most recent thousand are still there.
    assert_eq!(h.feed(1, event("failed_logon", &[("User", "user4999")])), ["Twice"]);
    assert!(h.feed(1, event("failed_logon", &[("User", "user0")])).is_empty(), "evicted: starts over");
}

#[test]
fn a_restart_in_the_middle_of_a_window_loses_nothing() {
    let config = CorrelatorConfig { allowed_lateness: Duration::from_secs(5), ..CorrelatorConfig::default() };
    let mut h = harness_with(MANY_FAILED, config.clone());
    for second in 0..4 {
        h.feed(second * 10, event("failed_logon", &[("ComputerName", "ws1")]));
    }
    let snapshot = serde_json::to_string(&h.correlator.snapshot()).unwrap();
    drop(h);

    // A new process: the same rules, the state read back.
    let mut h = harness_with(MANY_FAILED, config);
    let restored = h.correlator.restore(serde_json::from_str(&snapshot).unwrap());
    assert!(restored >= 1, "{restored}");
    h.feed(40, event("failed_logon", &[("ComputerName", "ws1")]));
    assert_eq!(h.feed(60, event("logon", &[("ComputerName", "ws1")])), ["Many failed logons"]);
    assert_eq!(h.last().events, 5);
    assert_eq!(h.last().first_ms, 0);
}

#[test]
fn a_correlation_of_a_missing_or_disabled_rule_is_a_load_error_naming_both() {
    let (_, report) = engine(
        "title: Orphan\ncorrelation:\n  type: event_count\n  rules: no_such_rule\n  timespan: 1m\n  condition: {gte: 2}\n",
    );
    assert_eq!(report.errors.len(), 1);
    let error = report.errors[0].to_string();
    assert!(error.contains("Orphan") && error.contains("no_such_rule") && error.contains("does not exist"), "{error}");

    let mut builder = EngineBuilder::new(Mapping::builtin());
    builder.add_file("rules.yml", RULES);
    builder.add_file("c.yml", MANY_FAILED);
    let (built, report) =
        builder.build(|meta| if meta.title == "Failed logon" { Err("disabled".into()) } else { Ok(()) });
    let error = report.errors[0].to_string();
    assert!(
        error.contains("Many failed logons") && error.contains("5638f7c0") && error.contains("disabled"),
        "{error}"
    );
    assert!(built.correlations().is_empty());

    // A correlation over that one is refused too, and so is a cycle.
    let (built, report) = engine(
        "title: Outer\ncorrelation:\n  type: event_count\n  rules: inner\n  timespan: 1m\n  condition: {gte: 2}\n---\ntitle: Inner\nname: inner\ncorrelation:\n  type: event_count\n  rules: missing\n  timespan: 1m\n  condition: {gte: 2}\n",
    );
    assert_eq!(report.errors.len(), 2, "{:?}", report.errors);
    assert!(built.correlations().is_empty());
    let (built, report) = engine(
        "title: A\nname: a\ncorrelation:\n  type: event_count\n  rules: b\n  timespan: 1m\n  condition: {gte: 2}\n---\ntitle: B\nname: b\ncorrelation:\n  type: event_count\n  rules: [a, failed_logon]\n  timespan: 1m\n  condition: {gte: 2}\n",
    );
    assert!(report.errors.iter().all(|error| error.to_string().contains("references itself")), "{:?}", report.errors);
    assert!(built.correlations().is_empty());
}
