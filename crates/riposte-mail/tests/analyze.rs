//! Messages the tests write (phishing and the legitimate hard cases), and
//! the corpus's malformed and unusual messages read in place.

use riposte_mail::language::{Wording, wording};
use riposte_mail::{Limits, Settings, Verdict, analyze, parse};

fn judge(raw: &str) -> riposte_mail::Analysis {
    let mail = parse(raw.as_bytes(), &Limits::default()).expect("a message");
    analyze(&mail, &Settings { own_domains: vec!["riposte-corp.com".into()], ..Settings::default() })
}

fn checks(analysis: &riposte_mail::Analysis) -> Vec<&'static str> {
    analysis.findings.iter().map(|finding| finding.check).collect()
}

#[test]
fn a_credential_phish_with_a_program_attached() {
    let raw = "From: \"PayPal Service\" <service@paypa1-secure.com>\r\n\
To: alice@riposte-corp.com\r\n\
Reply-To: refunds@gmail.com\r\n\
Subject: Action required: your account has been suspended\r\n\
Authentication-Results: mx.riposte-corp.com; spf=softfail smtp.mailfrom=paypa1-secure.com; dkim=none; dmarc=fail header.from=paypa1-secure.com\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>We noticed unusual sign-in activity. Verify your account within 24 hours:</p>\r\n\
<a href=\"http://198.51.100.7/paypal.com.login/\">https://www.paypal.com/signin</a>\r\n\
<form action=\"http://198.51.100.7/p\"><input type=\"password\" name=\"p\"></form>\r\n\
--b1\r\n\
Content-Type: application/octet-stream; name=\"statement.pdf.exe\"\r\n\
Content-Disposition: attachment; filename=\"statement.pdf.exe\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAA=\r\n\
--b1--\r\n";
    let analysis = judge(raw);
    assert_eq!(analysis.verdict, Verdict::Malicious, "{analysis:#?}");
    let found = checks(&analysis);
    for expected in [
        "attachment.executable",
        "attachment.double_extension",
        "sender.display_name_brand",
        "lookalike.sender_domain",
        "sender.reply_to_elsewhere",
        "auth.dmarc_fail",
        "links.text_href_mismatch",
        "links.ip_address",
        "html.password_form",
        "language.credential_lure",
    ] {
        assert!(found.contains(&expected), "{expected} missing from {found:?}");
    }
    // Every finding says what it saw.
    assert!(analysis.findings.iter().all(|finding| !finding.evidence.is_empty() && finding.weight > 0.0));
    let lookalike = analysis.findings.iter().find(|finding| finding.check == "lookalike.sender_domain").unwrap();
    assert!(lookalike.evidence.contains("paypal.com"), "{}", lookalike.evidence);
}

#[test]
fn legitimate_hard_cases_stay_clean() {
    // A newsletter: tracking links on another domain, under words rather than URLs.
    let newsletter = "From: Riposte Weekly <news@riposte-corp.com>\r\n\
To: alice@example.org\r\n\
Subject: This week: detection engineering notes\r\n\
List-Id: <weekly.riposte-corp.com>\r\n\
List-Unsubscribe: <https://click.mailer.example/u/123>\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<span style=\"display:none\">Three notes on Sigma this week</span><h1>Notes</h1><p>Read <a href=\"https://click.mailer.example/t/abc?u=https%3A%2F%2Friposte-corp.com%2Fblog\">the full article</a>.</p>\r\n\
<p><a href=\"https://click.mailer.example/u/123\">Unsubscribe</a></p>\r\n";
    let analysis = judge(newsletter);
    assert_eq!(analysis.verdict, Verdict::Clean, "{analysis:#?}");

    // A password reset the user asked for, from the service itself.
    let reset = "From: GitHub <noreply@github.com>\r\n\
To: alice@example.org\r\n\
Subject: [GitHub] Please reset your password\r\n\
Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=github.com; dkim=pass header.d=github.com; dmarc=pass\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
We heard that you lost your GitHub password. Sorry about that!\r\n\
Use this link to reset it: https://github.com/password_reset/abcdef0123\r\n\
If you don't use this link within 3 hours, it will expire.\r\n";
    let analysis = judge(reset);
    assert_eq!(analysis.verdict, Verdict::Clean, "{analysis:#?}");

    // An invoice with its PDF.
    let invoice = "From: Accounts <billing@supplier.example>\r\n\
To: finance@riposte-corp.com\r\n\
Subject: Invoice 2026-114 for November\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"x\"\r\n\
\r\n\
--x\r\n\
Content-Type: text/plain\r\n\
\r\n\
Hello, please find attached our invoice for November, payable in 30 days.\r\n\
--x\r\n\
Content-Type: application/pdf; name=\"invoice-2026-114.pdf\"\r\n\
Content-Disposition: attachment; filename=\"invoice-2026-114.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoK\r\n\
--x--\r\n";
    let analysis = judge(invoice);
    assert_eq!(analysis.verdict, Verdict::Clean, "{analysis:#?}");
}

