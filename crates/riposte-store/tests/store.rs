//! One test suite, run on SQLite (a temporary file) and on PostgreSQL (a
//! fresh database on the server `RIPOSTE_TEST_POSTGRES_URL` names; skipped,
//! saying so, when it is not set).

use riposte_store::{
    AlertChange, AlertFilter, AlertStatus, AnyStore, AuditBreak, AuditKey, CorrelationState, Entities, NewAudit,
    NewDetection, NewEvent, NewQuarantined, NewRun, ObservableSearch, PostgresStore, QuarantineStatus, RunStatus,
    RunUndo, Scope, SqliteStore, Store, TicketLink, Token, Verdict, verify,
};

fn detection(key: &str, fingerprint: &str, time_ms: i64, seq: i64) -> NewDetection {
    NewDetection {
        key: key.into(),
        fingerprint: fingerprint.into(),
        rule_id: "rule-1".into(),
        rule_title: "Mimikatz Commands".into(),
        level: "critical".into(),
        techniques: vec!["T1003.001".into()],
        entities: Entities { hosts: vec!["WS-1".into()], users: vec!["alice".into()], ..Entities::default() },
        time_ms,
        window_ms: 60_000,
        event_seq: seq,
        intel: Vec::new(),
    }
}

fn event(seq: i64, matched: bool) -> NewEvent {
    NewEvent {
        seq,
        received_ms: 1_000 + seq,
        source: "http".into(),
        matched,
        body: serde_json::value::to_raw_value(&serde_json::json!({"EventID": 1, "seq": seq})).unwrap(),
        // Every third event saw the same address; each has its own too.
        observables: if seq % 3 == 0 {
            vec![format!("10.0.0.{seq}"), "45.77.12.9".into()]
        } else {
            vec![format!("10.0.0.{seq}")]
        },
    }
}

fn audit(action: &str, target: &str) -> NewAudit {
    NewAudit { actor: "test".into(), action: action.into(), target: target.into(), detail: "{}".into() }
}

