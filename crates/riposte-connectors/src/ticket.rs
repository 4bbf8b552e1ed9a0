//! Ticketing: Jira (issues, comments, transitions, status) and TheHive
//! (alerts, cases, status). Creating a ticket is made safe to repeat: Jira
//! issues carry a label derived from the step's idempotency key and are
//! looked up by it first; TheHive alerts use it as their `sourceRef`, which
//! TheHive keeps unique.

use reqwest::Method;
use riposte_playbook::{ActError, ActionSpec, InputSpec, InputType};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::rest::{Rest, RestConfig, form_encode, path_segment};
use crate::{optional_text, text, unknown_action};

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JiraConfig {
    pub api: RestConfig,
    /// The project issues are created in (its key).
    pub project: String,
    #[serde(default = "default_issue_type")]
    pub issue_type: String,
}

fn default_issue_type() -> String {
    "Task".to_owned()
}

/// A short, stable tag for an idempotency key.
fn key_tag(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("riposte-{}", hex::encode(&digest[..8]))
}

pub fn jira_specs(spec: impl Fn(&str, &str, bool, Vec<InputSpec>, Option<&str>) -> ActionSpec) -> Vec<ActionSpec> {
    let issue = || InputSpec::required("issue", InputType::String, "the issue key (SOC-12)");
    vec![
        spec(
            "create_issue",
            "Open an issue",
            true,
            vec![
                InputSpec::required("summary", InputType::String, ""),
                InputSpec::optional("description", InputType::String, ""),
                InputSpec::optional("labels", InputType::List, ""),
            ],
            None,
        ),
        spec(
            "comment",
            "Comment on an issue",
            true,
            vec![issue(), InputSpec::required("body", InputType::String, "")],
            None,
        ),
        spec(
            "transition",
            "Move an issue to another status",
            true,
            vec![issue(), InputSpec::required("to", InputType::String, "the transition's or the status's name")],
            None,
        ),
        spec("issue_status", "An issue's status", false, vec![issue()], None),
    ]
}

pub struct Jira {
    rest: Rest,
    project: String,
    issue_type: String,
}

impl Jira {
    pub fn new(name: &str, config: &JiraConfig, vault: Option<&crate::vault::Vault>) -> Result<Jira, String> {
        Ok(Jira {
            rest: Rest::new(name, &config.api, vault)?,
            project: config.project.clone(),
            issue_type: config.issue_type.clone(),
        })
    }

    pub async fn act(&self, action: &str, inputs: &Value, key: &str) -> Result<Value, ActError> {
        let rest = &self.rest;
        match action {
            "create_issue" => {
                let tag = key_tag(key);
                let search =
                    format!("rest/api/2/search?jql={}&fields=key", form_encode(&format!("labels = \"{tag}\"")));
                let found = rest.call(Method::GET, &search, None, None).await?;
                if let Some(existing) = found.pointer("/issues/0/key").and_then(Value::as_str) {
                    return Ok(json!({ "key": existing, "created": false }));
                }
                let mut labels: Vec<Value> =
                    inputs.get("labels").and_then(Value::as_array).cloned().unwrap_or_default();
                labels.push(Value::String(tag));
                let fields = json!({
                    "project": { "key": self.project },
                    "summary": text(inputs, "summary")?,
                    "description": optional_text(inputs, "description").unwrap_or_default(),
                    "issuetype": { "name": self.issue_type },
                    "labels": labels,
                });
                let created =
                    rest.call(Method::POST, "rest/api/2/issue", Some(&json!({ "fields": fields })), Some(key)).await?;
                let issue = created
                    .get("key")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ActError::retryable(format!("{}: the answer names no issue key", rest.name)))?;
                Ok(json!({ "key": issue, "id": created.get("id"), "created": true }))
            }
            "comment" => {
                let issue = path_segment(text(inputs, "issue")?);
                let body = json!({ "body": text(inputs, "body")? });
                let answer = rest
                    .call(Method::POST, &format!("rest/api/2/issue/{issue}/comment"), Some(&body), Some(key))
                    .await?;
                Ok(json!({ "id": answer.get("id") }))
            }
            "transition" => {
                let issue = path_segment(text(inputs, "issue")?);
                let wanted = text(inputs, "to")?;
                let path = format!("rest/api/2/issue/{issue}/transitions");
                let offered = rest.call(Method::GET, &path, None, None).await?;
                let transitions = offered.get("transitions").and_then(Value::as_array).cloned().unwrap_or_default();
                let named = |transition: &&Value, pointer: &str| {
                    transition
                        .pointer(pointer)
                        .and_then(Value::as_str)
                        .is_some_and(|name| name.eq_ignore_ascii_case(wanted))
                };
                let Some(transition) =
                    transitions.iter().find(|transition| named(transition, "/name") || named(transition, "/to/name"))
                else {
                    let names: Vec<&str> =
                        transitions.iter().filter_map(|transition| transition.get("name")?.as_str()).collect();
                    return Err(ActError::permanent(format!(
                        "{}: the issue cannot move to {wanted} (it can: {})",
                        rest.name,
                        names.join(", ")
                    )));
                };
                let body = json!({ "transition": { "id": transition.get("id") } });
                rest.call(Method::POST, &path, Some(&body), Some(key)).await?;
                Ok(json!({ "to": transition.pointer("/to/name").or(transition.get("name")) }))
            }
            "issue_status" => {
                let issue = path_segment(text(inputs, "issue")?);
                let answer =
                    rest.call(Method::GET, &format!("rest/api/2/issue/{issue}?fields=status"), None, None).await?;
                Ok(json!({
                    "status": answer.pointer("/fields/status/name"),
                    "category": answer.pointer("/fields/status/statusCategory/key"),
                }))
            }
            _ => Err(unknown_action(&rest.name, action)),
        }
    }
}

