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
    pub fn new(name: &str, flavor: Flavor, config: &ChatConfig) -> Result<Chat, String> {
        Ok(Chat { rest: Rest::new(name, config)?, flavor })
    }

    /// The webhook's JSON for a message.
    pub fn payload(flavor: Flavor, message: &str, channel: Option<&str>) -> Value {
        match (flavor, channel) {
            (Flavor::Teams, _) => json!({ "text": message }),
            (_, Some(channel)) => json!({ "text": message, "channel": channel }),
            (_, None) => json!({ "text": message }),
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
