-- The schema of a database as (kind, name, definition) rows, for the undo check:
-- two snapshots are equal exactly when the objects and their definitions are.
-- %(skip)s lists the history tables, which belong to persistor, not the schema.
WITH ns AS (
    SELECT oid, nspname FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND nspname NOT LIKE 'pg_temp_%%' AND nspname NOT LIKE 'pg_toast_temp_%%'
), rel AS (
    SELECT c.oid, ns.nspname || '.' || c.relname AS name, c.relkind
    FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
    WHERE c.relname <> ALL (%(skip)s)
      AND NOT EXISTS (  -- nor what belongs to them: their indexes and sequences
          SELECT 1 FROM pg_depend d JOIN pg_class o ON o.oid = d.refobjid
          WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass
            AND d.refclassid = 'pg_class'::regclass AND o.relname = ANY (%(skip)s))
)
SELECT 'schema', nspname, '' FROM ns WHERE nspname <> 'public'
UNION ALL
SELECT 'relation', name, relkind::text FROM rel WHERE relkind <> 'i'
UNION ALL
SELECT 'column', rel.name || '.' || a.attname,
       format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
FROM rel JOIN pg_attribute a ON a.attrelid = rel.oid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped AND rel.relkind IN ('r', 'p', 'v', 'm', 'f')
UNION ALL
SELECT 'index', name, pg_get_indexdef(oid) FROM rel WHERE relkind = 'i'
UNION ALL
SELECT 'constraint', rel.name || '.' || con.conname, pg_get_constraintdef(con.oid)
FROM pg_constraint con JOIN rel ON rel.oid = con.conrelid
UNION ALL
SELECT 'view', name, pg_get_viewdef(oid) FROM rel WHERE relkind IN ('v', 'm')
UNION ALL
SELECT 'trigger', rel.name || '.' || t.tgname, pg_get_triggerdef(t.oid)
FROM pg_trigger t JOIN rel ON rel.oid = t.tgrelid WHERE NOT t.tgisinternal
UNION ALL
SELECT 'function', ns.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid) ELSE p.prokind::text END
FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
UNION ALL
SELECT 'type', ns.nspname || '.' || t.typname,
       t.typtype::text || ':' || coalesce((SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                                           FROM pg_enum e WHERE e.enumtypid = t.oid), '')
FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
WHERE t.typtype IN ('e', 'd', 'r', 'm') OR (t.typtype = 'c' AND EXISTS (
    SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c'))
UNION ALL
SELECT 'extension', extname, extversion FROM pg_extension
ORDER BY 1, 2