pub fn thehive_specs(spec: impl Fn(&str, &str, bool, Vec<InputSpec>, Option<&str>) -> ActionSpec) -> Vec<ActionSpec> {
    let ticket = || {
        vec![
            InputSpec::required("title", InputType::String, ""),
            InputSpec::optional("description", InputType::String, ""),
            InputSpec::optional("severity", InputType::Number, "1 (low) to 4 (critical)"),
            InputSpec::optional("tags", InputType::List, ""),
        ]
    };
    vec![
        spec("create_alert", "Raise an alert in TheHive", true, ticket(), None),
        spec("create_case", "Open a case in TheHive", true, ticket(), None),
        spec("case_status", "A case's status", false, vec![InputSpec::required("id", InputType::String, "")], None),
    ]
}

pub struct TheHive {
    rest: Rest,
}

impl TheHive {
    pub fn new(name: &str, config: &RestConfig, vault: Option<&crate::vault::Vault>) -> Result<TheHive, String> {
        Ok(TheHive { rest: Rest::new(name, config, vault)? })
    }

    pub async fn act(&self, action: &str, inputs: &Value, key: &str) -> Result<Value, ActError> {
        let rest = &self.rest;
        let severity = inputs.get("severity").and_then(Value::as_u64).unwrap_or(2).clamp(1, 4);
        let tags = inputs.get("tags").cloned().unwrap_or_else(|| json!([]));
        match action {
            "create_alert" => {
                let source_ref = key_tag(key);
                let alert = json!({
                    "type": "riposte",
                    "source": "riposte",
                    "sourceRef": source_ref,
                    "title": text(inputs, "title")?,
                    "description": optional_text(inputs, "description").unwrap_or("-"),
                    "severity": severity,
                    "tags": tags,
                });
                let (status, body) = rest.send(Method::POST, "api/v1/alert", Some(&alert), Some(key)).await?;
                match status {
                    200..=299 => {
                        let created: Value = serde_json::from_slice(&body).unwrap_or_default();
                        Ok(json!({ "id": created.get("_id"), "created": true }))
                    }
                    // Made by an earlier attempt: find it by its sourceRef.
                    400 | 409 if String::from_utf8_lossy(&body).contains("exist") => {
                        let query = json!({ "query": [
                            { "_name": "listAlert" },
                            { "_name": "filter", "_field": "sourceRef", "_value": source_ref },
                        ]});
                        let found = rest.call(Method::POST, "api/v1/query", Some(&query), None).await?;
                        Ok(json!({ "id": found.pointer("/0/_id"), "created": false }))
                    }
                    500.. | 429 => Err(ActError::retryable(format!("{}: HTTP {status}", rest.name))),
                    _ => Err(ActError::permanent(format!("{}: HTTP {status}", rest.name))),
                }
            }
            "create_case" => {
                let case = json!({
                    "title": text(inputs, "title")?,
                    "description": optional_text(inputs, "description").unwrap_or("-"),
                    "severity": severity,
                    "tags": tags,
                });
                let created = rest.call(Method::POST, "api/v1/case", Some(&case), Some(key)).await?;
                Ok(json!({ "id": created.get("_id"), "number": created.get("number") }))
            }
            "case_status" => {
                let id = path_segment(text(inputs, "id")?);
                let case = rest.call(Method::GET, &format!("api/v1/case/{id}"), None, None).await?;
                Ok(json!({ "status": case.get("status"), "stage": case.get("stage") }))
            }
            _ => Err(unknown_action(&rest.name, action)),
        }
    }
}
