//! Host isolation through an EDR's REST API. Products differ only in paths
//! and bodies, so each is a profile of data (`profiles/edr.yml`: a
//! CrowdStrike-style and a Defender-style one); a configuration names one or
//! gives its own.

use std::collections::BTreeMap;

use reqwest::Method;
use riposte_playbook::{ActError, ActionSpec, InputSpec, InputType};
use serde::Deserialize;
use serde_json::Value;

use crate::rest::{Rest, RestConfig, path_segment};
use crate::{optional_text, text, unknown_action};

const PROFILES: &str = include_str!("../profiles/edr.yml");

/// One request of a profile.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub body: Option<Value>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdrConfig {
    pub api: RestConfig,
    /// `crowdstrike`, `defender`, or `custom` with `operations`.
    pub profile: String,
    #[serde(default)]
    pub operations: BTreeMap<String, Operation>,
}

pub struct Edr {
    rest: Rest,
    operations: BTreeMap<String, Operation>,
}

pub fn specs(spec: impl Fn(&str, &str, bool, Vec<InputSpec>, Option<&str>) -> ActionSpec) -> Vec<ActionSpec> {
    let inputs = || {
        vec![
            InputSpec::required("host", InputType::String, "the EDR's device id"),
            InputSpec::optional("comment", InputType::String, "why (kept by the EDR)"),
        ]
    };
    vec![
        spec("isolate", "Cut a host off the network (the EDR keeps its own channel)", true, inputs(), Some("release")),
        spec("release", "Give an isolated host its network back", true, inputs(), None),
        spec("status", "The EDR's record of a host", false, inputs(), None),
    ]
}

impl Edr {
    pub fn new(name: &str, config: &EdrConfig) -> Result<Edr, String> {
        let mut operations = if config.profile == "custom" {
            BTreeMap::new()
        } else {
            let mut profiles: BTreeMap<String, BTreeMap<String, Operation>> =
                serde_saphyr::from_str(PROFILES).map_err(|error| format!("the built-in EDR profiles: {error}"))?;
            profiles.remove(&config.profile).ok_or_else(|| {
                format!("connector {name}: profile {} is not crowdstrike, defender or custom", config.profile)
            })?
        };
        operations.extend(config.operations.clone());
        for needed in ["isolate", "release"] {
            if !operations.contains_key(needed) {
                return Err(format!("connector {name}: the profile has no {needed} operation"));
            }
        }
        Ok(Edr { rest: Rest::new(name, &config.api)?, operations })
    }

    pub async fn act(&self, action: &str, inputs: &Value, key: &str) -> Result<Value, ActError> {
        let Some(operation) = self.operations.get(action) else {
            return Err(unknown_action(&self.rest.name, action));
        };
        let host = text(inputs, "host")?;
        if host.is_empty() || host.len() > 128 {
            return Err(ActError::permanent("host is a device id of 1 to 128 characters"));
        }
        let comment = optional_text(inputs, "comment").unwrap_or("Riposte playbook");
        let path = operation.path.replace("{host}", &path_segment(host));
        let body = operation.body.as_ref().map(|body| fill(body, host, comment));
        let method = Method::from_bytes(operation.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| ActError::permanent(format!("{}: method {} is not HTTP", self.rest.name, operation.method)))?;
        let changes = method != Method::GET;
        let answer = self.rest.call(method, &path, body.as_ref(), changes.then_some(key)).await?;
        Ok(serde_json::json!({ "host": host, "answer": answer }))
    }
}

/// `body` with `{host}` and `{comment}` filled in its strings.
fn fill(body: &Value, host: &str, comment: &str) -> Value {
    match body {
        Value::String(text) => Value::String(text.replace("{host}", host).replace("{comment}", comment)),
        Value::Array(items) => Value::Array(items.iter().map(|item| fill(item, host, comment)).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(key, value)| (key.clone(), fill(value, host, comment))).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_profiles_load_and_fill() {
        let profiles: BTreeMap<String, BTreeMap<String, Operation>> = serde_saphyr::from_str(PROFILES).unwrap();
        assert_eq!(profiles.keys().collect::<Vec<_>>(), ["crowdstrike", "defender"]);
        let isolate = &profiles["defender"]["isolate"];
        let body = fill(isolate.body.as_ref().unwrap(), "abc\"}", "malware");
        assert_eq!(body, serde_json::json!({"Comment": "malware", "IsolationType": "Full"}));
        let body = fill(profiles["crowdstrike"]["isolate"].body.as_ref().unwrap(), "abc\"}", "x");
        assert_eq!(body, serde_json::json!({"ids": ["abc\"}"]}), "a device id stays one string");
    }
}
