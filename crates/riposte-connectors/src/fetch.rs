//! The platform's outgoing HTTP: timeouts, a size limit on answers, TLS
//! verified, and a policy on where requests may go. By default no loopback,
//! private, link-local, shared or documentation address is reached (an
//! attacker-supplied feed URL must not reach the internal network); each
//! name is resolved once, checked, and the request pinned to the address
//! that was checked, so a second resolution cannot swap it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Where a request may go, and how much it may bring back.
#[derive(Clone, Debug, PartialEq)]
pub struct FetchPolicy {
    pub timeout: Duration,
    pub max_bytes: u64,
    /// Allow loopback and private addresses (a feed on the internal network).
    pub allow_private: bool,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy { timeout: Duration::from_secs(30), max_bytes: 256 << 20, allow_private: false }
    }
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: only http and https URLs are fetched")]
    Scheme { url: String },
    #[error("{url}: no host")]
    NoHost { url: String },
    #[error("{url}: cannot resolve {host}: {reason}")]
    Resolve { url: String, host: String, reason: String },
    #[error("{url}: {address} is an internal address (allow_private is off)")]
    Internal { url: String, address: IpAddr },
    #[error("{url}: {reason}")]
    Request { url: String, reason: String },
    #[error("{url}: no answer in time")]
    Timeout { url: String },
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: the answer is larger than {limit} bytes")]
    TooLarge { url: String, limit: u64 },
}

/// How a request proves who it is from (never logged).
#[derive(Clone, Copy, Debug, Default)]
pub enum Auth<'a> {
    #[default]
    None,
    Bearer(&'a str),
    Basic {
        user: &'a str,
        password: &'a str,
    },
    /// The whole `Authorization` header's value (a MISP API key).
    Key(&'a str),
    /// A key in a header of its own (`X-Api-Key: ...`).
    Header {
        name: &'a str,
        value: &'a str,
    },
}

/// A URL without user info or query (which may hold credentials), for messages.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.to_string()
        }
        Err(_) => "(an unreadable URL)".to_owned(),
    }
}

/// `text` with any copy of `url` replaced by its redacted form.
fn redact_text(text: &str, url: &str) -> String {
    text.replace(url, &redact_url(url))
}

/// Fetches `raw_url` under `policy`, with `accept` as the Accept header when given.
pub async fn fetch(
    raw_url: &str,
    policy: &FetchPolicy,
    auth: Auth<'_>,
    accept: Option<&str>,
) -> Result<Vec<u8>, FetchError> {
    fetch_with_headers(raw_url, policy, auth, accept).await.map(|(body, _)| body)
}

/// [`fetch`], with the answer's headers.
pub async fn fetch_with_headers(
    raw_url: &str,
    policy: &FetchPolicy,
    auth: Auth<'_>,
    accept: Option<&str>,
) -> Result<(Vec<u8>, reqwest::header::HeaderMap), FetchError> {
    send(raw_url, policy, auth, accept, None).await
}

/// POSTs `body` as JSON to `raw_url` under `policy` (an API's search), and
/// returns the answer.
pub async fn post_json(
    raw_url: &str,
    policy: &FetchPolicy,
    auth: Auth<'_>,
    body: &serde_json::Value,
) -> Result<Vec<u8>, FetchError> {
    send(raw_url, policy, auth, Some("application/json"), Some(body)).await.map(|(body, _)| body)
}

async fn send(
    raw_url: &str,
    policy: &FetchPolicy,
    auth: Auth<'_>,
    accept: Option<&str>,
    json: Option<&serde_json::Value>,
) -> Result<(Vec<u8>, reqwest::header::HeaderMap), FetchError> {
    let mut headers = Vec::new();
    if let Some(accept) = accept {
        headers.push(("accept".to_owned(), accept.to_owned()));
    }
    let request = HttpRequest {
        method: if json.is_some() { reqwest::Method::POST } else { reqwest::Method::GET },
        url: raw_url,
        headers,
        body: json.map(|json| Body::Json(json.clone())),
    };
    let response = request_with(&request, policy, auth).await?;
    if !(200..300).contains(&response.status) {
        return Err(FetchError::Status { url: redact_url(raw_url), status: response.status });
    }
    Ok((response.body, response.headers))
}

/// What a body is sent as.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    Json(serde_json::Value),
    /// Bytes with their content type.
    Bytes(Vec<u8>, String),
}

/// Any request a connector makes.
#[derive(Clone, Debug)]
pub struct HttpRequest<'a> {
    pub method: reqwest::Method,
    pub url: &'a str,
    /// Extra headers (name, value).
    pub headers: Vec<(String, String)>,
    pub body: Option<Body>,
}

/// An answer, whatever its status.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

