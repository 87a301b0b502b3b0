-- The reporting schema belongs to the reporting service; no other service reads or writes it.
COMMENT ON SCHEMA reporting IS 'Switchboard reporting: CDRs from the call event stream, call lists, statistics, dashboards, reports, CSV export, cost rating';
