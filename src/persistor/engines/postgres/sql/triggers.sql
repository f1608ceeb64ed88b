-- Triggers written by users (not the internal ones behind foreign keys), and whether enabled.
SELECT c.relname || '.' || t.tgname AS name,
       pg_get_triggerdef(t.oid, true)
       || CASE t.tgenabled WHEN 'D' THEN ' (DISABLED)' WHEN 'R' THEN ' (ENABLED REPLICA)'
                           WHEN 'A' THEN ' (ENABLED ALWAYS)' ELSE '' END AS definition,
       CASE WHEN c.relkind IN ('v', 'm') THEN 'view' ELSE 'table' END AS parent_kind,
       c.relname AS parent_name
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s
  AND NOT t.tgisinternal
  AND c.relname <> ALL (%(excluded)s)
ORDER BY 1
