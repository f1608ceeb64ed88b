-- R__03: verification-flow functions (flows, OTP issue/resend/status, and
-- version 2's verify_otp, which checks a code in the database, once).
-- Invariants are kept under concurrency by locks, always taken in this
-- order: the phone row, then the per-number advisory lock (kind 11) for flow
-- creation; the flow row, then the per-number advisory lock (kind 12) for
-- failed checks, then the OTP row. Budgets are kept per number, whatever the
-- region, and known devices of a number (ecliptix_is_known_device) keep
-- their own. Limits come from ecliptix_limits. Re-runnable: CREATE OR
-- REPLACE only.

-- Pin the deployment schema (see lib/pin_search_path.sql).
\ir lib/pin_search_path.sql

-- ---------------------------------------------------------------------------
-- Internal helpers: the failed-check budgets
-- ---------------------------------------------------------------------------

-- The failed checks in the window that count against the budget this
-- device draws on for this number: its own when it is a known device of the
-- number, otherwise the one all other devices share.
CREATE OR REPLACE FUNCTION ecliptix_failed_checks(
    p_phone_number text, p_app_device_id uuid, p_known boolean)
    RETURNS bigint
    LANGUAGE plpgsql STABLE
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_count bigint;
BEGIN
    SELECT count(*) INTO v_count
    FROM failed_otp_attempts a
    WHERE a.phone_number = p_phone_number
      AND a.attempt_time > now() - ecliptix_limit_interval('failed_check_window_seconds')
      AND a.known_device = p_known
      AND (NOT p_known OR a.app_device_id = p_app_device_id);
    RETURN v_count;
END;
$$;

-- The limit of the budget a device draws on (see ecliptix_failed_checks).
CREATE OR REPLACE FUNCTION ecliptix_failed_check_limit(p_known boolean) RETURNS integer
    LANGUAGE plpgsql STABLE
    SET search_path FROM CURRENT
AS $$
BEGIN
    RETURN ecliptix_limit(CASE WHEN p_known THEN 'failed_checks_per_known_device'
                               ELSE 'failed_checks_per_number' END);
END;
$$;

-- Whether the number's failed-check budget for this device is used up.
-- Callers hold the per-number lock (kind 12), so the answer stands until
-- they commit. Both budgets are counted in one index scan; whether the
-- device is a known device is asked only when one of them is used up (the
-- common case, a number without failures, needs one query).
CREATE OR REPLACE FUNCTION ecliptix_number_locked(p_phone_number text, p_app_device_id uuid)
    RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_shared_limit integer;
    v_own_limit    integer;
    v_window       integer;
    v_shared       bigint;
    v_own          bigint;
BEGIN
    -- The three limits and both counts in one statement (this runs on
    -- every check).
    SELECT l.shared_limit, l.own_limit, l.window_seconds, c.shared, c.own
    INTO v_shared_limit, v_own_limit, v_window, v_shared, v_own
    FROM (SELECT max(x.value) FILTER (WHERE x.name = 'failed_checks_per_number') AS shared_limit,
                 max(x.value) FILTER (WHERE x.name = 'failed_checks_per_known_device')
                     AS own_limit,
                 max(x.value) FILTER (WHERE x.name = 'failed_check_window_seconds')
                     AS window_seconds
          FROM ecliptix_limits x
          WHERE x.name IN ('failed_checks_per_number', 'failed_checks_per_known_device',
                           'failed_check_window_seconds')) l
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE NOT a.known_device) AS shared,
               count(*) FILTER (WHERE a.known_device AND a.app_device_id = p_app_device_id)
                   AS own
        FROM failed_otp_attempts a
        WHERE a.phone_number = p_phone_number
          AND a.attempt_time > now() - make_interval(secs => l.window_seconds)) c;
    IF v_shared_limit IS NULL OR v_own_limit IS NULL OR v_window IS NULL THEN
        -- A missing row is a deployment bug: let ecliptix_limit name it.
        PERFORM ecliptix_limit('failed_checks_per_number'),
                ecliptix_limit('failed_checks_per_known_device'),
                ecliptix_limit('failed_check_window_seconds');
    END IF;
    IF v_shared < v_shared_limit AND v_own < v_own_limit THEN
        RETURN false;
    END IF;
    IF ecliptix_is_known_device(p_phone_number, p_app_device_id) THEN
        RETURN v_own >= v_own_limit;
    END IF;
    RETURN v_shared >= v_shared_limit;
