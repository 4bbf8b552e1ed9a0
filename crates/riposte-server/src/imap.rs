//! An IMAP mailbox as a source of messages and the place they are held:
//! unseen messages are read without marking them seen, a message judged
//! phishing is moved to a quarantine folder, and releasing it moves it back.
//! IDLE is used to wait for new mail where the server offers it.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_imap::Session;
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot connect to {address}: {reason}")]
    Connect { address: String, reason: String },
    #[error("IMAP login as {user} refused: {reason}")]
    Login { user: String, reason: String },
    #[error("IMAP {command}: {reason}")]
    Command { command: &'static str, reason: String },
    #[error("cannot read the CA file {path}: {reason}")]
    Ca { path: String, reason: String },
}

/// Where the mailbox is and how to reach it. The password is never logged.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapConfig {
    /// `host:port`.
    pub address: String,
    /// TLS from the first byte (IMAPS); the server's certificate is checked
    /// against `ca_file`, or the public web roots without one.
    #[serde(default = "yes")]
    pub tls: bool,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    pub user: String,
    pub password: String,
    #[serde(default = "inbox")]
    pub folder: String,
    #[serde(default = "quarantine_folder")]
    pub quarantine_folder: String,
}

impl ImapConfig {
    /// Where a message taken from this mailbox came from, as a held
    /// message records it: `imap://HOST:PORT/FOLDER`.
    pub fn origin(&self) -> String {
        format!("imap://{}/{}", self.address, self.folder)
    }
}

impl fmt::Debug for ImapConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ImapConfig")
            .field("address", &self.address)
            .field("tls", &self.tls)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("folder", &self.folder)
            .field("quarantine_folder", &self.quarantine_folder)
            .finish()
    }
}

fn yes() -> bool {
    true
}

fn inbox() -> String {
    "INBOX".into()
}

fn quarantine_folder() -> String {
    "Quarantine".into()
}

/// The keyword of messages Riposte has judged.
pub const CHECKED: &str = "$RiposteChecked";

/// A stream IMAP can run over: TCP, or TLS over TCP.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> Stream for T {}

/// A logged-in mailbox.
pub struct Mailbox {
    session: Session<Box<dyn Stream>>,
    config: ImapConfig,
    /// Whether the server offers IDLE (asked once, after login).
    idle: bool,
}

/// A message read from the mailbox: its UID in the folder and its bytes.
pub struct Fetched {
    pub uid: u32,
    pub raw: Vec<u8>,
}

fn command(name: &'static str) -> impl FnOnce(async_imap::error::Error) -> ImapError {
    move |error| ImapError::Command { command: name, reason: error.to_string() }
}

