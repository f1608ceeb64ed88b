-- R__02: core functions of the Ecliptix database, and the internal helpers the
-- other repeatable scripts share (limit lookup, isolation check, advisory
-- locks, parameter validation). Re-runnable: every function is CREATE OR
-- REPLACE and pins the deployment schema with SET search_path FROM CURRENT.
-- Helpers are prefixed ecliptix_ so they never collide with contract names.

-- Pin the deployment schema (see lib/pin_search_path.sql).
\ir lib/pin_search_path.sql

-- ---------------------------------------------------------------------------
-- Internal helpers
-- ---------------------------------------------------------------------------

-- The updated_at trigger function comes from V001; pin it to the same path.
ALTER FUNCTION ecliptix_set_updated_at() SET search_path FROM CURRENT;

-- A tunable number from ecliptix_limits; a missing name is a deployment bug.
CREATE OR REPLACE FUNCTION ecliptix_limit(p_name text) RETURNS integer
    LANGUAGE plpgsql STABLE
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_value integer;
BEGIN
    SELECT l.value INTO v_value FROM ecliptix_limits l WHERE l.name = p_name;
    IF v_value IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'P0002',
            MESSAGE = format('ecliptix_limits has no row named %L', p_name);
    END IF;
    RETURN v_value;
END;
$$;

-- A limit that is a duration in seconds, as an interval.
CREATE OR REPLACE FUNCTION ecliptix_limit_interval(p_name text) RETURNS interval
    LANGUAGE plpgsql STABLE
    SET search_path FROM CURRENT
AS $$
BEGIN
    RETURN make_interval(secs => ecliptix_limit(p_name));
END;
$$;

-- Functions whose guarantees rely on row/advisory locks refuse to run at any
-- isolation level other than READ COMMITTED instead of silently weakening.
CREATE OR REPLACE FUNCTION ecliptix_require_read_committed(p_function text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_level text := current_setting('transaction_isolation');
BEGIN
    IF v_level <> 'read committed' THEN
        RAISE EXCEPTION USING ERRCODE = '25000',
            MESSAGE = format('%s must run at READ COMMITTED isolation (its concurrency '
                             'guarantees rely on locks), but the transaction is %s',
                             p_function, upper(v_level)),
            HINT = 'Call it in a READ COMMITTED transaction (PostgreSQL''s default).';
    END IF;
END;
$$;

-- Transaction-scoped advisory lock on (kind, key). Kinds: 1 = membership
-- creation per (number, device), 2 = login per number or (number, device),
-- 3 = recovery-eligibility checks per number, 11 = flow creation per number,
-- 12 = failed-check budget per number. The first int keeps these apart from
-- any other user of advisory locks in the database.
CREATE OR REPLACE FUNCTION ecliptix_lock(p_kind integer, p_key text) RETURNS void
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1164142848 + p_kind, hashtext(p_key));
END;
$$;

