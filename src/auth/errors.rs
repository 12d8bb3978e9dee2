//! [`AuthError`]: everything an auth handler can fail with, each mapped to
//! the status, `error_code` and message GoTrue answers with
//! (`internal/api/errorcodes.go`), so supabase-js raises the same
//! `AuthApiError`s it would against Supabase.

use http::StatusCode;
use serde_json::json;

use crate::http::error::ApiError;

/// An auth failure.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// 400 `validation_failed` (bad or missing parameters).
    #[error("{0}")]
    Validation(String),
    /// 400 `bad_json`.
    #[error("Could not parse request body as JSON: {0}")]
    BadJson(String),
    /// 400 `invalid_credentials`.
    #[error("Invalid login credentials")]
    InvalidCredentials,
    /// 400 `email_not_confirmed`.
    #[error("Email not confirmed")]
    EmailNotConfirmed,
    /// 400 `user_banned`.
    #[error("User is banned")]
    UserBanned,
    /// 422 `weak_password`, with the failed rules.
    #[error("{message}")]
    WeakPassword {
        /// What is wrong, for people.
        message: String,
        /// `length`, `characters`.
        reasons: Vec<&'static str>,
    },
    /// 422 `same_password`.
    #[error("New password should be different from the old password.")]
    SamePassword,
    /// 422 `user_already_exists`.
    #[error("User already registered")]
    UserAlreadyExists,
    /// 422 `email_exists`.
    #[error("A user with this email address has already been registered")]
    EmailExists,
    /// 422 `signup_disabled`.
    #[error("Signups not allowed for this instance")]
    SignupDisabled,
    /// 422 `anonymous_provider_disabled`.
    #[error("Anonymous sign-ins are disabled")]
    AnonymousDisabled,
    /// 400 `refresh_token_not_found`.
    #[error("Invalid Refresh Token: Refresh Token Not Found")]
    RefreshTokenNotFound,
    /// 400 `refresh_token_already_used`.
    #[error("Invalid Refresh Token: Already Used")]
    RefreshTokenAlreadyUsed,
    /// 400 `session_expired`.
    #[error("Invalid Refresh Token: Session Expired")]
    SessionExpired,
    /// 400 `unsupported_grant_type`.
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    /// 401 `no_authorization`.
    #[error("This endpoint requires a valid Bearer token")]
    NoAuthorization,
    /// 403 `bad_jwt`.
    #[error("invalid JWT: unable to parse or verify signature, {0}")]
    BadJwt(String),
    /// 403 `session_not_found`.
    #[error("Session from session_id claim in JWT does not exist")]
    SessionNotFound,
    /// 403 `user_not_found` (the token's subject is gone).
    #[error("User from sub claim in JWT does not exist")]
    TokenUserGone,
    /// 404 `user_not_found`.
    #[error("User not found")]
    UserNotFound,
    /// 403 `not_admin`.
    #[error("User not allowed")]
    NotAdmin,
    /// 403 `otp_expired`.
    #[error("Email link is invalid or has expired")]
    OtpExpired,
    /// 403 `reauthentication_needed`.
    #[error("Password update requires reauthentication")]
    ReauthenticationNeeded,
    /// 400 `reauthentication_not_valid`.
    #[error("Requested nonce is invalid or expired")]
    ReauthenticationNotValid,
    /// 400 `flow_state_not_found` / 404 `flow_state_expired`.
    #[error("invalid flow state, no valid flow state found")]
    FlowStateNotFound,
    /// 400 `bad_code_verifier`.
    #[error("code challenge does not match previously saved code verifier")]
    BadCodeVerifier,
    /// 429 `over_request_rate_limit`.
    #[error("Request rate limit reached")]
    OverRequestRateLimit,
    /// 429 `over_email_send_rate_limit`.
    #[error("{0}")]
    OverEmailSendRateLimit(String),
    /// 404 `not_found` for an unknown route.
    #[error("{0}")]
    NotFound(String),
    /// Something broke on our side; logged, shown as 500.
    #[error("{0}")]
    Internal(String),
    /// Any other GoTrue error: status, code, message (MFA and rarer cases).
    #[error("{2}")]
    Coded(StatusCode, &'static str, String),
    /// An error already in the edge's terms (503 while starting, …).
    #[error("{}", .0.message)]
    Api(Box<ApiError>),
}

