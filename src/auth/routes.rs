//! The `/auth/v1` routes and the request context handlers get.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::errors::AuthError;
use super::Auth;
use crate::app::AppState;
use crate::http::apikey::ApiKey;
use crate::http::edge::ClientAddr;
use crate::http::error::ApiError;

/// What a handler knows about its request.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The auth service.
    pub auth: Auth,
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// The API key the gate accepted.
    pub key: ApiKey,
    /// `Authorization: Bearer <token>`, if any.
    pub bearer: Option<String>,
    /// The query parameters (last value wins).
    pub query: HashMap<String, String>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// `http://<Host>` as the client reached us (or `server.public_url`).
    pub base_url: String,
}

impl Ctx {
    /// The client IP as a rate-limit key.
    pub fn ip_key(&self) -> String {
        self.ip.map(|i| i.to_string()).unwrap_or_default()
    }

    /// A query parameter.
    pub fn param(&self, k: &str) -> Option<&str> {
        self.query.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// Parses a JSON body (empty means `{}`) into `T`, as GoTrue's `bad_json`.
pub fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, AuthError> {
    let slice: &[u8] = if body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { body };
    serde_json::from_slice(slice).map_err(|e| AuthError::BadJson(e.to_string()))
}

/// A JSON response with status 200.
pub fn json(v: &Value) -> Response {
    warp::reply::json(v).into_response()
}

fn context(auth: Auth) -> impl Filter<Extract = (Ctx,), Error = warp::Rejection> + Clone {
    warp::ext::optional::<ClientAddr>()
        .and(warp::ext::optional::<ApiKey>())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("user-agent"))
        .and(warp::header::optional::<String>("host"))
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .map(
            move |addr: Option<ClientAddr>,
                  key: Option<ApiKey>,
                  authz: Option<String>,
                  ua: Option<String>,
                  host: Option<String>,
                  raw: String| {
                let bearer = authz.as_deref().and_then(|v| {
                    let (scheme, token) = v.trim().split_once(' ')?;
                    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned()).filter(|t| !t.is_empty())
                });
                let query = serde_urlencoded::from_str::<Vec<(String, String)>>(&raw)
                    .map(|v| v.into_iter().collect())
                    .unwrap_or_default();
                let public = &auth.state.config.server.public_url;
                let base_url = if !public.is_empty() {
                    public.trim_end_matches('/').to_owned()
                } else {
                    match host.filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic())) {
                        Some(h) => format!("http://{h}"),
                        None => auth.api_url(),
                    }
                };
                Ctx {
                    auth: auth.clone(),
                    ip: addr.map(|a| a.0.ip()),
                    key: key.unwrap_or(ApiKey::Open),
                    bearer,
                    query,
                    user_agent: ua,
                    base_url,
                }
            },
        )
}

/// Runs a handler and turns its error into the edge's [`ApiError`].
async fn finish(f: impl Future<Output = Result<Response, AuthError>>) -> Response {
    match f.await {
        Ok(r) => r,
        Err(e) => ApiError::from(e).into_response(),
    }
}

macro_rules! route {
    ($ctx:expr, $method:expr, $path:expr, $handler:path) => {
        $method.and($path).and($ctx.clone()).and(body()).then(|c: Ctx, b: Bytes| finish($handler(c, b))).boxed()
    };
}

fn body() -> impl Filter<Extract = (Bytes,), Error = warp::Rejection> + Clone {
    warp::body::bytes()
}

