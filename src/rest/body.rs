//! Request bodies by `Content-Type`, read as PostgREST reads them: JSON,
//! CSV and form-urlencoded for tables and RPC; raw text, XML and bytes only
//! for a function of one unnamed `text`, `xml` or `bytea` parameter.

use http::HeaderMap;
use serde_json::Value;

use super::errors::RestError;
use super::{parse_body, RestConfig};

/// What a body's `Content-Type` says it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// `application/json` (or `application/vnd.pgrst.array+json`), or no
    /// `Content-Type` at all.
    Json,
    /// `text/csv`.
    Csv,
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `text/plain`: raw text for a `text` parameter.
    Text,
    /// `text/xml`: raw XML for an `xml` parameter.
    Xml,
    /// `application/octet-stream`: raw bytes for a `bytea` parameter.
    Bytes,
}

impl Media {
    /// The media type of a request's body. Another type is PGRST102, as
    /// PostgREST refuses it ("Content-Type not acceptable").
    pub fn of(headers: &HeaderMap) -> Result<Media, RestError> {
        let Some(value) = headers.get(http::header::CONTENT_TYPE) else {
            return Ok(Media::Json);
        };
        let text = value.to_str().unwrap_or("");
        let mime = text.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        Ok(match mime.as_str() {
            // PostgREST reads the plain array media type as JSON too.
            "application/json" | "application/vnd.pgrst.array+json" | "" => Media::Json,
            "text/csv" => Media::Csv,
            "application/x-www-form-urlencoded" => Media::Form,
            "text/plain" => Media::Text,
            "text/xml" => Media::Xml,
            "application/octet-stream" => Media::Bytes,
            _ => return Err(not_acceptable(&mime)),
        })
    }

    /// The type of the one unnamed parameter a raw body goes to.
    pub fn raw_type(self) -> Option<&'static str> {
        match self {
            Media::Text => Some("text"),
            Media::Xml => Some("xml"),
            Media::Bytes => Some("bytea"),
            Media::Json | Media::Csv | Media::Form => None,
        }
    }

    /// The MIME name, for error messages.
    pub fn mime(self) -> &'static str {
        match self {
            Media::Json => "application/json",
            Media::Csv => "text/csv",
            Media::Form => "application/x-www-form-urlencoded",
            Media::Text => "text/plain",
            Media::Xml => "text/xml",
            Media::Bytes => "application/octet-stream",
        }
    }
}

fn not_acceptable(mime: &str) -> RestError {
    RestError::Body(format!("Content-Type not acceptable: {mime}"))
}

/// A body as JSON: the JSON itself, a CSV's rows as objects, or a form's
/// fields as one object of strings (the last of a repeated name wins).
/// Raw media have no JSON form: they are only for RPC (see [`raw_value`]).
pub fn to_json(media: Media, body: &[u8], cfg: &RestConfig) -> Result<Value, RestError> {
    match media {
        Media::Json => parse_body(body, cfg),
        Media::Csv => csv_to_json(body),
        Media::Form => Ok(Value::Object(form_fields(body)?.into_iter().map(|(k, v)| (k, Value::String(v))).collect())),
        Media::Text | Media::Xml | Media::Bytes => Err(not_acceptable(media.mime())),
    }
}

/// The `name=value` pairs of a form body, in order.
pub fn form_fields(body: &[u8]) -> Result<Vec<(String, String)>, RestError> {
    serde_urlencoded::from_bytes(body).map_err(|e| RestError::Body(format!("Invalid form body: {e}")))
}

/// A raw body as the text of its parameter's value: the text itself for
/// `text` and `xml` (which must then be UTF-8), `\x` and hex for `bytea`.
pub fn raw_value(media: Media, body: &[u8]) -> Result<String, RestError> {
    if media == Media::Bytes {
        return Ok(format!("\\x{}", hex::encode(body)));
    }
    String::from_utf8(body.to_vec()).map_err(|_| RestError::Body(format!("The {} body is not valid UTF-8", media.mime())))
}

