//! The playbook routes: the library, runs, approvals, undo, the kill switch
//! and signed webhooks. People act under their token's name: it is who
//! approves, and approver groups list token names.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use riposte_playbook::Trigger;
use riposte_store::{RunStatus, Scope, Store};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{ApiResult, AppError, AppJson, AppState, authorize};
use crate::playbooks::RunError;

impl From<RunError> for AppError {
    fn from(error: RunError) -> AppError {
        match error {
            RunError::NotFound(what) => AppError::not_found(what),
            RunError::Refused(reason) => AppError::new(StatusCode::CONFLICT, "refused", reason),
            RunError::Store(error) => error.into(),
        }
    }
}

/// A JSON body that may be left out.
fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|error| AppError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_json", error.to_string()))
}

pub(super) async fn list(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<axum::Json<Value>> {
    authorize(&state, &headers, Scope::Read).await?;
    let runner = &state.playbooks;
    let playbooks: Vec<Value> = runner
        .library()
        .playbooks()
        .map(|playbook| {
            json!({
                "id": playbook.id,
                "name": playbook.name,
                "description": playbook.description,
                "file": playbook.file,
                "autonomy": playbook.autonomy,
                "triggers": playbook.triggers.iter().map(Trigger::kind).collect::<Vec<_>>(),
                "inputs": playbook.inputs,
            })
        })
        .collect();
    Ok(axum::Json(json!({"paused": runner.paused(), "playbooks": playbooks})))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RunRequest {
    inputs: Map<String, Value>,
    /// Show what would be done, acting on nothing.
    dry_run: bool,
    /// For a dry run: outputs of steps, by step id.
    outputs: HashMap<String, Value>,
}

pub(super) async fn run(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let token = authorize(&state, &headers, Scope::Write).await?;
    let request: RunRequest = optional_json(&body)?;
    let runner = &state.playbooks;
    let playbook = runner.library().get(&id).ok_or_else(|| AppError::not_found("playbook"))?;
    if !playbook.triggers.is_empty() && !playbook.triggers.iter().any(|trigger| matches!(trigger, Trigger::Manual)) {
        return Err(AppError::new(StatusCode::CONFLICT, "refused", "this playbook has no manual trigger"));
    }
    let trigger = riposte_playbook::run::manual_trigger(&token.name);
    if request.dry_run {
        let (outcome, trace) = runner.dry_run(&id, &trigger, &request.inputs, request.outputs).await?;
        return Ok((StatusCode::OK, axum::Json(json!({"dry_run": true, "outcome": outcome, "trace": trace}))));
    }
    let run = runner.start(&id, trigger, request.inputs, Some(&token.name), None).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(json!({"run": run}))))
}

async fn switch(state: AppState, headers: HeaderMap, paused: bool) -> ApiResult<axum::Json<Value>> {
    let token = authorize(&state, &headers, Scope::Admin).await?;
    state.playbooks.set_paused(paused, &super::actor(&token)).await?;
    Ok(axum::Json(json!({"paused": paused})))
}

pub(super) async fn pause(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<axum::Json<Value>> {
    switch(state, headers, true).await
}

pub(super) async fn resume(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<axum::Json<Value>> {
    switch(state, headers, false).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RunsQuery {
    playbook: Option<String>,
    status: Option<String>,
    limit: Option<u32>,
}

pub(super) async fn runs(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<RunsQuery>,
) -> ApiResult<axum::Json<Value>> {
    authorize(&state, &headers, Scope::Read).await?;
    let status = match query.status.as_deref() {
        Some(text) => Some(text.parse::<RunStatus>().map_err(AppError::bad_request)?),
        None => None,
    };
    let runs = state.store.runs(query.playbook.as_deref(), status, query.limit.unwrap_or(50)).await?;
    Ok(axum::Json(json!({"runs": runs})))
}

pub(super) async fn show_run(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    authorize(&state, &headers, Scope::Read).await?;
    let run = state.store.run(&id).await?.ok_or_else(|| AppError::not_found("run"))?;
    let steps = state.store.run_steps(&id).await?;
    let undoable = state.store.pending_undos(Some(&id), None).await?;
    Ok(axum::Json(json!({"run": run, "steps": steps, "undoable": undoable})))
}

pub(super) async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let token = authorize(&state, &headers, Scope::Write).await?;
    state.playbooks.cancel(&id, &token.name).await?;
    Ok(axum::Json(json!({"run": id, "status": "cancelled"})))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct UndoRequest {
    step: Option<String>,
}

pub(super) async fn undo(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<axum::Json<Value>> {
    let token = authorize(&state, &headers, Scope::Write).await?;
    let step = optional_json::<UndoRequest>(&body)?.step;
    let results = state.playbooks.undo(&id, step.as_deref(), &token.name).await?;
    let undone: Vec<Value> = results
        .into_iter()
        .map(|(undo, result)| match result {
            Ok(output) => json!({"path": undo.path, "action": undo.action, "done": true, "output": output}),
            Err(error) => json!({"path": undo.path, "action": undo.action, "done": false, "error": error.message}),
        })
        .collect();
    Ok(axum::Json(json!({"run": id, "undone": undone})))
}

pub(super) async fn approvals(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<axum::Json<Value>> {
    authorize(&state, &headers, Scope::Read).await?;
    Ok(axum::Json(json!({"approvals": state.playbooks.approvals().await?})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Decision {
    run_id: String,
    path: String,
    approve: bool,
    #[serde(default)]
    comment: Option<String>,
}

pub(super) async fn decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppJson(decision): AppJson<Decision>,
) -> ApiResult<axum::Json<Value>> {
    let token = authorize(&state, &headers, Scope::Write).await?;
    let admin = token.scope >= Scope::Admin;
    let entry = state
        .playbooks
        .decide(&decision.run_id, &decision.path, decision.approve, &token.name, admin, decision.comment.as_deref())
        .await?;
    Ok(axum::Json(
        json!({"run_id": decision.run_id, "path": decision.path, "approved": decision.approve, "audit_seq": entry.seq}),
    ))
}

/// A signed webhook: 401 when the signature is missing, stale or wrong, or
/// the hook is unknown (which is not told apart), and nothing runs.
pub(super) async fn hook(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let started = state
        .playbooks
        .webhook(&name, &body, header("x-riposte-timestamp"), header("x-riposte-signature"))
        .await
        .map_err(|error| match error {
            RunError::Store(error) => error.into(),
            _ => AppError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the webhook's signature is missing, stale or wrong",
            ),
        })?;
    let runs: Vec<&str> = started.iter().map(|run| run.id.as_str()).collect();
    Ok((StatusCode::ACCEPTED, axum::Json(json!({"runs": runs}))))
}

/// What a chat button's press gets: 401 when unsigned; else a message for
/// the person who pressed it (Slack shows `text`, Mattermost `ephemeral_text`).
fn chat_answer(result: Result<String, RunError>) -> ApiResult<axum::Json<Value>> {
    match result {
        Ok(said) => Ok(axum::Json(json!({"text": said, "ephemeral_text": said}))),
        Err(RunError::Store(error)) => Err(error.into()),
        Err(_) => Err(AppError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the request's signature is missing, stale or wrong",
        )),
    }
}

pub(super) async fn slack(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<axum::Json<Value>> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    chat_answer(
        state.playbooks.slack_action(&body, header("x-slack-request-timestamp"), header("x-slack-signature")).await,
    )
}

pub(super) async fn mattermost(State(state): State<AppState>, body: Bytes) -> ApiResult<axum::Json<Value>> {
    chat_answer(state.playbooks.mattermost_action(&body).await)
}
