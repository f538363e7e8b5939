//! The events the function accepts, as types: SQS work messages, Function URL / API Gateway
//! HTTP requests (payload 2.0), EventBridge events (a rule's input, or a plain schedule), and
//! direct invocations. Each is told apart by the key only it has, then read by serde into its
//! own type, so a bad event gets an error naming its field.

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use aws_lambda_events::event::sqs::SqsEvent;
use serde::Deserialize;
use serde_json::Value;

use crate::entrypoints::api_error::ApiError;

/// Every event the function accepts.
#[derive(Debug)]
pub(super) enum Event {
    /// SQS work messages from the event source mapping (`Records` from `aws:sqs`).
    Sqs(SqsEvent),
    /// A Function URL or API Gateway HTTP API request (`requestContext.http`).
    Http(Box<LambdaFunctionUrlRequest>),
    /// An EventBridge event without an action: a schedule sweeps.
    Schedule {
        /// Its `detail-type`.
        detail_type: String,
    },
    /// A direct invocation, bare or as an EventBridge event's `detail`.
    Invoke(Invocation),
}

/// A direct invocation (or an EventBridge rule's input): `{"action": ..., ...}`.
#[derive(Debug)]
pub(super) enum Invocation {
    /// Start a migration with `request`, as `POST /migrations` takes it.
    Start(Value),
    /// A job's report.
    Status(String),
    /// Cancel a job.
    Cancel(String),
    /// Jobs, newest first.
    List {
        /// Only this status.
        status: Option<String>,
        /// At most this many.
        limit: Option<Limit>,
        /// The page token of the last answer.
        next: Option<String>,
    },
    /// Look after every job that has not ended.
    Sweep,
}

/// What an invocation may ask for.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Action {
    Start,
    Status,
    Cancel,
    List,
    Sweep,
}

/// An invocation as it arrives: one flat object, so that a bad field is named by its path.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    action: Action,
    #[serde(default)]
    request: Option<Value>,
    #[serde(default)]
    job_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    limit: Option<Limit>,
    #[serde(default)]
    next: Option<String>,
}

/// A list limit as a caller writes it.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Limit {
    /// `20`
    Number(i64),
    /// `"20"`
    Text(String),
}

impl Limit {
    /// The limit as text, as a query string carries it.
    pub(super) fn text(&self) -> String {
        match self {
            Self::Number(n) => n.to_string(),
            Self::Text(t) => t.clone(),
        }
    }
}

impl Event {
    /// Reads an event, by the key only its kind has.
    pub(super) fn parse(event: Value) -> Result<Self, ApiError> {
        if event
            .pointer("/Records/0/eventSource")
            .and_then(Value::as_str)
            == Some("aws:sqs")
        {
            return serde_json::from_value(event).map(Self::Sqs).map_err(|e| {
                ApiError::new(400, "bad_event", format!("unreadable SQS event: {e}"))
            });
        }
        if event.pointer("/requestContext/http").is_some() {
            return serde_json::from_value(event)
                .map(|r| Self::Http(Box::new(r)))
                .map_err(|e| {
                    ApiError::new(400, "bad_event", format!("unreadable HTTP event: {e}"))
                });
        }
        if let Some(kind) = event.get("detail-type").and_then(Value::as_str) {
            let detail = event.get("detail").cloned().unwrap_or(Value::Null);
            if detail.get("action").is_some() {
                return Invocation::parse(detail).map(Self::Invoke);
            }
            return Ok(Self::Schedule {
                detail_type: kind.to_owned(),
            });
        }
        Invocation::parse(event).map(Self::Invoke)
    }
}

