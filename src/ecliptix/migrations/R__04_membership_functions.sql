-- R__04: membership functions (attempt logging, membership creation, secure
-- key, login with lockout). Rate limits and lockouts hold under concurrency:
-- create_membership serializes per (number, device) and login_membership per
-- number or (number, device) with transaction-scoped advisory locks, so
-- counting and recording cannot be raced. Login lock state lives in
-- login_lockouts (per number) and login_device_lockouts (per number and
-- device); limits in ecliptix_limits.
--
-- Version 2 (see V003): budgets are kept per device, so a stranger's failures
-- never lock the owner out on the owner's device; a set secure key is only
-- replaced after a verified password_recovery flow of the membership's own
-- device; every lock-out, exhausted budget and key change is audited in
-- event_log. Functions that gained a parameter are dropped in their version 1
-- form first (CREATE OR REPLACE would add an overload beside it and make
-- version 1 calls ambiguous); all of this runs in one transaction.
-- Re-runnable.

-- Pin the deployment schema (see lib/pin_search_path.sql).
\ir lib/pin_search_path.sql

DROP FUNCTION IF EXISTS log_login_attempt(varchar, text, boolean);
DROP FUNCTION IF EXISTS create_membership(uuid, bigint, uuid, varchar);
DROP FUNCTION IF EXISTS login_membership(varchar);
DROP FUNCTION IF EXISTS update_membership_secure_key(uuid, bytea);