END;
$$;

-- Count one failed check of an OTP: on the OTP, on its flow and on the
-- number (a failed_otp_attempts row carrying the number and device). The
-- OTP is retired (failed, inactive) once its budget is used up and the flow
-- fails once its own is; each budget that runs out writes one event_log
-- row. Callers hold the flow row and the per-number lock (kind 12).
-- Returns the failed checks of the OTP and of the flow, this one included.
CREATE OR REPLACE FUNCTION ecliptix_count_failed_check(
    p_otp_unique_id uuid, p_flow_unique_id uuid, p_phone_unique_id uuid,
    p_phone_number text, p_app_device_id uuid)
    RETURNS TABLE (otp_failures bigint, flow_failures bigint)
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_known           boolean := ecliptix_is_known_device(p_phone_number, p_app_device_id);
    v_otp_failures    bigint;
    v_flow_failures   bigint;
    v_number_failures bigint;
    v_number_limit    integer := ecliptix_failed_check_limit(v_known);
BEGIN
    INSERT INTO failed_otp_attempts
        (otp_unique_id, flow_unique_id, phone_number, app_device_id, known_device)
    VALUES (p_otp_unique_id, p_flow_unique_id, p_phone_number, p_app_device_id, v_known);

    SELECT count(*) INTO v_otp_failures
    FROM failed_otp_attempts a WHERE a.otp_unique_id = p_otp_unique_id;
    SELECT count(*) INTO v_flow_failures
    FROM failed_otp_attempts a WHERE a.flow_unique_id = p_flow_unique_id;
    v_number_failures := ecliptix_failed_checks(p_phone_number, p_app_device_id, v_known);

    IF v_number_failures = v_number_limit THEN
        INSERT INTO event_log (event_type, message)
        VALUES (CASE WHEN v_known THEN 'device_check_budget_exhausted'
                     ELSE 'number_check_budget_exhausted' END,
                format('phone %s, device %s (%s): %s failed checks within %s s; further '
                       'checks refused until the oldest leaves the window',
                       p_phone_unique_id, p_app_device_id,
                       CASE WHEN v_known THEN 'known device' ELSE 'not a known device' END,
                       v_number_failures, ecliptix_limit('failed_check_window_seconds')));
    END IF;

    IF v_flow_failures >= ecliptix_limit('failed_checks_per_flow') THEN
        UPDATE verification_flows f SET status = 'failed'
        WHERE f.unique_id = p_flow_unique_id AND f.status = 'pending';
        IF FOUND THEN
            INSERT INTO event_log (event_type, message)
            VALUES ('flow_check_budget_exhausted',
                    format('flow %s, phone %s, device %s: %s failed checks; the flow failed',
                           p_flow_unique_id, p_phone_unique_id, p_app_device_id,
                           v_flow_failures));
        END IF;
    END IF;
    IF v_otp_failures >= ecliptix_limit('failed_checks_per_otp')
       OR v_flow_failures >= ecliptix_limit('failed_checks_per_flow') THEN
        UPDATE otp_records r SET status = 'failed', is_active = false
        WHERE r.unique_id = p_otp_unique_id AND r.status = 'pending';
        IF FOUND AND v_otp_failures >= ecliptix_limit('failed_checks_per_otp') THEN
            INSERT INTO event_log (event_type, message)
            VALUES ('otp_check_budget_exhausted',
                    format('otp %s, flow %s: %s failed checks; the OTP is retired',
                           p_otp_unique_id, p_flow_unique_id, v_otp_failures));
        END IF;
    END IF;

    RETURN QUERY SELECT v_otp_failures, v_flow_failures;
END;
$$;

-- A flow that has had its most OTPs fails (request_resend_otp and
-- insert_otp_record), and the exhausted budget is logged once. Callers hold
-- the flow row.
CREATE OR REPLACE FUNCTION ecliptix_fail_flow_for_otp_count(p_flow_unique_id uuid,
                                                            p_otp_count integer)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
BEGIN
    UPDATE verification_flows f SET status = 'failed'
    WHERE f.unique_id = p_flow_unique_id AND f.status = 'pending';
    IF FOUND THEN
        INSERT INTO event_log (event_type, message)
        VALUES ('flow_otp_budget_exhausted',
                format('flow %s: %s OTPs issued; the flow failed', p_flow_unique_id,
                       p_otp_count));
    END IF;
END;
$$;

