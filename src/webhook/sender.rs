//! The HTTP notifier: signs a message with the job's webhook secret and POSTs it to the address
//! the guard checked, once per call. Retrying is the engine's business (`engine::notify`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use reqwest::Url;

use super::guard::{Refusal, UrlPolicy};
use super::{Notifier, Sent, SigningSecret};
use crate::credentials::Credentials;
use crate::domain::request::WebhookSpec;

/// Sends webhooks over HTTP(S) with `reqwest`.
pub struct HttpNotifier {
    policy: UrlPolicy,
    credentials: Arc<dyn Credentials>,
    timeout: Duration,
}

impl HttpNotifier {
    /// A notifier under `policy`, reading signing secrets through `credentials`, with a
    /// timeout per attempt.
    pub fn new(policy: UrlPolicy, credentials: Arc<dyn Credentials>, timeout: Duration) -> Self {
        Self {
            policy,
            credentials,
            timeout,
        }
    }

    /// The CLI's notifier: loopback receivers allowed.
    pub fn local(credentials: Arc<dyn Credentials>, timeout: Duration) -> Arc<dyn Notifier> {
        Arc::new(Self::new(UrlPolicy::local(), credentials, timeout))
    }
}

/// `Retry-After` as seconds or an HTTP date, capped at an hour.
fn retry_after(value: Option<&str>, now: DateTime<Utc>) -> Option<Duration> {
    let value = value?.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = DateTime::parse_from_rfc2822(value)
                .ok()?
                .with_timezone(&Utc);
            (at - now).to_std().unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(super::MAX_RETRY_WAIT))
}

#[async_trait]
impl Notifier for HttpNotifier {
    fn check_url(&self, url: &str) -> Result<(), String> {
        self.policy.check_url(url).map(|_| ())
    }

    async fn send(&self, spec: &WebhookSpec, id: &str, body: &[u8]) -> (Sent, Duration) {
        let started = Instant::now();
        let sent = self.attempt(spec, id, body).await;
        (sent, started.elapsed())
    }
}

impl HttpNotifier {
    async fn attempt(&self, spec: &WebhookSpec, id: &str, body: &[u8]) -> Sent {
        let (url, secret, address) = match self.prepare(spec).await {
            Ok(ready) => ready,
            Err(sent) => return sent,
        };
        let host = url.host_str().unwrap_or_default().to_owned();
        // Pinned to the checked address: no second lookup can send it elsewhere.
        let client = match reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .resolve(&host, address)
            .user_agent(concat!("vecmigrate/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(c) => c,
            Err(e) => return refused(format!("cannot build the HTTP client: {e}")),
        };
        let now = Utc::now();
        let response = client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", now.timestamp().to_string())
            .header("webhook-signature", secret.sign(id, now.timestamp(), body))
            .body(body.to_vec())
            .send()
            .await;
        match response {
            Ok(r) => judge(r.status().as_u16(), r.headers()),
            Err(e) => retry(self.send_error(&e)),
        }
    }

    /// The checked URL, the signing secret and the checked address to post to, or why not.
    async fn prepare(&self, spec: &WebhookSpec) -> Result<(Url, SigningSecret, SocketAddr), Sent> {
        let url = self
            .policy
            .check_url(&spec.url)
            .map_err(|e| refused(format!("webhook.url {e}")))?;
        let secret = match self.credentials.webhook_secret(spec).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(refused("the webhook has no signing secret".into())),
            Err(e) => return Err(retry(e.0)),
        };
        let secret = SigningSecret::parse(secret.expose())
            .map_err(|e| refused(format!("the webhook secret {e}")))?;
        let lookup = tokio::time::timeout(self.timeout, self.policy.resolve(&url)).await;
        let address = match lookup {
            Ok(Ok(a)) => a,
            Ok(Err(Refusal::Forbidden(e))) => {
                return Err(refused(format!("webhook.url refused: {e}")))
            }
            Ok(Err(Refusal::Lookup(e))) => return Err(retry(e)),
            Err(_) => {
                return Err(retry(format!(
                    "cannot resolve the host within {}",
                    humantime::format_duration(self.timeout)
                )))
            }
        };
        Ok((url, secret, address))
    }

    /// What went wrong with a request that got no answer: the chain of causes, without the
    /// URL (it may carry a token in its query).
    fn send_error(&self, e: &reqwest::Error) -> String {
        let what = if e.is_timeout() {
            format!(
                "no answer within {}",
                humantime::format_duration(self.timeout)
            )
        } else if e.is_connect() {
            "cannot connect".to_owned()
        } else {
            "the request failed".to_owned()
        };
        let mut detail = String::new();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            detail = s.to_string();
            source = s.source();
        }
        if detail.is_empty() {
            what
        } else {
            format!("{what}: {detail}")
        }
    }
}

/// An attempt never worth repeating.
fn refused(error: String) -> Sent {
    Sent::Refused {
        status: None,
        error,
    }
}

/// An attempt worth repeating, with no answer to go by.
fn retry(error: String) -> Sent {
    Sent::Retry {
        status: None,
        error,
        after: None,
    }
}

/// What the receiver's answer means for the delivery.
fn judge(status: u16, headers: &reqwest::header::HeaderMap) -> Sent {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    match status {
        200..=299 => Sent::Delivered { status },
        410 => Sent::Gone { status },
        408 | 429 | 500..=599 => Sent::Retry {
            status: Some(status),
            error: format!("the receiver answered {status}"),
            after: retry_after(header("retry-after").as_deref(), Utc::now()),
        },
        300..=399 => Sent::Refused {
            status: Some(status),
            error: format!(
                "the receiver redirected to {}; redirects are not followed, configure the final URL",
                header("location").unwrap_or_else(|| "nowhere".into())
            ),
        },
        _ => Sent::Refused {
            status: Some(status),
            error: format!("the receiver answered {status}; not retried"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T02:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(retry_after(Some("7"), now), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after(Some("Sun, 22 Nov 2026 02:00:30 GMT"), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(Some("99999"), now),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(retry_after(Some("soon"), now), None);
        assert_eq!(retry_after(None, now), None);
    }
}
