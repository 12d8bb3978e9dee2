-- 0200_auth_support.sql
--
-- Owns: what Fluxbase's auth server (src/auth) keeps beside GoTrue's own
-- `auth.*` tables:
--   * fluxbase.auth_mail: the captured mailbox (mail the embedded default
--     does not send), readable by the service role through
--     GET /auth/v1/admin/mail;
--   * fluxbase.auth_ts(): GoTrue's timestamp format (RFC 3339, UTC, µs);
--   * fluxbase.auth_user_json(): the User object of GoTrue's API
--     (models/user.go), built in one round trip.

CREATE SCHEMA IF NOT EXISTS fluxbase;

CREATE TABLE fluxbase.auth_mail (
  id          bigserial PRIMARY KEY,
  created_at  timestamptz NOT NULL DEFAULT now(),
  recipient   text NOT NULL,
  subject     text NOT NULL,
  kind        text NOT NULL,
  body        text NOT NULL,
  -- Machine-readable parts of the mail (link, otp, token hash) for tests and
  -- the dashboard.
  data        jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX auth_mail_recipient_idx ON fluxbase.auth_mail (lower(recipient), id DESC);
REVOKE ALL ON fluxbase.auth_mail FROM PUBLIC;

CREATE FUNCTION fluxbase.auth_ts(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') $$;

-- Top-level keys whose value is null are left out, as GoTrue's `omitempty`
-- does; nulls inside the metadata stay.
CREATE FUNCTION fluxbase.auth_user_json(uid uuid) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
  SELECT (
    SELECT coalesce(jsonb_object_agg(k, v), '{}'::jsonb)
    FROM jsonb_each(jsonb_build_object(
      'id', u.id,
      'aud', coalesce(u.aud, ''),
      'role', coalesce(u.role, ''),
      'email', coalesce(u.email, ''),
      'email_confirmed_at', fluxbase.auth_ts(u.email_confirmed_at),
      'phone', coalesce(u.phone, ''),
      'phone_confirmed_at', fluxbase.auth_ts(u.phone_confirmed_at),
      'confirmation_sent_at', fluxbase.auth_ts(u.confirmation_sent_at),
      'confirmed_at', fluxbase.auth_ts(u.confirmed_at),
      'recovery_sent_at', fluxbase.auth_ts(u.recovery_sent_at),
      'new_email', nullif(u.email_change, ''),
      'email_change_sent_at', fluxbase.auth_ts(u.email_change_sent_at),
      'new_phone', nullif(u.phone_change, ''),
      'invited_at', fluxbase.auth_ts(u.invited_at),
      'last_sign_in_at', fluxbase.auth_ts(u.last_sign_in_at),
      'app_metadata', coalesce(u.raw_app_meta_data, '{}'::jsonb),
      'user_metadata', coalesce(u.raw_user_meta_data, '{}'::jsonb),
      'identities', (
        SELECT coalesce(jsonb_agg(jsonb_build_object(
          'identity_id', i.id,
          'id', i.provider_id,
          'user_id', i.user_id,
          'identity_data', i.identity_data,
          'provider', i.provider,
          'last_sign_in_at', fluxbase.auth_ts(i.last_sign_in_at),
          'created_at', fluxbase.auth_ts(i.created_at),
          'updated_at', fluxbase.auth_ts(i.updated_at),
          'email', i.email
        ) ORDER BY i.created_at, i.id), '[]'::jsonb)
        FROM auth.identities i WHERE i.user_id = u.id
      ),
      'factors', (
        SELECT jsonb_agg(jsonb_build_object(
          'id', f.id,
          'friendly_name', coalesce(f.friendly_name, ''),
          'factor_type', f.factor_type,
          'status', f.status,
          'created_at', fluxbase.auth_ts(f.created_at),
          'updated_at', fluxbase.auth_ts(f.updated_at),
          'last_challenged_at', fluxbase.auth_ts(f.last_challenged_at)
        ) ORDER BY f.created_at)
        FROM auth.mfa_factors f WHERE f.user_id = u.id
      ),
      'created_at', fluxbase.auth_ts(u.created_at),
      'updated_at', fluxbase.auth_ts(u.updated_at),
      'banned_until', fluxbase.auth_ts(u.banned_until),
      'deleted_at', fluxbase.auth_ts(u.deleted_at),
      'is_anonymous', u.is_anonymous
    )) AS e(k, v)
    WHERE v <> 'null'::jsonb
  )
  FROM auth.users u WHERE u.id = uid
$$;