-- Required parameter: NULL raises 22004 naming the parameter.
CREATE OR REPLACE FUNCTION ecliptix_require(p_value anyelement, p_param text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path FROM CURRENT
AS $$
BEGIN
    IF p_value IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004',
            MESSAGE = format('%s is required and must not be NULL', p_param);
    END IF;
END;
$$;

-- A phone number: required, 1..18 characters.
CREATE OR REPLACE FUNCTION ecliptix_check_phone_number(p_value text, p_param text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM ecliptix_require(p_value, p_param);
    IF p_value = '' THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('%s must not be empty', p_param);
    END IF;
    IF length(p_value) > 18 THEN
        RAISE EXCEPTION USING ERRCODE = '22001',
            MESSAGE = format('%s must be at most 18 characters, got %s: %L',
                             p_param, length(p_value), p_value);
    END IF;
END;
$$;

-- A number for a new phone row: E.164 ('+', then 8 to 15 digits, the first
-- not 0). Rows that exist already are not held to it (see
-- ensure_phone_number), so this is not part of ecliptix_check_phone_number.
CREATE OR REPLACE FUNCTION ecliptix_is_e164(p_value text) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE
    SET search_path FROM CURRENT
AS $$
BEGIN
    RETURN p_value ~ '^\+[1-9][0-9]{7,14}$';
END;
$$;

CREATE OR REPLACE FUNCTION ecliptix_check_e164(p_value text, p_param text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path FROM CURRENT
AS $$
BEGIN
    IF NOT ecliptix_is_e164(p_value) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('%s must be an E.164 number (''+'', then 8 to 15 digits, the '
                             'first not 0), got %L', p_param, p_value),
            HINT = 'Send the number in international form, e.g. +14155550123.';
    END IF;
END;
$$;

-- A region: NULL (no region) or two capital letters.
CREATE OR REPLACE FUNCTION ecliptix_check_region(p_value text, p_param text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path FROM CURRENT
AS $$
BEGIN
    IF p_value IS NOT NULL AND p_value !~ '^[A-Z]{2}$' THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('%s must be two capital letters (ISO 3166-1 alpha-2) or NULL, got %L',
                             p_param, p_value);
    END IF;
END;
$$;

-- A required value from a fixed set.
CREATE OR REPLACE FUNCTION ecliptix_check_one_of(p_value text, p_param text, p_allowed text[])
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM ecliptix_require(p_value, p_param);
    IF NOT (p_value = ANY (p_allowed)) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('%s must be one of %s, got %L',
                             p_param, array_to_string(p_allowed, ', '), p_value);
    END IF;
END;
$$;

-- A required, non-empty text of at most p_max characters.
CREATE OR REPLACE FUNCTION ecliptix_check_text(p_value text, p_param text, p_max integer)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM ecliptix_require(p_value, p_param);
    IF p_value = '' THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('%s must not be empty', p_param);
    END IF;
    IF length(p_value) > p_max THEN
        RAISE EXCEPTION USING ERRCODE = '22001',
            MESSAGE = format('%s must be at most %s characters, got %s',
                             p_param, p_max, length(p_value));
    END IF;
END;
$$;

-- The non-deleted phone with this number and region (NULL region matches
-- NULL): its id, or NULL.
CREATE OR REPLACE FUNCTION ecliptix_find_phone(p_phone_number text, p_region text)
    RETURNS bigint
    LANGUAGE plpgsql STABLE
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_id bigint;
BEGIN
    SELECT p.id INTO v_id
    FROM phone_numbers p
    WHERE p.phone_number = p_phone_number
      AND p.region IS NOT DISTINCT FROM p_region
      AND NOT p.is_deleted;
    RETURN v_id;
END;
$$;

-- One audit row in event_log. Callers pass ids and counts only, never a
-- hash, key or code.
CREATE OR REPLACE FUNCTION ecliptix_audit(p_event_type text, p_message text) RETURNS void
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
BEGIN
    INSERT INTO event_log (event_type, message) VALUES (p_event_type, p_message);
END;
$$;

-- A known device of a number: a device with a non-deleted membership on a
-- phone row with that number (any region). Known devices keep budgets of
-- their own, so a stranger using up a number's budget never locks the owner
-- out on the owner's device. Found from the device's memberships (indexed
-- by app_device_id; a new device has none).
CREATE OR REPLACE FUNCTION ecliptix_is_known_device(p_phone_number text, p_app_device_id uuid)
    RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path FROM CURRENT
AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1
        FROM memberships m
        JOIN phone_numbers p ON p.unique_id = m.phone_number_id
        WHERE m.app_device_id = p_app_device_id AND NOT m.is_deleted
          AND p.phone_number = p_phone_number);
END;
$$;

-- ---------------------------------------------------------------------------
-- Privileges: who may call what
-- ---------------------------------------------------------------------------
-- The contract functions are SECURITY DEFINER: they run as their owner (the
-- role that deployed them) with the pinned search_path, so an application
-- role needs EXECUTE on them and nothing else - no table privilege at all.
-- PUBLIC gets nothing (see ecliptix_apply_privileges, run at the end of every
-- repeatable script). A DBA gives an application role its rights once with
--     SELECT * FROM ecliptix_grant_app_role('app_user');
-- or, with a maintenance role that may run ecliptix_purge (and nothing else),
--     SELECT * FROM ecliptix_grant_app_role('app_user', 'ecliptix_maintenance');
-- which is idempotent and recorded in ecliptix_app_roles and
-- ecliptix_maintenance_roles, so that a function added or re-created by a
-- later version of these scripts is granted to the registered roles when the
-- script runs. The application role never gets ecliptix_purge: a caller who
-- could purge could also erase the audit trail of its own attack.

-- Roles registered by ecliptix_grant_app_role (by name, as GRANT records them
-- in a dump). Created here, not in a versioned script, so that a database
-- deployed before it existed gets it on the next migrate.
CREATE TABLE IF NOT EXISTS ecliptix_app_roles (
    role_name  name        PRIMARY KEY,
    granted_at timestamptz NOT NULL DEFAULT now()
);

-- Maintenance roles registered by ecliptix_grant_app_role's second argument.
CREATE TABLE IF NOT EXISTS ecliptix_maintenance_roles (
    role_name  name        PRIMARY KEY,
    granted_at timestamptz NOT NULL DEFAULT now()
);

-- The contract functions an application role may execute.
CREATE OR REPLACE FUNCTION ecliptix_contract_functions() RETURNS name[]
    LANGUAGE plpgsql IMMUTABLE
    SET search_path FROM CURRENT
AS $$
BEGIN
    RETURN ARRAY[
        'get_phone_number', 'register_app_device_if_not_exists', 'ensure_phone_number',
        'verify_phone_for_secret_key_recovery', 'get_full_flow_state',
        'initiate_verification_flow', 'request_resend_otp', 'insert_otp_record',
        'update_otp_status', 'update_verification_flow_status', 'expire_associated_otp',
        'log_login_attempt', 'log_membership_attempt', 'create_membership',
        'update_membership_secure_key', 'login_membership',
        'verify_otp']::name[];
END;
$$;

-- The SECURITY DEFINER functions a maintenance role may execute (and an
-- application role may not).
CREATE OR REPLACE FUNCTION ecliptix_maintenance_functions() RETURNS name[]
    LANGUAGE plpgsql IMMUTABLE
    SET search_path FROM CURRENT
AS $$
BEGIN
    RETURN ARRAY['ecliptix_purge']::name[];
END;
$$;

-- Grant one role USAGE on the schema and EXECUTE on every function named in
-- p_functions that exists in it; returns what was granted.
CREATE OR REPLACE FUNCTION ecliptix_grant_functions(p_role name, p_functions name[])
    RETURNS TABLE (privilege text, object_type text, object_name text)
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_fn regprocedure;
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), p_role);
    RETURN QUERY SELECT 'USAGE'::text, 'schema'::text, current_schema()::text;
    FOR v_fn IN
        SELECT p.oid::regprocedure FROM pg_proc p
        WHERE p.pronamespace = current_schema()::regnamespace
          AND p.proname = ANY (p_functions)
        ORDER BY p.proname, p.oid
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', v_fn, p_role);
        RETURN QUERY SELECT 'EXECUTE'::text, 'function'::text, v_fn::text;
    END LOOP;
END;
$$;

-- Revoke from one role EXECUTE on the functions named in p_functions, then
-- USAGE on the schema; returns what was revoked.
CREATE OR REPLACE FUNCTION ecliptix_revoke_functions(p_role name, p_functions name[])
    RETURNS TABLE (privilege text, object_type text, object_name text)
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_fn regprocedure;
BEGIN
    FOR v_fn IN
        SELECT p.oid::regprocedure FROM pg_proc p
        WHERE p.pronamespace = current_schema()::regnamespace
          AND p.proname = ANY (p_functions)
        ORDER BY p.proname, p.oid
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM %I', v_fn, p_role);
        RETURN QUERY SELECT 'EXECUTE'::text, 'function'::text, v_fn::text;
    END LOOP;
    EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM %I', current_schema(), p_role);
    RETURN QUERY SELECT 'USAGE'::text, 'schema'::text, current_schema()::text;
END;
$$;

-- Grant one role EXECUTE on every contract function that exists in this
-- schema, and USAGE on the schema; returns what was granted.
CREATE OR REPLACE FUNCTION ecliptix_grant_to(p_role name)
    RETURNS TABLE (privilege text, object_type text, object_name text)
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
BEGIN
    RETURN QUERY SELECT * FROM ecliptix_grant_functions(p_role, ecliptix_contract_functions());
END;
$$;

-- p_role (named p_param in messages) is an existing role, not PUBLIC, and
-- not the owner of the Ecliptix objects or a member of it.
CREATE OR REPLACE FUNCTION ecliptix_check_grantee(p_role name, p_param text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_owner name;
BEGIN
    PERFORM ecliptix_require(p_role, p_param);
    IF p_role = 'public' THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('%s must be a role, not PUBLIC: PUBLIC must not execute the '
                             'Ecliptix functions', p_param);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = p_role) THEN
        RAISE EXCEPTION USING ERRCODE = '42704',
            MESSAGE = format('%s: role %I does not exist', p_param, p_role),
            HINT = format('Create it first, e.g. CREATE ROLE %I LOGIN', p_role);
    END IF;
    SELECT pg_get_userbyid(p.proowner) INTO v_owner
    FROM pg_proc p
    WHERE p.oid = 'ecliptix_contract_functions()'::regprocedure;
    IF pg_has_role(p_role, v_owner, 'USAGE') THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('%s %I is the owner %I of the Ecliptix objects, a member of it '
                             'or a superuser, and would keep direct access to every table',
                             p_param, p_role, v_owner),
            HINT = 'Use a separate role that is not a member of the owner role.';
    END IF;
END;
$$;

-- The checks shared by grant and revoke: p_role is an existing role that
-- may hold application rights.
CREATE OR REPLACE FUNCTION ecliptix_check_app_role(p_role name) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM ecliptix_check_grantee(p_role, 'p_role');
END;
$$;

-- Refused while PUBLIC or the role itself may CREATE in this schema: whoever
-- can create objects here could shadow a helper that the SECURITY DEFINER
-- functions call, and run code as their owner.
CREATE OR REPLACE FUNCTION ecliptix_check_no_create(p_role name) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path FROM CURRENT
AS $$
BEGIN
    IF has_schema_privilege('public', current_schema(), 'CREATE')
       OR has_schema_privilege(p_role, current_schema(), 'CREATE') THEN
        RAISE EXCEPTION USING ERRCODE = '42501',
            MESSAGE = format('refusing to grant: %s may CREATE in schema %I, where the SECURITY '
                             'DEFINER Ecliptix functions resolve their helpers',
                             CASE WHEN has_schema_privilege('public', current_schema(), 'CREATE')
                                  THEN 'PUBLIC' ELSE quote_ident(p_role) END,
                             current_schema()),
            HINT = format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC, %I', current_schema(), p_role);
    END IF;
END;
$$;

-- An application role and a maintenance role stay apart: neither may be, or
-- inherit, the other, or the application could run ecliptix_purge.
CREATE OR REPLACE FUNCTION ecliptix_check_roles_apart(p_app_role name, p_maintenance_role name)
    RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path FROM CURRENT
AS $$
BEGIN
    IF p_app_role = p_maintenance_role
       OR pg_has_role(p_app_role, p_maintenance_role, 'USAGE') THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('p_maintenance_role %I would let the application role %I run '
                             'ecliptix_purge (it is that role, or %I is a member of it)',
                             p_maintenance_role, p_app_role, p_app_role),
            HINT = 'Use a maintenance role that the application role is not a member of.';
    END IF;
END;
$$;

-- Give an application role what it needs and nothing more: USAGE on this
-- schema and EXECUTE on the contract functions; no table privilege.
-- With p_maintenance_role, also give that role USAGE and EXECUTE on
-- ecliptix_purge only (p_role may then be NULL to register only it).
-- Idempotent.
DROP FUNCTION IF EXISTS ecliptix_grant_app_role(name);
CREATE OR REPLACE FUNCTION ecliptix_grant_app_role(
    p_role name, p_maintenance_role name DEFAULT NULL)
    RETURNS TABLE (privilege text, object_type text, object_name text)
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_role name;
BEGIN
    IF p_role IS NOT NULL OR p_maintenance_role IS NULL THEN
        PERFORM ecliptix_check_app_role(p_role);
        PERFORM ecliptix_check_no_create(p_role);
        FOR v_role IN SELECT m.role_name FROM ecliptix_maintenance_roles m
                      WHERE EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = m.role_name) LOOP
            PERFORM ecliptix_check_roles_apart(p_role, v_role);
        END LOOP;
    END IF;
    IF p_maintenance_role IS NOT NULL THEN
        PERFORM ecliptix_check_grantee(p_maintenance_role, 'p_maintenance_role');
        PERFORM ecliptix_check_no_create(p_maintenance_role);
        FOR v_role IN SELECT a.role_name FROM ecliptix_app_roles a
                      WHERE EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = a.role_name)
                      UNION SELECT p_role WHERE p_role IS NOT NULL LOOP
            PERFORM ecliptix_check_roles_apart(v_role, p_maintenance_role);
        END LOOP;
    END IF;

    IF p_role IS NOT NULL THEN
        INSERT INTO ecliptix_app_roles AS a (role_name) VALUES (p_role)
        ON CONFLICT (role_name) DO NOTHING;
        RETURN QUERY SELECT * FROM ecliptix_grant_to(p_role);
    END IF;
    IF p_maintenance_role IS NOT NULL THEN
        INSERT INTO ecliptix_maintenance_roles AS m (role_name) VALUES (p_maintenance_role)
        ON CONFLICT (role_name) DO NOTHING;
        RETURN QUERY SELECT * FROM ecliptix_grant_functions(p_maintenance_role,
                                                            ecliptix_maintenance_functions());
    END IF;
