-- V002: verification side of the version 2 security contract
-- (ecliptix-security.md: Identity, codes checked once in the database, the
-- verification budgets). Functions change in the repeatable scripts; this
-- script and the two after it add what they need to the data, on a version
-- 1 database that may hold a lot of it:
--   V002   limits and columns: catalog changes only, one short transaction;
--   V002_1 the index, built CONCURRENTLY (outside a transaction);
--   V002_2 the backfill, in a transaction of its own, so that it never runs
--          while this script's ACCESS EXCLUSIVE lock is held (locks last
--          until commit).
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
-- rewritten or scanned: instant at any table size, and nothing slow follows
-- it in this transaction.
ALTER TABLE failed_otp_attempts
    ADD COLUMN phone_number  varchar(18),
    ADD COLUMN app_device_id uuid,
    ADD COLUMN known_device  boolean NOT NULL DEFAULT false;

-- Lock: SHARE UPDATE EXCLUSIVE, already covered by the ALTER's lock above;
-- catalog only.
COMMENT ON COLUMN failed_otp_attempts.phone_number IS
    'Number of the flow''s phone when the check failed (NULL only on rows made by version 1 and left out of V002_2''s backfill)';
COMMENT ON COLUMN failed_otp_attempts.app_device_id IS
    'Device of the flow the failed check was made for';
COMMENT ON COLUMN failed_otp_attempts.known_device IS
    'The device was a known device of the number: the failure counts against that device''s own budget';