/// Every `/auth/v1` route.
pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let auth = match Auth::new(state) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "auth disabled: cannot start the password pool");
            return warp::path!("auth" / "v1" / ..)
                .map(|| ApiError::unavailable("auth is unavailable").into_response())
                .boxed();
        }
    };
    let ctx = context(auth).boxed();
    let get = warp::get;
    let post = warp::post;
    let put = warp::put;
    let delete = warp::delete;
    use super::{admin, logout, otp, settings, signup, token, user, verify};
    let r = route!(ctx, post(), warp::path!("auth" / "v1" / "signup"), signup::handle)
        .or(route!(ctx, post(), warp::path!("auth" / "v1" / "token"), token::handle))
        .unify()
        .or(route!(ctx, get(), warp::path!("auth" / "v1" / "user"), user::get))
        .unify()
        .or(route!(ctx, put(), warp::path!("auth" / "v1" / "user"), user::update))
        .unify()
        .or(route!(ctx, post(), warp::path!("auth" / "v1" / "logout"), logout::handle))
        .unify()
        .or(route!(ctx, get(), warp::path!("auth" / "v1" / "settings"), settings::handle))
        .unify()
        .or(route!(ctx, get(), warp::path!("auth" / "v1" / ".well-known" / "jwks.json"), settings::jwks))
        .unify()
        .or(route!(ctx, get(), warp::path!("auth" / "v1" / "health"), settings::health))
        .unify()
        .or(route!(ctx, post(), warp::path!("auth" / "v1" / "otp"), otp::otp))
        .unify()
        .or(route!(ctx, post(), warp::path!("auth" / "v1" / "magiclink"), otp::otp))
        .unify()
        .or(route!(ctx, post(), warp::path!("auth" / "v1" / "recover"), otp::recover))
        .unify()
        .or(route!(ctx, post(), warp::path!("auth" / "v1" / "resend"), otp::resend))
        .unify()
        .or(route!(ctx, get(), warp::path!("auth" / "v1" / "reauthenticate"), otp::reauthenticate))
        .unify()
        .or(route!(ctx, post(), warp::path!("auth" / "v1" / "verify"), verify::post))
        .unify()
        .or(route!(ctx, get(), warp::path!("auth" / "v1" / "verify"), verify::get))
        .unify()
        .or(route!(ctx, post(), warp::path!("auth" / "v1" / "invite"), admin::links::invite))
        .unify()
        .or(route!(ctx, post(), warp::path!("auth" / "v1" / "admin" / "generate_link"), admin::links::generate_link))
        .unify()
        .or(route!(ctx, get(), warp::path!("auth" / "v1" / "admin" / "mail"), admin::mail::list))
        .unify()
        .or(route!(ctx, get(), warp::path!("auth" / "v1" / "admin" / "users"), admin::users::list))
        .unify()
        .or(route!(ctx, post(), warp::path!("auth" / "v1" / "admin" / "users"), admin::users::create))
        .unify()
        .boxed();
    let with_id = |ctx: &BoxedFilter<(Ctx,)>| {
        let g = get()
            .and(warp::path!("auth" / "v1" / "admin" / "users" / String))
            .and(ctx.clone())
            .then(|id: String, c: Ctx| finish(admin::users::get(c, id)));
        let p = put()
            .and(warp::path!("auth" / "v1" / "admin" / "users" / String))
            .and(ctx.clone())
            .and(body())
            .then(|id: String, c: Ctx, b: Bytes| finish(admin::users::update(c, id, b)));
        let d = delete()
            .and(warp::path!("auth" / "v1" / "admin" / "users" / String))
            .and(ctx.clone())
            .and(body())
            .then(|id: String, c: Ctx, b: Bytes| finish(admin::users::delete(c, id, b)));
        g.or(p).unify().or(d).unify().boxed()
    };
    let factors = {
        use super::mfa;
        let enroll = route!(ctx, post(), warp::path!("auth" / "v1" / "factors"), mfa::enroll);
        let challenge = post()
            .and(warp::path!("auth" / "v1" / "factors" / String / "challenge"))
            .and(ctx.clone())
            .and(body())
            .then(|id: String, c: Ctx, b: Bytes| finish(mfa::challenge(c, id, b)));
        let verify = post()
            .and(warp::path!("auth" / "v1" / "factors" / String / "verify"))
            .and(ctx.clone())
            .and(body())
            .then(|id: String, c: Ctx, b: Bytes| finish(mfa::verify(c, id, b)));
        let unenroll = delete()
            .and(warp::path!("auth" / "v1" / "factors" / String))
            .and(ctx.clone())
            .and(body())
            .then(|id: String, c: Ctx, b: Bytes| finish(mfa::unenroll(c, id, b)));
        let admin_list = get()
            .and(warp::path!("auth" / "v1" / "admin" / "users" / String / "factors"))
            .and(ctx.clone())
            .then(|uid: String, c: Ctx| finish(mfa::admin_list(c, uid)));
        let admin_delete = delete()
            .and(warp::path!("auth" / "v1" / "admin" / "users" / String / "factors" / String))
            .and(ctx.clone())
            .then(|uid: String, id: String, c: Ctx| finish(mfa::admin_delete(c, uid, id)));
        enroll
            .or(challenge)
            .unify()
            .or(verify)
            .unify()
            .or(unenroll)
            .unify()
            .or(admin_list)
            .unify()
            .or(admin_delete)
            .unify()
            .boxed()
    };
    let identities = delete()
        .and(warp::path!("auth" / "v1" / "user" / "identities" / String))
        .and(ctx.clone())
        .then(|id: String, c: Ctx| finish(super::user::unlink_identity(c, id)));
    let oauth = {
        use super::oauth::flow;
        route!(ctx, get(), warp::path!("auth" / "v1" / "authorize"), flow::authorize)
            .or(route!(ctx, get(), warp::path!("auth" / "v1" / "callback"), flow::callback))
            .unify()
            .or(route!(ctx, post(), warp::path!("auth" / "v1" / "callback"), flow::callback))
            .unify()
            .or(route!(ctx, get(), warp::path!("auth" / "v1" / "user" / "identities" / "authorize"), flow::link))
            .unify()
            .boxed()
    };
    r.or(with_id(&ctx)).unify().or(factors).unify().or(identities).unify().or(oauth).unify().boxed()
}
