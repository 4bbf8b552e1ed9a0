//! The IMAP mailbox and `riposte email imap` against a real server (see
//! `common::dovecot`).

use std::time::{Duration, Instant};

use riposte_server::imap::{ImapConfig, Mailbox};

use crate::common::dovecot;

const PHISH: &str = "From: \"PayPal\" <service@paypa1.com>\r\nTo: bob@riposte-corp.com\r\nSubject: Your account has been suspended\r\nMessage-ID: <phish-1@paypa1.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n<p>Verify your account now: <a href=\"http://203.0.113.9/x\">https://www.paypal.com</a></p>\r\n";
const LUNCH: &str = "From: Alice <alice@example.org>\r\nTo: bob@riposte-corp.com\r\nSubject: Lunch on Thursday?\r\nMessage-ID: <lunch-1@example.org>\r\n\r\nShall we try the new place on Thursday?\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phishing_is_moved_to_the_quarantine_folder_and_released_back() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let Some(dovecot) = dovecot::start(dir.path(), "phishing_is_moved_to_the_quarantine_folder_and_released_back")
    else {
        return;
    };
    dovecot::deliver(dir.path(), "1", PHISH);
    dovecot::deliver(dir.path(), "2", LUNCH);
    let config = dovecot::bob(&dovecot, dir.path());
    let wrong = ImapConfig { password: "wrong".into(), ..config.clone() };
    let refused = Mailbox::connect(&wrong).await.err().expect("a wrong password is refused");
    assert!(!refused.to_string().contains("wrong"), "the password is not repeated: {refused}");
    // A certificate nobody vouches for is refused.
    let untrusted = ImapConfig { ca_file: None, ..config.clone() };
    assert!(Mailbox::connect(&untrusted).await.is_err());

    let mut mailbox = Mailbox::connect(&config).await.unwrap();
    let unchecked = mailbox.unchecked().await.unwrap();
    assert_eq!(unchecked.len(), 2);
    let mut held = Vec::new();
    for message in &unchecked {
        let mail = riposte_mail::parse(&message.raw, &riposte_mail::Limits::default()).unwrap();
        let analysis = riposte_mail::analyze(&mail, &riposte_mail::Settings::default());
        if analysis.verdict >= riposte_mail::Verdict::Phishing {
            mailbox.quarantine(message.uid).await.unwrap();
            held.push(mail.message_id.clone());
        }
    }
    assert_eq!(held, vec!["phish-1@paypa1.com".to_owned()]);
    // Reading left the other message unread; the held one is out of the inbox.
    let left = mailbox.unchecked().await.unwrap();
    assert_eq!(left.len(), 1);
    assert!(String::from_utf8_lossy(&left[0].raw).contains("Lunch on Thursday"));
    // Once marked checked, it is not judged again.
    mailbox.mark_checked(left[0].uid).await.unwrap();
    assert_eq!(mailbox.unchecked().await.unwrap().len(), 0);
    // An analyst releases the held one: back in the inbox, unread.
    assert!(mailbox.release("phish-1@paypa1.com").await.unwrap());
    assert!(!mailbox.release("phish-1@paypa1.com").await.unwrap(), "nothing left to release");
    // A Message-ID is the sender's text: a line break in it is no command.
    assert!(!mailbox.release("x\")\r\nA1 DELETE INBOX\r\nA2 NOOP (\"").await.unwrap());
    assert_eq!(mailbox.unchecked().await.unwrap().len(), 1);
    // IDLE returns when a message arrives.
    let waiting = tokio::spawn(mailbox.wait(Duration::from_secs(20)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    dovecot::deliver(dir.path(), "3", LUNCH);
    let mut mailbox = waiting.await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(15), "IDLE woke on the new message");
    assert_eq!(mailbox.unchecked().await.unwrap().len(), 2);
    mailbox.logout().await.unwrap();
}

