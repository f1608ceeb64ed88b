-- Extensions of the database (they are not in any one schema), with schema and version.
SELECT e.extname AS name,
       'SCHEMA ' || quote_ident(n.nspname) || ' VERSION ' || e.extversion AS definition,
       NULL AS parent_kind, NULL AS parent_name
FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace
ORDER BY 1
