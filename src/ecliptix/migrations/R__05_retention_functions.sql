-- R__05: retention. ecliptix_purge(p_batch_size) deletes what has ended, in
-- bounded batches, and is meant to run every minute beside full traffic:
-- * at most p_batch_size rows per table per call, so one call is short and
--   holds its row locks briefly;
-- * rows another session holds locked are skipped (FOR UPDATE SKIP LOCKED),
--   so the purge never waits for the application and never blocks it;
-- * a row that other rows may come to reference (device, phone, link, flow)
--   is first locked, then checked again for references with a fresh
--   snapshot and only then deleted: a reference committed in between is
--   seen, and one being inserted holds a key-share lock on the row, so the
--   row is skipped. Nothing is ever removed by a cascade: children go first.
-- * the tables whose candidates cannot be found through an index (rows old
--   enough but still referenced would be read again on every call) are read
--   a range of blocks at a time, from where the previous call stopped
--   (ecliptix_purge_cursors), so each call reads a bounded part of them and
--   a cycle reads all of them.
-- Retention periods live in ecliptix_limits (*_retention_seconds).
-- Re-runnable: CREATE OR REPLACE only.

-- Pin the deployment schema (see lib/pin_search_path.sql).
\ir lib/pin_search_path.sql

-- ---------------------------------------------------------------------------
-- Block-range cursors
-- ---------------------------------------------------------------------------

-- The range of blocks of p_table this call reads for p_rule, [lo, hi), and
-- moves the cursor past it (back to block 0 after the last block). NULLs
-- when another purge holds the rule's cursor: that call covers it.
CREATE OR REPLACE FUNCTION ecliptix_purge_window(p_rule text, p_table regclass, p_blocks bigint,
    OUT lo tid, OUT hi tid)
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_from  bigint;
    v_total bigint := pg_relation_size(p_table) / current_setting('block_size')::bigint;
    v_to    bigint;
BEGIN
    INSERT INTO ecliptix_purge_cursors AS c (rule) VALUES (p_rule)
    ON CONFLICT (rule) DO NOTHING;
    SELECT c.next_block INTO v_from
    FROM ecliptix_purge_cursors c WHERE c.rule = p_rule
    FOR UPDATE SKIP LOCKED;
    IF v_from IS NULL THEN
        RETURN;
    END IF;
    IF v_from >= v_total THEN
        v_from := 0;
    END IF;
    -- Block numbers are 32-bit; a range past the last block is harmless.
    v_to := least(v_from + p_blocks, 4294967295);
    lo := format('(%s,0)', v_from)::tid;
    hi := format('(%s,0)', v_to)::tid;
    UPDATE ecliptix_purge_cursors c
    SET next_block = CASE WHEN v_to >= v_total THEN 0 ELSE v_to END
    WHERE c.rule = p_rule;
END;
$$;

-- Keep the cursor on the range it just read: that range still holds rows to
-- delete (the batch was full), so the next call reads it again.
CREATE OR REPLACE FUNCTION ecliptix_purge_window_again(p_rule text, p_lo tid) RETURNS void
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
BEGIN
    UPDATE ecliptix_purge_cursors c
    SET next_block = (p_lo::text::point)[0]::bigint
    WHERE c.rule = p_rule;
END;
$$;

-- ---------------------------------------------------------------------------
-- Rules
-- ---------------------------------------------------------------------------

-- Attempts, recovery checks, events and ended locks older than their
-- retention, oldest first, at most p_left->>table rows per table. Returns
-- rows deleted per table.
CREATE OR REPLACE FUNCTION ecliptix_purge_old_rows(p_left jsonb)
    RETURNS TABLE (table_name text, rows_deleted bigint)
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
DECLARE
    -- Never younger than a window that still counts the rows.
    v_attempts timestamptz := now() - greatest(
        ecliptix_limit_interval('attempt_retention_seconds'),
        ecliptix_limit_interval('login_failure_window_seconds'),
        ecliptix_limit_interval('membership_failure_window_seconds'),
        ecliptix_limit_interval('recovery_check_window_seconds'));
    v_events   timestamptz := now() - ecliptix_limit_interval('event_log_retention_seconds');
    v_locks    timestamptz := now() - ecliptix_limit_interval('ended_lock_retention_seconds');
    v_n        bigint;
