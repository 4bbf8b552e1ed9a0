//! DKIM, SPF and DMARC verified by `mail-auth` against recorded DNS answers
//! only (nothing is ever sent to a DNS server): the corpus's DKIM samples
//! with their published keys, and messages these tests sign.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use base64::Engine;
use mail_auth::common::crypto::Ed25519Key;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use riposte_mail::{AuthResult, Verified};
use riposte_server::mail_auth::{Envelope, MailAuth, RecordedDns};

fn dkim_samples() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/email/edge-cases/mimekit/dkim");
    if dir.exists() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: ../shared/corpus/email/edge-cases/mimekit/dkim is absent");
        None
    }
}

/// A DKIM record for a PEM public key (`p=` is the key's DER, as in PEM).
fn key_record(pem: &str, kind: &str) -> String {
    let key: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
    format!("v=DKIM1; k={kind}; p={key}")
}

fn verify(auth: &MailAuth, message: &[u8], envelope: Option<&Envelope>) -> Verified {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(auth.verify(message, envelope))
}

fn dkim_results(verified: &Verified) -> Vec<(String, AuthResult)> {
    verified.dkim.as_ref().unwrap().iter().map(|check| (check.domain.clone(), check.result)).collect()
}

#[test]
fn corpus_dkim_samples_verify_as_their_names_say() {
    let Some(dir) = dkim_samples() else { return };
    let mut dns = RecordedDns::default();
    let gmail = std::fs::read_to_string(dir.join("gmail.pub")).unwrap();
    dns.insert("20120113._domainkey.gmail.com", key_record(&gmail, "rsa").as_bytes());
    // RFC 8463's example key (section A.2), published in the RFC.
    dns.insert(
        "brisbane._domainkey.football.example.com",
        b"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
    );
    let auth = MailAuth::recorded(dns).unwrap();
    for sample in ["gmail.msg", "related.msg", "multipart-no-end-boundary.msg"] {
        let message = std::fs::read(dir.join(sample)).unwrap();
        let verified = verify(&auth, &message, None);
        assert_eq!(dkim_results(&verified), vec![("gmail.com".to_owned(), AuthResult::Pass)], "{sample}");
    }
    let rfc8463 = std::fs::read(dir.join("rfc8463-example.msg")).unwrap();
    let verified = verify(&auth, &rfc8463, None);
    let results = dkim_results(&verified);
    // Two signatures: the Ed25519 one verifies; the RSA one's key (selector
    // `test`) is not recorded: a permanent error by RFC 6376 (no key).
    let checks = verified.dkim.as_ref().unwrap();
    assert_eq!(results.len(), 2, "{checks:?}");
    let ed25519 = checks.iter().find(|check| check.selector == "brisbane").unwrap();
    assert_eq!(ed25519.result, AuthResult::Pass, "{checks:?}");
    let rsa = checks.iter().find(|check| check.selector == "test").unwrap();
    assert_eq!(rsa.result, AuthResult::PermError, "{checks:?}");

    // The same gmail message with one byte of its body changed.
    let mut tampered = std::fs::read(dir.join("gmail.msg")).unwrap();
    let body = tampered.windows(2).position(|window| window == b"\n\n").unwrap();
    let at = body + tampered[body..].iter().position(u8::is_ascii_alphabetic).unwrap();
    tampered[at] ^= 0x20;
    let verified = verify(&auth, &tampered, None);
    let check = &verified.dkim.as_ref().unwrap()[0];
    assert_eq!(check.result, AuthResult::Fail, "{check:?}");
    assert!(check.reason.to_lowercase().contains("body hash"), "{}", check.reason);
}

/// A new Ed25519 key, and its DKIM record. (The corpus's example key is
/// RSA-1024, which verifies but which `ring` refuses to sign with.)
fn new_key() -> (Ed25519Key, String) {
    let (der, record) = new_key_der();
    (Ed25519Key::from_pkcs8_maybe_unchecked_der(&der).unwrap(), record)
}

