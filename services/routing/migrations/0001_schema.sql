-- The routing schema belongs to the routing service; no other service reads or writes it.
COMMENT ON SCHEMA routing IS 'Switchboard routing: call flows and IVR, queues and ACD, agent states, outbound authorisation';