#[test]
fn email_imap_moves_phishing_and_releases_it_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let Some(dovecot) = dovecot::start(dir.path(), "email_imap_moves_phishing_and_releases_it_from_the_command_line")
    else {
        return;
    };
    dovecot::deliver(dir.path(), "1", PHISH);
    dovecot::deliver(dir.path(), "2", LUNCH);
    let imap = |extra: &[&str]| {
        let mut command = assert_cmd::Command::cargo_bin("riposte").unwrap();
        command
            .args(["email", "imap", "--address", &format!("localhost:{}", dovecot.port), "--user", "bob"])
            .arg("--ca-file")
            .arg(dir.path().join("cert.pem"))
            .args(extra)
            .env("RIPOSTE_IMAP_PASSWORD", "correct-horse");
        command.output().unwrap()
    };
    let output = imap(&["--format", "jsonl"]);
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert_eq!(output.status.code(), Some(1), "{text}{}", String::from_utf8_lossy(&output.stderr));
    let verdicts: Vec<String> = text
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["verdict"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(verdicts, vec!["phishing", "clean"], "{text}");
    assert!(text.contains("moved to Quarantine"), "{text}");
    // Judged once: a second run finds nothing new.
    let again = imap(&[]);
    assert_eq!(again.status.code(), Some(0), "{}", String::from_utf8_lossy(&again.stdout));
    assert!(again.stdout.is_empty(), "{}", String::from_utf8_lossy(&again.stdout));
    // Released, it is back in the inbox, and stays judged.
    let released = imap(&["--release", "<phish-1@paypa1.com>"]);
    assert_eq!(released.status.code(), Some(0), "{}", String::from_utf8_lossy(&released.stderr));
    assert!(String::from_utf8_lossy(&released.stdout).contains("moved back to INBOX"));
    assert_eq!(imap(&[]).status.code(), Some(0));
    assert_eq!(imap(&["--release", "phish-1@paypa1.com"]).status.code(), Some(3), "nothing left to release");
    // Without the password there is a clear error, and no attempt.
    let mut command = assert_cmd::Command::cargo_bin("riposte").unwrap();
    let output = command
        .args(["email", "imap", "--address", "localhost:1", "--user", "bob", "--password-env", "RIPOSTE_TEST_UNSET"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("RIPOSTE_TEST_UNSET"), "{output:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_watches_a_mailbox_and_a_release_moves_the_message_back() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let Some(dovecot) = dovecot::start(dir.path(), "serve_watches_a_mailbox_and_a_release_moves_the_message_back")
    else {
        return;
    };
    dovecot::deliver(dir.path(), "1", PHISH);
    dovecot::deliver(dir.path(), "2", LUNCH);
    let config = dir.path().join("riposte.yml");
    std::fs::write(
        &config,
        format!(
            // No HTTP port to collide with another test's: the test reads the store.
            "data_dir: {data}\nhttp: {{listen: '127.0.0.1:0'}}\nsources: []\n\
             email:\n  imap:\n    address: 'localhost:{imap}'\n    ca_file: {ca}\n    user: bob\n    password: correct-horse\n",
            data = dir.path().join("data").display(),
            imap = dovecot.port,
            ca = dir.path().join("cert.pem").display(),
        ),
    )
    .unwrap();
    let mut serving = std::process::Command::new(env!("CARGO_BIN_EXE_riposte"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("serve.log")).unwrap())
        .spawn()
        .unwrap();
    // Serving (its store made) before anything else opens the store.
    let started = Instant::now();
    while !std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default().contains("riposte is serving") {
        assert!(started.elapsed() < Duration::from_secs(30), "serve did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let riposte = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_riposte"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap()
    };
    // The phish is held in the store as soon as the watcher has judged it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let held = loop {
        let listed = riposte(&["email", "quarantine", "list", "--json"]);
        let text = String::from_utf8_lossy(&listed.stdout).to_string();
        if let Some(line) = text.lines().next() {
            break serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "nothing was held: {}\nserve: {}\ndovecot: {}",
            String::from_utf8_lossy(&listed.stderr),
            std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default(),
            std::fs::read_to_string(dir.path().join("dovecot.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!((held["sender"].as_str(), held["status"].as_str()), (Some("service@paypa1.com"), Some("held")));
    assert_eq!(held["origin"], format!("imap://localhost:{}/INBOX", dovecot.port), "{held}");
    // In the mailbox: moved to the quarantine folder; the other one judged and left.
    let config_imap = dovecot::bob(&dovecot, dir.path());
    let mut mailbox = Mailbox::connect(&config_imap).await.unwrap();
    assert_eq!(mailbox.find("Quarantine", "phish-1@paypa1.com").await.unwrap().len(), 1);
    assert_eq!(mailbox.find("INBOX", "phish-1@paypa1.com").await.unwrap().len(), 0);
    assert_eq!(mailbox.find("INBOX", "lunch-1@example.org").await.unwrap().len(), 1);
    // An analyst releases it: back in the inbox, the record says so, audited.
    let id = held["id"].as_i64().unwrap().to_string();
    let released = riposte(&["email", "quarantine", "release", &id]);
    assert!(released.status.success(), "{}", String::from_utf8_lossy(&released.stderr));
    assert_eq!(mailbox.find("INBOX", "phish-1@paypa1.com").await.unwrap().len(), 1);
    assert_eq!(mailbox.find("Quarantine", "phish-1@paypa1.com").await.unwrap().len(), 0);
    // It stays judged: the watcher does not hold it again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let listed = riposte(&["email", "quarantine", "list", "--json"]);
    assert_eq!(String::from_utf8_lossy(&listed.stdout).lines().count(), 1);
    mailbox.logout().await.unwrap();
    let _ = serving.kill();
    let _ = serving.wait();
}