/// A CSV body (header row, then rows) as a JSON array of objects, read as
/// PostgREST reads it: every field is a string (an empty field is `""`)
/// except the word `NULL`, which is null; every row has the header's width.
pub fn csv_to_json(body: &[u8]) -> Result<Value, RestError> {
    let bad = |e: csv::Error| {
        RestError::Body(match e.kind() {
            csv::ErrorKind::UnequalLengths { .. } => "All lines must have same number of fields".into(),
            csv::ErrorKind::Utf8 { .. } => "The CSV body is not valid UTF-8".into(),
            _ => format!("Invalid CSV: {e}"),
        })
    };
    let mut reader = csv::ReaderBuilder::new().from_reader(body);
    let header = reader.headers().map_err(bad)?.clone();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(bad)?;
        let field = |v: &str| if v == "NULL" { Value::Null } else { Value::String(v.to_owned()) };
        let obj: serde_json::Map<String, Value> = header.iter().zip(record.iter()).map(|(k, v)| (k.to_owned(), field(v))).collect();
        rows.push(Value::Object(obj));
    }
    Ok(Value::Array(rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn message(r: Result<impl std::fmt::Debug, RestError>) -> String {
        match r {
            Err(RestError::Body(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn media_from_content_type() {
        let of = |v: Option<&'static str>| {
            let mut h = HeaderMap::new();
            if let Some(v) = v {
                h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(v));
            }
            Media::of(&h)
        };
        assert_eq!(of(None).ok(), Some(Media::Json));
        assert_eq!(of(Some("application/json; charset=utf-8")).ok(), Some(Media::Json));
        assert_eq!(of(Some("application/vnd.pgrst.array+json")).ok(), Some(Media::Json));
        let single = "application/vnd.pgrst.object+json";
        assert_eq!(message(of(Some(single))), format!("Content-Type not acceptable: {single}"), "an Accept type, not a body's");
        assert_eq!(of(Some("Text/CSV")).ok(), Some(Media::Csv));
        assert_eq!(of(Some("application/x-www-form-urlencoded")).ok(), Some(Media::Form));
        assert_eq!(of(Some("application/octet-stream")).ok().and_then(Media::raw_type), Some("bytea"));
        assert_eq!(message(of(Some("image/png"))), "Content-Type not acceptable: image/png");
    }

    #[test]
    fn json_forms_of_bodies() {
        let cfg = RestConfig::default();
        let form = to_json(Media::Form, b"a=1&b=x+y&a=2", &cfg).expect("form");
        assert_eq!(form, serde_json::json!({"a": "2", "b": "x y"}), "the last repeated field wins");
        assert_eq!(message(to_json(Media::Text, b"hi", &cfg)), "Content-Type not acceptable: text/plain");
    }

    #[test]
    fn raw_values() {
        assert_eq!(raw_value(Media::Bytes, &[0, 0xff]).expect("bytes"), "\\x00ff");
        assert_eq!(raw_value(Media::Text, "héllo".as_bytes()).expect("text"), "héllo");
        assert_eq!(message(raw_value(Media::Xml, &[0xff])), "The text/xml body is not valid UTF-8");
    }

    #[test]
    fn csv_bodies() {
        let v = csv_to_json(b"a,b\n1,\"x,\"\"y\"\"\"\r\n2,\n3,NULL\n").expect("csv");
        let want = serde_json::json!([{"a": "1", "b": "x,\"y\""}, {"a": "2", "b": ""}, {"a": "3", "b": null}]);
        assert_eq!(v, want, "an empty field is an empty string, NULL is null (PostgREST)");
        assert_eq!(message(csv_to_json(b"a,b\n1\n")), "All lines must have same number of fields");
        assert_eq!(message(csv_to_json(b"a\n\xff\n")), "The CSV body is not valid UTF-8");
        assert_eq!(csv_to_json(b"a,b\n").expect("header only"), serde_json::json!([]));
    }
}