impl Invocation {
    /// Reads an invocation; the error names the field (or `action`).
    fn parse(event: Value) -> Result<Self, ApiError> {
        let raw: Raw = serde_path_to_error::deserialize(&event).map_err(|e| {
            let path = e.path().to_string();
            let message = e.into_inner().to_string();
            let field = if path != "." {
                path
            } else if let Some(name) = quoted_after(&message, "field ") {
                name
            } else {
                "action".to_owned()
            };
            ApiError::field(
                field,
                format!("not an invocation this function knows ({message}); send {{\"action\": \"start\" | \"status\" | \"cancel\" | \"list\" | \"sweep\", ...}}"),
            )
        })?;
        let job_id = |id: Option<String>, action: &str| {
            id.ok_or_else(|| ApiError::field("job_id", format!("is required for `{action}`")))
        };
        Ok(match raw.action {
            Action::Start => Self::Start(
                raw.request
                    .ok_or_else(|| ApiError::field("request", "is required for `start`"))?,
            ),
            Action::Status => Self::Status(job_id(raw.job_id, "status")?),
            Action::Cancel => Self::Cancel(job_id(raw.job_id, "cancel")?),
            Action::List => Self::List {
                status: raw.status,
                limit: raw.limit,
                next: raw.next,
            },
            Action::Sweep => Self::Sweep,
        })
    }
}

/// The backquoted name after `marker` in a serde message (`missing field `job_id``).
fn quoted_after(message: &str, marker: &str) -> Option<String> {
    let rest = &message[message.find(marker)? + marker.len()..];
    let rest = rest.strip_prefix('`')?;
    Some(rest[..rest.find('`')?].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_of_event_is_told_apart() {
        let sqs = json!({"Records": [{"eventSource": "aws:sqs", "body": "{}", "messageId": "m"}]});
        assert!(matches!(Event::parse(sqs), Ok(Event::Sqs(_))));
        let scheduled = json!({"detail-type": "Scheduled Event", "detail": {}});
        assert!(matches!(
            Event::parse(scheduled),
            Ok(Event::Schedule { .. })
        ));
        let rule = json!({"detail-type": "x", "detail": {"action": "status", "job_id": "mig-1"}});
        assert!(matches!(
            Event::parse(rule),
            Ok(Event::Invoke(Invocation::Status(_)))
        ));
        let list = json!({"action": "list", "limit": 5});
        assert!(matches!(
            Event::parse(list),
            Ok(Event::Invoke(Invocation::List {
                limit: Some(Limit::Number(5)),
                ..
            }))
        ));
        assert!(matches!(
            Event::parse(json!({"action": "sweep"})),
            Ok(Event::Invoke(Invocation::Sweep))
        ));
    }

    #[test]
    fn bad_invocations_name_their_field() {
        let field = |v: Value| {
            let e = Event::parse(v).unwrap_err().body();
            e["error"]["field"].as_str().unwrap_or_default().to_owned()
        };
        assert_eq!(field(json!({"action": "explode"})), "action");
        assert_eq!(field(json!({})), "action");
        assert_eq!(field(json!({"nothing": 1})), "nothing");
        assert_eq!(field(json!({"action": "status"})), "job_id");
        assert_eq!(
            field(json!({"action": "status", "job_id": "x", "extra": 1})),
            "extra"
        );
        assert_eq!(field(json!({"action": "status", "job_id": 7})), "job_id");
    }
}

#[cfg(test)]
mod properties {
    //! Property tests of the router: any JSON is an event of some kind or an error body, never
    //! a panic.
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const KEYS: &[&str] = &[
        "Records",
        "eventSource",
        "body",
        "messageId",
        "requestContext",
        "http",
        "method",
        "rawPath",
        "detail-type",
        "detail",
        "action",
        "job_id",
        "request",
        "limit",
        "status",
        "next",
        "x",
    ];

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[a-z:._/]{0,16}".prop_map(Value::String),
            Just(json!("aws:sqs")),
            Just(json!("status")),
            Just(json!("Scheduled Event")),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..5).prop_map(
                    |pairs| {
                        Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                    }
                ),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn any_event_is_routed_or_refused_with_an_error_body(v in value()) {
            if let Err(e) = Event::parse(v) {
                let body = e.body();
                prop_assert!(body["error"]["code"].is_string(), "{body}");
            }
        }
    }
}
