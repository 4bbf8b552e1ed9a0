//! The IMAP mailbox against a real server: Debian's dovecot, started by the
//! test on loopback with a certificate made for it (skipped with a message
//! where dovecot is not installed; `.ci/run` installs it).

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use riposte_server::imap::{ImapConfig, Mailbox};

const DOVECOT: &str = "/usr/sbin/dovecot";
/// The unprivileged user the mail belongs to (dovecot refuses root).
const MAIL_UID: u32 = 65534;

struct Dovecot {
    child: Child,
    port: u16,
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_dovecot(dir: &Path) -> Dovecot {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.join("cert.pem"), certified.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem()).unwrap();
    let d = dir.display();
    let config = format!(
        "base_dir = {d}/run\n\
         state_dir = {d}/state\n\
         log_path = {d}/dovecot.log\n\
         protocols = imap\n\
         listen = 127.0.0.1\n\
         ssl = required\n\
         ssl_cert = <{d}/cert.pem\n\
         ssl_key = <{d}/key.pem\n\
         disable_plaintext_auth = no\n\
         auth_mechanisms = plain login\n\
         mail_location = maildir:{d}/mail/%u\n\
         first_valid_uid = {MAIL_UID}\n\
         passdb {{\n  driver = static\n  args = password=correct-horse\n}}\n\
         userdb {{\n  driver = static\n  args = uid={MAIL_UID} gid={MAIL_UID} home={d}/home/%u\n}}\n\
         service imap-login {{\n  inet_listener imap {{\n    port = 0\n  }}\n  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {port}\n    ssl = yes\n  }}\n}}\n\
         service stats {{\n  unix_listener stats-reader {{\n    mode = 0666\n  }}\n  unix_listener stats-writer {{\n    mode = 0666\n  }}\n}}\n"
    );
    std::fs::write(dir.join("dovecot.conf"), config).unwrap();
    let child = Command::new(DOVECOT).arg("-F").arg("-c").arg(dir.join("dovecot.conf")).spawn().unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "dovecot did not listen: {}",
            std::fs::read_to_string(dir.join("dovecot.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Dovecot { child, port }
}

/// Delivers a message the way a local delivery agent does: a file in the
/// user's Maildir `new/`.
fn deliver(dir: &Path, name: &str, message: &str) {
    let new = dir.join("mail/bob/new");
    for folder in ["mail", "mail/bob", "mail/bob/new", "mail/bob/cur", "mail/bob/tmp"] {
        let path = dir.join(folder);
        std::fs::create_dir_all(&path).unwrap();
        std::os::unix::fs::chown(&path, Some(MAIL_UID), Some(MAIL_UID)).unwrap();
    }
    let file = new.join(format!("{name}.riposte-test"));
    std::fs::write(&file, message).unwrap();
    std::os::unix::fs::chown(&file, Some(MAIL_UID), Some(MAIL_UID)).unwrap();
}

const PHISH: &str = "From: \"PayPal\" <service@paypa1.com>\r\nTo: bob@riposte-corp.com\r\nSubject: Your account has been suspended\r\nMessage-ID: <phish-1@paypa1.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n<p>Verify your account now: <a href=\"http://203.0.113.9/x\">https://www.paypal.com</a></p>\r\n";
const LUNCH: &str = "From: Alice <alice@example.org>\r\nTo: bob@riposte-corp.com\r\nSubject: Lunch on Thursday?\r\nMessage-ID: <lunch-1@example.org>\r\n\r\nShall we try the new place on Thursday?\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phishing_is_moved_to_the_quarantine_folder_and_released_back() {
    if !Path::new(DOVECOT).exists() {
        eprintln!("SKIPPED phishing_is_moved_to_the_quarantine_folder_and_released_back: {DOVECOT} is not installed");
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    // The mail processes run as an unprivileged user: let it in.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dovecot = start_dovecot(dir.path());
    deliver(dir.path(), "1", PHISH);
    deliver(dir.path(), "2", LUNCH);
    let config = ImapConfig {
        address: format!("localhost:{}", dovecot.port),
        tls: true,
        ca_file: Some(dir.path().join("cert.pem")),
        user: "bob".into(),
        password: "correct-horse".into(),
        folder: "INBOX".into(),
        quarantine_folder: "Quarantine".into(),
    };
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
    assert_eq!(mailbox.unchecked().await.unwrap().len(), 1);
    // IDLE returns when a message arrives.
    let waiting = tokio::spawn(mailbox.wait(Duration::from_secs(20)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    deliver(dir.path(), "3", LUNCH);
    let mut mailbox = waiting.await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(15), "IDLE woke on the new message");
    assert_eq!(mailbox.unchecked().await.unwrap().len(), 2);
    mailbox.logout().await.unwrap();
}