/// A new Ed25519 key as PKCS#8 DER (to make as many signing keys of it as
/// needed), and its DKIM record.
fn new_key_der() -> (Vec<u8>, String) {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let public = base64::engine::general_purpose::STANDARD.encode(pair.public_key_raw());
    (pair.serialize_der(), format!("v=DKIM1; k=ed25519; p={public}"))
}

fn sign(key: Ed25519Key, message: &str) -> String {
    let signature = DkimSigner::from_key(key)
        .domain("example.com")
        .selector("riposte")
        .headers(["From", "To", "Subject", "Date"])
        .sign(message.as_bytes())
        .unwrap();
    format!("{}{message}", signature.to_header())
}

const MESSAGE: &str = "From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: quarterly figures\r\nDate: Mon, 30 Nov 2026 09:00:00 +0000\r\n\r\nThe figures are in the shared folder.\r\n";

#[test]
fn messages_signed_here_verify_with_spf_and_dmarc() {
    let Some(dir) = dkim_samples() else { return };
    let mut dns = RecordedDns::default();
    // The corpus key's record as MimeKit recorded it, in zone-file form.
    dns.add_text(&std::fs::read_to_string(dir.join("example.bind9")).unwrap()).unwrap();
    let (key, record) = new_key();
    dns.insert("riposte._domainkey.example.com", record.as_bytes());
    dns.insert("example.com", b"v=spf1 ip4:192.0.2.0/24 -all");
    // Another TXT record of the same name, as domains have: SPF still reads.
    dns.insert("example.com", b"google-site-verification=riposte-test");
    dns.insert("_dmarc.example.com", b"v=DMARC1; p=reject");
    let auth = MailAuth::recorded(dns).unwrap();
    let signed = sign(key, MESSAGE);
    let inside = Envelope {
        client_ip: "192.0.2.7".parse::<IpAddr>().unwrap(),
        helo: "mail.example.com".into(),
        mail_from: "alice@example.com".into(),
    };
    let outside = Envelope { client_ip: "198.51.100.9".parse().unwrap(), ..inside.clone() };

    let verified = verify(&auth, signed.as_bytes(), Some(&inside));
    assert_eq!(dkim_results(&verified), vec![("example.com".to_owned(), AuthResult::Pass)]);
    assert_eq!((verified.spf, verified.dmarc), (Some(AuthResult::Pass), Some(AuthResult::Pass)));

    // Sent from elsewhere: SPF fails, DKIM still passes, so DMARC passes.
    let verified = verify(&auth, signed.as_bytes(), Some(&outside));
    assert_eq!((verified.spf, verified.dmarc), (Some(AuthResult::Fail), Some(AuthResult::Pass)));

    // Changed on the way and sent from elsewhere: nothing aligned passes.
    let forged = signed.replace("shared folder", "attached file");
    let verified = verify(&auth, forged.as_bytes(), Some(&outside));
    assert_eq!(dkim_results(&verified), vec![("example.com".to_owned(), AuthResult::Fail)]);
    assert_eq!((verified.spf, verified.dmarc), (Some(AuthResult::Fail), Some(AuthResult::Fail)));

    // The analysis names each failure with what failed.
    let mail = riposte_mail::parse(forged.as_bytes(), &riposte_mail::Limits::default()).unwrap();
    let analysis = riposte_mail::analyze(&mail, &riposte_mail::Settings { verified, ..Default::default() });
    let checks: Vec<&str> = analysis.findings.iter().map(|finding| finding.check).collect();
    for check in ["auth.dkim_fail", "auth.spf_fail", "auth.dmarc_fail"] {
        assert!(checks.contains(&check), "{check} missing from {:?}", analysis.findings);
    }
    let dkim = analysis.findings.iter().find(|finding| finding.check == "auth.dkim_fail").unwrap();
    assert!(dkim.evidence.contains("example.com (selector riposte)"), "{}", dkim.evidence);

    // A message no one signed: no DKIM result, and DMARC fails without SPF.
    let verified = verify(&auth, MESSAGE.as_bytes(), Some(&outside));
    assert_eq!(verified.dkim, Some(Vec::new()));
    assert_eq!(verified.dmarc, Some(AuthResult::Fail));
}