END;
$$;

-- Undo ecliptix_grant_app_role: EXECUTE on the contract functions and USAGE
-- on the schema are revoked and the role is no longer registered; the same
-- for p_maintenance_role and ecliptix_purge (p_role may then be NULL).
DROP FUNCTION IF EXISTS ecliptix_revoke_app_role(name);
CREATE OR REPLACE FUNCTION ecliptix_revoke_app_role(
    p_role name, p_maintenance_role name DEFAULT NULL)
    RETURNS TABLE (privilege text, object_type text, object_name text)
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_role  name;
    v_param text;
    v_fns   name[];
BEGIN
    IF p_role IS NULL AND p_maintenance_role IS NULL THEN
        PERFORM ecliptix_require(p_role, 'p_role');
    END IF;
    FOR v_role, v_param, v_fns IN
        SELECT r.role, r.param, r.fns FROM (VALUES
            (1, p_role, 'p_role', ecliptix_contract_functions()),
            (2, p_maintenance_role, 'p_maintenance_role', ecliptix_maintenance_functions()))
            AS r (ord, role, param, fns)
        WHERE r.role IS NOT NULL ORDER BY r.ord
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = v_role) THEN
            RAISE EXCEPTION USING ERRCODE = '42704',
                MESSAGE = format('%s: role %I does not exist', v_param, v_role);
        END IF;
        IF v_param = 'p_role' THEN
            DELETE FROM ecliptix_app_roles a WHERE a.role_name = v_role;
        ELSE
            DELETE FROM ecliptix_maintenance_roles m WHERE m.role_name = v_role;
        END IF;
        RETURN QUERY SELECT * FROM ecliptix_revoke_functions(v_role, v_fns);
    END LOOP;
