//! The API's errors, each with its status code, a stable reason and the SDK's JSON
//! body (`{"status": "fail", "message": ...}`). Internal causes go to the log, never to
//! the client.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use licenseware_crds::event_schema::EventSchemaError;

use super::auth::AuthError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// A 400 whose body is a whole document (e.g. a validation with nothing valid).
    #[error("the request was refused")]
    Rejected(Value),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("the upload took longer than {0} s")]
    Deadline(u64),
    /// The quota response, as the SDK returned it with 402.
    #[error("monthly quota exceeded")]
    QuotaExceeded(Value),
    #[error("{what} is unavailable: {cause}")]
    Unavailable { what: &'static str, cause: String },
    #[error("{reason}: {cause}")]
    Internal { reason: &'static str, cause: String },
    /// The server built a processing event that its own events topic's contract
    /// refuses: a deployment fault (the Uploader is not Ready), nothing was sent.
    #[error(transparent)]
    EventRefused(#[from] EventSchemaError),
}

impl ApiError {
    pub fn internal(reason: &'static str, cause: impl std::fmt::Display) -> Self {
        Self::Internal { reason, cause: cause.to_string() }
    }

    pub fn unavailable(what: &'static str, cause: impl std::fmt::Display) -> Self {
        Self::Unavailable { what, cause: cause.to_string() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Auth(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) | Self::Rejected(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Deadline(_) => StatusCode::REQUEST_TIMEOUT,
            Self::QuotaExceeded(_) => StatusCode::PAYMENT_REQUIRED,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal { .. } | Self::EventRefused(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Self::Auth(_) => "Unauthorized",
            Self::NotFound(_) => "NotFound",
            Self::BadRequest(_) => "BadRequest",
            Self::Rejected(_) => "NothingValid",
            Self::Forbidden(_) => "Forbidden",
            Self::TooLarge(_) => "TooLarge",
            Self::Deadline(_) => "UploadDeadline",
            Self::QuotaExceeded(_) => "QuotaExceeded",
            Self::Unavailable { .. } => "Unavailable",
            Self::Internal { reason, .. } => reason,
            Self::EventRefused(error) => error.reason(),
        }
    }
}

pub fn fail(message: &str) -> Value {
    json!({"status": "fail", "message": message})
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match self {
            Self::Auth(error) => return error.into_response(),
            Self::Rejected(body) | Self::QuotaExceeded(body) => body,
            Self::Unavailable { what, ref cause } => {
                tracing::warn!(what, cause, "a dependency is unavailable");
                fail(&format!("{what} is unavailable, try again later"))
            }
            Self::Internal { reason, ref cause } => {
                tracing::error!(reason, cause, "request failed");
                json!({"status": "failed", "message": "Something went wrong"})
            }
            Self::EventRefused(ref error) => {
                tracing::error!(reason = error.reason(), %error, "processing event refused");
                fail(&format!(
                    "The processing event does not match the schema of this uploader's events \
                     topic ({error}); nothing was sent and no quota was used"
                ))
            }
            other => fail(&other.to_string()),
        };
        (status, Json(body)).into_response()
    }
}