#[test]
fn recorded_records_are_read_in_both_formats_with_line_numbers() {
    let mut dns = RecordedDns::default();
    dns.add_text("; a comment\nsel._domainkey.example.net. 300 IN TXT ( \"v=DKIM1; \"\n  \"p=AAAA\" )\n'_dmarc.example.net:v=DMARC1\\073 p=none:3600::\n")
        .unwrap();
    // Parentheses and semicolons inside the data are data; `\DDD` is a byte.
    dns.add_text("a.example.net. TXT ( \"v=spf1 (note) ; \\\" -all\\032x\"\n  )\n").unwrap();
    let error = dns.add_text("example.net. IN MX 10 mail.example.net.\n").unwrap_err();
    assert_eq!(error.0, 1);
    assert!(error.1.contains("only TXT"), "{}", error.1);
    let error = dns.add_text("\n\nexample.net. TXT (\"v=spf1 -all\"\n").unwrap_err();
    assert_eq!(error, (3, "the record's parenthesis is never closed".to_owned()));
}

/// The list `lists.example` as a forwarder does it: it verifies what it
/// received from `client_ip` (DKIM, SPF, DMARC, against `dns`), changes the
/// message (a subject tag, a footer), which breaks the sender's DKIM
/// signature, and seals it with ARC, recording what it verified.
fn forward_through_list(list_key: &[u8], dns: &RecordedDns, received: &str, client_ip: &str) -> String {
    use mail_auth::arc::ArcSealer;
    use mail_auth::dmarc::verify::DmarcParameters;
    use mail_auth::spf::verify::SpfParameters;
    use mail_auth::{AuthenticatedMessage, AuthenticationResults, MessageAuthenticator, Parameters};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // No DNS server: every answer comes from the recorded records.
    let authenticator = MessageAuthenticator::new(
        mail_auth::hickory_resolver::config::ResolverConfig::from_parts(None, vec![], vec![]),
        Default::default(),
    )
    .unwrap();
    let ip: IpAddr = client_ip.parse().unwrap();
    let arrived = AuthenticatedMessage::parse(received.as_bytes()).unwrap();
    let results = runtime.block_on(async {
        let dkim = authenticator.verify_dkim(Parameters::new(&arrived).with_txt_cache(dns)).await;
        let spf = authenticator
            .verify_spf(
                Parameters::new(SpfParameters::verify_mail_from(
                    ip,
                    "mail.example.com",
                    "lists.example",
                    "alice@example.com",
                ))
                .with_txt_cache(dns),
            )
            .await;
        let dmarc = authenticator
            .verify_dmarc(
                Parameters::new(DmarcParameters::new(&arrived, &dkim, "example.com", &spf)).with_txt_cache(dns),
            )
            .await;
        AuthenticationResults::new("lists.example")
            .with_dkim_results(&dkim, "alice@example.com")
            .with_dmarc_result(&dmarc)
    });
    let changed = received.replace("Subject: quarterly figures", "Subject: [team] quarterly figures")
        + "-- \r\nteam mailing list\r\n";
    let message = AuthenticatedMessage::parse(changed.as_bytes()).unwrap();
    let chain = runtime.block_on(authenticator.verify_arc(&message));
    let results = results.with_arc_result(&chain, ip);
    let seal = ArcSealer::from_key(Ed25519Key::from_pkcs8_maybe_unchecked_der(list_key).unwrap())
        .domain("lists.example")
        .selector("arc")
        .headers(["From", "To", "Subject", "DKIM-Signature"])
        .seal(&message, &results, &chain)
        .unwrap();
    format!("{}{changed}", seal.to_header())
}