#[test]
fn a_scam_from_a_free_mailbox_with_a_tracking_token() {
    let raw = "From: Mining Desk <michelle.lee7@gmail.com>\r\n\
To: bob@example.org\r\n\
Subject: Your balance 0.7495 BTC is ready - ID G3ejrKKzNc30o7qJhZ\r\n\
Content-Type: text/html\r\n\
\r\n\
<p>Congratulations! Claim your bitcoin <a href=\"https://claim-btc.pages.dev/\">Claim now</a></p>\r\n";
    let analysis = judge(raw);
    let found = checks(&analysis);
    for expected in [
        "language.subject_random_token",
        "sender.freemail_lure",
        "links.open_hosting",
        "links.action_elsewhere",
        "language.scam",
    ] {
        assert!(found.contains(&expected), "{expected} missing from {found:?}");
    }
    assert_eq!(analysis.verdict, Verdict::Phishing);
}

#[test]
fn a_nesting_bomb_is_cut_with_a_reason() {
    let mut raw = String::from("From: a@example.org\r\nSubject: inner\r\n\r\nhello\r\n");
    for level in 0..12 {
        raw = format!(
            "From: a@example.org\r\nSubject: level {level}\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n{raw}"
        );
    }
    let mail = parse(raw.as_bytes(), &Limits::default()).expect("a message");
    assert!(mail.cut.iter().any(|cut| cut.contains("nested")), "{:?}", mail.cut);
    let analysis = analyze(&mail, &Settings::default());
    assert!(checks(&analysis).contains(&"message.cut"));
}

#[test]
fn the_corpus_edge_cases_parse_or_say_why() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/email/edge-cases");
    if !root.exists() {
        eprintln!("SKIPPED: {} is absent", root.display());
        return;
    }
    let mut stack = vec![root];
    let (mut parsed, mut refused) = (0, 0);
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().flatten().map(|entry| entry.path()));
            continue;
        }
        let raw = std::fs::read(&path).unwrap();
        match parse(&raw, &Limits::default()) {
            Some(mail) => {
                let analysis = analyze(&mail, &Settings::default());
                assert!(analysis.score >= 0.0);
                parsed += 1;
            }
            None => refused += 1,
        }
    }
    eprintln!("{parsed} parsed, {refused} not messages");
    assert!(parsed >= 100, "{parsed}");
}

/// A zip of `entries` (name, bytes), deflated.
fn zip_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    use std::io::Write;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

#[test]
fn archives_are_listed_not_opened_blindly() {
    use base64::Engine as _;
    let inner = zip_of(&[("readme.txt", b"hello".to_vec()), ("payload.exe", b"MZ...".to_vec())]);
    let outer = zip_of(&[
        ("documents.zip", inner),
        ("notes.txt", b"see inside".to_vec()),
        // 64 MiB of zeros deflate to about 64 KiB: a bomb's ratio.
        ("big.bin", vec![0u8; 64 << 20]),
    ]);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&outer);
    let raw = format!(
        "From: Scanner <scan@supplier.example>\r\nTo: bob@example.org\r\nSubject: Scanned documents\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"z\"\r\n\r\n--z\r\nContent-Type: text/plain\r\n\r\nAttached.\r\n\
--z\r\nContent-Type: application/zip; name=\"scan.zip\"\r\nContent-Disposition: attachment; filename=\"scan.zip\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--z--\r\n"
    );
    let analysis = judge(&raw);
    let runs = analysis.findings.iter().find(|finding| finding.check == "attachment.archive_runs").expect("a finding");
    assert!(runs.evidence.contains("documents.zip/payload.exe"), "{}", runs.evidence);
    let cut = analysis.findings.iter().find(|finding| finding.check == "message.cut").expect("the bomb named");
    assert!(cut.evidence.contains("big.bin"), "{}", cut.evidence);
}

