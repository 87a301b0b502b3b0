-- Contacts (the CRM side): customer records with their phone numbers in E.164, found by number
-- for the caller's name on calls (LookupContacts) and searched by text (ListContacts).
-- owner_user_id is identity's user (no foreign key): OWN/TEAM/ORG_UNIT-scoped contacts.access
-- follows the owner's placement.

CREATE TABLE org.contacts (
  tenant_id uuid NOT NULL,
  id uuid PRIMARY KEY,
  first_name text NOT NULL DEFAULT '',
  last_name text NOT NULL DEFAULT '',
  company text NOT NULL DEFAULT '',
  email text NOT NULL DEFAULT '',
  street text NOT NULL DEFAULT '',
  house_number text NOT NULL DEFAULT '',
  city text NOT NULL DEFAULT '',
  zip_code text NOT NULL DEFAULT '',
  country text NOT NULL DEFAULT '',               -- ISO 3166-1 alpha-2
  description text NOT NULL DEFAULT '',
  -- With a project the contact is the project's; a deleted project leaves plain contacts.
  project_id uuid REFERENCES org.projects (id) ON DELETE SET NULL,
  owner_user_id uuid NOT NULL,
  custom_fields jsonb NOT NULL DEFAULT '{}',      -- {"name": "value", ...}
  crm_record_id text NOT NULL DEFAULT '',
  crm_url text NOT NULL DEFAULT '',
  -- The call whose contact form saved the contact last; reporting links its CDR to the contact.
  last_call_id text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  -- ListContacts' free text: word prefixes of the names, company and email (pg_trgm would find
  -- inner substrings too, but extensions need rights a service's role may lack).
  search tsvector GENERATED ALWAYS AS (
    to_tsvector('simple', first_name || ' ' || last_name || ' ' || company || ' ' ||
                          replace(email, '@', ' '))) STORED
);
CREATE INDEX contacts_search_idx ON org.contacts USING gin (search);
-- ListContacts' orders and keyset pages (tenant first: every query filters by it); the time
-- orders ("created_at desc", ties by id desc) read these backwards.
CREATE INDEX contacts_name_idx ON org.contacts (tenant_id, lower(last_name), lower(first_name), id);
CREATE INDEX contacts_updated_idx ON org.contacts (tenant_id, updated_at, id);
CREATE INDEX contacts_created_idx ON org.contacts (tenant_id, created_at, id);
CREATE INDEX contacts_owner_idx ON org.contacts (tenant_id, owner_user_id);
CREATE INDEX contacts_project_idx ON org.contacts (project_id) WHERE project_id IS NOT NULL;

-- A contact's numbers in their order. `number` is E.164 ("+3612345678") in the C collation, so
-- that the index answers both LookupContacts' equality and ListContacts' prefix search.
CREATE TABLE org.contact_phones (
  tenant_id uuid NOT NULL,
  contact_id uuid NOT NULL REFERENCES org.contacts (id) ON DELETE CASCADE,
  position smallint NOT NULL,
  number text COLLATE "C" NOT NULL,
  raw text NOT NULL DEFAULT '',                   -- as entered
  label text NOT NULL DEFAULT '',
  PRIMARY KEY (contact_id, position)
);
CREATE INDEX contact_phones_number_idx ON org.contact_phones (tenant_id, number);

-- Deleted contacts whose person asked to be erased from call history (DeleteContact with
-- erase_history). Anonymising CDRs is reporting's job: it takes the numbers from here (an event
-- will carry them once reporting exists) and the row goes once that is done. Nothing else about
-- the person is kept.
CREATE TABLE org.contact_erasures (
  tenant_id uuid NOT NULL,
  contact_id uuid PRIMARY KEY,
  numbers text[] NOT NULL,
  requested_by uuid,
  requested_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contact_erasures_tenant_idx ON org.contact_erasures (tenant_id, requested_at);
