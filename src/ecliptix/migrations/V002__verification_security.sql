-- V002: verification side of the version 2 security contract
-- (ecliptix-security.md: Identity, codes checked once in the database, the
-- verification budgets). Functions change in the repeatable scripts; this
-- script adds what they need to the data, on a version 1 database that may
-- hold a lot of it. Its index comes in V002_1 (CREATE INDEX CONCURRENTLY
-- cannot run inside this script's transaction).
--
-- Why each statement that takes a lock is safe on a big live table is said
-- beside it. persistor runs every statement with lock_timeout, so none of
-- them queues behind a long transaction for long.

-- The new budgets, all in the one place the functions read them from.
-- ecliptix_limits is a dozen rows: its locks last microseconds.
INSERT INTO ecliptix_limits (name, value, description) VALUES
    ('failed_checks_per_otp',          3,     'Failed checks that retire an OTP'),
    ('failed_checks_per_flow',         5,     'Failed checks over all of a flow''s OTPs that fail the flow'),
    ('failed_checks_per_number',       10,    'Failed checks per number (all regions) within failed_check_window_seconds, shared by the devices that are not known devices of the number'),
    ('failed_checks_per_known_device', 10,    'Failed checks per (number, known device) within failed_check_window_seconds'),
    ('failed_check_window_seconds',    86400, 'Sliding window of failed_checks_per_number and failed_checks_per_known_device'),
    ('flows_per_device_per_window',    5,     'Most flows created for one (number, device) within flow_rate_window_seconds');

-- Version 1 counted flows per phone row; version 2 per number, over every
-- region, for the devices that are not known devices of the number.
UPDATE ecliptix_limits
SET description = 'Most flows created for one number (all regions) within flow_rate_window_seconds, for devices that are not known devices of the number'
WHERE name = 'flows_per_phone_per_window';

-- Every failed check records the number and the device it was made from, so
-- the per-number budgets are one indexed count, whatever the region.
-- known_device says which budget the failure counts against (the shared
-- one of the number, or that known device's own).
-- Lock: ACCESS EXCLUSIVE on failed_otp_attempts for a catalog change only.
-- Neither column has a default that needs computing per row (NULL, and the
-- constant false, which PostgreSQL 11+ stores in the catalog), so nothing is
-- rewritten or scanned: instant at any table size.
ALTER TABLE failed_otp_attempts
    ADD COLUMN phone_number  varchar(18),
    ADD COLUMN app_device_id uuid,
    ADD COLUMN known_device  boolean NOT NULL DEFAULT false;

COMMENT ON COLUMN failed_otp_attempts.phone_number IS
    'Number of the flow''s phone when the check failed (NULL only on rows older than version 2''s failed-check window at upgrade)';
COMMENT ON COLUMN failed_otp_attempts.app_device_id IS
    'Device of the flow the failed check was made for';
COMMENT ON COLUMN failed_otp_attempts.known_device IS
    'The device was a known device of the number: the failure counts against that device''s own budget';

-- Backfill the failures a budget can still see: those inside the window.
-- Older rows keep NULL (they fall outside every window, so they would never
-- count), which is why phone_number stays nullable. Lock: ROW EXCLUSIVE on
-- failed_otp_attempts (reads and inserts go on) and row locks on the
-- backfilled rows only - at most one window (a day) of version 1 failures,
-- which nothing else updates. The table is read once in full (no index on
-- attempt_time); the joined rows are found by primary and unique keys.
UPDATE failed_otp_attempts a
SET phone_number = p.phone_number,
    app_device_id = f.app_device_id,
    known_device = EXISTS (
        SELECT 1 FROM memberships m
        JOIN phone_numbers mp ON mp.unique_id = m.phone_number_id
        WHERE m.app_device_id = f.app_device_id AND NOT m.is_deleted
          AND mp.phone_number = p.phone_number)
FROM verification_flows f
JOIN phone_numbers p ON p.id = f.phone_number_id
WHERE f.unique_id = a.flow_unique_id
  AND a.phone_number IS NULL
  AND a.attempt_time > now() - make_interval(secs => (
        SELECT l.value FROM ecliptix_limits l WHERE l.name = 'failed_check_window_seconds'));
