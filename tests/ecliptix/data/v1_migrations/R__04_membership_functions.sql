-- R__04: membership functions (attempt logging, membership creation, secure
-- key, login with lockout). Rate limits and lockouts hold under concurrency:
-- create_membership serializes per phone and login_membership per number with
-- transaction-scoped advisory locks, so counting and recording cannot be
-- raced. Login lock state lives in login_lockouts; limits in ecliptix_limits.
-- Re-runnable: CREATE OR REPLACE only.

-- Pin the deployment schema (see lib/pin_search_path.sql).
\ir lib/pin_search_path.sql

CREATE OR REPLACE FUNCTION log_login_attempt(
    p_phone_number varchar, p_outcome text, p_is_success boolean)
    RETURNS void
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM ecliptix_check_phone_number(p_phone_number, 'p_phone_number');
    PERFORM ecliptix_check_text(p_outcome, 'p_outcome', 255);
    PERFORM ecliptix_require(p_is_success, 'p_is_success');

    INSERT INTO login_attempts (attempted_at, phone_number, outcome, is_success)
    VALUES (now(), p_phone_number, p_outcome, p_is_success);
END;
$$;

CREATE OR REPLACE FUNCTION log_membership_attempt(
    p_phone_number_id uuid, p_outcome text, p_is_success boolean)
    RETURNS void
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM ecliptix_require(p_phone_number_id, 'p_phone_number_id');
    PERFORM ecliptix_check_text(p_outcome, 'p_outcome', 255);
    PERFORM ecliptix_require(p_is_success, 'p_is_success');

    -- An unknown phone id fails the foreign key (SQLSTATE 23503).
    INSERT INTO membership_attempts (phone_number_id, attempted_at, outcome, is_success)
    VALUES (p_phone_number_id, now(), p_outcome, p_is_success);
END;
$$;

CREATE OR REPLACE FUNCTION create_membership(
    p_flow_unique_id uuid, p_connection_id bigint, p_otp_unique_id uuid,
    p_creation_status varchar)
    RETURNS TABLE (membership_unique_id uuid, status text, creation_status text, outcome text)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_phone_uid     uuid;
    v_phone_deleted boolean;
    v_device        uuid;
    v_conn          bigint;
    v_purpose       text;
    v_flow_status   text;
    v_window        interval := ecliptix_limit_interval('membership_failure_window_seconds');
    v_oldest        timestamptz;
    v_minutes       bigint;
    v_member        uuid;
    v_m_status      text;
    v_m_creation    text;
