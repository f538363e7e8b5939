//! HTTP: Function URL / API Gateway HTTP API requests (payload 2.0), routed to calls. Callers
//! are trusted when AWS verified their IAM signature (the request context carries an IAM
//! authorizer), or when the request carries a valid Standard Webhooks signature made with the
//! deployment's inbound secret over **the method, the path (with its query) and the body**:
//! the signed payload is `"{METHOD} {path}\n{body}"`, so the headers of one request authorize
//! no other. Each `webhook-id` is accepted once: the store remembers it for twice the
//! signature's tolerance, and a replay is refused. The `/v2` routes are Zilliz Cloud's own
//! calls, answered in its shapes by [`super::zilliz_api`] (which may also trust an API key).

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use base64::Engine as _;
use serde_json::Value;

use super::api::Call;
use super::LambdaApp;
use crate::entrypoints::api_error::ApiError;
use crate::webhook::signature::TOLERANCE_SECONDS;

impl LambdaApp {
    /// Answers an HTTP request with the status and JSON body of its call.
    pub(super) async fn on_http(&self, request: LambdaFunctionUrlRequest) -> Value {
        let (status, body) = match self.http(request).await {
            Ok((status, body)) => (status, body),
            Err(e) => (e.status, e.body()),
        };
        let mut response = LambdaFunctionUrlResponse::default();
        response.status_code = status.into();
        response.headers.insert(
            "content-type",
            aws_lambda_events::http::HeaderValue::from_static("application/json"),
        );
        response.body = Some(body.to_string());
        serde_json::to_value(response).unwrap_or(Value::Null)
    }

    async fn http(&self, request: LambdaFunctionUrlRequest) -> Result<(u16, Value), ApiError> {
        let method = request
            .request_context
            .http
            .method
            .clone()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let path = request.raw_path.clone().unwrap_or_default();
        if request
            .body
            .as_ref()
            .is_some_and(|b| b.len() > MAX_BODY_BYTES * 4 / 3 + 4)
        {
            return Err(too_large());
        }
        let body = match (&request.body, request.is_base64_encoded) {
            (None, _) => Vec::new(),
            (Some(b), false) => b.as_bytes().to_vec(),
            (Some(b), true) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|_| ApiError::new(400, "bad_request", "the body is not valid base64"))?,
        };
        if body.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if segments.first() == Some(&"v2") {
            return Ok(self
                .zilliz_http(&request, &method, &path, &segments, &body)
                .await);
        }
        self.authenticate(&request, &method, &path, &body).await?;
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let query = |name: &str| request.query_string_parameters.get(name).cloned();
        let call = match (method.as_str(), segments.as_slice()) {
            ("POST", ["migrations"]) => Call::Start {
                body: String::from_utf8(body)
                    .map_err(|_| ApiError::new(400, "bad_request", "the body is not UTF-8 text"))?,
                idempotency_key: header("idempotency-key"),
                dry_run: match query("dry_run").as_deref() {
                    None | Some("false") => false,
                    Some("true") => true,
                    Some(other) => {
                        return Err(ApiError::field(
                            "dry_run",
                            format!("`{other}` is neither true nor false"),
                        ))
                    }
                },
            },
            ("GET", ["migrations"]) => Call::List {
                status: query("status"),
                limit: query("limit"),
                next: query("next"),
            },
            ("GET", ["migrations", id]) => Call::Status((*id).to_owned()),
            ("POST", ["migrations", id, "cancel"]) => Call::Cancel((*id).to_owned()),
            (_, ["migrations"] | ["migrations", _] | ["migrations", _, "cancel"]) => {
                return Err(ApiError::new(
                    405,
                    "method_not_allowed",
                    format!("{method} is not allowed on {path}"),
                ))
            }
            _ => {
                return Err(ApiError::new(
                    404,
                    "not_found",
                    format!("no route {method} {path}"),
                ))
            }
        };
        self.call(call).await
    }

    /// IAM-verified callers pass; others need a valid inbound Standard Webhooks signature over
    /// this request's method, path and body, with a `webhook-id` not used before.
    pub(super) async fn authenticate(
        &self,
        request: &LambdaFunctionUrlRequest,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<(), ApiError> {
        let iam = request
            .request_context
            .authorizer
            .as_ref()
            .and_then(|a| a.iam.as_ref())
            .is_some();
        if iam {
            return Ok(());
        }
        let Some(secret) = &self.inbound else {
            return Err(ApiError::new(
                401,
                "unauthenticated",
                "sign the request with IAM (SigV4); this deployment has no inbound signing secret",
            ));
        };
        let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
        let query = request.raw_query_string.as_deref().unwrap_or_default();
        let signed = signed_content(method, path, query, body);
        secret
            .verify(
                header("webhook-id"),
                header("webhook-timestamp"),
                header("webhook-signature"),
                &signed,
                chrono::Utc::now().timestamp(),
            )
            .map_err(|e| ApiError::new(401, "unauthenticated", e.to_string()))?;
        let id = header("webhook-id").unwrap_or_default();
        let until = chrono::Utc::now() + chrono::Duration::seconds(2 * TOLERANCE_SECONDS);
        if !self.engine.store().remember_request_id(id, until).await? {
            return Err(ApiError::new(
                401,
                "replayed",
                "this webhook-id was already used: sign every request with a new webhook-id",
            ));
        }
        Ok(())
    }
}

/// The largest request body the API reads.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

fn too_large() -> ApiError {
    ApiError::new(
        413,
        "payload_too_large",
        format!("the body is larger than {MAX_BODY_BYTES} bytes"),
    )
}

/// What an inbound signature covers: `"{METHOD} {path}[?{query}]\n{body}"`.
pub fn signed_content(method: &str, path: &str, query: &str, body: &[u8]) -> Vec<u8> {
    let target = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    };
    let mut signed = format!("{} {target}\n", method.to_ascii_uppercase()).into_bytes();
    signed.extend_from_slice(body);
    signed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_covers_method_path_query_and_body() {
        assert_eq!(
            signed_content("post", "/migrations", "", b"{}"),
            b"POST /migrations\n{}".to_vec()
        );
        assert_eq!(
            signed_content("GET", "/migrations", "status=FAILED", b""),
            b"GET /migrations?status=FAILED\n".to_vec()
        );
    }
}
