-- 0203_auth_user_json_speed.sql
--
-- Owns: the speed of fluxbase.auth_user_json() and fluxbase.auth_ts()
-- (0200_auth_support.sql), which every auth answer carrying a user runs,
-- the refresh grant included. Same results, measured on PostgreSQL 15:
--   * auth_ts() was IMMUTABLE around the STABLE to_char(), so the planner
--     never inlined it and each call ran as a SQL function (about 40 us);
--     declared STABLE it inlines to the to_char() expression;
--   * auth_user_json() was a LANGUAGE sql function, whose query PostgreSQL
--     15 plans again on every call from another statement (about 1 ms);
--     in PL/pgSQL the plan is cached per connection. Together: about 5x
--     less time per user JSON.

CREATE OR REPLACE FUNCTION fluxbase.auth_ts(t timestamptz) RETURNS text
LANGUAGE sql STABLE
AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') $$;

-- Top-level keys whose value is null are left out, as GoTrue's `omitempty`
-- does; nulls inside the metadata stay.
CREATE OR REPLACE FUNCTION fluxbase.auth_user_json(uid uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
BEGIN
  RETURN (
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
  );
END
$$;
