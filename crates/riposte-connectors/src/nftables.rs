//! Blocking addresses on the local host with nftables: a table of Riposte's
//! own with one set per address family (elements may carry a timeout) and
//! rules that drop traffic from and to them. Every change is one `nft -f`
//! transaction that also (re)declares the table, so a block works on a
//! fresh host and never duplicates a rule. Addresses are parsed before they
//! reach `nft`: nothing an alert carries is passed through as text.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use riposte_playbook::{ActError, ActionSpec, InputSpec, InputType, parse_duration};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::{optional_text, text, unknown_action};

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NftConfig {
    /// The table Riposte owns (in family `inet`).
    #[serde(default = "default_table")]
    pub table: String,
    /// Run `nft` inside this network namespace (`ip netns exec`).
    #[serde(default)]
    pub netns: Option<String>,
    /// The `nft` program.
    #[serde(default)]
    pub nft: Option<PathBuf>,
}

fn default_table() -> String {
    "riposte".to_owned()
}

pub struct Nftables {
    name: String,
    table: String,
    netns: Option<String>,
    nft: PathBuf,
}

pub fn specs(spec: impl Fn(&str, &str, bool, Vec<InputSpec>, Option<&str>) -> ActionSpec) -> Vec<ActionSpec> {
    vec![
        spec(
            "block_ip",
            "Drop traffic from and to an address",
            true,
            vec![
                InputSpec::required("address", InputType::String, "an IPv4 or IPv6 address"),
                InputSpec::optional("timeout", InputType::String, "the kernel forgets the block after this (1h, 1d)"),
            ],
            Some("unblock_ip"),
        ),
        spec(
            "unblock_ip",
            "Stop dropping an address's traffic",
            true,
            vec![InputSpec::required("address", InputType::String, "an IPv4 or IPv6 address")],
            None,
        ),
        spec("list_blocked", "The addresses blocked now", false, vec![], None),
    ]
}

impl Nftables {
    pub fn new(name: &str, config: &NftConfig) -> Result<Nftables, String> {
        let plain =
            |text: &str| !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !plain(&config.table) {
            return Err(format!("connector {name}: table {:?} is letters, digits, '_' and '-'", config.table));
        }
        if let Some(netns) = &config.netns
            && !plain(netns)
        {
            return Err(format!("connector {name}: netns {netns:?} is letters, digits, '_' and '-'"));
        }
        Ok(Nftables {
            name: name.to_owned(),
            table: config.table.clone(),
            netns: config.netns.clone(),
            nft: config.nft.clone().unwrap_or_else(|| PathBuf::from("nft")),
        })
    }

    pub async fn act(&self, action: &str, inputs: &Value) -> Result<Value, ActError> {
        match action {
            "block_ip" => {
                let address = address(text(inputs, "address")?)?;
                let timeout = match optional_text(inputs, "timeout") {
                    Some(text) => Some(
                        parse_duration(text)
                            .filter(|timeout| timeout.as_secs() > 0)
                            .ok_or_else(|| ActError::permanent(format!("timeout {text:?} is not a duration")))?,
                    ),
                    None => None,
                };
                let element = match timeout {
                    Some(timeout) => format!("{address} timeout {}s", timeout.as_secs()),
                    None => address.to_string(),
                };
                let script =
                    format!("{}add element inet {} {} {{ {element} }}\n", self.declare(), self.table, set_of(address));
                self.run(&["-f", "-"], Some(&script)).await?;
                Ok(json!({ "address": address.to_string(), "timeout_s": timeout.map(|timeout| timeout.as_secs()) }))
            }
            "unblock_ip" => {
                let address = address(text(inputs, "address")?)?;
                let script = format!("delete element inet {} {} {{ {address} }}\n", self.table, set_of(address));
                match self.run(&["-f", "-"], Some(&script)).await {
                    Ok(_) => Ok(json!({ "address": address.to_string(), "removed": true })),
                    // Already gone (expired, or never there): the goal holds.
                    Err(error) if error.message.contains("No such file or directory") => {
                        Ok(json!({ "address": address.to_string(), "removed": false }))
                    }
                    Err(error) => Err(error),
                }
            }
            "list_blocked" => {
                let mut addresses = Vec::new();
                for set in ["blocked4", "blocked6"] {
                    let listed = match self.run(&["-j", "list", "set", "inet", &self.table, set], None).await {
                        Ok(listed) => listed,
                        Err(error) if error.message.contains("No such file or directory") => continue,
                        Err(error) => return Err(error),
                    };
                    addresses.extend(elements(&listed));
                }
                Ok(json!({ "addresses": addresses }))
            }
            _ => Err(unknown_action(&self.name, action)),
        }
    }

