-- Row security policies: command, roles, and the USING / WITH CHECK expressions.
SELECT p.tablename || '.' || p.policyname AS name,
       concat_ws(' ', p.permissive, 'FOR ' || p.cmd, 'TO ' || array_to_string(p.roles, ', '),
                 'USING (' || p.qual || ')', 'WITH CHECK (' || p.with_check || ')') AS definition,
       'table' AS parent_kind, p.tablename AS parent_name
FROM pg_policies p
WHERE p.schemaname = %(schema)s
  AND p.tablename <> ALL (%(excluded)s)
ORDER BY 1
