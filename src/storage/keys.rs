//! Object keys and bucket names: normalisation and validation.
//!
//! Invariant: every name that reaches the database or the object store has
//! passed [`object_name`] (or [`bucket_name`]): no empty, `.` or `..`
//! segment, no control character, at most [`MAX_KEY_BYTES`] bytes. Object
//! bytes are stored under [`data_path`], derived from the row's `version`
//! only, so no user input ever becomes part of a filesystem path.

use object_store::path::Path;

use super::errors::StorageError;

/// Longest object name accepted, in bytes (S3's limit).
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest bucket name accepted (the `enforce_bucket_name_length` trigger's limit).
pub const MAX_BUCKET_CHARS: usize = 100;

/// Normalises an object name as storage-js sends it (leading `/` and
/// repeated `/` dropped, trailing `/` trimmed) and validates it.
pub fn object_name(raw: &str) -> Result<String, StorageError> {
    let invalid = || StorageError::InvalidKey(raw.to_owned());
    let segments: Vec<&str> = raw.split('/').filter(|s| !s.is_empty()).collect();
    if segments.is_empty() {
        return Err(invalid());
    }
    for s in &segments {
        if *s == "." || *s == ".." || s.chars().any(|c| c.is_control() || c == '\u{FFFD}') {
            return Err(invalid());
        }
    }
    let name = segments.join("/");
    if name.len() > MAX_KEY_BYTES {
        return Err(invalid());
    }
    Ok(name)
}

/// Validates a bucket id/name: 1-100 characters from storage-api's set
/// (letters, digits, space and `_ ! - . * ' ( ) & $ @ = ; : + , ?`), not `.` or `..`.
pub fn bucket_name(name: &str) -> Result<(), StorageError> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_BUCKET_CHARS
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || " _!-.*'()&$@=;:+,?".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StorageError::InvalidBucketName)
    }
}

/// Where the bytes of one object version live in the object store:
/// `objects/<first two hex digits>/<version>`. Versions are UUIDs Fluxbase
/// generates, so the path is always well formed.
pub fn data_path(version: &str) -> Path {
    let shard: String = version.chars().filter(char::is_ascii_hexdigit).take(2).collect();
    Path::from_iter(["objects", if shard.is_empty() { "00" } else { shard.as_str() }, version])
}

/// The prefix under which every object version lives (for the orphan sweep).
pub fn data_root() -> Path {
    Path::from("objects")
}

/// Splits a URL tail `<bucket>/<path...>` (percent-encoded) into its parts.
pub fn split_tail(tail: &str) -> Result<(String, String), StorageError> {
    let decoded = percent_encoding::percent_decode_str(tail)
        .decode_utf8()
        .map_err(|_| StorageError::InvalidKey(tail.to_owned()))?;
    let decoded = decoded.trim_start_matches('/');
    match decoded.split_once('/') {
        Some((b, rest)) => Ok((b.to_owned(), rest.to_owned())),
        None => Ok((decoded.to_owned(), String::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised() {
        assert_eq!(object_name("/a//b/c.png/").ok().as_deref(), Some("a/b/c.png"));
        assert_eq!(object_name("folder/über file (1).txt").ok().as_deref(), Some("folder/über file (1).txt"));
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["", "/", "a/../b", "..", "./a", "a\u{0}b", "a\nb", "a\u{7f}"] {
            assert!(matches!(object_name(bad), Err(StorageError::InvalidKey(_))), "{bad:?}");
        }
        assert!(object_name(&"x".repeat(1025)).is_err());
        assert!(object_name(&"x".repeat(1024)).is_ok());
    }

    #[test]
    fn bucket_names() {
        assert!(bucket_name("avatars").is_ok());
        assert!(bucket_name("my bucket-1.x").is_ok());
        for bad in ["", "a/b", "..", "ü", &"x".repeat(101)] {
            assert!(bucket_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn data_paths_use_only_the_version() {
        assert_eq!(data_path("ab12-x").as_ref(), "objects/ab/ab12-x");
        assert_eq!(split_tail("b/a%20b/c").ok(), Some(("b".to_owned(), "a b/c".to_owned())));
    }
}
