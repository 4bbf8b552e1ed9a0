//! E-mail out over SMTP (`lettre`): STARTTLS by default, TLS on connect or
//! plain text on a trusted network. The server's name is resolved once and
//! checked like any other target (no internal address unless allowed), and
//! the connection goes to the address that was checked, with the name kept
//! for the TLS certificate.

use std::net::IpAddr;
use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use riposte_playbook::{ActError, ActionSpec, InputSpec, InputType, parse_duration};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::secret::{Secret, SecretValue};
use crate::{text, unknown_action};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text upgraded with STARTTLS (port 587), required.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS: only for a relay on a network you trust.
    None,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// The sender (`Riposte <soc@corp.example>`).
    pub from: String,
    #[serde(default)]
    pub allow_private: bool,
    #[serde(default)]
    pub timeout: Option<String>,
}

pub struct Smtp {
    name: String,
    config: SmtpConfig,
    from: Mailbox,
    password: Option<SecretValue>,
    timeout: Duration,
}

pub fn specs(spec: impl Fn(&str, &str, bool, Vec<InputSpec>, Option<&str>) -> ActionSpec) -> Vec<ActionSpec> {
    vec![spec(
        "send",
        "Send an e-mail",
        true,
        vec![
            InputSpec::required("to", InputType::Any, "an address, or a list of them"),
            InputSpec::required("subject", InputType::String, ""),
            InputSpec::required("body", InputType::String, "plain text"),
            InputSpec::optional("cc", InputType::Any, "an address, or a list of them"),
        ],
        None,
    )]
}

impl Smtp {
    pub fn new(name: &str, config: &SmtpConfig, vault: Option<&crate::vault::Vault>) -> Result<Smtp, String> {
        let from = config.from.parse().map_err(|error| format!("connector {name}: from {:?}: {error}", config.from))?;
        let password = match &config.password {
            Some(secret) => Some(secret.read(vault).map_err(|reason| format!("connector {name}: {reason}"))?),
            None => None,
        };
        let timeout = match &config.timeout {
            Some(text) => {
                parse_duration(text).ok_or_else(|| format!("connector {name}: timeout {text:?} is not a duration"))?
            }
            None => Duration::from_secs(30),
        };
        Ok(Smtp { name: name.to_owned(), config: config.clone(), from, password, timeout })
    }

    pub async fn act(&self, action: &str, inputs: &Value) -> Result<Value, ActError> {
        if action != "send" {
            return Err(unknown_action(&self.name, action));
        }
        let name = &self.name;
        let mut builder = Message::builder().from(self.from.clone()).subject(text(inputs, "subject")?);
        let to = addresses(inputs.get("to"), "to")?;
        if to.is_empty() {
            return Err(ActError::permanent("to names no address"));
        }
        for address in &to {
            builder = builder.to(address.clone());
        }
        for address in addresses(inputs.get("cc"), "cc")? {
            builder = builder.cc(address);
        }
        let message = builder
            .header(ContentType::TEXT_PLAIN)
            .body(text(inputs, "body")?.to_owned())
            .map_err(|error| ActError::permanent(format!("{name}: {error}")))?;

        let port = self.config.port.unwrap_or(match self.config.tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        });
        let address = self.resolve(port).await?;
        let tls = match self.config.tls {
            SmtpTls::None => Tls::None,
            kind => {
                let _ = rustls::crypto::ring::default_provider().install_default();
                let parameters = TlsParameters::new(self.config.host.clone())
                    .map_err(|error| ActError::permanent(format!("{name}: TLS: {error}")))?;
                if kind == SmtpTls::Tls { Tls::Wrapper(parameters) } else { Tls::Required(parameters) }
            }
        };
        let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(address.to_string())
            .port(port)
            .tls(tls)
            .timeout(Some(self.timeout))
            .hello_name(ClientId::Domain("riposte".into()));
        if let (Some(user), Some(password)) = (&self.config.user, &self.password) {
            transport = transport.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        let answer = transport.build().send(message).await.map_err(|error| {
            let message = format!("{name}: {error}");
            if error.is_permanent() { ActError::permanent(message) } else { ActError::retryable(message) }
        })?;
        Ok(json!({
            "sent": true,
            "to": to.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "reply": answer.message().collect::<Vec<_>>().join(" "),
        }))
    }

    /// The server's address, checked against the policy on internal ones.
    async fn resolve(&self, port: u16) -> Result<IpAddr, ActError> {
        let name = &self.name;
        let found: Vec<std::net::SocketAddr> = tokio::net::lookup_host((self.config.host.as_str(), port))
            .await
            .map_err(|error| ActError::retryable(format!("{name}: cannot resolve {}: {error}", self.config.host)))?
            .collect();
        let address = found
            .first()
            .map(|found| found.ip())
            .ok_or_else(|| ActError::retryable(format!("{name}: {} has no address", self.config.host)))?;
        if !self.config.allow_private
            && let Some(internal) = found.iter().find(|found| riposte_intel::normalize::is_internal(found.ip()))
        {
            return Err(ActError::permanent(format!(
                "{name}: {} is an internal address, and the connector does not allow_private",
                internal.ip()
            )));
        }
        Ok(address)
    }
}

/// One address or a list of them.
fn addresses(value: Option<&Value>, name: &str) -> Result<Vec<Mailbox>, ActError> {
    let texts: Vec<&str> = match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => vec![text.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(_) => return Err(ActError::permanent(format!("{name} is an address or a list of addresses"))),
    };
    texts
        .into_iter()
        .map(|text| text.trim().parse().map_err(|error| ActError::permanent(format!("{name} {text:?}: {error}"))))
        .collect()
}
