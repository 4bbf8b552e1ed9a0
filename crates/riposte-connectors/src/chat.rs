//! Chat: Slack, Mattermost and Microsoft Teams incoming webhooks. The
//! webhook URL is itself the secret, so messages never show it.

use reqwest::Method;
use riposte_playbook::{ActError, ActionSpec, InputSpec, InputType};
use serde_json::{Value, json};

use crate::rest::{Rest, RestConfig};
use crate::{optional_text, text, unknown_action};

/// A chat connector's settings: `url` is the incoming webhook.
pub type ChatConfig = RestConfig;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Slack,
    Mattermost,
    Teams,
}

pub struct Chat {
    rest: Rest,
    flavor: Flavor,
}

pub fn specs(spec: impl Fn(&str, &str, bool, Vec<InputSpec>, Option<&str>) -> ActionSpec) -> Vec<ActionSpec> {
    vec![spec(
        "post_message",
        "Post a message to the channel",
        true,
        vec![
            InputSpec::required("text", InputType::String, "the message (markdown)"),
            InputSpec::optional("channel", InputType::String, "a channel other than the webhook's own"),
        ],
        None,
    )]
}

impl Chat {
    pub fn new(
        name: &str,
        flavor: Flavor,
        config: &ChatConfig,
        vault: Option<&crate::vault::Vault>,
    ) -> Result<Chat, String> {
        Ok(Chat { rest: Rest::new(name, config, vault)?, flavor })
    }

    /// The webhook's JSON for a message.
    pub fn payload(flavor: Flavor, message: &str, channel: Option<&str>) -> Value {
        match (flavor, channel) {
            (Flavor::Teams, _) => json!({ "text": message }),
            (_, Some(channel)) => json!({ "text": message, "channel": channel }),
            (_, None) => json!({ "text": message }),
        }
    }

    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// Posts a payload of the webhook's own format (interactive messages).
    pub async fn post(&self, payload: &Value) -> Result<(), ActError> {
        let (status, _) = self.rest.send(Method::POST, "", Some(payload), None).await?;
        match status {
            200..=299 => Ok(()),
            500.. | 429 => Err(ActError::retryable(format!("{}: HTTP {status}", self.rest.name))),
            _ => Err(ActError::permanent(format!("{}: HTTP {status}", self.rest.name))),
        }
    }

    pub async fn act(&self, action: &str, inputs: &Value) -> Result<Value, ActError> {
        if action != "post_message" {
            return Err(unknown_action(&self.rest.name, action));
        }
        let payload = Chat::payload(self.flavor, text(inputs, "text")?, optional_text(inputs, "channel"));
        let (status, body) = self.rest.send(Method::POST, "", Some(&payload), None).await?;
        match status {
            200..=299 => Ok(json!({ "posted": true })),
            500.. | 429 => Err(ActError::retryable(format!("{}: HTTP {status}", self.rest.name))),
            _ => {
                // Slack explains a refusal in a word (`invalid_payload`, `channel_not_found`).
                let reason: String =
                    String::from_utf8_lossy(&body).chars().filter(|c| !c.is_control()).take(100).collect();
                Err(ActError::permanent(format!("{}: HTTP {status} {}", self.rest.name, reason.trim())))
            }
        }
    }
}

/// How a person answers an approval from chat.
#[derive(Clone)]
pub struct ApprovalButtons<'a> {
    pub run_id: &'a str,
    pub path: &'a str,
    /// Mattermost posts button presses to this URL (Riposte's
    /// `/api/chat/mattermost`), with a context signed by `sign`.
    pub callback_url: Option<&'a str>,
    pub sign: &'a (dyn Fn(&str) -> String + Sync),
}

/// An approval request with Approve and Reject buttons: Slack blocks (the
/// app's interactivity URL receives presses) or Mattermost attachments
/// (presses go to `callback_url` with a signed context). Teams gets text.
pub fn approval_message(flavor: Flavor, text: &str, buttons: &ApprovalButtons<'_>) -> Value {
    let value = format!("{}|{}", buttons.run_id, buttons.path);
    match flavor {
        Flavor::Slack => json!({
            "text": text,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {"type": "actions", "elements": [
                    {"type": "button", "action_id": "riposte_approve", "style": "primary",
                     "text": {"type": "plain_text", "text": "Approve"}, "value": value},
                    {"type": "button", "action_id": "riposte_reject", "style": "danger",
                     "text": {"type": "plain_text", "text": "Reject"}, "value": value},
                ]},
            ],
        }),
        Flavor::Mattermost => {
            let button = |id: &str, name: &str, approve: bool| {
                let context = json!({
                    "run_id": buttons.run_id,
                    "path": buttons.path,
                    "approve": approve,
                    "signature": (buttons.sign)(&format!("{value}|{approve}")),
                });
                json!({"id": id, "name": name, "integration": {"url": buttons.callback_url, "context": context}})
            };
            json!({
                "text": text,
                "attachments": [{"text": "Approve or reject:", "actions": [
                    button("approve", "Approve", true),
                    button("reject", "Reject", false),
                ]}],
            })
        }
        Flavor::Teams => {
            json!({ "text": format!("{text}\n\nDecide with `riposte run approve|reject {} {}`.", buttons.run_id, buttons.path) })
        }
    }
}
