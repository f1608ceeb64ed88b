-- V003: membership security and retention (version 2 of the Ecliptix database).
--
-- What changes, and why:
-- * Login failures and lock-outs can be kept per (number, device): an
--   attacker's failures from its own devices no longer lock the owner out on
--   the owner's device. login_attempts records the device (nullable: version
--   1 callers and rows written before this migration have none), and the
--   per-(number, device) locks live in a table of their own; login_lockouts
--   keeps the per-number locks of callers that give no device.
-- * create_membership counts failures per (number, device of the flow):
--   membership_attempts records the device (nullable for the same reason).
-- * A secure key that is set is replaced only after a verified
--   password_recovery flow of the membership's device, used up by the change:
--   verification_flows.recovery_used_at marks it used.
-- * Recovery-eligibility checks are budgeted per number: one row per counted
--   check in recovery_eligibility_checks.
-- * Retention: ecliptix_purge() deletes what has ended; its periods live in
--   ecliptix_limits, and ecliptix_purge_cursors remembers where its scans of
--   the large tables stopped.
--
-- Nothing is backfilled: no stored row says which device a version 1 attempt
-- came from, so those rows keep NULL (read as "no device", the version 1
-- per-number bucket). The indexes these changes need on existing tables are
-- built without blocking writes by V004 (CREATE INDEX CONCURRENTLY cannot run
-- inside this transaction).
--
-- Locks taken on existing tables: each ALTER TABLE ... ADD COLUMN below adds a
-- nullable column without a default, which PostgreSQL records in the catalog
-- only (no table rewrite, no scan), so its ACCESS EXCLUSIVE lock is held for
-- milliseconds whatever the table's size; persistor's lock_timeout makes it
-- give way (and retry) rather than queue behind a long transaction. Each
-- COMMENT ON COLUMN changes the catalog only, under the same brief lock. The
-- UPDATE and INSERT on ecliptix_limits touch a table of a few dozen rows.

-- Safe at any size: catalog-only change (nullable, no default), see above.
ALTER TABLE login_attempts ADD COLUMN app_device_id uuid;
COMMENT ON COLUMN login_attempts.app_device_id IS
    'Device the attempt came from (app_devices.unique_id, not a foreign key: an unknown device '
    'is recorded as given); NULL when the caller gave none';

-- Safe at any size: catalog-only change (nullable, no default), see above.
ALTER TABLE membership_attempts ADD COLUMN app_device_id uuid;
COMMENT ON COLUMN membership_attempts.app_device_id IS
    'Device whose failure budget the attempt counts against (the flow''s device); NULL when '
    'unknown (version 1 rows, log_membership_attempt)';

-- Safe at any size: catalog-only change (nullable, no default), see above.
ALTER TABLE verification_flows ADD COLUMN recovery_used_at timestamptz;
COMMENT ON COLUMN verification_flows.recovery_used_at IS
    'When this verified password_recovery flow was used up by a secure key change';

-- Per-(number, device) login locks; login_lockouts keeps the per-number ones.
CREATE TABLE login_device_lockouts (
    phone_number  varchar(18) NOT NULL,
    app_device_id uuid        NOT NULL,
    locked_at     timestamptz NOT NULL DEFAULT now(),
    locked_until  timestamptz NOT NULL,
    CONSTRAINT pk_login_device_lockouts PRIMARY KEY (phone_number, app_device_id)
);
-- Serves the purge of ended locks.
CREATE INDEX ix_login_device_lockouts_locked_until ON login_device_lockouts (locked_until);

-- One row per counted recovery-eligibility check (refusals are not counted:
-- they are in event_log only).
CREATE TABLE recovery_eligibility_checks (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    phone_number varchar(18) NOT NULL,
    checked_at   timestamptz NOT NULL DEFAULT now(),
    outcome      varchar(30) NOT NULL
);
CREATE INDEX ix_recovery_eligibility_checks_phone_number_checked_at
    ON recovery_eligibility_checks (phone_number, checked_at);
CREATE INDEX ix_recovery_eligibility_checks_checked_at
    ON recovery_eligibility_checks (checked_at);

-- Where each block-range scan of ecliptix_purge stopped (the next block to
-- look at), so one call looks at a bounded part of a large table and a cycle
-- visits all of it.
CREATE TABLE ecliptix_purge_cursors (
    rule       text   PRIMARY KEY,
    next_block bigint NOT NULL DEFAULT 0,
    CONSTRAINT ck_ecliptix_purge_cursors_next_block CHECK (next_block >= 0)
);
INSERT INTO ecliptix_purge_cursors (rule) VALUES
    ('ended_flows'), ('unreferenced_devices'), ('unreferenced_phones'), ('abandoned_links');

-- Version 2 meaning of the version 1 budgets (values left as tuned).
UPDATE ecliptix_limits SET description = CASE name
    WHEN 'membership_failures_per_window'
        THEN 'Counted create_membership failures per (number, device of the flow) that refuse '
             'further attempts'
    WHEN 'login_failures_per_window'
        THEN 'Failed logins per (number, device) - per number when no device is given - within '
             'login_failure_window_seconds that lock it'
    WHEN 'login_lockout_seconds'
        THEN 'How long a locked-out (number, device) or number stays locked'
    ELSE description END
WHERE name IN ('membership_failures_per_window', 'login_failures_per_window',
               'login_lockout_seconds');

INSERT INTO ecliptix_limits (name, value, description) VALUES
    ('recovery_checks_per_window',         10,       'Recovery-eligibility checks per number within recovery_check_window_seconds'),
    ('recovery_check_window_seconds',      3600,     'Window of recovery_checks_per_window'),
    ('ended_flow_retention_seconds',       2592000,  'Purge flows (with OTPs and failed attempts) this long after they ended'),
    ('attempt_retention_seconds',          7776000,  'Purge login and membership attempts and recovery checks older than this'),
    ('event_log_retention_seconds',        15552000, 'Purge event_log rows older than this'),
    ('ended_lock_retention_seconds',       86400,    'Purge lock rows this long after the lock ended'),
    ('soft_deleted_retention_seconds',     2592000,  'Purge soft-deleted rows nothing references this long after their deletion'),
    ('unreferenced_retention_seconds',     2592000,  'Purge devices, phones and links nothing uses once they are older than this')
ON CONFLICT (name) DO NOTHING;
