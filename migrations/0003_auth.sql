-- 0003_auth.sql
--
-- Owns: schema `auth` -- the JWT helper functions auth.uid(), auth.role(),
-- auth.email(), auth.jwt(); GoTrue's (supabase/auth) enums, tables, constraints
-- and indexes in their current final shape; ownership by supabase_auth_admin;
-- grants and row level security as Supabase has them.
--
-- Shape checked against supabase/auth @ bc32168e (all migrations through
-- 20260625000000 applied to a scratch database and dumped) and
-- supabase/postgres init-scripts: same column names, order, types, defaults,
-- constraint and index names, so Supabase policies, seeds (including
-- positional INSERTs into auth.users) and pg_dump data load unchanged.
--
-- Access model (Supabase's): anon/authenticated/service_role get USAGE on the
-- schema, so policies can call auth.uid() etc., but no privilege on any auth
-- table; `postgres` and dashboard_user get full access.  RLS is ENABLED, with
-- no policies, on the 16 tables GoTrue enables it on (its migration
-- 20240612123726) -- so a role that is neither the owner, a superuser nor
-- BYPASSRLS sees no rows even if someone grants it SELECT.
--
-- Left out: auth.schema_migrations (GoTrue's own bookkeeping; Fluxbase is the
-- auth server here) and the historical sso_sessions table (dropped by GoTrue).

CREATE SCHEMA auth;
ALTER SCHEMA auth OWNER TO supabase_admin;

-- 1. JWT helpers ---------------------------------------------------------------
-- Read the claims the server sets per request (PostgREST style):
-- request.jwt.claims (JSON, current) with the legacy per-claim settings
-- request.jwt.claim.<name> (PostgREST < 9) taking precedence when set.

CREATE FUNCTION auth.uid() RETURNS uuid
LANGUAGE sql STABLE
AS $$
  SELECT coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

CREATE FUNCTION auth.role() RETURNS text
LANGUAGE sql STABLE
AS $$
  SELECT coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

CREATE FUNCTION auth.email() RETURNS text
LANGUAGE sql STABLE
AS $$
  SELECT coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;

CREATE FUNCTION auth.jwt() RETURNS jsonb
LANGUAGE sql STABLE
AS $$
  SELECT coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

COMMENT ON FUNCTION auth.uid() IS 'Deprecated. Use auth.jwt() -> ''sub'' instead.';
COMMENT ON FUNCTION auth.role() IS 'Deprecated. Use auth.jwt() -> ''role'' instead.';
COMMENT ON FUNCTION auth.email() IS 'Deprecated. Use auth.jwt() -> ''email'' instead.';

-- 2. Enums -----------------------------------------------------------------------

CREATE TYPE auth.aal_level AS ENUM ('aal1', 'aal2', 'aal3');
CREATE TYPE auth.code_challenge_method AS ENUM ('s256', 'plain');
CREATE TYPE auth.factor_status AS ENUM ('unverified', 'verified');
CREATE TYPE auth.factor_type AS ENUM ('totp', 'webauthn', 'phone');
CREATE TYPE auth.one_time_token_type AS ENUM (
  'confirmation_token',
  'reauthentication_token',
  'recovery_token',
  'email_change_token_new',
  'email_change_token_current',
  'phone_change_token'
);
CREATE TYPE auth.oauth_registration_type AS ENUM ('dynamic', 'manual');
CREATE TYPE auth.oauth_client_type AS ENUM ('public', 'confidential');
CREATE TYPE auth.oauth_authorization_status AS ENUM ('pending', 'approved', 'denied', 'expired');
CREATE TYPE auth.oauth_response_type AS ENUM ('code');

-- 3. Tables ----------------------------------------------------------------------

CREATE TABLE auth.instances (
  id              uuid NOT NULL,
  uuid            uuid,
  raw_base_config text,
  created_at      timestamptz,
  updated_at      timestamptz,
  CONSTRAINT instances_pkey PRIMARY KEY (id)
);
COMMENT ON TABLE auth.instances IS 'Auth: Manages users across multiple sites.';

-- Column order is GoTrue's physical order (columns were added over the years;
-- `confirmed_at` is the generated one, email_confirmed_at the stored one).
CREATE TABLE auth.users (
  instance_id                 uuid,
  id                          uuid NOT NULL,
  aud                         varchar(255),
  role                        varchar(255),
  email                       varchar(255),
  encrypted_password          varchar(255),
  email_confirmed_at          timestamptz,
  invited_at                  timestamptz,
  confirmation_token          varchar(255),
  confirmation_sent_at        timestamptz,
  recovery_token              varchar(255),
  recovery_sent_at            timestamptz,
  email_change_token_new      varchar(255),
  email_change                varchar(255),
  email_change_sent_at        timestamptz,
  last_sign_in_at             timestamptz,
  raw_app_meta_data           jsonb,
  raw_user_meta_data          jsonb,
  is_super_admin              boolean,
  created_at                  timestamptz,
  updated_at                  timestamptz,
  phone                       text DEFAULT NULL::character varying,
  phone_confirmed_at          timestamptz,
  phone_change                text DEFAULT ''::character varying,
  phone_change_token          varchar(255) DEFAULT ''::character varying,
  phone_change_sent_at        timestamptz,
  confirmed_at                timestamptz
                              GENERATED ALWAYS AS (LEAST(email_confirmed_at, phone_confirmed_at)) STORED,
  email_change_token_current  varchar(255) DEFAULT ''::character varying,
  email_change_confirm_status smallint DEFAULT 0,
  banned_until                timestamptz,
  reauthentication_token      varchar(255) DEFAULT ''::character varying,
  reauthentication_sent_at    timestamptz,
  is_sso_user                 boolean NOT NULL DEFAULT false,
  deleted_at                  timestamptz,
  is_anonymous                boolean NOT NULL DEFAULT false,
  CONSTRAINT users_pkey PRIMARY KEY (id),
  CONSTRAINT users_phone_key UNIQUE (phone),
  CONSTRAINT users_email_change_confirm_status_check
    CHECK (email_change_confirm_status >= 0 AND email_change_confirm_status <= 2)
);
COMMENT ON TABLE auth.users IS 'Auth: Stores user login data within a secure schema.';
COMMENT ON COLUMN auth.users.is_sso_user IS 'Auth: Set this column to true when the account comes from SSO. These accounts can have duplicate emails.';

