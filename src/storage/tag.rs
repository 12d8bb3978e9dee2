//! Object tags: HMAC-SHA256 over a row's `(id, version)` with a key only
//! Fluxbase reads (`storage.fluxbase_secrets`, migration 0302), stored in
//! the row's `metadata.fluxbaseTag` when Fluxbase writes the row.
//!
//! Bytes are addressed by version alone (see [`super::keys::data_path`]),
//! so this is what ties bytes to the row Fluxbase wrote for them: a row
//! made by other means that copies another object's `version` has no valid
//! tag (ids are unique, and the key is secret), and gets `NoSuchKey`.

use sha2::{Digest, Sha256};

use super::db;
use super::errors::{StorageError, StorageResult};
use super::Storage;

/// The metadata field holding the tag.
pub const FIELD: &str = "fluxbaseTag";

/// Loads the key (once per server).
pub async fn key(s: &Storage) -> StorageResult<&[u8]> {
    s.tag_key
        .get_or_try_init(|| async {
            let client = db::connect(s).await?;
            let row = client
                .query_opt("select value from storage.fluxbase_secrets where name = 'object_tag'", &[])
                .await?
                .ok_or_else(|| StorageError::InvalidRequest("storage tag key missing; run migrations".into()))?;
            Ok::<_, StorageError>(row.try_get::<_, String>(0)?.into_bytes())
        })
        .await
        .map(Vec::as_slice)
}

/// HMAC-SHA256 (RFC 2104).
fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    const BLOCK: usize = 64;
    let mut k = if key.len() > BLOCK { Sha256::digest(key).to_vec() } else { key.to_vec() };
    k.resize(BLOCK, 0);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new().chain_update(&ipad).chain_update(message).finalize();
    Sha256::new().chain_update(&opad).chain_update(inner).finalize().to_vec()
}

/// HMAC-SHA256(key, `"<id>/<version>"`), hex, first 32 characters.
pub fn compute(key: &[u8], id: &uuid::Uuid, version: &str) -> String {
    let mac = hex::encode(hmac(key, format!("{id}/{version}").as_bytes()));
    mac.get(..32).unwrap_or(&mac).to_owned()
}

/// The version whose bytes `row` may be served from, if its tag holds.
pub async fn checked_version(s: &Storage, row: &db::ObjectRow) -> StorageResult<String> {
    let version = row.version.clone().ok_or(StorageError::NoSuchKey)?;
    if verify(key(s).await?, &row.id, &version, &row.metadata) {
        Ok(version)
    } else {
        tracing::warn!(bucket = %row.bucket_id, name = %row.name, "object row without a valid tag; not serving bytes");
        Err(StorageError::NoSuchKey)
    }
}

/// Whether `metadata` carries the right tag for `(id, version)`.
pub fn verify(key: &[u8], id: &uuid::Uuid, version: &str, metadata: &serde_json::Value) -> bool {
    let expected = compute(key, id, version);
    let given = metadata.get(FIELD).and_then(serde_json::Value::as_str).unwrap_or("");
    subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), given.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hex::encode(hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn tags_bind_id_and_version() {
        let id = uuid::Uuid::nil();
        let a = compute(b"Jefe", &id, "v1");
        assert_eq!(a.len(), 32);
        assert_ne!(a, compute(b"Jefe", &id, "v2"));
        assert_ne!(a, compute(b"Jeff", &id, "v1"));
        let meta = serde_json::json!({ FIELD: a });
        assert!(verify(b"Jefe", &id, "v1", &meta));
        assert!(!verify(b"Jefe", &uuid::Uuid::new_v4(), "v1", &meta));
    }
}
