//! TOTP (RFC 6238: HMAC-SHA1, 30 s steps, 6 digits), base32 secrets, and
//! AES-256-GCM encryption of secrets at rest.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// Seconds per TOTP step.
pub const STEP_SECS: u64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;

/// The code for `secret` at step `counter` (RFC 4226 HOTP).
pub fn hotp(secret: &[u8], counter: u64) -> Option<u32> {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret).ok()?;
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = usize::from(*h.last()? & 0x0f);
    let b = h.get(off..off + 4)?;
    let bin = u32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]]);
    Some(bin % 10u32.pow(DIGITS))
}

/// Whether `code` is valid for `secret` at unix time `now`, allowing one
/// step of clock skew either way; compared in constant time.
pub fn check(secret: &[u8], code: &str, now: u64) -> bool {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let step = now / STEP_SECS;
    let mut ok = false;
    for s in [step.saturating_sub(1), step, step + 1] {
        if let Some(expected) = hotp(secret, s) {
            let e = format!("{expected:0width$}", width = DIGITS as usize);
            ok |= bool::from(e.as_bytes().ct_eq(code.as_bytes()));
        }
    }
    ok
}

/// RFC 4648 base32 without padding (what authenticator apps read).
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let mut buf: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            out.push(char::from(ALPHABET[((buf >> (bits - 5)) & 31) as usize]));
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buf << (5 - bits)) & 31) as usize]));
    }
    out
}

/// A new 160-bit secret.
pub fn new_secret() -> [u8; 20] {
    let mut s = [0u8; 20];
    rand::rng().fill_bytes(&mut s);
    s
}

/// Encrypts a secret for storage: `v1:` + base64(nonce ‖ ciphertext).
pub fn seal(key: &[u8; 32], secret: &[u8]) -> Option<String> {
    let cipher = Aes256Gcm::new_from_slice(key).ok()?;
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let ct = cipher.encrypt(&Nonce::from(nonce), secret).ok()?;
    let mut all = nonce.to_vec();
    all.extend_from_slice(&ct);
    Some(format!("v1:{}", base64::engine::general_purpose::STANDARD.encode(all)))
}

/// Decrypts what [`seal`] made; `None` if it was tampered with or the key differs.
pub fn open(key: &[u8; 32], sealed: &str) -> Option<Vec<u8>> {
    let raw = base64::engine::general_purpose::STANDARD.decode(sealed.strip_prefix("v1:")?).ok()?;
    if raw.len() < 12 + 16 {
        return None;
    }
    let (nonce, ct) = raw.split_at(12);
    let nonce: [u8; 12] = nonce.try_into().ok()?;
    Aes256Gcm::new_from_slice(key).ok()?.decrypt(&Nonce::from(nonce), ct).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_vectors() {
        // RFC 6238 appendix B, SHA1, 8 digits -> last 6 digits.
        let secret = b"12345678901234567890";
        assert_eq!(hotp(secret, 59 / 30), Some(287_082));
        assert_eq!(hotp(secret, 1_111_111_109 / 30), Some(81_804));
        assert!(check(secret, "287082", 59));
        assert!(check(secret, "287082", 59 + 30), "one step of skew");
        assert!(!check(secret, "287082", 59 + 90));
        assert!(!check(secret, "28708", 59));
        assert!(!check(secret, "abcdef", 59));
    }

    #[test]
    fn base32_and_sealing() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        let key = [7u8; 32];
        let sealed = seal(&key, b"secret").expect("seal");
        assert_eq!(open(&key, &sealed).as_deref(), Some(&b"secret"[..]));
        assert!(open(&[8u8; 32], &sealed).is_none(), "another key");
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push('A');
        assert!(open(&key, &tampered).is_none() || open(&key, &tampered).as_deref() != Some(&b"secret"[..]));
        assert!(open(&key, "garbage").is_none());
    }
}