CREATE INDEX users_instance_id_idx ON auth.users (instance_id);
CREATE INDEX users_instance_id_email_idx ON auth.users (instance_id, lower(email::text));
CREATE INDEX users_is_anonymous_idx ON auth.users (is_anonymous);
CREATE UNIQUE INDEX users_email_partial_key ON auth.users (email) WHERE is_sso_user = false;
COMMENT ON INDEX auth.users_email_partial_key IS 'Auth: A partial unique index that applies only when is_sso_user is false';
-- Token columns are unique unless empty, blank or a numeric OTP.
CREATE UNIQUE INDEX confirmation_token_idx ON auth.users (confirmation_token)
  WHERE confirmation_token::text !~ '^[0-9 ]*$';
CREATE UNIQUE INDEX recovery_token_idx ON auth.users (recovery_token)
  WHERE recovery_token::text !~ '^[0-9 ]*$';
CREATE UNIQUE INDEX email_change_token_current_idx ON auth.users (email_change_token_current)
  WHERE email_change_token_current::text !~ '^[0-9 ]*$';
CREATE UNIQUE INDEX email_change_token_new_idx ON auth.users (email_change_token_new)
  WHERE email_change_token_new::text !~ '^[0-9 ]*$';
CREATE UNIQUE INDEX reauthentication_token_idx ON auth.users (reauthentication_token)
  WHERE reauthentication_token::text !~ '^[0-9 ]*$';

CREATE TABLE auth.identities (
  provider_id     text NOT NULL,
  user_id         uuid NOT NULL,
  identity_data   jsonb NOT NULL,
  provider        text NOT NULL,
  last_sign_in_at timestamptz,
  created_at      timestamptz,
  updated_at      timestamptz,
  email           text GENERATED ALWAYS AS (lower(identity_data ->> 'email')) STORED,
  id              uuid NOT NULL DEFAULT gen_random_uuid(),
  CONSTRAINT identities_pkey PRIMARY KEY (id),
  CONSTRAINT identities_provider_id_provider_unique UNIQUE (provider_id, provider),
  CONSTRAINT identities_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES auth.users (id) ON DELETE CASCADE
);
COMMENT ON TABLE auth.identities IS 'Auth: Stores identities associated to a user.';
COMMENT ON COLUMN auth.identities.email IS 'Auth: Email is a generated column that references the optional email property in the identity_data';
CREATE INDEX identities_user_id_idx ON auth.identities (user_id);
CREATE INDEX identities_email_idx ON auth.identities (email text_pattern_ops);
COMMENT ON INDEX auth.identities_email_idx IS 'Auth: Ensures indexed queries on the email column';

