//! `POST /object/list/<bucket>`: the direct children of a prefix, through
//! `storage.search` run as the caller (so RLS filters what is listed); and
//! `POST /object/list-v2/<bucket>`: keyset-paginated listing (flat, or
//! folders and files with `with_delimiter`), also as the caller.

use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use warp::reply::Response;

use crate::http::caller::Caller;
use crate::storage::body::json_reply;
use crate::storage::db;
use crate::storage::errors::{StorageError, StorageResult};
use crate::storage::Storage;

/// The sort storage-js sends.
#[derive(Debug, Default, Deserialize)]
pub struct SortBy {
    column: Option<String>,
    order: Option<String>,
}

/// The list body.
#[derive(Debug, Default, Deserialize)]
pub struct ListBody {
    prefix: Option<String>,
    limit: Option<i32>,
    offset: Option<i32>,
    #[serde(rename = "sortBy")]
    sort_by: Option<SortBy>,
    search: Option<String>,
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// Lists the children of `prefix` in `bucket`.
pub async fn list(s: &Storage, caller: &Caller, bucket: &str, body: ListBody) -> StorageResult<Response> {
    let mut prefix = body.prefix.unwrap_or_default().trim_start_matches('/').to_owned();
    if !prefix.is_empty() && !prefix.ends_with('/') {
        prefix.push('/');
    }
    if prefix.chars().any(char::is_control) {
        return Err(StorageError::InvalidKey(prefix));
    }
    let limit = body.limit.unwrap_or(100).clamp(0, 1500);
    let offset = body.offset.unwrap_or(0).max(0);
    let sort = body.sort_by.unwrap_or_default();
    let column = match sort.column.as_deref() {
        None | Some("name") => "name",
        Some(c @ ("updated_at" | "created_at" | "last_accessed_at")) => c,
        Some(other) => return Err(StorageError::InvalidRequest(format!("body/sortBy/column: unknown column {other}"))),
    };
    let order = match sort.order.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("asc") => "asc",
        Some("desc") => "desc",
        Some(_) => return Err(StorageError::InvalidRequest("body/sortBy/order must be asc or desc".into())),
    };
    let mut search = body.search.unwrap_or_default();
    let levels = i32::try_from(prefix.split('/').count()).unwrap_or(1);
    if column != "name" {
        prefix = like_escape(&prefix);
        search = like_escape(&search);
    }
    let mut client = db::connect(s).await?;
    let tx = db::begin(&mut client, caller, "storage.object.list").await?;
    db::bucket(&tx, bucket).await.or_else(|e| match e {
        // A bucket the caller cannot see lists as empty, as in storage-api.
        StorageError::NoSuchBucket => Ok(db::Bucket { id: bucket.into(), public: false, file_size_limit: None, allowed_mime_types: None }),
        e => Err(e),
    })?;
    let row = tx
        .query_one(
            "select coalesce(json_agg(json_build_object('name', r.name, 'id', r.id, 'updated_at', r.updated_at, \
             'created_at', r.created_at, 'last_accessed_at', r.last_accessed_at, 'metadata', r.metadata)), '[]') \
             from storage.search($1, $2, $3, $4, $5, $6, $7, $8) r",
            &[&prefix, &bucket, &limit, &levels, &offset, &search, &column, &order],
        )
        .await?;
    tx.commit().await?;
    Ok(json_reply(StatusCode::OK, &row.try_get::<_, Value>(0)?))
}

/// The `list-v2` sort.
#[derive(Debug, Default, Deserialize)]
pub struct SortByV2 {
    column: Option<String>,
    order: Option<String>,
}

/// The `list-v2` body.
#[derive(Debug, Default, Deserialize)]
pub struct ListV2Body {
    prefix: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
    with_delimiter: Option<bool>,
    #[serde(rename = "sortBy")]
    sort_by: Option<SortByV2>,
}

/// Where the previous page ended: the last key, and its sort value when
/// sorting by a timestamp.
#[derive(Debug, Default, serde::Serialize, Deserialize)]
struct Cursor {
    k: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    v: Option<String>,
}

fn encode_cursor(c: &Cursor) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(c).unwrap_or_default())
}

fn decode_cursor(raw: &str) -> StorageResult<Cursor> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw.trim_end_matches('='))
        .map_err(|_| StorageError::InvalidRequest("body/cursor is not a cursor this server issued".into()))?;
    serde_json::from_slice(&bytes).map_err(|_| StorageError::InvalidRequest("body/cursor is not a cursor this server issued".into()))
}

