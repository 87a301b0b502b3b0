-- Schedules: what refers to one. DeleteSchedule asks these tables whether a schedule is still
-- attached (and their foreign keys check it again on DELETE), so each gets an index on its
-- schedule_id, partial because most rows have none.

CREATE INDEX teams_schedule_idx ON org.teams (schedule_id) WHERE schedule_id IS NOT NULL;
CREATE INDEX projects_schedule_idx ON org.projects (schedule_id) WHERE schedule_id IS NOT NULL;
CREATE INDEX agent_profiles_schedule_idx ON org.agent_profiles (schedule_id)
  WHERE schedule_id IS NOT NULL;
CREATE INDEX numbers_schedule_idx ON org.numbers (schedule_id) WHERE schedule_id IS NOT NULL;
