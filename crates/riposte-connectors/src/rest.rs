//! A REST API as connectors use it: a base URL, a way to authenticate
//! (API key, bearer, basic, OAuth2 client credentials, or HMAC-signed
//! bodies), the platform's HTTP policy, and answers mapped to what a
//! playbook step needs (a JSON value, or an error that says whether another
//! attempt may help). Messages never hold a secret or the URL's path
//! (a chat webhook's path is its secret).

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use reqwest::Method;
use riposte_playbook::ActError;
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use crate::fetch::{Auth, Body, FetchError, FetchPolicy, HttpRequest, request_with};
use crate::secret::{Secret, SecretValue};

/// How requests prove who sends them.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    #[default]
    None,
    Bearer {
        token: Secret,
    },
    Basic {
        user: String,
        password: Secret,
    },
    /// A key in a header (`X-Api-Key` unless named).
    ApiKey {
        #[serde(default = "default_key_header")]
        header: String,
        key: Secret,
    },
    /// OAuth2 client credentials: a token from `token_url`, kept until it expires.
    Oauth2 {
        token_url: String,
        client_id: String,
        client_secret: Secret,
        #[serde(default)]
        scope: Option<String>,
    },
    /// The body signed with HMAC-SHA256 over `timestamp.body`, in
    /// `X-Riposte-Signature: sha256=HEX`, the timestamp in `X-Riposte-Timestamp`.
    Hmac {
        secret: Secret,
    },
}

fn default_key_header() -> String {
    "X-Api-Key".to_owned()
}

/// A REST API's settings, as configured.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestConfig {
    /// The API's base URL; action paths are joined to it.
    pub url: Secret,
    #[serde(default)]
    pub auth: AuthConfig,
    /// Allow loopback and private addresses (a tool on the internal network).
    #[serde(default)]
    pub allow_private: bool,
    /// Longest a request may take (`30s` unless given).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Headers sent with every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

enum ReadyAuth {
    None,
    Bearer(SecretValue),
    Basic(String, SecretValue),
    Header(String, SecretValue),
    Oauth2 {
        token_url: String,
        client_id: String,
        client_secret: SecretValue,
        scope: Option<String>,
        token: tokio::sync::Mutex<Option<(SecretValue, Instant)>>,
    },
    Hmac(SecretValue),
}

/// A configured REST API, secrets read.
pub struct Rest {
    /// The connector's name, for messages.
    pub name: String,
    base: SecretValue,
    auth: ReadyAuth,
    pub policy: FetchPolicy,
    headers: Vec<(String, String)>,
}

impl Rest {
    pub fn new(name: &str, config: &RestConfig, vault: Option<&crate::vault::Vault>) -> Result<Rest, String> {
        let read = |secret: &Secret| secret.read(vault).map_err(|reason| format!("connector {name}: {reason}"));
        let auth = match &config.auth {
            AuthConfig::None => ReadyAuth::None,
            AuthConfig::Bearer { token } => ReadyAuth::Bearer(read(token)?),
            AuthConfig::Basic { user, password } => ReadyAuth::Basic(user.clone(), read(password)?),
            AuthConfig::ApiKey { header, key } => ReadyAuth::Header(header.clone(), read(key)?),
            AuthConfig::Oauth2 { token_url, client_id, client_secret, scope } => ReadyAuth::Oauth2 {
                token_url: token_url.clone(),
                client_id: client_id.clone(),
                client_secret: read(client_secret)?,
                scope: scope.clone(),
                token: tokio::sync::Mutex::new(None),
            },
            AuthConfig::Hmac { secret } => ReadyAuth::Hmac(read(secret)?),
        };
        let timeout = match &config.timeout {
            Some(text) => riposte_playbook::parse_duration(text)
                .ok_or_else(|| format!("connector {name}: timeout {text:?} is not a duration"))?,
            None => Duration::from_secs(30),
        };
        let base = read(&config.url)?;
        if !(base.expose().starts_with("http://") || base.expose().starts_with("https://")) {
            return Err(format!("connector {name}: url must be http:// or https://"));
        }
        Ok(Rest {
            name: name.to_owned(),
            base,
            auth,
            policy: FetchPolicy { timeout, max_bytes: 16 << 20, allow_private: config.allow_private },
            headers: config.headers.iter().map(|(name, value)| (name.clone(), value.clone())).collect(),
        })
    }

