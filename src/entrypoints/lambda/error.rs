//! The API's errors: one status code and JSON body for each engine error, in one place.
//! `{ "error": { "code", "message", "field", "problems" } }`.

use serde_json::{json, Value};

use crate::domain::{FieldError, Problem};
use crate::engine::EngineError;
use crate::store::StoreError;

/// An API error: the status code and the JSON body `{ "error": { code, message, field } }`.
#[derive(Debug)]
pub(super) struct ApiError {
    pub(super) status: u16,
    code: &'static str,
    message: String,
    field: Option<String>,
    /// Every problem behind it, each with its field (preflight's findings).
    problems: Vec<Problem>,
}

impl ApiError {
    pub(super) fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            problems: Vec::new(),
        }
    }

    /// A 400 naming the bad field.
    pub(super) fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(400, "invalid_request", message)
        }
    }

    /// The body in Zilliz Cloud's shape, `{"code": N, "message": …}` (N the HTTP status), for
    /// the Zilliz-compatible routes.
    pub(super) fn zilliz_body(&self) -> Value {
        let message = match &self.field {
            Some(field) if !self.message.starts_with(field.as_str()) => {
                format!("{field}: {}", self.message)
            }
            _ => self.message.clone(),
        };
        json!({ "code": self.status, "message": message })
    }

    pub(super) fn body(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message, "field": self.field });
        if !self.problems.is_empty() {
            error["problems"] = json!(self.problems);
        }
        json!({ "error": error })
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        let field = (!e.field.is_empty()).then_some(e.field.clone());
        Self {
            field,
            ..Self::new(400, "invalid_request", e.to_string())
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Invalid(f) => f.into(),
            EngineError::NotFound(id) => {
                Self::new(404, "not_found", format!("job `{id}` not found"))
            }
            EngineError::Conflict(m) => Self::new(409, "conflict", m),
            EngineError::Preflight(problems) => Self {
                field: problems.iter().find_map(|p| p.field.clone()),
                problems: problems.clone(),
                ..Self::new(
                    409,
                    "preflight",
                    EngineError::Preflight(problems).to_string(),
                )
            },
            EngineError::Store(StoreError::BadPageToken(token)) => Self::field(
                "next",
                format!("`{token}` is not a page token this API returned"),
            ),
            e @ (EngineError::Store(_) | EngineError::Queue(_)) => {
                tracing::error!("{e}");
                Self::new(503, "unavailable", format!("{e}; try again"))
            }
            e => Self::new(500, "internal", e.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        EngineError::from(e).into()
    }
}