    /// The table, its sets and its rules, declared again (idempotent).
    fn declare(&self) -> String {
        let table = &self.table;
        let mut script = format!(
            "table inet {table} {{\n\
             \tset blocked4 {{ type ipv4_addr; flags timeout; }}\n\
             \tset blocked6 {{ type ipv6_addr; flags timeout; }}\n\
             \tchain input {{ type filter hook input priority -10; policy accept; }}\n\
             \tchain forward {{ type filter hook forward priority -10; policy accept; }}\n\
             \tchain output {{ type filter hook output priority -10; policy accept; }}\n\
             }}\n"
        );
        for chain in ["input", "forward", "output"] {
            script.push_str(&format!("flush chain inet {table} {chain}\n"));
        }
        for (chain, directions) in
            [("input", &["saddr"][..]), ("forward", &["saddr", "daddr"][..]), ("output", &["daddr"][..])]
        {
            for direction in directions {
                script.push_str(&format!("add rule inet {table} {chain} ip {direction} @blocked4 drop\n"));
                script.push_str(&format!("add rule inet {table} {chain} ip6 {direction} @blocked6 drop\n"));
            }
        }
        script
    }

    /// Runs `nft` with `args`, `stdin` fed in; its output, or its complaint.
    async fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<String, ActError> {
        let mut command = match &self.netns {
            Some(netns) => {
                let mut command = tokio::process::Command::new("ip");
                command.args(["netns", "exec", netns]).arg(&self.nft);
                command
            }
            None => tokio::process::Command::new(&self.nft),
        };
        command
            .args(args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|error| {
            ActError::permanent(format!("{}: cannot run {}: {error}", self.name, self.nft.display()))
        })?;
        if let (Some(script), Some(mut input)) = (stdin, child.stdin.take()) {
            input
                .write_all(script.as_bytes())
                .await
                .map_err(|error| ActError::retryable(format!("{}: writing to nft: {error}", self.name)))?;
        }
        let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
            .await
            .map_err(|_| ActError::retryable(format!("{}: nft did not finish in 10 s", self.name)))?
            .map_err(|error| ActError::retryable(format!("{}: nft: {error}", self.name)))?;
        if !output.status.success() {
            let complaint = String::from_utf8_lossy(&output.stderr);
            let first = complaint.lines().find(|line| line.starts_with("Error")).unwrap_or(complaint.trim());
            return Err(ActError::permanent(format!("{}: nft: {first}", self.name)));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

fn address(text: &str) -> Result<IpAddr, ActError> {
    text.trim().parse().map_err(|_| ActError::permanent(format!("{text:?} is not an IP address")))
}

fn set_of(address: IpAddr) -> &'static str {
    if address.is_ipv4() { "blocked4" } else { "blocked6" }
}

/// The elements of `nft -j list set`, each with its seconds left when it has a timeout.
fn elements(listed: &str) -> Vec<Value> {
    let Ok(parsed) = serde_json::from_str::<Value>(listed) else { return Vec::new() };
    let sets = parsed.get("nftables").and_then(Value::as_array).into_iter().flatten();
    sets.filter_map(|item| item.get("set")?.get("elem")?.as_array())
        .flatten()
        .filter_map(|element| match element {
            Value::String(address) => Some(json!({ "address": address })),
            Value::Object(_) => {
                let inner = element.get("elem")?;
                Some(json!({ "address": inner.get("val")?, "expires_s": inner.get("expires") }))
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_elements() {
        let listed = r#"{"nftables": [{"metainfo": {}}, {"set": {"name": "blocked4", "elem": ["10.0.0.1", {"elem": {"val": "45.77.12.9", "timeout": 3600, "expires": 3599}}]}}]}"#;
        assert_eq!(
            elements(listed),
            [json!({"address": "10.0.0.1"}), json!({"address": "45.77.12.9", "expires_s": 3599})]
        );
    }

    #[test]
    fn only_addresses_reach_nft() {
        assert!(address("1.2.3.4; flush ruleset").is_err());
        assert!(address("1.2.3.4 }").is_err());
        assert_eq!(address(" 2001:db8::1 ").unwrap().to_string(), "2001:db8::1");
    }
}