    /// `path` joined to the base URL (`""` is the base itself).
    fn url(&self, path: &str) -> String {
        let base = self.base.expose();
        if path.is_empty() {
            return base.to_owned();
        }
        format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
    }

    /// Sends a request and reads a JSON answer (`null` when empty). 5xx, 429
    /// and transport failures may be retried; other refusals may not.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Value, ActError> {
        let (status, bytes) = self.send(method, path, body, idempotency_key).await?;
        if !(200..300).contains(&status) {
            let message = format!("{}: HTTP {status}{}", self.name, excerpt(&bytes));
            return Err(if status >= 500 || status == 429 || status == 408 {
                ActError::retryable(message)
            } else {
                ActError::permanent(message)
            });
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes)
            // A proxy's error page in place of the API: another attempt may reach the API.
            .map_err(|_| ActError::retryable(format!("{}: the answer is not JSON{}", self.name, excerpt(&bytes))))
    }

    /// Sends a request; the status and body, whatever the status.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<(u16, Vec<u8>), ActError> {
        let url = self.url(path);
        let mut headers = self.headers.clone();
        headers.push(("accept".into(), "application/json".into()));
        if let Some(key) = idempotency_key {
            headers.push(("idempotency-key".into(), key.to_owned()));
        }
        let mut body = body.map(|json| Body::Json(json.clone()));
        let token;
        let auth = match &self.auth {
            ReadyAuth::None => Auth::None,
            ReadyAuth::Bearer(token) => Auth::Bearer(token.expose()),
            ReadyAuth::Basic(user, password) => Auth::Basic { user, password: password.expose() },
            ReadyAuth::Header(name, key) => Auth::Header { name, value: key.expose() },
            ReadyAuth::Oauth2 { .. } => {
                token = self.oauth_token().await?;
                Auth::Bearer(token.expose())
            }
            ReadyAuth::Hmac(secret) => {
                let bytes = match &body {
                    Some(Body::Json(json)) => serde_json::to_vec(json).unwrap_or_default(),
                    _ => Vec::new(),
                };
                let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |now| now.as_secs());
                headers.push(("x-riposte-timestamp".into(), timestamp.to_string()));
                headers.push(("x-riposte-signature".into(), format!("sha256={}", sign(secret, timestamp, &bytes))));
                // Sent exactly as signed.
                body = Some(Body::Bytes(bytes, "application/json".into()));
                Auth::None
            }
        };
        let request = HttpRequest { method, url: &url, headers, body };
        let response = request_with(&request, &self.policy, auth).await.map_err(|error| self.fetch_error(&error))?;
        Ok((response.status, response.body))
    }

    /// A fetch failure described without the URL.
    fn fetch_error(&self, error: &FetchError) -> ActError {
        let name = &self.name;
        match error {
            FetchError::Scheme { .. } | FetchError::NoHost { .. } => {
                ActError::permanent(format!("{name}: the configured URL is not an http(s) URL"))
            }
            FetchError::Internal { address, .. } => ActError::permanent(format!(
                "{name}: {address} is an internal address, and the connector does not allow_private"
            )),
            FetchError::Resolve { host, reason, .. } => {
                ActError::retryable(format!("{name}: cannot resolve {host}: {reason}"))
            }
            FetchError::TooLarge { limit, .. } => {
                ActError::permanent(format!("{name}: the answer is larger than {limit} bytes"))
            }
            FetchError::Status { status, .. } => ActError::retryable(format!("{name}: HTTP {status}")),
            FetchError::Timeout { .. } => {
                ActError::retryable(format!("{name}: no answer in {} s", self.policy.timeout.as_secs_f64()))
            }
            // reqwest's text names the URL (a chat webhook's is its secret): keep only the kind.
            FetchError::Request { .. } => {
                ActError::retryable(format!("{name}: the request failed (connection refused, reset or TLS)"))
            }
        }
    }

    async fn oauth_token(&self) -> Result<SecretValue, ActError> {
        let ReadyAuth::Oauth2 { token_url, client_id, client_secret, scope, token } = &self.auth else {
            unreachable!("called for OAuth2 only");
        };
        let mut cached = token.lock().await;
        if let Some((value, expires)) = cached.as_ref()
            && Instant::now() < *expires
        {
            return Ok(value.clone());
        }
        let mut form = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}",
            form_encode(client_id),
            form_encode(client_secret.expose())
        );
        if let Some(scope) = scope {
            form.push_str(&format!("&scope={}", form_encode(scope)));
        }
        let request = HttpRequest {
            method: Method::POST,
            url: token_url,
            headers: vec![("accept".into(), "application/json".into())],
            body: Some(Body::Bytes(form.into_bytes(), "application/x-www-form-urlencoded".into())),
        };
        let response =
            request_with(&request, &self.policy, Auth::None).await.map_err(|error| self.fetch_error(&error))?;
        if !(200..300).contains(&response.status) {
            let message = format!("{}: the token endpoint answered HTTP {}", self.name, response.status);
            return Err(if response.status >= 500 {
                ActError::retryable(message)
            } else {
                ActError::permanent(message)
            });
        }
        #[derive(Deserialize)]
        struct Token {
            access_token: String,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let answer: Token = serde_json::from_slice(&response.body).map_err(|_| {
            ActError::retryable(format!("{}: the token endpoint's answer has no access_token", self.name))
        })?;
        // Renewed a minute early, so it does not expire in flight.
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(300).saturating_sub(60));
        let value = SecretValue::from(answer.access_token);
        *cached = Some((value.clone(), Instant::now() + lifetime));
        Ok(value)
    }
}