#[test]
fn a_rar_attachment_is_listed_from_its_headers() {
    use base64::Engine as _;
    // RAR 5: signature, main header, one file `invoice.exe` with 3 bytes of data, end.
    let mut rar = b"Rar!\x1a\x07\x01\x00".to_vec();
    rar.extend([0, 0, 0, 0, 3, 1, 0, 0]);
    rar.extend([0, 0, 0, 0, 20, 2, 2, 3, 0, 3, 0x20, 0, 0, 11]);
    rar.extend(b"invoice.exexyz");
    rar.extend([0, 0, 0, 0, 3, 5, 0, 0]);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&rar);
    let raw = format!(
        "From: Accounts <ap@supplier.example>\r\nTo: bob@example.org\r\nSubject: Invoice\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"z\"\r\n\r\n--z\r\nContent-Type: text/plain\r\n\r\nAttached.\r\n\
--z\r\nContent-Type: application/x-rar; name=\"invoice.rar\"\r\nContent-Disposition: attachment; filename=\"invoice.rar\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--z--\r\n"
    );
    let analysis = judge(&raw);
    let runs = analysis.findings.iter().find(|finding| finding.check == "attachment.archive_runs").expect("a finding");
    assert!(runs.evidence.contains("invoice.rar holds invoice.exe"), "{}", runs.evidence);
}

#[test]
fn intelligence_on_the_sender_links_and_attachments() {
    use riposte_intel::{Indicator, IndicatorKind, IndicatorSet};
    use sha2::Digest as _;
    let payload = b"not really a document";
    let mut set = IndicatorSet::new();
    set.insert(Indicator::new(IndicatorKind::Domain, "bad-sender.example", "feed"));
    set.insert(Indicator::new(IndicatorKind::Sha256, hex::encode(sha2::Sha256::digest(payload)), "feed"));
    let settings = Settings { intel: Some(std::sync::Arc::new(set)), now_ms: 1_795_946_400_000, ..Settings::default() };
    use base64::Engine as _;
    let raw = format!(
        "From: Billing <billing@mail.bad-sender.example>\r\nTo: bob@example.org\r\nSubject: Your document\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"q\"\r\n\r\n--q\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n\
--q\r\nContent-Type: application/octet-stream; name=\"doc.bin\"\r\nContent-Disposition: attachment; filename=\"doc.bin\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--q--\r\n",
        base64::engine::general_purpose::STANDARD.encode(payload)
    );
    let mail = parse(raw.as_bytes(), &Limits::default()).unwrap();
    let analysis = analyze(&mail, &settings);
    let found = checks(&analysis);
    assert!(found.contains(&"intel.sender") && found.contains(&"intel.attachment"), "{found:?}");
    assert_eq!(analysis.verdict, Verdict::Malicious, "a known-bad file");
}

#[test]
fn every_corpus_message_gets_a_verdict_with_its_reasons() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/email");
    if !root.join("phishing").exists() {
        eprintln!("SKIPPED: {} is absent", root.display());
        return;
    }
    let mut judged = 0;
    for set in ["phishing", "ham"] {
        for entry in std::fs::read_dir(root.join(set)).unwrap().flatten() {
            let raw = std::fs::read(entry.path()).unwrap();
            let Some(mail) = parse(&raw, &Limits::default()) else { continue };
            let analysis = analyze(&mail, &Settings::default());
            judged += 1;
            if analysis.verdict != Verdict::Clean {
                assert!(!analysis.findings.is_empty(), "{}: a verdict without reasons", entry.path().display());
            }
            let sum: f64 = analysis.findings.iter().map(|finding| finding.weight).sum();
            assert!((sum - analysis.score).abs() < 1e-9, "the score is the sum of the findings' weights");
        }
    }
    assert!(judged >= 3_400, "{judged}");
}

#[test]
fn hostile_shapes_stay_fast_and_honest() {
    // Thousands of unclosed anchors and scheme-less `http` words: linear, not quadratic.
    let html = "<a href=x>y".repeat(20_000) + &"http and https ".repeat(20_000);
    let raw = format!("From: a@example.org\r\nSubject: x\r\nContent-Type: text/html\r\n\r\n{html}\r\n");
    let analysis = judge(&raw);
    assert!(analysis.score >= 0.0);
    // A forged result inside a property is not a pass; the real one is read.
    let forged = "From: Support <help@evil.example>\r\nSubject: Verify your account\r\n\
Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=dmarc=pass@evil.example; dmarc=fail header.from=evil.example\r\n\
Content-Type: text/plain\r\n\r\nVerify your account at https://evil.example/login\r\n";
    let found = checks(&judge(forged));
    assert!(found.contains(&"auth.dmarc_fail") && found.contains(&"language.credential_lure"), "{found:?}");
    // Words inside words do not count: `updating` is not `dating`.
    let update = "From: IT <it@riposte-corp.com>\r\nSubject: Updating the VPN client\r\nContent-Type: text/plain\r\n\r\nWe are updating the VPN client tonight.\r\n";
    assert!(!checks(&judge(update)).contains(&"language.scam"));
}

