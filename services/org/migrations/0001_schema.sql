-- The org schema belongs to the org service; no other service reads or writes it.
COMMENT ON SCHEMA org IS 'Switchboard org: the org-unit tree, teams, reporting managers, projects, agent profiles, working-hour schedules, numbers (DIDs) and trunks, contacts, the tenant wallet';
