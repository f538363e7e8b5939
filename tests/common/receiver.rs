//! The webhook receiver of the tests (`scripts/webhook_receiver.py`): it verifies every request
//! with the official Standard Webhooks library and records what it received.

use serde_json::Value;

use super::tool::Tool;

/// The receiver process; killed when dropped.
pub struct Receiver {
    tool: Tool,
}

impl Receiver {
    /// Starts a receiver that verifies with `secret` (`whsec_…`).
    pub fn start(secret: &str) -> Self {
        Self {
            tool: Tool::start("webhook_receiver.py", &["--secret", secret]),
        }
    }

    /// The address of `path` on the receiver.
    pub fn url(&self, path: &str) -> String {
        self.tool.url(path)
    }

    /// Everything it received, each body checked against its event's published schema.
    pub async fn deliveries(&self) -> Vec<Value> {
        let deliveries: Vec<Value> =
            serde_json::from_value(self.tool.get_json("/deliveries").await).unwrap();
        for body in deliveries
            .iter()
            .map(|d| &d["body"])
            .filter(|b| !b.is_null())
        {
            super::schemas::check_event(body);
        }
        deliveries
    }
}