impl Mailbox {
    pub async fn connect(config: &ImapConfig) -> Result<Mailbox, ImapError> {
        let connect_error = |reason: String| ImapError::Connect { address: config.address.clone(), reason };
        let tcp = tokio::time::timeout(Duration::from_secs(15), TcpStream::connect(&config.address))
            .await
            .map_err(|_| connect_error("timed out".into()))?
            .map_err(|error| connect_error(error.to_string()))?;
        let stream: Box<dyn Stream> = if config.tls {
            let host = config.address.rsplit_once(':').map_or(config.address.as_str(), |(host, _)| host);
            let name = rustls::pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
                .map_err(|error| connect_error(error.to_string()))?;
            let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(config)?));
            Box::new(connector.connect(name, tcp).await.map_err(|error| connect_error(format!("TLS: {error}")))?)
        } else {
            Box::new(tcp)
        };
        let mut client = async_imap::Client::new(stream);
        // The server's greeting comes first.
        client
            .read_response()
            .await
            .map_err(|error| connect_error(error.to_string()))?
            .ok_or_else(|| connect_error("closed before its greeting".into()))?;
        let mut session = client
            .login(&config.user, &config.password)
            .await
            .map_err(|(error, _)| ImapError::Login { user: config.user.clone(), reason: error.to_string() })?;
        let idle = session.capabilities().await.map_err(command("CAPABILITY"))?.has_str("IDLE");
        Ok(Mailbox { session, config: config.clone(), idle })
    }

    /// Messages of the watched folder that no one has read and Riposte has
    /// not checked, left unread (`BODY.PEEK`).
    pub async fn unchecked(&mut self) -> Result<Vec<Fetched>, ImapError> {
        self.session.select(&self.config.folder).await.map_err(command("SELECT"))?;
        let uids =
            self.session.uid_search(format!("UNSEEN UNKEYWORD {CHECKED}")).await.map_err(command("UID SEARCH"))?;
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sorted: Vec<u32> = uids.into_iter().collect();
        sorted.sort_unstable();
        let set: Vec<String> = sorted.iter().map(u32::to_string).collect();
        let mut fetched = Vec::new();
        let mut stream = self.session.uid_fetch(set.join(","), "BODY.PEEK[]").await.map_err(command("UID FETCH"))?;
        while let Some(item) = stream.next().await {
            let item = item.map_err(command("UID FETCH"))?;
            if let (Some(uid), Some(body)) = (item.uid, item.body()) {
                fetched.push(Fetched { uid, raw: body.to_vec() });
            }
        }
        Ok(fetched)
    }

    /// Marks a message of the watched folder as checked (an IMAP keyword,
    /// so that a restart or another poll does not judge it again; it goes
    /// with the message when moved, so a released message stays judged).
    pub async fn mark_checked(&mut self, uid: u32) -> Result<(), ImapError> {
        self.session.select(&self.config.folder).await.map_err(command("SELECT"))?;
        let updates = self
            .session
            .uid_store(uid.to_string(), format!("+FLAGS.SILENT ({CHECKED})"))
            .await
            .map_err(command("UID STORE"))?;
        let _: Vec<_> = updates.collect().await;
        Ok(())
    }

    /// Moves a message of the watched folder to the quarantine folder
    /// (created when missing).
    pub async fn quarantine(&mut self, uid: u32) -> Result<(), ImapError> {
        // CREATE fails when the folder exists, which is what is wanted.
        let _ = self.session.create(&self.config.quarantine_folder).await;
        self.session.select(&self.config.folder).await.map_err(command("SELECT"))?;
        self.session.uid_mv(uid.to_string(), &self.config.quarantine_folder).await.map_err(command("UID MOVE"))
    }

    /// Moves the held message with this `Message-ID` back to the watched
    /// folder; false when the quarantine folder has no such message.
    pub async fn release(&mut self, message_id: &str) -> Result<bool, ImapError> {
        let folder = self.config.quarantine_folder.clone();
        let uids = self.find(&folder, message_id).await?;
        if uids.is_empty() {
            return Ok(false);
        }
        let set: Vec<String> = uids.iter().map(u32::to_string).collect();
        self.session.uid_mv(set.join(","), &self.config.folder).await.map_err(command("UID MOVE"))?;
        Ok(true)
    }

    /// The UIDs of the messages in `folder` with this `Message-ID` (the
    /// folder stays selected).
    pub async fn find(&mut self, folder: &str, message_id: &str) -> Result<Vec<u32>, ImapError> {
        self.session.select(folder).await.map_err(command("SELECT"))?;
        // The ID comes from the message's sender: only printable ASCII goes
        // into a quoted string (a line break there would end the command).
        if message_id.is_empty() || !message_id.bytes().all(|byte| (b' '..=b'~').contains(&byte)) {
            return Ok(Vec::new());
        }
        // HEADER matches a substring: the brackets keep `1@x` from `11@x`.
        let quoted = message_id.replace('\\', "\\\\").replace('"', "\\\"");
        let uids = self
            .session
            .uid_search(format!("HEADER Message-ID \"<{quoted}>\""))
            .await
            .map_err(command("UID SEARCH"))?;
        let mut uids: Vec<u32> = uids.into_iter().collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// Waits for news in the watched folder: with IDLE where the server
    /// offers it (at most `longest`), otherwise for `longest`.
    pub async fn wait(self, longest: Duration) -> Result<Mailbox, ImapError> {
        let Mailbox { mut session, config, idle } = self;
        if !idle {
            tokio::time::sleep(longest).await;
            return Ok(Mailbox { session, config, idle });
        }
        session.select(&config.folder).await.map_err(command("SELECT"))?;
        let mut handle = session.idle();
        handle.init().await.map_err(command("IDLE"))?;
        let (waiting, _stop) = handle.wait_with_timeout(longest);
        waiting.await.map_err(command("IDLE"))?;
        let session = handle.done().await.map_err(command("DONE"))?;
        Ok(Mailbox { session, config, idle })
    }

    pub async fn logout(mut self) -> Result<(), ImapError> {
        self.session.logout().await.map_err(command("LOGOUT"))
    }
}