BEGIN
    WITH d AS (SELECT a.ctid FROM login_attempts a WHERE a.attempted_at < v_attempts
               ORDER BY a.attempted_at LIMIT (p_left->>'login_attempts')::bigint
               FOR UPDATE SKIP LOCKED)
    DELETE FROM login_attempts t USING d WHERE t.ctid = d.ctid;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN QUERY SELECT 'login_attempts'::text, v_n;

    WITH d AS (SELECT a.ctid FROM membership_attempts a WHERE a.attempted_at < v_attempts
               ORDER BY a.attempted_at LIMIT (p_left->>'membership_attempts')::bigint
               FOR UPDATE SKIP LOCKED)
    DELETE FROM membership_attempts t USING d WHERE t.ctid = d.ctid;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN QUERY SELECT 'membership_attempts'::text, v_n;

    WITH d AS (SELECT c.ctid FROM recovery_eligibility_checks c WHERE c.checked_at < v_attempts
               ORDER BY c.checked_at LIMIT (p_left->>'recovery_eligibility_checks')::bigint
               FOR UPDATE SKIP LOCKED)
    DELETE FROM recovery_eligibility_checks t USING d WHERE t.ctid = d.ctid;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN QUERY SELECT 'recovery_eligibility_checks'::text, v_n;

    WITH d AS (SELECT e.ctid FROM event_log e WHERE e.created_at < v_events
               ORDER BY e.created_at LIMIT (p_left->>'event_log')::bigint
               FOR UPDATE SKIP LOCKED)
    DELETE FROM event_log t USING d WHERE t.ctid = d.ctid;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN QUERY SELECT 'event_log'::text, v_n;

    WITH d AS (SELECT l.ctid FROM login_lockouts l WHERE l.locked_until < v_locks
               ORDER BY l.locked_until LIMIT (p_left->>'login_lockouts')::bigint
               FOR UPDATE SKIP LOCKED)
    DELETE FROM login_lockouts t USING d WHERE t.ctid = d.ctid;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN QUERY SELECT 'login_lockouts'::text, v_n;

    WITH d AS (SELECT l.ctid FROM login_device_lockouts l WHERE l.locked_until < v_locks
               ORDER BY l.locked_until LIMIT (p_left->>'login_device_lockouts')::bigint
               FOR UPDATE SKIP LOCKED)
    DELETE FROM login_device_lockouts t USING d WHERE t.ctid = d.ctid;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN QUERY SELECT 'login_device_lockouts'::text, v_n;
END;
$$;

-- Soft-deleted rows deleted longer ago than their retention that nothing
-- references (children before parents), at most p_left->>table rows per
-- table. Devices and phones are left to the unreferenced rules, which cover
-- deleted ones too.
CREATE OR REPLACE FUNCTION ecliptix_purge_soft_deleted(p_left jsonb)
    RETURNS TABLE (table_name text, rows_deleted bigint)
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_cut timestamptz := now() - ecliptix_limit_interval('soft_deleted_retention_seconds');
    v_ids bigint[];
    v_n   bigint;