-- ---------------------------------------------------------------------------
-- Contract functions
-- ---------------------------------------------------------------------------

-- otp_hash is always NULL: the application never reads a code's hash back
-- (verify_otp compares in the database). The column stays for version 1
-- callers; otp_salt still names the key the hash was made with.
CREATE OR REPLACE FUNCTION get_full_flow_state(p_flow_unique_id uuid)
    RETURNS TABLE (
        unique_identifier       uuid,
        phone_number_identifier uuid,
        app_device_identifier   uuid,
        connect_id              bigint,
        expires_at              timestamptz,
        status                  text,
        purpose                 text,
        otp_count               smallint,
        otp_unique_identifier   uuid,
        otp_flow_unique_id      uuid,
        otp_hash                text,
        otp_salt                text,
        otp_expires_at          timestamptz,
        otp_status              text,
        otp_is_active           boolean)
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM ecliptix_require(p_flow_unique_id, 'p_flow_unique_id');
    RETURN QUERY
        SELECT f.unique_id, p.unique_id, f.app_device_id, f.connection_id, f.expires_at,
               f.status::text, f.purpose::text, f.otp_count,
               o.unique_id, o.flow_unique_id, NULL::text, o.otp_salt::text,
               o.expires_at, o.status::text, o.is_active
        FROM verification_flows f
        JOIN phone_numbers p ON p.id = f.phone_number_id
        LEFT JOIN LATERAL (
            SELECT r.unique_id, r.flow_unique_id, r.otp_salt, r.expires_at, r.status,
                   r.is_active
            FROM otp_records r
            WHERE r.flow_unique_id = f.unique_id
              AND r.is_active AND NOT r.is_deleted
              AND r.expires_at > now()
            ORDER BY r.created_at DESC, r.id DESC
            LIMIT 1
        ) o ON true
        WHERE f.unique_id = p_flow_unique_id AND NOT f.is_deleted;
END;
$$;

CREATE OR REPLACE FUNCTION initiate_verification_flow(
    p_app_device_id uuid, p_phone_unique_id uuid, p_purpose varchar,
    p_connection_id bigint DEFAULT NULL)
    RETURNS TABLE (
        unique_identifier       uuid,
        phone_number_identifier uuid,
        app_device_identifier   uuid,
        connect_id              bigint,
        expires_at              timestamptz,
        status                  text,
        purpose                 text,
        otp_count               smallint,
        otp_unique_identifier   uuid,
        otp_flow_unique_id      uuid,
        otp_hash                text,
        otp_salt                text,
        otp_expires_at          timestamptz,
        otp_status              text,
        otp_is_active           boolean,
        outcome                 text)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_phone_id     bigint;
    v_number       text;
    v_flow         uuid;
    v_count        bigint;
    v_device_count bigint;
    v_limit        integer := ecliptix_limit('flows_per_phone_per_window');
    v_device_limit integer := ecliptix_limit('flows_per_device_per_window');
    v_new_expires  timestamptz;
