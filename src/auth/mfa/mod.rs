//! MFA with TOTP factors (GoTrue's `mfa.go`): enroll, challenge, verify
//! (which raises the session to AAL2 and answers a new session), unenroll,
//! and the admin factor endpoints.
//!
//! Secrets are stored AES-256-GCM-encrypted in `auth.mfa_factors.secret`.
//! Failed verifications are counted per factor: past
//! `mfa_max_verify_failures` in 5 minutes the factor refuses every code with
//! 429 until the window ends (lockout), so six digits cannot be brute-forced.
//! Enrolling another factor, or unenrolling a verified one, needs an AAL2
//! session once the user has a verified factor.

pub mod totp;

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use warp::reply::Response;

use super::errors::AuthError;
use super::ratelimit::Action;
use super::routes::{json, parse, Ctx};
use super::tokens::now_secs;
use super::users::{authenticate, require_admin, Authenticated};

fn key(ctx: &Ctx) -> [u8; 32] {
    ctx.auth.config().mfa_key_bytes().unwrap_or_else(|| {
        let mut h = Sha256::new();
        h.update(b"fluxbase-mfa-totp-key:");
        h.update(ctx.auth.state.keys.secret().as_bytes());
        h.finalize().into()
    })
}

fn not_found() -> AuthError {
    AuthError::Coded(StatusCode::NOT_FOUND, "mfa_factor_not_found", "Factor not found".into())
}

fn aal(a: &Authenticated) -> &str {
    a.claims.get("aal").and_then(Value::as_str).unwrap_or("aal1")
}

