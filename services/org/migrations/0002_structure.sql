-- Org structure: the org-unit tree, user placement, teams, reporting managers, schedules (stored
-- here; evaluated by libs/schedule), projects, agent profiles with their extensions, numbers,
-- trunks, the licence and org settings. Users and tenants belong to identity: their ids are kept
-- without foreign keys. Every table has tenant_id and every query filters by it.

CREATE TABLE org.org_units (
  tenant_id uuid NOT NULL,
  id uuid PRIMARY KEY,
  parent_id uuid REFERENCES org.org_units (id),
  name text NOT NULL,
  description text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- Sibling names are unique (case-insensitively); roots count as siblings of each other.
CREATE UNIQUE INDEX org_units_sibling_name_key
  ON org.org_units (tenant_id, coalesce(parent_id, '00000000-0000-0000-0000-000000000000'),
                    lower(name));
CREATE INDEX org_units_parent_idx ON org.org_units (tenant_id, parent_id);

CREATE TABLE org.user_org_units (
  tenant_id uuid NOT NULL,
  user_id uuid NOT NULL,
  org_unit_id uuid NOT NULL REFERENCES org.org_units (id),
  assigned_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, org_unit_id)
);
CREATE INDEX user_org_units_unit_idx ON org.user_org_units (org_unit_id, user_id);

CREATE TABLE org.schedules (
  tenant_id uuid NOT NULL,
  id uuid PRIMARY KEY,
  name text NOT NULL,
  description text NOT NULL DEFAULT '',
  time_zone text NOT NULL,
  -- proto3 JSON of the Schedule's weekly_ranges and exceptions.
  weekly_ranges jsonb NOT NULL DEFAULT '[]',
  exceptions jsonb NOT NULL DEFAULT '[]',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX schedules_name_key ON org.schedules (tenant_id, lower(name));

CREATE TABLE org.teams (
  tenant_id uuid NOT NULL,
  id uuid PRIMARY KEY,
  name text NOT NULL,
  description text NOT NULL DEFAULT '',
  schedule_id uuid REFERENCES org.schedules (id),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX teams_name_key ON org.teams (tenant_id, lower(name));

CREATE TABLE org.team_members (
  tenant_id uuid NOT NULL,
  team_id uuid NOT NULL REFERENCES org.teams (id) ON DELETE CASCADE,
  user_id uuid NOT NULL,
  role smallint NOT NULL,                       -- switchboard.org.v1.TeamMember.Role
  added_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user_idx ON org.team_members (user_id, team_id);

-- One reporting manager per user; cycles are refused by SetReportingManager under a per-tenant
-- advisory lock.
CREATE TABLE org.reporting_managers (
  tenant_id uuid NOT NULL,
  user_id uuid PRIMARY KEY,
  manager_user_id uuid NOT NULL,
  set_at timestamptz NOT NULL DEFAULT now(),
  CHECK (user_id <> manager_user_id)
);
CREATE INDEX reporting_managers_manager_idx ON org.reporting_managers (manager_user_id);

CREATE TABLE org.settings (
  tenant_id uuid PRIMARY KEY,
  extension_range_start integer NOT NULL,
  extension_range_end integer NOT NULL,
  contact_custom_fields text[] NOT NULL DEFAULT '{}',
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK (extension_range_start > 0 AND extension_range_end >= extension_range_start)
);

CREATE TABLE org.licences (
  tenant_id uuid PRIMARY KEY,
  max_agents integer NOT NULL DEFAULT 0,        -- 0: unlimited
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK (max_agents >= 0)
);

CREATE TABLE org.agent_profiles (
  tenant_id uuid NOT NULL,
  user_id uuid PRIMARY KEY,
  extension text NOT NULL,
  -- proto3 JSON of the profile's phones and skills.
  phones jsonb NOT NULL DEFAULT '[]',
  skills jsonb NOT NULL DEFAULT '[]',
  skill_names text[] NOT NULL DEFAULT '{}',
  incoming_call_preference smallint NOT NULL,
  mobile_delay_ms integer NOT NULL,
  max_concurrent_calls integer NOT NULL,
  wrap_up_ms integer NOT NULL,
  agent_alias text NOT NULL DEFAULT '',
  hourly_cost_currency text NOT NULL DEFAULT '',
  hourly_cost_nanos bigint NOT NULL DEFAULT 0,  -- units * 10^9 + nanos
  schedule_id uuid REFERENCES org.schedules (id),
  outbound_caller_id text NOT NULL DEFAULT '',
  outbound_enabled boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- An extension is held by one profile at a time; it is free again only once that profile is gone.
CREATE UNIQUE INDEX agent_profiles_extension_key ON org.agent_profiles (tenant_id, extension);
CREATE INDEX agent_profiles_skills_idx ON org.agent_profiles USING gin (skill_names);

CREATE TABLE org.projects (
  tenant_id uuid NOT NULL,
  id uuid PRIMARY KEY,
  name text NOT NULL,
  description text NOT NULL DEFAULT '',
  recording_policy smallint NOT NULL,           -- switchboard.common.v1.RecordingPolicy
  call_flow_id uuid,                            -- routing's; not checked here
  schedule_id uuid REFERENCES org.schedules (id),
  state smallint NOT NULL,                      -- switchboard.org.v1.ProjectState
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX projects_name_key ON org.projects (tenant_id, lower(name));

CREATE TABLE org.project_teams (
  tenant_id uuid NOT NULL,
  project_id uuid NOT NULL REFERENCES org.projects (id) ON DELETE CASCADE,
  team_id uuid NOT NULL REFERENCES org.teams (id),
  PRIMARY KEY (project_id, team_id)
);
CREATE INDEX project_teams_team_idx ON org.project_teams (team_id);

CREATE TABLE org.project_agents (
  tenant_id uuid NOT NULL,
  project_id uuid NOT NULL REFERENCES org.projects (id) ON DELETE CASCADE,
  user_id uuid NOT NULL,
  PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_agents_user_idx ON org.project_agents (user_id);

CREATE TABLE org.trunks (
  tenant_id uuid NOT NULL,
  id uuid PRIMARY KEY,
  name text NOT NULL,
  -- proto3 JSON of the Trunk, without id, tenant, name, password and timestamps.
  config jsonb NOT NULL,
  inbound_cidrs cidr[] NOT NULL DEFAULT '{}',
  auth_password text,                           -- never returned by the API
  default_outbound boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX trunks_name_key ON org.trunks (tenant_id, lower(name));
CREATE UNIQUE INDEX trunks_default_outbound_key ON org.trunks (tenant_id) WHERE default_outbound;

CREATE TABLE org.numbers (
  tenant_id uuid NOT NULL,
  id uuid PRIMARY KEY,
  number text NOT NULL,                         -- E.164
  description text NOT NULL DEFAULT '',
  project_id uuid REFERENCES org.projects (id),
  call_flow_id uuid,
  trunk_id uuid REFERENCES org.trunks (id),
  schedule_id uuid REFERENCES org.schedules (id),
  enabled boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- A number belongs to one tenant on the whole platform.
CREATE UNIQUE INDEX numbers_number_key ON org.numbers (number);
CREATE INDEX numbers_tenant_idx ON org.numbers (tenant_id, number);
CREATE INDEX numbers_project_idx ON org.numbers (project_id);
