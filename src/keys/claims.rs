//! [`Claims`]: a verified token's claims, shared rather than copied, with
//! their JSON text made once. Every request that carries a cached token gets
//! the same `Claims`; the text is what `request.jwt.claims` is set to: the
//! claims as the token carried them when verification kept them (see
//! [`super::hs256`]), else the compact form of the value.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde_json::Value;

/// Claims and their compact JSON text; cheap to clone.
#[derive(Debug, Clone)]
pub struct Claims(Arc<(Value, String)>);

impl Claims {
    /// Wraps `value`, writing its JSON text once.
    pub fn new(value: Value) -> Claims {
        let text = value.to_string();
        Claims(Arc::new((value, text)))
    }

    /// Wraps `value` with `text`, the JSON it was parsed from.
    pub fn with_text(value: Value, text: String) -> Claims {
        Claims(Arc::new((value, text)))
    }

    /// The JSON text: what the claims were parsed from, or the compact
    /// form of the value.
    pub fn json(&self) -> &str {
        &self.0 .1
    }
}

impl PartialEq for Claims {
    fn eq(&self, other: &Claims) -> bool {
        self.0 .0 == other.0 .0
    }
}

impl Deref for Claims {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.0 .0
    }
}

impl fmt::Display for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.json())
    }
}

impl From<Value> for Claims {
    fn from(value: Value) -> Claims {
        Claims::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_value_agree() {
        let v = serde_json::json!({"sub": "u", "role": "authenticated", "n": [1, 2]});
        let c = Claims::new(v.clone());
        assert_eq!(c.json(), v.to_string());
        assert_eq!(c.to_string(), v.to_string());
        assert_eq!(c["sub"], "u");
        assert!(Arc::ptr_eq(&c.0, &c.clone().0), "clones share");
    }
}
