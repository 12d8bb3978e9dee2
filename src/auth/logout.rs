//! `POST /logout?scope=global|local|others` (204): ends sessions of the
//! bearer's user. Deleting a session deletes its refresh tokens (cascade)
//! and makes its access tokens fail on `/user` (`session_not_found`).

use bytes::Bytes;
use warp::reply::Response;

use super::errors::AuthError;
use super::routes::Ctx;
use super::users::authenticate;

/// Handles `POST /logout`.
pub async fn handle(ctx: Ctx, _body: Bytes) -> Result<Response, AuthError> {
    let scope = ctx.param("scope").unwrap_or("global");
    if !matches!(scope, "global" | "local" | "others") {
        return Err(AuthError::Validation(format!("Unsupported logout scope {scope:?}")));
    }
    let a = authenticate(&ctx).await?;
    let client = ctx.auth.db().await?;
    match (scope, a.session_id) {
        ("local", Some(s)) => client.execute("delete from auth.sessions where id = $1", &[&s]).await?,
        ("others", Some(s)) => {
            client.execute("delete from auth.sessions where user_id = $1 and id <> $2", &[&a.user_id, &s]).await?
        }
        ("others", None) => 0,
        _ => client.execute("delete from auth.sessions where user_id = $1", &[&a.user_id]).await?,
    };
    let mut res = Response::new(Default::default());
    *res.status_mut() = http::StatusCode::NO_CONTENT;
    Ok(res)
}