END;
$$;

-- Run at the end of every repeatable script (and safe to run any time):
-- PUBLIC loses every privilege on the Ecliptix functions (contract and
-- ecliptix_ helpers, including the V001 trigger function), tables and their
-- identity sequences; each registered application role that still exists is
-- granted the contract functions again, and each registered maintenance role
-- ecliptix_purge, so a function that a script added or re-created is
-- covered. No role's grant is ever revoked here.
CREATE OR REPLACE FUNCTION ecliptix_apply_privileges() RETURNS void
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_fn    regprocedure;
    v_table regclass;
    v_seq   text;
    v_role  name;
BEGIN
    FOR v_fn IN
        SELECT p.oid::regprocedure FROM pg_proc p
        WHERE p.pronamespace = current_schema()::regnamespace
          AND (p.proname = ANY (ecliptix_contract_functions())
               OR p.proname LIKE 'ecliptix\_%')
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', v_fn);
    END LOOP;

    FOR v_table IN
        SELECT c.oid::regclass FROM pg_class c
        WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
          AND c.relname IN ('app_devices', 'phone_numbers', 'phone_number_devices',
                            'verification_flows', 'otp_records', 'failed_otp_attempts',
                            'memberships', 'login_attempts', 'membership_attempts',
                            'event_log', 'ecliptix_limits', 'login_lockouts',
                            'ecliptix_app_roles', 'ecliptix_maintenance_roles',
                            'login_device_lockouts', 'recovery_eligibility_checks',
                            'ecliptix_purge_cursors')
    LOOP
        EXECUTE format('REVOKE ALL ON TABLE %s FROM PUBLIC', v_table);
        FOR v_seq IN
            SELECT s.oid::regclass::text FROM pg_class s
            JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
            WHERE s.relkind = 'S' AND d.refobjid = v_table AND d.deptype IN ('a', 'i')
        LOOP
            EXECUTE format('REVOKE ALL ON SEQUENCE %s FROM PUBLIC', v_seq);
        END LOOP;
    END LOOP;

    IF has_schema_privilege('public', current_schema(), 'CREATE') THEN
        RAISE WARNING USING
            MESSAGE = format('PUBLIC may CREATE in schema %I, where the SECURITY DEFINER Ecliptix '
                             'functions resolve their helpers', current_schema()),
            HINT = format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC', current_schema());
    END IF;

    FOR v_role IN
        SELECT a.role_name FROM ecliptix_app_roles a
        WHERE EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = a.role_name)
        ORDER BY a.role_name
    LOOP
        PERFORM ecliptix_grant_to(v_role);
    END LOOP;
    FOR v_role IN
        SELECT m.role_name FROM ecliptix_maintenance_roles m
        WHERE EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = m.role_name)
        ORDER BY m.role_name
    LOOP
        PERFORM ecliptix_grant_functions(v_role, ecliptix_maintenance_functions());
    END LOOP;
