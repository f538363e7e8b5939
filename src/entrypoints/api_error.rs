//! The HTTP errors of the API and the jobs page: one status code and message for each engine
//! error, in one place. The API renders them as `{ "error": { "code", "message", "field", "problems" } }`.

use serde_json::{json, Value};

use crate::domain::{FieldError, Problem};
use crate::engine::EngineError;
use crate::store::StoreError;

/// An API error: the status code and the JSON body `{ "error": { code, message, field } }`.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: u16,
    code: &'static str,
    message: String,
    field: Option<String>,
    /// Every problem behind it, each with its field (preflight's findings).
    problems: Vec<Problem>,
}

impl ApiError {
    pub(crate) fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            problems: Vec::new(),
        }
    }

    /// What went wrong, for a person (the field's name is in it).
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// A 400 naming the bad field.
    pub(crate) fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(400, "invalid_request", message)
        }
    }

    /// The body in Zilliz Cloud's shape, `{"code": N, "message": …}` (N the HTTP status), for
    /// the Zilliz-compatible routes.
    pub(crate) fn zilliz_body(&self) -> Value {
        let message = match &self.field {
            Some(field) if !self.message.starts_with(field.as_str()) => {
                format!("{field}: {}", self.message)
            }
            _ => self.message.clone(),
        };
        json!({ "code": self.status, "message": message })
    }

    pub(crate) fn body(&self) -> Value {
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