CREATE TABLE auth.oauth_clients (
  id                         uuid NOT NULL,
  client_secret_hash         text,
  registration_type          auth.oauth_registration_type NOT NULL,
  redirect_uris              text NOT NULL,
  grant_types                text NOT NULL,
  client_name                text,
  client_uri                 text,
  logo_uri                   text,
  created_at                 timestamptz NOT NULL DEFAULT now(),
  updated_at                 timestamptz NOT NULL DEFAULT now(),
  deleted_at                 timestamptz,
  client_type                auth.oauth_client_type NOT NULL DEFAULT 'confidential',
  token_endpoint_auth_method text NOT NULL,
  CONSTRAINT oauth_clients_pkey PRIMARY KEY (id),
  CONSTRAINT oauth_clients_client_name_length CHECK (char_length(client_name) <= 1024),
  CONSTRAINT oauth_clients_client_uri_length CHECK (char_length(client_uri) <= 2048),
  CONSTRAINT oauth_clients_logo_uri_length CHECK (char_length(logo_uri) <= 2048),
  CONSTRAINT oauth_clients_token_endpoint_auth_method_check
    CHECK (token_endpoint_auth_method IN ('client_secret_basic', 'client_secret_post', 'none'))
);
CREATE INDEX oauth_clients_deleted_at_idx ON auth.oauth_clients (deleted_at);

CREATE TABLE auth.sessions (
  id                     uuid NOT NULL,
  user_id                uuid NOT NULL,
  created_at             timestamptz,
  updated_at             timestamptz,
  factor_id              uuid,
  aal                    auth.aal_level,
  not_after              timestamptz,
  refreshed_at           timestamp without time zone,
  user_agent             text,
  ip                     inet,
  tag                    text,
  oauth_client_id        uuid,
  refresh_token_hmac_key text,
  refresh_token_counter  bigint,
  scopes                 text,
  CONSTRAINT sessions_pkey PRIMARY KEY (id),
  CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES auth.users (id) ON DELETE CASCADE,
  CONSTRAINT sessions_oauth_client_id_fkey FOREIGN KEY (oauth_client_id)
    REFERENCES auth.oauth_clients (id) ON DELETE CASCADE,
  CONSTRAINT sessions_scopes_length CHECK (char_length(scopes) <= 4096)
);
COMMENT ON TABLE auth.sessions IS 'Auth: Stores session data associated to a user.';
COMMENT ON COLUMN auth.sessions.not_after IS 'Auth: Not after is a nullable column that contains a timestamp after which the session should be regarded as expired.';
COMMENT ON COLUMN auth.sessions.refresh_token_hmac_key IS 'Holds a HMAC-SHA256 key used to sign refresh tokens for this session.';
COMMENT ON COLUMN auth.sessions.refresh_token_counter IS 'Holds the ID (counter) of the last issued refresh token.';
CREATE INDEX sessions_user_id_idx ON auth.sessions (user_id);
CREATE INDEX user_id_created_at_idx ON auth.sessions (user_id, created_at);
CREATE INDEX sessions_not_after_idx ON auth.sessions (not_after DESC);
CREATE INDEX sessions_oauth_client_id_idx ON auth.sessions (oauth_client_id);

-- refresh_tokens.user_id is varchar (a GoTrue legacy), and `parent` holds the
-- previous token string with no foreign key (GoTrue dropped it).
CREATE TABLE auth.refresh_tokens (
  instance_id uuid,
  id          bigserial NOT NULL,
  token       varchar(255),
  user_id     varchar(255),
  revoked     boolean,
  created_at  timestamptz,
  updated_at  timestamptz,
  parent      varchar(255),
  session_id  uuid,
  CONSTRAINT refresh_tokens_pkey PRIMARY KEY (id),
  CONSTRAINT refresh_tokens_token_unique UNIQUE (token),
  CONSTRAINT refresh_tokens_session_id_fkey FOREIGN KEY (session_id)
    REFERENCES auth.sessions (id) ON DELETE CASCADE
);
COMMENT ON TABLE auth.refresh_tokens IS 'Auth: Store of tokens used to refresh JWT tokens once they expire.';
CREATE INDEX refresh_tokens_instance_id_idx ON auth.refresh_tokens (instance_id);
CREATE INDEX refresh_tokens_instance_id_user_id_idx ON auth.refresh_tokens (instance_id, user_id);
CREATE INDEX refresh_tokens_parent_idx ON auth.refresh_tokens (parent);
CREATE INDEX refresh_tokens_session_id_revoked_idx ON auth.refresh_tokens (session_id, revoked);
CREATE INDEX refresh_tokens_updated_at_idx ON auth.refresh_tokens (updated_at DESC);

CREATE TABLE auth.mfa_factors (
  id                           uuid NOT NULL,
  user_id                      uuid NOT NULL,
  friendly_name                text,
  factor_type                  auth.factor_type NOT NULL,
  status                       auth.factor_status NOT NULL,
  created_at                   timestamptz NOT NULL,
  updated_at                   timestamptz NOT NULL,
  secret                       text,
  phone                        text,
  last_challenged_at           timestamptz,
  web_authn_credential         jsonb,
  web_authn_aaguid             uuid,
  last_webauthn_challenge_data jsonb,
  CONSTRAINT mfa_factors_pkey PRIMARY KEY (id),
  CONSTRAINT mfa_factors_last_challenged_at_key UNIQUE (last_challenged_at),
  CONSTRAINT mfa_factors_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES auth.users (id) ON DELETE CASCADE
);
COMMENT ON TABLE auth.mfa_factors IS 'auth: stores metadata about factors';
COMMENT ON COLUMN auth.mfa_factors.last_webauthn_challenge_data IS 'Stores the latest WebAuthn challenge data including attestation/assertion for customer verification';
CREATE UNIQUE INDEX mfa_factors_user_friendly_name_unique ON auth.mfa_factors (friendly_name, user_id)
  WHERE trim(friendly_name) <> '';
