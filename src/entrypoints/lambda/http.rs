//! HTTP: Function URL / API Gateway HTTP API requests (payload 2.0), routed to calls. Callers
//! are trusted when AWS verified their IAM signature (the request context carries an IAM
//! authorizer), or when the request carries a valid Standard Webhooks signature made with the
//! deployment's inbound secret.

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use base64::Engine as _;
use serde_json::Value;

use super::api::Call;
use super::error::ApiError;
use super::LambdaApp;

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
        let body = match (&request.body, request.is_base64_encoded) {
            (None, _) => Vec::new(),
            (Some(b), false) => b.as_bytes().to_vec(),
            (Some(b), true) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|_| ApiError::new(400, "bad_request", "the body is not valid base64"))?,
        };
        self.authenticate(&request, &body)?;
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let query = |name: &str| request.query_string_parameters.get(name).cloned();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let call = match (method.as_str(), segments.as_slice()) {
            ("POST", ["migrations"]) => Call::Start {
                body: String::from_utf8(body)
                    .map_err(|_| ApiError::new(400, "bad_request", "the body is not UTF-8 text"))?,
                idempotency_key: header("idempotency-key"),
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

    /// IAM-verified callers pass; others need a valid inbound Standard Webhooks signature.
    fn authenticate(
        &self,
        request: &LambdaFunctionUrlRequest,
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
        secret
            .verify(
                header("webhook-id"),
                header("webhook-timestamp"),
                header("webhook-signature"),
                body,
                chrono::Utc::now().timestamp(),
            )
            .map_err(|e| ApiError::new(401, "unauthenticated", e.to_string()))
    }
}
