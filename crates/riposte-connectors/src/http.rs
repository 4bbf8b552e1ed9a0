//! Generic REST calls and outgoing webhooks.

use reqwest::Method;
use riposte_playbook::{ActError, ActionSpec, InputSpec, InputType};
use serde_json::{Value, json};

use crate::rest::Rest;
use crate::{optional_text, text, unknown_action};

type Spec<'a> = &'a dyn Fn(&str, &str, bool, Vec<InputSpec>, Option<&str>) -> ActionSpec;

pub fn specs(spec: impl Fn(&str, &str, bool, Vec<InputSpec>, Option<&str>) -> ActionSpec) -> Vec<ActionSpec> {
    let spec: Spec = &spec;
    let request_inputs = |with_method: bool| {
        let mut inputs = vec![
            InputSpec::optional("path", InputType::String, "joined to the connector's URL"),
            InputSpec::optional("query", InputType::Object, "query parameters"),
            InputSpec::optional("json", InputType::Any, "a JSON body"),
        ];
        if with_method {
            inputs.insert(0, InputSpec::required("method", InputType::String, "POST, PUT, PATCH or DELETE"));
        }
        inputs
    };
    vec![
        spec("get", "GET a resource (reads only)", false, request_inputs(false), None),
        spec("request", "Send a request that changes something", true, request_inputs(true), None),
    ]
}

pub fn webhook_specs(spec: impl Fn(&str, &str, bool, Vec<InputSpec>, Option<&str>) -> ActionSpec) -> Vec<ActionSpec> {
    vec![spec("send", "POST a JSON payload", true, vec![InputSpec::required("payload", InputType::Any, "")], None)]
}

/// The path with its query parameters.
fn target(inputs: &Value) -> Result<String, ActError> {
    let mut path = optional_text(inputs, "path").unwrap_or_default().to_owned();
    if path.contains("://") {
        return Err(ActError::permanent("path is joined to the connector's URL; it cannot be a URL of its own"));
    }
    if let Some(query) = inputs.get("query").and_then(Value::as_object) {
        let pairs: Vec<String> = query
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                format!("{}={}", crate::rest::form_encode(name), crate::rest::form_encode(&value))
            })
            .collect();
        if !pairs.is_empty() {
            path.push(if path.contains('?') { '&' } else { '?' });
            path.push_str(&pairs.join("&"));
        }
    }
    Ok(path)
}

pub async fn act(rest: &Rest, action: &str, inputs: &Value, key: &str) -> Result<Value, ActError> {
    let path = target(inputs)?;
    match action {
        "get" => rest.call(Method::GET, &path, None, None).await,
        "request" => {
            let method = match text(inputs, "method")?.to_ascii_uppercase().as_str() {
                "POST" => Method::POST,
                "PUT" => Method::PUT,
                "PATCH" => Method::PATCH,
                "DELETE" => Method::DELETE,
                other => return Err(ActError::permanent(format!("method {other} is not POST, PUT, PATCH or DELETE"))),
            };
            rest.call(method, &path, inputs.get("json"), Some(key)).await
        }
        _ => Err(unknown_action(&rest.name, action)),
    }
}

pub async fn send_webhook(rest: &Rest, action: &str, inputs: &Value, key: &str) -> Result<Value, ActError> {
    if action != "send" {
        return Err(unknown_action(&rest.name, action));
    }
    let payload = inputs.get("payload").cloned().unwrap_or(Value::Null);
    let (status, _) = rest.send(Method::POST, "", Some(&payload), Some(key)).await?;
    match status {
        200..=299 => Ok(json!({ "status": status })),
        500.. | 429 | 408 => Err(ActError::retryable(format!("{}: HTTP {status}", rest.name))),
        _ => Err(ActError::permanent(format!("{}: HTTP {status}", rest.name))),
    }
}
