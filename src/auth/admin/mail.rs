//! `GET /admin/mail?email=&limit=`: the captured mailbox, newest first
//! (service role only).

use bytes::Bytes;
use serde_json::Value;
use warp::reply::Response;

use crate::auth::errors::AuthError;
use crate::auth::routes::{json, Ctx};
use crate::auth::users::require_admin;

/// Handles `GET /admin/mail`.
pub async fn list(ctx: Ctx, _body: Bytes) -> Result<Response, AuthError> {
    require_admin(&ctx)?;
    let email = ctx.param("email").map(str::to_lowercase);
    let limit: i64 = ctx.param("limit").and_then(|l| l.parse().ok()).unwrap_or(50).clamp(1, 1000);
    let client = ctx.auth.db().await?;
    let row = client
        .query_one(
            "select coalesce(jsonb_agg(m order by m.id desc), '[]') from (
               select id, fluxbase.auth_ts(created_at) as created_at, recipient, subject, kind, body, data
                 from fluxbase.auth_mail
                where $1::text is null or lower(recipient) = $1
                order by id desc limit $2) m",
            &[&email, &limit],
        )
        .await?;
    let v: Value = row.try_get(0).map_err(AuthError::internal)?;
    Ok(json(&v))
}