END;
$$;

-- ---------------------------------------------------------------------------
-- Contract functions
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION get_phone_number(p_phone_unique_id uuid)
    RETURNS TABLE (phone_number varchar, region varchar, unique_id uuid)
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM ecliptix_require(p_phone_unique_id, 'p_phone_unique_id');
    RETURN QUERY
        SELECT p.phone_number, p.region, p.unique_id
        FROM phone_numbers p
        WHERE p.unique_id = p_phone_unique_id AND NOT p.is_deleted;
END;
$$;

CREATE OR REPLACE FUNCTION register_app_device_if_not_exists(
    p_app_instance_id uuid, p_device_id uuid, p_device_type int)
    RETURNS TABLE (unique_id uuid, status int)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_id      uuid;
    v_deleted boolean;
BEGIN
    PERFORM ecliptix_require(p_app_instance_id, 'p_app_instance_id');
    PERFORM ecliptix_require(p_device_id, 'p_device_id');
    PERFORM ecliptix_require(p_device_type, 'p_device_type');
    PERFORM ecliptix_require_read_committed('register_app_device_if_not_exists');

    -- device_id is unique over all rows: the insert either wins or waits for
    -- the row that exists (committed or concurrently being committed).
    INSERT INTO app_devices AS d (app_instance_id, device_id, device_type)
    VALUES (p_app_instance_id, p_device_id, p_device_type)
    ON CONFLICT ON CONSTRAINT uq_app_devices_device_id DO NOTHING
    RETURNING d.unique_id INTO v_id;
    IF v_id IS NOT NULL THEN
        RETURN QUERY SELECT v_id, 2;
        RETURN;
    END IF;

    -- Exists: lock it, so only one caller restores a soft-deleted row.
    SELECT d.unique_id, d.is_deleted INTO v_id, v_deleted
    FROM app_devices d
    WHERE d.device_id = p_device_id
    FOR UPDATE;

    IF v_deleted THEN
        UPDATE app_devices d
        SET is_deleted = false,
            app_instance_id = p_app_instance_id,
            device_type = p_device_type
        WHERE d.device_id = p_device_id;
        RETURN QUERY SELECT v_id, 2;
    ELSE
        RETURN QUERY SELECT v_id, 1;
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION ensure_phone_number(
    p_phone_number varchar, p_region varchar, p_app_device_id uuid DEFAULT NULL)
    RETURNS TABLE (unique_id uuid, outcome text, success boolean, message text)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_phone_id     bigint;
    v_phone_uid    uuid;
    v_created      boolean := false;
    v_device_ok    boolean := false;
    v_link_deleted boolean;
    v_e164         boolean;
