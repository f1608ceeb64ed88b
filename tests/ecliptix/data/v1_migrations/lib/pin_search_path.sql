-- Included (\ir) by every repeatable function script.
-- Pin the deployment schema: every function below takes SET search_path FROM
-- CURRENT, so the path in force now is the one they run with. The migrator
-- sets "<schema>, pg_temp"; this makes the same true under psql -f: exactly
-- the schema the objects are created in, then pg_temp last, so that a
-- caller's temporary table or function can never shadow one of ours inside a
-- SECURITY DEFINER function (pg_catalog is always searched first).
DO $pin$
BEGIN
    IF pg_catalog.current_schema() IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '3F000',
            MESSAGE = 'no schema to deploy the Ecliptix functions into: search_path names no existing schema';
    END IF;
    PERFORM pg_catalog.set_config('search_path',
        pg_catalog.format('%I, pg_temp', pg_catalog.current_schema()), false);
END;
$pin$;