#[test]
fn what_analysts_said_of_a_sender_counts_within_bounds() {
    use riposte_mail::History;
    let raw = "From: Billing <billing@supplier.example>\r\nTo: bob@example.org\r\nSubject: Invoice overdue - act now\r\n\
Content-Type: text/plain\r\n\r\nYour payment is overdue. Please pay immediately: https://pay.other.example/x\r\n";
    let mail = parse(raw.as_bytes(), &Limits::default()).unwrap();
    let with = |history| analyze(&mail, &Settings { history: Some(history), ..Settings::default() });
    // A new domain is more than a new address of a known one.
    let new_domain = with(History::default());
    let finding = new_domain.findings.iter().find(|finding| finding.check == "history.new_sender_domain").unwrap();
    assert!(finding.evidence.contains("supplier.example"), "{finding:?}");
    // A known address whose domain was not counted yet (before the store counted domains) is not new.
    let known = with(History { messages: 9, ..History::default() });
    assert!(
        !checks(&known).iter().any(|check| check.starts_with("history.new") || check.ends_with("first_time_sender"))
    );
    let first = with(History { domain_messages: 12, ..History::default() });
    assert!(checks(&first).contains(&"history.first_time_sender"));
    assert!(!checks(&first).contains(&"history.new_sender_domain") && new_domain.score > first.score);
    let trusted = with(History { messages: 40, legitimate: 12, phishing: 0, domain_messages: 40 });
    let trust = trusted.findings.iter().find(|finding| finding.check == "history.judged_legitimate").unwrap();
    assert_eq!(trust.weight, -3.0, "bounded, however many verdicts");
    assert!(trust.evidence.contains("12 earlier messages"), "{}", trust.evidence);
    let distrusted = with(History { messages: 3, legitimate: 0, phishing: 2, domain_messages: 3 });
    assert!(distrusted.score > first.score && first.score > trusted.score);
    assert_eq!(distrusted.verdict, Verdict::Phishing, "{distrusted:#?}");
}

#[test]
fn the_projects_own_legitimate_hard_cases_are_not_flagged() {
    // Today's legitimate mail that looks like phishing: newsletters with
    // trackers and hidden preheaders, password resets and sign-in codes,
    // invoices with PDFs, parcel notices, internal requests, in several
    // languages (tests/legitimate, written for the project).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/legitimate");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|entry| entry.path()).collect();
    files.sort();
    assert_eq!(files.len(), 33);
    for file in files {
        let raw = std::fs::read_to_string(&file).unwrap();
        let analysis = judge(&raw);
        assert!(analysis.verdict < Verdict::Phishing, "{}: {:#?}", file.display(), analysis.findings);
    }
}

/// A message of `words`, from `from`, for teaching the classifier.
fn worded(from: &str, subject: &str, words: &str) -> riposte_mail::Mail {
    let raw = format!(
        "From: {from}\r\nTo: ann@riposte-corp.com\r\nSubject: {subject}\r\nContent-Type: text/plain\r\n\r\n{words}\r\n"
    );
    parse(raw.as_bytes(), &Limits::default()).unwrap()
}

#[test]
fn what_analysts_judged_teaches_the_words_of_phishing_with_reasons() {
    use riposte_mail::{Verdicts, tokens_of};
    let lures = ["wallet", "airdrop", "claim", "reward", "token", "bonus", "eligible", "connect"];
    let work = ["roadmap", "quarterly", "review", "budget", "agenda", "minutes", "draft", "team"];
    let mut verdicts = Verdicts::default();
    let mut teach = |mail: &riposte_mail::Mail, phishing: bool| {
        let analysis = analyze(mail, &Settings::default());
        verdicts.record_message(mail, &analysis, phishing);
    };
    for i in 0..60 {
        let (a, b) = (lures[i % 8], lures[(i / 8) % 8]);
        teach(
            &worded("x@drop.example", &format!("Your {a} is ready"), &format!("Hello ann, {a} {b} now at the portal")),
            true,
        );
        let (c, d) = (work[i % 8], work[(i / 8) % 8]);
        teach(
            &worded("bob@riposte-corp.com", &format!("The {c}"), &format!("Hi Ann, the {c} and {d} for Thursday")),
            false,
        );
    }
    let settings = Settings { learned: Some(std::sync::Arc::new(verdicts.clone())), ..Settings::default() };
    // Nothing else in it would flag it; the words analysts judged do.
    let phish =
        analyze(&worded("y@other.example", "Claim your reward", "Connect your wallet to claim the bonus"), &settings);
    let learned =
        phish.findings.iter().find(|finding| finding.check == "learned.resembles_phishing").expect("a finding");
    assert!(learned.weight >= 5.0 && phish.verdict == Verdict::Phishing, "{phish:#?}");
    assert!(
        learned.evidence.contains("wallet") && learned.evidence.contains("from 60 phishing and 60 legitimate verdicts"),
        "{}",
        learned.evidence
    );
    let work =
        analyze(&worded("carol@riposte-corp.com", "Budget review", "Draft agenda and minutes for the team"), &settings);
    let learned =
        work.findings.iter().find(|finding| finding.check == "learned.resembles_legitimate").expect("a finding");
    assert!(learned.weight < 0.0 && work.verdict == Verdict::Clean, "{work:#?}");
    // Words never judged say nothing; the recipient's own address is not a word of the message.
    let unknown = analyze(&worded("z@else.example", "Piano lessons", "Violin cello harp"), &settings);
    assert!(!checks(&unknown).iter().any(|check| check.starts_with("learned.")), "{unknown:#?}");
    assert!(!tokens_of(&worded("x@y.example", "Hi ann", "Dear ann")).iter().any(|token| token.contains("ann")));
    // Too few verdicts: the classifier stays silent.
    let mut few = Verdicts { words: verdicts.words.clone(), ..Verdicts::default() };
    few.words.legitimate = 10;
    let silent = Settings { learned: Some(std::sync::Arc::new(few)), ..Settings::default() };
    let phish =
        analyze(&worded("y@other.example", "Claim your reward", "Connect your wallet to claim the bonus"), &silent);
    assert!(!checks(&phish).contains(&"learned.resembles_phishing"), "{phish:#?}");
}