BEGIN
    PERFORM ecliptix_check_phone_number(p_phone_number, 'p_phone_number');
    PERFORM ecliptix_check_region(p_region, 'p_region');
    PERFORM ecliptix_require_read_committed('ensure_phone_number');

    -- New rows take E.164 numbers only; a row that exists already (from
    -- before version 2) is found and used as it is.
    v_e164 := ecliptix_is_e164(p_phone_number);
    IF NOT v_e164 AND ecliptix_find_phone(p_phone_number, p_region) IS NULL THEN
        PERFORM ecliptix_check_e164(p_phone_number, 'p_phone_number');
    END IF;

    -- One non-deleted phone per (number, region): concurrent callers all
    -- land on the unique index; exactly one inserts (and never a number
    -- that is not E.164, even if the old row went away meanwhile).
    INSERT INTO phone_numbers AS p (phone_number, region)
    SELECT p_phone_number, p_region
    WHERE v_e164
    ON CONFLICT (phone_number, region) WHERE NOT is_deleted DO NOTHING
    RETURNING p.id INTO v_phone_id;
    v_created := v_phone_id IS NOT NULL;

    -- Lock the phone row: linking (and the primary decision) is serialized
    -- per phone. NO KEY UPDATE does not block foreign-key checks.
    SELECT p.id, p.unique_id INTO v_phone_id, v_phone_uid
    FROM phone_numbers p
    WHERE p.phone_number = p_phone_number
      AND p.region IS NOT DISTINCT FROM p_region
      AND NOT p.is_deleted
    FOR NO KEY UPDATE;
    IF v_phone_id IS NULL THEN
        -- Only possible if the row was deleted between the two statements.
        RAISE EXCEPTION USING ERRCODE = '40001',
            MESSAGE = 'ensure_phone_number: phone row was deleted concurrently, retry';
    END IF;

    IF p_app_device_id IS NULL THEN
        IF v_created THEN
            RETURN QUERY SELECT v_phone_uid, 'created'::text, true, 'Phone number created'::text;
        ELSE
            RETURN QUERY SELECT v_phone_uid, 'exists'::text, true, 'Phone number exists'::text;
        END IF;
        RETURN;
    END IF;

    SELECT true INTO v_device_ok
    FROM app_devices d
    WHERE d.unique_id = p_app_device_id AND NOT d.is_deleted
    FOR KEY SHARE;

    IF NOT coalesce(v_device_ok, false) THEN
        IF v_created THEN
            RETURN QUERY SELECT v_phone_uid, 'created_but_invalid_app_device'::text, false,
                'Phone number created, but the app device does not exist or is deleted'::text;
        ELSE
            RETURN QUERY SELECT v_phone_uid, 'existing_but_invalid_app_device'::text, false,
                'Phone number exists, but the app device does not exist or is deleted'::text;
        END IF;
        RETURN;
    END IF;

    SELECT l.is_deleted INTO v_link_deleted
    FROM phone_number_devices l
    WHERE l.phone_number_id = v_phone_uid AND l.app_device_id = p_app_device_id
    FOR UPDATE;

    IF NOT FOUND THEN
        INSERT INTO phone_number_devices (phone_number_id, app_device_id, is_primary)
        VALUES (v_phone_uid, p_app_device_id,
                NOT EXISTS (SELECT 1 FROM phone_number_devices o
                            WHERE o.phone_number_id = v_phone_uid AND NOT o.is_deleted));
    ELSIF v_link_deleted THEN
        UPDATE phone_number_devices l
        SET is_deleted = false,
            is_primary = NOT EXISTS (SELECT 1 FROM phone_number_devices o
                                     WHERE o.phone_number_id = v_phone_uid
                                       AND o.app_device_id <> p_app_device_id
                                       AND NOT o.is_deleted)
        WHERE l.phone_number_id = v_phone_uid AND l.app_device_id = p_app_device_id;
    END IF;

    IF v_created THEN
        RETURN QUERY SELECT v_phone_uid, 'created_and_associated'::text, true,
            'Phone number created and associated with the app device'::text;
    ELSE
        RETURN QUERY SELECT v_phone_uid, 'associated'::text, true,
            'Phone number associated with the app device'::text;
    END IF;