BEGIN
    PERFORM ecliptix_require(p_app_device_id, 'p_app_device_id');
    PERFORM ecliptix_require(p_phone_unique_id, 'p_phone_unique_id');
    PERFORM ecliptix_check_one_of(p_purpose, 'p_purpose',
        ARRAY['unspecified', 'registration', 'login', 'password_recovery', 'update_phone']);
    PERFORM ecliptix_require_read_committed('initiate_verification_flow');

    -- Lock the phone row (it cannot go away meanwhile), then the number:
    -- every flow decision for this number, in any region, is serialized, so
    -- the hourly counts and the one-pending-flow rule cannot be raced.
    SELECT p.id, p.phone_number INTO v_phone_id, v_number
    FROM phone_numbers p
    WHERE p.unique_id = p_phone_unique_id AND NOT p.is_deleted
    FOR NO KEY UPDATE;
    IF v_phone_id IS NULL THEN
        RETURN QUERY SELECT NULL::uuid, NULL::uuid, NULL::uuid, NULL::bigint,
            NULL::timestamptz, NULL::text, NULL::text, NULL::smallint, NULL::uuid, NULL::uuid,
            NULL::text, NULL::text, NULL::timestamptz, NULL::text, NULL::boolean,
            'phone_not_found'::text;
        RETURN;
    END IF;

    IF NOT EXISTS (SELECT 1 FROM app_devices d
                   WHERE d.unique_id = p_app_device_id AND NOT d.is_deleted) THEN
        RETURN QUERY SELECT NULL::uuid, NULL::uuid, NULL::uuid, NULL::bigint,
            NULL::timestamptz, NULL::text, NULL::text, NULL::smallint, NULL::uuid, NULL::uuid,
            NULL::text, NULL::text, NULL::timestamptz, NULL::text, NULL::boolean,
            'app_device_not_found'::text;
        RETURN;
    END IF;
    PERFORM ecliptix_lock(11, v_number);

    -- A still-valid verified flow of this phone goes only to the device that
    -- verified it, and only for the same purpose (a device that just
    -- registered must still be able to start a password recovery); a
    -- recovery flow already used for a key change is not handed out again.
    -- Every other device gets a flow of its own.
    SELECT f.unique_id INTO v_flow
    FROM verification_flows f
    WHERE f.phone_number_id = v_phone_id AND f.status = 'verified'
      AND f.app_device_id = p_app_device_id AND f.purpose = p_purpose
      AND f.recovery_used_at IS NULL
      AND NOT f.is_deleted AND f.expires_at > now()
    ORDER BY f.created_at DESC, f.id DESC
    LIMIT 1;
    IF v_flow IS NOT NULL THEN
        RETURN QUERY SELECT s.*, 'verified'::text FROM get_full_flow_state(v_flow) s;
        RETURN;
    END IF;

    -- Flows created in the window for this number (every region, deleted or
    -- not), and among them this device's. A known device of the number is
    -- held only to its own limit.
    SELECT count(*), count(*) FILTER (WHERE f.app_device_id = p_app_device_id)
    INTO v_count, v_device_count
    FROM phone_numbers p
    JOIN verification_flows f ON f.phone_number_id = p.id
    WHERE p.phone_number = v_number
      AND f.created_at > now() - ecliptix_limit_interval('flow_rate_window_seconds');
    IF v_device_count >= v_device_limit
       OR (v_count >= v_limit AND NOT ecliptix_is_known_device(v_number, p_app_device_id)) THEN
        RETURN QUERY SELECT NULL::uuid, NULL::uuid, NULL::uuid, NULL::bigint,
            NULL::timestamptz, NULL::text, NULL::text, NULL::smallint, NULL::uuid, NULL::uuid,
            NULL::text, NULL::text, NULL::timestamptz, NULL::text, NULL::boolean,
            'global_rate_limit_exceeded'::text;
        RETURN;
    END IF;

    UPDATE verification_flows f
    SET status = 'expired'
    WHERE f.app_device_id = p_app_device_id AND f.phone_number_id = v_phone_id
      AND f.purpose = p_purpose AND f.status = 'pending' AND NOT f.is_deleted
      AND f.expires_at <= now();

    SELECT f.unique_id INTO v_flow
    FROM verification_flows f
    WHERE f.app_device_id = p_app_device_id AND f.phone_number_id = v_phone_id
      AND f.purpose = p_purpose AND f.status = 'pending' AND NOT f.is_deleted
    FOR UPDATE;
    IF v_flow IS NOT NULL THEN
        IF p_connection_id IS NOT NULL THEN
            UPDATE verification_flows f SET connection_id = p_connection_id
            WHERE f.unique_id = v_flow AND f.connection_id IS DISTINCT FROM p_connection_id;
        END IF;
        RETURN QUERY SELECT s.*, 'retrieved'::text FROM get_full_flow_state(v_flow) s;
        RETURN;
    END IF;

    INSERT INTO verification_flows AS f
        (phone_number_id, app_device_id, status, purpose, expires_at, otp_count, connection_id)
    VALUES (v_phone_id, p_app_device_id, 'pending', p_purpose,
            now() + ecliptix_limit_interval('flow_lifetime_seconds'), 0, p_connection_id)
    RETURNING f.unique_id, f.expires_at INTO v_flow, v_new_expires;

    -- The flow that uses up a budget is the one that logs it, once.
    IF v_count + 1 = v_limit THEN
        INSERT INTO event_log (event_type, message)
        VALUES ('number_flow_budget_exhausted',
                format('phone %s: %s flows within %s s; devices that are not known devices '
                       'of the number are refused until the oldest leaves the window',
                       p_phone_unique_id, v_count + 1,
                       ecliptix_limit('flow_rate_window_seconds')));
    END IF;
    IF v_device_count + 1 = v_device_limit THEN
        INSERT INTO event_log (event_type, message)
        VALUES ('device_flow_budget_exhausted',
                format('phone %s, device %s: %s flows within %s s; refused until the oldest '
                       'leaves the window', p_phone_unique_id, p_app_device_id,
                       v_device_count + 1, ecliptix_limit('flow_rate_window_seconds')));
    END IF;
    -- What get_full_flow_state(v_flow) would return, without reading it
    -- back: the flow was just made, so no OTP can be its yet.
    RETURN QUERY SELECT v_flow, p_phone_unique_id, p_app_device_id, p_connection_id,
        v_new_expires, 'pending'::text, p_purpose::text, 0::smallint, NULL::uuid, NULL::uuid,
        NULL::text, NULL::text, NULL::timestamptz, NULL::text, NULL::boolean, 'created'::text;