/// How long one wait for mail lasts before the mailbox is looked at anyway.
const LONGEST_WAIT: Duration = Duration::from_secs(60);

/// `serve`'s mailbox watcher: judges each new message as the API would
/// (the sender's history, indicators, verification), holds phishing in the
/// store and moves it to the quarantine folder, marks every judged message,
/// then waits for more. A lost connection is retried, backing off to a
/// minute; `stopped` ends it.
pub async fn keep_watching(
    config: ImapConfig,
    desk: crate::api::AppState,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_secs(1);
    while !*stopped.borrow() {
        let watching = watch_once(&config, &desk, &mut backoff);
        let error = tokio::select! {
            error = watching => error,
            _ = stopped.changed() => return,
        };
        tracing::warn!(%error, address = %config.address, "mailbox");
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stopped.changed() => return,
        }
        backoff = (backoff * 2).min(LONGEST_WAIT);
    }
}

/// One connection: judge what is new, wait, again, until an error (a
/// connection made starts the backoff afresh).
async fn watch_once(config: &ImapConfig, desk: &crate::api::AppState, backoff: &mut Duration) -> ImapError {
    match watching(config, desk, backoff).await {
        Ok(never) => match never {},
        Err(error) => error,
    }
}

async fn watching(
    config: &ImapConfig,
    desk: &crate::api::AppState,
    backoff: &mut Duration,
) -> Result<std::convert::Infallible, ImapError> {
    let mut mailbox = Mailbox::connect(config).await?;
    *backoff = Duration::from_secs(1);
    loop {
        for message in mailbox.unchecked().await? {
            judge_one(&mut mailbox, desk, message).await?;
        }
        mailbox = mailbox.wait(LONGEST_WAIT).await?;
    }
}

async fn judge_one(mailbox: &mut Mailbox, desk: &crate::api::AppState, message: Fetched) -> Result<(), ImapError> {
    let held = |error: String| ImapError::Command { command: "hold", reason: error };
    let Some(mail) = riposte_mail::parse(&message.raw, &riposte_mail::Limits::default()) else {
        return mailbox.mark_checked(message.uid).await;
    };
    let now = crate::pipeline::now_ms();
    let (analysis, _) = crate::quarantine::judge(desk, &message.raw, &mail, None, now)
        .await
        .map_err(|error| held(error.to_string()))?;
    if analysis.verdict < riposte_mail::Verdict::Phishing {
        return mailbox.mark_checked(message.uid).await;
    }
    let actor = format!("imap:{}@{}", mailbox.config.user, mailbox.config.address);
    crate::quarantine::hold(desk, &message.raw, &mail, &analysis, now, &actor, &mailbox.config.origin())
        .await
        .map_err(|error| held(error.to_string()))?;
    // Held first (a failure leaves it to be judged again), marked before
    // it moves (a released message stays judged), then moved.
    mailbox.mark_checked(message.uid).await?;
    mailbox.quarantine(message.uid).await?;
    tracing::info!(uid = message.uid, verdict = analysis.verdict.as_str(), "mailbox message held");
    Ok(())
}

fn tls_config(config: &ImapConfig) -> Result<rustls::ClientConfig, ImapError> {
    let mut roots = rustls::RootCertStore::empty();
    match &config.ca_file {
        Some(path) => {
            use rustls::pki_types::pem::PemObject;
            let ca_error = |reason: String| ImapError::Ca { path: path.display().to_string(), reason };
            for certificate in
                rustls::pki_types::CertificateDer::pem_file_iter(path).map_err(|error| ca_error(error.to_string()))?
            {
                let certificate = certificate.map_err(|error| ca_error(error.to_string()))?;
                roots.add(certificate).map_err(|error| ca_error(error.to_string()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| ImapError::Connect { address: config.address.clone(), reason: error.to_string() })?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
