//! Connectors whose products differ only in paths and bodies, so each
//! product is a profile of data: host isolation through an EDR
//! (`profiles/edr.yml`: a CrowdStrike-style and a Defender-style profile)
//! and disabling accounts through an identity provider
//! (`profiles/identity.yml`: Okta-style and Entra-style), and blocking
//! addresses through a firewall's REST API (`profiles/firewall.yml`:
//! OPNsense-style). A configuration
//! names a profile or gives its own operations.

use std::collections::BTreeMap;

use reqwest::Method;
use riposte_playbook::{ActError, ActionSpec, InputSpec, InputType};
use serde::Deserialize;
use serde_json::Value;

use crate::rest::{Rest, RestConfig, path_segment};
use crate::{optional_text, text, unknown_action};

/// One kind of profiled connector.
pub struct Kind {
    pub name: &'static str,
    profiles: &'static str,
    /// The input naming what is acted on (`host`, `user`), also its placeholder.
    subject: &'static str,
    /// The operations every profile must have.
    needed: [&'static str; 2],
}

pub const EDR: Kind = Kind {
    name: "edr",
    profiles: include_str!("../profiles/edr.yml"),
    subject: "host",
    needed: ["isolate", "release"],
};

pub const FIREWALL: Kind = Kind {
    name: "rest_firewall",
    profiles: include_str!("../profiles/firewall.yml"),
    subject: "address",
    needed: ["block_ip", "unblock_ip"],
};

pub const IDENTITY: Kind = Kind {
    name: "identity",
    profiles: include_str!("../profiles/identity.yml"),
    subject: "user",
    needed: ["disable_account", "enable_account"],
};

/// One request of a profile.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub body: Option<Value>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfiledConfig {
    pub api: RestConfig,
    /// A built-in profile's name, or `custom` with `operations`.
    pub profile: String,
    #[serde(default)]
    pub operations: BTreeMap<String, Operation>,
}

pub struct Profiled {
    rest: Rest,
    operations: BTreeMap<String, Operation>,
    subject: &'static str,
}

pub fn firewall_specs(spec: impl Fn(&str, &str, bool, Vec<InputSpec>, Option<&str>) -> ActionSpec) -> Vec<ActionSpec> {
    let inputs = || {
        vec![
            InputSpec::required("address", InputType::String, "an IPv4 or IPv6 address"),
            InputSpec::optional("comment", InputType::String, "why"),
        ]
    };
    vec![
        spec("block_ip", "Block an address on the firewall", true, inputs(), Some("unblock_ip")),
        spec("unblock_ip", "Stop blocking an address", true, inputs(), None),
        spec("status", "What the firewall blocks", false, inputs(), None),
    ]
}

pub fn identity_specs(spec: impl Fn(&str, &str, bool, Vec<InputSpec>, Option<&str>) -> ActionSpec) -> Vec<ActionSpec> {
    let inputs = || {
        vec![
            InputSpec::required("user", InputType::String, "the account, as the identity provider names it"),
            InputSpec::optional("comment", InputType::String, "why"),
        ]
    };
    vec![
        spec("disable_account", "Stop an account from signing in", true, inputs(), Some("enable_account")),
        spec("enable_account", "Let a disabled account sign in again", true, inputs(), None),
        spec("status", "The identity provider's record of an account", false, inputs(), None),
    ]
}

pub fn edr_specs(spec: impl Fn(&str, &str, bool, Vec<InputSpec>, Option<&str>) -> ActionSpec) -> Vec<ActionSpec> {
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

impl Profiled {
    pub fn new(
        name: &str,
        kind: &Kind,
        config: &ProfiledConfig,
        vault: Option<&crate::vault::Vault>,
    ) -> Result<Profiled, String> {
        let mut operations = if config.profile == "custom" {
            BTreeMap::new()
        } else {
            let mut profiles: BTreeMap<String, BTreeMap<String, Operation>> = serde_saphyr::from_str(kind.profiles)
                .map_err(|error| format!("the built-in {} profiles: {error}", kind.name))?;
            let known: Vec<String> = profiles.keys().cloned().collect();
            profiles.remove(&config.profile).ok_or_else(|| {
                format!("connector {name}: profile {} is not {} or custom", config.profile, known.join(", "))
            })?
        };
        operations.extend(config.operations.clone());
        for needed in kind.needed {
            if !operations.contains_key(needed) {
                return Err(format!("connector {name}: the profile has no {needed} operation"));
            }
        }
        Ok(Profiled { rest: Rest::new(name, &config.api, vault)?, operations, subject: kind.subject })
    }

    pub async fn act(&self, action: &str, inputs: &Value, key: &str) -> Result<Value, ActError> {
        let Some(operation) = self.operations.get(action) else {
            return Err(unknown_action(&self.rest.name, action));
        };
        let subject = self.subject;
        let value = text(inputs, subject)?;
        if value.is_empty() || value.len() > 256 {
            return Err(ActError::permanent(format!("{subject} is 1 to 256 characters")));
        }
        if subject == "address" && value.trim().parse::<std::net::IpAddr>().is_err() {
            return Err(ActError::permanent(format!("{value:?} is not an IP address")));
        }
        let placeholder = format!("{{{subject}}}");
        let comment = optional_text(inputs, "comment").unwrap_or("Riposte playbook");
        let path = operation.path.replace(&placeholder, &path_segment(value));
        let body = operation.body.as_ref().map(|body| fill(body, &placeholder, value, comment));
        let method = Method::from_bytes(operation.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| ActError::permanent(format!("{}: method {} is not HTTP", self.rest.name, operation.method)))?;
        let changes = method != Method::GET;
        let answer = self.rest.call(method, &path, body.as_ref(), changes.then_some(key)).await?;
        Ok(serde_json::json!({ subject: value, "answer": answer }))
    }
}

/// `body` with the subject's `placeholder` and `{comment}` filled in its strings.
fn fill(body: &Value, placeholder: &str, value: &str, comment: &str) -> Value {
    match body {
        Value::String(text) => Value::String(text.replace(placeholder, value).replace("{comment}", comment)),
        Value::Array(items) => Value::Array(items.iter().map(|item| fill(item, placeholder, value, comment)).collect()),
        Value::Object(map) => Value::Object(
            map.iter().map(|(key, item)| (key.clone(), fill(item, placeholder, value, comment))).collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_profiles_load_and_fill() {
        let profiles: BTreeMap<String, BTreeMap<String, Operation>> = serde_saphyr::from_str(EDR.profiles).unwrap();
        assert_eq!(profiles.keys().collect::<Vec<_>>(), ["crowdstrike", "defender"]);
        let isolate = &profiles["defender"]["isolate"];
        let body = fill(isolate.body.as_ref().unwrap(), "{host}", "abc\"}", "malware");
        assert_eq!(body, serde_json::json!({"Comment": "malware", "IsolationType": "Full"}));
        let body = fill(profiles["crowdstrike"]["isolate"].body.as_ref().unwrap(), "{host}", "abc\"}", "x");
        assert_eq!(body, serde_json::json!({"ids": ["abc\"}"]}), "a device id stays one string");
        let identity: BTreeMap<String, BTreeMap<String, Operation>> =
            serde_saphyr::from_str(IDENTITY.profiles).unwrap();
        assert_eq!(identity.keys().collect::<Vec<_>>(), ["entra", "okta"]);
        for profile in identity.values().chain(profiles.values()) {
            assert!(profile.contains_key("status"));
        }
    }
}
