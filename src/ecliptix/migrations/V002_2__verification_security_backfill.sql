-- V002_2: backfill the version 1 failed checks that a version 2 budget can
-- still see (V002 added the columns, V002_1 the index).
--
-- Only failures inside the failed-check window are backfilled. Older rows
-- keep NULL: they fall outside every window and would never count, which is
-- why failed_otp_attempts.phone_number stays nullable. Version 1 functions
-- keep serving until the repeatable scripts replace them right after this
-- script, in the same migrate run; a failure they record in those seconds
-- is not backfilled and so never counts against a budget.
--
-- Lock: ROW EXCLUSIVE on failed_otp_attempts (reads and inserts go on) and
-- row locks on the backfilled rows only - at most one window (a day) of
-- version 1 failures, which nothing else updates. The table is read once in
-- full (no index on attempt_time); the joined rows are found by primary and
-- unique keys. The other tables are only read.
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