CREATE INDEX factor_id_created_at_idx ON auth.mfa_factors (user_id, created_at);
CREATE INDEX mfa_factors_user_id_idx ON auth.mfa_factors (user_id);
CREATE UNIQUE INDEX unique_phone_factor_per_user ON auth.mfa_factors (user_id, phone);

CREATE TABLE auth.mfa_challenges (
  id                     uuid NOT NULL,
  factor_id              uuid NOT NULL,
  created_at             timestamptz NOT NULL,
  verified_at            timestamptz,
  ip_address             inet NOT NULL,
  otp_code               text,
  web_authn_session_data jsonb,
  CONSTRAINT mfa_challenges_pkey PRIMARY KEY (id),
  CONSTRAINT mfa_challenges_auth_factor_id_fkey FOREIGN KEY (factor_id)
    REFERENCES auth.mfa_factors (id) ON DELETE CASCADE
);
COMMENT ON TABLE auth.mfa_challenges IS 'auth: stores metadata about challenge requests made';
CREATE INDEX mfa_challenge_created_at_idx ON auth.mfa_challenges (created_at DESC);

CREATE TABLE auth.mfa_amr_claims (
  session_id            uuid NOT NULL,
  created_at            timestamptz NOT NULL,
  updated_at            timestamptz NOT NULL,
  authentication_method text NOT NULL,
  id                    uuid NOT NULL,
  CONSTRAINT amr_id_pk PRIMARY KEY (id),
  CONSTRAINT mfa_amr_claims_session_id_authentication_method_pkey
    UNIQUE (session_id, authentication_method),
  CONSTRAINT mfa_amr_claims_session_id_fkey FOREIGN KEY (session_id)
    REFERENCES auth.sessions (id) ON DELETE CASCADE
);
COMMENT ON TABLE auth.mfa_amr_claims IS 'auth: stores authenticator method reference claims for multi factor authentication';

CREATE TABLE auth.one_time_tokens (
  id         uuid NOT NULL,
  user_id    uuid NOT NULL,
  token_type auth.one_time_token_type NOT NULL,
  token_hash text NOT NULL,
  relates_to text NOT NULL,
  created_at timestamp without time zone NOT NULL DEFAULT now(),
  updated_at timestamp without time zone NOT NULL DEFAULT now(),
  CONSTRAINT one_time_tokens_pkey PRIMARY KEY (id),
  CONSTRAINT one_time_tokens_token_hash_check CHECK (char_length(token_hash) > 0),
  CONSTRAINT one_time_tokens_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES auth.users (id) ON DELETE CASCADE
);
CREATE INDEX one_time_tokens_token_hash_hash_idx ON auth.one_time_tokens USING hash (token_hash);
CREATE INDEX one_time_tokens_relates_to_hash_idx ON auth.one_time_tokens USING hash (relates_to);
CREATE UNIQUE INDEX one_time_tokens_user_id_token_type_key ON auth.one_time_tokens (user_id, token_type);

-- PKCE / OAuth / SSO login flows.
CREATE TABLE auth.flow_state (
  id                     uuid NOT NULL,
  user_id                uuid,
  auth_code              text,
  code_challenge_method  auth.code_challenge_method,
  code_challenge         text,
  provider_type          text NOT NULL,
  provider_access_token  text,
  provider_refresh_token text,
  created_at             timestamptz,
  updated_at             timestamptz,
  authentication_method  text NOT NULL,
  auth_code_issued_at    timestamptz,
  invite_token           text,
  referrer               text,
  oauth_client_state_id  uuid,
  linking_target_id      uuid,
  email_optional         boolean NOT NULL DEFAULT false,
  CONSTRAINT flow_state_pkey PRIMARY KEY (id)
);
COMMENT ON TABLE auth.flow_state IS 'Stores metadata for all OAuth/SSO login flows';
CREATE INDEX idx_auth_code ON auth.flow_state (auth_code);
CREATE INDEX idx_user_id_auth_method ON auth.flow_state (user_id, authentication_method);
CREATE INDEX flow_state_created_at_idx ON auth.flow_state (created_at DESC);