-- ---------------------------------------------------------------------------
-- Attempt logging
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION log_login_attempt(
    p_phone_number varchar, p_outcome text, p_is_success boolean,
    p_app_device_id uuid DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM ecliptix_check_phone_number(p_phone_number, 'p_phone_number');
    PERFORM ecliptix_check_text(p_outcome, 'p_outcome', 255);
    PERFORM ecliptix_require(p_is_success, 'p_is_success');

    INSERT INTO login_attempts (attempted_at, phone_number, outcome, is_success, app_device_id)
    VALUES (now(), p_phone_number, p_outcome, p_is_success, p_app_device_id);
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

-- ---------------------------------------------------------------------------
-- Membership creation
-- ---------------------------------------------------------------------------

-- The non-deleted and deleted phone rows with this number (every region):
-- their unique ids. Looked up first, so that the attempt queries below are
-- an equality on the leading column of their index: a plan cached while
-- the tables were small (PL/pgSQL keeps one per session) then still reads
-- one number's rows, never the whole table.
CREATE OR REPLACE FUNCTION ecliptix_phone_uids(p_phone_number text)
    RETURNS uuid[]
    LANGUAGE plpgsql STABLE
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_uids uuid[];
BEGIN
    SELECT array_agg(p.unique_id) INTO v_uids
    FROM phone_numbers p WHERE p.phone_number = p_phone_number;
    RETURN coalesce(v_uids, '{}');
END;
$$;

-- The counted create_membership failures of (number, device) in the window
-- (at most p_newest of each phone row and kind, the newest; all when NULL),
-- in no particular order: failures of any phone row with that number,
-- recorded for that device or for no device (version 1 rows and
-- log_membership_attempt, which the application writes, not an attacker),
-- rate-limit refusals excluded. One phone row and one kind at a time: each
-- query is a range of ix_membership_attempts_phone_device_attempted_at with
-- only scalar parameters, so PL/pgSQL keeps one generic plan for it; a
-- "phone_number_id = ANY (array)" was planned afresh on every call (its
-- custom plans always looked cheaper), which cost more than the query.
DROP FUNCTION IF EXISTS ecliptix_membership_failures(text, uuid, interval);
CREATE OR REPLACE FUNCTION ecliptix_membership_failures(
    p_phone_number text, p_app_device_id uuid, p_window interval, p_newest bigint DEFAULT NULL)
    RETURNS TABLE (attempted_at timestamptz)
    LANGUAGE plpgsql STABLE
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_uid uuid;
BEGIN
    FOREACH v_uid IN ARRAY ecliptix_phone_uids(p_phone_number) LOOP
        RETURN QUERY
            SELECT a.attempted_at
            FROM membership_attempts a
            WHERE a.phone_number_id = v_uid AND a.app_device_id = p_app_device_id
              AND a.attempted_at > now() - p_window
              AND NOT a.is_success AND NOT a.is_deleted AND a.outcome <> 'rate_limited'
            ORDER BY a.attempted_at DESC
            LIMIT p_newest;
        RETURN QUERY
            SELECT a.attempted_at
            FROM membership_attempts a
            WHERE a.phone_number_id = v_uid AND a.app_device_id IS NULL
              AND a.attempted_at > now() - p_window
              AND NOT a.is_success AND NOT a.is_deleted AND a.outcome <> 'rate_limited'
            ORDER BY a.attempted_at DESC
            LIMIT p_newest;
    END LOOP;
END;
$$;

-- Record one create_membership attempt against (phone, device); a counted
-- failure that uses up the budget writes one event_log row.
CREATE OR REPLACE FUNCTION ecliptix_record_membership_attempt(
    p_phone_uid uuid, p_phone_number text, p_app_device_id uuid, p_outcome text,
    p_is_success boolean)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_window interval;
    v_limit  integer;
    v_count  bigint;
BEGIN
    INSERT INTO membership_attempts
        (phone_number_id, attempted_at, outcome, is_success, app_device_id)
    VALUES (p_phone_uid, now(), p_outcome, p_is_success, p_app_device_id);
    IF p_is_success OR p_outcome = 'rate_limited' THEN
        RETURN;
    END IF;
    -- The limits are read only for a counted failure (successes are the
    -- hot path).
    v_window := ecliptix_limit_interval('membership_failure_window_seconds');
    v_limit := ecliptix_limit('membership_failures_per_window');
    SELECT count(*) INTO v_count
    FROM ecliptix_membership_failures(p_phone_number, p_app_device_id, v_window);
    IF v_count = v_limit THEN
        PERFORM ecliptix_audit('membership_creation_budget_exhausted', format(
            'phone_number_id=%s app_device_id=%s failures=%s window_seconds=%s',
            p_phone_uid, p_app_device_id, v_count, extract(epoch FROM v_window)::bigint));
    END IF;
END;
$$;

-- Version 2: failures are counted per (number, device of the flow) - or of
-- p_app_device_id, the caller's device, when given - so a stranger's
-- failures never block the owner's registration on the owner's device. A
-- caller that names its device gets only a flow of that device; a verified
-- flow creates memberships only while it is valid.
CREATE OR REPLACE FUNCTION create_membership(
    p_flow_unique_id uuid, p_connection_id bigint, p_otp_unique_id uuid,
    p_creation_status varchar, p_app_device_id uuid DEFAULT NULL)
    RETURNS TABLE (membership_unique_id uuid, status text, creation_status text, outcome text)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    f               record;
    v_device        uuid;
    v_window        interval := ecliptix_limit_interval('membership_failure_window_seconds');
    v_limit         integer;
    v_count         bigint;
    v_uids          uuid[];
    v_uid           uuid;
    v_oldest        timestamptz;
    v_minutes       bigint;
    v_fail          text;
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

    SELECT p.unique_id AS phone_uid, p.phone_number, p.is_deleted AS phone_deleted,
           fl.app_device_id, fl.connection_id, fl.purpose, fl.status, fl.expires_at
    INTO f
    FROM verification_flows fl
    JOIN phone_numbers p ON p.id = fl.phone_number_id
    WHERE fl.unique_id = p_flow_unique_id AND NOT fl.is_deleted;

    IF f.phone_uid IS NULL THEN
        -- No flow, so no phone to log against.
        RETURN QUERY SELECT NULL::uuid, NULL::text, NULL::text,
            'verification_flow_not_found'::text;
        RETURN;
    END IF;

    -- Everything below (count, decide, record) is serialized per (number, device).
    v_device := coalesce(p_app_device_id, f.app_device_id);
    PERFORM ecliptix_lock(1, f.phone_number || ' ' || v_device::text);

    -- 1. Too many counted failures in the window: the wait is until the
    --    limit-th newest counted failure leaves the window, rounded up.
    --    Counted first, the newest read only when the budget is used up: a
    --    LIMIT or OFFSET taken from a variable makes PL/pgSQL plan the
    --    statement afresh on every call, which the usual call avoids.
    --    The count is ecliptix_membership_failures' queries, inline: this
    --    runs on every call, and a set-returning call costs more than them.
    v_limit := ecliptix_limit('membership_failures_per_window');
    v_uids := ecliptix_phone_uids(f.phone_number);
    v_count := 0;
    FOREACH v_uid IN ARRAY v_uids LOOP
        v_count := v_count
            + (SELECT count(*) FROM membership_attempts a
               WHERE a.phone_number_id = v_uid AND a.app_device_id = v_device
                 AND a.attempted_at > now() - v_window
                 AND NOT a.is_success AND NOT a.is_deleted AND a.outcome <> 'rate_limited')
            + (SELECT count(*) FROM membership_attempts a
               WHERE a.phone_number_id = v_uid AND a.app_device_id IS NULL
                 AND a.attempted_at > now() - v_window
                 AND NOT a.is_success AND NOT a.is_deleted AND a.outcome <> 'rate_limited');
    END LOOP;
    IF v_count >= v_limit THEN
        SELECT t.attempted_at INTO v_oldest
        FROM ecliptix_membership_failures(f.phone_number, v_device, v_window, v_limit) t
        ORDER BY t.attempted_at DESC
        OFFSET v_limit - 1
        LIMIT 1;
    END IF;
    IF v_oldest IS NOT NULL THEN
        -- now() is this transaction's start, which can precede failures
        -- committed while we waited for the lock: never wait past the window.
        v_minutes := greatest(1, ceil(extract(epoch FROM
                         (v_oldest + v_window - greatest(now(), v_oldest))) / 60));
        PERFORM ecliptix_record_membership_attempt(f.phone_uid, f.phone_number, v_device,
                                                   'rate_limited', false);
        RETURN QUERY SELECT NULL::uuid, NULL::text, p_creation_status::text, v_minutes::text;
        RETURN;
    END IF;

    -- 2. The flow must be the caller's (when it says which device it is),
    --    match the connection, be a registration, phone alive.
    -- 3. Only a verified flow that is still valid creates a membership.
    IF v_device <> f.app_device_id OR f.connection_id IS DISTINCT FROM p_connection_id
       OR f.connection_id IS NULL OR f.purpose <> 'registration' OR f.phone_deleted THEN
        v_fail := 'verification_flow_not_found';
    ELSIF f.status <> 'verified' OR f.expires_at <= now() THEN
        v_fail := 'verification_flow_not_verified';
    END IF;
    IF v_fail IS NOT NULL THEN
        PERFORM ecliptix_record_membership_attempt(f.phone_uid, f.phone_number, v_device,
                                                   v_fail, false);
        RETURN QUERY SELECT NULL::uuid, NULL::text, NULL::text, v_fail;
        RETURN;
    END IF;

    -- 4. Existing membership for (phone, device).
    SELECT m.unique_id, m.status, m.creation_status INTO v_member, v_m_status, v_m_creation
    FROM memberships m
    WHERE m.phone_number_id = f.phone_uid AND m.app_device_id = v_device AND NOT m.is_deleted;
    IF v_member IS NOT NULL THEN
        PERFORM ecliptix_record_membership_attempt(f.phone_uid, f.phone_number, v_device,
                                                   'membership_already_exists', true);
        RETURN QUERY SELECT v_member, v_m_status, v_m_creation, 'membership_already_exists'::text;
        RETURN;
    END IF;

    -- 5. Create.
    INSERT INTO memberships AS m
        (phone_number_id, app_device_id, verification_flow_id, status, creation_status)
    VALUES (f.phone_uid, v_device, p_flow_unique_id, 'active', p_creation_status)
    RETURNING m.unique_id, m.status, m.creation_status INTO v_member, v_m_status, v_m_creation;

    UPDATE otp_records r SET is_active = false
    WHERE r.unique_id = p_otp_unique_id AND r.flow_unique_id = p_flow_unique_id AND r.is_active;

    -- A success is recorded as ecliptix_record_membership_attempt would
    -- (a plain insert: no budget to check).
    INSERT INTO membership_attempts
        (phone_number_id, attempted_at, outcome, is_success, app_device_id)
    VALUES (f.phone_uid, now(), 'created', true, v_device);
    -- The budget of (number, device) starts afresh (refusals included).
    -- One phone row at a time: an equality on the index's leading column is
    -- planned as an index scan even while the table is small, where "= ANY"
    -- got a cached plan that scanned the whole table on every call. The
    -- device's rows and the rows of no device are two ranges of the index
    -- (an OR of the two would read every device's rows of the number).
    FOREACH v_uid IN ARRAY v_uids LOOP
        DELETE FROM membership_attempts a
        WHERE a.phone_number_id = v_uid AND a.app_device_id = v_device AND NOT a.is_success;
        DELETE FROM membership_attempts a
        WHERE a.phone_number_id = v_uid AND a.app_device_id IS NULL AND NOT a.is_success;
    END LOOP;

    RETURN QUERY SELECT v_member, v_m_status, v_m_creation, 'created'::text;
END;
$$;

-- ---------------------------------------------------------------------------
-- Secure key
-- ---------------------------------------------------------------------------

-- The unused, verified, still valid password_recovery flow of this device
-- and number (any region) that a verified OTP verified, locked; NULL if none.
CREATE OR REPLACE FUNCTION ecliptix_take_recovery_flow(p_app_device_id uuid, p_phone_number text)
    RETURNS uuid
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_flow uuid;
BEGIN
    SELECT f.unique_id INTO v_flow
    FROM verification_flows f
    JOIN phone_numbers p ON p.id = f.phone_number_id
    WHERE f.app_device_id = p_app_device_id AND p.phone_number = p_phone_number
      AND NOT p.is_deleted AND NOT f.is_deleted
      AND f.purpose = 'password_recovery' AND f.status = 'verified'
      AND f.expires_at > now() AND f.recovery_used_at IS NULL
      AND EXISTS (SELECT 1 FROM otp_records r
                  WHERE r.flow_unique_id = f.unique_id AND r.status = 'verified')
    ORDER BY f.expires_at DESC, f.id DESC
    LIMIT 1
    FOR UPDATE OF f;
    IF v_flow IS NOT NULL THEN
        UPDATE verification_flows f SET recovery_used_at = now() WHERE f.unique_id = v_flow;
    END IF;
    RETURN v_flow;
END;
$$;

-- Version 2: the first key is set as in version 1; a key that is set is only
-- replaced after a password_recovery flow of the membership's own device and
-- number was verified (and is still valid), and that flow is used up.
CREATE OR REPLACE FUNCTION update_membership_secure_key(
    p_membership_unique_id uuid, p_secure_key bytea, p_app_device_id uuid DEFAULT NULL)
    RETURNS TABLE (success boolean, message text, membership_unique_id uuid, status text,
                   creation_status text)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_phone_uid uuid;
    v_device    uuid;
    v_has_key   boolean;
    v_number    text;
    v_flow      uuid;
BEGIN
    PERFORM ecliptix_require(p_membership_unique_id, 'p_membership_unique_id');

    IF p_secure_key IS NULL OR length(p_secure_key) = 0 THEN
        RETURN QUERY SELECT false, 'Secure key cannot be empty'::text, NULL::uuid, NULL::text,
            NULL::text;
        RETURN;
    END IF;
    PERFORM ecliptix_require_read_committed('update_membership_secure_key');

    -- The membership row lock serializes key changes of one membership.
    SELECT m.phone_number_id, m.app_device_id, coalesce(length(m.secure_key), 0) > 0,
           p.phone_number
    INTO v_phone_uid, v_device, v_has_key, v_number
    FROM memberships m
    JOIN phone_numbers p ON p.unique_id = m.phone_number_id
    WHERE m.unique_id = p_membership_unique_id AND NOT m.is_deleted
    FOR UPDATE OF m;
    IF v_phone_uid IS NULL THEN
        RETURN QUERY SELECT false, 'Membership not found or deleted'::text, NULL::uuid,
            NULL::text, NULL::text;
        RETURN;
    END IF;

    IF v_has_key THEN
        -- Only the membership's own device replaces its key: the caller names
        -- its device, and a recovery flow of that device must be verified.
        -- Without the device, anyone who knows the membership id could use
        -- the owner's recovery flow in the moment between the owner's code
        -- check and the owner's key update.
        v_flow := CASE WHEN p_app_device_id = v_device
                       THEN ecliptix_take_recovery_flow(v_device, v_number) END;
        IF v_flow IS NULL THEN
            PERFORM ecliptix_audit('secure_key_change_refused', format(
                'membership_id=%s app_device_id=%s caller_device_id=%s reason=%s',
                p_membership_unique_id, v_device, p_app_device_id,
                CASE WHEN p_app_device_id IS DISTINCT FROM v_device THEN 'not_the_members_device'
                     ELSE 'no_verified_recovery_flow' END));
            RETURN QUERY SELECT false, 'Secure key change requires a verified recovery flow'::text,
                NULL::uuid, NULL::text, NULL::text;
            RETURN;
        END IF;
    END IF;

    UPDATE memberships m
    SET secure_key = p_secure_key, status = 'active', creation_status = 'secure_key_set'
    WHERE m.unique_id = p_membership_unique_id;

    -- A success is recorded as ecliptix_record_membership_attempt would
    -- (a plain insert: no budget to check), without the call.
    INSERT INTO membership_attempts
        (phone_number_id, attempted_at, outcome, is_success, app_device_id)
    VALUES (v_phone_uid, now(), 'secure_key_updated', true, v_device);
    IF v_flow IS NULL THEN
        PERFORM ecliptix_audit('secure_key_set', format(
            'membership_id=%s app_device_id=%s', p_membership_unique_id, v_device));
    ELSE
        PERFORM ecliptix_audit('secure_key_replaced', format(
            'membership_id=%s app_device_id=%s recovery_flow_id=%s',
            p_membership_unique_id, v_device, v_flow));
    END IF;
    RETURN QUERY SELECT true, 'Secure key updated successfully'::text, p_membership_unique_id,
        'active'::text, 'secure_key_set'::text;
END;
$$;

-- ---------------------------------------------------------------------------
-- Login
-- ---------------------------------------------------------------------------
-- A login "bucket" is (number, device) when the caller names the device, and
-- the number alone (version 1) when it does not: failures, the lock and what
-- a success clears all belong to one bucket.

-- The bucket's lock: until when and since when; NULLs when there is none.
CREATE OR REPLACE FUNCTION ecliptix_login_lock(
    p_phone_number text, p_app_device_id uuid,
    OUT locked_until timestamptz, OUT locked_at timestamptz)
    LANGUAGE plpgsql STABLE
    SET search_path FROM CURRENT
AS $$
BEGIN
    IF p_app_device_id IS NULL THEN
        SELECT l.locked_until, l.locked_at INTO locked_until, locked_at
        FROM login_lockouts l WHERE l.phone_number = p_phone_number;
    ELSE
        SELECT l.locked_until, l.locked_at INTO locked_until, locked_at
        FROM login_device_lockouts l
        WHERE l.phone_number = p_phone_number AND l.app_device_id = p_app_device_id;
    END IF;
END;
$$;

-- Lock the bucket until p_until, and audit the lock-out.
CREATE OR REPLACE FUNCTION ecliptix_login_set_lock(
    p_phone_number text, p_app_device_id uuid, p_until timestamptz, p_failures bigint)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
BEGIN
    IF p_app_device_id IS NULL THEN
        INSERT INTO login_lockouts AS l (phone_number, locked_at, locked_until)
        VALUES (p_phone_number, now(), p_until)
        ON CONFLICT (phone_number)
            DO UPDATE SET locked_at = excluded.locked_at, locked_until = excluded.locked_until;
    ELSE
        INSERT INTO login_device_lockouts AS l
            (phone_number, app_device_id, locked_at, locked_until)
        VALUES (p_phone_number, p_app_device_id, now(), p_until)
        ON CONFLICT (phone_number, app_device_id)
            DO UPDATE SET locked_at = excluded.locked_at, locked_until = excluded.locked_until;
    END IF;
    PERFORM ecliptix_audit('login_locked_out', format(
        'number=%L app_device_id=%s failures=%s locked_seconds=%s',
        p_phone_number, coalesce(p_app_device_id::text, 'none'), p_failures,
        extract(epoch FROM (p_until - now()))::bigint));
END;
$$;

-- Clear the bucket: its failed attempts and its lock.
CREATE OR REPLACE FUNCTION ecliptix_login_clear(p_phone_number text, p_app_device_id uuid)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
BEGIN
    -- "app_device_id IS NOT DISTINCT FROM p_app_device_id" would be no
    -- index condition: each bucket is its own range of
    -- ix_login_attempts_phone_number_device_attempted_at.
    IF p_app_device_id IS NULL THEN
        DELETE FROM login_attempts a
        WHERE a.phone_number = p_phone_number AND a.app_device_id IS NULL AND NOT a.is_success;
        DELETE FROM login_lockouts l WHERE l.phone_number = p_phone_number;
    ELSE
        DELETE FROM login_attempts a
        WHERE a.phone_number = p_phone_number AND a.app_device_id = p_app_device_id
          AND NOT a.is_success;
        DELETE FROM login_device_lockouts l
        WHERE l.phone_number = p_phone_number AND l.app_device_id = p_app_device_id;
    END IF;
END;
$$;

-- What a login of this number finds, first match wins.
CREATE OR REPLACE FUNCTION ecliptix_login_evaluate(p_phone_number text,
    OUT outcome text, OUT membership_unique_id uuid, OUT status text, OUT secure_key bytea)
    LANGUAGE plpgsql STABLE
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_found boolean;
    v_uids  uuid[];
BEGIN
    -- The number's live phone rows first, then their memberships by the
    -- indexed phone_number_id (a join here was planned, and the plan cached,
    -- as a scan of every membership).
    SELECT array_agg(p.unique_id) INTO v_uids
    FROM phone_numbers p
    WHERE p.phone_number = p_phone_number AND NOT p.is_deleted;
    IF v_uids IS NULL THEN
        outcome := 'phone_number_not_found';
        RETURN;
    END IF;
    IF cardinality(v_uids) = 1 THEN
        -- The usual case, one region: a scalar parameter gets one cached
        -- generic plan, where "= ANY (array)" was planned on every call.
        SELECT true, m.unique_id, m.status, m.secure_key
        INTO v_found, membership_unique_id, status, secure_key
        FROM memberships m
        WHERE m.phone_number_id = v_uids[1] AND NOT m.is_deleted
        ORDER BY m.created_at DESC, m.id DESC
        LIMIT 1;
    ELSE
        SELECT true, m.unique_id, m.status, m.secure_key
        INTO v_found, membership_unique_id, status, secure_key
        FROM memberships m
        WHERE m.phone_number_id = ANY (v_uids) AND NOT m.is_deleted
        ORDER BY m.created_at DESC, m.id DESC
        LIMIT 1;
    END IF;
    IF v_found IS NULL THEN
        outcome := 'membership_not_found';
    ELSIF secure_key IS NULL OR length(secure_key) = 0 THEN
        outcome := 'secure_key_not_set';
    ELSIF status <> 'active' THEN
        outcome := 'inactive_membership';
    ELSE
        outcome := 'success';
    END IF;
END;
$$;

-- Version 2: with p_app_device_id, failures and the lock are kept per
-- (number, device), so failures from other devices never lock this one;
-- without it, version 1's per-number behaviour (over attempts that name no
-- device).
CREATE OR REPLACE FUNCTION login_membership(p_phone_number varchar,
    p_app_device_id uuid DEFAULT NULL)
    RETURNS TABLE (membership_unique_id uuid, status text, outcome text, secure_key bytea)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_lock     record;
    v_until    timestamptz;
    v_since    timestamptz;
    v_failures bigint;
    r          record;
BEGIN
    -- 0. No number: no lock, nothing logged.
    IF p_phone_number IS NULL OR p_phone_number = '' THEN
        RETURN QUERY SELECT NULL::uuid, NULL::text, 'phone_number_cannot_be_empty'::text,
            NULL::bytea;
        RETURN;
    END IF;
    PERFORM ecliptix_check_phone_number(p_phone_number, 'p_phone_number');
    PERFORM ecliptix_require_read_committed('login_membership');

    -- Every login of this bucket is serialized: at most the limit of
    -- failures can be evaluated before the lock is written.
    PERFORM ecliptix_lock(2, CASE WHEN p_app_device_id IS NULL THEN p_phone_number
                                  ELSE p_phone_number || ' ' || p_app_device_id::text END);

    -- 1./2. Lock state. The time left is counted from the later of now()
    -- (this transaction's start) and the lock's start, so a call that began
    -- before the lock was written while it waited is never told more than
    -- the lockout length.
    SELECT * INTO v_lock FROM ecliptix_login_lock(p_phone_number, p_app_device_id);
    IF v_lock.locked_until > now() THEN
        RETURN QUERY SELECT NULL::uuid, NULL::text,
            ceil(extract(epoch FROM (v_lock.locked_until - greatest(now(), v_lock.locked_at)))
                 / 60)::bigint::text,
            NULL::bytea;
        RETURN;
    ELSIF v_lock.locked_until IS NOT NULL THEN
        -- The lock has ended: clear it and the failures it counted. Nothing
        -- is logged while locked, so those are all the bucket's failures so
        -- far (not filtered by time, so that moving only the lock's stored
        -- times back behaves like time passing).
        PERFORM ecliptix_login_clear(p_phone_number, p_app_device_id);
    END IF;

    -- 3. Too many failures in the window: lock (this call is not logged).
    --    The bucket's failures are one range of
    --    ix_login_attempts_phone_number_device_attempted_at ("IS NOT
    --    DISTINCT FROM" would leave the device and the time to a filter).
    v_since := now() - ecliptix_limit_interval('login_failure_window_seconds');
    IF p_app_device_id IS NULL THEN
        SELECT count(*) INTO v_failures
        FROM login_attempts a
        WHERE a.phone_number = p_phone_number AND a.app_device_id IS NULL
          AND a.attempted_at > v_since AND NOT a.is_success;
    ELSE
        SELECT count(*) INTO v_failures
        FROM login_attempts a
        WHERE a.phone_number = p_phone_number AND a.app_device_id = p_app_device_id
          AND a.attempted_at > v_since AND NOT a.is_success;
    END IF;
    IF v_failures >= ecliptix_limit('login_failures_per_window') THEN
        v_until := now() + ecliptix_limit_interval('login_lockout_seconds');
        PERFORM ecliptix_login_set_lock(p_phone_number, p_app_device_id, v_until, v_failures);
        RETURN QUERY SELECT NULL::uuid, NULL::text,
            ceil(extract(epoch FROM (v_until - now())) / 60)::bigint::text, NULL::bytea;
        RETURN;
    END IF;

    -- 4. Evaluate. 5. Record (the row log_login_attempt would write; its
    --    checks of the arguments were made above).
    SELECT * INTO r FROM ecliptix_login_evaluate(p_phone_number);
    INSERT INTO login_attempts (attempted_at, phone_number, outcome, is_success, app_device_id)
    VALUES (now(), p_phone_number, r.outcome, r.outcome = 'success', p_app_device_id);
    IF r.outcome = 'success' THEN
        PERFORM ecliptix_login_clear(p_phone_number, p_app_device_id);
        RETURN QUERY SELECT r.membership_unique_id, r.status, r.outcome, r.secure_key;
    ELSE
        RETURN QUERY SELECT NULL::uuid, NULL::text, r.outcome, NULL::bytea;
    END IF;
END;
$$;

-- Least privilege: PUBLIC loses EXECUTE on every function created above (new
-- functions get it by default) and any table privilege; roles registered with
-- ecliptix_grant_app_role keep (or, for a new function, get) EXECUTE on the
-- contract functions. Only PUBLIC is revoked here, never an app role.
SELECT ecliptix_apply_privileges();
