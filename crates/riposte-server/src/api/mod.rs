//! The REST API. Every route but health, readiness, the OpenAPI document and
//! the metrics needs a token (`Authorization: Bearer rpt_...`) whose scope
//! covers it; every change is written to the audit trail in the same
//! transaction as the change itself.

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use riposte_store::{
    Alert, AlertChange, AlertFilter, AlertStatus, AnyStore, AuditEntry, NewAudit, Scope, Store, StoreError, Token,
};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Mutex;

use crate::alert;
use crate::auth::{self, AuditFiles};
use crate::metrics::Metrics;
use crate::pipeline::{HTTP_SOURCE, now_ms};
use crate::ruleset::RuleSet;
use crate::spool::{Record, Spool, SpoolError};

mod playbooks;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: AnyStore,
    pub rules: Arc<RuleSet>,
    pub spool: Arc<Spool>,
    pub metrics: Arc<Metrics>,
    pub audit: Arc<AuditFiles>,
    /// Changes that write the audit trail, one at a time.
    pub audit_lock: Arc<Mutex<()>>,
    pub max_body: usize,
    pub intel: Arc<crate::intel::IntelState>,
    /// Where held messages' bytes are kept, by hash.
    pub quarantine_dir: std::path::PathBuf,
    /// Verifies SPF, DKIM and DMARC when the configuration asks for it.
    pub mail_auth: Option<Arc<crate::mail_auth::MailAuth>>,
    /// The mailbox whose quarantine folder released messages leave.
    pub imap: Option<crate::imap::ImapConfig>,
    /// Playbook runs: triggers, approvals, undo.
    pub playbooks: Arc<crate::playbooks::Runner>,
    /// What analysts' verdicts on mail taught.
    pub learned: Arc<crate::quarantine::LearnedCache>,
}

/// An error as the API reports it: a status, a stable code, a message.
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl AppError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> AppError {
        AppError { status, code, message: message.into(), retry_after: None }
    }

    pub(crate) fn unauthorized() -> AppError {
        AppError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API token is needed (Authorization: Bearer rpt_...)",
        )
    }

    pub(crate) fn not_found(what: &str) -> AppError {
        AppError::new(StatusCode::NOT_FOUND, "not_found", format!("no such {what}"))
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> AppError {
        AppError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> AppError {
        // Logged here, once; the caller learns only that it failed.
        tracing::error!(%error, "store error");
        AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "store_unavailable", "the store could not answer")
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

pub(crate) type ApiResult<T> = Result<T, AppError>;

/// JSON bodies with errors in the API's shape.
pub struct AppJson<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(AppJson(value)),
            Err(rejection) => Err(AppError::new(rejection.status(), "invalid_json", rejection.body_text())),
        }
    }
}

/// The token of the request, if it has the scope.
pub(crate) async fn authorize(state: &AppState, headers: &HeaderMap, needed: Scope) -> ApiResult<Token> {
    let text = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or_else(AppError::unauthorized)?;
    let (id, secret) = auth::parse(text).ok_or_else(AppError::unauthorized)?;
    let (token, stored) = state.store.token(id).await?.ok_or_else(AppError::unauthorized)?;
    if !auth::same_hash(&auth::secret_sha256(secret), &stored) {
        return Err(AppError::unauthorized());
    }
    if token.scope < needed {
        return Err(AppError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this token's scope is {}; {} is needed", token.scope, needed),
        ));
    }
    Ok(token)
}

pub(crate) fn actor(token: &Token) -> String {
    format!("token:{} ({})", token.id, token.name)
}

/// Runs a change that appends to the audit trail, then records the new head.
pub(crate) async fn audited<T>(
    state: &AppState,
    change: impl Future<Output = ApiResult<(T, AuditEntry)>>,
) -> ApiResult<T> {
    let _one_at_a_time = state.audit_lock.lock().await;
    let (value, entry) = change.await?;
    state.audit.keep_head(&entry);
    Ok(value)
}