CREATE TABLE auth.audit_log_entries (
  instance_id uuid,
  id          uuid NOT NULL,
  payload     json,
  created_at  timestamptz,
  ip_address  varchar(64) NOT NULL DEFAULT ''::character varying,
  CONSTRAINT audit_log_entries_pkey PRIMARY KEY (id)
);
COMMENT ON TABLE auth.audit_log_entries IS 'Auth: Audit trail for user actions.';
CREATE INDEX audit_logs_instance_id_idx ON auth.audit_log_entries (instance_id);

-- SSO / SAML.  (`= null` in two checks is GoTrue's, kept for identical
-- constraint text: it is always null, so only the char_length branch counts.)
CREATE TABLE auth.sso_providers (
  id          uuid NOT NULL,
  resource_id text,
  created_at  timestamptz,
  updated_at  timestamptz,
  disabled    boolean,
  CONSTRAINT sso_providers_pkey PRIMARY KEY (id),
  CONSTRAINT "resource_id not empty" CHECK (resource_id = NULL OR char_length(resource_id) > 0)
);
COMMENT ON TABLE auth.sso_providers IS 'Auth: Manages SSO identity provider information; see saml_providers for SAML.';
COMMENT ON COLUMN auth.sso_providers.resource_id IS 'Auth: Uniquely identifies a SSO provider according to a user-chosen resource ID (case insensitive), useful in infrastructure as code.';
CREATE UNIQUE INDEX sso_providers_resource_id_idx ON auth.sso_providers (lower(resource_id));
CREATE INDEX sso_providers_resource_id_pattern_idx ON auth.sso_providers (resource_id text_pattern_ops);

CREATE TABLE auth.sso_domains (
  id              uuid NOT NULL,
  sso_provider_id uuid NOT NULL,
  domain          text NOT NULL,
  created_at      timestamptz,
  updated_at      timestamptz,
  CONSTRAINT sso_domains_pkey PRIMARY KEY (id),
  CONSTRAINT sso_domains_sso_provider_id_fkey FOREIGN KEY (sso_provider_id)
    REFERENCES auth.sso_providers (id) ON DELETE CASCADE,
  CONSTRAINT "domain not empty" CHECK (char_length(domain) > 0)
);
COMMENT ON TABLE auth.sso_domains IS 'Auth: Manages SSO email address domain mapping to an SSO Identity Provider.';
CREATE INDEX sso_domains_sso_provider_id_idx ON auth.sso_domains (sso_provider_id);
CREATE UNIQUE INDEX sso_domains_domain_idx ON auth.sso_domains (lower(domain));

CREATE TABLE auth.saml_providers (
  id                uuid NOT NULL,
  sso_provider_id   uuid NOT NULL,
  entity_id         text NOT NULL,
  metadata_xml      text NOT NULL,
  metadata_url      text,
  attribute_mapping jsonb,
  created_at        timestamptz,
  updated_at        timestamptz,
  name_id_format    text,
  CONSTRAINT saml_providers_pkey PRIMARY KEY (id),
  CONSTRAINT saml_providers_entity_id_key UNIQUE (entity_id),
  CONSTRAINT saml_providers_sso_provider_id_fkey FOREIGN KEY (sso_provider_id)
    REFERENCES auth.sso_providers (id) ON DELETE CASCADE,
  CONSTRAINT "metadata_xml not empty" CHECK (char_length(metadata_xml) > 0),
  CONSTRAINT "metadata_url not empty" CHECK (metadata_url = NULL OR char_length(metadata_url) > 0),
  CONSTRAINT "entity_id not empty" CHECK (char_length(entity_id) > 0)
);
COMMENT ON TABLE auth.saml_providers IS 'Auth: Manages SAML Identity Provider connections.';
CREATE INDEX saml_providers_sso_provider_id_idx ON auth.saml_providers (sso_provider_id);

CREATE TABLE auth.saml_relay_states (
  id              uuid NOT NULL,
  sso_provider_id uuid NOT NULL,
  request_id      text NOT NULL,
  for_email       text,
  redirect_to     text,
  created_at      timestamptz,
  updated_at      timestamptz,
  flow_state_id   uuid,
  CONSTRAINT saml_relay_states_pkey PRIMARY KEY (id),
  CONSTRAINT saml_relay_states_sso_provider_id_fkey FOREIGN KEY (sso_provider_id)
    REFERENCES auth.sso_providers (id) ON DELETE CASCADE,
  CONSTRAINT saml_relay_states_flow_state_id_fkey FOREIGN KEY (flow_state_id)
    REFERENCES auth.flow_state (id) ON DELETE CASCADE,
  CONSTRAINT "request_id not empty" CHECK (char_length(request_id) > 0)
);
COMMENT ON TABLE auth.saml_relay_states IS 'Auth: Contains SAML Relay State information for each Service Provider initiated login.';
CREATE INDEX saml_relay_states_sso_provider_id_idx ON auth.saml_relay_states (sso_provider_id);
CREATE INDEX saml_relay_states_for_email_idx ON auth.saml_relay_states (for_email);
CREATE INDEX saml_relay_states_created_at_idx ON auth.saml_relay_states (created_at DESC);