async fn suite(store: impl Store) {
    let key = AuditKey::new(b"test key".to_vec());

    // Detections become alerts; identical ones within the window are counted.
    let recorded = store
        .record(
            &[
                NewDetection {
                    intel: vec![serde_json::json!({"kind": "ip", "value": "45.77.12.9", "indicators": []})],
                    ..detection("1:rule-1", "fp-a", 10_000, 1)
                },
                detection("2:rule-1", "fp-a", 20_000, 2),
                detection("3:rule-1", "fp-b", 20_000, 3),
                detection("4:rule-1", "fp-a", 90_000, 4),
            ],
            &[event(1, true), event(2, true), event(3, true), event(4, true), event(5, false)],
            None,
        )
        .await
        .unwrap();
    assert_eq!((recorded.created, recorded.merged, recorded.duplicates), (3, 1, 0));
    assert_eq!(store.correlation_state().await.unwrap(), None);

    // A replay (after a crash) changes nothing.
    let replay = store.record(&[detection("2:rule-1", "fp-a", 20_000, 2)], &[event(2, true)], None).await.unwrap();
    assert_eq!((replay.created, replay.merged, replay.duplicates), (0, 0, 1));

    let page = store.alerts(&AlertFilter { limit: 10, ..AlertFilter::default() }).await.unwrap();
    assert_eq!(page.items.len(), 3);
    assert_eq!(page.next, None);
    let first = page.items.iter().find(|alert| alert.fingerprint == "fp-a" && alert.first_seen_ms == 10_000).unwrap();
    assert_eq!((first.count, first.last_seen_ms, first.event_seq), (2, 20_000, 1));
    assert_eq!(first.entities.users, ["alice"]);
    assert_eq!(first.techniques, ["T1003.001"]);
    assert_eq!(first.intel[0]["value"], "45.77.12.9", "the intel of the alert's first detection is kept");
    assert_eq!(first.status, AlertStatus::New);
    let other = page.items.iter().find(|alert| alert.fingerprint == "fp-b").unwrap();
    assert!(other.intel.is_empty());

    // Cursor pagination, newest first, and filters.
    let one = store.alerts(&AlertFilter { limit: 2, ..AlertFilter::default() }).await.unwrap();
    assert_eq!(one.items.len(), 2);
    let rest = store.alerts(&AlertFilter { limit: 2, before: one.next, ..AlertFilter::default() }).await.unwrap();
    assert_eq!(rest.items.len(), 1);
    assert!(one.items[1].id > rest.items[0].id);
    let critical = AlertFilter { levels: vec!["critical".into()], limit: 10, ..AlertFilter::default() };
    assert_eq!(store.alerts(&critical).await.unwrap().items.len(), 3);
    let low = AlertFilter { levels: vec!["low".into()], limit: 10, ..AlertFilter::default() };
    assert!(store.alerts(&low).await.unwrap().items.is_empty());

    // An analyst's change is audited in the same transaction.
    let change = AlertChange { status: Some(AlertStatus::Closed), verdict: Some(Verdict::FalsePositive) };
    let (changed, entry) = store
        .change_alert(first.id, &change, &audit("alert.update", &format!("alert:{}", first.id)), &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((changed.status, changed.verdict), (AlertStatus::Closed, Some(Verdict::FalsePositive)));
    assert_eq!(entry.seq, 1);
    assert!(
        store.change_alert(999_999, &change, &audit("alert.update", "alert:999999"), &key).await.unwrap().is_none()
    );
    let closed = AlertFilter { status: Some(AlertStatus::Closed), limit: 10, ..AlertFilter::default() };
    assert_eq!(store.alerts(&closed).await.unwrap().items.len(), 1);

    // A batch larger than one statement's rows, with a key given twice.
    let mut big: Vec<NewDetection> =
        (0..1_200).map(|n| detection(&format!("big:{n}"), "fp-big", 100_000 + n, 100)).collect();
    big.push(detection("big:7", "fp-big", 100_007, 100));
    let recorded = store.record(&big, &[], None).await.unwrap();
    assert_eq!((recorded.created, recorded.merged, recorded.duplicates), (1, 1_199, 1));
    let big_alert = AlertFilter { rule_id: Some("rule-1".into()), limit: 10, ..AlertFilter::default() };
    let counts: Vec<i64> = store.alerts(&big_alert).await.unwrap().items.iter().map(|alert| alert.count).collect();
    assert!(counts.contains(&1_200), "{counts:?}");

    // A later batch counts into alerts still open, several at once: the
    // count grows and the last sighting only moves forward.
    let later = [
        detection("later:1", "fp-big", 100_500, 101),
        detection("later:2", "fp-big", 100_050, 101),
        detection("later:3", "fp-b", 70_000, 102),
    ];
    let recorded = store.record(&later, &[], None).await.unwrap();
    assert_eq!((recorded.created, recorded.merged, recorded.duplicates), (0, 3, 0));
    let all = store.alerts(&AlertFilter { limit: 20, ..AlertFilter::default() }).await.unwrap().items;
    let big_one = all.iter().find(|alert| alert.fingerprint == "fp-big").unwrap();
    assert_eq!((big_one.count, big_one.last_seen_ms), (1_202, 101_199));
    let fp_b = all.iter().find(|alert| alert.fingerprint == "fp-b").unwrap();
    assert_eq!((fp_b.count, fp_b.first_seen_ms, fp_b.last_seen_ms), (2, 20_000, 70_000));

    // Events: matched ones kept, unmatched ones bounded.
    store.record(&[], &(6..=20).map(|seq| event(seq, false)).collect::<Vec<_>>(), None).await.unwrap();

    // The correlation state goes with its batch; the latest one is kept.
    for seq in [21, 22] {
        let state = CorrelationState { seq, state: format!("{{\"windows\": {seq}}}") };
        store.record(&[], &[], Some(&state)).await.unwrap();
    }
    let state = store.correlation_state().await.unwrap().unwrap();
    assert_eq!((state.seq, state.state.as_str()), (22, "{\"windows\": 22}"));
    assert_eq!(store.event_counts().await.unwrap(), (4, 16));
    assert_eq!(store.prune_events(5).await.unwrap(), 11);
    assert_eq!(store.event_counts().await.unwrap(), (4, 5));
    // Retro-hunt: stored events by their observables (pruned ones are gone).
    let values = |values: &[&str]| ObservableSearch {
        values: values.iter().map(|value| (*value).to_owned()).collect(),
        ..ObservableSearch::default()
    };
    let seqs = |found: Vec<riposte_store::StoredEvent>| found.iter().map(|event| event.seq).collect::<Vec<i64>>();
    let found = store.events_with_observables(&values(&["45.77.12.9"]), 0).await.unwrap();
    assert_eq!(seqs(found), [3, 18], "events 3 (matched) and 18 (kept); 6 to 15 were pruned");
    let recent = store.events_with_observables(&values(&["45.77.12.9"]), 1_010).await.unwrap();
    assert_eq!(seqs(recent), [18]);
    assert!(store.events_with_observables(&values(&["10.0.0.7"]), 0).await.unwrap().is_empty(), "pruned");
    // Ranges (a network's address keys) in text order, with values, each event once.
    let range = ObservableSearch {
        ranges: vec![("10.0.0.1".into(), "10.0.0.2".into())],
        ..values(&["45.77.12.9", "10.0.0.19"])
    };
    let found = store.events_with_observables(&range, 0).await.unwrap();
    assert_eq!(seqs(found), [1, 2, 3, 16, 17, 18, 19], "10.0.0.1, 10.0.0.16 to 19 and 10.0.0.2, and 3 by value");
    assert!(store.event(5).await.unwrap().is_none(), "the oldest unmatched events go first");
    assert_eq!(store.event(20).await.unwrap().unwrap().body["seq"], 20);
    assert!(store.event(1).await.unwrap().unwrap().matched);

    // Tokens: only a hash of the secret is kept.
    let token = Token { id: "t1".into(), name: "soc".into(), scope: Scope::Write, created_ms: 5 };
    store.create_token(&token, "abc123", &audit("token.create", "token:t1"), &key).await.unwrap();
    assert_eq!(store.token("t1").await.unwrap(), Some((token, "abc123".into())));
    assert!(store.token("nope").await.unwrap().is_none());

    // Rule states survive, last change wins.
    store.set_rule_state("rule-1", false, &audit("rule.disable", "rule:rule-1"), &key).await.unwrap();
    store.set_rule_state("rule-1", true, &audit("rule.enable", "rule:rule-1"), &key).await.unwrap();
    let states = store.rule_states().await.unwrap();
    assert_eq!(states.len(), 1);
    assert!(states[0].enabled);

    // The audit trail verifies, in order.
    store.append_audit(&audit("rules.reload", "rules"), &key).await.unwrap();
    let log = store.audit_log().await.unwrap();
    let actions: Vec<&str> = log.iter().map(|entry| entry.action.as_str()).collect();
    assert_eq!(actions, ["alert.update", "token.create", "rule.disable", "rule.enable", "rules.reload"]);
    assert_eq!(verify(&log, &key, None), Ok(5));
    assert_eq!(verify(&log, &AuditKey::new(b"other".to_vec()), None), Err(AuditBreak::Edited { seq: 1 }));

    // Quarantine: held, listed, released; each step audited with the rest.
    let held = NewQuarantined {
        sha256: "ab".repeat(32),
        received_ms: 5_000,
        sender: "service@paypa1.com".into(),
        subject: "Your account".into(),
        verdict: "phishing".into(),
        score: 9.5,
        findings: serde_json::json!([{"check": "lookalike.sender_domain"}]),
        origin: "api".into(),
    };
    let (first, _) = store.quarantine(&held, &audit("mail.quarantine", "quarantine"), &key).await.unwrap();
    let (second, _) = store
        .quarantine(
            &NewQuarantined {
                subject: "Again".into(),
                origin: "imap://mail.example.org:993/INBOX".into(),
                ..held.clone()
            },
            &audit("mail.quarantine", "quarantine"),
            &key,
        )
        .await
        .unwrap();
    assert_eq!(
        (first.status, first.score, first.findings[0]["check"].as_str()),
        (QuarantineStatus::Held, 9.5, Some("lookalike.sender_domain"))
    );
    let listed = store.quarantined(Some(QuarantineStatus::Held), 10).await.unwrap();
    assert_eq!(listed.iter().map(|message| message.id).collect::<Vec<_>>(), [second.id, first.id], "newest first");
    assert_eq!((first.origin.as_str(), listed[0].origin.as_str()), ("api", "imap://mail.example.org:993/INBOX"));
    let (released, _) = store
        .change_quarantined(first.id, QuarantineStatus::Released, &audit("mail.release", "quarantine:1"), &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(released.status, QuarantineStatus::Released);
    assert_eq!(store.quarantined(Some(QuarantineStatus::Held), 10).await.unwrap().len(), 1);
    assert_eq!(store.quarantined(None, 10).await.unwrap().len(), 2);
    assert_eq!(store.quarantined_message(first.id).await.unwrap().unwrap().status, QuarantineStatus::Released);
    assert!(
        store
            .change_quarantined(9_999, QuarantineStatus::Deleted, &audit("mail.delete", "quarantine:9999"), &key)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(verify(&store.audit_log().await.unwrap(), &key, None), Ok(8), "quarantine changes join the trail");

    // Senders: first seen, counted, judged by analysts (audited).
    assert!(store.sender_history("x@example.org").await.unwrap().is_none());
    assert_eq!(store.domain_messages("example.org").await.unwrap(), 0);
    store.note_sender("x@example.org", "example.org", 100).await.unwrap();
    store.note_sender("x@example.org", "example.org", 200).await.unwrap();
    store.note_sender("w@example.org", "example.org", 300).await.unwrap();
    assert_eq!(store.domain_messages("example.org").await.unwrap(), 3);
    assert_eq!(store.domain_messages("other.example").await.unwrap(), 0);
    let checks = |names: &[&str]| names.iter().map(|name| (*name).to_owned()).collect::<Vec<_>>();
    let (legitimate, phishing) = (checks(&["language.urgency"]), checks(&["language.urgency", "links.shortener"]));
    let words = checks(&["meeting", "subject:agenda", "verify"]);
    store
        .judge_sender("x@example.org", false, &legitimate, &words, &audit("mail.verdict", "sender:x@example.org"), &key)
        .await
        .unwrap();
    // A message whose bytes are gone teaches its checks, not its words.
    store
        .judge_sender("y@example.org", true, &phishing, &[], &audit("mail.verdict", "sender:y@example.org"), &key)
        .await
        .unwrap();
    // The organisation's counts per check, and of all judged messages.
    let counted: Vec<(String, i64, i64)> =
        store.check_verdicts().await.unwrap().into_iter().map(|row| (row.name, row.phishing, row.legitimate)).collect();
    assert_eq!(counted, vec![("*".into(), 1, 1), ("language.urgency".into(), 1, 1), ("links.shortener".into(), 1, 0)]);
    // Verdicts in bulk add to both counts (more rows than one statement takes), audited.
    let counts = |name: &str, phishing: i64, legitimate: i64| riposte_store::VerdictCounts {
        name: name.to_owned(),
        phishing,
        legitimate,
    };
    let mut bulk_words: Vec<_> = (0..1_200).map(|i| counts(&format!("word{i:04}"), 2, 0)).collect();
    bulk_words.extend([counts("*", 3, 4), counts("verify", 3, 0)]);
    store
        .learn_verdicts(
            &[counts("*", 3, 4), counts("links.shortener", 2, 1)],
            &bulk_words,
            &audit("mail.learn", "verdicts"),
            &key,
        )
        .await
        .unwrap();
    let words: Vec<(String, i64, i64)> =
        store.word_verdicts().await.unwrap().into_iter().map(|row| (row.name, row.phishing, row.legitimate)).collect();
    assert_eq!(words.len(), 1 + 3 + 1_200);
    for expected in [("*", 3, 5), ("meeting", 0, 1), ("subject:agenda", 0, 1), ("verify", 3, 1), ("word0999", 2, 0)] {
        assert!(words.contains(&(expected.0.to_owned(), expected.1, expected.2)), "{expected:?} in {:?}", &words[..5]);
    }
    // Bounded: the rarest words go first, never the count of messages.
    assert_eq!(store.prune_word_verdicts(10_000).await.unwrap(), 0);
    // 1,203 words over 1,000: down to 900, those seen once first, then the
    // first of those seen twice.
    assert_eq!(store.prune_word_verdicts(1_000).await.unwrap(), 303);
    let kept: Vec<String> = store.word_verdicts().await.unwrap().into_iter().map(|row| row.name).collect();
    assert_eq!(kept.len(), 901, "900 words and the count of messages");
    for gone in ["meeting", "subject:agenda", "word0000", "word0300"] {
        assert!(!kept.contains(&gone.to_owned()), "{gone}");
    }
    for staying in ["*", "verify", "word0301", "word1199"] {
        assert!(kept.contains(&staying.to_owned()), "{staying}");
    }
    let shortener =
        store.check_verdicts().await.unwrap().into_iter().find(|row| row.name == "links.shortener").unwrap();
    assert_eq!((shortener.phishing, shortener.legitimate), (3, 1));
    let known = store.sender_history("x@example.org").await.unwrap().unwrap();
    assert_eq!((known.first_seen_ms, known.messages, known.legitimate, known.phishing), (100, 2, 1, 0));
    let judged = store.sender_history("y@example.org").await.unwrap().unwrap();
    assert_eq!((judged.messages, judged.phishing), (0, 1), "judged before any message was counted");

    runs(&store, &key).await;
}

/// Playbook runs: their journal, decisions, undos and action counts.
async fn runs(store: &impl Store, key: &AuditKey) {
    let new = |id: &str, dedup: Option<&str>| NewRun {
        id: id.into(),
        playbook: "block".into(),
        trigger: serde_json::json!({"kind": "alert", "alert": {"id": 7}}),
        inputs: serde_json::json!({}),
        requested_by: None,
        dedup_key: dedup.map(str::to_owned),
    };
    let run = store.create_run(&new("r1", Some("block/alert:7"))).await.unwrap().unwrap();
    assert_eq!((run.status, run.trigger["alert"]["id"].as_i64()), (RunStatus::Running, Some(7)));
    assert!(store.create_run(&new("r2", Some("block/alert:7"))).await.unwrap().is_none(), "one run per alert");
    store.create_run(&new("r3", None)).await.unwrap().unwrap();

    // A restart finds both running; a waiting run is due only at its time.
    assert_eq!(store.runs_due(0).await.unwrap().len(), 2);
    store.set_run_status("r1", RunStatus::Waiting, Some(5_000), None).await.unwrap();
    store.set_run_status("r3", RunStatus::Waiting, None, None).await.unwrap();
    assert!(store.runs_due(4_999).await.unwrap().is_empty());
    assert_eq!(store.runs_due(5_000).await.unwrap().iter().map(|run| run.id.as_str()).collect::<Vec<_>>(), ["r1"]);

    // One process at a time runs a run; a lease that ran out is taken over.
    assert!(store.lease_run("r1", "process-a", 6_000, 66_000).await.unwrap());
    assert!(!store.lease_run("r1", "process-b", 7_000, 67_000).await.unwrap());
    assert!(store.lease_run("r1", "process-a", 8_000, 68_000).await.unwrap(), "its own again");
    assert!(store.lease_run("r1", "process-b", 68_001, 128_001).await.unwrap(), "run out");
    store.set_run_status("r1", RunStatus::Waiting, Some(5_000), None).await.unwrap();
    assert!(store.lease_run("r1", "process-a", 9_000, 69_000).await.unwrap(), "a status change ends the lease");
    assert!(!store.lease_run("no-such-run", "process-a", 9_000, 69_000).await.unwrap());

    // The journal, and an inverse scheduled with the action.
    let done = serde_json::json!({"state": "done", "output": {"ok": true}});
    let undo = RunUndo {
        run_id: "r1".into(),
        path: "block".into(),
        action: "firewall.unblock_ip".into(),
        inputs: serde_json::json!({"address": "45.77.12.9"}),
        due_ms: Some(86_400_000),
        state: "pending".into(),
        detail: None,
    };
    // Only the lease's holder writes when it says who it is.
    assert!(!store.record_step("r1", "block", "done", &done, Some(&undo), Some("process-c")).await.unwrap());
    assert!(store.record_step("r1", "block", "done", &done, Some(&undo), Some("process-a")).await.unwrap());
    let asked = serde_json::json!({"state": "waiting", "output": {"approvers": ["soc"]}});
    store.record_step("r1", "isolate#approval", "waiting", &asked, None, None).await.unwrap();
    assert!(!store.record_step("no-such-run", "x", "waiting", &asked, None, None).await.unwrap());
    let steps = store.run_steps("r1").await.unwrap();
    assert_eq!(steps.iter().map(|step| step.path.as_str()).collect::<Vec<_>>(), ["block", "isolate#approval"]);
    assert_eq!(store.waiting_steps().await.unwrap().len(), 1);

    // A decision is taken once, and wakes the run.
    // A done entry is final.
    let started = serde_json::json!({"state": "started", "attempts": 2});
    assert!(!store.record_step("r1", "block", "started", &started, None, None).await.unwrap());
    assert_eq!(store.run_steps("r1").await.unwrap()[0].entry, done);
    let decided = serde_json::json!({"state": "done", "output": {"approved": true, "by": "bob"}});
    let decision = audit("run.approve", "run:r1/isolate#approval");
    assert!(store.decide_step("r1", "isolate#approval", &decided, &decision, key).await.unwrap().is_some());
    assert!(store.decide_step("r1", "isolate#approval", &decided, &decision, key).await.unwrap().is_none());
    assert!(store.waiting_steps().await.unwrap().is_empty());
    assert_eq!(store.run("r1").await.unwrap().unwrap().wake_ms.map(|wake| wake > 5_000), Some(true));

    assert!(store.pending_undos(None, Some(86_399_999)).await.unwrap().is_empty());
    let due = store.pending_undos(None, Some(86_400_000)).await.unwrap();
    assert_eq!(due, vec![undo.clone()]);
    assert_eq!(store.pending_undos(Some("r1"), None).await.unwrap().len(), 1);
    store.settle_undo("r1", "block", true, "unblocked", &audit("run.undo", "run:r1/block"), key).await.unwrap();
    assert!(store.pending_undos(Some("r1"), None).await.unwrap().is_empty());

    // A cancelled run stays cancelled whatever a runner still says of it.
    store.set_run_status("r3", RunStatus::Cancelled, None, None).await.unwrap();
    store.set_run_status("r3", RunStatus::Waiting, Some(1), None).await.unwrap();
    assert_eq!(store.run("r3").await.unwrap().unwrap().status, RunStatus::Cancelled);
    let outcome = serde_json::json!({"status": "completed"});
    store.set_run_status("r1", RunStatus::Completed, None, Some(&outcome)).await.unwrap();
    let ended = store.run("r1").await.unwrap().unwrap();
    assert_eq!((ended.status, ended.outcome), (RunStatus::Completed, outcome));
    let listed: Vec<String> =
        store.runs(Some("block"), None, 10).await.unwrap().into_iter().map(|run| run.id).collect();
    assert_eq!(listed.len(), 2);
    assert_eq!(store.runs(None, Some(RunStatus::Cancelled), 10).await.unwrap().len(), 1);

    // Blast-radius counts.
    for (run, playbook, at) in [("r1", "block", 1_000), ("r3", "block", 2_000), ("r9", "other", 3_000)] {
        store.note_action(run, "block", playbook, "block_ip", at).await.unwrap();
    }
    store.note_action("r1", "block", "block", "block_ip", 1_000).await.unwrap();
    assert_eq!(store.actions_since("block_ip", None, 0).await.unwrap(), 3);
    assert_eq!(store.actions_since("block_ip", Some("block"), 1_500).await.unwrap(), 1);
    assert_eq!(store.actions_since("isolate", None, 0).await.unwrap(), 0);
    // A day later the old counts are gone.
    store.note_action("r3", "late", "block", "block_ip", 86_400_000 + 2_500).await.unwrap();
    assert_eq!(store.actions_since("block_ip", None, 0).await.unwrap(), 2);

    // Tickets followed until they close.
    let link = TicketLink {
        status_action: "tickets.issue_status".into(),
        ticket: "SOC-12".into(),
        inputs: serde_json::json!({"issue": "SOC-12"}),
        alert_id: 7,
        run_id: "r1".into(),
        state: "open".into(),
        status: serde_json::Value::Null,
    };
    store.link_ticket(&link).await.unwrap();
    store.link_ticket(&TicketLink { alert_id: 8, ..link.clone() }).await.unwrap();
    assert_eq!(store.open_ticket_links().await.unwrap(), vec![link.clone()], "followed once");
    let working = serde_json::json!({"status": "In Progress", "category": "indeterminate"});
    store.update_ticket_link("tickets.issue_status", "SOC-12", &working, false).await.unwrap();
    assert_eq!(store.open_ticket_links().await.unwrap()[0].status, working);
    store
        .update_ticket_link("tickets.issue_status", "SOC-12", &serde_json::json!({"category": "done"}), true)
        .await
        .unwrap();
    assert!(store.open_ticket_links().await.unwrap().is_empty());

    // Ended runs are forgotten with their journals, but not one whose undo is still to come.
    store.create_run(&new("r4", None)).await.unwrap().unwrap();
    store
        .record_step("r4", "block", "done", &done, Some(&RunUndo { run_id: "r4".into(), ..undo.clone() }), None)
        .await
        .unwrap();
    store.set_run_status("r4", RunStatus::Completed, None, None).await.unwrap();
    let tomorrow =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 + 86_400_000;
    assert_eq!(store.prune_runs(0).await.unwrap(), 0, "nothing ended that long ago");
    assert_eq!(store.prune_runs(tomorrow).await.unwrap(), 2, "r1 and r3");
    assert!(store.run("r1").await.unwrap().is_none());
    assert!(store.run_steps("r1").await.unwrap().is_empty());
    assert_eq!(store.runs(None, None, 10).await.unwrap().iter().map(|run| run.id.as_str()).collect::<Vec<_>>(), ["r4"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_sqlite_file_opened_by_two_at_once_is_migrated_once() {
    // `serve` starting while a CLI command opens the same new database.
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("riposte.db");
        let (first, second) = tokio::join!(SqliteStore::open(&path), SqliteStore::open(&path));
        assert!(first.is_ok() && second.is_ok(), "{:?} {:?}", first.err(), second.err());
    }
}

#[tokio::test]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("riposte.db")).await.unwrap();
    suite(store).await;
    // The file reopens, already migrated.
    let reopened = AnyStore::open(&format!("sqlite:{}", dir.path().join("riposte.db").display())).await.unwrap();
    assert_eq!(reopened.event_counts().await.unwrap(), (4, 5));
}

/// A fresh database on the test server, dropped afterwards.
struct ScratchDatabase {
    admin: sqlx::PgPool,
    name: String,
    url: String,
}

impl ScratchDatabase {
    async fn create(base: &str) -> ScratchDatabase {
        let admin = sqlx::PgPool::connect(base).await.expect("the test PostgreSQL server");
        let name = format!(
            "riposte_test_{}_{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        );
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.unwrap();
        let url = match base.rfind('/') {
            Some(slash) if base[..slash].contains("://") && slash > base.find("://").unwrap() + 2 => {
                format!("{}/{name}", &base[..slash])
            }
            _ => format!("{base}/{name}"),
        };
        ScratchDatabase { admin, name, url }
    }

    async fn drop(self) {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)))
            .execute(&self.admin)
            .await;
    }
}

#[tokio::test]
async fn postgres_store() {
    let Ok(base) = std::env::var("RIPOSTE_TEST_POSTGRES_URL") else {
        eprintln!("SKIPPED postgres_store: RIPOSTE_TEST_POSTGRES_URL is not set (.ci/run sets it)");
        return;
    };
    let database = ScratchDatabase::create(&base).await;
    let store = PostgresStore::connect(&database.url).await.unwrap();
    suite(store).await;
    let reopened = AnyStore::open(&database.url).await.unwrap();
    assert_eq!(reopened.event_counts().await.unwrap(), (4, 5));
    drop(reopened);
    database.drop().await;
}

#[tokio::test]
async fn unsupported_urls_are_named_without_secrets() {
    let error = AnyStore::open("mysql://root:hunter2@db/x").await.unwrap_err().to_string();
    assert!(error.contains("mysql://root:***@db/x"), "{error}");
    assert!(!error.contains("hunter2"));
}
