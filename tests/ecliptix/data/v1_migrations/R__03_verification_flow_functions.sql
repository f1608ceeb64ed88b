-- R__03: verification-flow functions (flows, OTP issue/resend/status).
-- Flow-level invariants (one pending flow per device/phone/purpose, the
-- per-phone hourly flow limit, the per-flow OTP limit) are kept under
-- concurrency by row locks: the phone row for flow creation, the flow row for
-- everything that changes a flow or its OTPs. Limits come from
-- ecliptix_limits. Re-runnable: CREATE OR REPLACE only.

-- Pin the deployment schema (see lib/pin_search_path.sql).
\ir lib/pin_search_path.sql

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
               o.unique_id, o.flow_unique_id, o.otp_hash::text, o.otp_salt::text,
               o.expires_at, o.status::text, o.is_active
        FROM verification_flows f
        JOIN phone_numbers p ON p.id = f.phone_number_id
        LEFT JOIN LATERAL (
            SELECT r.*
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
    v_phone_id bigint;
    v_flow     uuid;
    v_count    bigint;
BEGIN
    PERFORM ecliptix_require(p_app_device_id, 'p_app_device_id');
    PERFORM ecliptix_require(p_phone_unique_id, 'p_phone_unique_id');
    PERFORM ecliptix_check_one_of(p_purpose, 'p_purpose',
        ARRAY['unspecified', 'registration', 'login', 'password_recovery', 'update_phone']);
    PERFORM ecliptix_require_read_committed('initiate_verification_flow');

    -- Lock the phone row: every flow decision for this phone is serialized,
    -- so the hourly count and the one-pending-flow rule cannot be raced.
    SELECT p.id INTO v_phone_id
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

    -- A still-valid verified flow of this phone (any device, any purpose).
    SELECT f.unique_id INTO v_flow
    FROM verification_flows f
    WHERE f.phone_number_id = v_phone_id AND f.status = 'verified'
      AND NOT f.is_deleted AND f.expires_at > now()
    ORDER BY f.created_at DESC, f.id DESC
    LIMIT 1;
    IF v_flow IS NOT NULL THEN
        RETURN QUERY SELECT s.*, 'verified'::text FROM get_full_flow_state(v_flow) s;
        RETURN;
    END IF;

    SELECT count(*) INTO v_count
    FROM verification_flows f
    WHERE f.phone_number_id = v_phone_id
      AND f.created_at > now() - ecliptix_limit_interval('flow_rate_window_seconds');
    IF v_count >= ecliptix_limit('flows_per_phone_per_window') THEN
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
    RETURNING f.unique_id INTO v_flow;
    RETURN QUERY SELECT s.*, 'created'::text FROM get_full_flow_state(v_flow) s;
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
        UPDATE verification_flows f SET status = 'failed' WHERE f.unique_id = p_flow_unique_id;
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

    IF v_count >= ecliptix_limit('otps_per_flow') THEN
        UPDATE verification_flows f SET status = 'failed' WHERE f.unique_id = p_flow_unique_id;
        RETURN QUERY SELECT NULL::uuid, 'max_otp_attempts_reached'::text;
        RETURN;
    END IF;

    UPDATE otp_records r
    SET is_active = false, status = 'expired'
    WHERE r.flow_unique_id = p_flow_unique_id AND r.is_active AND NOT r.is_deleted;

    INSERT INTO otp_records AS r
        (flow_unique_id, phone_number_id, otp_hash, otp_salt, expires_at, status, is_active)
    VALUES (p_flow_unique_id, v_phone_id, p_otp_hash, p_otp_salt, p_expires_at, 'pending', true)
    RETURNING r.unique_id INTO v_otp;

    UPDATE verification_flows f SET otp_count = f.otp_count + 1
    WHERE f.unique_id = p_flow_unique_id;

    RETURN QUERY SELECT v_otp, 'created'::text;
END;
$$;

CREATE OR REPLACE FUNCTION update_otp_status(p_otp_unique_id uuid, p_new_status varchar)
    RETURNS TABLE (success boolean, message text)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_flow     uuid;
    v_flow_ok  boolean;
    v_old      text;
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
        SELECT true INTO v_flow_ok
        FROM verification_flows f
        WHERE f.unique_id = v_flow AND f.status = 'pending' AND NOT f.is_deleted
          AND f.expires_at > now()
        FOR UPDATE;
    END IF;
    IF v_flow_ok THEN
        SELECT r.status INTO v_old
        FROM otp_records r
        WHERE r.unique_id = p_otp_unique_id AND NOT r.is_deleted
        FOR UPDATE;
    END IF;
    IF v_old IS NULL THEN
        RETURN QUERY SELECT false, 'OTP not found, deleted, or flow invalid/expired'::text;
        RETURN;
    END IF;

    IF NOT (v_old = p_new_status
            OR v_old = 'pending'
            OR (v_old IN ('failed', 'verified') AND p_new_status = 'expired')) THEN
        RETURN QUERY SELECT false, format('Cannot transition from %s to %s', v_old, p_new_status);
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

    IF p_new_status = 'failed' THEN
        INSERT INTO failed_otp_attempts (otp_unique_id, flow_unique_id)
        VALUES (p_otp_unique_id, v_flow);
    ELSIF p_new_status = 'verified' THEN
        UPDATE verification_flows f SET status = 'verified' WHERE f.unique_id = v_flow;
    END IF;

    RETURN QUERY SELECT true, 'OTP status updated successfully'::text;
END;
$$;

CREATE OR REPLACE FUNCTION update_verification_flow_status(
    p_flow_unique_id uuid, p_new_status varchar)
    RETURNS TABLE (rows_affected int)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_rows int;
BEGIN
    PERFORM ecliptix_require(p_flow_unique_id, 'p_flow_unique_id');
    PERFORM ecliptix_check_one_of(p_new_status, 'p_new_status',
        ARRAY['pending', 'verified', 'expired', 'failed']);

    UPDATE verification_flows f
    SET status = p_new_status,
        expires_at = CASE WHEN p_new_status = 'verified'
                          THEN now() + ecliptix_limit_interval('verified_flow_validity_seconds')
                          ELSE f.expires_at END
    WHERE f.unique_id = p_flow_unique_id AND NOT f.is_deleted;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN QUERY SELECT v_rows;
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