BEGIN
    WITH d AS (SELECT m.id FROM memberships m WHERE m.is_deleted AND m.updated_at < v_cut
               LIMIT (p_left->>'memberships')::bigint
               FOR UPDATE SKIP LOCKED)
    DELETE FROM memberships t USING d WHERE t.id = d.id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN QUERY SELECT 'memberships'::text, v_n;

    WITH d AS (SELECT l.phone_number_id, l.app_device_id FROM phone_number_devices l
               WHERE l.is_deleted AND l.updated_at < v_cut
               LIMIT (p_left->>'phone_number_devices')::bigint
               FOR UPDATE SKIP LOCKED)
    DELETE FROM phone_number_devices t USING d
    WHERE t.phone_number_id = d.phone_number_id AND t.app_device_id = d.app_device_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN QUERY SELECT 'phone_number_devices'::text, v_n;

    WITH d AS (SELECT a.id FROM membership_attempts a WHERE a.is_deleted AND a.updated_at < v_cut
               LIMIT (p_left->>'membership_attempts')::bigint
               FOR UPDATE SKIP LOCKED)
    DELETE FROM membership_attempts t USING d WHERE t.id = d.id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN QUERY SELECT 'membership_attempts'::text, v_n;

    WITH d AS (SELECT a.id FROM failed_otp_attempts a WHERE a.is_deleted AND a.updated_at < v_cut
               LIMIT (p_left->>'failed_otp_attempts')::bigint
               FOR UPDATE SKIP LOCKED)
    DELETE FROM failed_otp_attempts t USING d WHERE t.id = d.id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN QUERY SELECT 'failed_otp_attempts'::text, v_n;

    WITH d AS (SELECT r.id FROM otp_records r WHERE r.is_deleted AND r.updated_at < v_cut
                 AND NOT EXISTS (SELECT 1 FROM failed_otp_attempts a
                                 WHERE a.otp_unique_id = r.unique_id)
               LIMIT (p_left->>'otp_records')::bigint
               FOR UPDATE SKIP LOCKED)
    DELETE FROM otp_records t USING d WHERE t.id = d.id
      AND NOT EXISTS (SELECT 1 FROM failed_otp_attempts a WHERE a.otp_unique_id = t.unique_id);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN QUERY SELECT 'otp_records'::text, v_n;

    SELECT array_agg(f.id) INTO v_ids
    FROM (SELECT f.id FROM verification_flows f WHERE f.is_deleted AND f.updated_at < v_cut
          LIMIT (p_left->>'verification_flows')::bigint FOR UPDATE SKIP LOCKED) f;
    RETURN QUERY SELECT 'verification_flows'::text, ecliptix_purge_flows(v_ids);
END;
$$;

-- Delete the locked flows among p_ids that nothing references, checked with
-- a fresh snapshot. Returns how many.
CREATE OR REPLACE FUNCTION ecliptix_purge_flows(p_ids bigint[]) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_n bigint;
BEGIN
    DELETE FROM verification_flows f
    WHERE f.id = ANY (p_ids)
      AND NOT EXISTS (SELECT 1 FROM otp_records r WHERE r.flow_unique_id = f.unique_id)
      AND NOT EXISTS (SELECT 1 FROM failed_otp_attempts a WHERE a.flow_unique_id = f.unique_id)
      AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.verification_flow_id = f.unique_id);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END;
$$;

-- Flows that ended (expired, failed, or verified and past their validity -
-- all of which means expires_at has passed) longer ago than their retention
-- and that no membership was created from, with their failed attempts and
-- OTPs first, at most p_left->>table rows per table. Reads one block range
-- of verification_flows.
CREATE OR REPLACE FUNCTION ecliptix_purge_ended_flows(p_left jsonb, p_blocks bigint)
    RETURNS TABLE (table_name text, rows_deleted bigint)
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_cut   timestamptz := now() - ecliptix_limit_interval('ended_flow_retention_seconds');
    w       record;
    v_flows uuid[];
    v_ids   bigint[];
    v_failed bigint := 0;
    v_otps   bigint := 0;
    v_lim   bigint[] := ARRAY[(p_left->>'failed_otp_attempts')::bigint,
                              (p_left->>'otp_records')::bigint,
                              (p_left->>'verification_flows')::bigint];