impl AuthError {
    /// Status and GoTrue error code.
    pub fn status_code(&self) -> (StatusCode, &'static str) {
        use AuthError::*;
        match self {
            Validation(_) => (StatusCode::BAD_REQUEST, "validation_failed"),
            BadJson(_) => (StatusCode::BAD_REQUEST, "bad_json"),
            InvalidCredentials => (StatusCode::BAD_REQUEST, "invalid_credentials"),
            EmailNotConfirmed => (StatusCode::BAD_REQUEST, "email_not_confirmed"),
            UserBanned => (StatusCode::BAD_REQUEST, "user_banned"),
            WeakPassword { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "weak_password"),
            SamePassword => (StatusCode::UNPROCESSABLE_ENTITY, "same_password"),
            UserAlreadyExists => (StatusCode::UNPROCESSABLE_ENTITY, "user_already_exists"),
            EmailExists => (StatusCode::UNPROCESSABLE_ENTITY, "email_exists"),
            SignupDisabled => (StatusCode::UNPROCESSABLE_ENTITY, "signup_disabled"),
            AnonymousDisabled => (StatusCode::UNPROCESSABLE_ENTITY, "anonymous_provider_disabled"),
            RefreshTokenNotFound => (StatusCode::BAD_REQUEST, "refresh_token_not_found"),
            RefreshTokenAlreadyUsed => (StatusCode::BAD_REQUEST, "refresh_token_already_used"),
            SessionExpired => (StatusCode::BAD_REQUEST, "session_expired"),
            UnsupportedGrantType => (StatusCode::BAD_REQUEST, "unsupported_grant_type"),
            NoAuthorization => (StatusCode::UNAUTHORIZED, "no_authorization"),
            BadJwt(_) => (StatusCode::FORBIDDEN, "bad_jwt"),
            SessionNotFound => (StatusCode::FORBIDDEN, "session_not_found"),
            TokenUserGone => (StatusCode::FORBIDDEN, "user_not_found"),
            UserNotFound => (StatusCode::NOT_FOUND, "user_not_found"),
            NotAdmin => (StatusCode::FORBIDDEN, "not_admin"),
            OtpExpired => (StatusCode::FORBIDDEN, "otp_expired"),
            ReauthenticationNeeded => (StatusCode::BAD_REQUEST, "reauthentication_needed"),
            ReauthenticationNotValid => (StatusCode::BAD_REQUEST, "reauthentication_not_valid"),
            FlowStateNotFound => (StatusCode::NOT_FOUND, "flow_state_not_found"),
            BadCodeVerifier => (StatusCode::BAD_REQUEST, "bad_code_verifier"),
            OverRequestRateLimit => (StatusCode::TOO_MANY_REQUESTS, "over_request_rate_limit"),
            OverEmailSendRateLimit(_) => (StatusCode::TOO_MANY_REQUESTS, "over_email_send_rate_limit"),
            NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "unexpected_failure"),
            Api(_) => (StatusCode::INTERNAL_SERVER_ERROR, "unexpected_failure"),
            Coded(status, code, _) => (*status, code),
        }
    }

    /// Wraps an unexpected failure (logged, not shown).
    pub fn internal(e: impl std::fmt::Display) -> AuthError {
        AuthError::Internal(e.to_string())
    }
}

impl From<tokio_postgres::Error> for AuthError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => AuthError::Internal(format!("database: {db}")),
            None => AuthError::internal(e),
        }
    }
}

impl From<deadpool_postgres::PoolError> for AuthError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        AuthError::internal(e)
    }
}

impl From<ApiError> for AuthError {
    fn from(e: ApiError) -> Self {
        AuthError::Api(Box::new(e))
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        match e {
            AuthError::Internal(cause) => return ApiError::internal(&cause),
            AuthError::Api(err) => return *err,
            _ => {}
        }
        let (status, code) = e.status_code();
        let err = ApiError::new(status, code, e.to_string());
        match e {
            AuthError::WeakPassword { reasons, message } => {
                err.with_extra("weak_password", json!({ "reasons": reasons, "message": message }))
            }
            _ => err,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_follow_gotrue() {
        let e: ApiError = AuthError::InvalidCredentials.into();
        assert_eq!((e.status.as_u16(), e.code.as_ref(), e.message.as_str()), (400, "invalid_credentials", "Invalid login credentials"));
        let e: ApiError = AuthError::WeakPassword { message: "short".into(), reasons: vec!["length"] }.into();
        assert_eq!(e.status.as_u16(), 422);
        assert_eq!(e.extra.as_ref().and_then(|m| m.get("weak_password")).map(|w| w["reasons"][0].clone()), Some(json!("length")));
        let e: ApiError = AuthError::Internal("db down".into()).into();
        assert_eq!((e.status.as_u16(), e.message.as_str()), (500, "Internal server error"));
    }
}