END;
$$;

-- Version 1's eligibility rules, without the budget.
CREATE OR REPLACE FUNCTION ecliptix_recovery_eligibility(p_phone_number text, p_region text)
    RETURNS TABLE (success boolean, message text, outcome text, phone_number_id uuid)
    LANGUAGE plpgsql STABLE
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_phone_uid uuid;
    v_found     boolean := false;
    v_key       bytea;
BEGIN
    SELECT p.unique_id INTO v_phone_uid
    FROM phone_numbers p
    WHERE p.id = ecliptix_find_phone(p_phone_number, p_region);
    IF v_phone_uid IS NULL THEN
        RETURN QUERY SELECT false, 'Phone number not found'::text, 'phone_not_found'::text,
            NULL::uuid;
        RETURN;
    END IF;

    SELECT true, m.secure_key INTO v_found, v_key
    FROM memberships m
    WHERE m.phone_number_id = v_phone_uid AND NOT m.is_deleted
    ORDER BY m.created_at DESC, m.id DESC
    LIMIT 1;
    IF NOT coalesce(v_found, false) THEN
        RETURN QUERY SELECT false, 'No membership found for this phone number'::text,
            'membership_not_found'::text, v_phone_uid;
    ELSIF v_key IS NULL OR length(v_key) = 0 THEN
        RETURN QUERY SELECT false, 'The membership has no secure key'::text,
            'no_secure_key'::text, v_phone_uid;
    ELSE
        RETURN QUERY SELECT true, 'Phone number is eligible for secret key recovery'::text,
            'eligible_for_recovery'::text, v_phone_uid;
    END IF;