-- OAuth 2.1 server (Supabase as identity provider).
CREATE TABLE auth.oauth_authorizations (
  id                    uuid NOT NULL,
  authorization_id      text NOT NULL,
  client_id             uuid NOT NULL,
  user_id               uuid,
  redirect_uri          text NOT NULL,
  scope                 text NOT NULL,
  state                 text,
  resource              text,
  code_challenge        text,
  code_challenge_method auth.code_challenge_method,
  response_type         auth.oauth_response_type NOT NULL DEFAULT 'code',
  status                auth.oauth_authorization_status NOT NULL DEFAULT 'pending',
  authorization_code    text,
  created_at            timestamptz NOT NULL DEFAULT now(),
  expires_at            timestamptz NOT NULL DEFAULT (now() + '00:03:00'::interval),
  approved_at           timestamptz,
  nonce                 text,
  CONSTRAINT oauth_authorizations_pkey PRIMARY KEY (id),
  CONSTRAINT oauth_authorizations_authorization_id_key UNIQUE (authorization_id),
  CONSTRAINT oauth_authorizations_authorization_code_key UNIQUE (authorization_code),
  CONSTRAINT oauth_authorizations_client_id_fkey FOREIGN KEY (client_id)
    REFERENCES auth.oauth_clients (id) ON DELETE CASCADE,
  CONSTRAINT oauth_authorizations_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES auth.users (id) ON DELETE CASCADE,
  CONSTRAINT oauth_authorizations_redirect_uri_length CHECK (char_length(redirect_uri) <= 2048),
  CONSTRAINT oauth_authorizations_scope_length CHECK (char_length(scope) <= 4096),
  CONSTRAINT oauth_authorizations_state_length CHECK (char_length(state) <= 4096),
  CONSTRAINT oauth_authorizations_resource_length CHECK (char_length(resource) <= 2048),
  CONSTRAINT oauth_authorizations_code_challenge_length CHECK (char_length(code_challenge) <= 128),
  CONSTRAINT oauth_authorizations_authorization_code_length CHECK (char_length(authorization_code) <= 255),
  CONSTRAINT oauth_authorizations_expires_at_future CHECK (expires_at > created_at),
  CONSTRAINT oauth_authorizations_nonce_length CHECK (char_length(nonce) <= 255)
);
CREATE INDEX oauth_auth_pending_exp_idx ON auth.oauth_authorizations (expires_at)
  WHERE status = 'pending'::auth.oauth_authorization_status;

CREATE TABLE auth.oauth_consents (
  id         uuid NOT NULL,
  user_id    uuid NOT NULL,
  client_id  uuid NOT NULL,
  scopes     text NOT NULL,
  granted_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  CONSTRAINT oauth_consents_pkey PRIMARY KEY (id),
  CONSTRAINT oauth_consents_user_client_unique UNIQUE (user_id, client_id),
  CONSTRAINT oauth_consents_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES auth.users (id) ON DELETE CASCADE,
  CONSTRAINT oauth_consents_client_id_fkey FOREIGN KEY (client_id)
    REFERENCES auth.oauth_clients (id) ON DELETE CASCADE,
  CONSTRAINT oauth_consents_scopes_not_empty CHECK (char_length(trim(scopes)) > 0),
  CONSTRAINT oauth_consents_scopes_length CHECK (char_length(scopes) <= 2048),
  CONSTRAINT oauth_consents_revoked_after_granted
    CHECK (revoked_at IS NULL OR revoked_at >= granted_at)
);
CREATE INDEX oauth_consents_active_user_client_idx ON auth.oauth_consents (user_id, client_id)
  WHERE revoked_at IS NULL;
CREATE INDEX oauth_consents_user_order_idx ON auth.oauth_consents (user_id, granted_at DESC);
CREATE INDEX oauth_consents_active_client_idx ON auth.oauth_consents (client_id)
  WHERE revoked_at IS NULL;

-- OAuth client side (state of third-party provider logins).
CREATE TABLE auth.oauth_client_states (
  id            uuid NOT NULL,
  provider_type text NOT NULL,
  code_verifier text,
  created_at    timestamptz NOT NULL,
  CONSTRAINT oauth_client_states_pkey PRIMARY KEY (id)
);
COMMENT ON TABLE auth.oauth_client_states IS 'Stores OAuth states for third-party provider authentication flows where Supabase acts as the OAuth client.';
CREATE INDEX idx_oauth_client_states_created_at ON auth.oauth_client_states (created_at);