/// The HMAC-SHA256 of `timestamp.body`, in hex.
pub fn sign(secret: &SecretValue, timestamp: u64, body: &[u8]) -> String {
    hmac_hex(secret.expose().as_bytes(), &[timestamp.to_string().as_bytes(), b".", body])
}

/// The HMAC-SHA256 of `parts` one after the other, in hex.
pub fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// One `application/x-www-form-urlencoded` value decoded (`+` is a space);
/// `None` when it is not UTF-8 or a `%` escape is broken.
pub fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => decoded.push(b' '),
            b'%' => {
                let hex = text.get(index + 1..index + 3)?;
                decoded.push(u8::from_str_radix(hex, 16).ok()?);
                index += 2;
            }
            byte => decoded.push(byte),
        }
        index += 1;
    }
    String::from_utf8(decoded).ok()
}

/// `application/x-www-form-urlencoded` for one value.
pub fn form_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => encoded.push(byte as char),
            b' ' => encoded.push('+'),
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

/// A path segment, percent-encoded (`/`, `?` and `#` too).
pub fn path_segment(text: &str) -> String {
    form_encode(text).replace('+', "%20")
}

/// The start of an error answer, for the message (printable, short).
fn excerpt(body: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(body).chars().filter(|c| !c.is_control()).take(200).collect();
    if text.trim().is_empty() { String::new() } else { format!(": {}", text.trim()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(form_encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
        assert_eq!(path_segment("ws 1/../x"), "ws%201%2F..%2Fx");
        assert_eq!(form_decode("a+b%26c%3Dd%2F%C3%A9").as_deref(), Some("a b&c=d/é"));
        assert_eq!(form_decode("%4"), None);
        assert_eq!(form_decode("%zz"), None);
    }

    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_and_body() {
        // echo -n '1700000000.{}' | openssl dgst -sha256 -hmac key
        let signature = sign(&SecretValue::from("key".to_owned()), 1_700_000_000, b"{}");
        assert_eq!(signature, "9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae");
    }
}
