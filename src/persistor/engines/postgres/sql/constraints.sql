-- Table constraints: primary keys, unique, foreign keys, checks, exclusions.
-- NOT NULL constraints (catalogued from PostgreSQL 18) are the columns' nullability.
SELECT c.relname || '.' || k.conname AS name,
       pg_get_constraintdef(k.oid, true) AS definition,
       'table' AS parent_kind, c.relname AS parent_name
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s
  AND k.contype <> 'n'
  AND c.relname <> ALL (%(excluded)s)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1
