-- Call recordings: one row per recording (its WAV under the node's recording root), kept after
-- the file is deleted (state DELETED) so that CDRs can say a recording existed.

CREATE TABLE media.recordings (
  tenant_id uuid NOT NULL,
  id uuid NOT NULL,
  call_id text NOT NULL,
  -- RecordingState: 1 recording, 2 paused, 3 completed, 4 failed, 5 deleted.
  state smallint NOT NULL,
  -- Relative to the recording root.
  path text NOT NULL,
  node_id text NOT NULL,
  agent_user_id text NOT NULL DEFAULT '',
  on_demand boolean NOT NULL DEFAULT false,
  started_by_user_id text NOT NULL DEFAULT '',
  started_at timestamptz NOT NULL,
  ended_at timestamptz,
  duration_ms bigint NOT NULL DEFAULT 0,
  paused_ms bigint NOT NULL DEFAULT 0,
  size_bytes bigint NOT NULL DEFAULT 0,
  sha256 text NOT NULL DEFAULT '',
  expires_at timestamptz,
  deleted_at timestamptz,
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX recordings_call_idx ON media.recordings (tenant_id, call_id);
CREATE INDEX recordings_started_idx ON media.recordings (tenant_id, started_at DESC, id);
-- Recovery after a crash: this node's recordings still open.
CREATE INDEX recordings_open_idx ON media.recordings (node_id) WHERE state IN (1, 2);
-- Retention.
CREATE INDEX recordings_expiry_idx ON media.recordings (expires_at) WHERE state IN (3, 4);