#[test]
fn a_trusted_forwarders_arc_seal_sets_its_breakage_aside() {
    let (sender_key, sender_record) = new_key();
    let (list_key, list_record) = new_key_der();
    let mut dns = RecordedDns::default();
    dns.insert("riposte._domainkey.example.com", sender_record.as_bytes());
    dns.insert("arc._domainkey.lists.example", list_record.as_bytes());
    dns.insert("example.com", b"v=spf1 ip4:192.0.2.0/24 -all");
    dns.insert("_dmarc.example.com", b"v=DMARC1; p=reject");
    // Alice's own server hands the signed message to the list, and a spoofer hands it one unsigned.
    let forwarded = forward_through_list(&list_key, &dns, &sign(sender_key, MESSAGE), "192.0.2.7");
    let spoof = forward_through_list(&list_key, &dns, MESSAGE, "198.51.100.9");
    let auth = MailAuth::recorded(dns).unwrap();
    // Delivered by the list's server: SPF fails, the changed message's DKIM fails, so DMARC fails.
    let from_list = Envelope {
        client_ip: "203.0.113.25".parse().unwrap(),
        helo: "mail.lists.example".into(),
        mail_from: "alice@example.com".into(),
    };
    let verified = verify(&auth, forwarded.as_bytes(), Some(&from_list));
    assert_eq!(verified.dmarc, Some(AuthResult::Fail));
    let arc = verified.arc.clone().expect("a chain");
    assert!(arc.last_results.contains("dmarc=pass"), "the list recorded what it verified: {arc:?}");
    assert_eq!((arc.result, arc.sealers.clone()), (AuthResult::Pass, vec!["lists.example".to_owned()]), "{arc:?}");
    let mail = riposte_mail::parse(forwarded.as_bytes(), &riposte_mail::Limits::default()).unwrap();
    let judge = |trusted: &[&str], verified: Verified| {
        let settings = riposte_mail::Settings {
            verified,
            trusted_arc_sealers: trusted.iter().map(|domain| (*domain).to_owned()).collect(),
            ..Default::default()
        };
        riposte_mail::analyze(&mail, &settings)
    };
    let checks = |analysis: &riposte_mail::Analysis| -> Vec<&'static str> {
        analysis.findings.iter().map(|finding| finding.check).collect()
    };
    // Not trusted: the failures count.
    let untrusted = judge(&[], verified.clone());
    assert!(checks(&untrusted).contains(&"auth.dmarc_fail"), "{untrusted:#?}");
    // Trusted: they are set aside, and a finding says which and why.
    let trusted = judge(&["lists.example"], verified.clone());
    assert!(!checks(&trusted).iter().any(|check| check.ends_with("_fail")), "{trusted:#?}");
    let vouched = trusted.findings.iter().find(|finding| finding.check == "auth.arc_vouched").unwrap();
    assert!(vouched.evidence.contains("auth.dmarc_fail") && vouched.evidence.contains("lists.example"), "{vouched:?}");
    assert!(trusted.score < untrusted.score);

    // Changed after the seal: the chain breaks, nothing is set aside, and that is a finding.
    let tampered = forwarded.replace("The figures are in", "The new bank details are in");
    let verified = verify(&auth, tampered.as_bytes(), Some(&from_list));
    assert_eq!(verified.arc.as_ref().map(|arc| arc.result), Some(AuthResult::Fail), "{verified:?}");
    let analysis = judge(&["lists.example"], verified);
    for check in ["auth.arc_fail", "auth.dmarc_fail"] {
        assert!(checks(&analysis).contains(&check), "{check}: {analysis:#?}");
    }
    // A spoof relayed by the same trusted list: the list did not record DMARC
    // passing on arrival, so its seal vouches for nothing and the failure stands.
    let verified = verify(&auth, spoof.as_bytes(), Some(&from_list));
    assert_eq!(verified.arc.as_ref().map(|arc| arc.result), Some(AuthResult::Pass), "{verified:?}");
    assert!(!verified.arc.as_ref().unwrap().last_results.contains("dmarc=pass"), "{verified:?}");
    let mail = riposte_mail::parse(spoof.as_bytes(), &riposte_mail::Limits::default()).unwrap();
    let settings =
        riposte_mail::Settings { verified, trusted_arc_sealers: vec!["lists.example".into()], ..Default::default() };
    let analysis = riposte_mail::analyze(&mail, &settings);
    assert!(
        checks(&analysis).contains(&"auth.dmarc_fail") && !checks(&analysis).contains(&"auth.arc_vouched"),
        "{analysis:#?}"
    );
    // A message with no chain has no ARC result.
    assert_eq!(verify(&auth, MESSAGE.as_bytes(), Some(&from_list)).arc, None);
}