fn factor_id(id: &str) -> Result<Uuid, AuthError> {
    Uuid::parse_str(id).map_err(|_| not_found())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EnrollParams {
    factor_type: String,
    friendly_name: Option<String>,
    issuer: Option<String>,
}

/// `POST /factors`: enrolls an (unverified) TOTP factor.
pub async fn enroll(ctx: Ctx, body: Bytes) -> Result<Response, AuthError> {
    let p: EnrollParams = parse(&body)?;
    let a = authenticate(&ctx).await?;
    if p.factor_type != "totp" {
        return Err(AuthError::Validation("factor_type needs to be totp".into()));
    }
    let client = ctx.auth.db().await?;
    let row = client
        .query_one(
            "select count(*) filter (where status = 'verified') as verified, count(*) as total
               from auth.mfa_factors where user_id = $1",
            &[&a.user_id],
        )
        .await?;
    let verified: i64 = row.try_get("verified").map_err(AuthError::internal)?;
    let cfg = ctx.auth.config();
    if verified > 0 && aal(&a) != "aal2" {
        return Err(AuthError::Coded(StatusCode::FORBIDDEN, "insufficient_aal", "AAL2 required to enroll a new factor".into()));
    }
    if verified >= i64::from(cfg.mfa_max_enrolled_factors) {
        return Err(AuthError::Coded(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_enrolled_mfa_factors",
            "Maximum number of verified factors reached, unenroll to continue".into(),
        ));
    }
    // Unverified factors older than a challenge's life are abandoned enrolments.
    client
        .execute(
            "delete from auth.mfa_factors where user_id = $1 and status = 'unverified'
               and created_at < now() - make_interval(secs => $2::float8)",
            &[&a.user_id, &(cfg.mfa_challenge_expiry as f64)],
        )
        .await?;
    let email = a.user.get("email").and_then(Value::as_str).unwrap_or("").to_owned();
    let issuer = p.issuer.filter(|i| !i.trim().is_empty()).unwrap_or_else(|| ctx.base_url.clone());
    let friendly = p.friendly_name.unwrap_or_default();
    let secret = totp::new_secret();
    let b32 = totp::base32(&secret);
    let sealed = totp::seal(&key(&ctx), &secret).ok_or_else(|| AuthError::internal("cannot encrypt TOTP secret"))?;
    let id = Uuid::new_v4();
    let inserted = client
        .execute(
            "insert into auth.mfa_factors (id, user_id, friendly_name, factor_type, status, created_at, updated_at, secret)
             values ($1, $2, $3, 'totp', 'unverified', now(), now(), $4)
             on conflict do nothing",
            &[&id, &a.user_id, &friendly, &sealed],
        )
        .await?;
    if inserted == 0 {
        return Err(AuthError::Coded(
            StatusCode::UNPROCESSABLE_ENTITY,
            "mfa_factor_name_conflict",
            format!("A factor with the friendly name \"{friendly}\" for this user already exists"),
        ));
    }
    let label = if email.is_empty() { a.user_id.to_string() } else { email };
    let uri = format!(
        "otpauth://totp/{}:{}?secret={b32}&issuer={}",
        super::mailer::urlencode(&issuer),
        super::mailer::urlencode(&label),
        super::mailer::urlencode(&issuer)
    );
    let qr = qrcode::QrCode::new(uri.as_bytes())
        .map(|c| c.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build())
        .unwrap_or_default();
    Ok(json(&json!({
        "id": id,
        "type": "totp",
        "friendly_name": friendly,
        "totp": { "qr_code": qr, "secret": b32, "uri": uri },
    })))
}

/// `POST /factors/:id/challenge`.
pub async fn challenge(ctx: Ctx, id: String, _body: Bytes) -> Result<Response, AuthError> {
    let a = authenticate(&ctx).await?;
    let fid = factor_id(&id)?;
    let client = ctx.auth.db().await?;
    let owned = client
        .query_opt("select 1 from auth.mfa_factors where id = $1 and user_id = $2", &[&fid, &a.user_id])
        .await?;
    if owned.is_none() {
        return Err(not_found());
    }
    let cid = Uuid::new_v4();
    let ip = ctx.ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into());
    client
        .execute(
            "with c as (insert into auth.mfa_challenges (id, factor_id, created_at, ip_address) values ($1, $2, now(), $3::text::inet))
             update auth.mfa_factors set last_challenged_at = clock_timestamp() where id = $2",
            &[&cid, &fid, &ip],
        )
        .await?;
    let expires_at = now_secs() + ctx.auth.config().mfa_challenge_expiry as i64;
    Ok(json(&json!({ "id": cid, "type": "totp", "expires_at": expires_at })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct VerifyParams {
    challenge_id: String,
    code: String,
}

/// `POST /factors/:id/verify`: checks the code and answers an AAL2 session.
pub async fn verify(ctx: Ctx, id: String, body: Bytes) -> Result<Response, AuthError> {
    let p: VerifyParams = parse(&body)?;
    let a = authenticate(&ctx).await?;
    let session_id = a.session_id.ok_or(AuthError::SessionNotFound)?;
    let fid = factor_id(&id)?;
    let cid = Uuid::parse_str(&p.challenge_id).map_err(|_| {
        AuthError::Coded(StatusCode::NOT_FOUND, "mfa_challenge_not_found", "Challenge not found".into())
    })?;
    let cfg = ctx.auth.config().clone();
    let lock_key = fid.to_string();
    let per = Duration::from_secs(300);
    let mut client = ctx.auth.db().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            "select f.secret, c.verified_at is not null as used,
                    c.created_at + make_interval(secs => $4::float8) < now() as expired
               from auth.mfa_factors f join auth.mfa_challenges c on c.factor_id = f.id
              where f.id = $1 and f.user_id = $2 and c.id = $3
              for update of c",
            &[&fid, &a.user_id, &cid, &(cfg.mfa_challenge_expiry as f64)],
        )
        .await?;
    let Some(row) = row else {
        return Err(AuthError::Coded(StatusCode::NOT_FOUND, "mfa_challenge_not_found", "Challenge not found".into()));
    };
    let used: bool = row.try_get("used").map_err(AuthError::internal)?;
    let expired: bool = row.try_get("expired").map_err(AuthError::internal)?;
    if used || expired {
        return Err(AuthError::Coded(
            StatusCode::UNPROCESSABLE_ENTITY,
            "mfa_challenge_expired",
            format!("MFA challenge {cid} has expired, verify against another challenge or create a new challenge."),
        ));
    }
    // Lockout: only failures count, so check without counting first.
    if ctx.auth.counted(Action::MfaFailure, &lock_key, per).await? >= cfg.mfa_max_verify_failures {
        return Err(AuthError::Coded(
            StatusCode::TOO_MANY_REQUESTS,
            "over_request_rate_limit",
            "Too many MFA verification attempts; try again later".into(),
        ));
    }
    let sealed: Option<String> = row.try_get("secret").map_err(AuthError::internal)?;
    let secret = sealed.as_deref().and_then(|s| totp::open(&key(&ctx), s)).ok_or_else(|| AuthError::internal("cannot decrypt TOTP secret"))?;
    if !totp::check(&secret, &p.code, now_secs().max(0) as u64) {
        ctx.auth.allow(Action::MfaFailure, &lock_key, u32::MAX, per).await?;
        return Err(AuthError::Coded(StatusCode::UNPROCESSABLE_ENTITY, "mfa_verification_failed", "Invalid TOTP code entered".into()));
    }
    tx.execute(
        "with c as (update auth.mfa_challenges set verified_at = now() where id = $2)
         update auth.mfa_factors set status = 'verified', updated_at = now() where id = $1",
        &[&fid, &cid],
    )
    .await?;
    tx.commit().await?;
    drop(client);
    let session = ctx.auth.upgrade_session(session_id, a.user_id, fid, "totp").await?;
    Ok(json(&session))
}

/// `DELETE /factors/:id`.
pub async fn unenroll(ctx: Ctx, id: String, _body: Bytes) -> Result<Response, AuthError> {
    let a = authenticate(&ctx).await?;
    let fid = factor_id(&id)?;
    let client = ctx.auth.db().await?;
    let row = client
        .query_opt("select status::text from auth.mfa_factors where id = $1 and user_id = $2", &[&fid, &a.user_id])
        .await?;
    let Some(row) = row else { return Err(not_found()) };
    let status: String = row.try_get(0).map_err(AuthError::internal)?;
    if status == "verified" && aal(&a) != "aal2" {
        return Err(AuthError::Coded(StatusCode::FORBIDDEN, "insufficient_aal", "AAL2 required to unenroll verified factor".into()));
    }
    client.execute("delete from auth.mfa_factors where id = $1", &[&fid]).await?;
    Ok(json(&json!({ "id": fid })))
}

/// `GET /admin/users/:uid/factors`.
pub async fn admin_list(ctx: Ctx, uid: String) -> Result<Response, AuthError> {
    require_admin(&ctx)?;
    let uid = Uuid::parse_str(&uid).map_err(|_| AuthError::UserNotFound)?;
    let client = ctx.auth.db().await?;
    let user = ctx.auth.user_json(&client, uid).await?.ok_or(AuthError::UserNotFound)?;
    Ok(json(&user.get("factors").cloned().unwrap_or_else(|| json!([]))))
}

/// `DELETE /admin/users/:uid/factors/:id`.
pub async fn admin_delete(ctx: Ctx, uid: String, id: String) -> Result<Response, AuthError> {
    require_admin(&ctx)?;
    let uid = Uuid::parse_str(&uid).map_err(|_| AuthError::UserNotFound)?;
    let fid = factor_id(&id)?;
    let client = ctx.auth.db().await?;
    let row = client
        .query_opt(
            "delete from auth.mfa_factors where id = $1 and user_id = $2
             returning jsonb_build_object('id', id, 'friendly_name', coalesce(friendly_name, ''), 'factor_type', factor_type,
                 'status', status, 'created_at', fluxbase.auth_ts(created_at), 'updated_at', fluxbase.auth_ts(updated_at))",
            &[&fid, &uid],
        )
        .await?;
    let Some(row) = row else { return Err(not_found()) };
    let v: Value = row.try_get(0).map_err(AuthError::internal)?;
    Ok(json(&v))
}
