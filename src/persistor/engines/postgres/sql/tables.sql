-- Tables of the schema: kind, persistence, partitioning, row security.
-- Parameters: schema (text), excluded (text[]: the history table and its lock table).
SELECT c.relname AS name,
       concat_ws(' ',
                 CASE c.relpersistence WHEN 'u' THEN 'UNLOGGED' END,
                 CASE c.relkind WHEN 'p' THEN 'PARTITIONED TABLE' WHEN 'f' THEN 'FOREIGN TABLE'
                                ELSE 'TABLE' END,
                 CASE WHEN c.relkind = 'p' THEN 'PARTITION BY ' || pg_get_partkeydef(c.oid) END,
                 CASE WHEN c.relispartition
                      THEN 'PARTITION OF ' || (SELECT i.inhparent::regclass::text FROM pg_inherits i
                                               WHERE i.inhrelid = c.oid)
                           || ' ' || pg_get_expr(c.relpartbound, c.oid) END,
                 CASE WHEN c.relrowsecurity THEN 'ROW LEVEL SECURITY' END) AS definition,
       NULL AS parent_kind, NULL AS parent_name
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s
  AND c.relkind IN ('r', 'p', 'f')
  AND c.relname <> ALL (%(excluded)s)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1
