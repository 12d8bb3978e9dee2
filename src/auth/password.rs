//! Password hashing: Argon2id at OWASP's parameters (19 MiB, t=2, p=1) on a
//! bounded worker pool, plus strength rules.
//!
//! Invariant: at most `workers` hashes run at once (one per core by
//! default), on blocking threads, so a burst of sign-ins never occupies the
//! async runtime that serves every other request; at most `queue` more wait
//! for a worker, and past that a request gets 429 `over_request_rate_limit`
//! at once instead of piling up memory and latency.
//!
//! Hashes of users imported from Supabase (bcrypt `$2a$…`, GoTrue's own
//! format) verify too, and are replaced by an Argon2id hash on the first
//! successful sign-in. Unknown users are checked against a dummy hash, so the
//! time a sign-in takes does not tell whether the address is registered.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use super::config::AuthConfig;
use super::errors::AuthError;

/// OWASP's minimum for Argon2id: 19 MiB of memory.
pub const MEMORY_KIB: u32 = 19 * 1024;
/// OWASP's minimum for Argon2id: 2 passes.
pub const TIME_COST: u32 = 2;

/// The outcome of checking a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Whether the password matched.
    pub ok: bool,
    /// A new Argon2id hash to store when the old one was bcrypt or weaker.
    pub rehash: Option<String>,
}

/// The bounded pool the hashes run on.
#[derive(Debug, Clone)]
pub struct PasswordPool {
    workers: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
    dummy: Arc<str>,
}

fn argon2() -> Argon2<'static> {
    // The parameters are constants within argon2's ranges.
    let params = Params::new(MEMORY_KIB, TIME_COST, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes `password` with Argon2id (blocking; call on the pool).
pub fn hash_blocking(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(AuthError::internal)
}

/// Checks `password` against a stored hash (blocking; call on the pool).
pub fn verify_blocking(password: &str, stored: &str) -> Result<Verified, AuthError> {
    if stored.starts_with("$2a$") || stored.starts_with("$2b$") || stored.starts_with("$2y$") {
        let ok = bcrypt::verify(password, stored).unwrap_or(false);
        let rehash = if ok { Some(hash_blocking(password)?) } else { None };
        return Ok(Verified { ok, rehash });
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Ok(Verified { ok: false, rehash: None });
    };
    let ok = match parsed.algorithm.as_str() {
        "argon2id" | "argon2i" | "argon2d" => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        _ => false,
    };
    // Upgrade hashes made with weaker parameters than ours.
    let weaker = parsed.algorithm.as_str() != "argon2id"
        || Params::try_from(&parsed).map(|p| p.m_cost() < MEMORY_KIB || p.t_cost() < TIME_COST).unwrap_or(true);
    let rehash = if ok && weaker { Some(hash_blocking(password)?) } else { None };
    Ok(Verified { ok, rehash })
}

impl PasswordPool {
    /// A pool per the configuration (`password_workers = 0` means one per core).
    pub fn new(config: &AuthConfig) -> Result<PasswordPool, AuthError> {
        let workers = match config.password_workers {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            n => n as usize,
        };
        let queue = config.password_queue as usize;
        let dummy = hash_blocking("fluxbase-dummy-password-for-unknown-users")?;
        Ok(PasswordPool {
            workers: Arc::new(Semaphore::new(workers)),
            admitted: Arc::new(Semaphore::new(workers + queue)),
            dummy: dummy.into(),
        })
    }

    async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, AuthError> {
        let Ok(_admitted) = Arc::clone(&self.admitted).try_acquire_owned() else {
            return Err(AuthError::OverRequestRateLimit);
        };
        let _worker = Arc::clone(&self.workers).acquire_owned().await.map_err(AuthError::internal)?;
        tokio::task::spawn_blocking(job).await.map_err(AuthError::internal)
    }

    /// Hashes a password.
    pub async fn hash(&self, password: String) -> Result<String, AuthError> {
        self.run(move || hash_blocking(&password)).await?
    }

    /// Checks a password against `stored`; `None` (unknown user, no
    /// password set) spends the same time on a dummy hash and fails.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<Verified, AuthError> {
        let dummy = Arc::clone(&self.dummy);
        self.run(move || match stored.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => verify_blocking(&password, s),
            None => verify_blocking(&password, &dummy).map(|_| Verified { ok: false, rehash: None }),
        })
        .await?
    }
}

/// Checks GoTrue's strength rules; the error is the `weak_password` answer.
pub fn check_strength(config: &AuthConfig, password: &str) -> Result<(), AuthError> {
    let mut reasons = Vec::new();
    let mut messages = Vec::new();
    if password.chars().count() < config.password_min_length as usize {
        reasons.push("length");
        messages.push(format!("Password should be at least {} characters.", config.password_min_length));
    }
    let classes = config.required_classes();
    if !classes.is_empty() && !classes.iter().all(|set| password.chars().any(|c| set.contains(c))) {
        reasons.push("characters");
        messages.push(format!("Password should contain at least one character of each: {}.", classes.join(", ")));
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(AuthError::WeakPassword { message: messages.join(" "), reasons })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_roundtrip_at_owasp_parameters() {
        let h = hash_blocking("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert_eq!(verify_blocking("correct horse", &h).expect("verify"), Verified { ok: true, rehash: None });
        assert!(!verify_blocking("wrong", &h).expect("verify").ok);
        assert!(!verify_blocking("x", "garbage").expect("no panic").ok);
        assert!(!verify_blocking("x", "").expect("no panic").ok);
    }

    #[test]
    fn bcrypt_hashes_verify_and_are_upgraded() {
        let b = bcrypt::hash("imported-pass", 4).expect("bcrypt");
        let v = verify_blocking("imported-pass", &b).expect("verify");
        assert!(v.ok);
        assert!(v.rehash.as_deref().is_some_and(|h| h.starts_with("$argon2id$")));
        assert_eq!(verify_blocking("nope", &b).expect("verify"), Verified { ok: false, rehash: None });
    }

    #[test]
    fn strength_rules() {
        let mut c = AuthConfig::default();
        assert!(check_strength(&c, "123456").is_ok());
        let Err(AuthError::WeakPassword { reasons, message }) = check_strength(&c, "12345") else { panic!("weak") };
        assert_eq!((reasons, message.as_str()), (vec!["length"], "Password should be at least 6 characters."));
        c.password_required_characters = "abcdefghijklmnopqrstuvwxyz:0123456789".into();
        assert!(check_strength(&c, "abc123").is_ok());
        let Err(AuthError::WeakPassword { reasons, .. }) = check_strength(&c, "abcdef") else { panic!("weak") };
        assert_eq!(reasons, vec!["characters"]);
    }

    #[tokio::test]
    async fn a_full_queue_gets_429_at_once() {
        let c = AuthConfig { password_workers: 1, password_queue: 1, ..AuthConfig::default() };
        let pool = PasswordPool::new(&c).expect("pool");
        let (a, b, d) = tokio::join!(pool.hash("a".into()), pool.hash("b".into()), pool.hash("c".into()));
        let limited = [&a, &b, &d].iter().filter(|r| matches!(r, Err(AuthError::OverRequestRateLimit))).count();
        assert_eq!(limited, 1, "two admitted (one running, one queued), one refused");
    }
}
