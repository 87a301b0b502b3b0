-- Identity: tenants, users, roles, credentials, sessions, 2FA, PINs, API keys, SIP credentials,
-- signing keys, throttling and the audit log. Every tenant table has tenant_id and every query
-- filters by it.

CREATE TABLE identity.tenants (
  id uuid PRIMARY KEY,
  slug text NOT NULL,
  display_name text NOT NULL,
  state smallint NOT NULL,                      -- switchboard.identity.v1.TenantState
  sip_domain text NOT NULL,
  time_zone text NOT NULL,
  default_language text NOT NULL,
  default_country text NOT NULL DEFAULT '',
  -- TenantSecurity, recording policy and retention: proto3 JSON of the Tenant's settings fields.
  settings jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX tenants_slug_key ON identity.tenants (slug);
CREATE UNIQUE INDEX tenants_sip_domain_key ON identity.tenants (lower(sip_domain));

CREATE TABLE identity.users (
  tenant_id uuid NOT NULL REFERENCES identity.tenants (id),
  id uuid PRIMARY KEY,
  first_name text NOT NULL,
  last_name text NOT NULL,
  display_name text NOT NULL,
  login_name text,                              -- lowercase; NULL when the user has none
  email text,
  email_verified boolean NOT NULL DEFAULT false,
  time_zone text NOT NULL,
  language text NOT NULL,
  state smallint NOT NULL,                      -- switchboard.identity.v1.UserState
  must_change_password boolean NOT NULL DEFAULT false,
  password_hash text,                           -- argon2id PHC string
  password_changed_at timestamptz,
  totp_secret bytea,                            -- active TOTP secret (raw)
  totp_last_step bigint NOT NULL DEFAULT 0,     -- last accepted time step: replays are refused
  totp_pending_secret bytea,
  totp_pending_expires_at timestamptz,
  avatar_type text,
  avatar bytea,
  avatar_etag text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  last_login_at timestamptz,
  deleted_at timestamptz
);
-- Login names and emails are unique among the users that are not deleted, case-insensitively.
CREATE UNIQUE INDEX users_login_name_key ON identity.users (tenant_id, login_name)
  WHERE state <> 3 AND login_name IS NOT NULL;
CREATE UNIQUE INDEX users_email_key ON identity.users (tenant_id, lower(email))
  WHERE state <> 3 AND email IS NOT NULL;
CREATE INDEX users_tenant_name_idx ON identity.users (tenant_id, lower(display_name), id);
-- A login without a tenant slug looks the login up across tenants.
CREATE INDEX users_login_any_idx ON identity.users (login_name)
  WHERE state <> 3 AND login_name IS NOT NULL;
CREATE INDEX users_email_any_idx ON identity.users (lower(email))
  WHERE state <> 3 AND email IS NOT NULL;

CREATE TABLE identity.recovery_codes (
  tenant_id uuid NOT NULL,
  user_id uuid NOT NULL REFERENCES identity.users (id) ON DELETE CASCADE,
  code_hash text NOT NULL,                      -- SHA-256 of user id and the normalised code
  used_at timestamptz,
  PRIMARY KEY (user_id, code_hash)
);

-- Custom roles; the built-in ones are defined in code and use their name as id.
CREATE TABLE identity.roles (
  tenant_id uuid NOT NULL REFERENCES identity.tenants (id),
  id uuid PRIMARY KEY,
  name text NOT NULL,
  display_name text NOT NULL,
  description text NOT NULL DEFAULT '',
  permissions text[] NOT NULL,                  -- "permission:scope"
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX roles_name_key ON identity.roles (tenant_id, name);

CREATE TABLE identity.user_roles (
  tenant_id uuid NOT NULL,
  user_id uuid NOT NULL REFERENCES identity.users (id) ON DELETE CASCADE,
  role_id text NOT NULL,                        -- built-in name or custom role uuid
  PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role_idx ON identity.user_roles (tenant_id, role_id);

CREATE TABLE identity.permission_overrides (
  tenant_id uuid NOT NULL,
  user_id uuid NOT NULL REFERENCES identity.users (id) ON DELETE CASCADE,
  permission text NOT NULL,
  effect smallint NOT NULL,                     -- 1 grant, 2 deny
  scope smallint NOT NULL,
  set_by_user_id uuid,
  set_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, permission)
);

-- A session is one refresh-token family.
CREATE TABLE identity.sessions (
  tenant_id uuid NOT NULL,
  id uuid PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES identity.users (id) ON DELETE CASCADE,
  remember_me boolean NOT NULL,
  restricted boolean NOT NULL,
  amr text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz,
  revoke_reason text,
  client_ip text NOT NULL DEFAULT '',
  user_agent text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user_idx ON identity.sessions (user_id) WHERE revoked_at IS NULL;

CREATE TABLE identity.refresh_tokens (
  token_hash text PRIMARY KEY,                  -- SHA-256 hex of the opaque token
  tenant_id uuid NOT NULL,
  session_id uuid NOT NULL REFERENCES identity.sessions (id) ON DELETE CASCADE,
  issued_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  used_at timestamptz                           -- set when rotated; a second use revokes the family
);
CREATE INDEX refresh_tokens_session_idx ON identity.refresh_tokens (session_id);

-- The password step of a login that still needs a TOTP or recovery code.
CREATE TABLE identity.login_challenges (
  token_hash text PRIMARY KEY,
  tenant_id uuid NOT NULL,
  user_id uuid NOT NULL REFERENCES identity.users (id) ON DELETE CASCADE,
  remember_me boolean NOT NULL,
  expires_at timestamptz NOT NULL,
  attempts int NOT NULL DEFAULT 0,
  used_at timestamptz
);

-- Revocations, published to Redis for every service (libs/auth/revocation_list.h); rows not yet
-- published are published again by a background loop.
CREATE TABLE identity.revocations (
  id bigserial PRIMARY KEY,
  kind smallint NOT NULL,                       -- 0 session, 1 user, 2 api key
  subject_id text NOT NULL,
  revoked_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  published boolean NOT NULL DEFAULT false
);
CREATE INDEX revocations_unpublished_idx ON identity.revocations (id) WHERE NOT published;

-- Failure counters for login, TOTP and PIN checks, per account and per source address.
CREATE TABLE identity.throttle (
  key text PRIMARY KEY,
  failures int NOT NULL DEFAULT 0,
  last_failure_at timestamptz NOT NULL DEFAULT now(),
  locked_until timestamptz
);

CREATE TABLE identity.signing_keys (
  key_id text PRIMARY KEY,
  algorithm text NOT NULL,
  private_pem text NOT NULL,
  public_pem text NOT NULL,
  state smallint NOT NULL,                      -- SigningKey.State: 1 next, 2 active, 3 retired
  created_at timestamptz NOT NULL DEFAULT now(),
  activated_at timestamptz,
  not_after timestamptz
);

CREATE TABLE identity.pins (
  tenant_id uuid NOT NULL,
  id uuid PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES identity.users (id) ON DELETE CASCADE,
  pin_hash text NOT NULL,                       -- argon2id
  label text NOT NULL DEFAULT '',
  created_by_user_id uuid,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  expires_at timestamptz
);
CREATE INDEX pins_user_idx ON identity.pins (tenant_id, user_id);

CREATE TABLE identity.api_keys (
  tenant_id uuid NOT NULL REFERENCES identity.tenants (id),
  id uuid PRIMARY KEY,
  name text NOT NULL,
  description text NOT NULL DEFAULT '',
  key_prefix text NOT NULL,
  key_hash text NOT NULL,                       -- SHA-256 hex of the secret
  permissions text[] NOT NULL,
  created_by_user_id uuid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  expires_at timestamptz,
  revoked_at timestamptz
);
CREATE UNIQUE INDEX api_keys_hash_key ON identity.api_keys (key_hash);

CREATE TABLE identity.sip_credentials (
  tenant_id uuid NOT NULL,
  user_id uuid PRIMARY KEY REFERENCES identity.users (id) ON DELETE CASCADE,
  username text NOT NULL,
  ha1_md5 text NOT NULL,
  ha1_sha256 text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  rotated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX sip_credentials_username_key ON identity.sip_credentials (tenant_id, username);

CREATE TABLE identity.audit_log (
  tenant_id uuid NOT NULL,
  id uuid PRIMARY KEY,
  occurred_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  actor_user_id uuid,
  actor_api_key_id uuid,
  actor_display_name text NOT NULL DEFAULT '',
  action text NOT NULL,
  target_type text NOT NULL,
  target_id text NOT NULL DEFAULT '',
  target_display_name text NOT NULL DEFAULT '',
  result smallint NOT NULL,                     -- AuditResult
  client_ip text NOT NULL DEFAULT '',
  user_agent text NOT NULL DEFAULT '',
  changes jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_tenant_time_idx ON identity.audit_log (tenant_id, occurred_at DESC, id);