END;
$$;

CREATE OR REPLACE FUNCTION request_resend_otp(p_flow_unique_id uuid)
    RETURNS TABLE (outcome text)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_expires timestamptz;
    v_count   smallint;
    v_newest  timestamptz;
BEGIN
    PERFORM ecliptix_require(p_flow_unique_id, 'p_flow_unique_id');
    PERFORM ecliptix_require_read_committed('request_resend_otp');

    SELECT f.expires_at, f.otp_count INTO v_expires, v_count
    FROM verification_flows f
    WHERE f.unique_id = p_flow_unique_id AND f.status = 'pending' AND NOT f.is_deleted
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'flow_not_found_or_invalid'::text;
        RETURN;
    END IF;

    IF v_expires <= now() THEN
        UPDATE verification_flows f SET status = 'expired' WHERE f.unique_id = p_flow_unique_id;
        RETURN QUERY SELECT 'flow_expired'::text;
        RETURN;
    END IF;

    IF v_count >= ecliptix_limit('otps_per_flow') THEN
        PERFORM ecliptix_fail_flow_for_otp_count(p_flow_unique_id, v_count);
        RETURN QUERY SELECT 'max_otp_attempts_reached'::text;
        RETURN;
    END IF;

    SELECT max(r.created_at) INTO v_newest
    FROM otp_records r
    WHERE r.flow_unique_id = p_flow_unique_id;
    IF v_newest > now() - ecliptix_limit_interval('otp_resend_cooldown_seconds') THEN
        RETURN QUERY SELECT 'resend_cooldown_active'::text;
        RETURN;
    END IF;

    RETURN QUERY SELECT 'resend_allowed'::text;
END;
$$;

CREATE OR REPLACE FUNCTION insert_otp_record(
    p_flow_unique_id uuid, p_otp_hash text, p_otp_salt text, p_expires_at timestamptz,
    p_status varchar DEFAULT 'pending')
    RETURNS TABLE (otp_unique_id uuid, outcome text)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_phone_id bigint;
    v_status   text;
    v_expires  timestamptz;
    v_count    smallint;
    v_newest   timestamptz;
    v_otp      uuid;