END;
$$;

-- Version 2: at most recovery_checks_per_window checks per number (whatever
-- the region) within recovery_check_window_seconds are evaluated; past that
-- the outcome is rate_limited and nothing is looked up. Refusals are not
-- counted, so a client that retries now and then gets through once the
-- window moves on. Every check writes one event_log row.
CREATE OR REPLACE FUNCTION verify_phone_for_secret_key_recovery(
    p_phone_number varchar, p_region varchar DEFAULT NULL)
    RETURNS TABLE (success boolean, message text, outcome text, phone_number_id uuid)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    v_window  interval := ecliptix_limit_interval('recovery_check_window_seconds');
    v_limit   integer := ecliptix_limit('recovery_checks_per_window');
    v_count   bigint;
    v_oldest  timestamptz;
    v_minutes bigint;
    r         record;
BEGIN
    PERFORM ecliptix_check_phone_number(p_phone_number, 'p_phone_number');
    PERFORM ecliptix_check_region(p_region, 'p_region');
    PERFORM ecliptix_require_read_committed('verify_phone_for_secret_key_recovery');

    -- Counting and recording are serialized per number.
    PERFORM ecliptix_lock(3, p_phone_number);
    SELECT count(*), min(c.checked_at) INTO v_count, v_oldest
    FROM (SELECT c.checked_at FROM recovery_eligibility_checks c
          WHERE c.phone_number = p_phone_number AND c.checked_at > now() - v_window
          ORDER BY c.checked_at DESC
          LIMIT v_limit) c;

    IF v_count >= v_limit THEN
        -- The wait is until the oldest of the newest limit checks leaves the window.
        v_minutes := greatest(1, ceil(extract(epoch FROM
                         (v_oldest + v_window - greatest(now(), v_oldest))) / 60));
        PERFORM ecliptix_audit('recovery_eligibility_check', format(
            'number=%L region=%L outcome=rate_limited checks_in_window=%s limit=%s',
            p_phone_number, p_region, v_count, v_limit));
        RETURN QUERY SELECT false,
            format('Too many recovery checks for this number; try again in %s minutes',
                   v_minutes),
            'rate_limited'::text, NULL::uuid;
        RETURN;
    END IF;

    SELECT * INTO r FROM ecliptix_recovery_eligibility(p_phone_number, p_region);
    INSERT INTO recovery_eligibility_checks (phone_number, checked_at, outcome)
    VALUES (p_phone_number, now(), r.outcome);
    PERFORM ecliptix_audit('recovery_eligibility_check', format(
        'number=%L region=%L phone_number_id=%s outcome=%s checks_in_window=%s limit=%s',
        p_phone_number, p_region, coalesce(r.phone_number_id::text, 'none'), r.outcome,
        v_count + 1, v_limit));
    IF v_count + 1 = v_limit THEN
        PERFORM ecliptix_audit('recovery_check_budget_exhausted', format(
            'number=%L checks_in_window=%s limit=%s window_seconds=%s',
            p_phone_number, v_count + 1, v_limit, extract(epoch FROM v_window)::bigint));
    END IF;
    RETURN QUERY SELECT r.success, r.message, r.outcome, r.phone_number_id;
END;
$$;

-- Least privilege: PUBLIC loses EXECUTE on every function created above (new
-- functions get it by default) and any table privilege; roles registered with
-- ecliptix_grant_app_role keep (or, for a new function, get) EXECUTE on the
-- contract functions. Only PUBLIC is revoked here, never an app role.
SELECT ecliptix_apply_privileges();