#[test]
fn words_broken_up_for_filters_and_upstream_spam_marks_are_seen() {
    // Invisible selectors inside a brand's name, a Unicode tag, a strike-through overlay, zero-width spaces.
    for subject in [
        "Your C\u{e0139}oin\u{e0139}base account",
        "Coin\u{e0041}base",
        "P\u{336}a\u{336}c\u{336}k\u{336}a\u{336}g\u{336}e",
        "pay\u{200b}pal",
    ] {
        let raw = format!("From: a@b.example\r\nSubject: {subject}\r\nContent-Type: text/plain\r\n\r\nhello\r\n");
        assert!(checks(&judge(&raw)).contains(&"language.hidden_characters"), "{subject:?}");
    }
    // Persian writes a non-joiner inside words; HTML hyphenates with soft hyphens.
    for subject in ["\u{645}\u{6cc}\u{200c}\u{62e}\u{648}\u{627}\u{647}\u{645}", "Donau\u{ad}dampf\u{ad}schiff"] {
        let raw = format!("From: a@b.example\r\nSubject: {subject}\r\nContent-Type: text/plain\r\n\r\nhello\r\n");
        assert!(!checks(&judge(&raw)).contains(&"language.hidden_characters"), "{subject:?}");
    }
    // A joiner composing an emoji family is not hiding anything.
    let family = "From: a@b.example\r\nSubject: Family day \u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}\r\nContent-Type: text/plain\r\n\r\nhello\r\n";
    assert!(!checks(&judge(family)).contains(&"language.hidden_characters"));
    let styled =
        "From: a@b.example\r\nSubject: =?UTF-8?B?8J2YvvCdmYTwnZmU?= news\r\nContent-Type: text/plain\r\n\r\nhello\r\n";
    assert!(checks(&judge(styled)).contains(&"language.styled_letters"), "{:?}", judge(styled));
    let flagged =
        "From: a@b.example\r\nSubject: Hello\r\nX-Spam-Flag: YES\r\nContent-Type: text/plain\r\n\r\nhello\r\n";
    assert!(checks(&judge(flagged)).contains(&"message.spam_flagged"));
    let status = "From: a@b.example\r\nSubject: Hello\r\nX-Spam-Status: No, score=0.1\r\nContent-Type: text/plain\r\n\r\nhello\r\n";
    assert!(!checks(&judge(status)).contains(&"message.spam_flagged"));
    // Exchange's spam confidence level: spam from 5; -1 to 4 and nonsense say nothing.
    let scored = |level: &str| {
        let raw = format!(
            "From: a@b.example\r\nSubject: Hello\r\nX-MS-Exchange-Organization-SCL: {level}\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        );
        judge(&raw).findings.into_iter().find(|finding| finding.check == "message.spam_flagged")
    };
    for level in ["5", "9", " 7 "] {
        let finding = scored(level).unwrap_or_else(|| panic!("SCL {level:?} is a spam mark"));
        assert!(finding.evidence.contains(&format!("SCL: {}", level.trim())), "{finding:?}");
    }
    for level in ["-1", "0", "1", "4", "high", ""] {
        assert!(scored(level).is_none(), "SCL {level:?} is no spam mark");
    }
    // A "no" written below the receiving filter's "yes" does not hide it.
    let hidden = "From: a@b.example\r\nX-Spam-Flag: YES\r\nSubject: Hello\r\nX-Spam-Flag: NO\r\nContent-Type: text/plain\r\n\r\nhello\r\n";
    assert!(checks(&judge(hidden)).contains(&"message.spam_flagged"));
}

#[test]
fn what_an_inline_style_hides_is_not_read_as_the_message() {
    let html = |body: &str| {
        format!(
            "From: Billing <billing@shop.example>\r\nSubject: Order update\r\nContent-Type: text/html\r\n\r\n{body}\r\n"
        )
    };
    let language = |raw: &str| {
        let mail = parse(raw.as_bytes(), &Limits::default()).expect("a message");
        riposte_mail::tokens_of(&mail).into_iter().find(|token| token.starts_with("lang:"))
    };
    let lure = "<p>Your order has shipped and it will be with you on Monday.</p>";
    // German function words padded out of sight would have the lure named
    // German, which an organisation without German verdicts does not judge.
    let german = "und der ist nicht sie ihre mit für wir auf bitte eine ein zu dem sich auch wird";
    let padded = html(&format!(r#"{lure}<div style="display:none; max-height:0">{german}</div>"#));
    assert_eq!(language(&padded).as_deref(), Some("lang:en"));
    let shown = html(&format!("{lure}<div>{german}</div>"));
    assert_eq!(language(&shown).as_deref(), Some("lang:de"), "the same words shown are read");
    // Hidden padding of a reset message's words is no credential lure, and
    // the body is still said to hide text.
    let reset = "Please click the link below to verify your email address. Enter your password to confirm.";
    let hidden_reset = html(&format!(r#"<p>Hot singles near you</p><span style="font-size:0px">{reset}</span>"#));
    let found = checks(&judge(&hidden_reset));
    assert!(!found.contains(&"language.credential_lure") && found.contains(&"html.hidden_text"), "{found:?}");
    assert!(checks(&judge(&html(&format!("<p>{reset}</p>")))).contains(&"language.credential_lure"));
    // Text only hidden is still said to be hidden.
    let only_hidden = html(r#"<div style="display:none">Hot singles near you</div>"#);
    assert!(checks(&judge(&only_hidden)).contains(&"html.hidden_text"));
    // Hidden elements by the ten thousand, nested or never closed: each is
    // looked through within a budget of the document's size, not to its
    // end once for each.
    for shape in [
        r#"<div style="display:none">x"#,
        r#"<div style="display:none"><span style="opacity:0">x"#,
        r#"<span style="font-size:0">x<b>"#,
        // Comments: each one's end is looked for once, not to the end of the document.
        "<!---->",
    ] {
        let hostile = html(&shape.repeat(20_000));
        assert!(judge(&hostile).score >= 0.0);
    }
    // A tag never closed after hidden elements is read to its end once, not
    // once for each of them.
    {
        let unclosed = r#"<span style="display:none">"#.repeat(2_000) + "<b" + &"x".repeat(2_000_000);
        assert!(judge(&html(&unclosed)).score >= 0.0);
    }
}

#[test]
fn a_display_name_split_by_commas_is_read_whole() {
    let from = |header: &str| {
        let raw = format!("From: {header}\r\nSubject: Hello\r\nContent-Type: text/plain\r\n\r\nhello\r\n");
        parse(raw.as_bytes(), &Limits::default()).expect("a message").from.expect("a sender")
    };
    let doe = from("Doe, John <john@corp.example>");
    assert_eq!((doe.name.as_str(), doe.address.as_str()), ("Doe, John", "john@corp.example"));
    assert_eq!(from("\"Doe, John\" <john@corp.example>").name, "Doe, John");
    assert_eq!(from("john@corp.example").name, "");
    // A brand written before an address that has no name of its own.
    let raw = "From: \"PayPal Service\", \"PayPal Service\", <reply@telco.example>\r\nSubject: Hello\r\nContent-Type: text/plain\r\n\r\nhello\r\n";
    let analysis = judge(raw);
    let brand = analysis.findings.iter().find(|finding| finding.check == "sender.display_name_brand");
    assert!(brand.is_some_and(|finding| finding.evidence.contains("reply@telco.example")), "{analysis:?}");
}

#[test]
fn the_same_evidence_is_given_once() {
    let raw = "From: a@b.example\r\nSubject: Hello\r\nContent-Type: text/plain\r\n\r\nhttps://bit.ly/a1 https://bit.ly/a2 https://bit.ly/a3 https://tinyurl.com/x\r\n";
    let analysis = judge(raw);
    let finding = analysis.findings.iter().find(|finding| finding.check == "links.shortener").expect("a finding");
    assert_eq!(finding.evidence.matches("bit.ly").count(), 1, "{finding:?}");
    assert!(finding.evidence.contains("tinyurl.com"), "{finding:?}");
}

#[test]
fn microsofts_composite_authentication_failing_counts_once() {
    let with_results = |results: &str| {
        judge(&format!(
            "From: service@bank.example\r\nAuthentication-Results: spf=none (sender IP is 192.0.2.7)\r\n {results}\r\nSubject: Hello\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        ))
    };
    // No DMARC policy to fail, but Microsoft's implicit authentication did.
    let implicit = with_results(
        "smtp.helo=x; dkim=none (message not signed) header.d=none;dmarc=none action=none header.from=bank.example;compauth=fail\r\n reason=001",
    );
    let finding = implicit.findings.iter().find(|finding| finding.check == "auth.compauth_fail").expect("a finding");
    assert!(finding.evidence.contains("compauth=fail (reason 001)"), "{finding:?}");
    // A DMARC failure is counted as one, not twice.
    let explicit =
        with_results("dkim=none; dmarc=fail action=quarantine header.from=bank.example;compauth=fail reason=000");
    assert!(checks(&explicit).contains(&"auth.dmarc_fail"));
    assert!(!checks(&explicit).contains(&"auth.compauth_fail"));
    // Nor is a DMARC permerror, and a reason of another method is not compauth's.
    let permerror = with_results(
        "dkim=fail reason=\"bad signature\"; dmarc=permerror header.from=bank.example;compauth=fail reason=000",
    );
    assert!(checks(&permerror).contains(&"auth.dmarc_fail"));
    assert!(!checks(&permerror).contains(&"auth.compauth_fail"));
    let other_reason =
        with_results("dkim=fail reason=\"bad signature\"; dmarc=none header.from=bank.example;compauth=fail");
    let finding =
        other_reason.findings.iter().find(|finding| finding.check == "auth.compauth_fail").expect("a finding");
    assert!(finding.evidence.starts_with("compauth=fail in the receiving"), "{finding:?}");
    let passed = with_results(
        "dkim=pass header.d=bank.example;dmarc=none action=none header.from=bank.example;compauth=pass reason=109",
    );
    assert!(!checks(&passed).iter().any(|check| check.starts_with("auth.")), "{:?}", checks(&passed));
}

#[test]
fn lures_are_read_in_dutch_and_the_other_languages_too() {
    for (text, category) in [
        ("Gefeliciteerd! U heeft gewonnen: een cadeaukaart van 250 euro", Wording::Scam),
        ("Laatste herinnering: bevestig uw gegevens binnen 24 uur", Wording::Urgency),
        ("Bevestig uw account om toegang te behouden", Wording::CredentialLure),
        ("Sua encomenda aguarda o pagamento da taxa de importação", Wording::PaymentFraud),
        ("Evite bloqueio: último aviso", Wording::Urgency),
        ("Jetzt 50 Freispiele für neue Spieler", Wording::Scam),
        ("Vous avez été sélectionné pour recevoir une carte cadeau", Wording::Scam),
        ("Su factura pendiente vence hoy", Wording::PaymentFraud),
        ("Mahnung: Ihre Rechnung ist überfällig", Wording::PaymentFraud),
        ("Sua fatura vencida será protestada", Wording::PaymentFraud),
    ] {
        assert!(wording(text).iter().any(|(found, _)| *found == category), "{text:?}: {:?}", wording(text));
    }
    // A call to act on an account, in German, that leads away from the sender.
    let raw = "From: IT <it@riposte-corp.com>\r\nSubject: Hinweis\r\nContent-Type: text/html\r\n\r\n<a href=\"https://login.example.net/k\">Passwort behalten</a>\r\n";
    assert!(checks(&judge(raw)).contains(&"links.action_elsewhere"), "{:?}", judge(raw));
    let home = raw.replace("login.example.net", "riposte-corp.com");
    assert!(!checks(&judge(&home)).contains(&"links.action_elsewhere"));
    // A phrase is found as whole words only, at both ends.
    assert!(wording("the winners of the updating contest").is_empty());
    // Ordinary words of these languages are not lures.
    for text in [
        "Bedankt voor uw bestelling, de factuur volgt per post",
        "Obrigado pela sua compra",
        "Ihre Bestellung ist unterwegs",
        "Bitte bestätigen Sie Ihre Anmeldung zum Newsletter",
        "Als u dit bericht ten onrechte heeft ontvangen, verzoeken wij u de afzender onmiddellijk op de hoogte te stellen",
        "Ihre Prämie für die Krankenversicherung wird am 1. Januar abgebucht",
        "Herzlichen Glückwunsch zum Geburtstag!",
        "Acesse sua conta para ver o extrato do mês",
        "Letzte Erinnerung: unser Webinar beginnt morgen",
        "Anbei erhalten Sie unsere Rechnung RE-2025-30871",
        "Sua fatura de novembro está disponível; pague com boleto ou Pix",
    ] {
        assert!(wording(text).is_empty(), "{text:?}: {:?}", wording(text));
    }
}

#[test]
fn a_broken_arc_chain_recorded_by_the_receiving_host_is_a_finding() {
    let raw = "From: a@b.example\r\nAuthentication-Results: mx.riposte-corp.com; arc=fail (signature failed); dkim=pass header.d=b.example\r\nSubject: Hello\r\nContent-Type: text/plain\r\n\r\nhello\r\n";
    let analysis = judge(raw);
    let arc = analysis.findings.iter().find(|finding| finding.check == "auth.arc_fail").expect("a finding");
    assert!(arc.evidence.contains("arc=fail in the receiving host's"), "{arc:?}");
    assert!(!checks(&judge(&raw.replace("arc=fail", "arc=pass"))).contains(&"auth.arc_fail"));
}

#[test]
fn links_rewritten_by_mail_security_or_redirectors_are_judged_by_their_destination() {
    // Every link rewritten by Safe Links, as Microsoft 365 delivers it: judged as the link it wraps.
    let wrapped = "From: GitHub <noreply@github.com>\r\nAuthentication-Results: mx.riposte-corp.com; dmarc=pass header.from=github.com\r\n\
Subject: Your personal access token expires soon\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n\
<p>Regenerate it at <a href=\"https://eur01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fgithub.com%2Fsettings%2Ftokens&amp;data=05\">https://github.com/settings/tokens</a></p>\r\n";
    let analysis = judge(wrapped);
    assert_eq!(analysis.verdict, Verdict::Clean, "{analysis:#?}");
    assert!(!checks(&analysis).contains(&"links.text_href_mismatch"));
    // A look-alike behind Google's redirector: both are seen.
    let redirected = "From: PayPal <service@mailer.example>\r\nSubject: Confirm your account\r\nMIME-Version: 1.0\r\n\
Content-Type: text/html\r\n\r\n<p><a href=\"https://www.google.com/url?q=https%3A%2F%2Fpaypa1.com%2Flogin&amp;sa=D\">Confirm</a></p>\r\n";
    let found = checks(&judge(redirected));
    for check in ["links.redirect", "lookalike.link_host", "links.action_elsewhere"] {
        assert!(found.contains(&check), "{check} missing from {found:?}");
    }
}

#[test]
fn senders_no_mail_system_would_write_and_subjects_naming_their_target() {
    let from = |address: &str, subject: &str| {
        judge(&format!(
            "From: Service <{address}>\r\nTo: ann@riposte-corp.com\r\nSubject: {subject}\r\nContent-Type: text/plain\r\n\r\nHello\r\n"
        ))
    };
    for address in ["noreply@info,boots,com", "news@letter.example.", "x@mail.example.eu-new"] {
        assert!(checks(&from(address, "News")).contains(&"sender.malformed_address"), "{address}");
    }
    // Names people choose keep their digits together; generated ones scatter them.
    assert!(checks(&from("kt443@zoqd3fb5z7.com", "News")).contains(&"sender.random_domain"));
    assert!(checks(&from("lina@s.u.p.p.o.r.t.3az.example", "News")).contains(&"sender.random_domain"));
    assert!(checks(&from("aviso@registro%atendimento.example", "News")).contains(&"sender.malformed_address"));
    let decorated = "P\u{353}\u{33d}l\u{353}\u{33d}e\u{353}\u{33d}a\u{353}\u{33d}s\u{353}\u{33d}e confirm";
    assert!(checks(&from("a@b.example", decorated)).contains(&"language.decorated_letters"));
    // Accents written as separate marks are French, not decoration.
    let accented = "Re\u{301}servation confirme\u{301}e, e\u{301}te\u{301} a\u{300} Paris";
    assert!(!checks(&from("a@b.example", accented)).contains(&"language.decorated_letters"));
    for address in [
        "info@office365.example",
        "team@4fast.net",
        "a@mail.b2b-portal.example",
        "root@localhost",
        "info@почта.рф",
        "news@xn--55qx5d.com",
        "a@xn--h1alffa9f.xn--p1ai",
    ] {
        let found = checks(&from(address, "News"));
        assert!(
            !found.contains(&"sender.random_domain") && !found.contains(&"sender.malformed_address"),
            "{address}: {found:?}"
        );
    }
    let named = from("alerts@other.example", "ann@riposte-corp.com, please verify");
    assert!(checks(&named).contains(&"language.subject_names_recipient"), "{named:#?}");
    assert!(!checks(&from("alerts@other.example", "Ann, your order")).contains(&"language.subject_names_recipient"));
    assert!(
        checks(&from("a@b.example", "Microsoft account unusual signin activity")).contains(&"language.subject_lure")
    );
}
