-- Privileges granted on the schema, its tables, views, sequences, columns and functions, one row per
-- object. The owner is named "(owner)": who owns what depends on the role that ran the
-- migrations, not on the migrations. A default (NULL) ACL is spelled out.
WITH objects AS (
    SELECT CASE WHEN c.relkind = 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END || c.relname AS name,
           coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char",
                                         c.relowner)) AS acl,
           c.relowner AS owner,
           CASE WHEN c.relkind = 'S' THEN 'sequence' WHEN c.relkind IN ('v', 'm') THEN 'view'
                ELSE 'table' END AS parent_kind,
           c.relname AS parent_name
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = %(schema)s
      AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S')
      AND c.relname <> ALL (%(excluded)s)
    UNION ALL
    SELECT 'COLUMN ' || c.relname || '.' || a.attname, a.attacl, c.relowner,
           'column', c.relname || '.' || a.attname
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = %(schema)s
      AND a.attacl IS NOT NULL
      AND a.attnum > 0
      AND NOT a.attisdropped
      AND c.relname <> ALL (%(excluded)s)
    UNION ALL
    SELECT 'FUNCTION ' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
           coalesce(p.proacl, acldefault('f'::"char", p.proowner)), p.proowner,
           'function', p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
    FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = %(schema)s
      AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                        AND d.deptype = 'e')
    UNION ALL
    SELECT 'SCHEMA ' || n.nspname, coalesce(n.nspacl, acldefault('n'::"char", n.nspowner)), n.nspowner,
           NULL, NULL
    FROM pg_namespace n
    WHERE n.nspname = %(schema)s
), grants AS (
    SELECT o.name, o.parent_kind, o.parent_name,
           CASE WHEN a.grantee = o.owner THEN '(owner)' WHEN a.grantee = 0 THEN 'PUBLIC'
                ELSE pg_get_userbyid(a.grantee) END AS grantee,
           string_agg(a.privilege_type || CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION'
                                               ELSE '' END, ', ' ORDER BY a.privilege_type) AS privs
    FROM objects o, aclexplode(o.acl) a
    GROUP BY o.name, o.parent_kind, o.parent_name, o.owner, a.grantee
)
SELECT name, string_agg(grantee || ': ' || privs, '; ' ORDER BY grantee) AS definition,
       parent_kind, parent_name
FROM grants
GROUP BY name, parent_kind, parent_name
ORDER BY 1