CREATE TABLE auth.custom_oauth_providers (
  id                      uuid NOT NULL DEFAULT gen_random_uuid(),
  provider_type           text NOT NULL,
  identifier              text NOT NULL,
  name                    text NOT NULL,
  client_id               text NOT NULL,
  client_secret           text NOT NULL,
  acceptable_client_ids   text[] NOT NULL DEFAULT '{}',
  scopes                  text[] NOT NULL DEFAULT '{}',
  pkce_enabled            boolean NOT NULL DEFAULT true,
  attribute_mapping       jsonb NOT NULL DEFAULT '{}',
  authorization_params    jsonb NOT NULL DEFAULT '{}',
  enabled                 boolean NOT NULL DEFAULT true,
  email_optional          boolean NOT NULL DEFAULT false,
  issuer                  text,
  discovery_url           text,
  skip_nonce_check        boolean NOT NULL DEFAULT false,
  cached_discovery        jsonb,
  discovery_cached_at     timestamptz,
  authorization_url       text,
  token_url               text,
  userinfo_url            text,
  jwks_uri                text,
  created_at              timestamptz NOT NULL DEFAULT now(),
  updated_at              timestamptz NOT NULL DEFAULT now(),
  custom_claims_allowlist text[] NOT NULL DEFAULT '{}',
  CONSTRAINT custom_oauth_providers_pkey PRIMARY KEY (id),
  CONSTRAINT custom_oauth_providers_identifier_key UNIQUE (identifier),
  CONSTRAINT custom_oauth_providers_provider_type_check CHECK (provider_type IN ('oauth2', 'oidc')),
  CONSTRAINT custom_oauth_providers_oidc_requires_issuer
    CHECK (provider_type <> 'oidc' OR issuer IS NOT NULL),
  CONSTRAINT custom_oauth_providers_oidc_issuer_https
    CHECK (provider_type <> 'oidc' OR issuer IS NULL OR issuer LIKE 'https://%'),
  CONSTRAINT custom_oauth_providers_oidc_discovery_url_https
    CHECK (provider_type <> 'oidc' OR discovery_url IS NULL OR discovery_url LIKE 'https://%'),
  CONSTRAINT custom_oauth_providers_oauth2_requires_endpoints
    CHECK (provider_type <> 'oauth2'
           OR (authorization_url IS NOT NULL AND token_url IS NOT NULL AND userinfo_url IS NOT NULL)),
  CONSTRAINT custom_oauth_providers_authorization_url_https
    CHECK (authorization_url IS NULL OR authorization_url LIKE 'https://%'),
  CONSTRAINT custom_oauth_providers_token_url_https
    CHECK (token_url IS NULL OR token_url LIKE 'https://%'),
  CONSTRAINT custom_oauth_providers_userinfo_url_https
    CHECK (userinfo_url IS NULL OR userinfo_url LIKE 'https://%'),
  CONSTRAINT custom_oauth_providers_jwks_uri_https
    CHECK (jwks_uri IS NULL OR jwks_uri LIKE 'https://%'),
  CONSTRAINT custom_oauth_providers_identifier_format
    CHECK (identifier ~ '^[a-z0-9][a-z0-9:-]{0,48}[a-z0-9]$'),
  CONSTRAINT custom_oauth_providers_name_length
    CHECK (char_length(name) >= 1 AND char_length(name) <= 100),
  CONSTRAINT custom_oauth_providers_issuer_length
    CHECK (issuer IS NULL OR (char_length(issuer) >= 1 AND char_length(issuer) <= 2048)),
  CONSTRAINT custom_oauth_providers_discovery_url_length
    CHECK (discovery_url IS NULL OR char_length(discovery_url) <= 2048),
  CONSTRAINT custom_oauth_providers_authorization_url_length
    CHECK (authorization_url IS NULL OR char_length(authorization_url) <= 2048),
  CONSTRAINT custom_oauth_providers_token_url_length
    CHECK (token_url IS NULL OR char_length(token_url) <= 2048),
  CONSTRAINT custom_oauth_providers_userinfo_url_length
    CHECK (userinfo_url IS NULL OR char_length(userinfo_url) <= 2048),
  CONSTRAINT custom_oauth_providers_jwks_uri_length
    CHECK (jwks_uri IS NULL OR char_length(jwks_uri) <= 2048),
  CONSTRAINT custom_oauth_providers_client_id_length
    CHECK (char_length(client_id) >= 1 AND char_length(client_id) <= 512)
);
CREATE INDEX custom_oauth_providers_identifier_idx ON auth.custom_oauth_providers (identifier);
CREATE INDEX custom_oauth_providers_provider_type_idx ON auth.custom_oauth_providers (provider_type);
CREATE INDEX custom_oauth_providers_enabled_idx ON auth.custom_oauth_providers (enabled);
CREATE INDEX custom_oauth_providers_created_at_idx ON auth.custom_oauth_providers (created_at);

