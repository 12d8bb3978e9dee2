//! Transformation options as storage-api takes them: the query of
//! `/render/image/...` (`width`, `height`, `resize`, `quality`, `format`),
//! the `transform` object of `POST /object/sign/...`, and the
//! `transformations` string a signed URL's token carries
//! (`height:300,width:200,resize:cover,quality:80`). Widths and heights are
//! clamped to 1..=2500 as storage-api's defaults do.

use std::collections::HashMap;

use serde_json::Value;

use crate::storage::errors::{StorageError, StorageResult};

/// Largest width or height asked for (storage-api's default limit).
pub const MAX_SIDE: u32 = 2500;

/// How the image is fitted into `width` × `height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resize {
    /// Fill the box, keeping the aspect ratio, cropping the overflow (centred).
    #[default]
    Cover,
    /// Fit inside the box, keeping the aspect ratio.
    Contain,
    /// Stretch to the box.
    Fill,
}

/// The output format asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The source's format.
    Origin,
    /// WebP.
    Webp,
}

/// One request's transformation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransformOptions {
    /// Target width.
    pub width: Option<u32>,
    /// Target height.
    pub height: Option<u32>,
    /// Fitting mode.
    pub resize: Resize,
    /// JPEG quality, 20..=100.
    pub quality: Option<u8>,
    /// Output format; `None` lets the `Accept` header choose WebP.
    pub format: Option<Format>,
}

fn bad(field: &str, rule: &str) -> StorageError {
    StorageError::InvalidRequest(format!("querystring/{field} {rule}"))
}

fn side(field: &str, v: Option<&str>) -> StorageResult<Option<u32>> {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
    let n: i64 = v.parse().map_err(|_| bad(field, "must be integer"))?;
    if n < 0 {
        return Err(bad(field, "must be >= 0"));
    }
    // 0 means "not given", as in storage-api.
    Ok((n > 0).then(|| u32::try_from(n.min(i64::from(MAX_SIDE))).unwrap_or(MAX_SIDE)))
}

impl TransformOptions {
    /// From string fields (a query, or a `transform` object's values).
    fn from_fields(get: impl Fn(&str) -> Option<String>) -> StorageResult<TransformOptions> {
        let resize = match get("resize").as_deref().map(str::trim) {
            None | Some("") | Some("cover") => Resize::Cover,
            Some("contain") => Resize::Contain,
            Some("fill") => Resize::Fill,
            Some(_) => return Err(bad("resize", "must be equal to one of the allowed values")),
        };
        let format = match get("format").as_deref().map(str::trim) {
            None | Some("") => None,
            Some("origin") => Some(Format::Origin),
            Some("webp") => Some(Format::Webp),
            Some("avif") => return Err(StorageError::InvalidImage("format avif is not supported; use webp or origin".into())),
            Some(_) => return Err(bad("format", "must be equal to one of the allowed values")),
        };
        let quality = match get("quality").as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            None => None,
            Some(q) => {
                let n: i64 = q.parse().map_err(|_| bad("quality", "must be integer"))?;
                if n < 20 {
                    return Err(bad("quality", "must be >= 20"));
                }
                if n > 100 {
                    return Err(bad("quality", "must be <= 100"));
                }
                u8::try_from(n).ok()
            }
        };
        Ok(TransformOptions {
            width: side("width", get("width").as_deref())?,
            height: side("height", get("height").as_deref())?,
            resize,
            quality,
            format,
        })
    }

    /// From a `/render/image` query.
    pub fn from_query(q: &HashMap<String, String>) -> StorageResult<TransformOptions> {
        Self::from_fields(|k| q.get(k).cloned())
    }

    /// From the `transform` object of a sign request (numbers or strings).
    pub fn from_json(v: &Value) -> StorageResult<TransformOptions> {
        Self::from_fields(|k| match v.get(k)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    }

    /// From a signed token's `transformations` string; unknown parts are ignored.
    pub fn from_token(t: &str) -> StorageResult<TransformOptions> {
        let pairs: HashMap<String, String> =
            t.split(',').filter_map(|p| p.split_once(':')).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
        Self::from_query(&pairs)
    }

    /// The `transformations` string for a signed token (storage-api's order).
    pub fn to_token(&self) -> String {
        let mut parts = Vec::new();
        if let Some(h) = self.height {
            parts.push(format!("height:{h}"));
        }
        if let Some(w) = self.width {
            parts.push(format!("width:{w}"));
        }
        if self.width.is_some() || self.height.is_some() {
            let r = match self.resize {
                Resize::Cover => "cover",
                Resize::Contain => "contain",
                Resize::Fill => "fill",
            };
            parts.push(format!("resize:{r}"));
        }
        if let Some(q) = self.quality {
            parts.push(format!("quality:{q}"));
        }
        match self.format {
            Some(Format::Webp) => parts.push("format:webp".into()),
            Some(Format::Origin) => parts.push("format:origin".into()),
            None => {}
        }
        parts.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn query_values_and_limits() {
        let o = TransformOptions::from_query(&q(&[("width", "100"), ("height", "9999"), ("resize", "contain"), ("quality", "50"), ("format", "origin")]))
            .expect("valid");
        assert_eq!(
            o,
            TransformOptions { width: Some(100), height: Some(MAX_SIDE), resize: Resize::Contain, quality: Some(50), format: Some(Format::Origin) }
        );
        assert_eq!(TransformOptions::from_query(&q(&[("width", "0")])).expect("zero").width, None);
        for bad in [("width", "-1"), ("width", "x"), ("quality", "10"), ("quality", "101"), ("resize", "crop"), ("format", "gif"), ("format", "avif")] {
            assert!(TransformOptions::from_query(&q(&[bad])).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn token_round_trip() {
        let o = TransformOptions { width: Some(20), height: Some(10), resize: Resize::Fill, quality: Some(80), format: Some(Format::Webp) };
        assert_eq!(o.to_token(), "height:10,width:20,resize:fill,quality:80,format:webp");
        assert_eq!(TransformOptions::from_token(&o.to_token()).expect("parses"), o);
        let j = TransformOptions::from_json(&serde_json::json!({"width": 30, "resize": "cover"})).expect("json");
        assert_eq!((j.width, j.height, j.resize), (Some(30), None, Resize::Cover));
    }
}
