-- Invariants of the Ecliptix contract, checked in the database after a stress
-- run. Each query gives one figure per key; `limit` is a number, or the name of
-- an ecliptix_limits row with the contract's default after `|` (used when the
-- row does not exist, e.g. on a version 1 database).

-- name: one_device_per_device_id
-- description: app_devices rows per device_id
-- limit: 1
SELECT count(*) FROM app_devices GROUP BY device_id;

-- name: one_live_phone_per_number_region
-- description: non-deleted phone_numbers rows per (phone_number, region)
-- limit: 1
SELECT count(*) FROM phone_numbers WHERE NOT is_deleted GROUP BY phone_number, region;

-- name: one_pending_flow_per_device_phone_purpose
-- description: pending, non-deleted verification_flows per (device, phone, purpose)
-- limit: 1
SELECT count(*) FROM verification_flows WHERE status = 'pending' AND NOT is_deleted
GROUP BY app_device_id, phone_number_id, purpose;

-- name: flows_per_number_per_hour
-- description: verification_flows of devices not known to the number, per number (all regions), within any hour
-- limit: flows_per_phone_per_window | 30
WITH f AS (
    SELECT v.created_at, p.phone_number
    FROM verification_flows v JOIN phone_numbers p ON p.id = v.phone_number_id
    WHERE NOT EXISTS (
        SELECT 1 FROM memberships m JOIN phone_numbers mp ON mp.unique_id = m.phone_number_id
        WHERE m.app_device_id = v.app_device_id AND mp.phone_number = p.phone_number
          AND NOT m.is_deleted)
)
SELECT (SELECT count(*) FROM f g
        WHERE g.phone_number = f.phone_number AND g.created_at <= f.created_at
          AND g.created_at > f.created_at - interval '1 hour')
FROM f;

-- name: flows_per_number_device_per_hour
-- description: verification_flows per (number, device) within any hour
-- limit: flows_per_number_device_per_window | 5
WITH f AS (
    SELECT v.created_at, v.app_device_id, p.phone_number
    FROM verification_flows v JOIN phone_numbers p ON p.id = v.phone_number_id
)
SELECT (SELECT count(*) FROM f g
        WHERE g.phone_number = f.phone_number AND g.app_device_id = f.app_device_id
          AND g.created_at <= f.created_at AND g.created_at > f.created_at - interval '1 hour')
FROM f;

-- name: otp_count_per_flow
-- description: verification_flows.otp_count
-- limit: otps_per_flow | 5
SELECT otp_count FROM verification_flows;

-- name: otp_records_per_flow
-- description: otp_records stored per flow (matches otp_count's limit)
-- limit: otps_per_flow | 5
SELECT count(*) FROM otp_records GROUP BY flow_unique_id;

-- name: one_active_otp_per_flow
-- description: active, non-deleted otp_records per flow
-- limit: 1
SELECT count(*) FROM otp_records WHERE is_active AND NOT is_deleted GROUP BY flow_unique_id;

-- name: failed_checks_per_otp
-- description: failed_otp_attempts per OTP
-- limit: failed_checks_per_otp | 3
SELECT count(*) FROM failed_otp_attempts GROUP BY otp_unique_id;

-- name: failed_checks_per_flow
-- description: failed_otp_attempts per flow, over all its OTPs
-- limit: failed_checks_per_flow | 5
SELECT count(*) FROM failed_otp_attempts GROUP BY flow_unique_id;

-- name: failed_checks_per_number_per_day
-- description: failed_otp_attempts from devices not known to the number, per number (all regions), within any 24 h
-- limit: failed_checks_per_number_per_window | 10
WITH a AS (
    SELECT fa.attempt_time, p.phone_number
    FROM failed_otp_attempts fa
    JOIN verification_flows v ON v.unique_id = fa.flow_unique_id
    JOIN phone_numbers p ON p.id = v.phone_number_id
    WHERE NOT EXISTS (
        SELECT 1 FROM memberships m JOIN phone_numbers mp ON mp.unique_id = m.phone_number_id
        WHERE m.app_device_id = v.app_device_id AND mp.phone_number = p.phone_number
          AND NOT m.is_deleted)
)
SELECT (SELECT count(*) FROM a g
        WHERE g.phone_number = a.phone_number AND g.attempt_time <= a.attempt_time
          AND g.attempt_time > a.attempt_time - interval '24 hours')
FROM a;

-- name: one_live_membership_per_phone_device
-- description: non-deleted memberships per (phone, device)
-- limit: 1
SELECT count(*) FROM memberships WHERE NOT is_deleted GROUP BY phone_number_id, app_device_id;

-- name: failed_logins_per_number_device_per_window
-- description: failed login_attempts evaluated for one (number, device) within any login_failure_window_seconds
-- limit: login_failures_per_window | 5
SELECT (SELECT count(*) FROM login_attempts g
        WHERE g.phone_number = a.phone_number AND NOT g.is_success
          AND g.app_device_id IS NOT DISTINCT FROM a.app_device_id
          AND g.attempted_at <= a.attempted_at
          AND g.attempted_at > a.attempted_at - make_interval(secs => (SELECT value
              FROM ecliptix_limits WHERE name = 'login_failure_window_seconds')))
FROM login_attempts a WHERE NOT a.is_success;

-- name: counted_membership_failures_per_number_device_per_window
-- description: create_membership failures (rate-limit refusals excluded) for one (phone, device of the flow) within any membership_failure_window_seconds
-- limit: membership_failures_per_window | 5
SELECT (SELECT count(*) FROM membership_attempts g
        WHERE g.phone_number_id = a.phone_number_id
          AND g.app_device_id IS NOT DISTINCT FROM a.app_device_id
          AND NOT g.is_success AND NOT g.is_deleted AND g.outcome <> 'rate_limited'
          AND g.attempted_at <= a.attempted_at
          AND g.attempted_at > a.attempted_at - make_interval(secs => (SELECT value
              FROM ecliptix_limits WHERE name = 'membership_failure_window_seconds')))
FROM membership_attempts a
WHERE NOT a.is_success AND NOT a.is_deleted AND a.outcome <> 'rate_limited';

-- name: limit_value
SELECT value FROM ecliptix_limits WHERE name = %(name)s;

-- name: tables
SELECT table_name FROM information_schema.tables
WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
ORDER BY table_name;
