//! MITRE ATT&CK tags (`attack.t1059.001`, `attack.execution`) resolved to
//! technique and tactic names, from a table embedded at build time
//! (`data/attack.tsv`, written by `scripts/attack-table.py`).

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Serialize;

/// An ATT&CK technique or sub-technique.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Technique {
    /// `T1059.001`
    pub id: String,
    /// `Command and Scripting Interpreter: PowerShell`; `None` when the id is
    /// not in the embedded table.
    pub name: Option<String>,
}

/// An ATT&CK tactic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tactic {
    /// `TA0002`
    pub id: String,
    /// `Execution`
    pub name: String,
    /// `execution`, as Sigma tags write it.
    pub short_name: String,
}

struct Table {
    /// Technique id (upper case) to name.
    techniques: HashMap<String, String>,
    /// Tactic short name to tactic.
    tactics: HashMap<String, Tactic>,
}

const TABLE: &str = include_str!("../data/attack.tsv");

fn table() -> &'static Table {
    static PARSED: OnceLock<Table> = OnceLock::new();
    PARSED.get_or_init(|| {
        let mut techniques = HashMap::new();
        let mut tactics = HashMap::new();
        for line in TABLE.lines().filter(|line| !line.starts_with('#')) {
            let mut columns = line.split('\t');
            let (Some(kind), Some(id), Some(name)) = (columns.next(), columns.next(), columns.next()) else {
                continue;
            };
            let extra = columns.next().unwrap_or_default();
            match kind {
                "technique" => {
                    techniques.insert(id.to_owned(), name.to_owned());
                }
                "tactic" => {
                    tactics.insert(
                        extra.to_owned(),
                        Tactic { id: id.to_owned(), name: name.to_owned(), short_name: extra.to_owned() },
                    );
                }
                _ => {}
            }
        }
        Table { techniques, tactics }
    })
}

/// The name of a technique id such as `T1003.001`, with its parent's name
/// for a sub-technique (`OS Credential Dumping: LSASS Memory`).
pub fn technique_name(id: &str) -> Option<String> {
    let table = table();
    let name = table.techniques.get(id)?;
    match id.split_once('.') {
        Some((parent, _)) => match table.techniques.get(parent) {
            Some(parent_name) => Some(format!("{parent_name}: {name}")),
            None => Some(name.clone()),
        },
        None => Some(name.clone()),
    }
}

/// The techniques and tactics named by a rule's tags, in tag order.
pub fn resolve(tags: &[String]) -> (Vec<Technique>, Vec<Tactic>) {
    let mut techniques: Vec<Technique> = Vec::new();
    let mut tactics: Vec<Tactic> = Vec::new();
    for tag in tags {
        let Some(value) = tag.strip_prefix("attack.") else {
            continue;
        };
        let value = value.trim().to_ascii_lowercase();
        if is_technique_id(&value) {
            let id = value.to_ascii_uppercase();
            if !techniques.iter().any(|technique| technique.id == id) {
                techniques.push(Technique { name: technique_name(&id), id });
            }
        } else if let Some(tactic) = table().tactics.get(&value.replace('_', "-"))
            && !tactics.contains(tactic)
        {
            tactics.push(tactic.clone());
        }
    }
    (techniques, tactics)
}

/// `t1234` or `t1234.567`.
fn is_technique_id(value: &str) -> bool {
    let Some(digits) = value.strip_prefix('t') else {
        return false;
    };
    let (main, sub) = digits.split_once('.').unwrap_or((digits, "000"));
    main.len() == 4 && sub.len() == 3 && main.bytes().chain(sub.bytes()).all(|byte| byte.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_techniques_and_tactics() {
        let tags: Vec<String> = [
            "attack.credential-access",
            "attack.t1003.001",
            "attack.T1003",
            "attack.g0007",
            "attack.defense_evasion",
            "car.2016-04-005",
            "attack.t9999",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let (techniques, tactics) = resolve(&tags);
        assert_eq!(
            techniques[0],
            Technique { id: "T1003.001".into(), name: Some("OS Credential Dumping: LSASS Memory".into()) }
        );
        assert_eq!(techniques[1].name.as_deref(), Some("OS Credential Dumping"));
        assert_eq!(techniques[2], Technique { id: "T9999".into(), name: None });
        assert_eq!(techniques.len(), 3);
        let names: Vec<&str> = tactics.iter().map(|tactic| tactic.name.as_str()).collect();
        assert_eq!(names, ["Credential Access", "Defense Evasion"], "v1 underscores are accepted");
        assert_eq!(tactics[0].id, "TA0006");
    }

    #[test]
    fn table_covers_every_tactic() {
        for short in [
            "reconnaissance",
            "resource-development",
            "initial-access",
            "execution",
            "persistence",
            "privilege-escalation",
            "defense-evasion",
            "credential-access",
            "discovery",
            "lateral-movement",
            "collection",
            "command-and-control",
            "exfiltration",
            "impact",
        ] {
            assert!(table().tactics.contains_key(short), "{short}");
        }
        assert!(table().techniques.len() > 600);
    }
}