/// The routes: (method, path, scope needed, summary). The OpenAPI document
/// is written from this table, and a test holds the router to it.
pub const ROUTES: &[(&str, &str, Option<Scope>, &str)] = &[
    ("get", "/api/health", None, "Whether the server is up"),
    ("get", "/api/ready", None, "Whether it can take events (rules loaded, store reachable, spool has room)"),
    ("get", "/api/openapi.json", None, "This document"),
    ("post", "/api/ingest", Some(Scope::Write), "Events as JSON, a JSON array or JSON lines (gzip accepted)"),
    ("get", "/api/alerts", Some(Scope::Read), "Alerts, newest first, with filters and a cursor"),
    ("get", "/api/alerts/{id}", Some(Scope::Read), "One alert, with its first matched event"),
    ("patch", "/api/alerts/{id}", Some(Scope::Write), "Set an alert's status and the analyst's verdict"),
    ("get", "/api/rules", Some(Scope::Read), "The rules, running or disabled"),
    ("post", "/api/rules/reload", Some(Scope::Admin), "Load the rules again from their files"),
    ("post", "/api/rules/{id}/enable", Some(Scope::Admin), "Run a disabled rule again"),
    ("post", "/api/rules/{id}/disable", Some(Scope::Admin), "Stop running a rule"),
    ("post", "/api/tokens", Some(Scope::Admin), "Create an API token (shown once)"),
    ("get", "/api/sources", Some(Scope::Read), "Per-source counts and the last bad message of each"),
    ("get", "/api/intel/lookup", Some(Scope::Read), "What the loaded indicators say of a value (?value=)"),
    (
        "get",
        "/api/intel/indicators",
        Some(Scope::Read),
        "Search the loaded indicators (type, source, tag, contains, live), a page at a time",
    ),
    (
        "post",
        "/api/intel/indicators",
        Some(Scope::Write),
        "Add an indicator (type, value, confidence, tags, valid_until)",
    ),
    ("post", "/api/intel/indicators/revoke", Some(Scope::Write), "Revoke an indicator (type, value) in every feed"),
    ("get", "/api/intel/feeds", Some(Scope::Read), "The configured feeds and how their last pull went"),
    (
        "post",
        "/api/email/analyze",
        Some(Scope::Write),
        "Judge a raw message (the body); phishing and malicious ones are quarantined unless ?quarantine=false",
    ),
    (
        "get",
        "/api/email/learned",
        Some(Scope::Read),
        "What analysts' verdicts taught: each check's factor, and the words the classifier leans on most",
    ),
    ("get", "/api/quarantine", Some(Scope::Read), "Quarantined messages, newest first (?status=held|released|deleted)"),
    ("get", "/api/quarantine/{id}/message", Some(Scope::Read), "A quarantined message's original bytes"),
    (
        "post",
        "/api/quarantine/{id}/release",
        Some(Scope::Write),
        "Let a held message go (one taken from a mailbox is moved back to it)",
    ),
    (
        "post",
        "/api/quarantine/{id}/verdict",
        Some(Scope::Write),
        "An analyst's verdict (phishing or legitimate) on a held message: its sender's history, the checks' weights and the classifier of words learn it",
    ),
    (
        "post",
        "/api/quarantine/{id}/delete",
        Some(Scope::Write),
        "Delete a held message's bytes (its record and hash stay)",
    ),
    ("get", "/api/playbooks", Some(Scope::Read), "The loaded playbooks, and whether automatic actions are paused"),
    (
        "post",
        "/api/playbooks/{id}/run",
        Some(Scope::Write),
        "Run a playbook by hand ({inputs}); with dry_run, what it would do, acting on nothing",
    ),
    ("post", "/api/playbooks/pause", Some(Scope::Admin), "The kill switch: every automatic action waits for a person"),
    ("post", "/api/playbooks/resume", Some(Scope::Admin), "Let automatic actions run again"),
    ("get", "/api/runs", Some(Scope::Read), "Playbook runs, newest first (?playbook=, ?status=)"),
    ("get", "/api/runs/{id}", Some(Scope::Read), "One run, with its journal and its undoable actions"),
    ("post", "/api/runs/{id}/cancel", Some(Scope::Write), "Stop a run where it is"),
    ("post", "/api/runs/{id}/undo", Some(Scope::Write), "Run the inverses of a run's actions now ({step} for one)"),
    ("get", "/api/approvals", Some(Scope::Read), "Approvals and suggestions waiting for a person"),
    (
        "post",
        "/api/approvals/decide",
        Some(Scope::Write),
        "Approve or reject a waiting step ({run_id, path, approve, comment}), as the token's name",
    ),
    (
        "post",
        "/api/hooks/{id}",
        None,
        "Start the playbooks a webhook triggers; signed (X-Riposte-Timestamp, X-Riposte-Signature: sha256=HMAC)",
    ),
    (
        "post",
        "/api/chat/slack",
        None,
        "An Approve or Reject button pressed in Slack (signed by Slack: X-Slack-Signature, X-Slack-Request-Timestamp)",
    ),
    (
        "post",
        "/api/chat/mattermost",
        None,
        "An Approve or Reject button pressed in Mattermost (its context signed by Riposte)",
    ),
    ("get", "/metrics", None, "Prometheus metrics"),
];

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/api/health", get(|| async { axum::Json(json!({"status": "ok"})) }))
        .route("/api/ready", get(ready))
        .route("/api/openapi.json", get(|| async { axum::Json(openapi()) }))
        .route("/api/ingest", post(ingest))
        .route("/api/alerts", get(list_alerts))
        .route("/api/alerts/{id}", get(get_alert).patch(change_alert))
        .route("/api/rules", get(list_rules))
        .route("/api/rules/reload", post(reload_rules))
        .route("/api/rules/{id}/enable", post(enable_rule))
        .route("/api/rules/{id}/disable", post(disable_rule))
        .route("/api/tokens", post(create_token))
        .route("/api/sources", get(sources))
        .route("/api/intel/lookup", get(intel_lookup))
        .route("/api/intel/indicators", get(search_indicators).post(add_indicator))
        .route("/api/intel/indicators/revoke", post(revoke_indicator))
        .route("/api/intel/feeds", get(intel_feeds))
        .route("/api/email/analyze", post(analyze_email))
        .route("/api/email/learned", get(email_learned))
        .route("/api/quarantine", get(list_quarantine))
        .route("/api/quarantine/{id}/message", get(quarantined_bytes))
        .route("/api/quarantine/{id}/release", post(release_quarantined))
        .route("/api/quarantine/{id}/verdict", post(judge_quarantined))
        .route("/api/quarantine/{id}/delete", post(delete_quarantined))
        .route("/api/playbooks", get(playbooks::list))
        .route("/api/playbooks/{id}/run", post(playbooks::run))
        .route("/api/playbooks/pause", post(playbooks::pause))
        .route("/api/playbooks/resume", post(playbooks::resume))
        .route("/api/runs", get(playbooks::runs))
        .route("/api/runs/{id}", get(playbooks::show_run))
        .route("/api/runs/{id}/cancel", post(playbooks::cancel))
        .route("/api/runs/{id}/undo", post(playbooks::undo))
        .route("/api/approvals", get(playbooks::approvals))
        .route("/api/approvals/decide", post(playbooks::decide))
        .route("/api/hooks/{id}", post(playbooks::hook))
        .route("/api/chat/slack", post(playbooks::slack))
        .route("/api/chat/mattermost", post(playbooks::mattermost))
        .route("/metrics", get(metrics))
        .fallback(|| async { AppError::not_found("route") })
        .with_state(state)
}

#[derive(Deserialize)]
struct LookupQuery {
    value: String,
}

