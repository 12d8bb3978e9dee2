//! [`StorageError`]: what can go wrong in `/storage/v1`, and how storage-api
//! names it (`code`, the short `error`, the real status in `statusCode`).

use http::StatusCode;

use crate::http::error::ApiError;

/// A storage failure, mapped to storage-api's error codes by [`StorageError::api`].
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The bucket does not exist or the caller may not see it.
    #[error("Bucket not found")]
    NoSuchBucket,
    /// The object does not exist or the caller may not see it.
    #[error("Object not found")]
    NoSuchKey,
    /// An object already exists at that name.
    #[error("The resource already exists")]
    Duplicate,
    /// A bucket with that id already exists.
    #[error("The resource already exists")]
    BucketAlreadyExists,
    /// Deleting a bucket that still holds objects.
    #[error("The bucket you tried to delete is not empty")]
    BucketNotEmpty,
    /// The upload is larger than the bucket's or the server's limit.
    #[error("The object exceeded the maximum allowed size")]
    EntityTooLarge,
    /// The bucket does not accept this content type.
    #[error("mime type {0} is not supported")]
    InvalidMimeType(String),
    /// The object name is not acceptable.
    #[error("Invalid key: {0}")]
    InvalidKey(String),
    /// The bucket name is not acceptable.
    #[error("Bucket name invalid")]
    InvalidBucketName,
    /// RLS refused the operation.
    #[error("new row violates row-level security policy")]
    AccessDenied,
    /// A signed URL token that is missing, forged or for another object.
    #[error("{0}")]
    InvalidSignature(String),
    /// A malformed request.
    #[error("{0}")]
    InvalidRequest(String),
    /// A `Range` that does not fit the object.
    #[error("Range not satisfiable")]
    InvalidRange,
    /// The object store failed.
    #[error("storage backend: {0}")]
    Backend(#[from] object_store::Error),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] tokio_postgres::Error),
    /// Flushing written bytes to disk failed (file backend).
    #[error("storage backend: flushing {path} to disk: {source}")]
    Flush {
        /// The file or directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// No database connection.
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// Reading the request body failed.
    #[error("request body: {0}")]
    Body(String),
    /// An image too large (bytes or pixels) to transform.
    #[error("{0}")]
    ImageTooLarge(String),
    /// An image that cannot be transformed (unsupported format, corrupt data, bad options).
    #[error("{0}")]
    InvalidImage(String),
    /// Passed through unchanged (gate errors, 503).
    #[error("{}", .0.message)]
    Api(ApiError),
}

impl From<ApiError> for StorageError {
    fn from(e: ApiError) -> Self {
        StorageError::Api(e)
    }
}

impl StorageError {
    /// The [`ApiError`] the edge renders in storage-api's shape.
    pub fn api(&self) -> ApiError {
        use StorageError as E;
        let msg = self.to_string();
        let (status, code, error) = match self {
            E::NoSuchBucket => (StatusCode::NOT_FOUND, "NoSuchBucket", "Bucket not found"),
            E::NoSuchKey => (StatusCode::NOT_FOUND, "NoSuchKey", "not_found"),
            E::Duplicate => (StatusCode::CONFLICT, "ResourceAlreadyExists", "Duplicate"),
            E::BucketAlreadyExists => (StatusCode::CONFLICT, "BucketAlreadyExists", "Duplicate"),
            E::BucketNotEmpty => (StatusCode::CONFLICT, "InvalidRequest", "Bucket not empty"),
            E::EntityTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "EntityTooLarge", "Payload too large"),
            E::InvalidMimeType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "InvalidMimeType", "invalid_mime_type"),
            E::InvalidKey(_) => (StatusCode::BAD_REQUEST, "InvalidKey", "Invalid Input"),
            E::InvalidBucketName => (StatusCode::BAD_REQUEST, "InvalidBucketName", "Invalid Input"),
            E::AccessDenied => (StatusCode::FORBIDDEN, "AccessDenied", "Unauthorized"),
            E::InvalidSignature(_) => (StatusCode::BAD_REQUEST, "InvalidSignature", "InvalidSignature"),
            E::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "InvalidRequest", "Invalid Input"),
            E::InvalidRange => (StatusCode::RANGE_NOT_SATISFIABLE, "InvalidRange", "Invalid Range"),
            E::Backend(object_store::Error::NotFound { .. }) => (StatusCode::NOT_FOUND, "NoSuchKey", "not_found"),
            E::Backend(_) | E::Flush { .. } => return internal(self, "InternalError"),
            E::Database(e) => return database(e, self),
            E::Pool(_) => {
                return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "DatabaseTimeout", "Database is busy; try again")
                    .with_details("database_timeout")
            }
            E::Body(_) => (StatusCode::BAD_REQUEST, "InvalidRequest", "Invalid Input"),
            E::ImageTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "EntityTooLarge", "Payload too large"),
            E::InvalidImage(_) => (StatusCode::UNPROCESSABLE_ENTITY, "InvalidRequest", "Invalid Input"),
            E::Api(e) => return e.clone(),
        };
        let message = match self {
            E::NoSuchKey | E::Backend(_) => "Object not found".to_owned(),
            _ => msg,
        };
        ApiError::new(status, code, message).with_details(error)
    }
}

fn internal(e: &StorageError, code: &'static str) -> ApiError {
    let mut a = ApiError::internal(e);
    a.code = code.into();
    a.with_details("internal")
}

/// SQLSTATEs the storage code expects: RLS, uniqueness, missing bucket.
fn database(e: &tokio_postgres::Error, whole: &StorageError) -> ApiError {
    use tokio_postgres::error::SqlState;
    let Some(db) = e.as_db_error() else { return internal(whole, "DatabaseError") };
    let code = db.code();
    if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        let m = db.message().to_owned();
        return ApiError::new(StatusCode::FORBIDDEN, "AccessDenied", m).with_details("Unauthorized");
    }
    if *code == SqlState::UNIQUE_VIOLATION {
        return StorageError::Duplicate.api();
    }
    if *code == SqlState::FOREIGN_KEY_VIOLATION {
        return StorageError::NoSuchBucket.api();
    }
    if *code == SqlState::CHECK_VIOLATION || *code == SqlState::RAISE_EXCEPTION || *code == SqlState::INVALID_TEXT_REPRESENTATION {
        return ApiError::new(StatusCode::BAD_REQUEST, "InvalidRequest", db.message().to_owned()).with_details("Invalid Input");
    }
    internal(whole, "DatabaseError")
}

impl warp::reject::Reject for StorageError {}

/// Result of storage operations.
pub type StorageResult<T> = Result<T, StorageError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_storage_api() {
        let a = StorageError::NoSuchKey.api();
        assert_eq!((a.status.as_u16(), a.code.as_ref(), a.details.as_deref()), (404, "NoSuchKey", Some("not_found")));
        let a = StorageError::EntityTooLarge.api();
        assert_eq!((a.status.as_u16(), a.code.as_ref()), (413, "EntityTooLarge"));
        let a = StorageError::InvalidKey("a/../b".into()).api();
        assert_eq!(a.message, "Invalid key: a/../b");
    }
}