BEGIN
    PERFORM ecliptix_require(p_flow_unique_id, 'p_flow_unique_id');
    PERFORM ecliptix_check_text(p_otp_hash, 'p_otp_hash', 255);
    PERFORM ecliptix_check_text(p_otp_salt, 'p_otp_salt', 255);
    PERFORM ecliptix_require(p_expires_at, 'p_expires_at');
    PERFORM ecliptix_check_one_of(p_status, 'p_status', ARRAY['pending']);
    PERFORM ecliptix_require_read_committed('insert_otp_record');

    -- The flow row lock serializes every OTP change of this flow.
    SELECT f.phone_number_id, f.status, f.expires_at, f.otp_count
    INTO v_phone_id, v_status, v_expires, v_count
    FROM verification_flows f
    WHERE f.unique_id = p_flow_unique_id AND NOT f.is_deleted
    FOR UPDATE;
    IF v_phone_id IS NULL OR v_status <> 'pending' OR v_expires <= now() THEN
        RETURN QUERY SELECT NULL::uuid, 'flow_not_found_or_invalid'::text;
        RETURN;
    END IF;

    -- A code never outlives its flow.
    IF p_expires_at > v_expires THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('p_expires_at (%s) must not be later than the flow''s expires_at (%s)',
                             p_expires_at, v_expires),
            HINT = 'Take the earlier of the code''s lifetime and the flow''s expires_at.';
    END IF;

    IF v_count >= ecliptix_limit('otps_per_flow') THEN
        PERFORM ecliptix_fail_flow_for_otp_count(p_flow_unique_id, v_count);
        RETURN QUERY SELECT NULL::uuid, 'max_otp_attempts_reached'::text;
        RETURN;
    END IF;

    -- otp_count counts the OTPs this function issued for the flow (the only
    -- way one is made): a flow's first OTP has no older one to wait for or
    -- to retire, so the two statements below are skipped for it.
    IF v_count > 0 THEN
        -- The resend cooldown holds whoever calls: measured from the flow's
        -- newest OTP, as request_resend_otp does.
        SELECT max(r.created_at) INTO v_newest
        FROM otp_records r
        WHERE r.flow_unique_id = p_flow_unique_id;
        IF v_newest > now() - ecliptix_limit_interval('otp_resend_cooldown_seconds') THEN
            RETURN QUERY SELECT NULL::uuid, 'resend_cooldown_active'::text;
            RETURN;
        END IF;

        UPDATE otp_records r
        SET is_active = false, status = 'expired'
        WHERE r.flow_unique_id = p_flow_unique_id AND r.is_active AND NOT r.is_deleted;
    END IF;

    INSERT INTO otp_records AS r
        (flow_unique_id, phone_number_id, otp_hash, otp_salt, expires_at, status, is_active)
    VALUES (p_flow_unique_id, v_phone_id, p_otp_hash, p_otp_salt, p_expires_at, 'pending', true)
    RETURNING r.unique_id INTO v_otp;

    UPDATE verification_flows f SET otp_count = f.otp_count + 1
    WHERE f.unique_id = p_flow_unique_id;

    RETURN QUERY SELECT v_otp, 'created'::text;
END;
$$;

-- Check a code: first match wins, in one transaction with the flow's row
-- locked, so concurrent checks of one flow are serialized and every one is
-- counted (ecliptix-security.md, "Codes are checked in the database").
-- A check that does not match is counted on the OTP, the flow and the
-- number before this function returns, within the same transaction as the
-- comparison: no check is ever compared without being counted.
CREATE OR REPLACE FUNCTION verify_otp(p_flow_unique_id uuid, p_code_digest text)
    RETURNS TABLE (outcome text, otp_unique_id uuid, attempts_left int, flow_status text)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_status        text;
    v_expires       timestamptz;
    v_device        uuid;
    v_number        text;
    v_phone_uid     uuid;
    v_otp           uuid;
    v_hash          text;
    v_otp_failures  bigint;
    v_flow_failures bigint;
    v_otp_limit     integer := ecliptix_limit('failed_checks_per_otp');