/// Sends `request` under `policy`: the answer whatever its status, or why
/// there is none (refused target, timeout, an answer over the size limit).
pub async fn request_with(
    request: &HttpRequest<'_>,
    policy: &FetchPolicy,
    auth: Auth<'_>,
) -> Result<HttpResponse, FetchError> {
    let raw_url = request.url;
    // Errors name the URL without what may be secret in it (user info, query).
    let url = redact_url(raw_url);
    // The client's messages may name the URL as given or as it normalised it.
    let normalised = reqwest::Url::parse(raw_url).map(|parsed| parsed.to_string()).unwrap_or_default();
    let request_error = |reason: String| {
        let reason = redact_text(&reason, raw_url);
        let reason = if normalised.is_empty() { reason } else { redact_text(&reason, &normalised) };
        FetchError::Request { url: url.clone(), reason }
    };
    let transport_error = |error: reqwest::Error| {
        if error.is_timeout() { FetchError::Timeout { url: url.clone() } } else { request_error(error.to_string()) }
    };
    // The URL as the HTTP client itself reads it: a hand-made split can be
    // fooled (`http://127.0.0.1\\@evil.example/` goes to 127.0.0.1).
    let parsed = reqwest::Url::parse(raw_url).map_err(|_| FetchError::Scheme { url: url.clone() })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(FetchError::Scheme { url });
    }
    let host = parsed
        .host_str()
        .map(|host| host.trim_start_matches('[').trim_end_matches(']').to_owned())
        .filter(|host| !host.is_empty())
        .ok_or_else(|| FetchError::NoHost { url: url.clone() })?;
    let port = parsed.port_or_known_default().ok_or_else(|| FetchError::NoHost { url: url.clone() })?;
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|error| FetchError::Resolve { url: url.clone(), host: host.clone(), reason: error.to_string() })?
        .collect();
    let Some(&address) = addresses.first() else {
        return Err(FetchError::Resolve { url: url.clone(), host, reason: "no address".into() });
    };
    if !policy.allow_private
        && let Some(internal) = addresses.iter().find(|address| riposte_intel::normalize::is_internal(address.ip()))
    {
        return Err(FetchError::Internal { url: url.clone(), address: internal.ip() });
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = client_for(&host, address, policy.timeout).map_err(|error| request_error(error.to_string()))?;
    let mut builder = client.request(request.method.clone(), parsed);
    builder = match &request.body {
        Some(Body::Json(json)) => builder.json(json),
        Some(Body::Bytes(bytes, content_type)) => {
            builder.header(reqwest::header::CONTENT_TYPE, content_type.as_str()).body(bytes.clone())
        }
        None => builder,
    };
    match auth {
        Auth::None => {}
        Auth::Bearer(token) => builder = builder.bearer_auth(token),
        Auth::Basic { user, password } => builder = builder.basic_auth(user, Some(password)),
        Auth::Key(key) => builder = builder.header(reqwest::header::AUTHORIZATION, sensitive(key, &request_error)?),
        Auth::Header { name, value } => {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| request_error("the key's header name is not a header name".into()))?;
            builder = builder.header(name, sensitive(value, &request_error)?);
        }
    }
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let mut response = builder.send().await.map_err(transport_error)?;
    if response.content_length().is_some_and(|length| length > policy.max_bytes) {
        return Err(FetchError::TooLarge { url, limit: policy.max_bytes });
    }
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() as u64 + chunk.len() as u64 > policy.max_bytes {
            return Err(FetchError::TooLarge { url, limit: policy.max_bytes });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(HttpResponse { status, headers, body })
}

/// Clients kept by (host, the address it was checked to have, timeout):
/// a client loads the system's trust roots when it is built and keeps its
/// connections open, so building one per request cost half the CPU of a
/// busy playbook runner and a TCP (and TLS) handshake per call. A name that
/// resolves to another address gets another client, pinned to that one.
static CLIENTS: std::sync::LazyLock<std::sync::Mutex<HashMap<ClientKey, reqwest::Client>>> =
    std::sync::LazyLock::new(Default::default);

/// Host name, the address it was checked to have, timeout.
type ClientKey = (String, SocketAddr, Duration);

/// Most clients kept; past it, the cache starts again.
const MAX_CLIENTS: usize = 256;

fn client_for(host: &str, address: SocketAddr, timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    let key = (host.to_owned(), address, timeout);
    if let Some(client) = CLIENTS.lock().expect("client cache lock").get(&key) {
        return Ok(client.clone());
    }
    let client = reqwest::Client::builder()
        .user_agent(concat!("riposte/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        // Redirects could lead anywhere, and a proxy would resolve the name
        // itself: neither.
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .resolve(host, address)
        .build()?;
    let mut clients = CLIENTS.lock().expect("client cache lock");
    if clients.len() >= MAX_CLIENTS {
        clients.clear();
    }
    clients.insert(key, client.clone());
    Ok(client)
}

/// A header value marked sensitive (kept out of debug output).
fn sensitive(
    value: &str,
    request_error: &impl Fn(String) -> FetchError,
) -> Result<reqwest::header::HeaderValue, FetchError> {
    let mut value = reqwest::header::HeaderValue::from_str(value)
        .map_err(|_| request_error("the key is not a header value".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_messages() {
        assert_eq!(redact_url("https://user:pw@feeds.example/x?api_key=s3cret"), "https://feeds.example/x");
        let text = "error sending request for https://feeds.example/x?api_key=s3cret";
        assert!(!redact_text(text, "https://feeds.example/x?api_key=s3cret").contains("s3cret"));
        // The client normalises a URL (a path added, the host in lower case): both forms are redacted.
        let given = "https://Feeds.Example?api_key=s3cret";
        let normalised = reqwest::Url::parse(given).unwrap().to_string();
        assert_eq!(normalised, "https://feeds.example/?api_key=s3cret");
        assert!(!redact_text(&format!("error sending request for {normalised}"), &normalised).contains("s3cret"));
    }

    #[tokio::test]
    async fn a_backslash_cannot_smuggle_a_host() {
        let error =
            fetch("http://127.0.0.1\\@example.com/", &FetchPolicy::default(), Auth::None, None).await.unwrap_err();
        assert!(matches!(error, FetchError::Internal { .. }), "{error}");
    }

    #[test]
    fn internal_addresses() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "::a00:1",
        ] {
            assert!(riposte_intel::normalize::is_internal(internal.parse().unwrap()), "{internal}");
        }
        for external in ["8.8.8.8", "45.77.12.9", "2a03:b0c0:3:d0::1a2:3001"] {
            assert!(!riposte_intel::normalize::is_internal(external.parse().unwrap()), "{external}");
        }
    }
}