async fn intel_lookup(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LookupQuery>,
) -> ApiResult<axum::Json<Value>> {
    authorize(&state, &headers, Scope::Read).await?;
    let Some(set) = state.intel.current() else {
        return Ok(axum::Json(json!({"value": query.value, "matches": []})));
    };
    let value = riposte_intel::refang(&query.value);
    if riposte_intel::recognise(&value).is_none() {
        return Err(AppError::bad_request(format!("{value:?} is not a value indicators name")));
    }
    let matches = crate::intel::lookup_json(&set, &value, now_ms());
    Ok(axum::Json(json!({"value": query.value, "matches": matches})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewIndicator {
    #[serde(rename = "type")]
    kind: String,
    value: String,
    #[serde(default)]
    confidence: Option<u8>,
    #[serde(default)]
    tags: Vec<String>,
    /// RFC 3339.
    #[serde(default)]
    valid_until: Option<String>,
}

fn indicator_of(body: &NewIndicator) -> ApiResult<riposte_intel::Indicator> {
    let kind: riposte_intel::IndicatorKind = body.kind.parse().map_err(AppError::bad_request)?;
    // Kept as STIX, which has no pattern for these.
    if matches!(
        kind,
        riposte_intel::IndicatorKind::Ja3 | riposte_intel::IndicatorKind::Ja4 | riposte_intel::IndicatorKind::UserAgent
    ) {
        return Err(AppError::bad_request(format!("{kind} indicators cannot be added through the API yet")));
    }
    let value = riposte_intel::normalize(kind, &riposte_intel::refang(&body.value))
        .map_err(|error| AppError::bad_request(error.to_string()))?;
    let mut indicator = riposte_intel::Indicator::new(kind, value, "api");
    indicator.confidence = body.confidence.unwrap_or(70).min(100);
    indicator.tags.clone_from(&body.tags);
    indicator.first_seen = Some(now_ms());
    indicator.last_seen = Some(now_ms());
    if let Some(until) = &body.valid_until {
        indicator.valid_until = Some(
            riposte_intel::feed::parse_time(until)
                .ok_or_else(|| AppError::bad_request(format!("valid_until {until:?} is not a time")))?,
        );
    }
    Ok(indicator)
}

async fn keep_indicator(
    state: AppState,
    headers: HeaderMap,
    body: NewIndicator,
    revoke: bool,
) -> ApiResult<axum::Json<Value>> {
    let token = authorize(&state, &headers, Scope::Write).await?;
    let mut indicator = indicator_of(&body)?;
    indicator.revoked = revoke;
    let target = format!("indicator:{}:{}", indicator.kind, indicator.value);
    let kept = {
        let intel = state.intel.clone();
        tokio::task::spawn_blocking(move || intel.keep(indicator))
            .await
            .map_err(|_| AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the change stopped"))?
            .map_err(|reason| AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "intel_unavailable", reason))?
    };
    let audit = NewAudit {
        actor: actor(&token),
        action: if revoke { "intel.revoke" } else { "intel.add" }.into(),
        target,
        detail: json!({"confidence": kept.confidence, "tags": kept.tags}).to_string(),
    };
    audited(&state, async { Ok(((), state.store.append_audit(&audit, &state.audit.key).await?)) }).await?;
    state.metrics.intel_indicators.store(state.intel.current().map_or(0, |set| set.len() as u64), Ordering::Relaxed);
    // A new indicator is looked for in what was already seen.
    let retro_hunted = if revoke { 0 } else { state.intel.retro_hunt(&state.store).await? };
    Ok(axum::Json(json!({"indicator": kept, "retro_hunt_detections": retro_hunted})))
}

async fn add_indicator(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppJson(body): AppJson<NewIndicator>,
) -> ApiResult<axum::Json<Value>> {
    keep_indicator(state, headers, body, false).await
}

async fn revoke_indicator(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppJson(body): AppJson<NewIndicator>,
) -> ApiResult<axum::Json<Value>> {
    keep_indicator(state, headers, body, true).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndicatorQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    source: Option<String>,
    tag: Option<String>,
    /// Part of the value (case-insensitive).
    contains: Option<String>,
    /// Only those live (or, with `false`, only those not) now.
    live: Option<bool>,
    cursor: Option<u32>,
    limit: Option<u32>,
}

/// The loaded indicators that pass every filter given, in load order, from
/// `cursor` on; `next_cursor` continues.
async fn search_indicators(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<IndicatorQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<Value>> {
    authorize(&state, &headers, Scope::Read).await?;
    let Query(query) = query.map_err(|rejection| AppError::bad_request(rejection.body_text()))?;
    let kind = query
        .kind
        .as_deref()
        .map(str::parse::<riposte_intel::IndicatorKind>)
        .transpose()
        .map_err(AppError::bad_request)?;
    let limit = query.limit.unwrap_or(100).clamp(1, riposte_store::MAX_PAGE) as usize;
    let Some(set) = state.intel.current() else {
        return Ok(axum::Json(json!({"items": [], "next_cursor": null})));
    };
    let contains = query.contains.as_deref().map(|text| riposte_intel::refang(text).to_ascii_lowercase());
    let now = now_ms();
    // A scan of the set: at a million indicators, tens of milliseconds.
    let found: Vec<(riposte_intel::IndicatorId, &riposte_intel::Indicator)> = set
        .iter()
        .skip(query.cursor.unwrap_or(0) as usize)
        .filter(|(_, indicator)| kind.is_none_or(|kind| indicator.kind == kind))
        .filter(|(_, indicator)| query.source.as_ref().is_none_or(|source| indicator.sources.contains(source)))
        .filter(|(_, indicator)| query.tag.as_ref().is_none_or(|tag| indicator.tags.contains(tag)))
        .filter(|(_, indicator)| contains.as_ref().is_none_or(|part| indicator.value.contains(part.as_str())))
        .filter(|(id, _)| query.live.is_none_or(|live| set.is_live(*id, now) == live))
        .take(limit + 1)
        .collect();
    let next_cursor = (found.len() > limit).then(|| found[limit].0);
    let items: Vec<Value> = found
        .iter()
        .take(limit)
        .map(|&(id, indicator)| json!({"indicator": indicator, "score": set.score(id, now), "live": set.is_live(id, now)}))
        .collect();
    Ok(axum::Json(json!({"items": items, "next_cursor": next_cursor})))
}

async fn intel_feeds(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<axum::Json<Value>> {
    authorize(&state, &headers, Scope::Read).await?;
    let feeds: Vec<Value> =
        state.intel.feed_status().into_iter().map(|(name, status)| json!({"name": name, "status": status})).collect();
    Ok(axum::Json(json!({"feeds": feeds, "indicators": state.intel.current().map_or(0, |set| set.len())})))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnalyzeQuery {
    /// Hold phishing and malicious messages back (default: yes).
    quarantine: Option<bool>,
    /// The SMTP envelope, for SPF (and so DMARC) when verification is on.
    client_ip: Option<std::net::IpAddr>,
    helo: Option<String>,
    mail_from: Option<String>,
}

/// Judges the raw message in the body; a phishing or malicious one is held
/// back: its bytes kept by hash, a quarantine record, an alert, an audit entry.
async fn analyze_email(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<AnalyzeQuery>, axum::extract::rejection::QueryRejection>,
    request: Request,
) -> ApiResult<axum::Json<Value>> {
    let token = authorize(&state, &headers, Scope::Write).await?;
    let Query(query) = query.map_err(|rejection| AppError::bad_request(rejection.body_text()))?;
    let raw = axum::body::to_bytes(request.into_body(), state.max_body).await.map_err(|_| {
        AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the message is over the {} byte limit (http.max_body)", state.max_body),
        )
    })?;
    let Some(mail) = riposte_mail::parse(&raw, &riposte_mail::Limits::default()) else {
        return Err(AppError::bad_request("not a message: no header could be read"));
    };
    let envelope = query.client_ip.map(|client_ip| crate::mail_auth::Envelope {
        client_ip,
        helo: query.helo.clone().unwrap_or_default(),
        mail_from: query.mail_from.clone().unwrap_or_default(),
    });
    let now = now_ms();
    let (analysis, verified) = crate::quarantine::judge(&state, &raw, &mail, envelope.as_ref(), now).await?;
    let mut answer = json!({
        "verdict": analysis.verdict.as_str(),
        "score": analysis.score,
        "findings": analysis.findings,
        "authentication": verified,
        "quarantine_id": null,
    });
    if analysis.verdict >= riposte_mail::Verdict::Phishing && query.quarantine != Some(false) {
        let held = crate::quarantine::hold(&state, &raw, &mail, &analysis, now, &actor(&token), "api").await.map_err(
            |error| match error {
                crate::quarantine::HoldError::Store(error) => AppError::from(error),
                crate::quarantine::HoldError::Keep(error) => {
                    tracing::error!(%error, "cannot keep a quarantined message");
                    AppError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "quarantine_unavailable",
                        "the message could not be kept",
                    )
                }
            },
        )?;
        answer["quarantine_id"] = json!(held.id);
    }
    Ok(axum::Json(answer))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuarantineQuery {
    status: Option<String>,
    limit: Option<u32>,
}

/// What analysts' verdicts on mail taught: each check's factor and the
/// words the classifier leans on most.
async fn email_learned(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<axum::Json<Value>> {
    authorize(&state, &headers, Scope::Read).await?;
    let learned = state.learned.get(&state.store).await?;
    Ok(axum::Json(json!(learned.taught(20))))
}

async fn list_quarantine(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<QuarantineQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<Value>> {
    authorize(&state, &headers, Scope::Read).await?;
    let Query(query) = query.map_err(|rejection| AppError::bad_request(rejection.body_text()))?;
    let status = query
        .status
        .as_deref()
        .map(str::parse::<riposte_store::QuarantineStatus>)
        .transpose()
        .map_err(AppError::bad_request)?;
    let items = state.store.quarantined(status, query.limit.unwrap_or(100)).await?;
    Ok(axum::Json(json!({"items": items})))
}

async fn quarantined_bytes(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    authorize(&state, &headers, Scope::Read).await?;
    let held = state.store.quarantined_message(id).await?.ok_or_else(|| AppError::not_found("quarantined message"))?;
    if held.status == riposte_store::QuarantineStatus::Deleted {
        return Err(AppError::new(StatusCode::GONE, "deleted", "the message was deleted; its record and hash stay"));
    }
    let raw = tokio::fs::read(crate::quarantine::message_path(&state.quarantine_dir, &held.sha256))
        .await
        .map_err(|_| AppError::new(StatusCode::GONE, "missing", "the message's bytes are no longer kept"))?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("message/rfc822"))], raw).into_response())
}

async fn release_quarantined(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Value>> {
    change_quarantined(state, headers, id, riposte_store::QuarantineStatus::Released).await
}

async fn delete_quarantined(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Value>> {
    change_quarantined(state, headers, id, riposte_store::QuarantineStatus::Deleted).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MailVerdict {
    /// `phishing` or `legitimate`.
    verdict: String,
}

/// An analyst's verdict on a quarantined message, learned by its sender's
/// history (later messages from it are judged with it), audited.
async fn judge_quarantined(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    AppJson(body): AppJson<MailVerdict>,
) -> ApiResult<axum::Json<Value>> {
    let token = authorize(&state, &headers, Scope::Write).await?;
    let phishing = match body.verdict.as_str() {
        "phishing" => true,
        "legitimate" => false,
        other => return Err(AppError::bad_request(format!("{other:?} is not phishing or legitimate"))),
    };
    let held = state.store.quarantined_message(id).await?.ok_or_else(|| AppError::not_found("quarantined message"))?;
    if !held.sender.contains('@') {
        return Err(AppError::bad_request("the message has no sender to learn about"));
    }
    let audit = NewAudit {
        actor: actor(&token),
        action: "mail.verdict".into(),
        target: format!("quarantine:{id}"),
        detail: json!({"sender": held.sender, "verdict": body.verdict}).to_string(),
    };
    let entry = audited(&state, async {
        let checks: Vec<String> = held
            .findings
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|finding| finding["check"].as_str().map(str::to_owned))
            .collect();
        // Its words are read from its kept bytes (none once deleted).
        let path = crate::quarantine::message_path(&state.quarantine_dir, &held.sha256);
        let words = match tokio::fs::read(&path).await {
            Ok(raw) => riposte_mail::parse(&raw, &riposte_mail::Limits::default())
                .map(|mail| riposte_mail::tokens_of(&mail))
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let entry = state.store.judge_sender(&held.sender, phishing, &checks, &words, &audit, &state.audit.key).await?;
        Ok((entry.clone(), entry))
    })
    .await?;
    state.store.prune_word_verdicts(riposte_mail::words::MAX_KEPT).await?;
    state.learned.forget().await;
    let history = state.store.sender_history(&held.sender).await?;
    Ok(axum::Json(json!({"sender": history, "audit_seq": entry.seq})))
}

/// Releases or deletes a held message (only a held one), audited.
async fn change_quarantined(
    state: AppState,
    headers: HeaderMap,
    id: i64,
    status: riposte_store::QuarantineStatus,
) -> ApiResult<axum::Json<Value>> {
    use crate::quarantine::SettleError;
    let token = authorize(&state, &headers, Scope::Write).await?;
    let settled = crate::quarantine::settle(
        &state.store,
        &state.audit,
        &state.audit_lock,
        &state.quarantine_dir,
        state.imap.as_ref(),
        id,
        status,
        &actor(&token),
    )
    .await
    .map_err(|error| match error {
        SettleError::NotFound(_) => AppError::not_found("quarantined message"),
        SettleError::NotHeld(_) => AppError::new(StatusCode::CONFLICT, "not_held", error.to_string()),
        SettleError::Store(error) => AppError::from(error),
        SettleError::Mailbox(error) => AppError::new(StatusCode::BAD_GATEWAY, "mailbox_unavailable", error.to_string()),
        SettleError::MailboxGone(_) => AppError::new(StatusCode::CONFLICT, "mailbox_not_configured", error.to_string()),
    })?;
    Ok(axum::Json(json!(settled)))
}

async fn ready(State(state): State<AppState>) -> Response {
    let rules = state.rules.current().engine.rules().len();
    let store = state.store.rule_states().await.is_ok();
    let room = state.spool.has_room();
    let status = if rules > 0 && store && room { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(json!({"rules": rules, "store": store, "spool_has_room": room}))).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    state.metrics.spool_depth.store(state.spool.depth(), Ordering::Relaxed);
    state.metrics.spool_bytes.store(state.spool.bytes(), Ordering::Relaxed);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}

async fn sources(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<axum::Json<Value>> {
    authorize(&state, &headers, Scope::Read).await?;
    Ok(axum::Json(json!({"bad_message_samples": state.metrics.samples()})))
}

/// One line that was not taken, and why.
fn rejection(line: usize, reason: impl Into<String>) -> Value {
    json!({"line": line, "error": reason.into()})
}

/// The lines of a body, without their `\n` (found with SIMD: bodies hold
/// thousands of lines).
fn lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', body).map(Some).chain([None]).map(move |end| {
        let end = end.unwrap_or(body.len());
        let line = &body[start..end];
        start = end + 1;
        line
    })
}

/// Splits a body into JSON objects: an array of them, JSON lines, or JSON
/// documents one after another. Returns the objects' bytes and what was
/// rejected (by line).
fn split_events(body: &[u8]) -> Result<(Vec<Vec<u8>>, Vec<Value>), AppError> {
    let trimmed = body.trim_ascii_start();
    let mut events = Vec::new();
    let mut rejected = Vec::new();
    if trimmed.starts_with(b"[") {
        let values: Vec<Value> = serde_json::from_slice(trimmed)
            .map_err(|error| AppError::bad_request(format!("invalid JSON array: {error}")))?;
        for (index, value) in values.into_iter().enumerate() {
            if value.is_object() {
                events.push(serde_json::to_vec(&value).unwrap_or_default());
            } else {
                rejected.push(json!({"index": index, "error": "not a JSON object"}));
            }
        }
        return Ok((events, rejected));
    }
    let first = lines(body).map(<[u8]>::trim_ascii).find(|line| !line.is_empty()).unwrap_or_default();
    if serde_json::from_slice::<serde::de::IgnoredAny>(first).is_err() {
        // Not one object a line: documents one after another (pretty-printed).
        for value in serde_json::Deserializer::from_slice(body).into_iter::<Value>() {
            match value {
                Ok(value) if value.is_object() => events.push(serde_json::to_vec(&value).unwrap_or_default()),
                Ok(_) => rejected.push(json!({"error": "not a JSON object"})),
                Err(error) => {
                    rejected.push(rejection(error.line(), error.to_string()));
                    break;
                }
            }
        }
        return Ok((events, rejected));
    }
    for (index, line) in lines(body).enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        // Checked, not built: the pipeline decodes it again.
        match serde_json::from_slice::<serde::de::IgnoredAny>(line) {
            Ok(_) if line.starts_with(b"{") => events.push(line.to_vec()),
            Ok(_) => rejected.push(rejection(index + 1, "not a JSON object")),
            Err(error) => rejected.push(rejection(index + 1, error.to_string())),
        }
    }
    Ok((events, rejected))
}

async fn ingest(State(state): State<AppState>, headers: HeaderMap, request: Request) -> ApiResult<Response> {
    authorize(&state, &headers, Scope::Write).await?;
    if !state.spool.has_room() {
        state.metrics.http_rejected.fetch_add(1, Ordering::Relaxed);
        let mut error = AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "events are arriving faster than they are processed",
        );
        error.retry_after = Some(1);
        return Err(error);
    }
    let too_large = || {
        state.metrics.http_rejected.fetch_add(1, Ordering::Relaxed);
        AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the request body is over the {} byte limit (http.max_body)", state.max_body),
        )
    };
    let body = axum::body::to_bytes(request.into_body(), state.max_body).await.map_err(|_| too_large())?;
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("gzip"));
    let body = if gzip {
        let mut decompressed = Vec::new();
        flate2::read::MultiGzDecoder::new(&body[..])
            .take(state.max_body as u64 + 1)
            .read_to_end(&mut decompressed)
            .map_err(|error| AppError::bad_request(format!("invalid gzip body: {error}")))?;
        if decompressed.len() > state.max_body {
            return Err(too_large());
        }
        std::borrow::Cow::Owned(decompressed)
    } else {
        std::borrow::Cow::Borrowed(&body[..])
    };
    let (events, rejected) = split_events(&body)?;
    state.metrics.received(HTTP_SOURCE, (events.len() + rejected.len()) as u64);
    for reason in &rejected {
        state.metrics.failed(HTTP_SOURCE, &reason.to_string(), b"");
    }
    if events.is_empty() {
        return Err(AppError::bad_request(format!("no event in the body ({} rejected)", rejected.len())));
    }
    let received_ms = now_ms();
    let count = events.len();
    let records = events
        .into_iter()
        .map(|payload| Record { source: HTTP_SOURCE.to_owned(), origin: String::new(), received_ms, payload })
        .collect();
    let last = state.spool.append(records).await.map_err(|error| match error {
        SpoolError::Full { .. } => {
            let mut error = AppError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", error.to_string());
            error.retry_after = Some(1);
            error
        }
        SpoolError::TooLarge(_) => AppError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", error.to_string()),
        other => {
            tracing::error!(error = %other, "spool error");
            AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "spool_unavailable", "events could not be made durable")
        }
    })?;
    let body = json!({
        "accepted": count,
        "first_seq": last + 1 - count as u64,
        "last_seq": last,
        "rejected": rejected,
    });
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|time| time.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn alert_json(alert: &Alert) -> Value {
    json!({
        "id": alert.id,
        "rule_id": alert.rule_id,
        "rule_title": alert.rule_title,
        "level": alert.level,
        "techniques": alert.techniques,
        "entities": alert.entities,
        "first_seen": rfc3339(alert.first_seen_ms),
        "last_seen": rfc3339(alert.last_seen_ms),
        "count": alert.count,
        "status": alert.status,
        "verdict": alert.verdict,
        "fingerprint": alert.fingerprint,
        "event_seq": alert.event_seq,
        "updated": rfc3339(alert.updated_ms),
        "intel": alert.intel,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertQuery {
    status: Option<String>,
    /// Comma-separated levels.
    level: Option<String>,
    rule_id: Option<String>,
    /// RFC 3339 time, or milliseconds since the epoch.
    since: Option<String>,
    cursor: Option<i64>,
    limit: Option<u32>,
}

async fn list_alerts(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<AlertQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<Value>> {
    authorize(&state, &headers, Scope::Read).await?;
    let Query(query) = query.map_err(|rejection| AppError::bad_request(rejection.body_text()))?;
    let status = query.status.as_deref().map(str::parse::<AlertStatus>).transpose().map_err(AppError::bad_request)?;
    let levels: Vec<String> = query
        .level
        .as_deref()
        .map(|levels| {
            levels.split(',').map(|level| level.trim().to_ascii_lowercase()).filter(|l| !l.is_empty()).collect()
        })
        .unwrap_or_default();
    for level in &levels {
        level.parse::<riposte_sigma::Level>().map_err(AppError::bad_request)?;
    }
    let since_ms = match query.since.as_deref() {
        None => None,
        Some(text) => Some(match text.parse::<i64>() {
            Ok(ms) => ms,
            Err(_) => OffsetDateTime::parse(text, &Rfc3339)
                .map(|time| i64::try_from(time.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
                .map_err(|_| AppError::bad_request(format!("since: {text:?} is not an RFC 3339 time")))?,
        }),
    };
    let filter = AlertFilter {
        status,
        levels,
        rule_id: query.rule_id,
        since_ms,
        before: query.cursor,
        limit: query.limit.unwrap_or(50).clamp(1, riposte_store::MAX_PAGE),
    };
    let page = state.store.alerts(&filter).await?;
    Ok(axum::Json(json!({
        "items": page.items.iter().map(alert_json).collect::<Vec<_>>(),
        "next_cursor": page.next,
    })))
}

async fn get_alert(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Value>> {
    authorize(&state, &headers, Scope::Read).await?;
    let alert = state.store.alert(id).await?.ok_or_else(|| AppError::not_found("alert"))?;
    let event = state.store.event(alert.event_seq).await?.map(|event| event.body);
    let mut body = alert_json(&alert);
    body["event"] = event.unwrap_or(Value::Null);
    Ok(axum::Json(body))
}

async fn change_alert(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    AppJson(change): AppJson<AlertChange>,
) -> ApiResult<axum::Json<Value>> {
    let token = authorize(&state, &headers, Scope::Write).await?;
    if change.status.is_none() && change.verdict.is_none() {
        return Err(AppError::bad_request("nothing to change: give a status, a verdict or both"));
    }
    let audit = NewAudit {
        actor: actor(&token),
        action: "alert.update".into(),
        target: format!("alert:{id}"),
        detail: json!({"status": change.status, "verdict": change.verdict}).to_string(),
    };
    let alert = audited(&state, async {
        state
            .store
            .change_alert(id, &change, &audit, &state.audit.key)
            .await?
            .ok_or_else(|| AppError::not_found("alert"))
    })
    .await?;
    Ok(axum::Json(alert_json(&alert)))
}

async fn disabled_rules(state: &AppState) -> ApiResult<BTreeSet<String>> {
    Ok(state.store.rule_states().await?.into_iter().filter(|rule| !rule.enabled).map(|rule| rule.rule_id).collect())
}

async fn list_rules(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<axum::Json<Value>> {
    authorize(&state, &headers, Scope::Read).await?;
    let loaded = state.rules.current();
    let mut rules: Vec<Value> = loaded
        .engine
        .rules()
        .iter()
        .map(|rule| {
            json!({
                "id": alert::rule_key(rule),
                "title": rule.meta.title,
                "level": rule.meta.level,
                "status": rule.meta.status,
                "techniques": rule.meta.techniques.iter().map(|technique| &technique.id).collect::<Vec<_>>(),
                "file": rule.file.as_ref(),
                "enabled": true,
            })
        })
        .collect();
    for id in disabled_rules(&state).await? {
        rules.push(json!({"id": id, "enabled": false}));
    }
    Ok(axum::Json(json!({"rules": rules, "loaded": loaded.report.loaded, "failed": loaded.report.errors.len()})))
}

/// Puts a new rule set in place, or says why the running one stays.
fn reload(state: &AppState, disabled: &BTreeSet<String>) -> ApiResult<usize> {
    match state.rules.reload(disabled) {
        Ok(loaded) => {
            state.metrics.rule_reloads.fetch_add(1, Ordering::Relaxed);
            state.metrics.rules_loaded.store(loaded.engine.rules().len() as u64, Ordering::Relaxed);
            Ok(loaded.engine.rules().len())
        }
        Err(error) => Err(AppError::new(StatusCode::UNPROCESSABLE_ENTITY, "rules_invalid", error.to_string())),
    }
}

async fn reload_rules(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<axum::Json<Value>> {
    let token = authorize(&state, &headers, Scope::Admin).await?;
    let disabled = disabled_rules(&state).await?;
    let loaded = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || reload(&state, &disabled))
            .await
            .map_err(|_| AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the reload stopped"))??
    };
    let audit = NewAudit {
        actor: actor(&token),
        action: "rules.reload".into(),
        target: "rules".into(),
        detail: json!({"loaded": loaded}).to_string(),
    };
    audited(&state, async { Ok(((), state.store.append_audit(&audit, &state.audit.key).await?)) }).await?;
    Ok(axum::Json(json!({"loaded": loaded})))
}

async fn set_rule(state: AppState, headers: HeaderMap, id: String, enabled: bool) -> ApiResult<axum::Json<Value>> {
    let token = authorize(&state, &headers, Scope::Admin).await?;
    let mut disabled = disabled_rules(&state).await?;
    let known =
        state.rules.current().engine.rules().iter().any(|rule| alert::rule_key(rule) == id) || disabled.contains(&id);
    if !known {
        return Err(AppError::not_found("rule"));
    }
    if enabled {
        disabled.remove(&id);
    } else {
        disabled.insert(id.clone());
    }
    let loaded = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || reload(&state, &disabled))
            .await
            .map_err(|_| AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the reload stopped"))??
    };
    let audit = NewAudit {
        actor: actor(&token),
        action: if enabled { "rule.enable" } else { "rule.disable" }.into(),
        target: format!("rule:{id}"),
        detail: json!({"enabled": enabled}).to_string(),
    };
    audited(&state, async { Ok(((), state.store.set_rule_state(&id, enabled, &audit, &state.audit.key).await?)) })
        .await?;
    Ok(axum::Json(json!({"id": id, "enabled": enabled, "loaded": loaded})))
}

async fn enable_rule(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    set_rule(state, headers, id, true).await
}

async fn disable_rule(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    set_rule(state, headers, id, false).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    scope: Scope,
}

async fn create_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppJson(request): AppJson<NewToken>,
) -> ApiResult<Response> {
    let token = authorize(&state, &headers, Scope::Admin).await?;
    if request.name.trim().is_empty() || request.name.len() > 100 {
        return Err(AppError::bad_request("name: 1 to 100 characters"));
    }
    let issued =
        create(&state.store, &state.audit, &state.audit_lock, &request.name, request.scope, &actor(&token)).await?;
    let body =
        json!({"id": issued.token.id, "name": issued.token.name, "scope": issued.token.scope, "token": issued.text});
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// Creates a token and audits it (for the API and for `riposte token create`).
pub async fn create(
    store: &AnyStore,
    audit: &AuditFiles,
    lock: &Mutex<()>,
    name: &str,
    scope: Scope,
    actor: &str,
) -> Result<auth::IssuedToken, StoreError> {
    let issued = auth::issue(name, scope)
        .map_err(|error| StoreError::Corrupt { what: "random source", reason: error.to_string() })?;
    let entry = NewAudit {
        actor: actor.to_owned(),
        action: "token.create".into(),
        target: format!("token:{}", issued.token.id),
        detail: json!({"name": name, "scope": scope}).to_string(),
    };
    let _one_at_a_time = lock.lock().await;
    let written = store.create_token(&issued.token, &issued.secret_sha256, &entry, &audit.key).await?;
    audit.keep_head(&written);
    Ok(issued)
}

/// The OpenAPI 3.1 description of [`ROUTES`].
pub fn openapi() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path, scope, summary) in ROUTES {
        let mut operation = json!({
            "summary": summary,
            "responses": {
                "200": {"description": "Success"},
                "400": {"description": "Invalid request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "422": {"description": "Well-formed but not acceptable (unknown fields, rules that do not load)"},
            },
        });
        if let Some(scope) = scope {
            operation["security"] = json!([{"token": []}]);
            operation["description"] = json!(format!("Needs a token with the {scope} scope (or higher)."));
            operation["responses"]["401"] = json!({"description": "No valid token"});
            operation["responses"]["403"] = json!({"description": "The token's scope is too low"});
        }
        if path.contains("{id}") {
            let schema = if path.starts_with("/api/alerts") || path.starts_with("/api/quarantine") {
                json!({"type": "integer"})
            } else {
                json!({"type": "string"})
            };
            operation["parameters"] = json!([{"name": "id", "in": "path", "required": true, "schema": schema}]);
        }
        match (*method, *path) {
            ("post", "/api/ingest") => {
                operation["requestBody"] = json!({"required": true, "content": {
                    "application/json": {"schema": {"oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]}},
                    "application/x-ndjson": {"schema": {"type": "string"}},
                }});
                operation["responses"]["202"] = json!({"description": "Events are durable and will be processed"});
                operation["responses"]["413"] = json!({"description": "Body over the limit"});
                operation["responses"]["503"] =
                    json!({"description": "Overloaded; retry after the Retry-After header"});
            }
            ("get", "/api/alerts") => {
                operation["parameters"] = json!([
                    {"name": "status", "in": "query", "schema": {"type": "string", "enum": AlertStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()}},
                    {"name": "level", "in": "query", "description": "Comma-separated levels", "schema": {"type": "string"}},
                    {"name": "rule_id", "in": "query", "schema": {"type": "string"}},
                    {"name": "since", "in": "query", "description": "RFC 3339 time or epoch milliseconds", "schema": {"type": "string"}},
                    {"name": "cursor", "in": "query", "description": "next_cursor of the previous page", "schema": {"type": "integer"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": riposte_store::MAX_PAGE}},
                ]);
            }
            ("patch", "/api/alerts/{id}") => {
                operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": false,
                    "properties": {
                        "status": {"type": "string", "enum": AlertStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()},
                        "verdict": {"type": "string", "enum": ["true_positive", "false_positive"]},
                    },
                }}}});
            }
            ("post", "/api/email/analyze") => {
                operation["requestBody"] = json!({"required": true, "content": {
                    "message/rfc822": {"schema": {"type": "string", "format": "binary"}},
                }});
                operation["parameters"] = json!([
                    {"name": "quarantine", "in": "query", "description": "Hold phishing and malicious messages back (default true)", "schema": {"type": "boolean"}},
                ]);
            }
            ("post", "/api/quarantine/{id}/verdict") => {
                operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": false, "required": ["verdict"],
                    "properties": {"verdict": {"type": "string", "enum": ["phishing", "legitimate"]}},
                }}}});
            }
            ("get", "/api/quarantine") => {
                operation["parameters"] = json!([
                    {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["held", "released", "deleted"]}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": riposte_store::MAX_PAGE}},
                ]);
            }
            ("get", "/api/intel/lookup") => {
                operation["parameters"] = json!([
                    {"name": "value", "in": "query", "required": true, "description": "An address, domain, URL, e-mail or hash; defanged forms are read", "schema": {"type": "string"}},
                ]);
            }
            ("get", "/api/intel/indicators") => {
                operation["parameters"] = json!([
                    {"name": "type", "in": "query", "schema": {"type": "string", "enum": riposte_intel::IndicatorKind::ALL.iter().map(|kind| kind.name()).collect::<Vec<_>>()}},
                    {"name": "source", "in": "query", "schema": {"type": "string"}},
                    {"name": "tag", "in": "query", "schema": {"type": "string"}},
                    {"name": "contains", "in": "query", "description": "Part of the value", "schema": {"type": "string"}},
                    {"name": "live", "in": "query", "schema": {"type": "boolean"}},
                    {"name": "cursor", "in": "query", "description": "next_cursor of the previous page", "schema": {"type": "integer"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": riposte_store::MAX_PAGE}},
                ]);
            }
            ("post", "/api/intel/indicators" | "/api/intel/indicators/revoke") => {
                operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": false, "required": ["type", "value"],
                    "properties": {
                        "type": {"type": "string", "enum": riposte_intel::IndicatorKind::ALL.iter().map(|kind| kind.name()).collect::<Vec<_>>()},
                        "value": {"type": "string", "description": "Defanged forms are read"},
                        "confidence": {"type": "integer", "minimum": 0, "maximum": 100},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "valid_until": {"type": "string", "format": "date-time"},
                    },
                }}}});
            }
            ("post", "/api/tokens") => {
                operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": false, "required": ["name", "scope"],
                    "properties": {"name": {"type": "string"}, "scope": {"type": "string", "enum": ["read", "write", "admin"]}},
                }}}});
                operation["responses"]["201"] = json!({"description": "The token, shown this once"});
            }
            _ => {}
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Riposte", "version": env!("CARGO_PKG_VERSION"), "description": "Detections from the events of an organisation's tools."},
        "paths": paths,
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer", "description": "rpt_<id>_<secret>, from `riposte token create`"}},
            "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                "code": {"type": "string"}, "message": {"type": "string"},
            }}}}},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_split_into_events() {
        let (events, rejected) = split_events(b"{\"a\":1}\n\n{\"b\":2}\nnot json\n[1]\n").unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(rejected.len(), 2);
        assert_eq!(rejected[0]["line"], 4);
        let (events, rejected) = split_events(b"[{\"a\":1}, 2, {\"b\":2}]").unwrap();
        assert_eq!((events.len(), rejected.len()), (2, 1));
        let (events, _) = split_events(b"{\n  \"a\": 1\n}\n{\n  \"b\": 2\n}").unwrap();
        assert_eq!(events.len(), 2, "pretty-printed documents");
        assert!(split_events(b"[{\"a\":1}").is_err());
        let (events, rejected) = split_events(b"{\"a\":1}\r\n{\"b\":2}").unwrap();
        assert_eq!((events, rejected.len()), (vec![b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()], 0));
    }

    #[test]
    fn lines_are_those_split_at_newlines() {
        for body in [&b""[..], b"\n", b"a", b"a\n", b"\na", b"a\n\nb\n", b"a\r\nb"] {
            let expected: Vec<&[u8]> = body.split(|byte| *byte == b'\n').collect();
            assert_eq!(lines(body).collect::<Vec<_>>(), expected, "{:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn every_route_is_described() {
        let document = openapi();
        for (method, path, _, _) in ROUTES {
            assert!(document["paths"][path][method].is_object(), "{method} {path}");
        }
        assert_eq!(document["openapi"], "3.1.0");
    }
}