BEGIN
    PERFORM ecliptix_require(p_flow_unique_id, 'p_flow_unique_id');
    PERFORM ecliptix_check_text(p_code_digest, 'p_code_digest', 255);
    PERFORM ecliptix_require_read_committed('verify_otp');

    -- 1. A pending, non-deleted flow (locked until commit).
    SELECT f.status, f.expires_at, f.app_device_id, p.phone_number, p.unique_id
    INTO v_status, v_expires, v_device, v_number, v_phone_uid
    FROM verification_flows f
    JOIN phone_numbers p ON p.id = f.phone_number_id
    WHERE f.unique_id = p_flow_unique_id AND NOT f.is_deleted
    FOR UPDATE OF f;
    IF v_status IS DISTINCT FROM 'pending' THEN
        RETURN QUERY SELECT 'flow_not_found_or_invalid'::text, NULL::uuid, NULL::int, v_status;
        RETURN;
    END IF;

    -- 2. Expired.
    IF v_expires <= now() THEN
        UPDATE verification_flows f SET status = 'expired' WHERE f.unique_id = p_flow_unique_id;
        RETURN QUERY SELECT 'flow_expired'::text, NULL::uuid, NULL::int, 'expired'::text;
        RETURN;
    END IF;

    -- 3. The number's budget for this device (checks of every flow of the
    --    number are serialized from here on).
    PERFORM ecliptix_lock(12, v_number);
    IF ecliptix_number_locked(v_number, v_device) THEN
        RETURN QUERY SELECT 'number_locked'::text, NULL::uuid, NULL::int, 'pending'::text;
        RETURN;
    END IF;

    -- 4. The active OTP, still within its own lifetime.
    SELECT r.unique_id, r.otp_hash INTO v_otp, v_hash
    FROM otp_records r
    WHERE r.flow_unique_id = p_flow_unique_id AND r.is_active AND NOT r.is_deleted
      AND r.status = 'pending' AND r.expires_at > now()
    FOR UPDATE;
    IF v_otp IS NULL THEN
        RETURN QUERY SELECT 'no_active_otp'::text, NULL::uuid, NULL::int, 'pending'::text;
        RETURN;
    END IF;

    -- 5. Compare.
    IF v_hash = p_code_digest THEN
        UPDATE otp_records r SET status = 'verified', is_active = false
        WHERE r.unique_id = v_otp;
        UPDATE verification_flows f
        SET status = 'verified',
            expires_at = now() + ecliptix_limit_interval('verified_flow_validity_seconds')
        WHERE f.unique_id = p_flow_unique_id;
        RETURN QUERY SELECT 'verified'::text, v_otp, 0, 'verified'::text;
        RETURN;
    END IF;

    SELECT c.otp_failures, c.flow_failures INTO v_otp_failures, v_flow_failures
    FROM ecliptix_count_failed_check(v_otp, p_flow_unique_id, v_phone_uid, v_number,
                                     v_device) c;
    IF v_flow_failures >= ecliptix_limit('failed_checks_per_flow') THEN
        RETURN QUERY SELECT 'flow_failed'::text, v_otp, 0, 'failed'::text;
    ELSIF v_otp_failures >= v_otp_limit THEN
        RETURN QUERY SELECT 'otp_retired'::text, v_otp, 0, 'pending'::text;
    ELSE
        RETURN QUERY SELECT 'invalid_code'::text, v_otp, (v_otp_limit - v_otp_failures)::int,
            'pending'::text;
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION update_otp_status(p_otp_unique_id uuid, p_new_status varchar)
    RETURNS TABLE (success boolean, message text)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_flow      uuid;
    v_flow_ok   boolean;
    v_device    uuid;
    v_number    text;
    v_phone_uid uuid;
    v_old       text;
    v_expires   timestamptz;
BEGIN
    PERFORM ecliptix_require(p_otp_unique_id, 'p_otp_unique_id');
    PERFORM ecliptix_check_one_of(p_new_status, 'p_new_status',
        ARRAY['pending', 'verified', 'expired', 'failed']);
    PERFORM ecliptix_require_read_committed('update_otp_status');

    SELECT r.flow_unique_id INTO v_flow
    FROM otp_records r
    WHERE r.unique_id = p_otp_unique_id AND NOT r.is_deleted;

    -- Lock the flow first (same order as insert_otp_record), then the OTP.
    IF v_flow IS NOT NULL THEN
        SELECT true, f.app_device_id, p.phone_number, p.unique_id
        INTO v_flow_ok, v_device, v_number, v_phone_uid
        FROM verification_flows f
        JOIN phone_numbers p ON p.id = f.phone_number_id
        WHERE f.unique_id = v_flow AND f.status = 'pending' AND NOT f.is_deleted
          AND f.expires_at > now()
        FOR UPDATE OF f;
    END IF;
    IF v_flow_ok THEN
        SELECT r.status, r.expires_at INTO v_old, v_expires
        FROM otp_records r
        WHERE r.unique_id = p_otp_unique_id AND NOT r.is_deleted
        FOR UPDATE;
    END IF;
    IF v_old IS NULL THEN
        RETURN QUERY SELECT false, 'OTP not found, deleted, or flow invalid/expired'::text;
        RETURN;
    END IF;

    -- A pending OTP past its own expires_at is expired: it can never verify
    -- (nor become failed or pending again).
    IF v_old = 'pending' AND v_expires <= now() THEN
        UPDATE otp_records r SET status = 'expired', is_active = false
        WHERE r.unique_id = p_otp_unique_id;
        v_old := 'expired';
    END IF;

    IF NOT (v_old = p_new_status
            OR v_old = 'pending'
            OR (v_old IN ('failed', 'verified') AND p_new_status = 'expired')) THEN
        RETURN QUERY SELECT false, format('Cannot transition from %s to %s', v_old, p_new_status);
        RETURN;
    END IF;

    -- Verifying, or recording a new failure, draws on the number's
    -- failed-check budget: serialized per number like verify_otp.
    IF p_new_status = 'verified' OR (p_new_status = 'failed' AND v_old = 'pending') THEN
        PERFORM ecliptix_lock(12, v_number);
    END IF;
    IF p_new_status = 'verified' AND ecliptix_number_locked(v_number, v_device) THEN
        RETURN QUERY SELECT false, 'Failed-check budget exhausted for this number'::text;
        RETURN;
    END IF;

    IF p_new_status = 'pending' THEN
        UPDATE otp_records r
        SET is_active = false, status = 'expired'
        WHERE r.flow_unique_id = v_flow AND r.unique_id <> p_otp_unique_id
          AND r.is_active AND NOT r.is_deleted;
    END IF;

    UPDATE otp_records r
    SET status = p_new_status, is_active = (p_new_status = 'pending')
    WHERE r.unique_id = p_otp_unique_id;

    IF p_new_status = 'failed' AND v_old = 'pending' THEN
        -- Counts as a failed check (setting failed again records nothing).
        PERFORM ecliptix_count_failed_check(p_otp_unique_id, v_flow, v_phone_uid, v_number,
                                            v_device);
    ELSIF p_new_status = 'verified' THEN
        UPDATE verification_flows f SET status = 'verified' WHERE f.unique_id = v_flow;
    END IF;

    RETURN QUERY SELECT true, 'OTP status updated successfully'::text;
