//! Database access for storage: every transaction first becomes the caller
//! (role + `request.jwt.claims`, plus `storage.operation` for policies), so
//! RLS on `storage.buckets` and `storage.objects` decides, as in Supabase.

use deadpool_postgres::{Object, Transaction};
use serde_json::Value;
use tokio_postgres::Row;

use super::errors::{StorageError, StorageResult};
use super::Storage;
use crate::http::caller::Caller;

/// A pooled connection.
pub async fn connect(s: &Storage) -> StorageResult<Object> {
    let ready = s.app.require_ready()?;
    Ok(ready.pool.get().await?)
}

/// Begins a transaction acting as `caller`, with `storage.operation` set to `operation`.
pub async fn begin<'a>(client: &'a mut Object, caller: &Caller, operation: &str) -> StorageResult<Transaction<'a>> {
    let tx = client.transaction().await?;
    act_as(&tx, caller, operation).await?;
    Ok(tx)
}

/// Switches an open transaction (begun as the pool's superuser) to `caller`.
pub async fn act_as(tx: &Transaction<'_>, caller: &Caller, operation: &str) -> StorageResult<()> {
    let stmt = act_as_statement(tx).await?;
    let (role, claims) = caller.apply_params();
    tx.execute(&stmt, &[&role, &claims, &operation]).await?;
    Ok(())
}

/// The prepared statement behind [`act_as`] (parameters: role, claims,
/// operation), for callers that pipeline it with the statement that
/// follows: prepare it first, so the switch is sent before that statement.
pub async fn act_as_statement(tx: &Transaction<'_>) -> StorageResult<tokio_postgres::Statement> {
    Ok(tx
        .prepare_cached(
            "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true), set_config('storage.operation', $3, true)",
        )
        .await?)
}

/// The identity used where storage-api acts as the superuser: public and
/// signed downloads, and uploads through a signed upload URL (whose token
/// the server issued after checking the caller).
pub fn service_caller() -> Caller {
    Caller { role: "service_role".into(), claims: serde_json::json!({"role": "service_role"}).into(), token: None }
}

/// A bucket row.
#[derive(Debug, Clone)]
pub struct Bucket {
    /// Id (also the name).
    pub id: String,
    /// Whether objects are readable without a key through `/object/public`.
    pub public: bool,
    /// Largest object, bytes.
    pub file_size_limit: Option<i64>,
    /// Accepted content types (`image/*` wildcards allowed).
    pub allowed_mime_types: Option<Vec<String>>,
}

/// Columns of `storage.buckets` as the API returns them.
pub const BUCKET_JSON: &str = "json_build_object('id', b.id, 'name', b.name, 'owner', coalesce(b.owner::text, b.owner_id, ''), \
     'public', b.public, 'type', b.type, 'file_size_limit', b.file_size_limit, 'allowed_mime_types', b.allowed_mime_types, \
     'created_at', b.created_at, 'updated_at', b.updated_at)";

/// Reads a bucket visible in `tx` (RLS applies unless service_role).
pub async fn bucket(tx: &Transaction<'_>, id: &str) -> StorageResult<Bucket> {
    let stmt = bucket_statement(tx).await?;
    Bucket::from_row(tx.query_opt(&stmt, &[&id]).await?)
}

/// The prepared statement behind [`bucket`] (parameter: the id).
pub async fn bucket_statement(tx: &Transaction<'_>) -> StorageResult<tokio_postgres::Statement> {
    Ok(tx.prepare_cached("select id, public, file_size_limit, allowed_mime_types from storage.buckets where id = $1").await?)
}

impl Bucket {
    /// The bucket in a row of [`bucket_statement`]; none is `NoSuchBucket`.
    pub fn from_row(row: Option<Row>) -> StorageResult<Bucket> {
        let row = row.ok_or(StorageError::NoSuchBucket)?;
        Ok(Bucket {
            id: row.try_get(0)?,
            public: row.try_get::<_, Option<bool>>(1)?.unwrap_or(false),
            file_size_limit: row.try_get(2)?,
            allowed_mime_types: row.try_get(3)?,
        })
    }
}

/// An object row (the parts downloads need).
#[derive(Debug, Clone)]
pub struct ObjectRow {
    /// Row id.
    pub id: uuid::Uuid,
    /// Bucket.
    pub bucket_id: String,
    /// Name within the bucket.
    pub name: String,
    /// Version (locates the bytes); `None` for rows written by hand in SQL.
    pub version: Option<String>,
    /// storage-api's system metadata (`size`, `mimetype`, `eTag`, …).
    pub metadata: Value,
    /// User metadata.
    pub user_metadata: Option<Value>,
    /// RFC 3339 timestamps.
    pub created_at: Option<String>,
    /// Last update.
    pub updated_at: Option<String>,
}

/// The select list matching [`ObjectRow::from_row`].
pub const OBJECT_COLS: &str = "o.id, o.bucket_id, o.name, o.version, coalesce(o.metadata, '{}'::jsonb), o.user_metadata, \
     to_char(o.created_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), \
     to_char(o.updated_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";

impl ObjectRow {
    /// Reads the columns of [`OBJECT_COLS`].
    pub fn from_row(row: &Row) -> StorageResult<ObjectRow> {
        Ok(ObjectRow {
            id: row.try_get(0)?,
            bucket_id: row.try_get::<_, Option<String>>(1)?.unwrap_or_default(),
            name: row.try_get::<_, Option<String>>(2)?.unwrap_or_default(),
            version: row.try_get(3)?,
            metadata: row.try_get(4)?,
            user_metadata: row.try_get(5)?,
            created_at: row.try_get(6)?,
            updated_at: row.try_get(7)?,
        })
    }

    /// Size in bytes from the metadata.
    pub fn size(&self) -> u64 {
        self.metadata.get("size").and_then(Value::as_u64).unwrap_or(0)
    }

    /// A string field of the metadata.
    pub fn meta_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Value::as_str)
    }
}

/// Reads an object visible in `tx`.
pub async fn object(tx: &Transaction<'_>, bucket: &str, name: &str) -> StorageResult<ObjectRow> {
    let sql = format!("select {OBJECT_COLS} from storage.objects o where o.bucket_id = $1 and o.name = $2");
    let stmt = tx.prepare_cached(&sql).await?;
    let row = tx.query_opt(&stmt, &[&bucket, &name]).await?.ok_or(StorageError::NoSuchKey)?;
    ObjectRow::from_row(&row)
}