BEGIN
    PERFORM ecliptix_require(p_flow_unique_id, 'p_flow_unique_id');
    PERFORM ecliptix_require(p_connection_id, 'p_connection_id');
    PERFORM ecliptix_require(p_otp_unique_id, 'p_otp_unique_id');
    PERFORM ecliptix_check_one_of(p_creation_status, 'p_creation_status',
        ARRAY['otp_verified', 'secure_key_set', 'passphrase_set']);
    PERFORM ecliptix_require_read_committed('create_membership');

    SELECT p.unique_id, p.is_deleted, f.app_device_id, f.connection_id, f.purpose, f.status
    INTO v_phone_uid, v_phone_deleted, v_device, v_conn, v_purpose, v_flow_status
    FROM verification_flows f
    JOIN phone_numbers p ON p.id = f.phone_number_id
    WHERE f.unique_id = p_flow_unique_id AND NOT f.is_deleted;

    IF v_phone_uid IS NULL THEN
        -- No flow, so no phone to log against.
        RETURN QUERY SELECT NULL::uuid, NULL::text, NULL::text,
            'verification_flow_not_found'::text;
        RETURN;
    END IF;

    -- Everything below (count, decide, record) is serialized per phone.
    PERFORM ecliptix_lock(1, v_phone_uid::text);

    -- 1. Too many counted failures in the window: the wait is until the
    --    limit-th newest counted failure leaves the window, rounded up.
    SELECT a.attempted_at INTO v_oldest
    FROM membership_attempts a
    WHERE a.phone_number_id = v_phone_uid AND NOT a.is_success AND NOT a.is_deleted
      AND a.outcome <> 'rate_limited'
      AND a.attempted_at > now() - v_window
    ORDER BY a.attempted_at DESC
    OFFSET ecliptix_limit('membership_failures_per_window') - 1
    LIMIT 1;
    IF v_oldest IS NOT NULL THEN
        -- now() is this transaction's start, which can precede failures
        -- committed while we waited for the lock: never wait past the window.
        v_minutes := greatest(1, ceil(extract(epoch FROM
                         (v_oldest + v_window - greatest(now(), v_oldest))) / 60));
        PERFORM log_membership_attempt(v_phone_uid, 'rate_limited', false);
        RETURN QUERY SELECT NULL::uuid, NULL::text, p_creation_status::text, v_minutes::text;
        RETURN;
    END IF;

    -- 2. The flow must match the connection, be a registration, phone alive.
    IF v_conn IS DISTINCT FROM p_connection_id OR v_conn IS NULL
       OR v_purpose <> 'registration' OR v_phone_deleted THEN
        PERFORM log_membership_attempt(v_phone_uid, 'verification_flow_not_found', false);
        RETURN QUERY SELECT NULL::uuid, NULL::text, NULL::text,
            'verification_flow_not_found'::text;
        RETURN;
    END IF;

    -- 3. Only a verified flow creates a membership.
    IF v_flow_status <> 'verified' THEN
        PERFORM log_membership_attempt(v_phone_uid, 'verification_flow_not_verified', false);
        RETURN QUERY SELECT NULL::uuid, NULL::text, NULL::text,
            'verification_flow_not_verified'::text;
        RETURN;
    END IF;

    -- 4. Existing membership for (phone, device).
    SELECT m.unique_id, m.status, m.creation_status INTO v_member, v_m_status, v_m_creation
    FROM memberships m
    WHERE m.phone_number_id = v_phone_uid AND m.app_device_id = v_device AND NOT m.is_deleted;
    IF v_member IS NOT NULL THEN
        PERFORM log_membership_attempt(v_phone_uid, 'membership_already_exists', true);
        RETURN QUERY SELECT v_member, v_m_status, v_m_creation, 'membership_already_exists'::text;
        RETURN;
    END IF;

    -- 5. Create.
    INSERT INTO memberships AS m
        (phone_number_id, app_device_id, verification_flow_id, status, creation_status)
    VALUES (v_phone_uid, v_device, p_flow_unique_id, 'active', p_creation_status)
    RETURNING m.unique_id, m.status, m.creation_status INTO v_member, v_m_status, v_m_creation;

    UPDATE otp_records r SET is_active = false
    WHERE r.unique_id = p_otp_unique_id AND r.flow_unique_id = p_flow_unique_id AND r.is_active;

    PERFORM log_membership_attempt(v_phone_uid, 'created', true);
    DELETE FROM membership_attempts a
    WHERE a.phone_number_id = v_phone_uid AND NOT a.is_success;

    RETURN QUERY SELECT v_member, v_m_status, v_m_creation, 'created'::text;
END;
$$;

CREATE OR REPLACE FUNCTION update_membership_secure_key(
    p_membership_unique_id uuid, p_secure_key bytea)
    RETURNS TABLE (success boolean, message text, membership_unique_id uuid, status text,
                   creation_status text)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_phone_uid uuid;
BEGIN
    PERFORM ecliptix_require(p_membership_unique_id, 'p_membership_unique_id');

    IF p_secure_key IS NULL OR length(p_secure_key) = 0 THEN
        RETURN QUERY SELECT false, 'Secure key cannot be empty'::text, NULL::uuid, NULL::text,
            NULL::text;
        RETURN;
    END IF;

    UPDATE memberships m
    SET secure_key = p_secure_key, status = 'active', creation_status = 'secure_key_set'
    WHERE m.unique_id = p_membership_unique_id AND NOT m.is_deleted
    RETURNING m.phone_number_id INTO v_phone_uid;
    IF v_phone_uid IS NULL THEN
        RETURN QUERY SELECT false, 'Membership not found or deleted'::text, NULL::uuid,
            NULL::text, NULL::text;
        RETURN;
    END IF;

    PERFORM log_membership_attempt(v_phone_uid, 'secure_key_updated', true);
    RETURN QUERY SELECT true, 'Secure key updated successfully'::text, p_membership_unique_id,
        'active'::text, 'secure_key_set'::text;
END;
$$;

CREATE OR REPLACE FUNCTION login_membership(p_phone_number varchar)
    RETURNS TABLE (membership_unique_id uuid, status text, outcome text, secure_key bytea)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_locked_until timestamptz;
    v_locked_at    timestamptz;
    v_failures     bigint;
    v_outcome      text;
    v_found        boolean;
    v_member       uuid;
    v_m_status     text;
    v_key          bytea;
