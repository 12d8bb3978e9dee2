//! [`Hs256`]: the fast way to verify a token signed with the shared secret,
//! taking each step once.
//!
//! `jsonwebtoken::decode` parses the header twice, builds a verifier, and
//! parses the claims twice (once for the caller, once to validate them).
//! For a token the server has not seen before, that was most of what a
//! request with a new JWT cost beyond one with a cached one. Here the header
//! segment is compared with the few already known to say HS256, the
//! signature is checked with `jsonwebtoken::crypto::verify`, and the claims
//! are parsed once; their JSON text is kept as it was signed.
//!
//! The one rule: this accepts only tokens that `jsonwebtoken::decode` with
//! `super::validation(HS256)` accepts, with the same claims. Whatever it
//! is not sure of (an unfamiliar header that does not say HS256, escapes in
//! the claims, a registered claim given twice or of an unusual type) it
//! leaves to `decode` by answering `None`, so every refusal, and its error,
//! is `decode`'s. The test below holds it to that over mutated tokens.

use std::sync::RwLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::claims::Claims;

/// Header segments remembered (a deployment sees one or two).
const KNOWN_HEADERS: usize = 8;

/// Claims `decode` itself reads; each may appear at most once here.
const REGISTERED: [&[u8; 3]; 5] = [b"exp", b"nbf", b"sub", b"iss", b"aud"];

/// The secret's verifying key and the header segments known to say HS256.
pub struct Hs256 {
    key: DecodingKey,
    headers: RwLock<Vec<Box<str>>>,
    leeway: u64,
}

impl Hs256 {
    /// A verifier for tokens signed with `secret`, allowing `leeway`
    /// seconds past `exp` as `super::validation` does.
    pub fn new(secret: &[u8], leeway: u64) -> Hs256 {
        Hs256 { key: DecodingKey::from_secret(secret), headers: RwLock::new(Vec::new()), leeway }
    }

    /// The secret as a verifying key.
    pub fn key(&self) -> &DecodingKey {
        &self.key
    }

    /// The claims of `token` if it surely verifies; `None` when it does not
    /// or when `decode` should decide.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let (message, signature) = token.rsplit_once('.')?;
        let (header, payload) = message.rsplit_once('.')?;
        if header.is_empty() || header.contains('.') {
            return None;
        }
        let known = self.is_known(header);
        if !known && jsonwebtoken::decode_header(token).ok()?.alg != Algorithm::HS256 {
            return None;
        }
        if !jsonwebtoken::crypto::verify(signature, message.as_bytes(), &self.key, Algorithm::HS256).ok()? {
            return None;
        }
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let claims = self.valid_claims(&text)?;
        if !known {
            self.remember(header);
        }
        Some(Claims::with_text(claims, text))
    }

    /// The claims in `text` if `decode`'s validation surely passes them.
    fn valid_claims(&self, text: &str) -> Option<Value> {
        if text.contains('\\') || !registered_at_most_once(text) {
            return None;
        }
        let value: Value = serde_json::from_str(text).ok()?;
        let map = value.as_object()?;
        let now = jsonwebtoken::get_current_timestamp();
        let fine = match map.get("exp") {
            None => true,
            Some(exp) => exp.as_u64().is_some_and(|e| e >= now.saturating_sub(self.leeway)),
        } && map.get("nbf").is_none_or(|n| n.as_u64().is_some())
            && map.get("sub").is_none_or(Value::is_string);
        fine.then_some(value)
    }

    /// Whether `header` is a segment already seen to say HS256.
    fn is_known(&self, header: &str) -> bool {
        self.headers.read().is_ok_and(|h| h.iter().any(|k| **k == *header))
    }

    fn remember(&self, header: &str) {
        if let Ok(mut h) = self.headers.write() {
            if h.len() < KNOWN_HEADERS && !h.iter().any(|k| **k == *header) {
                h.push(header.into());
            }
        }
    }
}

