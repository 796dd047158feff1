//! The one error type of the HTTP side and its JSON body.
//!
//! Every error answers the contract's body:
//! `{"errors": [{"id", "status", "code", "title", "detail", "source"?}]}`,
//! with `status` as a string and a stable machine-readable `code`. Internal
//! causes are logged with their chain and never shown to the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use sharehub_model::FieldError;
use sharehub_store::{StoreError, WriteError};

/// An error a client gets.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    #[error("unknown entity {0:?}")]
    UnknownResource(String),
    #[error("unauthorized")]
    Unauthorized,
    /// The platform API without the admin token.
    #[error("unauthorized")]
    AdminUnauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("invalid: {}", list_fields(.0))]
    Invalid(Vec<FieldError>),
    #[error("This Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    #[error("This app is over its rate of requests a second; retry after {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// Any other status, for answers made outside the handlers (timeouts,
    /// URIs too long, rejected query strings).
    #[error("{detail}")]
    Status { status: StatusCode, detail: String },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Field errors on one line, for logs and the CLI (`name: must not be empty; ...`).
fn list_fields(errors: &[FieldError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

impl ApiError {
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::BadRequest { code, detail: detail.into() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } | ApiError::UnknownResource(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::AdminUnauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid(_) | ApiError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Status { status, .. } => *status,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code_and_title(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } => (code, "Bad request"),
            ApiError::UnknownResource(_) => ("unknown-resource", "Unknown resource"),
            ApiError::Unauthorized | ApiError::AdminUnauthorized => ("unauthorized", "Unauthorized"),
            ApiError::Forbidden(_) => ("forbidden", "Forbidden"),
            ApiError::NotFound(_) => ("resource-not-found", "Resource not found"),
            ApiError::Conflict(_) => ("conflict", "Conflict"),
            ApiError::PreconditionFailed(_) => ("stale-version", "Precondition failed"),
            ApiError::PayloadTooLarge(_) => ("payload-too-large", "Payload too large"),
            ApiError::UnsupportedMediaType(_) => ("unsupported-media-type", "Unsupported media type"),
            ApiError::Invalid(_) => ("invalid-field", "Invalid field"),
            ApiError::IdempotencyKeyReused => ("idempotency-key-reused", "Idempotency key reused"),
            ApiError::TooManyRequests { .. } => ("too-many-requests", "Too many requests"),
            ApiError::Unavailable(_) => ("service-unavailable", "Service unavailable"),
            ApiError::Status { status, .. } => status_code_and_title(*status),
            ApiError::Internal(_) => ("internal-error", "Internal error"),
        }
    }

    fn detail(&self) -> String {
        match self {
            ApiError::Unauthorized => "Authenticate with HTTP Basic (api id and api key) on a group of your app".into(),
            ApiError::AdminUnauthorized => {
                "Authenticate with the admin token: Authorization: Bearer <admin_token>".into()
            }
            ApiError::UnknownResource(name) => format!("{name:?} is not a shared entity"),
            ApiError::Internal(_) => "Something went wrong on our side; it has been logged".into(),
            other => other.to_string(),
        }
    }

    /// The JSON error body of the contract.
    pub fn body(&self) -> Value {
        let status = self.status().as_u16().to_string();
        let (code, title) = self.code_and_title();
        let errors: Vec<Value> = match self {
            ApiError::Invalid(fields) => {
                fields.iter().map(|f| error_entry(&status, code, title, f.to_string(), Some(&f.path))).collect()
            }
            other => vec![error_entry(&status, code, title, other.detail(), None)],
        };
        json!({ "errors": errors })
    }
}

fn status_code_and_title(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("bad-request", "Bad request"),
        405 => ("method-not-allowed", "Method not allowed"),
        408 => ("request-timeout", "Request timeout"),
        413 => ("payload-too-large", "Payload too large"),
        414 => ("uri-too-long", "URI too long"),
        415 => ("unsupported-media-type", "Unsupported media type"),
        431 => ("headers-too-large", "Request headers too large"),
        s if s >= 500 => ("internal-error", "Internal error"),
        _ => ("error", "Error"),
    }
}

fn error_entry(status: &str, code: &str, title: &str, detail: String, path: Option<&str>) -> Value {
    let mut entry = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "status": status,
        "code": code,
        "title": title,
        "detail": detail,
    });
    if let Some(path) = path {
        entry["source"] = json!({ "pointer": path });
    }
    entry
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = ?cause, "request failed");
        } else if let ApiError::Unavailable(why) = &self {
            tracing::warn!(why, "database unavailable; answering 503");
        }
        let mut response = (self.status(), axum::Json(self.body())).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.api+json"));
        if matches!(self, ApiError::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"sharehub\""));
        }
        if matches!(self, ApiError::AdminUnauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"sharehub-admin\""));
        }
        if matches!(self, ApiError::Unavailable(_)) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let ApiError::TooManyRequests { retry_after_secs } = &self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(why) => ApiError::Unavailable(why),
            StoreError::Invalid(why) => ApiError::bad_request("bad-request", why),
            bad @ StoreError::BadFilter(_) => ApiError::bad_request("bad-filter", bad.to_string()),
            bad @ StoreError::BadOrderBy(_) => ApiError::bad_request("bad-orderby", bad.to_string()),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Invalid(fields) => ApiError::Invalid(fields),
            WriteError::NotFound => ApiError::NotFound("No such record".into()),
            WriteError::Conflict(why) => ApiError::Conflict(why),
            WriteError::StaleVersion { current } => {
                ApiError::PreconditionFailed(format!("The record is at version {current}; read it again and retry"))
            }
        }
    }
}