END;
$$;

-- Version 2 rules: a flow becomes verified only through a verified OTP (and
-- stays valid for the verified-flow validity counted from when that OTP was
-- verified, so repeating the call never extends it further); a verified
-- flow never goes back to pending; expired and failed are final. A move the
-- rules refuse changes nothing and returns 0.
CREATE OR REPLACE FUNCTION update_verification_flow_status(
    p_flow_unique_id uuid, p_new_status varchar)
    RETURNS TABLE (rows_affected int)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_old         text;
    v_expires     timestamptz;
    v_verified_at timestamptz;
    v_until       timestamptz;
BEGIN
    PERFORM ecliptix_require(p_flow_unique_id, 'p_flow_unique_id');
    PERFORM ecliptix_check_one_of(p_new_status, 'p_new_status',
        ARRAY['pending', 'verified', 'expired', 'failed']);

    SELECT f.status, f.expires_at INTO v_old, v_expires
    FROM verification_flows f
    WHERE f.unique_id = p_flow_unique_id AND NOT f.is_deleted
    FOR UPDATE;
    IF v_old IS NULL
       OR (v_old IN ('expired', 'failed') AND p_new_status <> v_old)
       OR (v_old = 'verified' AND p_new_status = 'pending') THEN
        RETURN QUERY SELECT 0;
        RETURN;
    END IF;

    IF p_new_status = 'verified' THEN
        SELECT max(r.updated_at) INTO v_verified_at
        FROM otp_records r
        WHERE r.flow_unique_id = p_flow_unique_id AND r.status = 'verified'
          AND NOT r.is_deleted;
        v_until := least(now(), v_verified_at)
                   + ecliptix_limit_interval('verified_flow_validity_seconds');
        IF v_verified_at IS NULL OR v_until <= now() THEN
            RETURN QUERY SELECT 0;
            RETURN;
        END IF;
        -- verify_otp already set both (the usual version 2 flow): writing
        -- the same values again would only add a row version and its log.
        IF v_old = 'verified' AND v_expires = v_until THEN
            RETURN QUERY SELECT 1;
            RETURN;
        END IF;
        UPDATE verification_flows f SET status = 'verified', expires_at = v_until
        WHERE f.unique_id = p_flow_unique_id;
    ELSE
        UPDATE verification_flows f SET status = p_new_status
        WHERE f.unique_id = p_flow_unique_id;
    END IF;
    RETURN QUERY SELECT 1;
END;
$$;

CREATE OR REPLACE FUNCTION expire_associated_otp(p_flow_unique_id uuid)
    RETURNS TABLE (rows_affected int)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_rows int;
BEGIN
    PERFORM ecliptix_require(p_flow_unique_id, 'p_flow_unique_id');

    UPDATE otp_records r
    SET status = 'expired', is_active = false
    WHERE r.flow_unique_id = p_flow_unique_id AND r.status = 'pending' AND NOT r.is_deleted;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN QUERY SELECT v_rows;
END;
$$;

-- Least privilege: PUBLIC loses EXECUTE on every function created above (new
-- functions get it by default) and any table privilege; roles registered with
-- ecliptix_grant_app_role keep (or, for a new function, get) EXECUTE on the
-- contract functions. Only PUBLIC is revoked here, never an app role.
SELECT ecliptix_apply_privileges();
