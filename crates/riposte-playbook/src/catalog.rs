//! What actions exist: each connector declares its actions, their inputs,
//! whether they change anything, their inverse, and the secrets they need.
//! Playbooks are checked against the catalog when they are loaded.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    String,
    Number,
    Boolean,
    List,
    Object,
    Any,
}

impl InputType {
    /// Whether a literal (not a template) `value` has this type.
    pub fn admits(self, value: &serde_json::Value) -> bool {
        use serde_json::Value;
        match self {
            InputType::String => value.is_string(),
            InputType::Number => value.is_number(),
            InputType::Boolean => value.is_boolean(),
            InputType::List => value.is_array(),
            InputType::Object => value.is_object(),
            InputType::Any => !matches!(value, Value::Null),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct InputSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: InputType,
    pub required: bool,
    pub description: String,
}

impl InputSpec {
    pub fn required(name: &str, kind: InputType, description: &str) -> InputSpec {
        InputSpec { name: name.to_owned(), kind, required: true, description: description.to_owned() }
    }

    pub fn optional(name: &str, kind: InputType, description: &str) -> InputSpec {
        InputSpec { name: name.to_owned(), kind, required: false, description: description.to_owned() }
    }
}

/// One action a connector offers.
#[derive(Clone, Debug, Serialize)]
pub struct ActionSpec {
    /// `connector.action`, e.g. `firewall.block_ip`.
    pub name: String,
    pub description: String,
    /// False for enrichments: they read and change nothing.
    pub changes: bool,
    pub inputs: Vec<InputSpec>,
    /// The action that undoes this one, called with the same inputs.
    pub inverse: Option<String>,
    /// Names of the secrets its connector needs (from configuration).
    pub secrets: Vec<String>,
    /// For an action that opens a ticket: how to follow it until it closes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow: Option<Follow>,
}

/// How a ticket an action opened is followed: the read-only action that
/// gives its status, the input it takes (filled from a field of the opening
/// action's output), and the status fields and values that mean closed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Follow {
    pub status_action: String,
    pub input: String,
    pub from_output: String,
    /// (field of the status action's output, value): any one means closed.
    pub closed_when: Vec<(String, String)>,
}

impl Follow {
    /// Whether a status action's `output` says the ticket is closed.
    pub fn closed(&self, output: &serde_json::Value) -> bool {
        self.closed_when.iter().any(|(field, value)| {
            output.get(field).and_then(serde_json::Value::as_str).is_some_and(|seen| seen.eq_ignore_ascii_case(value))
        })
    }
}

/// Every action the playbooks may use.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Catalog {
    actions: BTreeMap<String, ActionSpec>,
}

impl Catalog {
    pub fn add(&mut self, spec: ActionSpec) {
        self.actions.insert(spec.name.clone(), spec);
    }

    pub fn get(&self, name: &str) -> Option<&ActionSpec> {
        self.actions.get(name)
    }

    pub fn actions(&self) -> impl Iterator<Item = &ActionSpec> {
        self.actions.values()
    }

    /// The known action nearest to `name`, for "did you mean".
    pub fn nearest(&self, name: &str) -> Option<&str> {
        self.actions
            .keys()
            .map(|known| (edit_distance(known, name), known))
            .filter(|(distance, _)| *distance <= 3)
            .min()
            .map(|(_, known)| known.as_str())
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb)).min(row[j] + 1).min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_names() {
        let mut catalog = Catalog::default();
        for name in ["firewall.block_ip", "firewall.unblock_ip", "http.request"] {
            catalog.add(ActionSpec {
                name: name.into(),
                description: String::new(),
                changes: true,
                inputs: vec![],
                inverse: None,
                secrets: vec![],
                follow: None,
            });
        }
        assert_eq!(catalog.nearest("firewall.blockip"), Some("firewall.block_ip"));
        assert_eq!(catalog.nearest("http.requests"), Some("http.request"));
        assert_eq!(catalog.nearest("edr.isolate"), None);
    }
}