/// Whether no registered claim's name appears twice as a quoted string.
/// Without escapes (checked first), a key appears in the text exactly as
/// written, so this finds a registered claim given twice, which `decode`
/// refuses and a `Value` would silently collapse. A name that is also a
/// value (`"aud":"sub"`) counts too; that token just goes to `decode`.
fn registered_at_most_once(text: &str) -> bool {
    let b = text.as_bytes();
    let mut seen = [false; REGISTERED.len()];
    for (i, _) in b.iter().enumerate().filter(|(_, c)| **c == b'"') {
        let Some(&[x, y, z, b'"']) = b.get(i + 1..i + 5) else { continue };
        if let Some(k) = REGISTERED.iter().position(|r| **r == [x, y, z]) {
            if std::mem::replace(&mut seen[k], true) {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    const SECRET: &[u8] = b"a-test-secret-of-reasonable-length";

    fn general(token: &str) -> Option<Value> {
        let v = super::super::validation(Algorithm::HS256);
        jsonwebtoken::decode::<Value>(token, &DecodingKey::from_secret(SECRET), &v).ok().map(|d| d.claims)
    }

    fn sign_raw(header: &str, payload: &str, secret: &[u8]) -> String {
        let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &EncodingKey::from_secret(secret), Algorithm::HS256)
            .expect("sign");
        format!("{message}.{sig}")
    }

    /// Tokens near the edges of what `decode` accepts.
    fn corpus() -> Vec<String> {
        let now = jsonwebtoken::get_current_timestamp();
        let hs = r#"{"alg":"HS256","typ":"JWT"}"#;
        let mut out = vec![
            encode(&Header::default(), &json!({"sub": "u", "role": "authenticated", "exp": now + 60}), &EncodingKey::from_secret(SECRET)).expect("sign"),
        ];
        let payloads = [
            format!(r#"{{"sub":"u","exp":{}}}"#, now + 60),
            format!(r#"{{"sub":"u","exp":{}}}"#, now - 10),
            format!(r#"{{"sub":"u","exp":{}}}"#, now - 29),
            format!(r#"{{"sub":"u","exp":{}}}"#, now - 31),
            format!(r#"{{"sub":"u","exp":{}}}"#, now - 3600),
            format!(r#"{{"exp":{}.5}}"#, now + 60),
            r#"{"exp":"soon"}"#.into(),
            r#"{"exp":-1}"#.into(),
            r#"{"exp":null}"#.into(),
            r#"{"exp":{"a":1}}"#.into(),
            format!(r#"{{"exp":{0},"exp":{0}}}"#, now + 60),
            r#"{"sub":"a","sub":"b"}"#.into(),
            r#"{"sub":{"a":1},"role":"x"}"#.into(),
            r#"{"sub":null}"#.into(),
            r#"{"sub":7}"#.into(),
            r#"{"nbf":99999999999}"#.into(),
            r#"{"nbf":"x"}"#.into(),
            r#"{"aud":["a",1],"iss":{"x":2}}"#.into(),
            r#"{"aud":"authenticated","iss":"x"}"#.into(),
            r#"{"role":"anon"}"#.into(),
            r#"{"s\u0075b":"a","sub":"b"}"#.into(),
            r#"{"role":"a\"b"}"#.into(),
            r#"[1,2,3]"#.into(),
            r#""text""#.into(),
            r#"{}"#.into(),
            r#"{"role":"anon"} x"#.into(),
            r#"{"n":1e400}"#.into(),
            " { \"role\" : \"anon\" } ".into(),
        ];
        let headers = [
            hs,
            r#"{"alg":"HS256"}"#,
            r#"{"typ":"JWT","alg":"HS256","kid":"k1"}"#,
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"HS384","typ":"JWT"}"#,
            r#"{"alg":"RS256","typ":"JWT"}"#,
            r#"{"typ":"JWT"}"#,
            r#"not json"#,
        ];
        for h in headers {
            for p in &payloads {
                out.push(sign_raw(h, p, SECRET));
            }
        }
        out.push(sign_raw(hs, &payloads[0], b"another secret"));
        out
    }

    #[test]
    fn accepts_only_what_decode_accepts_with_the_same_claims() {
        let fast = Hs256::new(SECRET, super::super::LEEWAY_SECS.unsigned_abs());
        let mut rng = StdRng::seed_from_u64(7);
        let mut accepted = 0;
        for token in corpus() {
            let mut variants = vec![token.clone(), format!("{token}."), format!(".{token}"), token.replacen('.', "..", 1)];
            for _ in 0..40 {
                let mut b = token.clone().into_bytes();
                let i = rng.random_range(0..b.len());
                b[i] = b"AZaz09-_.=+/ "[rng.random_range(0..13)];
                variants.push(String::from_utf8_lossy(&b).into_owned());
            }
            for t in variants {
                // Twice: the second sees the header as known.
                for _ in 0..2 {
                    if let Some(c) = fast.verify(&t) {
                        accepted += 1;
                        let g = general(&t);
                        assert_eq!(g.as_ref(), Some(&*c), "fast path accepted what decode refuses: {t}");
                        let reparsed: Value = serde_json::from_str(c.json()).expect("claims text is JSON");
                        assert_eq!(&reparsed, &*c, "text and value agree");
                    }
                }
            }
        }
        assert!(accepted > 20, "the fast path takes the common tokens ({accepted})");
    }

    #[test]
    fn registered_claims_given_twice_are_found() {
        assert!(registered_at_most_once(r#"{"sub":"a","exp":1,"role":"x"}"#));
        assert!(!registered_at_most_once(r#"{"sub":"a","sub":"b"}"#));
        assert!(!registered_at_most_once(r#"{"aud":"sub","sub":"b"}"#));
        assert!(registered_at_most_once(r#"{"subject":"a","sub":"b","x":"sub "}"#));
        assert!(registered_at_most_once("\"sub"));
    }

    #[test]
    fn common_tokens_take_the_fast_path() {
        let fast = Hs256::new(SECRET, 30);
        let now = jsonwebtoken::get_current_timestamp();
        for claims in [json!({"role": "anon"}), json!({"sub": "u", "role": "authenticated", "exp": now + 5, "aud": "authenticated"})] {
            let t = encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET)).expect("sign");
            assert_eq!(fast.verify(&t).as_deref(), Some(&claims));
        }
        let expired = encode(&Header::default(), &json!({"exp": now - 31}), &EncodingKey::from_secret(SECRET)).expect("sign");
        assert!(fast.verify(&expired).is_none());
        assert_eq!(fast.headers.read().map(|h| h.len()).unwrap_or(0), 1, "one header remembered");
    }
}