BEGIN
    SELECT * INTO w FROM ecliptix_purge_window('ended_flows', 'verification_flows', p_blocks);
    IF w.lo IS NULL THEN
        RETURN;
    END IF;
    SELECT array_agg(f.unique_id) INTO v_flows
    FROM verification_flows f
    WHERE f.ctid >= w.lo AND f.ctid < w.hi AND f.expires_at < v_cut
      AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.verification_flow_id = f.unique_id);
    IF v_flows IS NULL THEN
        RETURN;
    END IF;

    WITH d AS (SELECT a.id FROM failed_otp_attempts a WHERE a.flow_unique_id = ANY (v_flows)
               LIMIT v_lim[1] FOR UPDATE SKIP LOCKED)
    DELETE FROM failed_otp_attempts t USING d WHERE t.id = d.id;
    GET DIAGNOSTICS v_failed = ROW_COUNT;

    WITH d AS (SELECT r.id FROM otp_records r WHERE r.flow_unique_id = ANY (v_flows)
                 AND NOT EXISTS (SELECT 1 FROM failed_otp_attempts a
                                 WHERE a.otp_unique_id = r.unique_id)
               LIMIT v_lim[2] FOR UPDATE SKIP LOCKED)
    DELETE FROM otp_records t USING d WHERE t.id = d.id
      AND NOT EXISTS (SELECT 1 FROM failed_otp_attempts a WHERE a.otp_unique_id = t.unique_id);
    GET DIAGNOSTICS v_otps = ROW_COUNT;

    SELECT array_agg(f.id) INTO v_ids
    FROM (SELECT f.id FROM verification_flows f
          WHERE f.unique_id = ANY (v_flows)
            AND NOT EXISTS (SELECT 1 FROM otp_records r WHERE r.flow_unique_id = f.unique_id)
            AND NOT EXISTS (SELECT 1 FROM failed_otp_attempts a
                            WHERE a.flow_unique_id = f.unique_id)
          LIMIT v_lim[3] FOR UPDATE SKIP LOCKED) f;

    IF v_failed >= v_lim[1] OR v_otps >= v_lim[2]
       OR coalesce(cardinality(v_ids), 0) >= v_lim[3] THEN
        PERFORM ecliptix_purge_window_again('ended_flows', w.lo);
    END IF;
    RETURN QUERY SELECT t.name, t.n FROM unnest(
        ARRAY['failed_otp_attempts', 'otp_records', 'verification_flows'],
        ARRAY[v_failed, v_otps, ecliptix_purge_flows(v_ids)]) AS t (name, n);
END;
$$;

-- Links older than the retention whose (phone, device) never became a
-- membership and has no flow: registrations abandoned (or an attacker's
-- devices), which would otherwise keep their device and phone for ever.
-- Reads one block range of phone_number_devices.
CREATE OR REPLACE FUNCTION ecliptix_purge_abandoned_links(p_limit bigint, p_blocks bigint)
    RETURNS bigint
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_cut timestamptz := now() - ecliptix_limit_interval('unreferenced_retention_seconds');
    w     record;
    v_ids tid[];
    v_n   bigint;
BEGIN
    SELECT * INTO w FROM ecliptix_purge_window('abandoned_links', 'phone_number_devices', p_blocks);
    IF w.lo IS NULL THEN
        RETURN 0;
    END IF;
    SELECT array_agg(l.ctid) INTO v_ids
    FROM (SELECT l.ctid FROM phone_number_devices l
          WHERE l.ctid >= w.lo AND l.ctid < w.hi
            AND l.created_at < v_cut AND l.updated_at < v_cut
            AND NOT ecliptix_link_in_use(l.phone_number_id, l.app_device_id)
          LIMIT p_limit FOR UPDATE SKIP LOCKED) l;
    DELETE FROM phone_number_devices l
    WHERE l.ctid = ANY (v_ids) AND NOT ecliptix_link_in_use(l.phone_number_id, l.app_device_id);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF coalesce(cardinality(v_ids), 0) >= p_limit THEN
        PERFORM ecliptix_purge_window_again('abandoned_links', w.lo);
    END IF;
    RETURN v_n;
END;
$$;

-- Whether a link's (phone, device) has a membership or a flow.
CREATE OR REPLACE FUNCTION ecliptix_link_in_use(p_phone_uid uuid, p_app_device_id uuid)
    RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path FROM CURRENT
AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM memberships m
                   WHERE m.phone_number_id = p_phone_uid AND m.app_device_id = p_app_device_id)
        OR EXISTS (SELECT 1 FROM verification_flows f
                   JOIN phone_numbers p ON p.id = f.phone_number_id
                   WHERE p.unique_id = p_phone_uid AND f.app_device_id = p_app_device_id);
END;
$$;

-- Devices older than the retention that no link, flow or membership
-- references. Reads one block range of app_devices.
CREATE OR REPLACE FUNCTION ecliptix_purge_unreferenced_devices(p_limit bigint, p_blocks bigint)
    RETURNS bigint
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_cut timestamptz := now() - ecliptix_limit_interval('unreferenced_retention_seconds');
    w     record;
    v_ids bigint[];
    v_n   bigint;
