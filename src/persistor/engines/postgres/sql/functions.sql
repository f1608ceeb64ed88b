-- Functions and procedures: signature as the key, the whole CREATE statement (body included)
-- as the definition. Aggregates have no CREATE FUNCTION form: their signature stands for them.
SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS name,
       CASE WHEN p.prokind = 'a' THEN 'AGGREGATE ' || p.proname || '('
                                      || pg_get_function_identity_arguments(p.oid) || ')'
            ELSE pg_get_functiondef(p.oid) END AS definition,
       NULL AS parent_kind, NULL AS parent_name
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = %(schema)s
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
ORDER BY 1