-- Passkeys.
CREATE TABLE auth.webauthn_credentials (
  id               uuid NOT NULL DEFAULT gen_random_uuid(),
  user_id          uuid NOT NULL,
  credential_id    bytea NOT NULL,
  public_key       bytea NOT NULL,
  attestation_type text NOT NULL DEFAULT '',
  aaguid           uuid,
  sign_count       bigint NOT NULL DEFAULT 0,
  transports       jsonb NOT NULL DEFAULT '[]'::jsonb,
  backup_eligible  boolean NOT NULL DEFAULT false,
  backed_up        boolean NOT NULL DEFAULT false,
  friendly_name    text NOT NULL DEFAULT '',
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  last_used_at     timestamptz,
  CONSTRAINT webauthn_credentials_pkey PRIMARY KEY (id),
  CONSTRAINT webauthn_credentials_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES auth.users (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX webauthn_credentials_credential_id_key ON auth.webauthn_credentials (credential_id);
CREATE INDEX webauthn_credentials_user_id_idx ON auth.webauthn_credentials (user_id);

CREATE TABLE auth.webauthn_challenges (
  id             uuid NOT NULL DEFAULT gen_random_uuid(),
  user_id        uuid,
  challenge_type text NOT NULL,
  session_data   jsonb NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  expires_at     timestamptz NOT NULL,
  CONSTRAINT webauthn_challenges_pkey PRIMARY KEY (id),
  CONSTRAINT webauthn_challenges_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES auth.users (id) ON DELETE CASCADE,
  CONSTRAINT webauthn_challenges_challenge_type_check
    CHECK (challenge_type IN ('signup', 'registration', 'authentication'))
);
CREATE INDEX webauthn_challenges_user_id_idx ON auth.webauthn_challenges (user_id);
CREATE INDEX webauthn_challenges_expires_at_idx ON auth.webauthn_challenges (expires_at);

-- 4. Row level security (GoTrue enables it, with no policies, on these) ------------

ALTER TABLE auth.audit_log_entries ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.flow_state        ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.identities        ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.instances         ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.mfa_amr_claims    ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.mfa_challenges    ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.mfa_factors       ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.one_time_tokens   ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.refresh_tokens    ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.saml_providers    ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.saml_relay_states ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.sessions          ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.sso_domains       ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.sso_providers     ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.users             ENABLE ROW LEVEL SECURITY;

-- 5. Ownership -------------------------------------------------------------------
-- Everything in auth belongs to supabase_auth_admin, as in Supabase (owned
-- sequences follow their table).

DO $owner$
DECLARE
  o record;
BEGIN
  FOR o IN
    SELECT c.relname FROM pg_catalog.pg_class c
    WHERE c.relnamespace = 'auth'::regnamespace AND c.relkind IN ('r', 'p')
  LOOP
    EXECUTE format('ALTER TABLE auth.%I OWNER TO supabase_auth_admin', o.relname);
  END LOOP;
  FOR o IN
    SELECT t.typname FROM pg_catalog.pg_type t
    WHERE t.typnamespace = 'auth'::regnamespace AND t.typtype = 'e'
  LOOP
    EXECUTE format('ALTER TYPE auth.%I OWNER TO supabase_auth_admin', o.typname);
  END LOOP;
  FOR o IN
    SELECT p.oid::regprocedure AS sig FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = 'auth'::regnamespace
  LOOP
    EXECUTE format('ALTER FUNCTION %s OWNER TO supabase_auth_admin', o.sig);
  END LOOP;
END
$owner$;

-- 6. Privileges ------------------------------------------------------------------

-- The API roles may use the schema (to call the helpers) but touch no table.
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role, postgres;
GRANT ALL ON SCHEMA auth TO supabase_auth_admin, dashboard_user;
-- In case the cluster has global default privileges that reached these tables.
REVOKE ALL ON ALL TABLES IN SCHEMA auth FROM PUBLIC, anon, authenticated, service_role;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA auth FROM PUBLIC, anon, authenticated, service_role;

GRANT ALL ON ALL TABLES IN SCHEMA auth TO postgres, dashboard_user;
GRANT SELECT ON ALL TABLES IN SCHEMA auth TO postgres WITH GRANT OPTION;
GRANT ALL ON ALL SEQUENCES IN SCHEMA auth TO postgres, dashboard_user;
GRANT ALL ON ALL ROUTINES IN SCHEMA auth TO postgres, dashboard_user;

ALTER DEFAULT PRIVILEGES FOR ROLE supabase_auth_admin IN SCHEMA auth
  GRANT ALL ON TABLES TO postgres, dashboard_user;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_auth_admin IN SCHEMA auth
  GRANT ALL ON SEQUENCES TO postgres, dashboard_user;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_auth_admin IN SCHEMA auth
  GRANT ALL ON ROUTINES TO postgres, dashboard_user;
