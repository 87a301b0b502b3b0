-- The identity schema belongs to the identity service; no other service reads or writes it.
COMMENT ON SCHEMA identity IS 'Switchboard identity: tenants, users, credentials, roles and permissions, sessions and tokens, TOTP 2FA, outbound-call PINs, API keys, the audit log';