BEGIN
    SELECT * INTO w FROM ecliptix_purge_window('unreferenced_devices', 'app_devices', p_blocks);
    IF w.lo IS NULL THEN
        RETURN 0;
    END IF;
    SELECT array_agg(d.id) INTO v_ids
    FROM (SELECT d.id FROM app_devices d
          WHERE d.ctid >= w.lo AND d.ctid < w.hi
            AND d.created_at < v_cut AND d.updated_at < v_cut
            AND NOT ecliptix_device_in_use(d.unique_id)
          LIMIT p_limit FOR UPDATE SKIP LOCKED) d;
    DELETE FROM app_devices d WHERE d.id = ANY (v_ids) AND NOT ecliptix_device_in_use(d.unique_id);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF coalesce(cardinality(v_ids), 0) >= p_limit THEN
        PERFORM ecliptix_purge_window_again('unreferenced_devices', w.lo);
    END IF;
    RETURN v_n;
END;
$$;

-- Whether any link, flow or membership references the device.
CREATE OR REPLACE FUNCTION ecliptix_device_in_use(p_app_device_id uuid) RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path FROM CURRENT
AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM phone_number_devices l WHERE l.app_device_id = p_app_device_id)
        OR EXISTS (SELECT 1 FROM verification_flows f WHERE f.app_device_id = p_app_device_id)
        OR EXISTS (SELECT 1 FROM memberships m WHERE m.app_device_id = p_app_device_id);
END;
$$;

-- Phones older than the retention that no link, flow, OTP, membership or
-- membership attempt references (attempts age out on their own). Reads one
-- block range of phone_numbers.
CREATE OR REPLACE FUNCTION ecliptix_purge_unreferenced_phones(p_limit bigint, p_blocks bigint)
    RETURNS bigint
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_cut timestamptz := now() - ecliptix_limit_interval('unreferenced_retention_seconds');
    w     record;
    v_ids bigint[];
    v_n   bigint;
BEGIN
    SELECT * INTO w FROM ecliptix_purge_window('unreferenced_phones', 'phone_numbers', p_blocks);
    IF w.lo IS NULL THEN
        RETURN 0;
    END IF;
    SELECT array_agg(p.id) INTO v_ids
    FROM (SELECT p.id FROM phone_numbers p
          WHERE p.ctid >= w.lo AND p.ctid < w.hi
            AND p.created_at < v_cut AND p.updated_at < v_cut
            AND NOT ecliptix_phone_in_use(p.id, p.unique_id)
          LIMIT p_limit FOR UPDATE SKIP LOCKED) p;
    DELETE FROM phone_numbers p
    WHERE p.id = ANY (v_ids) AND NOT ecliptix_phone_in_use(p.id, p.unique_id);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF coalesce(cardinality(v_ids), 0) >= p_limit THEN
        PERFORM ecliptix_purge_window_again('unreferenced_phones', w.lo);
    END IF;
    RETURN v_n;
END;
$$;

-- Whether any link, flow, OTP, membership or membership attempt references
-- the phone (by id or unique id).
CREATE OR REPLACE FUNCTION ecliptix_phone_in_use(p_id bigint, p_unique_id uuid) RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path FROM CURRENT
AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM phone_number_devices l WHERE l.phone_number_id = p_unique_id)
        OR EXISTS (SELECT 1 FROM verification_flows f WHERE f.phone_number_id = p_id)
        OR EXISTS (SELECT 1 FROM otp_records r WHERE r.phone_number_id = p_id)
        OR EXISTS (SELECT 1 FROM memberships m WHERE m.phone_number_id = p_unique_id)
        OR EXISTS (SELECT 1 FROM membership_attempts a WHERE a.phone_number_id = p_unique_id);
END;
$$;

-- ---------------------------------------------------------------------------
-- The maintenance entry point
-- ---------------------------------------------------------------------------

