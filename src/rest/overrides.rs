//! What SQL may say about the HTTP response, as PostgREST lets it:
//!
//! - the transaction-local settings `response.headers` (a JSON array of
//!   one-key objects, `[{"Cache-Control": "no-store"}]`) and
//!   `response.status` (a status code), which a function or trigger sets
//!   during the request. The statement reads them after it has run; its
//!   headers take the place of the response's headers of the same name
//!   (PGRST111 / PGRST112, status 500, when they do not parse);
//! - `RAISE SQLSTATE 'PGRST'`, an error whose MESSAGE is a JSON object
//!   (`code`, `message`, optional `details`, `hint`) and whose DETAIL is
//!   another (`status`, `headers`, optional `status_text`): the error
//!   response is exactly that (PGRST121 when either does not parse),
//!   `status_text` its status line's reason phrase over HTTP/1 (one that
//!   HTTP cannot carry leaves the standard phrase).

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::errors::{DbError, RestError};
use crate::http::error::{set_headers, ApiError, ResponseParts};

/// Status and headers the transaction set.
#[derive(Debug, Default)]
pub struct Overrides {
    status: Option<StatusCode>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Overrides {
    /// From the settings' text as the statement read them (`None` when unset).
    pub fn from_settings(headers: Option<&str>, status: Option<&str>) -> Result<Overrides, RestError> {
        let refused = |code, message: &str| RestError::Refused {
            code,
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.to_owned(),
            details: None,
        };
        let status = match status {
            None => None,
            Some(s) => Some(
                s.trim()
                    .parse::<u16>()
                    .ok()
                    .and_then(|n| StatusCode::from_u16(n).ok())
                    .ok_or_else(|| refused("PGRST112", "response.status guc must be a valid status code"))?,
            ),
        };
        let headers = match headers {
            None => Vec::new(),
            Some(text) => one_key_objects(text).ok_or_else(|| {
                refused(
                    "PGRST111",
                    "response.headers guc must be a JSON array composed of objects with a single key and a string value",
                )
            })?,
        };
        Ok(Overrides { status, headers })
    }

    /// Applies them: the status, and each header in place of the
    /// response's headers of that name (several of one name all stay).
    pub fn apply(self, status: &mut StatusCode, map: &mut HeaderMap) {
        if let Some(s) = self.status {
            *status = s;
        }
        set_headers(map, &self.headers);
    }
}

/// `[{"Name": "value"}, …]` as headers; `None` when it is anything else
/// (or names a header HTTP does not allow).
fn one_key_objects(text: &str) -> Option<Vec<(HeaderName, HeaderValue)>> {
    let items: Vec<serde_json::Map<String, serde_json::Value>> = serde_json::from_str(text).ok()?;
    items
        .into_iter()
        .map(|o| match (o.len(), o.into_iter().next()) {
            (1, Some((k, serde_json::Value::String(v)))) => header(&k, &v),
            _ => None,
        })
        .collect()
}

fn header(name: &str, value: &str) -> Option<(HeaderName, HeaderValue)> {
    Some((HeaderName::from_bytes(name.as_bytes()).ok()?, HeaderValue::from_str(value).ok()?))
}

/// MESSAGE of `RAISE SQLSTATE 'PGRST'`.
#[derive(Deserialize)]
struct RaisedMessage {
    code: String,
    message: String,
    details: Option<String>,
    hint: Option<String>,
}

/// DETAIL of `RAISE SQLSTATE 'PGRST'`.
#[derive(Deserialize)]
struct RaisedDetail {
    status: u16,
    headers: std::collections::BTreeMap<String, String>,
    status_text: Option<String>,
}

/// The error response a `RAISE SQLSTATE 'PGRST'` asks for, or PGRST121
/// saying what did not parse.
pub fn raised(db: &DbError) -> ApiError {
    let bad = |details: String, hint: &str| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "PGRST121", "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error")
            .with_details(details)
            .with_hint(hint)
    };
    const MESSAGE_HINT: &str =
        "MESSAGE must be a JSON object with obligatory keys: 'code', 'message' and optional keys: 'details', 'hint'.";
    const DETAIL_HINT: &str =
        "DETAIL must be a JSON object with obligatory keys: 'status', 'headers' and optional key: 'status_text'.";
    let Ok(m) = serde_json::from_str::<RaisedMessage>(&db.message) else {
        return bad(format!("Invalid JSON value for MESSAGE: '{}'", db.message), MESSAGE_HINT);
    };
    let Some(detail) = db.details.as_deref() else {
        return bad("DETAIL is missing in the RAISE statement".into(), DETAIL_HINT);
    };
    let parsed = serde_json::from_str::<RaisedDetail>(detail).ok().and_then(|d| {
        let status = StatusCode::from_u16(d.status).ok()?;
        let headers = d.headers.iter().map(|(k, v)| header(k, v)).collect::<Option<Vec<_>>>()?;
        let reason = d.status_text.and_then(|t| hyper::ext::ReasonPhrase::try_from(t).ok());
        Some((status, ResponseParts { headers, reason }))
    });
    let Some((status, parts)) = parsed else {
        return bad(format!("Invalid JSON value for DETAIL: '{detail}'"), DETAIL_HINT);
    };
    let mut e = ApiError::new(status, m.code, m.message);
    e.details = m.details;
    e.hint = m.hint;
    e.response = (parts != ResponseParts::default()).then(|| Box::new(parts));
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_as_postgrest_reads_them() {
        let o = Overrides::from_settings(Some(r#"[{"Cache-Control": "no-store"}, {"Set-Cookie": "a=1"}, {"Set-Cookie": "b=2"}]"#), Some("418"))
            .expect("valid");
        let mut status = StatusCode::OK;
        let mut map = HeaderMap::new();
        map.insert("cache-control", HeaderValue::from_static("public"));
        map.insert("content-range", HeaderValue::from_static("0-0/*"));
        o.apply(&mut status, &mut map);
        assert_eq!(status, StatusCode::IM_A_TEAPOT);
        assert_eq!(map.get_all("cache-control").iter().collect::<Vec<_>>(), vec!["no-store"]);
        assert_eq!(map.get_all("set-cookie").iter().collect::<Vec<_>>(), vec!["a=1", "b=2"]);
        assert_eq!(map["content-range"], "0-0/*");
        for (headers, status) in [
            (Some(r#"{"a": "b"}"#), None),
            (Some(r#"[{"a": 1}]"#), None),
            (Some(r#"[{"a": "b", "c": "d"}]"#), None),
            (Some(r#"[{"bad name": "x"}]"#), None),
            (Some("not json"), None),
            (None, Some("abc")),
            (None, Some("99")),
            (None, Some("70000")),
        ] {
            let e = Overrides::from_settings(headers, status).expect_err("invalid");
            let api = e.to_api(true);
            assert_eq!(api.status, StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(api.code, if headers.is_some() { "PGRST111" } else { "PGRST112" }, "{headers:?} {status:?}");
        }
    }

    fn db(message: &str, details: Option<&str>) -> DbError {
        DbError { code: "PGRST".into(), message: message.into(), details: details.map(str::to_owned), hint: None }
    }

    #[test]
    fn raise_pgrst_is_the_whole_response() {
        let e = raised(&db(
            r#"{"code": "123", "message": "Payment Required", "details": "Quota exceeded", "hint": "Upgrade"}"#,
            Some(r#"{"status": 402, "headers": {"X-Powered-By": "Nerd Rage"}}"#),
        ));
        assert_eq!((e.status, e.code.as_ref(), e.message.as_str()), (StatusCode::PAYMENT_REQUIRED, "123", "Payment Required"));
        assert_eq!((e.details.as_deref(), e.hint.as_deref()), (Some("Quota exceeded"), Some("Upgrade")));
        let parts = e.response.as_deref().expect("headers");
        assert_eq!((parts.headers.len(), &parts.reason), (1, &None));
        let reason = |detail: &str| {
            let e = raised(&db(r#"{"code": "1", "message": "m"}"#, Some(detail)));
            e.response.and_then(|p| p.reason).map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
        };
        assert_eq!(reason(r#"{"status": 402, "headers": {}, "status_text": "Pay Up"}"#).as_deref(), Some("Pay Up"));
        // A phrase HTTP cannot carry leaves the standard one.
        assert_eq!(reason(r#"{"status": 402, "headers": {}, "status_text": "two\r\nlines"}"#), None);
        assert_eq!(reason(r#"{"status": 402, "headers": {}}"#), None);
        for (message, details, want) in [
            ("not json", Some(r#"{"status": 402, "headers": {}}"#), "Invalid JSON value for MESSAGE: 'not json'"),
            (r#"{"code": "1", "message": "m"}"#, None, "DETAIL is missing in the RAISE statement"),
            (r#"{"code": "1", "message": "m"}"#, Some(r#"{"headers": {}}"#), r#"Invalid JSON value for DETAIL: '{"headers": {}}'"#),
            (r#"{"code": "1", "message": "m"}"#, Some(r#"{"status": 402}"#), r#"Invalid JSON value for DETAIL: '{"status": 402}'"#),
            (r#"{"code": "1", "message": "m"}"#, Some(r#"{"status": 7, "headers": {}}"#), r#"Invalid JSON value for DETAIL: '{"status": 7, "headers": {}}'"#),
        ] {
            let e = raised(&db(message, details));
            assert_eq!((e.status, e.code.as_ref(), e.details.as_deref()), (StatusCode::INTERNAL_SERVER_ERROR, "PGRST121", Some(want)));
        }
    }
}
