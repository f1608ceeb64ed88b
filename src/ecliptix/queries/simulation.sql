-- Simulated time for scratch databases: moving every stored time back is the
-- same as time passing (the contract keeps all time-dependent state in
-- timestamptz columns of the schema's tables).

-- name: shift_time
-- Every timestamptz column of every table of the current schema moves back by
-- the interval in the setting ecliptix_sim.shift (set it first, in the same
-- session). updated_at is assigned too, so the trigger leaves it as moved.
DO $shift$
DECLARE
    v_by interval := current_setting('ecliptix_sim.shift')::interval;
    v_table record;
BEGIN
    FOR v_table IN
        SELECT c.table_name,
               string_agg(format('%1$I = %1$I - %2$L::interval', c.column_name, v_by), ', ')
                   AS sets
        FROM information_schema.columns c
        JOIN information_schema.tables t
          ON t.table_schema = c.table_schema AND t.table_name = c.table_name
        WHERE c.table_schema = current_schema()
          AND t.table_type = 'BASE TABLE'
          AND c.data_type = 'timestamp with time zone'
        GROUP BY c.table_name
    LOOP
        EXECUTE format('UPDATE %I SET %s', v_table.table_name, v_table.sets);
    END LOOP;
END
$shift$;

-- name: set_shift
SELECT set_config('ecliptix_sim.shift', %(by)s, false);

-- name: retention_limits
SELECT name, value FROM ecliptix_limits WHERE name LIKE '%%\_retention\_seconds' ORDER BY name;

-- name: set_limit
UPDATE ecliptix_limits SET value = %(value)s WHERE name = %(name)s;