/// `POST /object/list-v2/<bucket>`: keyset-paginated listing, flat or by
/// folder (`with_delimiter`), run as the caller. Objects carry their file
/// name (relative to the folder) in `name` and the full path in `key`.
pub async fn list_v2(s: &Storage, caller: &Caller, bucket: &str, body: ListV2Body) -> StorageResult<Response> {
    let prefix = body.prefix.unwrap_or_default().trim_start_matches('/').to_owned();
    if prefix.chars().any(char::is_control) {
        return Err(StorageError::InvalidKey(prefix));
    }
    let limit = body.limit.unwrap_or(1000).clamp(1, 1000);
    let sort = body.sort_by.unwrap_or_default();
    let desc = matches!(sort.order.as_deref(), Some("desc"));
    let column = match sort.column.as_deref() {
        None | Some("name") => "name",
        Some(c @ ("updated_at" | "created_at")) => c,
        Some(other) => return Err(StorageError::InvalidRequest(format!("body/sortBy/column: unknown column {other}"))),
    };
    let delimited = body.with_delimiter.unwrap_or(false);
    let column = if delimited { "name" } else { column };
    let cursor = body.cursor.as_deref().filter(|c| !c.is_empty()).map(decode_cursor).transpose()?;
    let like = format!("{}%", like_escape(&prefix));
    let (dir, cmp) = if desc { ("desc", "<") } else { ("asc", ">") };
    let after_k = cursor.as_ref().map(|c| c.k.clone());
    let after_v = cursor.as_ref().and_then(|c| c.v.clone());
    let entry = "json_build_object('name', e.rel, 'key', e.key, 'id', e.id, 'updated_at', e.updated_at, 'created_at', e.created_at, \
                 'last_accessed_at', e.last_accessed_at, 'metadata', e.metadata, 'version', e.version, 'folder', e.folder, \
                 'sort_v', e.sort_v)";
    let sql = if delimited {
        format!(
            "with m as (select o.*, substr(o.name, length($2) + 1) as rest from storage.objects o
                        where o.bucket_id = $1 and o.name like $3
                          and ($4::text is null or (o.name collate \"C\" {cmp} $4 and not (right($4, 1) = '/' and starts_with(o.name, $4))))),
                  e as (select distinct on (f.key) true as folder, f.key, f.rel, null::uuid as id, null::timestamptz as updated_at,
                               null::timestamptz as created_at, null::timestamptz as last_accessed_at, null::jsonb as metadata,
                               null::text as version, null::text as sort_v
                        from (select $2 || split_part(rest, '/', 1) || '/' as key, split_part(rest, '/', 1) as rel from m
                              where strpos(rest, '/') > 0) f
                        union all
                        select false, m.name, m.rest, m.id, m.updated_at, m.created_at, m.last_accessed_at, m.metadata, m.version, null
                        from m where strpos(m.rest, '/') = 0)
             select {entry} from e order by e.key collate \"C\" {dir} limit $5"
        )
    } else {
        let (key_filter, order) = if column == "name" {
            (format!("($4::text is null or o.name collate \"C\" {cmp} $4)"), format!("o.name collate \"C\" {dir}"))
        } else {
            (
                format!(
                    "($4::text is null or (date_trunc('milliseconds', o.{column}), o.name collate \"C\") {cmp} ($6::text::timestamptz, $4::text collate \"C\"))"
                ),
                format!("o.{column} {dir}, o.name collate \"C\" {dir}"),
            )
        };
        let sort_v = if column == "name" { "null::text".to_owned() } else { format!("to_char(date_trunc('milliseconds', o.{column}) at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')") };
        format!(
            "with e as (select false as folder, o.name as key, substr(o.name, length($2) + 1) as rel, o.id, o.updated_at, o.created_at,
                               o.last_accessed_at, o.metadata, o.version, {sort_v} as sort_v
                        from storage.objects o where o.bucket_id = $1 and o.name like $3 and {key_filter}
                        order by {order} limit $5)
             select {entry} from e"
        )
    };
    let fetch = limit + 1;
    let mut client = db::connect(s).await?;
    let tx = db::begin(&mut client, caller, "storage.object.list").await?;
    let rows = if delimited || column == "name" {
        tx.query(&sql, &[&bucket, &prefix, &like, &after_k, &fetch]).await?
    } else {
        tx.query(&sql, &[&bucket, &prefix, &like, &after_k, &fetch, &after_v]).await?
    };
    tx.commit().await?;
    let mut items: Vec<Value> = rows.iter().map(|r| r.try_get::<_, Value>(0)).collect::<Result<_, _>>()?;
    let has_next = items.len() as i64 > limit;
    items.truncate(usize::try_from(limit).unwrap_or(0));
    let next_cursor = if has_next {
        items.last().map(|l| {
            encode_cursor(&Cursor {
                k: l.get("key").and_then(Value::as_str).unwrap_or_default().to_owned(),
                v: l.get("sort_v").and_then(Value::as_str).map(str::to_owned),
            })
        })
    } else {
        None
    };
    let mut folders = Vec::new();
    let mut objects = Vec::new();
    for mut it in items {
        let folder = it.get("folder").and_then(Value::as_bool).unwrap_or(false);
        if let Some(o) = it.as_object_mut() {
            o.remove("folder");
            o.remove("sort_v");
        }
        if folder {
            folders.push(serde_json::json!({"name": it["name"], "key": it["key"]}));
        } else {
            objects.push(it);
        }
    }
    let mut out = serde_json::json!({"hasNext": has_next, "folders": folders, "objects": objects});
    if let Some(c) = next_cursor {
        out["nextCursor"] = Value::String(c);
    }
    Ok(json_reply(StatusCode::OK, &out))
}