BEGIN
    -- 0. No number: no lock, nothing logged.
    IF p_phone_number IS NULL OR p_phone_number = '' THEN
        RETURN QUERY SELECT NULL::uuid, NULL::text, 'phone_number_cannot_be_empty'::text,
            NULL::bytea;
        RETURN;
    END IF;
    PERFORM ecliptix_check_phone_number(p_phone_number, 'p_phone_number');
    PERFORM ecliptix_require_read_committed('login_membership');

    -- Every login of this number is serialized: at most the limit of
    -- failures can be evaluated before the lock is written.
    PERFORM ecliptix_lock(2, p_phone_number);

    -- 1./2. Lock state. The time left is counted from the later of now()
    -- (this transaction's start) and the lock's start, so a call that began
    -- before the lock was written while it waited is never told more than
    -- the lockout length.
    SELECT l.locked_until, l.locked_at INTO v_locked_until, v_locked_at
    FROM login_lockouts l WHERE l.phone_number = p_phone_number;
    IF v_locked_until > now() THEN
        RETURN QUERY SELECT NULL::uuid, NULL::text,
            ceil(extract(epoch FROM (v_locked_until - greatest(now(), v_locked_at))) / 60)
                ::bigint::text,
            NULL::bytea;
        RETURN;
    ELSIF v_locked_until IS NOT NULL THEN
        -- The lock has ended: clear it and the failures it counted. Nothing
        -- is logged while locked, so those are all the number's failures so
        -- far (not filtered by time, so that moving only the lock's stored
        -- times back behaves like time passing).
        DELETE FROM login_attempts a
        WHERE a.phone_number = p_phone_number AND NOT a.is_success;
        DELETE FROM login_lockouts l WHERE l.phone_number = p_phone_number;
    END IF;

    -- 3. Too many failures in the window: lock (this call is not logged).
    SELECT count(*) INTO v_failures
    FROM login_attempts a
    WHERE a.phone_number = p_phone_number AND NOT a.is_success
      AND a.attempted_at > now() - ecliptix_limit_interval('login_failure_window_seconds');
    IF v_failures >= ecliptix_limit('login_failures_per_window') THEN
        v_locked_until := now() + ecliptix_limit_interval('login_lockout_seconds');
        INSERT INTO login_lockouts AS l (phone_number, locked_at, locked_until)
        VALUES (p_phone_number, now(), v_locked_until)
        ON CONFLICT (phone_number)
            DO UPDATE SET locked_at = excluded.locked_at, locked_until = excluded.locked_until;
        RETURN QUERY SELECT NULL::uuid, NULL::text,
            ceil(extract(epoch FROM (v_locked_until - now())) / 60)::bigint::text, NULL::bytea;
        RETURN;
    END IF;

    -- 4. Evaluate.
    IF NOT EXISTS (SELECT 1 FROM phone_numbers p
                   WHERE p.phone_number = p_phone_number AND NOT p.is_deleted) THEN
        v_outcome := 'phone_number_not_found';
    ELSE
        SELECT true, m.unique_id, m.status, m.secure_key
        INTO v_found, v_member, v_m_status, v_key
        FROM memberships m
        JOIN phone_numbers p ON p.unique_id = m.phone_number_id
        WHERE p.phone_number = p_phone_number AND NOT p.is_deleted AND NOT m.is_deleted
        ORDER BY m.created_at DESC, m.id DESC
        LIMIT 1;
        IF v_found IS NULL THEN
            v_outcome := 'membership_not_found';
        ELSIF v_key IS NULL OR length(v_key) = 0 THEN
            v_outcome := 'secure_key_not_set';
        ELSIF v_m_status <> 'active' THEN
            v_outcome := 'inactive_membership';
        ELSE
            v_outcome := 'success';
        END IF;
    END IF;

    -- 5. Record.
    IF v_outcome = 'success' THEN
        PERFORM log_login_attempt(p_phone_number, 'success', true);
        DELETE FROM login_attempts a
        WHERE a.phone_number = p_phone_number AND NOT a.is_success;
        DELETE FROM login_lockouts l WHERE l.phone_number = p_phone_number;
        RETURN QUERY SELECT v_member, v_m_status, v_outcome, v_key;
    ELSE
        PERFORM log_login_attempt(p_phone_number, v_outcome, false);
        RETURN QUERY SELECT NULL::uuid, NULL::text, v_outcome, NULL::bytea;
    END IF;
END;
$$;

-- Least privilege: PUBLIC loses EXECUTE on every function created above (new
-- functions get it by default) and any table privilege; roles registered with
-- ecliptix_grant_app_role keep (or, for a new function, get) EXECUTE on the
-- contract functions. Only PUBLIC is revoked here, never an app role.
SELECT ecliptix_apply_privileges();