-- Delete, in batches of at most p_batch_size rows per table, what the
-- retention rules say has ended (see the rules above); returns one row per
-- table it deleted rows from. Granted to maintenance roles only (see
-- ecliptix_grant_app_role), never to the application role.
-- What is left of each table's batch after the deletions counted so far:
-- {"table": rows, ...} for every table the purge deletes from.
CREATE OR REPLACE FUNCTION ecliptix_purge_budget(p_batch_size bigint, p_names text[],
    p_counts bigint[])
    RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE
    SET search_path FROM CURRENT
AS $$
BEGIN
    RETURN (SELECT jsonb_object_agg(t.name, greatest(0, p_batch_size - coalesce(
                       (SELECT sum(c.n) FROM unnest(p_names, p_counts) AS c (name, n)
                        WHERE c.name = t.name), 0)))
            FROM unnest(ARRAY['login_attempts', 'membership_attempts',
                              'recovery_eligibility_checks', 'event_log', 'login_lockouts',
                              'login_device_lockouts', 'memberships', 'phone_number_devices',
                              'failed_otp_attempts', 'otp_records', 'verification_flows',
                              'app_devices', 'phone_numbers']) AS t (name));
END;
$$;

CREATE OR REPLACE FUNCTION ecliptix_purge(p_batch_size int DEFAULT 5000)
    RETURNS TABLE (table_name text, rows_deleted bigint)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    -- Blocks of a large table one call reads per rule: about 8 rows per
    -- row it may delete, and at least 1 MB.
    v_blocks bigint;
    v_names  text[] := ARRAY[]::text[];
    v_counts bigint[] := ARRAY[]::bigint[];
    r        record;
BEGIN
    PERFORM ecliptix_require(p_batch_size, 'p_batch_size');
    IF p_batch_size < 1 THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('p_batch_size must be at least 1, got %s', p_batch_size);
    END IF;
    PERFORM ecliptix_require_read_committed('ecliptix_purge');
    v_blocks := greatest(128, p_batch_size / 8);

    -- Rules run in an order that lets one call finish a chain (a deleted
    -- membership frees its flow, a flow its link, a link its device and
    -- phone); each sees what the previous ones deleted (fresh snapshots) and
    -- gets what is left of each table's batch.
    FOR r IN SELECT * FROM ecliptix_purge_old_rows(
                 ecliptix_purge_budget(p_batch_size, v_names, v_counts)) LOOP
        v_names := v_names || r.table_name;
        v_counts := v_counts || r.rows_deleted;
    END LOOP;
    FOR r IN SELECT * FROM ecliptix_purge_soft_deleted(
                 ecliptix_purge_budget(p_batch_size, v_names, v_counts)) LOOP
        v_names := v_names || r.table_name;
        v_counts := v_counts || r.rows_deleted;
    END LOOP;
    FOR r IN SELECT * FROM ecliptix_purge_ended_flows(
                 ecliptix_purge_budget(p_batch_size, v_names, v_counts), v_blocks) LOOP
        v_names := v_names || r.table_name;
        v_counts := v_counts || r.rows_deleted;
    END LOOP;
    v_names := v_names || 'phone_number_devices'::text;
    v_counts := v_counts || ecliptix_purge_abandoned_links(
        (ecliptix_purge_budget(p_batch_size, v_names, v_counts)->>'phone_number_devices')::bigint,
        v_blocks);
    v_names := v_names || ARRAY['app_devices', 'phone_numbers'];
    v_counts := v_counts || ARRAY[ecliptix_purge_unreferenced_devices(p_batch_size, v_blocks),
                                  ecliptix_purge_unreferenced_phones(p_batch_size, v_blocks)];

    RETURN QUERY
        SELECT t.name, sum(t.n)::bigint
        FROM unnest(v_names, v_counts) WITH ORDINALITY AS t (name, n, ord)
        GROUP BY t.name
        HAVING sum(t.n) > 0
        ORDER BY min(t.ord);
END;
$$;

-- Least privilege: PUBLIC loses EXECUTE on every function created above (new
-- functions get it by default) and any table privilege; registered
-- maintenance roles keep (or, for a new function, get) EXECUTE on
-- ecliptix_purge. Only PUBLIC is revoked here.
SELECT ecliptix_apply_privileges();
