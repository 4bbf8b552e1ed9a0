//! A dovecot IMAP server started for a test on loopback, with a
//! certificate made for it; `None` (after saying SKIPPED) where dovecot is
//! not installed (`.ci/run` installs it).

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const DOVECOT: &str = "/usr/sbin/dovecot";
/// The unprivileged user the mail belongs to (dovecot refuses root).
const MAIL_UID: u32 = 65534;

pub struct Dovecot {
    child: Child,
    pub port: u16,
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts dovecot with its files in `dir` (user `bob`, password
/// `correct-horse`, its certificate in `dir/cert.pem`).
pub fn start(dir: &Path, test: &str) -> Option<Dovecot> {
    if !Path::new(DOVECOT).exists() {
        eprintln!("SKIPPED {test}: {DOVECOT} is not installed");
        return None;
    }
    // The mail processes run as an unprivileged user: let it in.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
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
    Some(Dovecot { child, port })
}

/// Delivers a message the way a local delivery agent does: a file in the
/// user's Maildir `new/`.
pub fn deliver(dir: &Path, name: &str, message: &str) {
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

/// How the tests' user reaches its mailbox on `dovecot` (TLS checked
/// against the certificate made for it in `dir`).
pub fn bob(dovecot: &Dovecot, dir: &Path) -> riposte_server::imap::ImapConfig {
    riposte_server::imap::ImapConfig {
        address: format!("localhost:{}", dovecot.port),
        tls: true,
        ca_file: Some(dir.join("cert.pem")),
        user: "bob".into(),
        password: "correct-horse".into(),
        folder: "INBOX".into(),
        quarantine_folder: "Quarantine".into(),
    }
}
